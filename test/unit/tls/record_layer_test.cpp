// The record face: RFC 8448 §3's records byte for byte through the whole
// stack, then two faces back to back: application data, KeyUpdate both
// ways, 0-RTT accepted and refused, alerts on tampering and close_notify.
#include <catch2/catch.hpp>

#include <set>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/rfc8448.hpp"
#include "test/unit/tls/test_pki.hpp"
#include "tls/record_layer.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {

Hooks fixed(const char* random_hex, const char* x25519_private_hex) {
  Hooks h;
  const Buf r = hex(random_hex);
  h.random = [r](MutBytes out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = r[i % r.size()];
  };
  const Buf k = hex(x25519_private_hex);
  h.keygen = [k](std::uint16_t) { return KeyShare::from_x25519_private(k); };
  return h;
}

Buf cat(std::initializer_list<Buf> parts) {
  Buf out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Moves bytes both ways until quiet.
void pump(RecordConnection& a, RecordConnection& b) {
  for (int i = 0; i < 20; ++i) {
    Buf x = a.take_output();
    Buf y = b.take_output();
    if (x.empty() && y.empty()) return;
    if (!x.empty()) (void)b.feed(x);
    if (!y.empty()) (void)a.feed(y);
  }
}

}  // namespace

TEST_CASE("record face reproduces RFC 8448 §3 on the wire", "[tls][record_layer][rfc8448]") {
  ClientConfig cc;
  cc.server_name = "server";
  cc.cipher_suites = {0x1301, 0x1303, 0x1302};
  cc.groups = {0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104};
  cc.signature_schemes = {0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401,
                          0x0501, 0x0601, 0x0201, 0x0402, 0x0502, 0x0602, 0x0202};
  cc.extra_extensions = {{ext::renegotiation_info, {0}}, {ext::session_ticket, {}}, {ext::record_size_limit, {0x40, 0x01}}};
  cc.extension_order = {0, 0xff01, 10, 35, 51, 43, 13, 45, 28};
  cc.verify = [](const std::vector<Buf>& chain, PKey& leaf) {
    leaf = leaf_public_key(chain[0]);
    return Status::success();
  };
  const Buf cert_msg = hex(rfc8448::certificate);
  const Buf cert_der(cert_msg.begin() + 11, cert_msg.end() - 2);
  const Buf cv_msg = hex(rfc8448::certificate_verify);
  ServerConfig sc;
  sc.cert_chain = {cert_der};
  sc.key = leaf_public_key(cert_der);
  sc.sign = [&](std::uint16_t, Bytes, Buf& sig) {
    sig.assign(cv_msg.begin() + 8, cv_msg.end());
    return true;
  };
  sc.ee_extra_extensions = {{ext::supported_groups, hex("0012001d00170018001901000101010201030104")},
                            {ext::record_size_limit, {0x40, 0x01}}};
  sc.ee_extension_order = {10, 28, 0};

  RecordConnection client(cc, fixed(rfc8448::client_random, rfc8448::client_x25519_private));
  RecordConnection server(sc, fixed(rfc8448::server_random, rfc8448::server_x25519_private));
  std::vector<std::string> keylog;
  client.set_keylog([&](std::string_view l) { keylog.emplace_back(l); });
  REQUIRE(client.start().ok);
  REQUIRE(server.start().ok);

  const Buf ch = client.take_output();
  CHECK(to_hex(ch) == to_hex(cat({hex(rfc8448::client_hello_record_header), hex(rfc8448::client_hello)})));
  REQUIRE(server.feed(ch).ok);
  const Buf flight = server.take_output();
  CHECK(to_hex(flight) == to_hex(cat({hex(rfc8448::server_hello_record_header), hex(rfc8448::server_hello),
                                      hex(rfc8448::server_flight_record)})));
  // Byte by byte: records reassemble across arbitrary TCP segmentation.
  for (auto b : flight) REQUIRE(client.feed(Bytes(&b, 1)).ok);
  REQUIRE(client.handshake_complete());
  const Buf fin = client.take_output();
  CHECK(to_hex(fin) == to_hex(hex(rfc8448::client_finished_record)));
  REQUIRE(server.feed(fin).ok);
  REQUIRE(server.handshake_complete());

  REQUIRE(client.write(hex(rfc8448::application_data)).ok);
  const Buf app = client.take_output();
  CHECK(to_hex(app) == to_hex(hex(rfc8448::client_application_record)));
  client.close();
  CHECK(to_hex(client.take_output()) == to_hex(hex(rfc8448::client_alert_record)));
  REQUIRE(server.feed(app).ok);
  CHECK(server.take_app_data() == hex(rfc8448::application_data));
  REQUIRE(server.feed(hex(rfc8448::client_alert_record)).ok);
  CHECK(server.peer_closed());
  REQUIRE(keylog.size() == 5);
  CHECK(keylog[1] == std::string("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") + rfc8448::client_random + " " + rfc8448::c_hs_traffic);
}

namespace {
struct Pair {
  ClientConfig cc;
  ServerConfig sc;
  Pair() {
    TestPki& pki = TestPki::get();
    cc.server_name = "localhost";
    cc.trust = &pki.trust;
    sc.cert_chain = {pki.leaf[1].der};
    sc.key = pki.leaf[1].key;
  }
};
struct OnceGuard : ReplayGuard {
  std::set<Buf> seen;
  bool first_use(Bytes id) override { return seen.insert(Buf(id.begin(), id.end())).second; }
};
}  // namespace

