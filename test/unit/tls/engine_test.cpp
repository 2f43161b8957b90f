// The handshake engine: RFC 8448 §3 reproduced byte for byte with injected
// randomness, keys and signature; client <-> server in memory over every
// suite, group and signature type; HelloRetryRequest, ALPN, SNI, client
// certificates, resumption and 0-RTT; and the alert for each failure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/rfc8448.hpp"
#include "test/unit/tls/test_pki.hpp"
#include "tls/engine.hpp"
#include "tls/record.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {

struct RecordingSink : SecretSink {
  std::map<std::pair<Level, Direction>, Buf> secrets;
  std::vector<std::string> keylog;
  int key_updates = 0;
  void on_secret(Level l, Direction d, const Suite&, Bytes s) override { secrets[{l, d}] = Buf(s.begin(), s.end()); }
  void on_keylog(std::string_view label, Bytes, Bytes) override { keylog.emplace_back(label); }
  void on_key_update(bool) override { ++key_updates; }
};

Hooks fixed_hooks(const char* random_hex, const char* x25519_private_hex) {
  Hooks h;
  const Buf r = hex(random_hex);
  h.random = [r](MutBytes out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = r[i % r.size()];
  };
  const Buf k = hex(x25519_private_hex);
  h.keygen = [k](std::uint16_t g) -> std::optional<KeyShare> {
    if (g != group::x25519) return KeyShare::generate(g);
    return KeyShare::from_x25519_private(k);
  };
  return h;
}

std::string H(const Buf& b) { return to_hex(b); }

// Moves handshake bytes between two engines until neither has output.
Status pump(Engine& a, Engine& b) {
  for (int round = 0; round < 10; ++round) {
    bool moved = false;
    for (Engine* from : {&a, &b}) {
      Engine* to = from == &a ? &b : &a;
      for (std::size_t l = 0; l < kLevels; ++l) {
        Buf out = from->take_output(static_cast<Level>(l));
        if (out.empty()) continue;
        moved = true;
        const Status st = to->receive(static_cast<Level>(l), out);
        if (!st) return st;
      }
    }
    if (!moved) break;
  }
  return Status::success();
}

}  // namespace

