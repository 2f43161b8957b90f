// See engine.hpp for the RFC sections. Alert choices follow RFC 8446 §4.2
// ("abort with illegal_parameter" etc.) and §6.2; where the RFC names none,
// the comment says why the chosen one.
#include "tls/engine.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace ustack::tls {

namespace {

constexpr std::size_t kMaxHandshakeMessage = 1 << 18;  // a long certificate chain fits; 16 MiB claims do not
constexpr std::uint8_t kPskDheKe = 1;
constexpr std::uint32_t kMaxTicketLifetime = 604800;  // §4.6.1: 7 days
constexpr std::int64_t kMaxTicketAgeSkewMs = 10000;   // §8.3: freshness window for 0-RTT

std::size_t idx(Level l) { return static_cast<std::size_t>(l); }

template <class T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool is_ip_literal(const std::string& s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s.c_str(), b) == 1 || inet_pton(AF_INET6, s.c_str(), b) == 1;
}

Bytes as_bytes(const std::string& s) { return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

// Extensions the engine understands, to tell "known but misplaced"
// (illegal_parameter) from "never offered" (unsupported_extension).
bool known_extension(std::uint16_t t) {
  switch (t) {
    case ext::server_name:
    case ext::supported_groups:
    case ext::signature_algorithms:
    case ext::alpn:
    case ext::pre_shared_key:
    case ext::early_data:
    case ext::supported_versions:
    case ext::cookie:
    case ext::psk_key_exchange_modes:
    case ext::key_share:
    case ext::quic_transport_parameters:
      return true;
    default:
      return false;
  }
}

// ---- tickets: AES-256-GCM under the server's rotating key (RFC 8446 §4.6.1
// leaves the format to the server; RFC 5077 §4 is the model). ----
//   ticket = key_name(16) || iv(12) || AEAD(plaintext) || tag(16), aad = key_name
//   plaintext = version(1)=1 suite(2) issued_ms(8) age_add(4) lifetime(4)
//               max_early_data(4) alpn<1> sni<1> psk<1>
Buf seal_ticket(const TicketKey& k, const TicketContents& st, Bytes iv) {
  Buf plain;
  Writer w(plain);
  w.u8(1);
  w.u16(st.suite);
  w.u32(static_cast<std::uint32_t>(st.issued_ms >> 32));
  w.u32(static_cast<std::uint32_t>(st.issued_ms));
  w.u32(st.age_add);
  w.u32(st.lifetime);
  w.u32(st.max_early_data);
  w.vec(1, as_bytes(st.alpn));
  w.vec(1, as_bytes(st.sni));
  w.vec(1, st.psk.bytes());
  const Suite& aes = *find_suite(TLS_AES_256_GCM_SHA384);
  Aead a;
  Buf out(k.name.begin(), k.name.end());
  out.insert(out.end(), iv.begin(), iv.end());
  if (!a.init_raw(aes, k.key, iv, true)) return {};
  const std::size_t off = out.size();
  out.resize(off + plain.size() + kTagLen);
  const bool ok = a.seal(0, Bytes(k.name), plain, out.data() + off);
  wipe(plain);
  return ok ? out : Buf{};
}

std::optional<TicketContents> open_ticket(const std::vector<TicketKey>& keys, Bytes ticket) {
  if (ticket.size() < 16 + kIvLen + kTagLen) return std::nullopt;
  for (const auto& k : keys) {
    if (std::memcmp(k.name.data(), ticket.data(), 16) != 0) continue;
    const Suite& aes = *find_suite(TLS_AES_256_GCM_SHA384);
    Aead a;
    if (!a.init_raw(aes, k.key, ticket.subspan(16, kIvLen), false)) return std::nullopt;
    const Bytes ct = ticket.subspan(16 + kIvLen);
    Buf plain(ct.size() - kTagLen);
    if (!a.open(0, ticket.first(16), ct, plain.data())) return std::nullopt;
    Reader r(plain);
    TicketContents st;
    std::uint8_t version;
    std::uint32_t hi, lo;
    Bytes alpn, sni, psk;
    const bool ok = r.u8(version) && version == 1 && r.u16(st.suite) && r.u32(hi) && r.u32(lo) &&
                    r.u32(st.age_add) && r.u32(st.lifetime) && r.u32(st.max_early_data) && r.vec(1, alpn) &&
                    r.vec(1, sni) && r.vec(1, psk) && r.empty();
    if (ok) {
      st.issued_ms = (std::uint64_t{hi} << 32) | lo;
      st.alpn.assign(alpn.begin(), alpn.end());
      st.sni.assign(sni.begin(), sni.end());
      st.psk = Secret(psk);
    }
    wipe(plain);
    if (!ok || find_suite(st.suite) == nullptr) return std::nullopt;
    return st;
  }
  return std::nullopt;
}

}  // namespace

// ---- Session ----

Buf Session::serialize() const {
  Buf out;
  Writer w(out);
  w.u8(1);
  w.u16(suite);
  w.u32(age_add);
  w.u32(lifetime);
  w.u32(max_early_data);
  w.u32(static_cast<std::uint32_t>(received_at_ms >> 32));
  w.u32(static_cast<std::uint32_t>(received_at_ms));
  w.vec(2, ticket);
  w.vec(1, psk);
  w.vec(1, as_bytes(alpn));
  w.vec(1, as_bytes(server_name));
  return out;
}

std::optional<Session> Session::parse(Bytes b) {
  Reader r(b);
  Session s;
  std::uint8_t v;
  std::uint32_t hi, lo;
  Bytes alpn, sni;
  if (!r.u8(v) || v != 1 || !r.u16(s.suite) || !r.u32(s.age_add) || !r.u32(s.lifetime) ||
      !r.u32(s.max_early_data) || !r.u32(hi) || !r.u32(lo) || !r.vec(2, s.ticket) || !r.vec(1, s.psk) ||
      !r.vec(1, alpn) || !r.vec(1, sni) || !r.empty() || find_suite(s.suite) == nullptr) {
    return std::nullopt;
  }
  s.received_at_ms = (std::uint64_t{hi} << 32) | lo;
  s.alpn.assign(alpn.begin(), alpn.end());
  s.server_name.assign(sni.begin(), sni.end());
  return s;
}

// ---- Engine: common ----

Engine::Engine(const ClientConfig& cfg, SecretSink& sink, Hooks hooks)
    : client_(&cfg), sink_(sink), hooks_(std::move(hooks)) {}
Engine::Engine(const ServerConfig& cfg, SecretSink& sink, Hooks hooks)
    : server_(&cfg), sink_(sink), hooks_(std::move(hooks)) {}
Engine::~Engine() {
  for (auto& s : sessions_) wipe(s.psk);
}

void Engine::random(MutBytes out) {
  if (hooks_.random) {
    hooks_.random(out);
  } else {
    random_bytes(out);
  }
}

