// LISTEN and CLOSED (no socket): RFC 9293 §3.10.7.1 and §3.10.7.2, option
// negotiation (RFC 7323, RFC 2018), MSS clamping (RFC 9293 §3.7.1, RFC 6691),
// listener backlog and SYN cookies (RFC 4987), malformed options.
#include "test/unit/tcp_state/peer.hpp"

using namespace ustack;
using namespace ustack::test;

TEST_CASE("LISTEN: a SYN gets a SYN-ACK and a half-open connection", "[tcp_state][listen]") {
  Peer p;
  p.do_listen();
  const Out sa = p.syn_to_listener();
  CHECK(sa.ack() == p.p_iss + 1);
  CHECK(sa.data.empty());
  CHECK(sa.h.window == 65535);  // a SYN's window is never scaled (RFC 7323 §2.2)
  REQUIRE(sa.h.options.mss);
  CHECK(*sa.h.options.mss == 1460);
  // The peer offered nothing else, so nothing else is offered back.
  CHECK_FALSE(sa.h.options.wscale);
  CHECK_FALSE(sa.h.options.sack_permitted);
  CHECK_FALSE(sa.h.options.timestamps);
  CHECK(p.tcp->connection_count() == 1);
  CHECK(p.app.accepts == 0);  // not before the handshake's ACK
  CHECK(p.ctr(StackCounter::tcp_passive_opens) == 0);
}

TEST_CASE("LISTEN: an incoming RST is ignored", "[tcp_state][listen][rst]") {
  Peer p;
  p.do_listen();
  p.inject(p.repr(kRst, SeqNum{1234}));
  p.inject(p.repr(kRst | kAck, SeqNum{1234}, SeqNum{99}));
  p.none();
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.ctr(StackCounter::tcp_tx_rst) == 0);
}

TEST_CASE("LISTEN: an ACK is answered by <SEQ=SEG.ACK><CTL=RST>", "[tcp_state][listen][rst]") {
  Peer p;
  p.do_listen();
  p.inject(p.repr(kAck, SeqNum{500}, SeqNum{0xabcdef01u}), bytes_n(10));
  const Out r = p.one();
  CHECK(r.flags_are(kRst));
  CHECK(r.seq() == SeqNum{0xabcdef01u});
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.ctr(StackCounter::tcp_syncookies_failed) == 1);  // it was checked as a cookie first
  CHECK(p.ctr(StackCounter::tcp_drop_no_socket) == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_rst) == 1);
}

TEST_CASE("LISTEN: a segment with neither SYN, ACK nor RST is dropped", "[tcp_state][listen]") {
  Peer p;
  p.do_listen();
  p.inject(p.repr(kFin, SeqNum{500}));
  p.inject(p.repr(kPsh, SeqNum{500}), bytes_n(20));
  p.none();
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("CLOSED: a segment for an unknown port is reset as RFC 9293 §3.10.7.1 says", "[tcp_state][closed][rst]") {
  Peer p;
  p.do_listen();
  p.l_port = 81;  // nobody listens there

  SECTION("SYN without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>") {
    p.inject(p.repr(kSyn, SeqNum{7000}));
    const Out r = p.one();
    CHECK(r.flags_are(kRst | kAck));
    CHECK(r.seq() == SeqNum{0});
    CHECK(r.ack() == SeqNum{7001});
    CHECK(r.h.src_port == 81);
    CHECK(r.h.dst_port == kPeerPort);
  }
  SECTION("data and FIN without ACK: SEG.LEN counts both") {
    p.inject(p.repr(kFin | kPsh, SeqNum{0xfffffff0u}), bytes_n(100));
    const Out r = p.one();
    CHECK(r.flags_are(kRst | kAck));
    CHECK(r.seq() == SeqNum{0});
    CHECK(r.ack() == SeqNum{0xfffffff0u} + 101);  // wraps
  }
  SECTION("with ACK: <SEQ=SEG.ACK><CTL=RST>") {
    p.inject(p.repr(kAck | kPsh, SeqNum{7000}, SeqNum{0x55667788u}), bytes_n(10));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == SeqNum{0x55667788u});
  }
  SECTION("a RST is never answered") {
    p.inject(p.repr(kRst, SeqNum{7000}));
    p.inject(p.repr(kRst | kAck, SeqNum{7000}, SeqNum{1}));
    p.none();
    CHECK(p.ctr(StackCounter::tcp_tx_rst) == 0);
    CHECK(p.ctr(StackCounter::tcp_drop_no_socket) == 2);
    return;
  }
  CHECK(p.ctr(StackCounter::tcp_drop_no_socket) == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_rst) == 1);
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("Malformed options: counted drop, never a RST", "[tcp_state][options]") {
  Peer p;
  SECTION("a SYN to a listener") {
    p.do_listen();
    p.inject_tcp(Peer::with_bad_option(p.repr(kSyn, p.p_iss)));
    p.none();
    CHECK(p.tcp->connection_count() == 0);
  }
  SECTION("a SYN to an unknown port") {
    p.l_port = 81;
    p.inject_tcp(Peer::with_bad_option(p.repr(kSyn, p.p_iss)));
    p.none();
  }
  SECTION("data on an established connection") {
    p.establish_passive();
    const auto segs_before = p.stats()->segs_in;
    p.inject_tcp(Peer::with_bad_option(p.repr(kAck | kPsh, p.p_nxt, p.l_nxt), bytes_n(100)));
    p.none();
    CHECK(p.app.readables == 0);
    CHECK(p.stats()->bytes_in == 0);
    CHECK(p.stats()->segs_in == segs_before);  // never reached the connection
    // The same data with valid options is taken.
    p.send_data(bytes_n(100));
    CHECK(p.app.got == bytes_n(100));
  }
  CHECK(p.ctr(StackCounter::tcp_drop_bad_options) == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_rst) == 0);
}