TEST_CASE("RFC 8448 §3 simple 1-RTT handshake, byte for byte", "[tls][engine][rfc8448]") {
  ClientConfig cc;
  cc.server_name = "server";
  cc.cipher_suites = {0x1301, 0x1303, 0x1302};
  cc.groups = {0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104};
  cc.key_share_groups = {group::x25519};
  cc.signature_schemes = {0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401,
                          0x0501, 0x0601, 0x0201, 0x0402, 0x0502, 0x0602, 0x0202};
  cc.extra_extensions = {{ext::renegotiation_info, {0}}, {ext::session_ticket, {}}, {ext::record_size_limit, {0x40, 0x01}}};
  cc.extension_order = {ext::server_name, ext::renegotiation_info, ext::supported_groups, ext::session_ticket,
                        ext::key_share, ext::supported_versions, ext::signature_algorithms,
                        ext::psk_key_exchange_modes, ext::record_size_limit};
  // The RFC's certificate is self-signed and expired by now: only its key is used,
  // and the client really verifies the RFC's RSA-PSS signature with it.
  cc.verify = [](const std::vector<Buf>& chain, PKey& leaf) {
    leaf = leaf_public_key(chain[0]);
    return Status::success();
  };

  const Buf cert_msg = hex(rfc8448::certificate);
  const Buf cert_der(cert_msg.begin() + 4 + 1 + 3 + 3, cert_msg.end() - 2);
  const Buf cv_msg = hex(rfc8448::certificate_verify);
  const Buf signature(cv_msg.begin() + 8, cv_msg.end());
  ServerConfig sc;
  sc.cert_chain = {cert_der};
  sc.key = leaf_public_key(cert_der);
  REQUIRE(sc.key);
  std::uint16_t signed_scheme = 0;
  sc.sign = [&](std::uint16_t scheme, Bytes, Buf& sig) {
    signed_scheme = scheme;
    sig = signature;
    return true;
  };
  sc.ee_extra_extensions = {{ext::supported_groups, hex("0012001d00170018001901000101010201030104")},
                            {ext::record_size_limit, {0x40, 0x01}}};
  sc.ee_extension_order = {ext::supported_groups, ext::record_size_limit, ext::server_name};

  RecordingSink cs, ss;
  Engine client(cc, cs, fixed_hooks(rfc8448::client_random, rfc8448::client_x25519_private));
  Engine server(sc, ss, fixed_hooks(rfc8448::server_random, rfc8448::server_x25519_private));
  REQUIRE(client.start().ok);
  REQUIRE(server.start().ok);

  const Buf ch = client.take_output(Level::initial);
  CHECK(H(ch) == H(hex(rfc8448::client_hello)));
  REQUIRE(server.receive(Level::initial, ch).ok);
  const Buf sh = server.take_output(Level::initial);
  CHECK(H(sh) == H(hex(rfc8448::server_hello)));
  const Buf flight = server.take_output(Level::handshake);
  Buf expect_flight;
  for (auto p : {rfc8448::encrypted_extensions, rfc8448::certificate, rfc8448::certificate_verify, rfc8448::server_finished}) {
    const Buf b = hex(p);
    expect_flight.insert(expect_flight.end(), b.begin(), b.end());
  }
  CHECK(H(flight) == H(expect_flight));
  CHECK(signed_scheme == sigscheme::rsa_pss_rsae_sha256);

  REQUIRE(client.receive(Level::initial, sh).ok);
  // Fragmented delivery: the engine reassembles messages across calls.
  REQUIRE(client.receive(Level::handshake, Bytes(flight).first(100)).ok);
  REQUIRE(client.receive(Level::handshake, Bytes(flight).subspan(100)).ok);
  const Buf cfin = client.take_output(Level::handshake);
  CHECK(H(cfin) == H(hex(rfc8448::client_finished)));
  REQUIRE(client.handshake_complete());
  REQUIRE(server.receive(Level::handshake, cfin).ok);
  REQUIRE(server.handshake_complete());

  using K = std::pair<Level, Direction>;
  CHECK(H(cs.secrets[K{Level::handshake, Direction::write}]) == H(hex(rfc8448::c_hs_traffic)));
  CHECK(H(cs.secrets[K{Level::handshake, Direction::read}]) == H(hex(rfc8448::s_hs_traffic)));
  CHECK(H(cs.secrets[K{Level::application, Direction::write}]) == H(hex(rfc8448::c_ap_traffic)));
  CHECK(H(cs.secrets[K{Level::application, Direction::read}]) == H(hex(rfc8448::s_ap_traffic)));
  CHECK(ss.secrets[K{Level::handshake, Direction::read}] == hex(rfc8448::c_hs_traffic));
  CHECK(ss.secrets[K{Level::application, Direction::write}] == hex(rfc8448::s_ap_traffic));
  CHECK(ss.secrets[K{Level::application, Direction::read}] == hex(rfc8448::c_ap_traffic));
  CHECK(client.suite()->id == TLS_AES_128_GCM_SHA256);
  CHECK(client.group() == group::x25519);
  CHECK(server.server_name() == "server");
  CHECK(cs.keylog == std::vector<std::string>{"SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                               "EXPORTER_SECRET", "SERVER_TRAFFIC_SECRET_0", "CLIENT_TRAFFIC_SECRET_0"});
}

namespace {

// The §3 client's configuration: RFC 8448's NSS client offers the same
// suites, groups and schemes in every trace.
ClientConfig rfc8448_client() {
  ClientConfig cc;
  cc.server_name = "server";
  cc.cipher_suites = {0x1301, 0x1303, 0x1302};
  cc.groups = {0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104};
  cc.key_share_groups = {group::x25519};
  cc.signature_schemes = {0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401,
                          0x0501, 0x0601, 0x0201, 0x0402, 0x0502, 0x0602, 0x0202};
  cc.extra_extensions = {{ext::renegotiation_info, {0}}, {ext::record_size_limit, {0x40, 0x01}}};
  cc.pad_client_hello = true;
  cc.verify = [](const std::vector<Buf>& chain, PKey& leaf) {
    leaf = leaf_public_key(chain[0]);
    return Status::success();
  };
  return cc;
}

// The trace's random bytes and private keys; a group without a key given
// here cannot be used (the trace never uses it).
Hooks rfc8448_hooks(const char* random_hex, const char* x25519_hex, const char* p256_hex) {
  Hooks h;
  const Buf r = hex(random_hex);
  h.random = [r](MutBytes out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = r[i % r.size()];
  };
  const Buf k25519 = x25519_hex != nullptr ? hex(x25519_hex) : Buf{};
  const Buf k256 = p256_hex != nullptr ? hex(p256_hex) : Buf{};
  h.keygen = [k25519, k256](std::uint16_t g) -> std::optional<KeyShare> {
    if (g == group::x25519 && !k25519.empty()) return KeyShare::from_x25519_private(k25519);
    if (g == group::secp256r1 && !k256.empty()) return KeyShare::from_p256_private(k256);
    return std::nullopt;
  };
  return h;
}

Buf concat(std::initializer_list<Bytes> parts) {
  Buf out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Seals `plain` as the first record (sequence 0) under a fresh key for `secret`.
Buf seal1(const Buf& secret, ContentType t, Bytes plain) {
  RecordProtector p;
  REQUIRE(p.init(*find_suite(TLS_AES_128_GCM_SHA256), secret, true));
  Buf out;
  REQUIRE(p.seal(t, plain, 0, out));
  return out;
}

struct FixedReplay : ReplayGuard {
  int calls = 0;
  bool first_use(Bytes) override { return ++calls == 1; }
};

}  // namespace

TEST_CASE("RFC 8448 §4 resumed 0-RTT handshake, byte for byte", "[tls][engine][rfc8448]") {
  namespace R = rfc8448::resumed;
  using K = std::pair<Level, Direction>;
  ClientConfig cc = rfc8448_client();
  cc.extension_order = {ext::server_name, ext::renegotiation_info, ext::supported_groups, ext::key_share,
                        ext::early_data, ext::supported_versions, ext::signature_algorithms,
                        ext::psk_key_exchange_modes, ext::record_size_limit, ext::padding};
  // §3's NewSessionTicket: lifetime 30 s, age_add 0xfad6aac5, nonce 0000,
  // max_early_data 1024; the PSK is §3's resumption secret. The client
  // resumes 6 ms later (obfuscated_ticket_age 0xfad6aacb).
  Session sess;
  sess.suite = TLS_AES_128_GCM_SHA256;
  sess.ticket = hex(R::ticket);
  sess.psk = hex(rfc8448::resumption_psk);
  sess.age_add = 0xfad6aac5;
  sess.lifetime = 30;
  sess.max_early_data = 1024;
  sess.received_at_ms = 50000;
  sess.server_name = "server";
  cc.session = sess;
  cc.now_ms = 50006;
  cc.send_early_data = true;

  ServerConfig sc;
  sc.max_early_data = 1024;
  FixedReplay replay;
  sc.replay = &replay;
  sc.now_ms = 90006;
  int tickets_opened = 0;
  sc.open_ticket = [&](Bytes t) -> std::optional<TicketContents> {
    ++tickets_opened;
    if (Buf(t.begin(), t.end()) != hex(R::ticket)) return std::nullopt;
    TicketContents c;
    c.suite = TLS_AES_128_GCM_SHA256;
    c.issued_ms = 90000;
    c.age_add = 0xfad6aac5;
    c.lifetime = 30;
    c.max_early_data = 1024;
    c.sni = "server";
    c.psk = Secret(hex(rfc8448::resumption_psk));
    return c;
  };
  sc.ee_extra_extensions = {{ext::supported_groups, hex("0012001d00170018001901000101010201030104")},
                            {ext::record_size_limit, {0x40, 0x01}}};
  sc.ee_extension_order = {ext::supported_groups, ext::record_size_limit, ext::server_name, ext::early_data};

  RecordingSink cs, ss;
  Engine client(cc, cs, rfc8448_hooks(R::client_random, R::client_x25519_private, nullptr));
  Engine server(sc, ss, rfc8448_hooks(R::server_random, R::server_x25519_private, nullptr));
  REQUIRE(client.start().ok);
  REQUIRE(server.start().ok);

  // The ClientHello, padded to 512 bytes (RFC 7685) with the binder last.
  const Buf ch = client.take_output(Level::initial);
  CHECK(H(ch) == H(hex(R::client_hello)));
  // 0-RTT data under client_early_traffic_secret, announced with the hello.
  REQUIRE(cs.secrets.count(K{Level::early, Direction::write}) == 1);
  RecordProtector early;
  REQUIRE(early.init(*find_suite(TLS_AES_128_GCM_SHA256), cs.secrets[K{Level::early, Direction::write}], true));
  Buf rec;
  REQUIRE(early.seal(ContentType::application_data, hex(R::early_data), 0, rec));
  CHECK(H(rec) == H(hex(R::early_data_record)));

  REQUIRE(server.receive(Level::initial, ch).ok);
  CHECK(tickets_opened == 1);
  CHECK(server.early_data_accepted());
  CHECK(ss.secrets[K{Level::early, Direction::read}] == cs.secrets[K{Level::early, Direction::write}]);
  const Buf sh = server.take_output(Level::initial);
  CHECK(H(sh) == H(hex(R::server_hello)));
  const Buf flight = server.take_output(Level::handshake);
  CHECK(H(flight) == H(concat({hex(R::encrypted_extensions), hex(R::server_finished)})));
  CHECK(H(seal1(ss.secrets[K{Level::handshake, Direction::write}], ContentType::handshake, flight)) ==
        H(hex(R::server_flight_record)));
  CHECK(server.read_level() == Level::early);  // waiting for EndOfEarlyData

  REQUIRE(client.receive(Level::initial, sh).ok);
  REQUIRE(client.receive(Level::handshake, flight).ok);
  CHECK(client.resumed());
  CHECK(client.early_data_accepted());
  REQUIRE(client.handshake_complete());
  // EndOfEarlyData is the second record under the early key.
  const Buf eoed = client.take_output(Level::early);
  CHECK(H(eoed) == "05000000");
  rec.clear();
  REQUIRE(early.seal(ContentType::handshake, eoed, 0, rec));
  CHECK(H(rec) == H(hex(R::end_of_early_data_record)));
  const Buf cfin = client.take_output(Level::handshake);
  CHECK(H(seal1(cs.secrets[K{Level::handshake, Direction::write}], ContentType::handshake, cfin)) ==
        H(hex(R::client_finished_record)));

  REQUIRE(server.receive(Level::early, eoed).ok);
  REQUIRE(server.receive(Level::handshake, cfin).ok);
  REQUIRE(server.handshake_complete());
  CHECK(server.resumed());
  const Buf app = hex(rfc8448::application_data);
  CHECK(H(seal1(cs.secrets[K{Level::application, Direction::write}], ContentType::application_data, app)) ==
        H(hex(R::client_application_record)));
  CHECK(H(seal1(ss.secrets[K{Level::application, Direction::write}], ContentType::application_data, app)) ==
        H(hex(R::server_application_record)));
  CHECK(ss.secrets[K{Level::application, Direction::read}] == cs.secrets[K{Level::application, Direction::write}]);
}

TEST_CASE("RFC 8448 §5 HelloRetryRequest, byte for byte", "[tls][engine][rfc8448]") {
  namespace R = rfc8448::hrr;
  using K = std::pair<Level, Direction>;
  ClientConfig cc = rfc8448_client();
  cc.groups = {group::x25519, group::secp256r1, 0x0018};
  cc.extension_order = {ext::server_name, ext::renegotiation_info, ext::supported_groups, ext::key_share,
                        ext::supported_versions, ext::signature_algorithms, ext::cookie,
                        ext::psk_key_exchange_modes, ext::record_size_limit, ext::padding};

  const Buf cert_msg = hex(rfc8448::certificate);
  const Buf cert_der(cert_msg.begin() + 4 + 1 + 3 + 3, cert_msg.end() - 2);
  const Buf cv_msg = hex(R::certificate_verify);
  const Buf signature(cv_msg.begin() + 8, cv_msg.end());
  ServerConfig sc;
  sc.groups = {group::secp256r1};  // the server wants P-256; the client's share is X25519
  sc.cert_chain = {cert_der};
  sc.key = leaf_public_key(cert_der);
  sc.sign = [&](std::uint16_t, Bytes, Buf& sig) {
    sig = signature;
    return true;
  };
  sc.hrr_cookie = hex(R::cookie);
  sc.ee_extra_extensions = {{ext::supported_groups, hex("000600170018001d")}, {ext::record_size_limit, {0x40, 0x01}}};
  sc.ee_extension_order = {ext::supported_groups, ext::record_size_limit, ext::server_name};

  RecordingSink cs, ss;
  Engine client(cc, cs, rfc8448_hooks(R::client_random, R::client_x25519_private, R::client_p256_private));
  Engine server(sc, ss, rfc8448_hooks(R::server_random, nullptr, R::server_p256_private));
  REQUIRE(client.start().ok);
  REQUIRE(server.start().ok);

  const Buf ch1 = client.take_output(Level::initial);
  CHECK(H(ch1) == H(hex(R::client_hello_1)));  // 180 bytes: not padded
  REQUIRE(server.receive(Level::initial, ch1).ok);
  const Buf hrr = server.take_output(Level::initial);
  CHECK(H(hrr) == H(hex(R::hello_retry_request)));
  CHECK_FALSE(server.has_output());
  REQUIRE(client.receive(Level::initial, hrr).ok);
  const Buf ch2 = client.take_output(Level::initial);
  CHECK(H(ch2) == H(hex(R::client_hello_2)));  // P-256 share, the cookie, padded to 512

  SECTION("the handshake completes with the RFC's bytes") {
    REQUIRE(server.receive(Level::initial, ch2).ok);
    const Buf sh = server.take_output(Level::initial);
    CHECK(H(sh) == H(hex(R::server_hello)));
    const Buf flight = server.take_output(Level::handshake);
    CHECK(H(flight) == H(concat({hex(R::encrypted_extensions), hex(rfc8448::certificate), cv_msg,
                                 hex(R::server_finished)})));
    CHECK(H(seal1(ss.secrets[K{Level::handshake, Direction::write}], ContentType::handshake, flight)) ==
          H(hex(R::server_flight_record)));
    REQUIRE(client.receive(Level::initial, sh).ok);
    REQUIRE(client.receive(Level::handshake, flight).ok);  // really verifies the RFC's RSA-PSS signature
    REQUIRE(client.handshake_complete());
    CHECK(client.did_hrr());
    CHECK(client.group() == group::secp256r1);
    const Buf cfin = client.take_output(Level::handshake);
    CHECK(H(seal1(cs.secrets[K{Level::handshake, Direction::write}], ContentType::handshake, cfin)) ==
          H(hex(R::client_finished_record)));
    REQUIRE(server.receive(Level::handshake, cfin).ok);
    CHECK(server.handshake_complete());
    CHECK(server.did_hrr());
  }
  SECTION("a second ClientHello without the cookie: illegal_parameter") {
    // Drop the cookie extension (type 0x002c, 0x74 bytes of body) and fix
    // up the lengths; the server must refuse it.
    Buf bad = ch2;
    const Buf needle = hex("002c0074");
    auto at = std::search(bad.begin(), bad.end(), needle.begin(), needle.end());
    REQUIRE(at != bad.end());
    bad.erase(at, at + 4 + 0x74);
    const std::size_t body = bad.size() - 4;
    bad[1] = static_cast<std::uint8_t>(body >> 16);
    bad[2] = static_cast<std::uint8_t>(body >> 8);
    bad[3] = static_cast<std::uint8_t>(body);
    const std::size_t ext_len_at = 4 + 2 + 32 + 1 + 2 + 6 + 2;
    const std::size_t ext_len = bad.size() - ext_len_at - 2;
    bad[ext_len_at] = static_cast<std::uint8_t>(ext_len >> 8);
    bad[ext_len_at + 1] = static_cast<std::uint8_t>(ext_len);
    CHECK(server.receive(Level::initial, bad).alert == Alert::illegal_parameter);
  }
}

namespace {

struct Fixture {
  ClientConfig cc;
  ServerConfig sc;
  RecordingSink cs, ss;
  Fixture(int leaf = 1) {
    TestPki& pki = TestPki::get();
    cc.server_name = "localhost";
    cc.trust = &pki.trust;
    sc.cert_chain = {pki.leaf[leaf].der};
    sc.key = pki.leaf[leaf].key;
  }
  // Runs a whole handshake; returns the status of the first failure.
  Status run(Engine& c, Engine& s) {
    if (auto st = c.start(); !st) return st;
    if (auto st = s.start(); !st) return st;
    return pump(c, s);
  }
};

}  // namespace

TEST_CASE("in-memory handshakes: every suite x group x signature type", "[tls][engine]") {
  for (int leaf = 0; leaf < 3; ++leaf) {
    for (auto suite : {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256}) {
      for (auto g : {group::x25519, group::secp256r1}) {
        Fixture f(leaf);
        f.cc.cipher_suites = {suite};
        f.cc.key_share_groups = {g};
        Engine c(f.cc, f.cs), s(f.sc, f.ss);
        const Status st = f.run(c, s);
        INFO("leaf " << leaf << " suite " << suite << " group " << g << ": " << st.why);
        REQUIRE(st.ok);
        REQUIRE(c.handshake_complete());
        REQUIRE(s.handshake_complete());
        CHECK(c.suite()->id == suite);
        CHECK(s.group() == g);
        CHECK_FALSE(c.did_hrr());
        const std::uint16_t expect_scheme[] = {sigscheme::rsa_pss_rsae_sha256, sigscheme::ecdsa_secp256r1_sha256,
                                               sigscheme::ed25519};
        CHECK(c.signature_scheme() == expect_scheme[leaf]);
        using K = std::pair<Level, Direction>;
        CHECK(f.cs.secrets[K{Level::application, Direction::write}] == f.ss.secrets[K{Level::application, Direction::read}]);
        CHECK(f.cs.secrets[K{Level::application, Direction::read}] == f.ss.secrets[K{Level::application, Direction::write}]);
        CHECK(f.cs.secrets[K{Level::application, Direction::read}].size() == find_suite(suite)->hash_len);
      }
    }
  }
}

TEST_CASE("HelloRetryRequest when the client's share is not the server's group", "[tls][engine]") {
  Fixture f;
  f.cc.key_share_groups = {group::x25519};
  f.sc.groups = {group::secp256r1};
  f.cc.cipher_suites = {TLS_AES_256_GCM_SHA384};
  Engine c(f.cc, f.cs), s(f.sc, f.ss);
  REQUIRE(f.run(c, s).ok);
  CHECK(c.handshake_complete());
  CHECK(s.handshake_complete());
  CHECK(c.did_hrr());
  CHECK(s.did_hrr());
  CHECK(c.group() == group::secp256r1);
}

TEST_CASE("ALPN and SNI", "[tls][engine]") {
  Fixture f;
  f.cc.alpn = {"h2", "http/1.1"};
  f.sc.alpn = {"http/1.1", "h2"};
  Engine c(f.cc, f.cs), s(f.sc, f.ss);
  REQUIRE(f.run(c, s).ok);
  CHECK(c.alpn() == "http/1.1");
  CHECK(s.alpn() == "http/1.1");
  CHECK(s.server_name() == "localhost");

  Fixture g;
  g.cc.alpn = {"h3"};
  g.sc.alpn = {"h2"};
  Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
  const Status st = g.run(c2, s2);
  CHECK_FALSE(st.ok);
  CHECK(s2.failure().alert == Alert::no_application_protocol);

  // An IP address is verified against the certificate but never sent as SNI.
  Fixture h;
  h.cc.server_name = "127.0.0.1";
  Engine c3(h.cc, h.cs), s3(h.sc, h.ss);
  REQUIRE(h.run(c3, s3).ok);
  CHECK(s3.server_name().empty());
}

TEST_CASE("certificate failures carry the RFC 8446 §6.2 alerts", "[tls][engine]") {
  SECTION("wrong host name: bad_certificate") {
    Fixture f;
    f.cc.server_name = "example.com";
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::bad_certificate);
    CHECK(c.state() == Engine::State::failed);
  }
  SECTION("untrusted issuer: unknown_ca") {
    Fixture f;
    TrustStore empty;
    f.cc.trust = &empty;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::unknown_ca);
  }
  SECTION("expired: certificate_expired") {
    Fixture f;
    f.cc.verify_time = 946684800;  // 2000-01-01
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::certificate_expired);
  }
  SECTION("a signature that does not verify: decrypt_error") {
    Fixture f;
    f.sc.sign = [&](std::uint16_t scheme, Bytes content, Buf& sig) {
      Buf other(content.begin(), content.end());
      other.back() ^= 1;
      return sign(f.sc.key.get(), scheme, other, sig);
    };
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::decrypt_error);
  }
  SECTION("client offers no scheme for the server's key: handshake_failure") {
    Fixture f(2);  // Ed25519
    f.cc.signature_schemes = {sigscheme::ecdsa_secp256r1_sha256};
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::handshake_failure);
  }
}