std::optional<KeyShare> Engine::keygen(std::uint16_t g) {
  if (!group_supported(g)) return std::nullopt;
  return hooks_.keygen ? hooks_.keygen(g) : KeyShare::generate(g);
}

Status Engine::fail(Alert a, const char* why) {
  if (state_ != State::failed) {
    failure_ = Status::fail(a, why);
    state_ = State::failed;
    c_hs_.wipe();
    s_hs_.wipe();
    c_ap_.wipe();
    s_ap_.wipe();
    res_master_.wipe();
    ks_.wipe();
  }
  return failure_;
}

void Engine::announce(Level level, Direction dir, std::string_view keylog_label, const Secret& s) {
  if (!keylog_label.empty()) sink_.on_keylog(keylog_label, client_random_, s.bytes());
  sink_.on_secret(level, dir, *suite_, s.bytes());
}

void Engine::set_read_level(Level l) { read_level_ = l; }

Buf Engine::take_output(Level level) {
  Buf out;
  out.swap(out_[idx(level)]);
  return out;
}

// A message we send: it joins the transcript and `level`'s output.
void Engine::send_message(Level level, const Buf& msg) {
  transcript_.add(msg);
  Buf& out = out_[idx(level)];
  out.insert(out.end(), msg.begin(), msg.end());
}

// Our Finished (§4.4.4): the transcript so far, keyed by our handshake secret.
void Engine::send_finished(const Secret& my_hs) {
  const Secret vd = finished_verify_data(*suite_, my_hs.bytes(), transcript_.current().bytes());
  Buf m;
  emit_finished(m, Finished{Buf(vd.bytes().begin(), vd.bytes().end())});
  send_message(Level::handshake, m);
}

// The peer's Finished must be the transcript so far, keyed by its handshake secret.
Status Engine::check_finished(Bytes body, const Secret& peer_hs, const char* mismatch) {
  auto fin = parse_finished(body, suite_->hash_len);
  if (!fin) return fail(Alert::decode_error, "malformed Finished");
  const Secret expect = finished_verify_data(*suite_, peer_hs.bytes(), transcript_.current().bytes());
  if (!equal_ct(expect.bytes(), fin->verify_data)) return fail(Alert::decrypt_error, mismatch);
  return Status::success();
}

// §7.1: the application traffic and exporter secrets, over the transcript
// through the server's Finished.
void Engine::derive_application_secrets() {
  ks_.to_master();
  const Secret th = transcript_.current();
  c_ap_ = ks_.derive(label::c_ap_traffic, th.bytes());
  s_ap_ = ks_.derive(label::s_ap_traffic, th.bytes());
  const Secret exp = ks_.derive(label::exp_master, th.bytes());
  sink_.on_keylog("EXPORTER_SECRET", client_random_, exp.bytes());
}

bool Engine::has_output() const {
  return std::any_of(out_.begin(), out_.end(), [](const Buf& b) { return !b.empty(); });
}

Status Engine::start() {
  if (state_ != State::start) return fail(Alert::internal_error, "start called twice");
  if (server_ != nullptr) {
    state_ = State::wait_ch;
    return Status::success();
  }
  random(client_random_);
  if (client_->compat_session_id && !client_->quic) {  // QUIC forbids it (RFC 9001 §8.4)
    session_id_.resize(32);
    random(session_id_);
  }
  for (auto g : client_->key_share_groups) {
    auto ks = keygen(g);
    if (!ks) return fail(Alert::internal_error, "no key share for a configured group");
    my_shares_.push_back(std::move(*ks));
  }
  state_ = State::wait_sh;
  return client_send_hello(false);
}

Status Engine::receive(Level level, Bytes data) {
  if (state_ == State::failed) return failure_;
  if (state_ == State::start) return fail(Alert::internal_error, "receive before start");
  if (level != read_level_) return fail(Alert::unexpected_message, "handshake data at an unexpected level");
  Buf& buf = in_[idx(level)];
  buf.insert(buf.end(), data.begin(), data.end());
  std::size_t off = 0;
  while (buf.size() - off >= kHandshakeHeaderLen) {
    const std::uint32_t len = (std::uint32_t{buf[off + 1]} << 16) | (std::uint32_t{buf[off + 2]} << 8) | buf[off + 3];
    if (len > kMaxHandshakeMessage) return fail(Alert::decode_error, "handshake message too long");
    if (buf.size() - off < kHandshakeHeaderLen + len) break;
    const Bytes whole(buf.data() + off, kHandshakeHeaderLen + len);
    off += whole.size();
    const Status st = process(level, static_cast<HandshakeType>(whole[0]), whole.subspan(kHandshakeHeaderLen), whole);
    if (!st) return st;
    if (read_level_ != level) {
      // §5.1: a key change must fall on a record boundary; QUIC likewise
      // forbids data past the last message of a level.
      if (off != buf.size()) return fail(Alert::unexpected_message, "handshake data after a key change");
      buf.clear();
      return Status::success();
    }
  }
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(off));
  return Status::success();
}

Status Engine::process(Level, HandshakeType type, Bytes body, Bytes whole) {
  switch (state_) {
    case State::wait_sh: {
      if (type != HandshakeType::server_hello) break;
      auto sh = parse_server_hello(body);
      if (!sh) return fail(Alert::decode_error, "malformed ServerHello");
      return sh->is_hrr() ? client_on_hrr(*sh, whole) : client_on_server_hello(*sh, whole);
    }
    case State::wait_ee:
      if (type == HandshakeType::encrypted_extensions) return client_on_ee(body, whole);
      break;
    case State::wait_cert_cr:
      if (type == HandshakeType::certificate_request) return client_on_cert_request(body, whole);
      if (type == HandshakeType::certificate) return client_on_certificate(body, whole);
      break;
    case State::wait_cert:
      if (type == HandshakeType::certificate) return client_on_certificate(body, whole);
      break;
    case State::wait_cv:
      if (type == HandshakeType::certificate_verify) return client_on_cv(body, whole);
      break;
    case State::wait_finished:
      if (type == HandshakeType::finished) return client_on_finished(body, whole);
      break;
    case State::wait_ch:
      if (type == HandshakeType::client_hello) return server_on_client_hello(body, whole);
      break;
    case State::wait_eoed:
      if (type == HandshakeType::end_of_early_data) return server_on_eoed(body, whole);
      break;
    case State::wait_flight2:
      if (type == HandshakeType::certificate) return server_on_client_certificate(body, whole);
      break;
    case State::wait_client_cv:
      if (type == HandshakeType::certificate_verify) return server_on_client_cv(body, whole);
      break;
    case State::wait_client_finished:
      if (type == HandshakeType::finished) return server_on_client_finished(body, whole);
      break;
    case State::connected:
      if (type == HandshakeType::key_update) return on_key_update(body);
      if (type == HandshakeType::new_session_ticket && is_client()) return client_on_ticket(body);
      break;
    case State::start:
    case State::failed:
      break;
  }
  return fail(Alert::unexpected_message, "handshake message not expected in this state");
}

