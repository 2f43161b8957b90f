// See crypto.hpp for the RFC sections.
#include "tls/crypto.hpp"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace ustack::tls {

namespace {

constexpr Suite kSuites[] = {
    {TLS_AES_128_GCM_SHA256, "TLS_AES_128_GCM_SHA256", "SHA256", 32, "AES-128-GCM", 16},
    {TLS_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384", "SHA384", 48, "AES-256-GCM", 32},
    {TLS_CHACHA20_POLY1305_SHA256, "TLS_CHACHA20_POLY1305_SHA256", "SHA256", 32,
     "ChaCha20-Poly1305", 32},
};

// Digests and ciphers are fetched once: an implicit fetch per record or per
// HKDF call would take a lock and a name lookup each time.
const EVP_MD* md_of(const Suite& s) {
  static EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  return s.hash_len == 48 ? sha384 : sha256;
}

const EVP_CIPHER* cipher_of(const Suite& s) {
  static EVP_CIPHER* aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (s.id) {
    case TLS_AES_128_GCM_SHA256: return aes128;
    case TLS_AES_256_GCM_SHA384: return aes256;
    default: return chacha;
  }
}

EVP_KDF* hkdf_kdf() {
  static EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return k;
}

std::uint8_t* mut(Bytes b) { return const_cast<std::uint8_t*>(b.data()); }

}  // namespace

const Suite* find_suite(std::uint16_t id) {
  for (const auto& s : kSuites) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

// ---- Secret ----

Secret::Secret(Bytes b) {
  n_ = std::min(b.size(), b_.size());
  std::memcpy(b_.data(), b.data(), n_);
}
Secret& Secret::operator=(const Secret& o) {
  if (this != &o) {
    wipe();
    n_ = o.n_;
    std::memcpy(b_.data(), o.b_.data(), n_);
  }
  return *this;
}
Secret::~Secret() { wipe(); }
void Secret::wipe() {
  OPENSSL_cleanse(b_.data(), b_.size());
  n_ = 0;
}
MutBytes Secret::resize(std::size_t n) {
  n_ = std::min(n, b_.size());
  return MutBytes(b_.data(), n_);
}
bool Secret::operator==(const Secret& o) const { return equal_ct(bytes(), o.bytes()); }

bool equal_ct(Bytes a, Bytes b) { return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }
void wipe(MutBytes b) {
  if (!b.empty()) OPENSSL_cleanse(b.data(), b.size());
}

// ---- hashes, HMAC, HKDF ----

Secret hash(const Suite& s, Bytes data) {
  Secret out;
  unsigned n = 0;
  auto o = out.resize(s.hash_len);
  if (EVP_Digest(data.data(), data.size(), o.data(), &n, md_of(s), nullptr) != 1) return Secret{};
  return out;
}

Secret hmac(const Suite& s, Bytes key, Bytes data) {
  Secret out;
  auto o = out.resize(s.hash_len);
  std::size_t n = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, s.hash, nullptr, key.data(), key.size(), data.data(), data.size(),
                o.data(), o.size(), &n) == nullptr ||
      n != s.hash_len) {
    return Secret{};
  }
  return out;
}

Secret hkdf_extract(const Suite& s, Bytes salt, Bytes ikm) {
  std::array<std::uint8_t, kMaxHashLen> zeros{};
  if (ikm.empty()) ikm = Bytes(zeros.data(), s.hash_len);
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(hkdf_kdf());
  if (kctx == nullptr) return Secret{};
  int mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
  OSSL_PARAM params[5];
  std::size_t i = 0;
  params[i++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(s.hash), 0);
  params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, mut(ikm), ikm.size());
  // An absent salt is HashLen zeros to HMAC (RFC 5869 §2.2); libcrypto does the same.
  if (!salt.empty()) params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, mut(salt), salt.size());
  params[i] = OSSL_PARAM_construct_end();
  Secret out;
  auto o = out.resize(s.hash_len);
  const bool ok = EVP_KDF_derive(kctx, o.data(), o.size(), params) == 1;
  EVP_KDF_CTX_free(kctx);
  return ok ? out : Secret{};
}