TEST_CASE("negotiation failures and protocol violations", "[tls][engine]") {
  SECTION("no common suite: handshake_failure") {
    Fixture f;
    f.cc.cipher_suites = {TLS_CHACHA20_POLY1305_SHA256};
    f.sc.cipher_suites = {TLS_AES_128_GCM_SHA256};
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::handshake_failure);
  }
  SECTION("no common group: handshake_failure") {
    Fixture f;
    f.cc.groups = {group::x25519};
    f.sc.groups = {group::secp256r1};
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::handshake_failure);
  }
  SECTION("tampered server Finished: decrypt_error") {
    Fixture f;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    REQUIRE(c.receive(Level::initial, s.take_output(Level::initial)).ok);
    Buf flight = s.take_output(Level::handshake);
    flight.back() ^= 1;
    CHECK(c.receive(Level::handshake, flight).alert == Alert::decrypt_error);
  }
  SECTION("tampered client Finished: decrypt_error") {
    Fixture f;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    REQUIRE(c.receive(Level::initial, s.take_output(Level::initial)).ok);
    REQUIRE(c.receive(Level::handshake, s.take_output(Level::handshake)).ok);
    Buf fin = c.take_output(Level::handshake);
    fin[5] ^= 1;
    CHECK(s.receive(Level::handshake, fin).alert == Alert::decrypt_error);
  }
  SECTION("TLS 1.2-only ClientHello: protocol_version") {
    Fixture f;
    Engine s(f.sc, f.ss);
    REQUIRE(s.start().ok);
    ClientHello ch;
    ch.cipher_suites = {0xc02f};
    ch.extensions.push_back({ext::supported_groups, make_u16_list(2, std::vector<std::uint16_t>{group::x25519})});
    Buf m;
    emit_client_hello(m, ch);
    CHECK(s.receive(Level::initial, m).alert == Alert::protocol_version);
  }
  SECTION("TLS 1.2 ServerHello: protocol_version; with the downgrade sentinel: illegal_parameter") {
    for (std::uint8_t last : {0x00, 0x01, 0x02}) {
      Fixture f;
      Engine c(f.cc, f.cs);
      REQUIRE(c.start().ok);
      ServerHello sh;  // a TLS 1.2 ServerHello: no supported_versions
      const std::uint8_t tail[8] = {0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, last};
      std::copy(std::begin(tail), std::end(tail), sh.random.end() - 8);
      sh.cipher_suite = 0xc02f;
      sh.extensions.push_back({ext::renegotiation_info, {0}});
      Buf m;
      emit_server_hello(m, sh);
      INFO("last sentinel byte " << int(last));
      CHECK(c.receive(Level::initial, m).alert == (last <= 1 ? Alert::illegal_parameter : Alert::protocol_version));
    }
  }
  SECTION("oversized and truncated handshake messages: decode_error") {
    Fixture f;
    Engine s(f.sc, f.ss);
    REQUIRE(s.start().ok);
    // A header claiming 16 MiB is refused at once, before any body arrives.
    CHECK(s.receive(Level::initial, hex("01ffffff")).alert == Alert::decode_error);
    CHECK(s.state() == Engine::State::failed);
    // A ClientHello whose body ends inside its cipher suites.
    Engine s2(f.sc, f.ss);
    REQUIRE(s2.start().ok);
    Engine c(f.cc, f.cs);
    REQUIRE(c.start().ok);
    Buf ch = c.take_output(Level::initial);
    const std::size_t cut = 4 + 2 + 32 + 1 + 3;
    ch.resize(cut);
    ch[1] = 0;
    ch[2] = 0;
    ch[3] = static_cast<std::uint8_t>(cut - 4);
    CHECK(s2.receive(Level::initial, ch).alert == Alert::decode_error);
    CHECK_FALSE(s2.has_output());
  }
  SECTION("handshake message at the wrong level or state: unexpected_message") {
    Fixture f;
    Engine c(f.cc, f.cs);
    REQUIRE(c.start().ok);
    CHECK(c.receive(Level::handshake, hex("0800000200 00")).alert == Alert::unexpected_message);
    Engine c2(f.cc, f.cs);
    REQUIRE(c2.start().ok);
    CHECK(c2.receive(Level::initial, hex("08000002 0000")).alert == Alert::unexpected_message);
  }
  SECTION("ServerHello for a suite not offered: illegal_parameter") {
    Fixture f;
    f.cc.cipher_suites = {TLS_AES_128_GCM_SHA256};
    f.sc.cipher_suites = {TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256};
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    Buf sh = s.take_output(Level::initial);
    // legacy_version(2) random(32) session_id<1>: the suite follows.
    REQUIRE(sh[4 + 2 + 32] == 0);
    sh[4 + 2 + 32 + 2] = 0x02;
    CHECK(c.receive(Level::initial, sh).alert == Alert::illegal_parameter);
  }
  SECTION("bytes after a key change: unexpected_message") {
    Fixture f;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    Buf sh = s.take_output(Level::initial);
    sh.push_back(0x08);
    CHECK(c.receive(Level::initial, sh).alert == Alert::unexpected_message);
  }
}