TEST_CASE("Negotiation: window scale, timestamps and SACK-permitted are offered back only when offered",
          "[tcp_state][listen][options]") {
  Peer p;
  SECTION("the peer offers all three") {
    const Out sa = p.establish_passive(PeerSyn{1460, 7, true, true});
    REQUIRE(sa.h.options.wscale);
    CHECK(*sa.h.options.wscale == 1);  // 64 KiB receive buffer: one shift
    CHECK(sa.h.options.sack_permitted);
    REQUIRE(sa.h.options.timestamps);
    CHECK(sa.h.options.timestamps->tsecr == 5000);  // echoes the SYN's TSval
    const auto st = p.stats();
    CHECK(st->snd_wscale == 7);
    CHECK(st->rcv_wscale == 1);
    CHECK(st->sack);
    CHECK(st->timestamps);
    CHECK(st->mss == 1460 - 12);  // the timestamp option comes out of every segment
    // Every segment after the SYN carries timestamps, and the peer's window is scaled.
    CHECK(st->snd_wnd == std::uint32_t{kPeerWnd} << 7);
    p.tcp->send(p.conn, bytes_n(10), p.now);
    const Out d = p.one();
    REQUIRE(d.h.options.timestamps);
    CHECK(d.h.options.timestamps->tsecr == p.p_tsval - 1);
  }
  SECTION("the peer offers none") {
    const Out sa = p.establish_passive(PeerSyn{1460, std::nullopt, false, false});
    CHECK_FALSE(sa.h.options.wscale);
    CHECK_FALSE(sa.h.options.sack_permitted);
    CHECK_FALSE(sa.h.options.timestamps);
    const auto st = p.stats();
    CHECK(st->snd_wscale == 0);
    CHECK(st->rcv_wscale == 0);
    CHECK_FALSE(st->sack);
    CHECK_FALSE(st->timestamps);
    CHECK(st->mss == 1460);
    p.tcp->send(p.conn, bytes_n(10), p.now);
    CHECK_FALSE(p.one().h.options.timestamps);
  }
  SECTION("the peer offers only timestamps") {
    const Out sa = p.establish_passive(PeerSyn{1460, std::nullopt, false, true});
    CHECK_FALSE(sa.h.options.wscale);
    CHECK_FALSE(sa.h.options.sack_permitted);
    CHECK(sa.h.options.timestamps);
    CHECK(p.stats()->timestamps);
    CHECK_FALSE(p.stats()->sack);
    CHECK(p.stats()->rcv_wscale == 0);
  }
  SECTION("the peer offers only window scaling and SACK") {
    const Out sa = p.establish_passive(PeerSyn{1460, 14, true, false});
    CHECK(sa.h.options.wscale);
    CHECK(sa.h.options.sack_permitted);
    CHECK_FALSE(sa.h.options.timestamps);
    CHECK(p.stats()->snd_wscale == 14);
    CHECK(p.stats()->sack);
    CHECK_FALSE(p.stats()->timestamps);
  }
  SECTION("the peer offers all three, the listener wants none") {
    TcpConnOptions o = p.tcp->config().defaults;
    o.window_scaling = o.timestamps = o.sack = false;
    p.do_listen(8, &o);
    const Out sa = p.establish_passive(PeerSyn{1460, 7, true, true});
    CHECK_FALSE(sa.h.options.wscale);
    CHECK_FALSE(sa.h.options.sack_permitted);
    CHECK_FALSE(sa.h.options.timestamps);
    CHECK(p.stats()->snd_wscale == 0);
    CHECK_FALSE(p.stats()->sack);
    CHECK_FALSE(p.stats()->timestamps);
  }
}

