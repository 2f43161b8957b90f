// The engine's QUIC face (RFC 9001 §4): two engines in quic mode complete a
// full handshake and then a resumed 0-RTT handshake by exchanging only
// handshake bytes tagged with their encryption level, the way QUIC carries
// them in CRYPTO frames. Checked: which messages travel at which level, that
// every secret is announced (per level and direction) before bytes at its
// level are sent or received and matches the peer's, that packets sealed
// with one side's "quic key/iv" open with the other's, transport parameters
// carried opaquely both ways and required, no EndOfEarlyData and no
// middlebox-compatibility session id (so no ChangeCipherSpec), early data
// accepted and refused, and the CRYPTO_ERROR code of a failure.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/test_pki.hpp"
#include "tls/engine.hpp"
#include "tls/quic_keys.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {

using K = std::pair<Level, Direction>;
using HT = HandshakeType;

struct QuicSink : SecretSink {
  std::map<K, Buf> secrets;
  const Suite* suite = nullptr;
  int key_updates = 0;
  void on_secret(Level l, Direction d, const Suite& s, Bytes b) override {
    secrets[{l, d}] = Buf(b.begin(), b.end());
    suite = &s;
  }
  void on_key_update(bool) override { ++key_updates; }
  bool has(Level l, Direction d) const { return secrets.count({l, d}) == 1; }
};

struct Flight {
  bool from_client;
  Level level;
  std::vector<HT> types;
  bool operator==(const Flight& o) const = default;
};

std::ostream& operator<<(std::ostream& os, const Flight& f) {
  os << (f.from_client ? "C" : "S") << "@" << static_cast<int>(f.level) << "[";
  for (auto t : f.types) os << static_cast<int>(t) << " ";
  return os << "]";
}

std::vector<HT> split(Bytes b) {
  std::vector<HT> out;
  while (b.size() >= 4) {
    const std::size_t len = (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
    REQUIRE(b.size() >= 4 + len);
    out.push_back(static_cast<HT>(b[0]));
    b = b.subspan(4 + len);
  }
  REQUIRE(b.empty());
  return out;
}

// A QUIC transport in miniature: each level's bytes go to the peer at the
// same level, in two fragments (CRYPTO frames may split messages anywhere).
// Before bytes leave at a protected level the sender must hold that level's
// write secret, and before they are delivered the receiver its read secret.
Status exchange(Engine& c, QuicSink& cs, Engine& s, QuicSink& ss, std::vector<Flight>& log) {
  for (int round = 0; round < 10; ++round) {
    bool moved = false;
    for (bool from_client : {true, false}) {
      Engine& from = from_client ? c : s;
      Engine& to = from_client ? s : c;
      const QuicSink& fs = from_client ? cs : ss;
      const QuicSink& ts = from_client ? ss : cs;
      for (std::size_t l = 0; l < kLevels; ++l) {
        const Level level = static_cast<Level>(l);
        const Buf out = from.take_output(level);
        if (out.empty()) continue;
        moved = true;
        log.push_back({from_client, level, split(out)});
        if (level != Level::initial) {
          REQUIRE(fs.has(level, Direction::write));
          REQUIRE(ts.has(level, Direction::read));
        }
        const std::size_t half = out.size() / 2;
        if (auto st = to.receive(level, Bytes(out).first(half)); !st) return st;
        if (auto st = to.receive(level, Bytes(out).subspan(half)); !st) return st;
      }
    }
    if (!moved) break;
  }
  return Status::success();
}

// Seals a packet payload with the writer's "quic key/iv" and opens it with
// the reader's: the two sides' secrets agree in the form QUIC uses them.
bool packet_round_trip(const Suite& s, const Buf& write_secret, const Buf& read_secret) {
  quic::PacketKeys w, r;
  if (!quic::derive_packet_keys(s, write_secret, w) || !quic::derive_packet_keys(s, read_secret, r)) return false;
  Aead seal, open;
  if (!seal.init_raw(s, w.key.bytes(), w.iv.bytes(), true) || !open.init_raw(s, r.key.bytes(), r.iv.bytes(), false)) {
    return false;
  }
  const Buf header = hex("4100000007");
  const Buf frames = hex("01 0600 05 68656c6c6f");  // PING, CRYPTO(offset 0, "hello")
  Buf ct(frames.size() + kTagLen), pt(frames.size());
  return seal.seal(7, header, frames, ct.data()) && open.open(7, header, ct, pt.data()) && pt == frames;
}

struct QuicPair {
  ClientConfig cc;
  ServerConfig sc;
  QuicSink cs, ss;
  QuicPair() {
    TestPki& pki = TestPki::get();
    cc.server_name = "localhost";
    cc.trust = &pki.trust;
    cc.quic = true;
    cc.alpn = {"h3"};
    cc.compat_session_id = true;  // must be ignored under QUIC (RFC 9001 §8.4)
    cc.quic_transport_parameters = hex("0104 80007530 ff 00");  // opaque to TLS, not even well-formed TLVs
    sc.cert_chain = {pki.leaf[1].der};
    sc.key = pki.leaf[1].key;
    sc.quic = true;
    sc.alpn = {"h3"};
    sc.quic_transport_parameters = hex("0308 4000ffff 0000");
  }
};

struct OnceGuard : ReplayGuard {
  std::set<Buf> seen;
  bool first_use(Bytes id) override { return seen.insert(Buf(id.begin(), id.end())).second; }
};

void check_secrets_match(const QuicSink& cs, const QuicSink& ss, Level l) {
  INFO("level " << static_cast<int>(l));
  REQUIRE(cs.has(l, Direction::write));
  REQUIRE(ss.has(l, Direction::read));
  CHECK(cs.secrets.at({l, Direction::write}) == ss.secrets.at({l, Direction::read}));
  CHECK(packet_round_trip(*cs.suite, cs.secrets.at({l, Direction::write}), ss.secrets.at({l, Direction::read})));
  if (l == Level::early) return;  // 0-RTT is client to server only
  REQUIRE(cs.has(l, Direction::read));
  REQUIRE(ss.has(l, Direction::write));
  CHECK(ss.secrets.at({l, Direction::write}) == cs.secrets.at({l, Direction::read}));
  CHECK(cs.secrets.at({l, Direction::write}) != cs.secrets.at({l, Direction::read}));
  CHECK(packet_round_trip(*cs.suite, ss.secrets.at({l, Direction::write}), cs.secrets.at({l, Direction::read})));
}

}  // namespace

