// See messages.hpp for the RFC sections.
#include "tls/messages.hpp"

#include <algorithm>

namespace ustack::tls {

namespace {
constexpr ParseError kTrunc = ParseError::truncated;
constexpr ParseError kBad = ParseError::malformed;

// An extension body that is one vector<prefix> and nothing after it.
Result<Bytes> parse_sole_vec(Bytes body, int prefix) {
  Reader r(body);
  Bytes v;
  if (!r.vec(prefix, v)) return kTrunc;
  if (!r.empty()) return ParseError::bad_length;
  return v;
}

// `even` holds big-endian u16s; the caller has checked its length is even.
std::vector<std::uint16_t> load_u16s(Bytes even) {
  std::vector<std::uint16_t> out;
  for (std::size_t i = 0; i < even.size(); i += 2) out.push_back(load_be16(even, i));
  return out;
}

// A message body ends with its extensions: they must run to its last byte.
ParseError parse_final_extensions(Reader& r, Extensions& out) {
  auto ex = parse_extensions(r);
  if (!ex) return ex.error();
  out = std::move(ex.value());
  return r.empty() ? ParseError::ok : ParseError::bad_length;
}
}  // namespace

const std::array<std::uint8_t, 32> kHelloRetryRandom = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

bool ServerHello::is_hrr() const { return random == kHelloRetryRandom; }

const Extension* find_ext(const Extensions& exts, std::uint16_t type) {
  for (const auto& e : exts) {
    if (e.type == type) return &e;
  }
  return nullptr;
}

Result<Extensions> parse_extensions(Reader& r) {
  Bytes all;
  if (!r.vec(2, all)) return kTrunc;
  Reader er(all);
  Extensions out;
  while (!er.empty()) {
    Extension e;
    if (!er.u16(e.type) || !er.vec(2, e.data)) return kTrunc;
    if (find_ext(out, e.type) != nullptr) return kBad;
    out.push_back(std::move(e));
  }
  return out;
}

void emit_extensions(Writer& w, const Extensions& exts) {
  const auto m = w.open(2);
  for (const auto& e : exts) {
    w.u16(e.type);
    w.vec(2, e.data);
  }
  w.close(m, 2);
}

void order_extensions(Extensions& exts, std::span<const std::uint16_t> order) {
  auto rank = [&](std::uint16_t t) {
    auto it = std::find(order.begin(), order.end(), t);
    return static_cast<std::size_t>(it - order.begin());
  };
  std::stable_sort(exts.begin(), exts.end(),
                   [&](const Extension& a, const Extension& b) { return rank(a.type) < rank(b.type); });
}

void begin_handshake(Writer& w, HandshakeType t, std::size_t& mark) {
  w.u8(static_cast<std::uint8_t>(t));
  mark = w.open(3);
}
void end_handshake(Writer& w, std::size_t mark) { w.close(mark, 3); }

// ---- ClientHello ----

Result<ClientHello> parse_client_hello(Bytes body) {
  Reader r(body);
  ClientHello m;
  Bytes random, suites;
  if (!r.u16(m.legacy_version) || !r.bytes(32, random) || !r.vec(1, m.legacy_session_id) ||
      !r.vec(2, suites) || !r.vec(1, m.legacy_compression_methods)) {
    return kTrunc;
  }
  std::copy(random.begin(), random.end(), m.random.begin());
  if (m.legacy_session_id.size() > 32 || suites.size() % 2 != 0 || suites.empty() ||
      m.legacy_compression_methods.empty()) {
    return kBad;
  }
  m.cipher_suites = load_u16s(suites);
  // A ClientHello without extensions is TLS 1.2 or older; the engine refuses it.
  if (!r.empty()) {
    if (const auto e = parse_final_extensions(r, m.extensions); e != ParseError::ok) return e;
  }
  return m;
}

void emit_client_hello(Buf& out, const ClientHello& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::client_hello, hm);
  w.u16(m.legacy_version);
  w.bytes(m.random);
  w.vec(1, m.legacy_session_id);
  const auto sm = w.open(2);
  for (auto s : m.cipher_suites) w.u16(s);
  w.close(sm, 2);
  w.vec(1, m.legacy_compression_methods);
  emit_extensions(w, m.extensions);
  end_handshake(w, hm);
}

// ---- ServerHello / HelloRetryRequest ----

Result<ServerHello> parse_server_hello(Bytes body) {
  Reader r(body);
  ServerHello m;
  Bytes random;
  if (!r.u16(m.legacy_version) || !r.bytes(32, random) || !r.vec(1, m.legacy_session_id_echo) ||
      !r.u16(m.cipher_suite) || !r.u8(m.legacy_compression_method)) {
    return kTrunc;
  }
  std::copy(random.begin(), random.end(), m.random.begin());
  if (m.legacy_session_id_echo.size() > 32) return kBad;
  if (const auto e = parse_final_extensions(r, m.extensions); e != ParseError::ok) return e;
  return m;
}