TEST_CASE("MSS: the peer's MSS is clamped to what our MTU carries", "[tcp_state][listen][mss]") {
  SECTION("a jumbo MSS on a 1500-byte MTU") {
    Peer p;
    const Out sa = p.establish_passive(PeerSyn{9000, std::nullopt, false, false});
    CHECK(*sa.h.options.mss == 1460);
    CHECK(p.stats()->mss == 1460);
    p.tcp->send(p.conn, bytes_n(4000), p.now);
    const auto segs = p.out();
    REQUIRE(segs.size() == 3);
    CHECK(segs[0].data.size() == 1460);
    CHECK(segs[1].data.size() == 1460);
    CHECK(segs[2].data.size() == 1080);
  }
  SECTION("a smaller MTU (1000): our SYN-ACK says 960, and segments stay within it") {
    Peer p(state_config(), 1000);
    const Out sa = p.establish_passive(PeerSyn{1460, std::nullopt, false, false});
    CHECK(*sa.h.options.mss == 960);
    CHECK(p.stats()->mss == 960);
    p.tcp->send(p.conn, bytes_n(2000), p.now);
    for (const Out& o : p.out()) CHECK(o.data.size() <= 960);
  }
  SECTION("a smaller peer MSS is respected") {
    Peer p;
    p.establish_passive(PeerSyn{536, std::nullopt, false, false});
    CHECK(p.stats()->mss == 536);
    p.tcp->send(p.conn, bytes_n(1000), p.now);
    const auto segs = p.out();
    REQUIRE(segs.size() == 2);
    CHECK(segs[0].data.size() == 536);
  }
  SECTION("no MSS option: 536 (RFC 9293 §3.7.1)") {
    Peer p;
    p.establish_passive(PeerSyn{std::nullopt, std::nullopt, false, false});
    CHECK(p.stats()->mss == 536);
  }
  SECTION("active open: our SYN says MTU - 40, the SYN-ACK's MSS is used") {
    Peer p(state_config(), 1000);
    const Out syn = p.connect();
    CHECK(*syn.h.options.mss == 960);
    p.advance(kNsPerMs);
    wire::TcpRepr r = p.repr(kSyn | kAck, p.p_iss, p.l_nxt);
    r.options.mss = 700;
    p.inject(r);
    p.p_nxt = p.p_iss + 1;
    p.one();
    CHECK(p.stats()->mss == 700);
  }
}