bool hkdf_expand(const Suite& s, Bytes prk, Bytes info, MutBytes out) {
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(hkdf_kdf());
  if (kctx == nullptr) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(s.hash), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, mut(prk), prk.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, mut(info), info.size()),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(kctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(kctx);
  return ok;
}

Secret hkdf_expand_label(const Suite& s, Bytes secret, std::string_view label, Bytes context, std::size_t len) {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>; }
  std::array<std::uint8_t, 2 + 1 + 255 + 1 + 255> info{};
  std::size_t n = 0;
  info[n++] = static_cast<std::uint8_t>(len >> 8);
  info[n++] = static_cast<std::uint8_t>(len);
  info[n++] = static_cast<std::uint8_t>(6 + label.size());
  std::memcpy(&info[n], "tls13 ", 6);
  n += 6;
  std::memcpy(&info[n], label.data(), label.size());
  n += label.size();
  info[n++] = static_cast<std::uint8_t>(context.size());
  if (!context.empty()) std::memcpy(&info[n], context.data(), context.size());
  n += context.size();
  Secret out;
  if (!hkdf_expand(s, secret, Bytes(info.data(), n), out.resize(len))) return Secret{};
  return out;
}

Secret derive_secret(const Suite& s, Bytes secret, std::string_view label, Bytes transcript_hash) {
  return hkdf_expand_label(s, secret, label, transcript_hash, s.hash_len);
}

// ---- Transcript ----

Transcript::~Transcript() {
  if (ctx_ != nullptr) EVP_MD_CTX_free(ctx_);
}

void Transcript::add(Bytes message) {
  if (ctx_ == nullptr) {
    pending_.insert(pending_.end(), message.begin(), message.end());
  } else {
    EVP_DigestUpdate(ctx_, message.data(), message.size());
  }
}

void Transcript::set_suite(const Suite& s) {
  if (ctx_ != nullptr) return;
  suite_ = &s;
  ctx_ = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_, md_of(s), nullptr);
  EVP_DigestUpdate(ctx_, pending_.data(), pending_.size());
  pending_.clear();
}

Secret Transcript::current() const {
  if (ctx_ == nullptr) return Secret{};
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  Secret out;
  auto o = out.resize(suite_->hash_len);
  unsigned n = 0;
  const bool ok = EVP_MD_CTX_copy_ex(c, ctx_) == 1 && EVP_DigestFinal_ex(c, o.data(), &n) == 1;
  EVP_MD_CTX_free(c);
  return ok ? out : Secret{};
}

Secret Transcript::current_with(const Suite& s, Bytes extra) const {
  if (ctx_ == nullptr) {
    Buf all = pending_;
    all.insert(all.end(), extra.begin(), extra.end());
    return hash(s, all);
  }
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  Secret out;
  auto o = out.resize(suite_->hash_len);
  unsigned n = 0;
  const bool ok = EVP_MD_CTX_copy_ex(c, ctx_) == 1 && EVP_DigestUpdate(c, extra.data(), extra.size()) == 1 &&
                  EVP_DigestFinal_ex(c, o.data(), &n) == 1;
  EVP_MD_CTX_free(c);
  return ok ? out : Secret{};
}

void Transcript::replace_with_message_hash() {
  const Secret h = current();
  EVP_DigestInit_ex(ctx_, md_of(*suite_), nullptr);
  const std::uint8_t hdr[4] = {static_cast<std::uint8_t>(HandshakeType::message_hash), 0, 0,
                               static_cast<std::uint8_t>(h.size())};
  EVP_DigestUpdate(ctx_, hdr, sizeof hdr);
  EVP_DigestUpdate(ctx_, h.bytes().data(), h.size());
}

// ---- AEAD ----

