// SYN-SENT and SYN-RECEIVED: RFC 9293 §3.5 (establishing a connection,
// simultaneous open, half-open detection), §3.10.7.3, §3.10.7.4 for
// SYN-RECEIVED, RFC 5961 §3.2 / §4 (RST and SYN in the handshake), RFC 6298
// (5.7) and the SYN retry limits.
#include "test/unit/tcp_state/peer.hpp"

using namespace ustack;
using namespace ustack::test;

// --- SYN-SENT ------------------------------------------------------------------

TEST_CASE("SYN-SENT: connect() sends a SYN offering every option", "[tcp_state][syn_sent]") {
  Peer p;
  const Out syn = p.connect();
  CHECK(syn.ack() == SeqNum{0});
  CHECK(syn.data.empty());
  CHECK(*syn.h.options.mss == 1460);
  REQUIRE(syn.h.options.wscale);
  CHECK(*syn.h.options.wscale == 1);
  CHECK(syn.h.options.sack_permitted);
  REQUIRE(syn.h.options.timestamps);
  CHECK(syn.h.options.timestamps->tsecr == 0);
  CHECK(syn.h.src_port == kLocalPort);
  CHECK(syn.h.dst_port == kPeerPort);
  CHECK(p.ctr(StackCounter::tcp_active_opens) == 1);
  CHECK(p.tcp->connection_count() == 1);
}

TEST_CASE("SYN-SENT: a SYN-ACK establishes the connection", "[tcp_state][syn_sent]") {
  Peer p;
  SECTION("with every option") {
    p.establish_active(PeerSyn{1460, 3, true, true}, 25 * kNsPerMs);
    const auto st = p.stats();
    CHECK(st->snd_wscale == 3);
    CHECK(st->rcv_wscale == 1);
    CHECK(st->sack);
    CHECK(st->timestamps);
    CHECK(st->mss == 1448);
    CHECK(st->srtt_ns == 25 * kNsPerMs);  // the SYN was timed
    CHECK(st->rto_ns == 200 * kNsPerMs);  // 25 + 4 * 12.5 ms, below the 200 ms minimum
  }
  SECTION("with none: none are used") {
    p.establish_active(PeerSyn{1400, std::nullopt, false, false});
    const auto st = p.stats();
    CHECK(st->snd_wscale == 0);
    CHECK(st->rcv_wscale == 0);
    CHECK_FALSE(st->sack);
    CHECK_FALSE(st->timestamps);
    CHECK(st->mss == 1400);
    CHECK(st->snd_wnd == kPeerWnd);  // the SYN-ACK's window is not scaled
  }
  CHECK(p.ctr(StackCounter::tcp_established) == 1);
  CHECK(p.app.closes == 0);
}

TEST_CASE("SYN-SENT: an unacceptable ACK is reset, the connection goes on", "[tcp_state][syn_sent]") {
  Peer p;
  p.connect();
  for (SeqNum bad : {p.l_iss, p.l_iss + 2, p.l_iss - 1000}) {
    p.inject(p.repr(kSyn | kAck, p.p_iss, bad));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == bad);
    CHECK(p.state() == TcpState::syn_sent);
  }
  CHECK(p.ctr(StackCounter::tcp_drop_bad_ack) == 3);
  // A RST with an unacceptable ACK is dropped, not answered.
  p.inject(p.repr(kRst | kAck, p.p_iss, p.l_iss + 7));
  p.none();
  CHECK(p.state() == TcpState::syn_sent);
  // The right SYN-ACK still works.
  p.inject(p.repr(kSyn | kAck, p.p_iss, p.l_nxt));
  CHECK(p.one().flags_are(kAck));
  CHECK(p.state() == TcpState::established);
}

TEST_CASE("SYN-SENT: RST answering the SYN refuses the connection", "[tcp_state][syn_sent][rst]") {
  Peer p;
  p.connect();
  SECTION("RST without ACK is not acceptable (RFC 5961 §3.2 / RFC 9293 §3.10.7.3)") {
    p.inject(p.repr(kRst, p.p_iss));
    p.none();
    CHECK(p.state() == TcpState::syn_sent);
    CHECK(p.ctr(StackCounter::tcp_drop_rst_out_of_window) == 1);
    CHECK(p.app.closes == 0);
  }
  SECTION("RST,ACK acknowledging the SYN") {
    p.inject(p.repr(kRst | kAck, SeqNum{0}, p.l_iss + 1));
    p.none();
    CHECK(p.app.closes == 1);
    CHECK(p.app.err == TcpError::refused);
    CHECK(p.ctr(StackCounter::tcp_conn_refused) == 1);
    CHECK(p.tcp->connection_count() == 0);
    CHECK_FALSE(p.stats());
    p.advance(10 * kNsPerSec);
    p.none();  // no SYN retransmission after it
  }
}