Status Engine::on_key_update(Bytes body) {
  const bool quic = is_client() ? client_->quic : server_->quic;
  if (quic) return fail(Alert::unexpected_message, "KeyUpdate over QUIC");  // RFC 9001 §6
  auto ku = parse_key_update(body);
  if (!ku) return fail(ku.error() == ParseError::malformed ? Alert::illegal_parameter : Alert::decode_error,
                       "malformed KeyUpdate");
  sink_.on_key_update(ku->update_requested);
  return Status::success();
}

Buf Engine::make_key_update(bool request_peer_update) {
  Buf out;
  emit_key_update(out, KeyUpdate{request_peer_update});
  return out;
}

// ---- client ----

Status Engine::client_send_hello(bool after_hrr) {
  const ClientConfig& c = *client_;
  ClientHello ch;
  ch.random = client_random_;
  ch.legacy_session_id = session_id_;
  ch.cipher_suites = c.cipher_suites;
  Extensions& e = ch.extensions;
  if (!c.server_name.empty() && !is_ip_literal(c.server_name)) {  // RFC 6066 §3: no IP literals
    e.push_back({ext::server_name, make_server_name(c.server_name)});
  }
  e.push_back({ext::supported_groups, make_u16_list(2, c.groups)});
  std::vector<KeyShareEntry> shares;
  for (const auto& s : my_shares_) shares.push_back({s.group(), s.public_bytes()});
  e.push_back({ext::key_share, make_key_share_ch(shares)});
  const std::uint16_t v13[] = {kTls13};
  e.push_back({ext::supported_versions, make_u16_list(1, v13)});
  e.push_back({ext::signature_algorithms, make_u16_list(2, c.signature_schemes)});
  if (!c.alpn.empty()) e.push_back({ext::alpn, make_alpn(c.alpn)});
  if (c.quic) e.push_back({ext::quic_transport_parameters, c.quic_transport_parameters});
  e.push_back({ext::psk_key_exchange_modes, Buf{1, kPskDheKe}});
  if (!cookie_.empty()) {
    Buf ck;
    Writer w(ck);
    w.vec(2, cookie_);
    e.push_back({ext::cookie, ck});
  }

  // A session is offered if its suite is on offer and (after HRR) its hash
  // still matches the suite the server picked (§4.1.4).
  const Session* sess = nullptr;
  const Suite* psk_suite = nullptr;
  if (c.session && contains(c.cipher_suites, c.session->suite)) {
    psk_suite = find_suite(c.session->suite);
    if (!after_hrr || (suite_ != nullptr && suite_->hash_len == psk_suite->hash_len)) sess = &*c.session;
  }
  if (sess != nullptr && !after_hrr && c.send_early_data && sess->max_early_data > 0) {
    e.push_back({ext::early_data, {}});
    early_offered_ = true;
  }
  for (const auto& x : c.extra_extensions) {
    if (find_ext(e, x.type) == nullptr) e.push_back(x);
  }
  if (!c.extension_order.empty()) order_extensions(e, c.extension_order);
  std::optional<Extension> psk_ext;
  if (sess != nullptr) {  // §4.2.11: pre_shared_key is last; binders are filled in below
    OfferedPsks p;
    const std::uint32_t age = static_cast<std::uint32_t>(c.now_ms - sess->received_at_ms);
    p.identities.push_back({sess->ticket, age + sess->age_add});
    p.binders.push_back(Buf(psk_suite->hash_len, 0));
    psk_ext = Extension{ext::pre_shared_key, make_pre_shared_key_ch(p)};
    e.push_back(*psk_ext);
  }

  Buf msg;
  emit_client_hello(msg, ch);
  if (c.pad_client_hello && !c.quic && msg.size() >= 256 && msg.size() < 512) {
    // RFC 7685 §3: pad to 512 bytes (at least one byte when the extension
    // header alone would overshoot), before pre_shared_key.
    const std::size_t n = msg.size() + 4 < 512 ? 512 - 4 - msg.size() : 1;
    if (psk_ext) e.pop_back();
    e.push_back({ext::padding, Buf(n, 0)});
    if (!c.extension_order.empty()) order_extensions(e, c.extension_order);
    if (psk_ext) e.push_back(*psk_ext);
    msg.clear();
    emit_client_hello(msg, ch);
  }
  if (sess != nullptr) {
    // binder = HMAC(finished_key(binder_key), Transcript-Hash(... || truncated ClientHello)).
    const std::size_t binders_len = 2 + 1 + psk_suite->hash_len;
    const Bytes truncated(msg.data(), msg.size() - binders_len);
    KeySchedule eks;
    eks.start(*psk_suite, sess->psk);
    const Secret bk = eks.binder_key(true);
    const Secret binder = finished_verify_data(*psk_suite, bk.bytes(), transcript_.current_with(*psk_suite, truncated).bytes());
    std::copy(binder.bytes().begin(), binder.bytes().end(), msg.end() - static_cast<std::ptrdiff_t>(psk_suite->hash_len));
  }
  send_message(Level::initial, msg);

  if (early_offered_) {
    // client_early_traffic_secret = Derive-Secret(Early Secret(PSK), "c e traffic", ClientHello).
    KeySchedule eks;
    eks.start(*psk_suite, sess->psk);
    const Secret ce = eks.derive(label::c_e_traffic, transcript_.current_with(*psk_suite, {}).bytes());
    const Suite* saved = suite_;
    suite_ = psk_suite;
    announce(Level::early, Direction::write, "CLIENT_EARLY_TRAFFIC_SECRET", ce);
    suite_ = saved;
  }
  return Status::success();
}