Aead::~Aead() {
  if (ctx_ != nullptr) EVP_CIPHER_CTX_free(ctx_);  // clears the key schedule it holds
  wipe(iv_);
}
Aead::Aead(Aead&& o) noexcept : ctx_(o.ctx_), iv_(o.iv_) { o.ctx_ = nullptr; }
Aead& Aead::operator=(Aead&& o) noexcept {
  if (this != &o) {
    if (ctx_ != nullptr) EVP_CIPHER_CTX_free(ctx_);
    ctx_ = o.ctx_;
    iv_ = o.iv_;
    o.ctx_ = nullptr;
  }
  return *this;
}

bool Aead::init(const Suite& s, Bytes traffic_secret, bool encrypt) {
  const Secret key = hkdf_expand_label(s, traffic_secret, "key", {}, s.key_len);
  const Secret iv = hkdf_expand_label(s, traffic_secret, "iv", {}, kIvLen);
  return init_raw(s, key.bytes(), iv.bytes(), encrypt);
}

bool Aead::init_raw(const Suite& s, Bytes key, Bytes iv, bool encrypt) {
  if (key.size() != s.key_len || iv.size() != kIvLen) return false;
  if (ctx_ != nullptr) EVP_CIPHER_CTX_free(ctx_);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr ||
      EVP_CipherInit_ex(ctx_, cipher_of(s), nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = nullptr;
    return false;
  }
  std::memcpy(iv_.data(), iv.data(), kIvLen);
  return true;
}

void Aead::nonce(std::uint64_t seq, std::uint8_t* n) const {
  std::memcpy(n, iv_.data(), kIvLen);
  for (int i = 0; i < 8; ++i) n[kIvLen - 1 - static_cast<std::size_t>(i)] ^= static_cast<std::uint8_t>(seq >> (8 * i));
}

bool Aead::seal(std::uint64_t seq, Bytes aad, Bytes plain, std::uint8_t* out) {
  std::uint8_t n[kIvLen];
  nonce(seq, n);
  int len = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, n, 1) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!plain.empty() && EVP_CipherUpdate(ctx_, out, &len, plain.data(), static_cast<int>(plain.size())) != 1) {
    return false;
  }
  return EVP_CipherFinal_ex(ctx_, out + plain.size(), &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, kTagLen, out + plain.size()) == 1;
}

bool Aead::open(std::uint64_t seq, Bytes aad, Bytes ct, std::uint8_t* out) {
  if (ct.size() < kTagLen) return false;
  const std::size_t plen = ct.size() - kTagLen;
  std::uint8_t n[kIvLen];
  nonce(seq, n);
  std::uint8_t tag[kTagLen];
  std::memcpy(tag, ct.data() + plen, kTagLen);
  int len = 0;
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, n, 0) != 1 ||
      EVP_CipherUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (plen > 0 && EVP_CipherUpdate(ctx_, out, &len, ct.data(), static_cast<int>(plen)) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, kTagLen, tag) == 1 &&
         EVP_CipherFinal_ex(ctx_, out + plen, &len) == 1;
}

// ---- keys ----

PKey::~PKey() {
  if (k_ != nullptr) EVP_PKEY_free(k_);
}
PKey::PKey(const PKey& o) : k_(o.k_) {
  if (k_ != nullptr) EVP_PKEY_up_ref(k_);
}
PKey& PKey::operator=(const PKey& o) {
  if (this != &o) {
    if (o.k_ != nullptr) EVP_PKEY_up_ref(o.k_);
    if (k_ != nullptr) EVP_PKEY_free(k_);
    k_ = o.k_;
  }
  return *this;
}
PKey& PKey::operator=(PKey&& o) noexcept {
  if (this != &o) {
    if (k_ != nullptr) EVP_PKEY_free(k_);
    k_ = o.k_;
    o.k_ = nullptr;
  }
  return *this;
}

PKey PKey::load_private_pem(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return PKey{};
  EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return PKey(k);
}