TEST_CASE("Backlog: half-open connections are bounded, completed ones free their slot",
          "[tcp_state][listen][backlog]") {
  tcp::TcpConfig cfg = state_config();
  cfg.syn_cookies = false;
  Peer p(cfg);
  p.do_listen(2);
  auto syn_from = [&](std::uint16_t port) {
    p.p_port = port;
    p.inject(p.repr(kSyn, p.p_iss));
    return p.out();
  };
  const auto a = syn_from(1001);
  const auto b = syn_from(1002);
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 1);
  CHECK(p.tcp->connection_count() == 2);
  // Backlog full and no cookies: the SYN is dropped, unanswered.
  CHECK(syn_from(1003).empty());
  CHECK(p.ctr(StackCounter::tcp_drop_listen_overflow) == 1);
  CHECK(p.tcp->connection_count() == 2);
  // A retransmitted SYN of a pending handshake is still answered (it is not a new one).
  const auto again = syn_from(1001);
  REQUIRE(again.size() == 1);
  CHECK(again[0].seq() == a[0].seq());
  // 1001 completes: its slot in the backlog is free again.
  p.p_port = 1001;
  p.inject(p.repr(kAck, p.p_iss + 1, a[0].seq() + 1));
  CHECK(p.app.accepts == 1);
  const auto c = syn_from(1003);
  REQUIRE(c.size() == 1);
  CHECK(c[0].flags_are(kSyn | kAck));
  CHECK(p.tcp->connection_count() == 3);
  CHECK(syn_from(1004).empty());
  CHECK(p.ctr(StackCounter::tcp_drop_listen_overflow) == 2);
  // A reset half-open connection frees its slot too (back to LISTEN).
  p.p_port = 1002;
  p.inject(p.repr(kRst, p.p_iss + 1));
  CHECK(p.tcp->connection_count() == 2);
  CHECK(syn_from(1004).size() == 1);
  // So does one whose SYN-ACKs time out.
  p.advance(200 * kNsPerSec);
  p.out();  // the SYN-ACK retransmissions
  CHECK(p.tcp->connection_count() == 1);  // only the accepted one
  CHECK(syn_from(1005).size() == 1);
  CHECK(syn_from(1006).size() == 1);
  CHECK(syn_from(1007).empty());
}

namespace {

struct CookieFixture {
  Peer p;
  Out first;   // the normal SYN-ACK to port 1001
  Out cookie;  // the cookie SYN-ACK to port 1002

  explicit CookieFixture(const PeerSyn& syn = {}) {
    p.do_listen(1);
    p.p_port = 1001;
    first = p.syn_to_listener();
    p.p_port = 1002;
    const auto before = p.tcp->connection_count();
    cookie = p.syn_to_listener(syn);
    CHECK(p.tcp->connection_count() == before);  // no state kept
    CHECK(p.ctr(StackCounter::tcp_syncookies_sent) == 1);
  }
};

}  // namespace

