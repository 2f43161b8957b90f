#include "tls/types.hpp"

namespace ustack::tls {

std::string_view to_string(Alert a) {
  switch (a) {
    case Alert::close_notify: return "close_notify";
    case Alert::unexpected_message: return "unexpected_message";
    case Alert::bad_record_mac: return "bad_record_mac";
    case Alert::record_overflow: return "record_overflow";
    case Alert::handshake_failure: return "handshake_failure";
    case Alert::bad_certificate: return "bad_certificate";
    case Alert::unsupported_certificate: return "unsupported_certificate";
    case Alert::certificate_revoked: return "certificate_revoked";
    case Alert::certificate_expired: return "certificate_expired";
    case Alert::certificate_unknown: return "certificate_unknown";
    case Alert::illegal_parameter: return "illegal_parameter";
    case Alert::unknown_ca: return "unknown_ca";
    case Alert::access_denied: return "access_denied";
    case Alert::decode_error: return "decode_error";
    case Alert::decrypt_error: return "decrypt_error";
    case Alert::protocol_version: return "protocol_version";
    case Alert::insufficient_security: return "insufficient_security";
    case Alert::internal_error: return "internal_error";
    case Alert::inappropriate_fallback: return "inappropriate_fallback";
    case Alert::user_canceled: return "user_canceled";
    case Alert::missing_extension: return "missing_extension";
    case Alert::unsupported_extension: return "unsupported_extension";
    case Alert::unrecognized_name: return "unrecognized_name";
    case Alert::bad_certificate_status_response: return "bad_certificate_status_response";
    case Alert::unknown_psk_identity: return "unknown_psk_identity";
    case Alert::certificate_required: return "certificate_required";
    case Alert::no_application_protocol: return "no_application_protocol";
  }
  return "unknown_alert";
}

std::string_view group_name(std::uint16_t g) {
  switch (g) {
    case group::x25519: return "x25519";
    case group::secp256r1: return "secp256r1";
    default: return "unknown";
  }
}

std::string_view scheme_name(std::uint16_t s) {
  switch (s) {
    case sigscheme::ecdsa_secp256r1_sha256: return "ecdsa_secp256r1_sha256";
    case sigscheme::rsa_pss_rsae_sha256: return "rsa_pss_rsae_sha256";
    case sigscheme::rsa_pss_rsae_sha384: return "rsa_pss_rsae_sha384";
    case sigscheme::rsa_pss_rsae_sha512: return "rsa_pss_rsae_sha512";
    case sigscheme::ed25519: return "ed25519";
    default: return "unknown";
  }
}

}  // namespace ustack::tls