bool group_supported(std::uint16_t g) { return g == group::x25519 || g == group::secp256r1; }

std::optional<KeyShare> KeyShare::generate(std::uint16_t group) {
  KeyShare ks;
  ks.group_ = group;
  if (group == group::x25519) {
    ks.key_ = PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  } else if (group == group::secp256r1) {
    ks.key_ = PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  }
  if (!ks.key_) return std::nullopt;
  return ks;
}

std::optional<KeyShare> KeyShare::from_x25519_private(Bytes priv) {
  KeyShare ks;
  ks.group_ = group::x25519;
  ks.key_ = PKey(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size()));
  if (!ks.key_) return std::nullopt;
  return ks;
}

std::optional<KeyShare> KeyShare::from_p256_private(Bytes priv) {
  if (priv.size() != 32) return std::nullopt;
  // EC_POINT_mul is the non-deprecated way in OpenSSL 3 to get the public
  // point; EVP_PKEY_fromdata then wants both halves.
  EC_GROUP* g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  BIGNUM* d = BN_bin2bn(priv.data(), static_cast<int>(priv.size()), nullptr);
  EC_POINT* q = g != nullptr ? EC_POINT_new(g) : nullptr;
  std::uint8_t pub[65];
  bool ok = g != nullptr && d != nullptr && q != nullptr && EC_POINT_mul(g, q, d, nullptr, nullptr, nullptr) == 1 &&
            EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, nullptr) == sizeof pub;
  KeyShare ks;
  ks.group_ = group::secp256r1;
  if (ok) {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM* params = nullptr;
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* k = nullptr;
    ok = bld != nullptr && ctx != nullptr &&
         OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
         OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1 &&
         OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) == 1 &&
         (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
         EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) == 1;
    ks.key_ = PKey(k);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
  }
  EC_POINT_free(q);
  BN_clear_free(d);
  EC_GROUP_free(g);
  if (!ok || !ks.key_) return std::nullopt;
  return ks;
}

Buf KeyShare::public_bytes() const {
  unsigned char* p = nullptr;
  const std::size_t n = EVP_PKEY_get1_encoded_public_key(key_.get(), &p);
  Buf out(p, p + n);
  OPENSSL_free(p);
  return out;
}

std::optional<Secret> KeyShare::derive(Bytes peer_share) const {
  // §4.2.8.2: X25519 shares are 32 bytes; P-256 shares are uncompressed points (0x04 || X || Y).
  if (group_ == group::x25519 && peer_share.size() != 32) return std::nullopt;
  if (group_ == group::secp256r1 && (peer_share.size() != 65 || peer_share[0] != 0x04)) return std::nullopt;
  PKey peer(EVP_PKEY_new());
  if (!peer || EVP_PKEY_copy_parameters(peer.get(), key_.get()) != 1 ||
      EVP_PKEY_set1_encoded_public_key(peer.get(), peer_share.data(), peer_share.size()) != 1) {
    ERR_clear_error();
    return std::nullopt;  // not a point on the curve
  }
  EVP_PKEY_CTX* c = EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr);
  Secret out;
  std::size_t n = 64;
  auto o = out.resize(64);
  // libcrypto refuses an all-zero X25519 result (RFC 8446 §7.4.2's check).
  const bool ok = c != nullptr && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer.get()) == 1 &&
                  EVP_PKEY_derive(c, o.data(), &n) == 1;
  EVP_PKEY_CTX_free(c);
  if (!ok) {
    ERR_clear_error();
    return std::nullopt;
  }
  out.resize(n);
  return out;
}

// ---- signatures ----