TEST_CASE("client certificates", "[tls][engine]") {
  TestPki& pki = TestPki::get();
  SECTION("requested and sent") {
    Fixture f;
    f.sc.request_client_cert = true;
    f.sc.require_client_cert = true;
    f.sc.client_trust = &pki.trust;
    f.cc.cert_chain = {pki.leaf[2].der};
    f.cc.key = pki.leaf[2].key;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(f.run(c, s).ok);
    CHECK(s.handshake_complete());
    CHECK(s.peer_chain().size() == 1);
    CHECK(s.signature_scheme() == sigscheme::ed25519);
  }
  SECTION("required but not sent: certificate_required") {
    Fixture f;
    f.sc.request_client_cert = true;
    f.sc.require_client_cert = true;
    f.sc.client_trust = &pki.trust;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    CHECK(f.run(c, s).alert == Alert::certificate_required);
  }
  SECTION("optional and not sent") {
    Fixture f;
    f.sc.request_client_cert = true;
    f.sc.client_trust = &pki.trust;
    Engine c(f.cc, f.cs), s(f.sc, f.ss);
    REQUIRE(f.run(c, s).ok);
    CHECK(s.peer_chain().empty());
  }
}

namespace {
struct OnceGuard : ReplayGuard {
  std::set<Buf> seen;
  bool first_use(Bytes id) override { return seen.insert(Buf(id.begin(), id.end())).second; }
};
}  // namespace

