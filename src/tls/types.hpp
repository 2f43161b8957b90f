// TLS 1.3 code points: RFC 8446 §4 (HandshakeType, §4.2 ExtensionType,
// §4.2.7 NamedGroup, §4.2.3 SignatureScheme, §6 AlertDescription), RFC 7301
// (ALPN), RFC 9001 §8.2 (quic_transport_parameters).
#pragma once

#include <cstdint>
#include <string_view>

namespace ustack::tls {

enum class HandshakeType : std::uint8_t {
  client_hello = 1,
  server_hello = 2,
  new_session_ticket = 4,
  end_of_early_data = 5,
  encrypted_extensions = 8,
  certificate = 11,
  certificate_request = 13,
  certificate_verify = 15,
  finished = 20,
  key_update = 24,
  message_hash = 254,
};

namespace ext {
constexpr std::uint16_t server_name = 0;
constexpr std::uint16_t supported_groups = 10;
constexpr std::uint16_t signature_algorithms = 13;
constexpr std::uint16_t alpn = 16;
constexpr std::uint16_t padding = 21;  // RFC 7685
constexpr std::uint16_t record_size_limit = 28;
constexpr std::uint16_t session_ticket = 35;  // TLS 1.2's; only ever advertised empty
constexpr std::uint16_t pre_shared_key = 41;
constexpr std::uint16_t early_data = 42;
constexpr std::uint16_t supported_versions = 43;
constexpr std::uint16_t cookie = 44;
constexpr std::uint16_t psk_key_exchange_modes = 45;
constexpr std::uint16_t certificate_authorities = 47;
constexpr std::uint16_t post_handshake_auth = 49;
constexpr std::uint16_t signature_algorithms_cert = 50;
constexpr std::uint16_t key_share = 51;
constexpr std::uint16_t quic_transport_parameters = 57;
constexpr std::uint16_t renegotiation_info = 0xff01;
}  // namespace ext

namespace group {
constexpr std::uint16_t secp256r1 = 0x0017;
constexpr std::uint16_t x25519 = 0x001d;
}  // namespace group

namespace sigscheme {
constexpr std::uint16_t ecdsa_secp256r1_sha256 = 0x0403;
constexpr std::uint16_t rsa_pss_rsae_sha256 = 0x0804;
constexpr std::uint16_t rsa_pss_rsae_sha384 = 0x0805;
constexpr std::uint16_t rsa_pss_rsae_sha512 = 0x0806;
constexpr std::uint16_t ed25519 = 0x0807;
}  // namespace sigscheme

constexpr std::uint16_t kTls13 = 0x0304;
constexpr std::uint16_t kTls12 = 0x0303;

enum class Alert : std::uint8_t {
  close_notify = 0,
  unexpected_message = 10,
  bad_record_mac = 20,
  record_overflow = 22,
  handshake_failure = 40,
  bad_certificate = 42,
  unsupported_certificate = 43,
  certificate_revoked = 44,
  certificate_expired = 45,
  certificate_unknown = 46,
  illegal_parameter = 47,
  unknown_ca = 48,
  access_denied = 49,
  decode_error = 50,
  decrypt_error = 51,
  protocol_version = 70,
  insufficient_security = 71,
  internal_error = 80,
  inappropriate_fallback = 86,
  user_canceled = 90,
  missing_extension = 109,
  unsupported_extension = 110,
  unrecognized_name = 112,
  bad_certificate_status_response = 113,
  unknown_psk_identity = 115,
  certificate_required = 116,
  no_application_protocol = 120,
};

std::string_view to_string(Alert a);
std::string_view group_name(std::uint16_t g);
std::string_view scheme_name(std::uint16_t s);

// The outcome of a protocol step: ok, or the alert to send and why.
// `why` is a static string for logs and tests; the peer only sees the alert.
struct [[nodiscard]] Status {
  bool ok = true;
  Alert alert = Alert::close_notify;
  const char* why = "";
  static Status success() { return {}; }
  static Status fail(Alert a, const char* w) { return {false, a, w}; }
  explicit operator bool() const { return ok; }
};

}  // namespace ustack::tls