TEST_CASE("QUIC face: full handshake, then resumed 0-RTT, by levels only", "[tls][engine][quic]") {
  OnceGuard guard;
  TicketKey tk;
  tk.name.fill(3);
  tk.key.fill(5);
  QuicPair p;
  p.sc.ticket_keys = {tk};
  p.sc.max_early_data = 16384;  // a QUIC server advertises 0xffffffff instead (§4.6.1)
  p.sc.replay = &guard;
  Engine c(p.cc, p.cs), s(p.sc, p.ss);
  REQUIRE(c.start().ok);
  REQUIRE(s.start().ok);
  // No legacy_session_id under QUIC, so no compatibility ChangeCipherSpec either.
  {
    const Buf ch = c.take_output(Level::initial);
    auto parsed = parse_client_hello(Bytes(ch).subspan(4));
    REQUIRE(parsed);
    CHECK(parsed->legacy_session_id.empty());
    REQUIRE(s.receive(Level::initial, ch).ok);
  }
  std::vector<Flight> log;
  REQUIRE(exchange(c, p.cs, s, p.ss, log).ok);
  REQUIRE(c.handshake_complete());
  REQUIRE(s.handshake_complete());
  const std::vector<Flight> expect = {
      {false, Level::initial, {HT::server_hello}},
      {false, Level::handshake, {HT::encrypted_extensions, HT::certificate, HT::certificate_verify, HT::finished}},
      {true, Level::handshake, {HT::finished}},
      {false, Level::application, {HT::new_session_ticket}},
  };
  CHECK(log == expect);
  CHECK_FALSE(p.cs.has(Level::early, Direction::write));
  CHECK_FALSE(p.ss.has(Level::early, Direction::read));
  check_secrets_match(p.cs, p.ss, Level::handshake);
  check_secrets_match(p.cs, p.ss, Level::application);
  CHECK(c.peer_transport_parameters() == p.sc.quic_transport_parameters);
  CHECK(s.peer_transport_parameters() == p.cc.quic_transport_parameters);
  CHECK(c.alpn() == "h3");
  REQUIRE(c.sessions().size() == 1);
  const Session sess = c.sessions()[0];
  CHECK(sess.max_early_data == 0xffffffffu);

  for (int attempt = 0; attempt < 2; ++attempt) {
    {  // a loop, not Catch sections: the second attempt must replay the first's ticket
      INFO("resumption attempt " << attempt);
      QuicPair r;
      r.sc.ticket_keys = {tk};
      r.sc.max_early_data = 16384;
      r.sc.replay = &guard;
      r.cc.session = sess;
      r.cc.send_early_data = true;
      r.cc.quic_transport_parameters = hex("0104 80007531");  // the resumed connection's own parameters
      Engine c2(r.cc, r.cs), s2(r.sc, r.ss);
      REQUIRE(c2.start().ok);
      // 0-RTT keys exist as soon as the ClientHello does.
      CHECK(r.cs.has(Level::early, Direction::write));
      REQUIRE(s2.start().ok);
      std::vector<Flight> log2;
      const Buf ch = c2.take_output(Level::initial);
      CHECK(split(ch) == std::vector<HT>{HT::client_hello});
      REQUIRE(s2.receive(Level::initial, ch).ok);
      REQUIRE(exchange(c2, r.cs, s2, r.ss, log2).ok);
      REQUIRE(c2.handshake_complete());
      REQUIRE(s2.handshake_complete());
      CHECK(c2.resumed());
      CHECK(s2.resumed());
      CHECK(s2.peer_transport_parameters() == r.cc.quic_transport_parameters);
      CHECK(c2.peer_transport_parameters() == r.sc.quic_transport_parameters);
      // No EndOfEarlyData (RFC 9001 §8.3) and nothing at the 0-RTT level from the engine.
      const std::vector<Flight> expect2 = {
          {false, Level::initial, {HT::server_hello}},
          {false, Level::handshake, {HT::encrypted_extensions, HT::finished}},
          {true, Level::handshake, {HT::finished}},
          {false, Level::application, {HT::new_session_ticket}},
      };
      CHECK(log2 == expect2);
      check_secrets_match(r.cs, r.ss, Level::handshake);
      check_secrets_match(r.cs, r.ss, Level::application);
      if (attempt == 0) {
        CHECK(c2.early_data_accepted());
        CHECK(s2.early_data_accepted());
        check_secrets_match(r.cs, r.ss, Level::early);
      } else {
        // The ticket was used for 0-RTT already: refused, reported to both
        // sides; the client's 0-RTT packets are lost and it resends as 1-RTT.
        CHECK_FALSE(c2.early_data_accepted());
        CHECK_FALSE(s2.early_data_accepted());
        CHECK_FALSE(r.ss.has(Level::early, Direction::read));
      }
    }
  }
}