TEST_CASE("tickets, resumption and 0-RTT", "[tls][engine][resumption]") {
  OnceGuard guard;
  TicketKey k1;
  k1.name.fill(1);
  k1.key.fill(7);
  Fixture f;
  f.sc.ticket_keys = {k1};
  f.sc.max_early_data = 16384;
  f.sc.replay = &guard;
  f.sc.now_ms = 1000;
  f.cc.now_ms = 1000;
  f.cc.alpn = {"echo"};
  f.sc.alpn = {"echo"};
  Engine c(f.cc, f.cs), s(f.sc, f.ss);
  REQUIRE(f.run(c, s).ok);
  REQUIRE(c.sessions().size() == 1);
  const Session sess = c.sessions()[0];
  CHECK(sess.max_early_data == 16384);
  CHECK(sess.alpn == "echo");
  // The ticket survives serialisation (ustack-tls --sess-out / --sess-in).
  auto again = Session::parse(sess.serialize());
  REQUIRE(again);
  CHECK(again->ticket == sess.ticket);
  CHECK(again->psk == sess.psk);

  SECTION("psk_dhe_ke resumption with 0-RTT accepted, then the replay refused") {
    for (int attempt = 0; attempt < 2; ++attempt) {
      Fixture g;
      g.sc = f.sc;
      g.sc.now_ms = 3000;
      g.cc.now_ms = 3000;
      g.cc.alpn = {"echo"};
      g.cc.session = sess;
      g.cc.send_early_data = true;
      Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
      REQUIRE(c2.start().ok);
      using K = std::pair<Level, Direction>;
      REQUIRE(g.cs.secrets.count(K{Level::early, Direction::write}) == 1);
      REQUIRE(s2.start().ok);
      REQUIRE(pump(c2, s2).ok);
      CHECK(c2.handshake_complete());
      CHECK(s2.handshake_complete());
      CHECK(c2.resumed());
      CHECK(s2.resumed());
      CHECK(c2.peer_chain().empty());
      if (attempt == 0) {
        CHECK(c2.early_data_accepted());
        CHECK(s2.early_data_accepted());
        CHECK(g.ss.secrets[K{Level::early, Direction::read}] == g.cs.secrets[K{Level::early, Direction::write}]);
      } else {
        CHECK_FALSE(c2.early_data_accepted());  // single-use: the replay is refused
        CHECK_FALSE(s2.early_data_accepted());
      }
    }
  }
  SECTION("rotated key still decrypts; unknown key falls back to a full handshake") {
    TicketKey k2;
    k2.name.fill(2);
    k2.key.fill(9);
    Fixture g;
    g.sc = f.sc;
    g.sc.ticket_keys = {k2, k1};
    g.cc.session = sess;
    Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
    REQUIRE(g.run(c2, s2).ok);
    CHECK(c2.resumed());
    Fixture h;
    h.sc = f.sc;
    h.sc.ticket_keys = {k2};
    h.cc.session = sess;
    Engine c3(h.cc, h.cs), s3(h.sc, h.ss);
    REQUIRE(h.run(c3, s3).ok);
    CHECK_FALSE(c3.resumed());
  }
  SECTION("expired ticket: full handshake") {
    Fixture g;
    g.sc = f.sc;
    g.sc.now_ms = 1000 + 7200 * 1000 + 1;
    g.cc.session = sess;
    Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
    REQUIRE(g.run(c2, s2).ok);
    CHECK_FALSE(s2.resumed());
  }
  SECTION("a wrong binder: decrypt_error") {
    Fixture g;
    g.sc = f.sc;
    g.cc.session = sess;
    g.cc.session->psk[0] ^= 1;
    Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
    CHECK(g.run(c2, s2).alert == Alert::decrypt_error);
  }
  SECTION("resumption after HelloRetryRequest") {
    Fixture g;
    g.sc = f.sc;
    g.sc.groups = {group::secp256r1};
    g.cc.session = sess;
    g.cc.send_early_data = true;
    Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
    REQUIRE(g.run(c2, s2).ok);
    CHECK(c2.did_hrr());
    CHECK(c2.resumed());
    CHECK_FALSE(c2.early_data_accepted());
  }
}