TEST_CASE("SYN-SENT: a segment with neither SYN nor RST is dropped", "[tcp_state][syn_sent]") {
  Peer p;
  p.connect();
  p.inject(p.repr(kAck, p.p_iss + 1, p.l_iss + 1), bytes_n(10));
  p.inject(p.repr(kFin | kAck, p.p_iss + 1, p.l_iss + 1));
  p.none();
  CHECK(p.state() == TcpState::syn_sent);
  CHECK(p.app.readables == 0);
}

TEST_CASE("SYN-SENT: the SYN is retransmitted with doubling RTO, then connect times out",
          "[tcp_state][syn_sent][timers]") {
  Peer p;
  const TimeNs t0 = p.now;
  const Out syn = p.connect();
  p.advance(122 * kNsPerSec);
  const auto o = p.out();
  REQUIRE(o.size() == 6);  // syn_retries
  const TimeNs expect[] = {1, 3, 7, 15, 31, 63};
  for (std::size_t i = 0; i < o.size(); ++i) {
    CHECK(o[i].flags_are(kSyn));
    CHECK(o[i].seq() == syn.seq());
    CHECK(o[i].at - t0 == expect[i] * kNsPerSec);
  }
  CHECK(p.ctr(StackCounter::tcp_tx_retransmits) == 6);
  CHECK(p.stats()->timeouts == 6);
  CHECK(p.stats()->rto_ns == 60 * kNsPerSec);  // 64 s, capped
  CHECK(p.app.closes == 0);
  // The sixth retransmission's RTO later, it gives up.
  p.advance(1 * kNsPerSec);
  p.none();
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::timed_out);
  CHECK(p.ctr(StackCounter::tcp_conn_timed_out) == 1);
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("SYN-SENT: connect_timeout_ns bounds the attempt", "[tcp_state][syn_sent][timers]") {
  Peer p;
  TcpConnOptions o = p.tcp->config().defaults;
  o.connect_timeout_ns = 5 * kNsPerSec;
  const TimeNs t0 = p.now;
  p.connect(&o);
  p.advance(4999 * kNsPerMs);
  const auto rtx = p.out();
  REQUIRE(rtx.size() == 2);  // at 1 s and 3 s
  CHECK(rtx[0].at - t0 == 1 * kNsPerSec);
  CHECK(rtx[1].at - t0 == 3 * kNsPerSec);
  CHECK(p.app.closes == 0);
  p.advance(kNsPerMs);
  p.none();
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::timed_out);
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("SYN-SENT: a SYN-ACK after a SYN timeout starts the data phase at RTO 3 s (RFC 6298 (5.7))",
          "[tcp_state][syn_sent][timers]") {
  Peer p;
  p.connect();
  p.advance(1500 * kNsPerMs);
  CHECK(p.out().size() == 1);
  // The SYN-ACK answers the retransmission: Karn, no RTT sample.
  p.inject(p.repr(kSyn | kAck, p.p_iss, p.l_nxt));
  p.p_nxt = p.p_iss + 1;
  CHECK(p.one().flags_are(kAck));
  const auto st = p.stats();
  CHECK(st->srtt_ns == 0);
  CHECK(st->rto_ns == 3 * kNsPerSec);
}

TEST_CASE("SYN-SENT: data and FIN queued before the handshake leave after it", "[tcp_state][syn_sent]") {
  Peer p;
  p.connect();
  CHECK(p.tcp->send(p.conn, bytes_n(100), p.now) == 100);
  p.tcp->shutdown(p.conn, p.now);
  p.none();  // nothing before the SYN-ACK
  p.inject(p.repr(kSyn | kAck, p.p_iss, p.l_nxt));
  p.p_nxt = p.p_iss + 1;
  CHECK(p.state() == TcpState::fin_wait_1);
  const auto o = p.out();
  REQUIRE_FALSE(o.empty());
  const Out& last = o.back();
  CHECK(last.h.flags.fin());
  CHECK(last.data == bytes_n(100));
  CHECK(last.seq() == p.l_iss + 1);
  CHECK(last.ack() == p.p_nxt);
}

TEST_CASE("SYN-SENT: close() and abort() end it without a segment", "[tcp_state][syn_sent]") {
  Peer p;
  p.connect();
  SECTION("close") { p.tcp->close(p.conn, p.now); }
  SECTION("abort") { p.tcp->abort(p.conn, p.now); }
  p.none();
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.app.closes == 0);  // the application ended it itself
  p.advance(10 * kNsPerSec);
  p.none();
}

