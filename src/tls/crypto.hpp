// The primitives TLS 1.3 needs, each a thin wrapper over OpenSSL 3 libcrypto.
//
// Read: RFC 8446 §7.1 (HKDF-Extract/Expand-Label, Derive-Secret), §7.3
// (traffic keys), §4.4.1 (transcript hash, message_hash after HRR), §5.3
// (per-record nonce), §4.2.8.2 and §7.4 ((EC)DHE shares and shared secret),
// §4.2.3 and §4.4.3 (signature schemes and the signed content), RFC 5869
// (HKDF), RFC 5116 (AEAD interface).
//
// ustack writes the protocol, never a primitive: hashes, HKDF (EVP_KDF),
// HMAC (EVP_MAC), AEADs (EVP_CIPHER), X25519/P-256 (EVP_PKEY derive),
// RSA-PSS/ECDSA/Ed25519 (EVP_DigestSign/Verify) and X.509 chain and name
// checks (X509_verify_cert) all come from libcrypto. Everything holding a
// secret wipes it (OPENSSL_cleanse) when it dies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "tls/types.hpp"

typedef struct evp_pkey_st EVP_PKEY;          // NOLINT: OpenSSL's own names
typedef struct evp_md_ctx_st EVP_MD_CTX;      // NOLINT
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;  // NOLINT
typedef struct x509_store_st X509_STORE;      // NOLINT

namespace ustack::tls {

using Buf = std::vector<std::uint8_t>;

// One of the three cipher suites; `hash` names the EVP digest, `cipher` the AEAD.
struct Suite {
  std::uint16_t id;
  const char* name;
  const char* hash;
  std::size_t hash_len;
  const char* cipher;
  std::size_t key_len;
};
constexpr std::uint16_t TLS_AES_128_GCM_SHA256 = 0x1301;
constexpr std::uint16_t TLS_AES_256_GCM_SHA384 = 0x1302;
constexpr std::uint16_t TLS_CHACHA20_POLY1305_SHA256 = 0x1303;
const Suite* find_suite(std::uint16_t id);
constexpr std::size_t kIvLen = 12;
constexpr std::size_t kTagLen = 16;
constexpr std::size_t kMaxHashLen = 48;

// A secret of at most 64 bytes, wiped on destruction and on reassignment.
class Secret {
 public:
  Secret() = default;
  explicit Secret(Bytes b);
  Secret(const Secret& o) : Secret(o.bytes()) {}
  Secret& operator=(const Secret& o);
  ~Secret();
  Bytes bytes() const { return Bytes(b_.data(), n_); }
  MutBytes resize(std::size_t n);
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  bool operator==(const Secret& o) const;
  void wipe();

 private:
  std::array<std::uint8_t, 64> b_{};
  std::size_t n_ = 0;
};

// Constant-time equality (Finished and binder checks).
bool equal_ct(Bytes a, Bytes b);
void wipe(MutBytes b);

Secret hash(const Suite& s, Bytes data);
Secret hmac(const Suite& s, Bytes key, Bytes data);
// HKDF-Extract(salt, IKM); an empty IKM means Hash.length zeros (§7.1 "0").
Secret hkdf_extract(const Suite& s, Bytes salt, Bytes ikm);
bool hkdf_expand(const Suite& s, Bytes prk, Bytes info, MutBytes out);
// HKDF-Expand-Label(Secret, Label, Context, Length) with the "tls13 " prefix.
Secret hkdf_expand_label(const Suite& s, Bytes secret, std::string_view label, Bytes context,
                         std::size_t len);
Secret derive_secret(const Suite& s, Bytes secret, std::string_view label, Bytes transcript_hash);

// Running transcript hash. Until the suite (and so the hash) is known, the
// messages are buffered: a client sends ClientHello before it learns the hash.
class Transcript {
 public:
  Transcript() = default;
  ~Transcript();
  Transcript(const Transcript&) = delete;
  Transcript& operator=(const Transcript&) = delete;
  void add(Bytes message);
  void set_suite(const Suite& s);
  // After HelloRetryRequest: replace ClientHello1 by message_hash (§4.4.1).
  void replace_with_message_hash();
  Secret current() const;
  // Hash(transcript so far || extra) without adding `extra` (PSK binders
  // cover a truncated ClientHello). Works before the suite is set, with `s`.
  Secret current_with(const Suite& s, Bytes extra) const;
  bool has_suite() const { return suite_ != nullptr; }