TEST_CASE("KeyUpdate is handed to the face", "[tls][engine]") {
  Fixture f;
  Engine c(f.cc, f.cs), s(f.sc, f.ss);
  REQUIRE(f.run(c, s).ok);
  REQUIRE(s.receive(Level::application, c.make_key_update(true)).ok);
  CHECK(f.ss.key_updates == 1);
  CHECK(s.receive(Level::application, hex("18000001 05")).alert == Alert::illegal_parameter);
}

TEST_CASE("QUIC: transport parameters both ways, no legacy session id", "[tls][engine][quic]") {
  Fixture f;
  f.cc.quic = true;
  f.sc.quic = true;
  f.cc.alpn = {"h3"};
  f.sc.alpn = {"h3"};
  f.cc.quic_transport_parameters = hex("0104 80007530");
  f.sc.quic_transport_parameters = hex("0308 4000ffff");
  f.cc.compat_session_id = true;  // ignored under QUIC
  Engine c(f.cc, f.cs), s(f.sc, f.ss);
  REQUIRE(f.run(c, s).ok);
  CHECK(c.peer_transport_parameters() == f.sc.quic_transport_parameters);
  CHECK(s.peer_transport_parameters() == f.cc.quic_transport_parameters);
  CHECK(s.receive(Level::application, c.make_key_update(false)).alert == Alert::unexpected_message);

  Fixture g;
  g.sc.quic = true;
  Engine c2(g.cc, g.cs), s2(g.sc, g.ss);
  CHECK(g.run(c2, s2).alert == Alert::missing_extension);
}
