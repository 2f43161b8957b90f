// FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: RFC 9293
// §3.6 (closing, half-close, simultaneous close), §3.10.4, §3.10.7.4's FIN
// processing, TIME-WAIT's 2 MSL and its reuse by RFC 6191.
#include "test/unit/tcp_state/peer.hpp"

using namespace ustack;
using namespace ustack::test;

// --- FIN-WAIT-1 ----------------------------------------------------------------

TEST_CASE("FIN-WAIT-1: the ACK of our FIN leads to FIN-WAIT-2", "[tcp_state][fin_wait_1]") {
  Peer p;
  p.establish_passive();
  p.to_fin_wait_2();
  CHECK(p.stats()->state == TcpState::fin_wait_2);
  CHECK(p.app.closes == 0);
  CHECK(p.tcp->send(p.conn, bytes_n(10), p.now) == 0);  // no more sending after shutdown
}

TEST_CASE("FIN-WAIT-1: an ACK of data but not of the FIN keeps it there", "[tcp_state][fin_wait_1]") {
  Peer p;
  p.establish_passive();
  p.tcp->send(p.conn, bytes_n(100), p.now);
  p.tcp->shutdown(p.conn, p.now);
  const auto o = p.out();
  REQUIRE_FALSE(o.empty());
  CHECK(o.back().h.flags.fin());
  p.l_nxt += 100;
  p.send_ack();  // acknowledges the data only
  p.none();
  CHECK(p.state() == TcpState::fin_wait_1);
  p.l_nxt += 1;
  p.send_ack();
  CHECK(p.state() == TcpState::fin_wait_2);
}

TEST_CASE("FIN-WAIT-1: FIN and ACK of our FIN together lead to TIME-WAIT", "[tcp_state][fin_wait_1]") {
  Peer p;
  p.establish_passive();
  p.to_fin_wait_1();
  p.send_fin();  // acknowledges l_nxt, which includes our FIN
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.ack() == p.p_nxt);
  CHECK(p.in_time_wait());
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::none);
  CHECK(p.app.eof);  // the end of the stream was heard before the end of the connection
}

TEST_CASE("FIN-WAIT-1: our FIN is retransmitted until acknowledged", "[tcp_state][fin_wait_1][timers]") {
  Peer p;
  p.establish_passive();
  const Out f = p.to_fin_wait_1();
  p.advance(200 * kNsPerMs);
  const Out r = p.one();
  CHECK(r.flags_are(kFin | kAck));
  CHECK(r.seq() == f.seq());
  CHECK(r.at - f.at == 200 * kNsPerMs);
  p.advance(400 * kNsPerMs);
  CHECK(p.one().seq() == f.seq());
  p.send_ack();
  CHECK(p.state() == TcpState::fin_wait_2);
  p.advance(10 * kNsPerSec);
  p.none();
}

TEST_CASE("Simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT (RFC 9293 §3.6 figure 13)",
          "[tcp_state][closing]") {
  Peer p;
  p.establish_passive();
  p.to_closing();
  CHECK(p.app.eof);
  CHECK(p.app.closes == 0);
  SECTION("the ACK of our FIN") {
    p.send_ack();
    p.none();
  }
  SECTION("our FIN is retransmitted in CLOSING, then acknowledged") {
    p.advance(200 * kNsPerMs);
    const Out r = p.one();
    CHECK(r.flags_are(kFin | kAck));
    CHECK(r.seq() == p.l_nxt - 1);
    CHECK(r.ack() == p.p_nxt);
    p.send_ack();
  }
  CHECK(p.in_time_wait());
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::none);
  CHECK(p.ctr(StackCounter::tcp_conn_closed) == 1);
}

// --- FIN-WAIT-2 ----------------------------------------------------------------

TEST_CASE("Half-close: after shutdown() the connection keeps receiving", "[tcp_state][fin_wait_2][half_close]") {
  Peer p;
  p.establish_passive();
  p.tcp->set_delayed_ack(p.conn, false);
  SECTION("in FIN-WAIT-1") { p.to_fin_wait_1(); }
  SECTION("in FIN-WAIT-2") { p.to_fin_wait_2(); }
  p.send_data(bytes_n(500));
  CHECK(p.app.got == bytes_n(500));
  CHECK(p.one().ack() == p.p_nxt);
  p.send_data(bytes_n(700, 3));
  CHECK(p.app.got.size() == 1200);
  p.one();
  CHECK_FALSE(p.app.eof);
  if (p.state() == TcpState::fin_wait_1) {
    p.send_ack();
    CHECK(p.state() == TcpState::fin_wait_2);
  }
  p.send_fin();
  p.one();
  CHECK(p.app.eof);
  CHECK(p.in_time_wait());
  CHECK(p.stats() == std::nullopt);
  CHECK(p.app.closes == 1);
}