 private:
  const Suite* suite_ = nullptr;
  Buf pending_;
  EVP_MD_CTX* ctx_ = nullptr;
};

// One direction of record protection (§5.2, §5.3): key and IV from a traffic
// secret, nonce = IV xor sequence number.
class Aead {
 public:
  Aead() = default;
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;
  Aead(Aead&& o) noexcept;
  Aead& operator=(Aead&& o) noexcept;
  bool init(const Suite& s, Bytes traffic_secret, bool encrypt);
  bool init_raw(const Suite& s, Bytes key, Bytes iv, bool encrypt);
  bool ready() const { return ctx_ != nullptr; }
  // out receives plain.size() + kTagLen bytes; out may equal plain.data().
  bool seal(std::uint64_t seq, Bytes aad, Bytes plain, std::uint8_t* out);
  // ct includes the tag; out receives ct.size() - kTagLen bytes.
  bool open(std::uint64_t seq, Bytes aad, Bytes ct, std::uint8_t* out);

 private:
  void nonce(std::uint64_t seq, std::uint8_t* n) const;
  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::array<std::uint8_t, kIvLen> iv_{};
};

// An owned EVP_PKEY reference.
class PKey {
 public:
  PKey() = default;
  explicit PKey(EVP_PKEY* k) : k_(k) {}
  ~PKey();
  PKey(const PKey& o);
  PKey& operator=(const PKey& o);
  PKey(PKey&& o) noexcept : k_(o.k_) { o.k_ = nullptr; }
  PKey& operator=(PKey&& o) noexcept;
  EVP_PKEY* get() const { return k_; }
  explicit operator bool() const { return k_ != nullptr; }
  static PKey load_private_pem(const std::string& path);

 private:
  EVP_PKEY* k_ = nullptr;
};

// An ephemeral (EC)DHE private key for one group (§4.2.8.2).
class KeyShare {
 public:
  static std::optional<KeyShare> generate(std::uint16_t group);
  // Tests: an X25519 key from its 32 raw private bytes (RFC 8448 §3).
  static std::optional<KeyShare> from_x25519_private(Bytes priv);
  // Tests: a P-256 key from its 32-byte private scalar (RFC 8448 §5); the
  // public point is computed from it.
  static std::optional<KeyShare> from_p256_private(Bytes priv);
  std::uint16_t group() const { return group_; }
  Buf public_bytes() const;
  // The shared secret; nullopt when the peer's share is malformed or invalid
  // (wrong length, not on the curve, all-zero X25519 output).
  std::optional<Secret> derive(Bytes peer_share) const;

 private:
  PKey key_;
  std::uint16_t group_ = 0;
};
bool group_supported(std::uint16_t group);

// Signature schemes this key can make, in preference order.
std::vector<std::uint16_t> schemes_for_key(EVP_PKEY* key);
bool key_fits_scheme(EVP_PKEY* key, std::uint16_t scheme);
bool sign(EVP_PKEY* key, std::uint16_t scheme, Bytes msg, Buf& sig);
bool verify(EVP_PKEY* key, std::uint16_t scheme, Bytes msg, Bytes sig);
// The CertificateVerify input: 64 spaces, context string, 0, transcript hash.
Buf signed_content(bool server, Bytes transcript_hash);

// Trust anchors for chain verification.
class TrustStore {
 public:
  TrustStore();
  ~TrustStore();
  TrustStore(const TrustStore&) = delete;
  TrustStore& operator=(const TrustStore&) = delete;
  bool add_file(const std::string& pem_path);
  bool add_system_default();
  X509_STORE* get() const { return store_; }

 private:
  X509_STORE* store_;
};

// Verifies a DER chain (leaf first) against `store` for TLS server (or
// client) authentication and, when `name` is not empty, that the leaf is for
// that DNS name or IP address. `unix_time` fixes the validation time (tests);
// 0 lets libcrypto use the current time. On success `leaf_key` is the leaf's
// public key; otherwise the status carries the alert RFC 8446 §6.2 names.
Status verify_chain(const TrustStore& store, const std::vector<Buf>& chain, std::string_view name,
                    bool server_auth, std::int64_t unix_time, PKey& leaf_key, std::string* detail);
// The public key of a DER certificate, without any verification.
PKey leaf_public_key(Bytes der);
// The DER certificates of a PEM file, in order.
std::vector<Buf> load_cert_chain_pem(const std::string& path);

void random_bytes(MutBytes out);

}  // namespace ustack::tls