Status Engine::client_on_hrr(const ServerHello& hrr, Bytes whole) {
  const ClientConfig& c = *client_;
  if (hrr_) return fail(Alert::unexpected_message, "second HelloRetryRequest");
  const Extension* sv = find_ext(hrr.extensions, ext::supported_versions);
  if (sv == nullptr) return fail(Alert::protocol_version, "HelloRetryRequest without supported_versions");
  auto v = parse_u16(sv->data);
  if (!v || *v != kTls13) return fail(Alert::illegal_parameter, "HelloRetryRequest selects another version");
  if (hrr.legacy_session_id_echo != session_id_) return fail(Alert::illegal_parameter, "session id not echoed");
  if (!contains(c.cipher_suites, hrr.cipher_suite) || find_suite(hrr.cipher_suite) == nullptr) {
    return fail(Alert::illegal_parameter, "HelloRetryRequest selects a suite not offered");
  }
  if (hrr.legacy_compression_method != 0) return fail(Alert::illegal_parameter, "compression in HelloRetryRequest");
  for (const auto& x : hrr.extensions) {
    if (x.type != ext::key_share && x.type != ext::supported_versions && x.type != ext::cookie) {
      return fail(known_extension(x.type) ? Alert::illegal_parameter : Alert::unsupported_extension,
                  "extension not allowed in HelloRetryRequest");
    }
  }
  const Extension* ks = find_ext(hrr.extensions, ext::key_share);
  const Extension* ck = find_ext(hrr.extensions, ext::cookie);
  if (ks == nullptr && ck == nullptr) return fail(Alert::illegal_parameter, "HelloRetryRequest changes nothing");
  suite_ = find_suite(hrr.cipher_suite);
  transcript_.set_suite(*suite_);
  transcript_.replace_with_message_hash();
  transcript_.add(whole);
  if (ks != nullptr) {
    auto g = parse_u16(ks->data);
    if (!g) return fail(Alert::decode_error, "malformed HelloRetryRequest key_share");
    const bool already = std::any_of(my_shares_.begin(), my_shares_.end(), [&](const KeyShare& s) { return s.group() == *g; });
    if (!contains(c.groups, *g) || !group_supported(*g) || already) {
      return fail(Alert::illegal_parameter, "HelloRetryRequest selects an unusable group");
    }
    auto share = keygen(*g);
    if (!share) return fail(Alert::internal_error, "key generation failed");
    my_shares_.clear();
    my_shares_.push_back(std::move(*share));
  }
  if (ck != nullptr) {
    Reader r(ck->data);
    if (!r.vec(2, cookie_) || !r.empty() || cookie_.empty()) return fail(Alert::decode_error, "malformed cookie");
  }
  hrr_ = true;
  hrr_suite_ = hrr.cipher_suite;
  early_offered_ = false;  // §4.2.10: no early data after HelloRetryRequest
  return client_send_hello(true);
}