TEST_CASE("record face: data both ways, large writes, KeyUpdate both ways, close", "[tls][record_layer]") {
  for (auto suite : {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256}) {
    Pair p;
    p.cc.cipher_suites = {suite};
    RecordConnection c(p.cc), s(p.sc);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(c.write(hex("68656c6c6f")).ok);  // queued until the handshake completes
    pump(c, s);
    REQUIRE(c.handshake_complete());
    REQUIRE(s.handshake_complete());
    CHECK(s.take_app_data() == hex("68656c6c6f"));
    Buf big(100000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7);
    REQUIRE(s.write(big).ok);
    pump(c, s);
    CHECK(c.take_app_data() == big);

    REQUIRE(c.key_update(true).ok);
    pump(c, s);
    CHECK(s.key_updates_received() == 1);
    CHECK(s.key_updates_sent() == 1);  // answered the request
    CHECK(c.key_updates_received() == 1);
    REQUIRE(s.key_update(false).ok);
    REQUIRE(c.write(hex("01")).ok);
    REQUIRE(s.write(hex("02")).ok);
    pump(c, s);
    CHECK(s.take_app_data() == hex("01"));
    CHECK(c.take_app_data() == hex("02"));
    CHECK(c.key_updates_received() == 2);
    CHECK(s.key_updates_sent() == 2);

    c.close();
    pump(c, s);
    CHECK(s.peer_closed());
    CHECK_FALSE(s.failed());
  }
}

TEST_CASE("record face: automatic KeyUpdate after the configured record count", "[tls][record_layer]") {
  Pair p;
  RecordConnection c(p.cc), s(p.sc);
  c.set_key_update_interval(3);
  REQUIRE(c.start().ok);
  REQUIRE(s.start().ok);
  pump(c, s);
  for (int i = 0; i < 10; ++i) REQUIRE(c.write(hex("aa")).ok);
  pump(c, s);
  CHECK(s.take_app_data() == Buf(10, 0xaa));
  CHECK(c.key_updates_sent() == 3);
  CHECK(s.key_updates_received() == 3);
}

TEST_CASE("record face: tampering and violations are alerted", "[tls][record_layer]") {
  SECTION("flipped ciphertext bit: bad_record_mac sent, peer sees it") {
    Pair p;
    RecordConnection c(p.cc), s(p.sc);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    pump(c, s);
    REQUIRE(c.write(hex("0102030405")).ok);
    Buf rec = c.take_output();
    rec[7] ^= 1;
    CHECK(s.feed(rec).alert == Alert::bad_record_mac);
    CHECK(s.alert_sent() == Alert::bad_record_mac);
    const Status st = c.feed(s.take_output());
    CHECK_FALSE(st.ok);
    CHECK(c.alert_received() == Alert::bad_record_mac);
  }
  SECTION("a received fatal alert ends the connection for good, with that alert") {
    Pair p;
    RecordConnection s(p.sc);
    REQUIRE(s.start().ok);
    // A plaintext alert with an unknown description (and level byte): fatal in TLS 1.3.
    CHECK(s.feed(hex("1507000002 4dec")).alert == static_cast<Alert>(0xec));
    CHECK(s.failed());
    CHECK_FALSE(s.alert_sent());
    CHECK(s.feed(hex("1603010001 01")).alert == static_cast<Alert>(0xec));
    CHECK(s.feed({}).alert == static_cast<Alert>(0xec));
  }
  SECTION("oversized record: record_overflow") {
    Pair p;
    RecordConnection s(p.sc);
    REQUIRE(s.start().ok);
    CHECK(s.feed(hex("16030348ff")).alert == Alert::record_overflow);
  }
  SECTION("application data before keys: unexpected_message") {
    Pair p;
    RecordConnection s(p.sc);
    REQUIRE(s.start().ok);
    CHECK(s.feed(hex("1703030001aa")).alert == Alert::unexpected_message);
  }
  SECTION("a compatibility-mode change_cipher_spec is ignored") {
    Pair p;
    RecordConnection c(p.cc), s(p.sc);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    REQUIRE(s.feed(c.take_output()).ok);
    REQUIRE(s.feed(hex("140303000101")).ok);
    pump(c, s);
    CHECK(s.handshake_complete());
  }
  SECTION("untrusted certificate: client alerts unknown_ca, server reports it") {
    Pair p;
    TrustStore empty;
    p.cc.trust = &empty;
    RecordConnection c(p.cc), s(p.sc);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    pump(c, s);
    CHECK(c.alert_sent() == Alert::unknown_ca);
    CHECK(s.alert_received() == Alert::unknown_ca);
  }
}

TEST_CASE("record face: 0-RTT accepted, then refused and resent", "[tls][record_layer][resumption]") {
  OnceGuard guard;
  TicketKey k;
  k.name.fill(3);
  k.key.fill(4);
  Pair p;
  p.sc.ticket_keys = {k};
  p.sc.max_early_data = 1000;
  p.sc.replay = &guard;
  Session sess;
  {
    RecordConnection c(p.cc), s(p.sc);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    pump(c, s);
    REQUIRE(c.engine().sessions().size() == 1);
    sess = c.engine().sessions()[0];
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    Pair q;
    q.sc = p.sc;
    q.cc.session = sess;
    q.cc.send_early_data = true;
    RecordConnection c(q.cc), s(q.sc);
    REQUIRE(c.start().ok);
    Buf early(1500, 0x5a);  // more than max_early_data: the rest waits for 1-RTT
    REQUIRE(c.write(early).ok);
    CHECK(c.early_bytes() == 1000);
    REQUIRE(s.start().ok);
    pump(c, s);
    REQUIRE(c.handshake_complete());
    REQUIRE(s.handshake_complete());
    CHECK(c.engine().resumed());
    CHECK(s.take_app_data() == early);  // accepted or resent, the server gets every byte once, in order
    CHECK(c.engine().early_data_accepted() == (attempt == 0));
    CHECK(s.early_bytes() == (attempt == 0 ? 1000u : 0u));
  }
}