TEST_CASE("Simultaneous open: both ends send a SYN (RFC 9293 §3.5 figure 7)", "[tcp_state][syn_sent][simultaneous]") {
  Peer p;
  p.connect();
  // The peer's SYN crosses ours: SYN-RECEIVED, and a SYN-ACK with our ISS.
  wire::TcpRepr syn = p.repr(kSyn, p.p_iss);
  syn.options.mss = 1400;
  syn.options.wscale = 7;
  p.inject(syn);
  p.p_nxt = p.p_iss + 1;
  const Out sa = p.one();
  CHECK(sa.flags_are(kSyn | kAck));
  CHECK(sa.seq() == p.l_iss);
  CHECK(sa.ack() == p.p_iss + 1);
  CHECK(p.state() == TcpState::syn_received);
  CHECK(p.app.connects == 0);

  SECTION("the peer's SYN-ACK completes it (figure 7 line 6)") {
    wire::TcpRepr sa2 = p.repr(kSyn | kAck, p.p_iss, p.l_nxt);
    sa2.window = 1000;
    sa2.options.mss = 1400;
    sa2.options.wscale = 7;
    p.inject(sa2);
    CHECK(p.state() == TcpState::established);
    CHECK(p.stats()->snd_wnd == 1000);  // a SYN's window is not scaled
    // Nothing to answer: the SYN-ACK was the peer's ACK of our SYN.
    for (const Out& o : p.out()) CHECK_FALSE(o.h.flags.syn());
  }
  SECTION("the peer's ACK completes it") {
    p.send_ack();
    p.none();
    CHECK(p.state() == TcpState::established);
    CHECK(p.stats()->snd_wnd == std::uint32_t{kPeerWnd} << 7);
  }
  SECTION("a SYN-ACK with an unacceptable ACK is reset") {
    p.inject(p.repr(kSyn | kAck, p.p_iss, p.l_nxt + 10));
    CHECK(p.one().flags_are(kRst));
    CHECK(p.state() == TcpState::syn_received);
    p.send_ack();
    CHECK(p.state() == TcpState::established);
  }
  CHECK(p.app.connects == 1);
  CHECK(p.app.accepts == 0);
  CHECK(p.stats()->mss == 1400);
  p.send_data(bytes_n(10));
  CHECK(p.app.got == bytes_n(10));
}

// --- SYN-RECEIVED ----------------------------------------------------------------

TEST_CASE("SYN-RECEIVED: the handshake's ACK establishes, and the listener accepts", "[tcp_state][syn_received]") {
  Peer p;
  p.establish_passive(PeerSyn{}, 30 * kNsPerMs);
  CHECK(p.ctr(StackCounter::tcp_passive_opens) == 1);
  CHECK(p.ctr(StackCounter::tcp_established) == 1);
  CHECK(p.stats()->srtt_ns == 30 * kNsPerMs);
  CHECK(p.tcp->user(p.conn) == nullptr);
}

TEST_CASE("SYN-RECEIVED: a retransmitted SYN gets the SYN-ACK again", "[tcp_state][syn_received]") {
  Peer p;
  p.do_listen();
  const Out sa = p.syn_to_listener();
  p.inject(p.repr(kSyn, p.p_iss));
  const Out again = p.one();
  CHECK(again.flags_are(kSyn | kAck));
  CHECK(again.seq() == sa.seq());
  CHECK(again.ack() == sa.ack());
  CHECK(p.tcp->connection_count() == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_retransmits) == 1);
}

TEST_CASE("SYN-RECEIVED: a different SYN in the window gets a challenge ACK (RFC 5961 §4)",
          "[tcp_state][syn_received]") {
  Peer p;
  p.do_listen();
  const Out sa = p.syn_to_listener();
  p.inject(p.repr(kSyn, p.p_iss + 100));
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.seq() == sa.seq() + 1);
  CHECK(a.ack() == p.p_iss + 1);
  CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 1);
  CHECK(p.tcp->connection_count() == 1);
  // The handshake still completes.
  p.send_ack();
  CHECK(p.app.accepts == 1);
}

TEST_CASE("SYN-RECEIVED: the SYN-ACK is retransmitted, then the half-open connection is dropped",
          "[tcp_state][syn_received][timers]") {
  Peer p;
  p.do_listen(4);
  const TimeNs t0 = p.now;
  const Out sa = p.syn_to_listener();
  p.advance(100 * kNsPerSec);
  const auto o = p.out();
  REQUIRE(o.size() == 5);  // synack_retries
  const TimeNs expect[] = {1, 3, 7, 15, 31};
  for (std::size_t i = 0; i < o.size(); ++i) {
    CHECK(o[i].flags_are(kSyn | kAck));
    CHECK(o[i].seq() == sa.seq());
    CHECK(o[i].at - t0 == expect[i] * kNsPerSec);
  }
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.ctr(StackCounter::tcp_conn_timed_out) == 1);
  CHECK(p.app.closes == 0);  // never accepted, nobody to tell
  // Its ACK now finds only the listener: not a valid cookie, so a RST.
  p.send_ack();
  CHECK(p.one().flags_are(kRst));
}