TEST_CASE("FIN-WAIT-2: waits for the FIN as long as the application holds the connection",
          "[tcp_state][fin_wait_2][timers]") {
  Peer p;
  p.establish_passive();
  p.to_fin_wait_2();
  p.advance(600 * kNsPerSec);
  p.none();
  CHECK(p.state() == TcpState::fin_wait_2);
}

TEST_CASE("FIN-WAIT-2: orphaned by close(), it ends after fin_wait_2_timeout", "[tcp_state][fin_wait_2][timers]") {
  Peer p;
  p.establish_passive();
  SECTION("close() in FIN-WAIT-2") {
    p.to_fin_wait_2();
    p.tcp->close(p.conn, p.now);
  }
  SECTION("close() in ESTABLISHED, then the ACK of the FIN") {
    p.tcp->close(p.conn, p.now);
    CHECK(p.one().flags_are(kFin | kAck));
    p.l_nxt += 1;
    p.send_ack();
  }
  p.none();
  CHECK(p.tcp->connection_count() == 1);
  p.advance(60 * kNsPerSec - 1);
  CHECK(p.tcp->connection_count() == 1);
  p.advance(1);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.ctr(StackCounter::tcp_conn_closed) == 1);
  CHECK(p.app.closes == 0);
  p.none();
}

// --- CLOSE-WAIT, LAST-ACK --------------------------------------------------------

TEST_CASE("CLOSE-WAIT: we keep sending after the peer's FIN", "[tcp_state][close_wait][half_close]") {
  Peer p;
  p.establish_passive();
  p.to_close_wait();
  CHECK(p.app.eof);
  CHECK(p.tcp->send(p.conn, bytes_n(3000), p.now) == 3000);
  const auto o = p.out();
  REQUIRE(o.size() == 3);
  for (const Out& d : o) CHECK(d.ack() == p.p_nxt);
  p.l_nxt += 3000;
  p.send_ack();
  CHECK(p.stats()->bytes_out == 3000);
  CHECK(p.stats()->unacked == 0);
  CHECK(p.state() == TcpState::close_wait);
}

TEST_CASE("CLOSE-WAIT: a retransmitted FIN is acknowledged again", "[tcp_state][close_wait]") {
  Peer p;
  p.establish_passive();
  p.to_close_wait();
  p.send(kAck | kFin, p.p_nxt - 1);
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.ack() == p.p_nxt);
  CHECK(p.state() == TcpState::close_wait);
  CHECK(p.app.readables == 1);  // one end of stream
}

TEST_CASE("CLOSE-WAIT: text after the FIN is ignored", "[tcp_state][close_wait]") {
  Peer p;
  p.establish_passive();
  p.to_close_wait();
  p.send(kAck | kPsh, p.p_nxt, bytes_n(10));
  CHECK(p.app.got.empty());
  CHECK(p.stats()->bytes_in == 0);
  CHECK(p.state() == TcpState::close_wait);
}

TEST_CASE("LAST-ACK: the ACK of our FIN ends the connection", "[tcp_state][last_ack]") {
  Peer p;
  p.establish_passive();
  p.to_last_ack();
  CHECK(p.app.closes == 0);
  p.send_ack();
  p.none();
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::none);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.tcp->time_wait_count() == 0);  // the passive closer has no TIME-WAIT
  CHECK(p.ctr(StackCounter::tcp_conn_closed) == 1);
}

TEST_CASE("LAST-ACK: close() in CLOSE-WAIT; an ACK short of the FIN keeps it", "[tcp_state][last_ack]") {
  Peer p;
  p.establish_passive();
  p.to_close_wait();
  p.tcp->send(p.conn, bytes_n(100), p.now);
  p.tcp->close(p.conn, p.now);
  const auto o = p.out();
  REQUIRE_FALSE(o.empty());
  CHECK(o.back().h.flags.fin());
  p.l_nxt += 100;
  p.send_ack();
  CHECK(p.tcp->connection_count() == 1);
  // The FIN is retransmitted (RTO 200 ms) until acknowledged.
  p.advance(200 * kNsPerMs);
  const Out r = p.one();
  CHECK(r.flags_are(kFin | kAck));
  CHECK(r.seq() == p.l_nxt);
  p.l_nxt += 1;
  p.send_ack();
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.app.closes == 0);  // closed by the application: no callback
}

// --- TIME-WAIT -------------------------------------------------------------------

TEST_CASE("TIME-WAIT: lasts 2 MSL", "[tcp_state][time_wait][timers]") {
  Peer p;
  p.to_state(TcpState::time_wait);
  const TimeNs msl = p.tcp->config().msl;
  p.advance(2 * msl - 1);
  CHECK(p.in_time_wait());
  p.advance(1);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.tcp->time_wait_count() == 0);
  p.none();
  CHECK(p.app.closes == 1);  // once, when it entered TIME-WAIT
}