TEST_CASE("SYN cookies: a full backlog answers with a cookie, the final ACK creates the connection",
          "[tcp_state][listen][cookies]") {
  SECTION("the right cookie") {
    CookieFixture f;
    Peer& p = f.p;
    CHECK(f.cookie.flags_are(kSyn | kAck));
    CHECK(f.cookie.ack() == p.p_iss + 1);
    CHECK(*f.cookie.h.options.mss == 1460);
    CHECK(f.cookie.seq() != f.first.seq());
    p.send_ack();
    p.none();
    REQUIRE(p.app.accepts == 1);
    p.conn = p.app.conn;
    CHECK(p.state() == TcpState::established);
    CHECK(p.ctr(StackCounter::tcp_syncookies_accepted) == 1);
    CHECK(p.ctr(StackCounter::tcp_passive_opens) == 1);
    CHECK(p.tcp->connection_count() == 2);
    CHECK(p.stats()->mss == 1460);
    // It works both ways.
    p.send_data(bytes_n(300));
    CHECK(p.app.got == bytes_n(300));
    CHECK(p.tcp->send(p.conn, bytes_n(50), p.now) == 50);
    const auto o = p.out();
    REQUIRE_FALSE(o.empty());
    CHECK(o.back().seq() == f.cookie.seq() + 1);
  }
  SECTION("data on the final ACK is delivered") {
    CookieFixture f;
    Peer& p = f.p;
    p.send_data(bytes_n(100));
    REQUIRE(p.app.accepts == 1);
    CHECK(p.app.got == bytes_n(100));
  }
  SECTION("a wrong cookie is reset") {
    CookieFixture f;
    Peer& p = f.p;
    p.inject(p.repr(kAck, p.p_nxt, f.cookie.seq() + 2));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == f.cookie.seq() + 2);
    CHECK(p.app.accepts == 0);
    CHECK(p.ctr(StackCounter::tcp_syncookies_failed) == 1);
    CHECK(p.ctr(StackCounter::tcp_syncookies_accepted) == 0);
    CHECK(p.tcp->connection_count() == 1);
  }
  SECTION("an expired cookie is reset") {
    CookieFixture f;
    Peer& p = f.p;
    p.advance(200 * kNsPerSec);  // beyond two cookie periods
    p.out();                     // port 1001's SYN-ACK retransmissions
    p.send_ack();
    CHECK(p.one().flags_are(kRst));
    CHECK(p.app.accepts == 0);
  }
  SECTION("with timestamps, window scale and SACK-permitted survive in the cookie") {
    CookieFixture f(PeerSyn{1460, 5, true, true});
    Peer& p = f.p;
    REQUIRE(f.cookie.h.options.timestamps);
    CHECK(f.cookie.h.options.wscale);
    CHECK(f.cookie.h.options.sack_permitted);
    p.send_ack();
    REQUIRE(p.app.accepts == 1);
    p.conn = p.app.conn;
    const auto st = p.stats();
    CHECK(st->timestamps);
    CHECK(st->sack);
    CHECK(st->snd_wscale == 5);
    CHECK(st->mss == 1460 - 12);
    // Our clock after the handshake continues the cookie SYN-ACK's: never
    // behind it (the peer's PAWS would drop us), only the option bits ahead.
    p.advance(kNsPerMs);
    CHECK(p.tcp->send(p.conn, bytes_n(10), p.now) == 10);
    const auto o = p.out();
    REQUIRE_FALSE(o.empty());
    REQUIRE(o.back().h.options.timestamps);
    const std::uint32_t ahead = o.back().h.options.timestamps->tsval - f.cookie.h.options.timestamps->tsval;
    CHECK(ahead >= 1);
    CHECK(ahead <= 1 + (2u << tcp::SynCookies::kTsOptionBits));
  }
  SECTION("timestamps on the final ACK that the SYN did not offer carry no options") {
    CookieFixture f(PeerSyn{1460, 5, true, false});
    Peer& p = f.p;
    wire::TcpRepr r = p.repr(kAck, p.p_nxt, f.cookie.seq() + 1);
    r.options.timestamps = wire::TcpTimestamps{12345, 0x1234567fu};  // TSecr: not ours
    p.inject(r);
    REQUIRE(p.app.accepts == 1);
    p.conn = p.app.conn;
    const auto st = p.stats();
    CHECK_FALSE(st->timestamps);
    CHECK_FALSE(st->sack);
    CHECK(st->snd_wscale == 0);
    CHECK(st->mss == 1460);
  }
  SECTION("without timestamps no window scale nor SACK is offered") {
    CookieFixture f(PeerSyn{1460, 5, true, false});
    CHECK_FALSE(f.cookie.h.options.timestamps);
    CHECK_FALSE(f.cookie.h.options.wscale);
    CHECK_FALSE(f.cookie.h.options.sack_permitted);
    f.p.send_ack();
    REQUIRE(f.p.app.accepts == 1);
    f.p.conn = f.p.app.conn;
    CHECK(f.p.stats()->snd_wscale == 0);
    CHECK_FALSE(f.p.stats()->sack);
  }
}

TEST_CASE("SYN cookies: the application may abort and connect from inside on_accept", "[tcp_state][listen][cookies]") {
  CookieFixture f;
  Peer& p = f.p;
  std::optional<TcpConnId> next;
  p.app.accept_hook = [&](tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
    t.abort(c, now);
    // The slot just freed is taken at once by a new active open.
    next = t.connect(kPeerIp, 7000, &p.app, nullptr, t.config().defaults, now, 7001);
  };
  // The completing ACK carries data and a FIN: nothing of it may reach the
  // aborted connection, nor the new one in its slot.
  p.send_data(bytes_n(100), kPsh | kFin);
  REQUIRE(p.app.accepts == 1);
  REQUIRE(next);
  const auto o = p.out();
  INFO(Peer::describe(o));
  REQUIRE(o.size() == 2);
  CHECK(o[0].flags_are(kRst | kAck));
  CHECK(o[0].h.dst_port == 1002);
  CHECK(o[1].flags_are(kSyn));
  CHECK(o[1].h.dst_port == 7000);
  CHECK(p.tcp->state(*next) == TcpState::syn_sent);
  CHECK(p.tcp->readable(*next) == 0);
}