Status Engine::client_on_server_hello(const ServerHello& sh, Bytes whole) {
  const ClientConfig& c = *client_;
  const Extension* sv = find_ext(sh.extensions, ext::supported_versions);
  if (sv == nullptr) {
    // §4.1.3: a TLS 1.3 server negotiating TLS 1.2 or below marks its random
    // ("DOWNGRD" then 01 or 00); seeing the mark means an attacker stripped
    // our TLS 1.3 offer, which deserves illegal_parameter rather than the
    // plain version refusal.
    static constexpr std::uint8_t kDowngrade[7] = {0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44};
    if (std::equal(std::begin(kDowngrade), std::end(kDowngrade), sh.random.end() - 8) && sh.random[31] <= 1) {
      return fail(Alert::illegal_parameter, "TLS 1.3 downgrade sentinel in ServerHello.random");
    }
    return fail(Alert::protocol_version, "server does not speak TLS 1.3");
  }
  auto v = parse_u16(sv->data);
  if (!v || *v != kTls13) return fail(Alert::illegal_parameter, "ServerHello selects another version");
  if (sh.legacy_version != kTls12) return fail(Alert::illegal_parameter, "ServerHello legacy_version");
  if (sh.legacy_session_id_echo != session_id_) return fail(Alert::illegal_parameter, "session id not echoed");
  if (sh.legacy_compression_method != 0) return fail(Alert::illegal_parameter, "compression in ServerHello");
  const Suite* s = find_suite(sh.cipher_suite);
  if (s == nullptr || !contains(c.cipher_suites, sh.cipher_suite) || (hrr_ && sh.cipher_suite != hrr_suite_)) {
    return fail(Alert::illegal_parameter, "ServerHello selects a suite not offered");
  }
  for (const auto& x : sh.extensions) {
    if (x.type != ext::key_share && x.type != ext::supported_versions && x.type != ext::pre_shared_key) {
      return fail(known_extension(x.type) ? Alert::illegal_parameter : Alert::unsupported_extension,
                  "extension not allowed in ServerHello");
    }
  }
  suite_ = s;
  Secret psk;
  if (const Extension* p = find_ext(sh.extensions, ext::pre_shared_key)) {
    auto sel = parse_u16(p->data);
    if (!sel) return fail(Alert::decode_error, "malformed pre_shared_key");
    const bool offered = c.session && contains(c.cipher_suites, c.session->suite);
    if (!offered || *sel != 0) return fail(Alert::illegal_parameter, "server selected a PSK not offered");
    if (find_suite(c.session->suite)->hash_len != s->hash_len) {
      return fail(Alert::illegal_parameter, "PSK hash does not match the suite");
    }
    psk = Secret(c.session->psk);
    resumed_ = true;
  }
  const Extension* ks = find_ext(sh.extensions, ext::key_share);
  if (ks == nullptr) return fail(Alert::missing_extension, "ServerHello without key_share");  // we offer psk_dhe_ke only
  auto share = parse_key_share_sh(ks->data);
  if (!share) return fail(Alert::decode_error, "malformed key_share");
  auto mine = std::find_if(my_shares_.begin(), my_shares_.end(), [&](const KeyShare& k) { return k.group() == share->group; });
  if (mine == my_shares_.end()) return fail(Alert::illegal_parameter, "server key share for a group not offered");
  auto ecdhe = mine->derive(share->key_exchange);
  if (!ecdhe) return fail(Alert::illegal_parameter, "invalid server key share");
  group_ = share->group;
  my_shares_.clear();  // the private keys are no longer needed

  transcript_.set_suite(*s);
  transcript_.add(whole);
  ks_.start(*s, psk.bytes());
  ks_.to_handshake(ecdhe->bytes());
  const Secret th = transcript_.current();
  c_hs_ = ks_.derive(label::c_hs_traffic, th.bytes());
  s_hs_ = ks_.derive(label::s_hs_traffic, th.bytes());
  announce(Level::handshake, Direction::read, "SERVER_HANDSHAKE_TRAFFIC_SECRET", s_hs_);
  announce(Level::handshake, Direction::write, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", c_hs_);
  set_read_level(Level::handshake);
  state_ = State::wait_ee;
  return Status::success();
}

Status Engine::client_on_ee(Bytes body, Bytes whole) {
  const ClientConfig& c = *client_;
  auto ee = parse_encrypted_extensions(body);
  if (!ee) return fail(Alert::decode_error, "malformed EncryptedExtensions");
  for (const auto& x : ee->extensions) {
    switch (x.type) {
      case ext::server_name:
        if (c.server_name.empty() || is_ip_literal(c.server_name)) {
          return fail(Alert::unsupported_extension, "server_name acknowledged but not sent");
        }
        if (!x.data.empty()) return fail(Alert::decode_error, "server_name acknowledgement not empty");
        break;
      case ext::supported_groups:
        break;  // the server's preferences, for next time (§4.2.7)
      case ext::alpn: {
        if (c.alpn.empty()) return fail(Alert::unsupported_extension, "ALPN selected but not offered");
        auto a = parse_alpn(x.data);
        if (!a || a->size() != 1) return fail(Alert::decode_error, "ALPN must select exactly one protocol");
        if (!contains(c.alpn, (*a)[0])) return fail(Alert::illegal_parameter, "ALPN selects a protocol not offered");
        alpn_ = (*a)[0];
        break;
      }
      case ext::early_data:
        if (!early_offered_) return fail(Alert::unsupported_extension, "early_data accepted but not offered");
        if (!x.data.empty()) return fail(Alert::decode_error, "early_data in EncryptedExtensions not empty");
        early_accepted_ = true;
        break;
      case ext::quic_transport_parameters:
        if (!c.quic) return fail(Alert::unsupported_extension, "quic_transport_parameters over TLS");
        peer_tp_ = x.data;
        break;
      default: {
        const bool extra = std::any_of(c.extra_extensions.begin(), c.extra_extensions.end(),
                                       [&](const Extension& o) { return o.type == x.type; });
        if (extra) break;
        return fail(known_extension(x.type) ? Alert::illegal_parameter : Alert::unsupported_extension,
                    "extension not allowed in EncryptedExtensions");
      }
    }
  }
  if (c.quic && find_ext(ee->extensions, ext::quic_transport_parameters) == nullptr) {
    return fail(Alert::missing_extension, "no quic_transport_parameters");  // RFC 9001 §8.2
  }
  if (early_accepted_ && !resumed_) return fail(Alert::illegal_parameter, "early data accepted without the PSK");
  transcript_.add(whole);
  state_ = resumed_ ? State::wait_finished : State::wait_cert_cr;
  return Status::success();
}

Status Engine::client_on_cert_request(Bytes body, Bytes whole) {
  auto cr = parse_certificate_request(body);
  if (!cr) return fail(Alert::decode_error, "malformed CertificateRequest");
  if (!cr->context.empty()) return fail(Alert::illegal_parameter, "CertificateRequest context in the handshake");
  const Extension* sa = find_ext(cr->extensions, ext::signature_algorithms);
  if (sa == nullptr) return fail(Alert::missing_extension, "CertificateRequest without signature_algorithms");
  auto schemes = parse_u16_list(sa->data, 2);
  if (!schemes) return fail(Alert::decode_error, "malformed signature_algorithms");
  // Pick our scheme now; with no usable one we will send no certificate.
  my_scheme_ = 0;
  if (client_->key) {
    for (auto s : schemes_for_key(client_->key.get())) {
      if (contains(*schemes, s)) {
        my_scheme_ = s;
        break;
      }
    }
  }
  cert_requested_ = true;
  cert_request_context_ = cr->context;
  transcript_.add(whole);
  state_ = State::wait_cert;
  return Status::success();
}

Status Engine::client_on_certificate(Bytes body, Bytes whole) {
  const ClientConfig& c = *client_;
  auto cert = parse_certificate(body);
  if (!cert) return fail(Alert::decode_error, "malformed Certificate");
  if (!cert->context.empty()) return fail(Alert::illegal_parameter, "server Certificate with a context");
  if (cert->entries.empty()) return fail(Alert::decode_error, "server sent no certificate");  // §4.4.2.4
  peer_chain_.clear();
  for (auto& e : cert->entries) peer_chain_.push_back(std::move(e.cert_data));
  Status st = Status::success();
  if (c.verify) {
    st = c.verify(peer_chain_, peer_key_);
  } else if (c.trust != nullptr) {
    st = verify_chain(*c.trust, peer_chain_, c.server_name, true, c.verify_time, peer_key_, nullptr);
  } else {
    st = Status::fail(Alert::internal_error, "no trust store configured");
  }
  if (!st) return fail(st.alert, st.why);
  if (!peer_key_) return fail(Alert::bad_certificate, "no public key in the certificate");
  transcript_.add(whole);
  state_ = State::wait_cv;
  return Status::success();
}

Status Engine::client_on_cv(Bytes body, Bytes whole) {
  auto cv = parse_certificate_verify(body);
  if (!cv) return fail(Alert::decode_error, "malformed CertificateVerify");
  if (!contains(client_->signature_schemes, cv->scheme) || !key_fits_scheme(peer_key_.get(), cv->scheme)) {
    return fail(Alert::illegal_parameter, "CertificateVerify scheme not offered or not the key's");
  }
  const Buf content = signed_content(true, transcript_.current().bytes());
  if (!verify(peer_key_.get(), cv->scheme, content, cv->signature)) {
    return fail(Alert::decrypt_error, "server CertificateVerify does not verify");
  }
  peer_scheme_ = cv->scheme;
  transcript_.add(whole);
  state_ = State::wait_finished;
  return Status::success();
}

Status Engine::client_on_finished(Bytes body, Bytes whole) {
  const ClientConfig& c = *client_;
  if (const Status st = check_finished(body, s_hs_, "server Finished does not verify"); !st) return st;
  transcript_.add(whole);
  derive_application_secrets();
  announce(Level::application, Direction::read, "SERVER_TRAFFIC_SECRET_0", s_ap_);

  if (early_accepted_ && !c.quic) {  // RFC 9001 §8.3: QUIC has no EndOfEarlyData
    Buf eoed;
    emit_end_of_early_data(eoed);
    send_message(Level::early, eoed);
  }
  if (cert_requested_) {
    const bool send = my_scheme_ != 0 && !c.cert_chain.empty();
    Certificate cert;
    cert.context = cert_request_context_;
    if (send) {
      for (const auto& d : c.cert_chain) cert.entries.push_back({d, {}});
    }
    Buf m;
    emit_certificate(m, cert);
    send_message(Level::handshake, m);
    if (send) {
      CertificateVerify cv;
      cv.scheme = my_scheme_;
      const Buf content = signed_content(false, transcript_.current().bytes());
      if (!sign(c.key.get(), my_scheme_, content, cv.signature)) return fail(Alert::internal_error, "signing failed");
      m.clear();
      emit_certificate_verify(m, cv);
      send_message(Level::handshake, m);
    }
  }
  send_finished(c_hs_);
  res_master_ = ks_.derive(label::res_master, transcript_.current().bytes());
  ks_.wipe();
  c_hs_.wipe();
  s_hs_.wipe();
  announce(Level::application, Direction::write, "CLIENT_TRAFFIC_SECRET_0", c_ap_);
  c_ap_.wipe();
  s_ap_.wipe();
  set_read_level(Level::application);
  state_ = State::connected;
  return Status::success();
}

Status Engine::client_on_ticket(Bytes body) {
  auto t = parse_new_session_ticket(body);
  if (!t) return fail(Alert::decode_error, "malformed NewSessionTicket");
  if (t->lifetime > kMaxTicketLifetime) return fail(Alert::illegal_parameter, "ticket lifetime above 7 days");
  Session s;
  s.suite = suite_->id;
  s.ticket = t->ticket;
  const Secret psk = resumption_psk(*suite_, res_master_.bytes(), t->nonce);
  s.psk.assign(psk.bytes().begin(), psk.bytes().end());
  s.age_add = t->age_add;
  s.lifetime = t->lifetime;
  s.received_at_ms = client_->now_ms;
  s.alpn = alpn_;
  s.server_name = client_->server_name;
  if (const Extension* ed = find_ext(t->extensions, ext::early_data)) {
    Reader r(ed->data);
    if (!r.u32(s.max_early_data) || !r.empty()) return fail(Alert::decode_error, "malformed early_data in ticket");
    // RFC 9001 §4.6.1: QUIC signals 0-RTT with exactly 0xffffffff; anything
    // else is a PROTOCOL_VIOLATION, which the transport reports (the alert
    // is the engine's nearest word for it).
    if (client_->quic && s.max_early_data != 0xffffffffu) {
      return fail(Alert::illegal_parameter, "QUIC ticket with max_early_data_size other than 0xffffffff");
    }
  }
  if (s.lifetime > 0) sessions_.push_back(std::move(s));
  return Status::success();
}

// ---- server ----

Status Engine::server_on_client_hello(Bytes body, Bytes whole) {
  const ServerConfig& c = *server_;
  auto chr = parse_client_hello(body);
  if (!chr) return fail(Alert::decode_error, "malformed ClientHello");
  const ClientHello& ch = *chr;
  std::copy(ch.random.begin(), ch.random.end(), client_random_.begin());
  const Extension* sv = find_ext(ch.extensions, ext::supported_versions);
  if (sv == nullptr) return fail(Alert::protocol_version, "client does not offer TLS 1.3");
  auto versions = parse_u16_list(sv->data, 1);
  if (!versions) return fail(Alert::decode_error, "malformed supported_versions");
  if (!contains(*versions, kTls13)) return fail(Alert::protocol_version, "client does not offer TLS 1.3");
  if (ch.legacy_compression_methods != Buf{0}) return fail(Alert::illegal_parameter, "compression offered");
  if (c.quic && !ch.legacy_session_id.empty()) return fail(Alert::illegal_parameter, "legacy_session_id over QUIC");
  session_id_ = ch.legacy_session_id;

  // Cipher suite: the server's preference among the client's offer.
  std::uint16_t suite_id = 0;
  for (auto s : c.cipher_suites) {
    if (contains(ch.cipher_suites, s) && find_suite(s) != nullptr) {
      suite_id = s;
      break;
    }
  }
  if (suite_id == 0) return fail(Alert::handshake_failure, "no cipher suite in common");
  if (hrr_ && suite_id != hrr_suite_) return fail(Alert::illegal_parameter, "second ClientHello changes the suite");

  // §4.2.11: pre_shared_key must be the last extension.
  for (std::size_t i = 0; i + 1 < ch.extensions.size(); ++i) {
    if (ch.extensions[i].type == ext::pre_shared_key) return fail(Alert::illegal_parameter, "pre_shared_key not last");
  }
  std::vector<std::uint16_t> client_groups;
  if (const Extension* g = find_ext(ch.extensions, ext::supported_groups)) {
    auto l = parse_u16_list(g->data, 2);
    if (!l) return fail(Alert::decode_error, "malformed supported_groups");
    client_groups = std::move(*l);
  }
  const Extension* kse = find_ext(ch.extensions, ext::key_share);
  if (kse == nullptr || client_groups.empty()) return fail(Alert::missing_extension, "no key_share or supported_groups");
  auto shares = parse_key_share_ch(kse->data);
  if (!shares) {
    return fail(shares.error() == ParseError::malformed ? Alert::illegal_parameter : Alert::decode_error,
                "malformed key_share");
  }
  for (const auto& s : *shares) {
    if (!contains(client_groups, s.group)) return fail(Alert::illegal_parameter, "key share for a group not in supported_groups");
  }
  if (const Extension* sni = find_ext(ch.extensions, ext::server_name)) {
    auto name = parse_server_name(sni->data);
    if (!name) return fail(Alert::decode_error, "malformed server_name");
    sni_ = *name;
  }
  if (const Extension* a = find_ext(ch.extensions, ext::alpn)) {
    auto offered = parse_alpn(a->data);
    if (!offered) return fail(Alert::decode_error, "malformed ALPN");
    if (!c.alpn.empty()) {
      alpn_.clear();
      for (const auto& p : c.alpn) {
        if (contains(*offered, p)) {
          alpn_ = p;
          break;
        }
      }
      if (alpn_.empty()) return fail(Alert::no_application_protocol, "no application protocol in common");
    }
  }
  if (c.quic) {
    const Extension* tp = find_ext(ch.extensions, ext::quic_transport_parameters);
    if (tp == nullptr) return fail(Alert::missing_extension, "no quic_transport_parameters");
    peer_tp_ = tp->data;
  }
  bool psk_dhe = false;
  if (const Extension* m = find_ext(ch.extensions, ext::psk_key_exchange_modes)) {
    Reader r(m->data);
    Bytes modes;
    if (!r.vec(1, modes) || !r.empty() || modes.empty()) return fail(Alert::decode_error, "malformed psk_key_exchange_modes");
    psk_dhe = std::find(modes.begin(), modes.end(), kPskDheKe) != modes.end();
  }
  const Extension* pske = find_ext(ch.extensions, ext::pre_shared_key);
  if (pske != nullptr && find_ext(ch.extensions, ext::psk_key_exchange_modes) == nullptr) {
    return fail(Alert::missing_extension, "pre_shared_key without psk_key_exchange_modes");
  }
  if (!hrr_ && find_ext(ch.extensions, ext::early_data) != nullptr) early_offered_ = true;

  // Group: the server's preference among the client's shares; else its
  // preference among the client's groups, through HelloRetryRequest.
  const KeyShareEntry* chosen = nullptr;
  for (auto g : c.groups) {
    for (const auto& s : *shares) {
      if (s.group == g && group_supported(g)) {
        chosen = &s;
        break;
      }
    }
    if (chosen != nullptr) break;
  }
  if (hrr_ && (chosen == nullptr || chosen->group != hrr_group_)) {
    return fail(Alert::illegal_parameter, "second ClientHello lacks the requested key share");
  }
  if (hrr_ && !c.hrr_cookie.empty()) {
    const Extension* ck = find_ext(ch.extensions, ext::cookie);
    Reader r(ck != nullptr ? Bytes(ck->data) : Bytes{});
    Bytes echoed;
    if (ck == nullptr || !r.vec(2, echoed) || !r.empty() || !std::equal(echoed.begin(), echoed.end(),
                                                                        c.hrr_cookie.begin(), c.hrr_cookie.end())) {
      return fail(Alert::illegal_parameter, "second ClientHello does not echo the cookie");
    }
  }
  if (chosen == nullptr) {
    std::uint16_t g = 0;
    for (auto x : c.groups) {
      if (contains(client_groups, x) && group_supported(x)) {
        g = x;
        break;
      }
    }
    if (g == 0) return fail(Alert::handshake_failure, "no group in common");
    // HelloRetryRequest (§4.1.4); the transcript restarts from message_hash.
    suite_ = find_suite(suite_id);
    transcript_.set_suite(*suite_);
    transcript_.add(whole);
    transcript_.replace_with_message_hash();
    ServerHello hrr;
    hrr.random = kHelloRetryRandom;
    hrr.legacy_session_id_echo = session_id_;
    hrr.cipher_suite = suite_id;
    hrr.extensions.push_back({ext::key_share, make_u16(g)});
    if (!c.hrr_cookie.empty()) {
      Buf ck;
      Writer w(ck);
      w.vec(2, c.hrr_cookie);
      hrr.extensions.push_back({ext::cookie, ck});
    }
    hrr.extensions.push_back({ext::supported_versions, make_u16(kTls13)});
    Buf m;
    emit_server_hello(m, hrr);
    send_message(Level::initial, m);
    hrr_ = true;
    hrr_suite_ = suite_id;
    hrr_group_ = g;
    return Status::success();
  }

  // Signature algorithms are needed unless a PSK is used; checked below.
  const Suite* suite = find_suite(suite_id);
  std::optional<Secret> psk;
  std::uint32_t psk_index = 0;
  std::optional<TicketContents> ticket;
  if (pske != nullptr && psk_dhe && (!c.ticket_keys.empty() || c.open_ticket)) {
    auto offered = parse_pre_shared_key_ch(pske->data);
    if (!offered) return fail(Alert::decode_error, "malformed pre_shared_key");
    for (std::uint32_t i = 0; i < offered->identities.size(); ++i) {
      auto st = c.open_ticket ? c.open_ticket(offered->identities[i].identity)
                              : open_ticket(c.ticket_keys, offered->identities[i].identity);
      if (!st) continue;
      const Suite* ts = find_suite(st->suite);
      if (ts == nullptr || ts->hash_len != suite->hash_len || st->psk.bytes().size() != ts->hash_len) continue;
      if (c.now_ms < st->issued_ms || c.now_ms - st->issued_ms > std::uint64_t{st->lifetime} * 1000) continue;
      // The binder covers the ClientHello up to the binders (§4.2.11.2).
      const Bytes truncated = whole.first(whole.size() - offered->binders_len);
      KeySchedule eks;
      eks.start(*suite, st->psk.bytes());
      const Secret bk = eks.binder_key(true);
      const Secret expect = finished_verify_data(*suite, bk.bytes(), transcript_.current_with(*suite, truncated).bytes());
      if (!equal_ct(expect.bytes(), offered->binders[i])) return fail(Alert::decrypt_error, "PSK binder does not verify");
      // Keep the ticket's suite when the client offers it, so 0-RTT can be accepted.
      if (st->suite != suite_id && contains(ch.cipher_suites, st->suite) && !hrr_) {
        suite_id = st->suite;
        suite = ts;
      }
      psk = st->psk;
      psk_index = i;
      ticket = std::move(st);
      resumed_ = true;
      // 0-RTT (§4.2.10): first identity, same suite and ALPN, fresh, first use.
      if (early_offered_ && i == 0 && !hrr_ && c.max_early_data > 0 && ticket->max_early_data > 0 &&
          ticket->suite == suite_id && ticket->alpn == alpn_ && c.replay != nullptr) {
        const std::uint32_t client_age = offered->identities[i].obfuscated_ticket_age - ticket->age_add;
        const std::int64_t server_age = static_cast<std::int64_t>(c.now_ms - ticket->issued_ms);
        const std::int64_t skew = server_age - static_cast<std::int64_t>(client_age);
        if (skew <= kMaxTicketAgeSkewMs && skew >= -kMaxTicketAgeSkewMs &&
            c.replay->first_use(offered->identities[i].identity)) {
          early_accepted_ = true;
          max_early_data_ = c.max_early_data;
        }
      }
      break;
    }
  }
  if (!resumed_ && find_ext(ch.extensions, ext::signature_algorithms) == nullptr) {
    return fail(Alert::missing_extension, "no signature_algorithms");
  }
  suite_ = suite;
  return server_send_flight(ch, whole, *chosen, std::move(psk), psk_index);
}

Status Engine::server_send_flight(const ClientHello& ch, Bytes ch_whole, const KeyShareEntry& share,
                                  std::optional<Secret> psk, std::uint32_t psk_index) {
  const ServerConfig& c = *server_;
  auto mine = keygen(share.group);
  if (!mine) return fail(Alert::internal_error, "key generation failed");
  auto ecdhe = mine->derive(share.key_exchange);
  if (!ecdhe) return fail(Alert::illegal_parameter, "invalid client key share");
  group_ = share.group;

  transcript_.set_suite(*suite_);
  transcript_.add(ch_whole);
  ks_.start(*suite_, psk ? psk->bytes() : Bytes{});
  if (early_accepted_) {
    const Secret ce = ks_.derive(label::c_e_traffic, transcript_.current().bytes());
    announce(Level::early, Direction::read, "CLIENT_EARLY_TRAFFIC_SECRET", ce);
  }

  ServerHello sh;
  random(sh.random);
  sh.legacy_session_id_echo = session_id_;
  sh.cipher_suite = suite_->id;
  if (psk) sh.extensions.push_back({ext::pre_shared_key, make_u16(static_cast<std::uint16_t>(psk_index))});
  sh.extensions.push_back({ext::key_share, make_key_share_sh({share.group, mine->public_bytes()})});
  sh.extensions.push_back({ext::supported_versions, make_u16(kTls13)});
  Buf m;
  emit_server_hello(m, sh);
  send_message(Level::initial, m);

  ks_.to_handshake(ecdhe->bytes());
  {
    const Secret th = transcript_.current();
    c_hs_ = ks_.derive(label::c_hs_traffic, th.bytes());
    s_hs_ = ks_.derive(label::s_hs_traffic, th.bytes());
  }
  announce(Level::handshake, Direction::write, "SERVER_HANDSHAKE_TRAFFIC_SECRET", s_hs_);
  announce(Level::handshake, Direction::read, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", c_hs_);

  EncryptedExtensions ee;
  if (!sni_.empty()) ee.extensions.push_back({ext::server_name, {}});
  if (!alpn_.empty()) ee.extensions.push_back({ext::alpn, make_alpn({alpn_})});
  if (early_accepted_) ee.extensions.push_back({ext::early_data, {}});
  if (c.quic) ee.extensions.push_back({ext::quic_transport_parameters, c.quic_transport_parameters});
  for (const auto& x : c.ee_extra_extensions) {
    if (find_ext(ee.extensions, x.type) == nullptr) ee.extensions.push_back(x);
  }
  if (!c.ee_extension_order.empty()) order_extensions(ee.extensions, c.ee_extension_order);
  m.clear();
  emit_encrypted_extensions(m, ee);
  send_message(Level::handshake, m);

  if (!resumed_) {
    if (c.request_client_cert) {
      CertificateRequest cr;
      const std::uint16_t schemes[] = {sigscheme::ecdsa_secp256r1_sha256, sigscheme::rsa_pss_rsae_sha256,
                                       sigscheme::rsa_pss_rsae_sha384, sigscheme::rsa_pss_rsae_sha512,
                                       sigscheme::ed25519};
      cr.extensions.push_back({ext::signature_algorithms, make_u16_list(2, schemes)});
      m.clear();
      emit_certificate_request(m, cr);
      send_message(Level::handshake, m);
      cert_requested_ = true;
    }
    std::vector<std::uint16_t> client_schemes;
    if (const Extension* sa = find_ext(ch.extensions, ext::signature_algorithms)) {
      auto l = parse_u16_list(sa->data, 2);
      if (!l) return fail(Alert::decode_error, "malformed signature_algorithms");
      client_schemes = std::move(*l);
    }
    my_scheme_ = 0;
    for (auto s : schemes_for_key(c.key.get())) {
      if (contains(client_schemes, s)) {
        my_scheme_ = s;
        break;
      }
    }
    if (my_scheme_ == 0) return fail(Alert::handshake_failure, "no signature scheme in common");
    if (c.cert_chain.empty()) return fail(Alert::internal_error, "no server certificate");
    Certificate cert;
    for (const auto& d : c.cert_chain) cert.entries.push_back({d, {}});
    m.clear();
    emit_certificate(m, cert);
    send_message(Level::handshake, m);

    CertificateVerify cv;
    cv.scheme = my_scheme_;
    const Buf content = signed_content(true, transcript_.current().bytes());
    const bool ok = c.sign ? c.sign(my_scheme_, content, cv.signature) : sign(c.key.get(), my_scheme_, content, cv.signature);
    if (!ok) return fail(Alert::internal_error, "signing failed");
    m.clear();
    emit_certificate_verify(m, cv);
    send_message(Level::handshake, m);
  }
  send_finished(s_hs_);
  derive_application_secrets();
  announce(Level::application, Direction::write, "SERVER_TRAFFIC_SECRET_0", s_ap_);
  s_ap_.wipe();
  if (early_accepted_ && !c.quic) {
    set_read_level(Level::early);
    state_ = State::wait_eoed;
  } else {
    set_read_level(Level::handshake);
    state_ = cert_requested_ ? State::wait_flight2 : State::wait_client_finished;
  }
  return Status::success();
}

Status Engine::server_on_eoed(Bytes body, Bytes whole) {
  if (!body.empty()) return fail(Alert::decode_error, "EndOfEarlyData with a body");
  transcript_.add(whole);
  set_read_level(Level::handshake);
  state_ = cert_requested_ ? State::wait_flight2 : State::wait_client_finished;
  return Status::success();
}

Status Engine::server_on_client_certificate(Bytes body, Bytes whole) {
  const ServerConfig& c = *server_;
  auto cert = parse_certificate(body);
  if (!cert) return fail(Alert::decode_error, "malformed Certificate");
  if (!cert->context.empty()) return fail(Alert::illegal_parameter, "client Certificate context mismatch");
  transcript_.add(whole);
  if (cert->entries.empty()) {
    if (c.require_client_cert) return fail(Alert::certificate_required, "client sent no certificate");
    state_ = State::wait_client_finished;
    return Status::success();
  }
  peer_chain_.clear();
  for (auto& e : cert->entries) peer_chain_.push_back(std::move(e.cert_data));
  if (c.client_trust == nullptr) return fail(Alert::internal_error, "no client trust store");
  const Status st = verify_chain(*c.client_trust, peer_chain_, "", false, c.verify_time, peer_key_, nullptr);
  if (!st) return fail(st.alert, st.why);
  state_ = State::wait_client_cv;
  return Status::success();
}

Status Engine::server_on_client_cv(Bytes body, Bytes whole) {
  auto cv = parse_certificate_verify(body);
  if (!cv) return fail(Alert::decode_error, "malformed CertificateVerify");
  if (!key_fits_scheme(peer_key_.get(), cv->scheme)) return fail(Alert::illegal_parameter, "scheme does not fit the key");
  const Buf content = signed_content(false, transcript_.current().bytes());
  if (!verify(peer_key_.get(), cv->scheme, content, cv->signature)) {
    return fail(Alert::decrypt_error, "client CertificateVerify does not verify");
  }
  peer_scheme_ = cv->scheme;
  transcript_.add(whole);
  state_ = State::wait_client_finished;
  return Status::success();
}

Status Engine::server_on_client_finished(Bytes body, Bytes whole) {
  if (const Status st = check_finished(body, c_hs_, "client Finished does not verify"); !st) return st;
  transcript_.add(whole);
  res_master_ = ks_.derive(label::res_master, transcript_.current().bytes());
  ks_.wipe();
  c_hs_.wipe();
  s_hs_.wipe();
  announce(Level::application, Direction::read, "CLIENT_TRAFFIC_SECRET_0", c_ap_);
  c_ap_.wipe();
  set_read_level(Level::application);
  state_ = State::connected;
  if (!server_->ticket_keys.empty()) return send_ticket();
  return Status::success();
}

Status Engine::send_ticket() {
  const ServerConfig& c = *server_;
  if (server_ == nullptr || state_ != State::connected || c.ticket_keys.empty()) {
    return Status::fail(Alert::internal_error, "cannot issue a ticket now");
  }
  NewSessionTicket t;
  t.lifetime = std::min(c.ticket_lifetime, kMaxTicketLifetime);
  std::array<std::uint8_t, 4> aa;
  random(aa);
  t.age_add = load_be32(aa, 0);
  Writer nw(t.nonce);
  nw.u32(0);
  nw.u32(tickets_sent_++);
  TicketContents st;
  st.suite = suite_->id;
  st.issued_ms = c.now_ms;
  st.age_add = t.age_add;
  st.lifetime = t.lifetime;
  st.max_early_data = c.quic ? (c.max_early_data > 0 ? 0xffffffffu : 0) : c.max_early_data;
  st.alpn = alpn_;
  st.sni = sni_;
  st.psk = resumption_psk(*suite_, res_master_.bytes(), t.nonce);
  std::array<std::uint8_t, kIvLen> iv;
  random(iv);
  t.ticket = seal_ticket(c.ticket_keys.front(), st, iv);
  if (t.ticket.empty()) return fail(Alert::internal_error, "ticket encryption failed");
  if (st.max_early_data > 0) {
    Buf ed;
    Writer w(ed);
    w.u32(st.max_early_data);
    t.extensions.push_back({ext::early_data, ed});
  }
  Buf m;
  emit_new_session_ticket(m, t);
  out_[idx(Level::application)].insert(out_[idx(Level::application)].end(), m.begin(), m.end());
  return Status::success();
}

}  // namespace ustack::tls
