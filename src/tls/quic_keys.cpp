// See quic_keys.hpp for the RFC sections.
#include "tls/quic_keys.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace ustack::tls::quic {

const Suite& initial_suite() { return *find_suite(TLS_AES_128_GCM_SHA256); }

InitialSecrets initial_secrets(Bytes client_dcid) {
  const Suite& s = initial_suite();
  const Secret initial = hkdf_extract(s, kInitialSaltV1, client_dcid);
  InitialSecrets out;
  out.client = hkdf_expand_label(s, initial.bytes(), "client in", {}, s.hash_len);
  out.server = hkdf_expand_label(s, initial.bytes(), "server in", {}, s.hash_len);
  return out;
}

bool derive_packet_keys(const Suite& s, Bytes secret, PacketKeys& out) {
  if (secret.size() != s.hash_len) return false;
  out.key = hkdf_expand_label(s, secret, "quic key", {}, s.key_len);
  out.iv = hkdf_expand_label(s, secret, "quic iv", {}, kIvLen);
  out.hp = hkdf_expand_label(s, secret, "quic hp", {}, s.key_len);
  return out.key.size() == s.key_len && out.iv.size() == kIvLen && out.hp.size() == s.key_len;
}

Secret next_secret(const Suite& s, Bytes secret) { return hkdf_expand_label(s, secret, "quic ku", {}, s.hash_len); }

HeaderProtector::~HeaderProtector() { EVP_CIPHER_CTX_free(ctx_); }

bool HeaderProtector::init(const Suite& s, Bytes hp_key) {
  EVP_CIPHER_CTX_free(ctx_);
  ctx_ = nullptr;
  if (hp_key.size() != s.key_len) return false;
  chacha_ = s.id == TLS_CHACHA20_POLY1305_SHA256;
  const EVP_CIPHER* c = chacha_ ? EVP_chacha20() : (s.key_len == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb());
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr || EVP_EncryptInit_ex(ctx_, c, nullptr, hp_key.data(), nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = nullptr;
    return false;
  }
  if (!chacha_) EVP_CIPHER_CTX_set_padding(ctx_, 0);
  return true;
}

bool HeaderProtector::mask(Bytes sample, std::array<std::uint8_t, kMaskLen>& out) {
  if (ctx_ == nullptr || sample.size() != kSampleLen) return false;
  int len = 0;
  if (chacha_) {
    // OpenSSL's ChaCha20 IV is counter(4, little-endian) || nonce(12): the
    // sample exactly as §5.4.4 splits it.
    static constexpr std::uint8_t kZeros[kMaskLen] = {};
    return EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, sample.data()) == 1 &&
           EVP_EncryptUpdate(ctx_, out.data(), &len, kZeros, kMaskLen) == 1 && len == static_cast<int>(kMaskLen);
  }
  std::uint8_t block[kSampleLen];
  const bool ok = EVP_EncryptUpdate(ctx_, block, &len, sample.data(), kSampleLen) == 1 && len == kSampleLen;
  std::memcpy(out.data(), block, kMaskLen);
  return ok;
}

}  // namespace ustack::tls::quic