namespace {
enum class KeyKind { rsa, p256, ed25519, other };
KeyKind kind_of(EVP_PKEY* k) {
  if (k == nullptr) return KeyKind::other;
  if (EVP_PKEY_is_a(k, "RSA")) return KeyKind::rsa;
  if (EVP_PKEY_is_a(k, "ED25519")) return KeyKind::ed25519;
  if (EVP_PKEY_is_a(k, "EC")) {
    char name[64];
    std::size_t n = 0;
    if (EVP_PKEY_get_group_name(k, name, sizeof name, &n) == 1 &&
        (std::strcmp(name, "prime256v1") == 0 || std::strcmp(name, "P-256") == 0)) {
      return KeyKind::p256;
    }
  }
  return KeyKind::other;
}
const char* scheme_digest(std::uint16_t scheme) {
  switch (scheme) {
    case sigscheme::rsa_pss_rsae_sha256:
    case sigscheme::ecdsa_secp256r1_sha256: return "SHA256";
    case sigscheme::rsa_pss_rsae_sha384: return "SHA384";
    case sigscheme::rsa_pss_rsae_sha512: return "SHA512";
    default: return nullptr;  // Ed25519 signs the message itself
  }
}
bool is_pss(std::uint16_t scheme) {
  return scheme == sigscheme::rsa_pss_rsae_sha256 || scheme == sigscheme::rsa_pss_rsae_sha384 ||
         scheme == sigscheme::rsa_pss_rsae_sha512;
}
}  // namespace

std::vector<std::uint16_t> schemes_for_key(EVP_PKEY* key) {
  switch (kind_of(key)) {
    case KeyKind::rsa:
      return {sigscheme::rsa_pss_rsae_sha256, sigscheme::rsa_pss_rsae_sha384, sigscheme::rsa_pss_rsae_sha512};
    case KeyKind::p256: return {sigscheme::ecdsa_secp256r1_sha256};
    case KeyKind::ed25519: return {sigscheme::ed25519};
    default: return {};
  }
}

bool key_fits_scheme(EVP_PKEY* key, std::uint16_t scheme) {
  const auto s = schemes_for_key(key);
  return std::find(s.begin(), s.end(), scheme) != s.end();
}

bool sign(EVP_PKEY* key, std::uint16_t scheme, Bytes msg, Buf& sig) {
  if (!key_fits_scheme(key, scheme)) return false;
  EVP_MD_CTX* mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pc = nullptr;
  bool ok = EVP_DigestSignInit_ex(mc, &pc, scheme_digest(scheme), nullptr, nullptr, key, nullptr) == 1;
  if (ok && is_pss(scheme)) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  std::size_t n = 0;
  ok = ok && EVP_DigestSign(mc, nullptr, &n, msg.data(), msg.size()) == 1;
  if (ok) {
    sig.resize(n);
    ok = EVP_DigestSign(mc, sig.data(), &n, msg.data(), msg.size()) == 1;
    sig.resize(n);
  }
  EVP_MD_CTX_free(mc);
  if (!ok) ERR_clear_error();
  return ok;
}

bool verify(EVP_PKEY* key, std::uint16_t scheme, Bytes msg, Bytes sig) {
  if (!key_fits_scheme(key, scheme)) return false;
  EVP_MD_CTX* mc = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pc = nullptr;
  bool ok = EVP_DigestVerifyInit_ex(mc, &pc, scheme_digest(scheme), nullptr, nullptr, key, nullptr) == 1;
  if (ok && is_pss(scheme)) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
  }
  ok = ok && EVP_DigestVerify(mc, sig.data(), sig.size(), msg.data(), msg.size()) == 1;
  EVP_MD_CTX_free(mc);
  if (!ok) ERR_clear_error();
  return ok;
}

Buf signed_content(bool server, Bytes transcript_hash) {
  static constexpr char kServer[] = "TLS 1.3, server CertificateVerify";
  static constexpr char kClient[] = "TLS 1.3, client CertificateVerify";
  const std::string_view ctx = server ? kServer : kClient;
  Buf out(64 + ctx.size() + 1 + transcript_hash.size(), 0x20);
  std::memcpy(out.data() + 64, ctx.data(), ctx.size());
  out[64 + ctx.size()] = 0;
  std::memcpy(out.data() + 64 + ctx.size() + 1, transcript_hash.data(), transcript_hash.size());
  return out;
}