void emit_server_hello(Buf& out, const ServerHello& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::server_hello, hm);
  w.u16(m.legacy_version);
  w.bytes(m.random);
  w.vec(1, m.legacy_session_id_echo);
  w.u16(m.cipher_suite);
  w.u8(m.legacy_compression_method);
  emit_extensions(w, m.extensions);
  end_handshake(w, hm);
}

// ---- EncryptedExtensions, CertificateRequest ----

Result<EncryptedExtensions> parse_encrypted_extensions(Bytes body) {
  Reader r(body);
  EncryptedExtensions m;
  if (const auto e = parse_final_extensions(r, m.extensions); e != ParseError::ok) return e;
  return m;
}

void emit_encrypted_extensions(Buf& out, const EncryptedExtensions& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::encrypted_extensions, hm);
  emit_extensions(w, m.extensions);
  end_handshake(w, hm);
}

Result<CertificateRequest> parse_certificate_request(Bytes body) {
  Reader r(body);
  CertificateRequest m;
  if (!r.vec(1, m.context)) return kTrunc;
  if (const auto e = parse_final_extensions(r, m.extensions); e != ParseError::ok) return e;
  return m;
}

void emit_certificate_request(Buf& out, const CertificateRequest& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::certificate_request, hm);
  w.vec(1, m.context);
  emit_extensions(w, m.extensions);
  end_handshake(w, hm);
}

// ---- Certificate, CertificateVerify, Finished ----

Result<Certificate> parse_certificate(Bytes body) {
  Reader r(body);
  Certificate m;
  Bytes list;
  if (!r.vec(1, m.context) || !r.vec(3, list)) return kTrunc;
  if (!r.empty()) return ParseError::bad_length;
  Reader lr(list);
  while (!lr.empty()) {
    CertificateEntry e;
    if (!lr.vec(3, e.cert_data)) return kTrunc;
    if (e.cert_data.empty()) return kBad;
    auto ex = parse_extensions(lr);
    if (!ex) return ex.error();
    e.extensions = std::move(ex.value());
    m.entries.push_back(std::move(e));
  }
  return m;
}

void emit_certificate(Buf& out, const Certificate& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::certificate, hm);
  w.vec(1, m.context);
  const auto lm = w.open(3);
  for (const auto& e : m.entries) {
    w.vec(3, e.cert_data);
    emit_extensions(w, e.extensions);
  }
  w.close(lm, 3);
  end_handshake(w, hm);
}

Result<CertificateVerify> parse_certificate_verify(Bytes body) {
  Reader r(body);
  CertificateVerify m;
  if (!r.u16(m.scheme) || !r.vec(2, m.signature)) return kTrunc;
  if (!r.empty()) return ParseError::bad_length;
  if (m.signature.empty()) return kBad;
  return m;
}

void emit_certificate_verify(Buf& out, const CertificateVerify& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::certificate_verify, hm);
  w.u16(m.scheme);
  w.vec(2, m.signature);
  end_handshake(w, hm);
}

Result<Finished> parse_finished(Bytes body, std::size_t hash_len) {
  if (body.size() != hash_len) return ParseError::bad_length;
  return Finished{Buf(body.begin(), body.end())};
}

void emit_finished(Buf& out, const Finished& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::finished, hm);
  w.bytes(m.verify_data);
  end_handshake(w, hm);
}

// ---- post-handshake ----

Result<NewSessionTicket> parse_new_session_ticket(Bytes body) {
  Reader r(body);
  NewSessionTicket m;
  if (!r.u32(m.lifetime) || !r.u32(m.age_add) || !r.vec(1, m.nonce) || !r.vec(2, m.ticket)) {
    return kTrunc;
  }
  if (m.ticket.empty()) return kBad;
  if (const auto e = parse_final_extensions(r, m.extensions); e != ParseError::ok) return e;
  return m;
}

void emit_new_session_ticket(Buf& out, const NewSessionTicket& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::new_session_ticket, hm);
  w.u32(m.lifetime);
  w.u32(m.age_add);
  w.vec(1, m.nonce);
  w.vec(2, m.ticket);
  emit_extensions(w, m.extensions);
  end_handshake(w, hm);
}

Result<KeyUpdate> parse_key_update(Bytes body) {
  if (body.size() != 1) return ParseError::bad_length;
  if (body[0] > 1) return kBad;
  return KeyUpdate{body[0] == 1};
}

void emit_key_update(Buf& out, const KeyUpdate& m) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::key_update, hm);
  w.u8(m.update_requested ? 1 : 0);
  end_handshake(w, hm);
}

void emit_end_of_early_data(Buf& out) {
  Writer w(out);
  std::size_t hm;
  begin_handshake(w, HandshakeType::end_of_early_data, hm);
  end_handshake(w, hm);
}

// ---- extension bodies ----

Result<std::vector<std::uint16_t>> parse_u16_list(Bytes body, int prefix) {
  const auto list = parse_sole_vec(body, prefix);
  if (!list) return list.error();
  if (list->size() % 2 != 0 || list->empty()) return kBad;
  return load_u16s(*list);
}

Buf make_u16_list(int prefix, std::span<const std::uint16_t> v) {
  Buf out;
  Writer w(out);
  const auto m = w.open(prefix);
  for (auto x : v) w.u16(x);
  w.close(m, prefix);
  return out;
}

