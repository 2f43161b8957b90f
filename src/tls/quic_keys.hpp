// QUIC's use of TLS 1.3 secrets: Initial secrets, packet protection keys,
// header protection masks, key updates, and TLS alerts as QUIC errors.
//
// Read: RFC 9001 §5.1 (packet protection keys: "quic key", "quic iv",
// "quic hp" through HKDF-Expand-Label), §5.2 (Initial secrets from the
// client's first Destination Connection ID and the version 1 salt), §5.4
// (header protection: AES-ECB or ChaCha20 over a 16-byte sample, 5-byte
// mask), §6.1 (key update: "quic ku"), §4.8 (a TLS alert is the QUIC
// CRYPTO_ERROR 0x0100 + AlertDescription), Appendix A (the vectors the unit
// tests check).
//
// The Engine announces one traffic secret per level and direction; the QUIC
// layer turns each into PacketKeys here. Like the rest of src/tls this is
// sans-IO and every primitive is libcrypto's. HeaderProtector allocates its
// cipher context once in init(); mask() does not allocate.
#pragma once

#include <array>
#include <cstdint>

#include "tls/crypto.hpp"
#include "tls/types.hpp"

namespace ustack::tls::quic {

// RFC 9001 §5.2, QUIC version 1.
constexpr std::array<std::uint8_t, 20> kInitialSaltV1 = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                                         0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
constexpr std::size_t kSampleLen = 16;
constexpr std::size_t kMaskLen = 5;

// Initial packets are always protected with TLS_AES_128_GCM_SHA256 (§5.2).
const Suite& initial_suite();

struct InitialSecrets {
  Secret client;  // client_initial_secret: protects what the client sends
  Secret server;
};
// initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id), then
// "client in" / "server in" with Hash.length. Both sides call it with the
// DCID of the client's first Initial packet.
InitialSecrets initial_secrets(Bytes client_dcid);

// One direction's packet protection material for one secret (§5.1).
struct PacketKeys {
  Secret key;  // AEAD key (suite key length)
  Secret iv;   // 12 bytes; nonce = iv xor packet number (§5.3)
  Secret hp;   // header protection key (same length as the AEAD key)
};
// False when the secret does not fit the suite (length differs from Hash.length).
bool derive_packet_keys(const Suite& s, Bytes secret, PacketKeys& out);

// §6.1: the next generation's secret; the header protection key is not
// updated (callers keep the old hp).
Secret next_secret(const Suite& s, Bytes secret);

// §5.4.3 (AES: mask = AES-ECB(hp, sample)) and §5.4.4 (ChaCha20: counter =
// sample[0..4] little-endian, nonce = sample[4..16], mask = ChaCha20 of five
// zero bytes).
class HeaderProtector {
 public:
  HeaderProtector() = default;
  ~HeaderProtector();
  HeaderProtector(const HeaderProtector&) = delete;
  HeaderProtector& operator=(const HeaderProtector&) = delete;
  bool init(const Suite& s, Bytes hp_key);
  bool ready() const { return ctx_ != nullptr; }
  // False before init() or when `sample` is not 16 bytes.
  bool mask(Bytes sample, std::array<std::uint8_t, kMaskLen>& out);

 private:
  EVP_CIPHER_CTX* ctx_ = nullptr;
  bool chacha_ = false;
};

// §4.8: the QUIC transport error code for a TLS alert (CRYPTO_ERROR range
// 0x0100-0x01ff).
constexpr std::uint64_t kCryptoErrorBase = 0x0100;
constexpr std::uint64_t crypto_error(Alert a) { return kCryptoErrorBase + static_cast<std::uint8_t>(a); }
// The alert inside a CRYPTO_ERROR code; false for any other transport error.
constexpr bool alert_of(std::uint64_t code, Alert& a) {
  if (code < kCryptoErrorBase || code > kCryptoErrorBase + 0xff) return false;
  a = static_cast<Alert>(code - kCryptoErrorBase);
  return true;
}

}  // namespace ustack::tls::quic