// ---- certificates ----

TrustStore::TrustStore() : store_(X509_STORE_new()) {}
TrustStore::~TrustStore() { X509_STORE_free(store_); }
bool TrustStore::add_file(const std::string& pem_path) {
  const bool ok = X509_STORE_load_file(store_, pem_path.c_str()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}
bool TrustStore::add_system_default() { return X509_STORE_set_default_paths(store_) == 1; }

namespace {
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
X509Ptr parse_der(Bytes der) {
  const unsigned char* p = der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x != nullptr && p != der.data() + der.size()) {  // trailing bytes after the certificate
    X509_free(x);
    return nullptr;
  }
  return X509Ptr(x);
}
}  // namespace

PKey leaf_public_key(Bytes der) {
  auto x = parse_der(der);
  if (!x) {
    ERR_clear_error();
    return PKey{};
  }
  return PKey(X509_get_pubkey(x.get()));
}

Status verify_chain(const TrustStore& store, const std::vector<Buf>& chain, std::string_view name, bool server_auth,
                    std::int64_t unix_time, PKey& leaf_key, std::string* detail) {
  if (chain.empty()) return Status::fail(Alert::decode_error, "empty certificate chain");
  std::vector<X509Ptr> certs;
  for (const auto& der : chain) {
    auto x = parse_der(der);
    if (!x) {
      ERR_clear_error();
      return Status::fail(Alert::bad_certificate, "certificate does not parse");
    }
    certs.push_back(std::move(x));
  }
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (std::size_t i = 1; i < certs.size(); ++i) sk_X509_push(untrusted, certs[i].get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  Status st = Status::success();
  if (ctx == nullptr || X509_STORE_CTX_init(ctx, store.get(), certs[0].get(), untrusted) != 1) {
    st = Status::fail(Alert::internal_error, "X509_STORE_CTX_init failed");
  } else {
    X509_VERIFY_PARAM* vp = X509_STORE_CTX_get0_param(ctx);
    X509_STORE_CTX_set_purpose(ctx, server_auth ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
    if (unix_time != 0) X509_VERIFY_PARAM_set_time(vp, static_cast<time_t>(unix_time));
    if (!name.empty()) {
      const std::string n(name);
      unsigned char ipbuf[16];
      const bool is_ip = inet_pton(AF_INET, n.c_str(), ipbuf) == 1 || inet_pton(AF_INET6, n.c_str(), ipbuf) == 1;
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, n.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(vp, n.c_str(), n.size());
      }
    }
    if (X509_verify_cert(ctx) != 1) {
      const int err = X509_STORE_CTX_get_error(ctx);
      if (detail != nullptr) *detail = X509_verify_cert_error_string(err);
      switch (err) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
          st = Status::fail(Alert::unknown_ca, "certificate chain does not reach a trust anchor");
          break;
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
          st = Status::fail(Alert::certificate_expired, "certificate outside its validity period");
          break;
        case X509_V_ERR_CERT_REVOKED:
          st = Status::fail(Alert::certificate_revoked, "certificate revoked");
          break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
          st = Status::fail(Alert::bad_certificate, "certificate is not for this name");
          break;
        case X509_V_ERR_INVALID_PURPOSE:
          st = Status::fail(Alert::unsupported_certificate, "certificate not valid for this purpose");
          break;
        default:
          st = Status::fail(Alert::bad_certificate, "certificate verification failed");
      }
    }
  }
  if (st) leaf_key = PKey(X509_get_pubkey(certs[0].get()));
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  ERR_clear_error();
  return st;
}

std::vector<Buf> load_cert_chain_pem(const std::string& path) {
  std::vector<Buf> out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    if (n > 0) out.emplace_back(der, der + n);
    OPENSSL_free(der);
    X509_free(x);
  }
  std::fclose(f);
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

void random_bytes(MutBytes out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();  // no entropy: nothing safe to do
}

}  // namespace ustack::tls