TEST_CASE("TIME-WAIT: a retransmitted FIN is acknowledged and restarts 2 MSL", "[tcp_state][time_wait]") {
  Peer p;
  p.to_state(TcpState::time_wait);
  const TimeNs msl = p.tcp->config().msl;
  p.advance(msl);
  p.send(kAck | kFin, p.p_nxt - 1);
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.ack() == p.p_nxt);
  p.advance(2 * msl - 1);
  CHECK(p.in_time_wait());
  p.advance(1);
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("TIME-WAIT: reuse by a new SYN (RFC 6191)", "[tcp_state][time_wait][reuse]") {
  SECTION("with timestamps: a higher TSval reopens it") {
    Peer p;
    p.to_state(TcpState::time_wait, PeerSyn{1460, std::nullopt, false, true});
    p.p_iss = p.p_nxt - 100000;  // RFC 6191: with timestamps the sequence number does not matter
    p.p_tsval += 10;
    const Out sa = p.syn_to_listener(PeerSyn{1460, std::nullopt, false, true});
    CHECK(sa.ack() == p.p_iss + 1);
    CHECK(p.ctr(StackCounter::tcp_time_wait_reused) == 1);
    CHECK(p.tcp->time_wait_count() == 0);
    CHECK(p.tcp->connection_count() == 1);
    p.send_ack();
    CHECK(p.app.accepts == 2);
  }
  SECTION("with timestamps: a lower TSval does not") {
    Peer p;
    p.to_state(TcpState::time_wait, PeerSyn{1460, std::nullopt, false, true});
    wire::TcpRepr syn = p.repr(kSyn, p.p_nxt + 100000);
    syn.options.timestamps = wire::TcpTimestamps{p.p_tsval - 100, 0};
    p.inject(syn);
    const Out a = p.one();  // the TIME-WAIT connection's ACK
    CHECK(a.flags_are(kAck));
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.in_time_wait());
    CHECK(p.ctr(StackCounter::tcp_time_wait_reused) == 0);
    CHECK(p.ctr(StackCounter::tcp_drop_paws) == 1);
  }
  SECTION("without timestamps: a sequence number above RCV.NXT reopens it") {
    Peer p;
    p.to_state(TcpState::time_wait);
    p.p_iss = p.p_nxt + 100000;
    const Out sa = p.syn_to_listener();
    CHECK(sa.ack() == p.p_iss + 1);
    CHECK(p.ctr(StackCounter::tcp_time_wait_reused) == 1);
    CHECK(p.tcp->time_wait_count() == 0);
  }
  SECTION("without timestamps: an old sequence number does not") {
    Peer p;
    p.to_state(TcpState::time_wait);
    p.inject(p.repr(kSyn, p.p_nxt - 10));
    CHECK(p.one().flags_are(kAck));
    CHECK(p.in_time_wait());
    CHECK(p.ctr(StackCounter::tcp_time_wait_reused) == 0);
  }
}

TEST_CASE("TIME-WAIT: the oldest is recycled when the pool runs out", "[tcp_state][time_wait]") {
  tcp::TcpConfig cfg = state_config();
  cfg.max_connections = 1;
  Peer p(cfg);
  p.to_state(TcpState::time_wait);
  p.p_port = 5555;
  p.syn_to_listener();
  CHECK(p.ctr(StackCounter::tcp_time_wait_recycled) == 1);
  CHECK(p.tcp->time_wait_count() == 0);
  CHECK(p.tcp->connection_count() == 1);
  // With the pool full and no TIME-WAIT to recycle, a SYN gets a cookie.
  p.p_port = 5556;
  p.syn_to_listener();
  CHECK(p.ctr(StackCounter::tcp_syncookies_sent) == 1);
  CHECK(p.tcp->connection_count() == 1);
}

TEST_CASE("TIME-WAIT: ended by a RST, its slot does not stay on the TIME-WAIT list", "[tcp_state][time_wait][rst]") {
  tcp::TcpConfig cfg = state_config();
  cfg.max_connections = 2;
  Peer p(cfg);
  p.to_state(TcpState::time_wait);
  p.inject(p.repr(kRst, p.p_nxt));
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.tcp->time_wait_count() == 0);
  // Two live connections fill the pool; one of them reuses the slot.
  std::vector<TcpConnId> live;
  for (std::uint16_t port : {1001, 1002}) {
    p.p_port = port;
    p.app.accepts = 0;
    p.establish_passive();
    live.push_back(p.conn);
  }
  // A third SYN finds no TIME-WAIT to recycle: a cookie, and both live
  // connections untouched.
  p.p_port = 1003;
  p.syn_to_listener();
  CHECK(p.ctr(StackCounter::tcp_syncookies_sent) == 1);
  CHECK(p.ctr(StackCounter::tcp_time_wait_recycled) == 0);
  for (TcpConnId c : live) CHECK(p.tcp->state(c) == TcpState::established);
}