Result<std::uint16_t> parse_u16(Bytes body) {
  if (body.size() != 2) return body.size() < 2 ? kTrunc : ParseError::bad_length;
  return load_be16(body, 0);
}

Buf make_u16(std::uint16_t v) { return Buf{static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }

Result<std::vector<KeyShareEntry>> parse_key_share_ch(Bytes body) {
  const auto list = parse_sole_vec(body, 2);
  if (!list) return list.error();
  Reader lr(*list);
  std::vector<KeyShareEntry> out;
  while (!lr.empty()) {
    KeyShareEntry e;
    if (!lr.u16(e.group) || !lr.vec(2, e.key_exchange)) return kTrunc;
    if (e.key_exchange.empty()) return kBad;
    for (const auto& o : out) {
      if (o.group == e.group) return kBad;
    }
    out.push_back(std::move(e));
  }
  return out;
}

Buf make_key_share_ch(const std::vector<KeyShareEntry>& shares) {
  Buf out;
  Writer w(out);
  const auto m = w.open(2);
  for (const auto& s : shares) {
    w.u16(s.group);
    w.vec(2, s.key_exchange);
  }
  w.close(m, 2);
  return out;
}

Result<KeyShareEntry> parse_key_share_sh(Bytes body) {
  Reader r(body);
  KeyShareEntry e;
  if (!r.u16(e.group) || !r.vec(2, e.key_exchange)) return kTrunc;
  if (!r.empty()) return ParseError::bad_length;
  if (e.key_exchange.empty()) return kBad;
  return e;
}

Buf make_key_share_sh(const KeyShareEntry& share) {
  Buf out;
  Writer w(out);
  w.u16(share.group);
  w.vec(2, share.key_exchange);
  return out;
}

Result<std::string> parse_server_name(Bytes body) {
  const auto list = parse_sole_vec(body, 2);
  if (!list) return list.error();
  if (list->empty()) return kBad;
  Reader lr(*list);
  std::string host;
  while (!lr.empty()) {
    std::uint8_t type;
    Bytes name;
    if (!lr.u8(type) || !lr.vec(2, name)) return kTrunc;
    if (type != 0) continue;  // unknown name types are skipped (RFC 6066 §3)
    if (!host.empty() || name.empty()) return kBad;  // one host_name, not empty
    for (auto c : name) {
      if (c == 0) return kBad;  // an embedded NUL would truncate the name for C APIs
    }
    host.assign(name.begin(), name.end());
  }
  return host;
}

Buf make_server_name(std::string_view host) {
  Buf out;
  Writer w(out);
  const auto m = w.open(2);
  w.u8(0);
  w.vec(2, Bytes(reinterpret_cast<const std::uint8_t*>(host.data()), host.size()));
  w.close(m, 2);
  return out;
}

Result<std::vector<std::string>> parse_alpn(Bytes body) {
  const auto list = parse_sole_vec(body, 2);
  if (!list) return list.error();
  if (list->empty()) return kBad;
  Reader lr(*list);
  std::vector<std::string> out;
  while (!lr.empty()) {
    Bytes name;
    if (!lr.vec(1, name)) return kTrunc;
    if (name.empty()) return kBad;
    out.emplace_back(name.begin(), name.end());
  }
  return out;
}

Buf make_alpn(const std::vector<std::string>& protocols) {
  Buf out;
  Writer w(out);
  const auto m = w.open(2);
  for (const auto& p : protocols) {
    w.vec(1, Bytes(reinterpret_cast<const std::uint8_t*>(p.data()), p.size()));
  }
  w.close(m, 2);
  return out;
}

Result<OfferedPsks> parse_pre_shared_key_ch(Bytes body) {
  Reader r(body);
  Bytes ids, binders;
  if (!r.vec(2, ids)) return kTrunc;
  const std::size_t before = r.left();
  if (!r.vec(2, binders)) return kTrunc;
  if (!r.empty()) return ParseError::bad_length;
  OfferedPsks out;
  out.binders_len = before;
  Reader ir(ids);
  while (!ir.empty()) {
    PskIdentity id;
    if (!ir.vec(2, id.identity) || !ir.u32(id.obfuscated_ticket_age)) return kTrunc;
    if (id.identity.empty()) return kBad;
    out.identities.push_back(std::move(id));
  }
  Reader br(binders);
  while (!br.empty()) {
    Buf b;
    if (!br.vec(1, b)) return kTrunc;
    if (b.size() < 32) return kBad;
    out.binders.push_back(std::move(b));
  }
  if (out.identities.empty() || out.identities.size() != out.binders.size()) return kBad;
  return out;
}

Buf make_pre_shared_key_ch(const OfferedPsks& psks) {
  Buf out;
  Writer w(out);
  auto m = w.open(2);
  for (const auto& id : psks.identities) {
    w.vec(2, id.identity);
    w.u32(id.obfuscated_ticket_age);
  }
  w.close(m, 2);
  m = w.open(2);
  for (const auto& b : psks.binders) w.vec(1, b);
  w.close(m, 2);
  return out;
}

}  // namespace ustack::tls