TEST_CASE("QUIC face: transport parameters are required both ways", "[tls][engine][quic]") {
  SECTION("client without them: the server sends missing_extension") {
    QuicPair p;
    p.cc.quic = false;
    p.cc.compat_session_id = false;
    Engine c(p.cc, p.cs), s(p.sc, p.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    const Status st = s.receive(Level::initial, c.take_output(Level::initial));
    CHECK(st.alert == Alert::missing_extension);
    CHECK(quic::crypto_error(s.failure().alert) == 0x016d);
    CHECK_FALSE(s.has_output());  // nothing released
  }
  SECTION("server without them: the client sends missing_extension") {
    QuicPair p;
    p.sc.quic = false;
    Engine c(p.cc, p.cs), s(p.sc, p.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    std::vector<Flight> log;
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    const Status st = exchange(c, p.cs, s, p.ss, log);
    CHECK(st.alert == Alert::missing_extension);
    CHECK(c.state() == Engine::State::failed);
    CHECK(quic::crypto_error(c.failure().alert) == 0x016d);
    CHECK_FALSE(p.cs.has(Level::application, Direction::write));  // no 1-RTT keys for a failed handshake
  }
  SECTION("a ticket whose max_early_data_size is not 0xffffffff: refused (RFC 9001 §4.6.1)") {
    QuicPair p;
    Engine c(p.cc, p.cs), s(p.sc, p.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    std::vector<Flight> log;
    REQUIRE(s.receive(Level::initial, c.take_output(Level::initial)).ok);
    REQUIRE(exchange(c, p.cs, s, p.ss, log).ok);
    REQUIRE(c.handshake_complete());
    // lifetime 60, age_add 0, nonce 00, ticket "t", early_data(16384)
    CHECK(c.receive(Level::application, hex("04000017 0000003c 00000000 0100 000174 0008 002a0004 00004000")).alert ==
          Alert::illegal_parameter);
    CHECK(c.sessions().empty());
  }
  SECTION("a legacy_session_id over QUIC: illegal_parameter") {
    QuicPair p;
    p.cc.quic = false;
    p.cc.compat_session_id = true;
    p.cc.extra_extensions = {{ext::quic_transport_parameters, p.cc.quic_transport_parameters}};
    Engine c(p.cc, p.cs), s(p.sc, p.ss);
    REQUIRE(c.start().ok);
    REQUIRE(s.start().ok);
    CHECK(s.receive(Level::initial, c.take_output(Level::initial)).alert == Alert::illegal_parameter);
  }
}
