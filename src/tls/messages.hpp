// TLS 1.3 handshake messages and extensions: parse and emit.
//
// Read: RFC 8446 §4 (handshake protocol; §4.1.2 ClientHello, §4.1.3
// ServerHello, §4.1.4 HelloRetryRequest, §4.2 extensions, §4.3.1
// EncryptedExtensions, §4.3.2 CertificateRequest, §4.4.2 Certificate,
// §4.4.3 CertificateVerify, §4.4.4 Finished, §4.5 EndOfEarlyData, §4.6.1
// NewSessionTicket, §4.6.3 KeyUpdate), RFC 6066 §3 (server_name), RFC 7301
// §3.1 (ALPN).
//
// Messages are value types that own their bytes: handshakes are rare and small
// next to application data, and owning values keep the engine free of
// lifetime puzzles. Extensions are kept raw and in order (the order is part of
// the bytes a peer hashes) and decoded by the helpers below when the engine
// needs one. Parsers take a handshake *body* (after the 4-byte header) and
// must consume all of it; emitters append a whole message, header included.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "tls/codec.hpp"
#include "tls/types.hpp"

namespace ustack::tls {

using Buf = std::vector<std::uint8_t>;

struct Extension {
  std::uint16_t type = 0;
  Buf data;
  bool operator==(const Extension&) const = default;
};
using Extensions = std::vector<Extension>;

const Extension* find_ext(const Extensions& exts, std::uint16_t type);
// extensions<0..2^16-1>. A repeated type is malformed (RFC 8446 §4.2).
Result<Extensions> parse_extensions(Reader& r);
void emit_extensions(Writer& w, const Extensions& exts);
// Stable-sorts `exts` so types listed in `order` come first, in that order.
// Lets a configuration reproduce another implementation's layout (RFC 8448).
void order_extensions(Extensions& exts, std::span<const std::uint16_t> order);

// Handshake framing: type(1) length(3) body.
constexpr std::size_t kHandshakeHeaderLen = 4;
void begin_handshake(Writer& w, HandshakeType t, std::size_t& mark);
void end_handshake(Writer& w, std::size_t mark);

struct ClientHello {
  std::uint16_t legacy_version = kTls12;
  std::array<std::uint8_t, 32> random{};
  Buf legacy_session_id;
  std::vector<std::uint16_t> cipher_suites;
  Buf legacy_compression_methods{0};
  Extensions extensions;
};
Result<ClientHello> parse_client_hello(Bytes body);
void emit_client_hello(Buf& out, const ClientHello& m);

// ServerHello and HelloRetryRequest share a layout; an HRR is a ServerHello
// whose random is kHelloRetryRandom (§4.1.3).
struct ServerHello {
  std::uint16_t legacy_version = kTls12;
  std::array<std::uint8_t, 32> random{};
  Buf legacy_session_id_echo;
  std::uint16_t cipher_suite = 0;
  std::uint8_t legacy_compression_method = 0;
  Extensions extensions;
  bool is_hrr() const;
};
extern const std::array<std::uint8_t, 32> kHelloRetryRandom;
Result<ServerHello> parse_server_hello(Bytes body);
void emit_server_hello(Buf& out, const ServerHello& m);

struct EncryptedExtensions {
  Extensions extensions;
};
Result<EncryptedExtensions> parse_encrypted_extensions(Bytes body);
void emit_encrypted_extensions(Buf& out, const EncryptedExtensions& m);

struct CertificateRequest {
  Buf context;
  Extensions extensions;
};
Result<CertificateRequest> parse_certificate_request(Bytes body);
void emit_certificate_request(Buf& out, const CertificateRequest& m);

struct CertificateEntry {
  Buf cert_data;  // DER X.509
  Extensions extensions;
};
struct Certificate {
  Buf context;
  std::vector<CertificateEntry> entries;
};
Result<Certificate> parse_certificate(Bytes body);
void emit_certificate(Buf& out, const Certificate& m);

struct CertificateVerify {
  std::uint16_t scheme = 0;
  Buf signature;
};
Result<CertificateVerify> parse_certificate_verify(Bytes body);
void emit_certificate_verify(Buf& out, const CertificateVerify& m);

struct Finished {
  Buf verify_data;
};
// verify_data is Hash.length bytes; anything else is a decode error.
Result<Finished> parse_finished(Bytes body, std::size_t hash_len);
void emit_finished(Buf& out, const Finished& m);

struct NewSessionTicket {
  std::uint32_t lifetime = 0;
  std::uint32_t age_add = 0;
  Buf nonce;
  Buf ticket;
  Extensions extensions;
};
Result<NewSessionTicket> parse_new_session_ticket(Bytes body);
void emit_new_session_ticket(Buf& out, const NewSessionTicket& m);

struct KeyUpdate {
  bool update_requested = false;
};
Result<KeyUpdate> parse_key_update(Bytes body);
void emit_key_update(Buf& out, const KeyUpdate& m);

void emit_end_of_early_data(Buf& out);

// ---- extension bodies ----

// A list of 16-bit values with a `prefix`-byte length (supported_groups,
// signature_algorithms, ClientHello supported_versions, cipher suites).
Result<std::vector<std::uint16_t>> parse_u16_list(Bytes body, int prefix);
Buf make_u16_list(int prefix, std::span<const std::uint16_t> v);
Result<std::uint16_t> parse_u16(Bytes body);
Buf make_u16(std::uint16_t v);

struct KeyShareEntry {
  std::uint16_t group = 0;
  Buf key_exchange;
};
// ClientHello key_share: client_shares<0..2^16-1>. A group twice is illegal (§4.2.8).
Result<std::vector<KeyShareEntry>> parse_key_share_ch(Bytes body);
Buf make_key_share_ch(const std::vector<KeyShareEntry>& shares);
Result<KeyShareEntry> parse_key_share_sh(Bytes body);
Buf make_key_share_sh(const KeyShareEntry& share);

// server_name: the host_name entry, if any.
Result<std::string> parse_server_name(Bytes body);
Buf make_server_name(std::string_view host);

// ALPN: ProtocolNameList; empty names are malformed.
Result<std::vector<std::string>> parse_alpn(Bytes body);
Buf make_alpn(const std::vector<std::string>& protocols);

struct PskIdentity {
  Buf identity;
  std::uint32_t obfuscated_ticket_age = 0;
};
struct OfferedPsks {
  std::vector<PskIdentity> identities;
  std::vector<Buf> binders;
  std::size_t binders_len = 0;  // bytes of the binders vector, prefix included (§4.2.11.2)
};
Result<OfferedPsks> parse_pre_shared_key_ch(Bytes body);
Buf make_pre_shared_key_ch(const OfferedPsks& psks);

}  // namespace ustack::tls