TEST_CASE("SYN-RECEIVED: RST (RFC 5961 §3.2)", "[tcp_state][syn_received][rst]") {
  Peer p;
  p.do_listen(1);
  p.syn_to_listener();
  SECTION("exactly RCV.NXT: back to LISTEN") {
    p.inject(p.repr(kRst, p.p_nxt));
    p.none();
    CHECK(p.tcp->connection_count() == 0);
    CHECK(p.app.closes == 0);
    // The backlog slot is free: a new SYN gets a real SYN-ACK, not a cookie.
    p.p_port = 1234;
    p.syn_to_listener();
    CHECK(p.tcp->connection_count() == 1);
    CHECK(p.ctr(StackCounter::tcp_syncookies_sent) == 0);
  }
  SECTION("in the window but not RCV.NXT: challenge ACK") {
    p.inject(p.repr(kRst, p.p_nxt + 1000));
    const Out a = p.one();
    CHECK(a.flags_are(kAck));
    CHECK(a.seq() == p.l_nxt);
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 1);
    CHECK(p.tcp->connection_count() == 1);
  }
  SECTION("outside the window: dropped") {
    p.inject(p.repr(kRst, p.p_nxt + 100000));
    p.inject(p.repr(kRst, p.p_nxt - 1));
    p.none();
    CHECK(p.ctr(StackCounter::tcp_drop_rst_out_of_window) == 2);
    CHECK(p.tcp->connection_count() == 1);
  }
}

TEST_CASE("SYN-RECEIVED: an unacceptable ACK is answered by <SEQ=SEG.ACK><CTL=RST>",
          "[tcp_state][syn_received]") {
  Peer p;
  p.do_listen();
  p.syn_to_listener();
  SECTION("ACK of our ISS (nothing new)") {
    p.inject(p.repr(kAck, p.p_nxt, p.l_iss));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == p.l_iss);
  }
  SECTION("ACK beyond the SYN (RFC 9293 §3.10.7.4: SND.UNA < SEG.ACK =< SND.NXT or reset)") {
    p.inject(p.repr(kAck, p.p_nxt, p.l_iss + 5));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == p.l_iss + 5);
  }
  SECTION("an old ACK far behind") {
    p.inject(p.repr(kAck, p.p_nxt, p.l_iss - 200000));
    const Out r = p.one();
    CHECK(r.flags_are(kRst));
    CHECK(r.seq() == p.l_iss - 200000);
  }
  // The half-open connection is not harmed: the right ACK still completes it.
  CHECK(p.app.accepts == 0);
  p.send_ack();
  CHECK(p.app.accepts == 1);
}

TEST_CASE("SYN-RECEIVED: data and FIN on the handshake's ACK", "[tcp_state][syn_received]") {
  Peer p;
  p.do_listen();
  p.syn_to_listener();
  p.send_data(bytes_n(200), kPsh | kFin);
  REQUIRE(p.app.accepts == 1);
  p.conn = p.app.conn;
  CHECK(p.app.got == bytes_n(200));
  CHECK(p.app.eof);
  CHECK(p.state() == TcpState::close_wait);
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.ack() == p.p_nxt);
}

TEST_CASE("SYN-SENT: the SYN-ACK's window is not scaled (RFC 7323 §2.2)", "[tcp_state][syn_sent][options]") {
  Peer p;
  p.connect();
  wire::TcpRepr r = p.repr(kSyn | kAck, p.p_iss, p.l_nxt);
  r.window = 1000;
  r.options.mss = 1460;
  r.options.wscale = 7;
  p.inject(r);
  p.p_nxt = p.p_iss + 1;
  CHECK(p.one().flags_are(kAck));
  REQUIRE(p.stats()->snd_wscale == 7);
  CHECK(p.stats()->snd_wnd == 1000);
  // Only what the peer offered goes out.
  p.tcp->send(p.conn, bytes_n(5000), p.now);
  std::size_t sent = 0;
  for (const Out& o : p.out()) sent += o.data.size();
  CHECK(sent == 1000);
  // Its next segment's window is scaled.
  p.l_nxt += 1000;
  p.p_wnd = 100;
  p.send_ack();
  CHECK(p.stats()->snd_wnd == 100u << 7);
}

TEST_CASE("ESTABLISHED (active): a retransmitted SYN-ACK is acknowledged again", "[tcp_state][syn_sent]") {
  Peer p;
  p.establish_active();
  // Our ACK of the SYN-ACK was lost: the peer sends it again.
  p.inject(p.repr(kSyn | kAck, p.p_iss, p.l_iss + 1));
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.seq() == p.l_nxt);
  CHECK(a.ack() == p.p_nxt);
  CHECK(p.state() == TcpState::established);
  CHECK(p.app.connects == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 0);
}
