// Timers and send/ACK policy on virtual time: RFC 6298 (RTO, backoff, Karn,
// minimum RTO), RFC 9293 §3.8.6.1 (zero window, persist), §3.8.6.3 and RFC
// 1122 §4.2.3.2 (delayed ACK), RFC 896 (Nagle), RFC 1122 §4.2.3.6
// (keepalive), RFC 9293 §3.8.3 R2 (user timeout).
#include "test/unit/tcp_state/peer.hpp"

using namespace ustack;
using namespace ustack::test;

TEST_CASE("RTO: doubling backoff from the 200 ms minimum, Karn's rule for the samples",
          "[tcp_state][timers][rto]") {
  Peer p;
  p.establish_passive(PeerSyn{}, 2 * kNsPerMs);  // a short RTT: the minimum RTO applies
  REQUIRE(p.stats()->rto_ns == 200 * kNsPerMs);
  const TimeNs t0 = p.now;
  p.tcp->send(p.conn, bytes_n(100), p.now);
  const Out d = p.one();
  p.advance(3100 * kNsPerMs);
  const auto rtx = p.out();
  REQUIRE(rtx.size() == 4);
  const TimeNs expect[] = {200, 600, 1400, 3000};  // 200, 400, 800, 1600 ms apart
  for (std::size_t i = 0; i < rtx.size(); ++i) {
    CHECK(rtx[i].seq() == d.seq());
    CHECK(rtx[i].data == d.data);
    CHECK(rtx[i].at - t0 == expect[i] * kNsPerMs);
  }
  auto st = p.stats();
  CHECK(st->timeouts == 4);
  CHECK(st->retransmits == 4);
  CHECK(st->rto_ns == 3200 * kNsPerMs);
  CHECK(st->cwnd == st->mss);  // RFC 5681 §3.1: one segment after a timeout
  CHECK(p.ctr(StackCounter::tcp_tx_retransmits) == 4);

  // The ACK of a retransmitted segment is no RTT sample (Karn): the RTO stays backed off.
  p.advance(50 * kNsPerMs);
  p.l_nxt += 100;
  p.send_ack();
  st = p.stats();
  CHECK(st->srtt_ns == 2 * kNsPerMs);
  CHECK(st->rto_ns == 3200 * kNsPerMs);
  // New data, timed, and acknowledged: the RTO collapses to the estimate.
  p.tcp->send(p.conn, bytes_n(100), p.now);
  p.one();
  p.advance(4 * kNsPerMs);
  p.l_nxt += 100;
  p.send_ack();
  st = p.stats();
  CHECK(st->srtt_ns > 2 * kNsPerMs);
  CHECK(st->rto_ns == 200 * kNsPerMs);
  p.advance(10 * kNsPerSec);
  p.none();
}

TEST_CASE("RTO: a configured minimum", "[tcp_state][timers][rto]") {
  tcp::TcpConfig cfg = state_config();
  cfg.rtt.min_rto = 1 * kNsPerSec;
  Peer p(cfg);
  p.establish_passive(PeerSyn{}, 2 * kNsPerMs);
  CHECK(p.stats()->rto_ns == 1 * kNsPerSec);
  p.tcp->send(p.conn, bytes_n(10), p.now);
  const Out d = p.one();
  p.advance(1 * kNsPerSec);
  CHECK(p.one().at - d.at == 1 * kNsPerSec);
}

TEST_CASE("RTO: the user timeout gives up with a RST (RFC 9293 §3.8.3 R2)", "[tcp_state][timers][rto]") {
  Peer p;
  TcpConnOptions o = p.tcp->config().defaults;
  o.user_timeout_ns = 5 * kNsPerSec;
  p.do_listen(8, &o);
  p.establish_passive(PeerSyn{}, 2 * kNsPerMs);
  p.tcp->send(p.conn, bytes_n(10), p.now);
  p.one();
  p.advance(20 * kNsPerSec);
  const auto o2 = p.out();
  REQUIRE(o2.size() >= 2);
  CHECK(o2.back().flags_are(kRst | kAck));
  CHECK(o2.back().at >= o2.front().at + 5 * kNsPerSec - 200 * kNsPerMs);
  CHECK(p.app.closes == 1);
  CHECK(p.app.err == TcpError::timed_out);
  CHECK(p.ctr(StackCounter::tcp_conn_timed_out) == 1);
  CHECK(p.tcp->connection_count() == 0);
}

TEST_CASE("Zero window: the persist timer probes with backoff, a window update reopens",
          "[tcp_state][timers][persist]") {
  Peer p;
  p.establish_passive(PeerSyn{}, 2 * kNsPerMs);
  SECTION("closed from the start") {
    p.p_wnd = 0;
    p.send_ack();
    CHECK(p.stats()->snd_wnd == 0);
  }
  SECTION("closed by the ACK of the data in flight") {
    p.tcp->send(p.conn, bytes_n(500), p.now);
    p.one();
    p.l_nxt += 500;
    p.p_wnd = 0;
    p.send_ack();
    CHECK(p.stats()->snd_wnd == 0);
  }
  const TimeNs t0 = p.now;
  CHECK(p.tcp->send(p.conn, bytes_n(1000), p.now) == 1000);
  p.none();  // nothing fits
  // Probes at RTO, then doubling; each is answered with the zero window.
  const TimeNs expect[] = {200, 600, 1400, 3000};
  for (TimeNs e : expect) {
    p.advance_to(t0 + e * kNsPerMs - 1);
    p.none();
    p.advance(1);
    const Out probe = p.one();
    CHECK(probe.flags_are(kAck));
    CHECK(probe.data.empty());
    CHECK(probe.seq() == p.l_nxt - 1);  // one below SND.UNA: the peer must answer
    p.send_ack();
    p.none();
  }
  CHECK(p.stats()->retransmits == 0);  // probes are not retransmissions
  CHECK(p.tcp->connection_count() == 1);
  // The window opens: the data leaves at once, and no more probes.
  p.p_wnd = 600;
  p.send_ack();
  const Out d = p.one();
  CHECK(d.seq() == p.l_nxt);
  CHECK(d.data.size() == 600);
  p.l_nxt += 600;
  p.p_wnd = 65535;
  p.send_ack();
  const Out rest = p.one();
  CHECK(rest.data.size() == 400);
  p.l_nxt += 400;
  p.send_ack();
  p.advance(60 * kNsPerSec);
  p.none();
}

TEST_CASE("Delayed ACK: 40 ms, every second segment, at once when asked", "[tcp_state][timers][delack]") {
  Peer p;
  p.establish_passive();
  const auto seg = bytes_n(1000);
  SECTION("one segment: ACK after the 40 ms timer") {
    p.send_data(seg);
    const TimeNs t = p.now;
    p.none();
    p.advance(40 * kNsPerMs - 1);
    p.none();
    p.advance(1);
    const Out a = p.one();
    CHECK(a.ack() == p.p_nxt);
    CHECK(a.at - t == 40 * kNsPerMs);
  }
  SECTION("every second segment is acknowledged at once") {
    p.send_data(seg);
    p.none();
    p.advance(10 * kNsPerMs);
    p.send_data(seg);
    CHECK(p.one().ack() == p.p_nxt);
    p.advance(100 * kNsPerMs);
    p.none();  // the timer was cancelled by that ACK
  }
  SECTION("out-of-order data is acknowledged at once") {
    p.send(kAck | kPsh, p.p_nxt + 1000, seg);
    CHECK(p.one().ack() == p.p_nxt);
  }
  SECTION("data going out carries the ACK and cancels the timer") {
    p.send_data(seg);
    p.none();
    p.tcp->send(p.conn, bytes_n(10), p.now);
    const Out d = p.one();
    CHECK(d.ack() == p.p_nxt);
    p.advance(100 * kNsPerMs);
    p.none();
  }
  SECTION("delayed ACKs off: every segment at once") {
    p.tcp->set_delayed_ack(p.conn, false);
    p.send_data(seg);
    CHECK(p.one().ack() == p.p_nxt);
  }
}

TEST_CASE("Delayed ACK: quick-ack for the first segments of a connection", "[tcp_state][timers][delack]") {
  tcp::TcpConfig cfg = state_config();
  cfg.quickack_segments = 4;
  Peer p(cfg);
  p.establish_passive();
  for (int i = 0; i < 4; ++i) {
    p.send_data(bytes_n(100));
    CHECK(p.one().ack() == p.p_nxt);
  }
  p.send_data(bytes_n(100));
  p.none();  // delayed from now on
  p.advance(40 * kNsPerMs);
  CHECK(p.one().ack() == p.p_nxt);
}

TEST_CASE("Nagle: small segments wait for the ACK of the outstanding one (RFC 896)", "[tcp_state][nagle]") {
  Peer p;
  p.establish_passive();
  SECTION("on") {
    p.tcp->set_nagle(p.conn, true, p.now);
    p.tcp->send(p.conn, bytes_n(10), p.now);
    CHECK(p.one().data.size() == 10);  // nothing in flight: goes
    p.tcp->send(p.conn, bytes_n(10), p.now);
    p.tcp->send(p.conn, bytes_n(10), p.now);
    p.none();  // held
    // A full segment is not held.
    p.tcp->send(p.conn, bytes_n(1460), p.now);
    const Out full = p.one();
    CHECK(full.data.size() == 1460);
    CHECK(full.seq() == p.l_nxt + 10);
    p.l_nxt += 10;
    p.send_ack();
    p.none();  // still a full segment in flight
    p.l_nxt += 1460;
    p.send_ack();
    const Out rest = p.one();  // everything that was held, in one segment
    CHECK(rest.data.size() == 20);
    SECTION("turning it off sends at once") {
      p.l_nxt += 20;
      p.send_ack();
      p.tcp->send(p.conn, bytes_n(5), p.now);
      CHECK(p.one().data.size() == 5);
      p.tcp->send(p.conn, bytes_n(5), p.now);
      p.none();
      p.tcp->set_nagle(p.conn, false, p.now);
      CHECK(p.one().data.size() == 5);
    }
  }
  SECTION("off (the default)") {
    for (int i = 0; i < 3; ++i) {
      p.tcp->send(p.conn, bytes_n(10), p.now);
      CHECK(p.one().data.size() == 10);
    }
  }
}

TEST_CASE("Keepalive: probes after the idle time, then a timeout (RFC 1122 §4.2.3.6)",
          "[tcp_state][timers][keepalive]") {
  Peer p;
  TcpConnOptions o = p.tcp->config().defaults;
  o.keepalive = true;
  o.keepalive_idle_ns = 10 * kNsPerSec;
  o.keepalive_interval_ns = 2 * kNsPerSec;
  o.keepalive_probes = 3;
  p.do_listen(8, &o);
  p.establish_passive();
  const TimeNs t0 = p.now;
  SECTION("answered probes keep it open") {
    for (int round = 0; round < 3; ++round) {
      const TimeNs start = p.now;
      p.advance(10 * kNsPerSec - 1);
      p.none();
      p.advance(1);
      const Out probe = p.one();
      CHECK(probe.flags_are(kAck));
      CHECK(probe.data.empty());
      CHECK(probe.seq() == p.l_nxt - 1);
      CHECK(probe.at - start == 10 * kNsPerSec);
      p.send_ack();  // the peer's answer
    }
    CHECK(p.app.closes == 0);
  }
  SECTION("traffic postpones the first probe") {
    p.advance(6 * kNsPerSec);
    p.send_data(bytes_n(10));
    p.advance(4 * kNsPerSec);
    p.out();  // the delayed ACK
    p.advance(6 * kNsPerSec - 1);
    p.none();
    p.advance(1);
    CHECK(p.one().seq() == p.l_nxt - 1);
  }
  SECTION("unanswered probes time it out") {
    p.advance(20 * kNsPerSec);
    const auto probes = p.out();
    REQUIRE(probes.size() == 4);
    const TimeNs expect[] = {10, 12, 14, 16};
    for (std::size_t i = 0; i < 4; ++i) CHECK(probes[i].at - t0 == expect[i] * kNsPerSec);
    CHECK(probes[3].flags_are(kRst | kAck));  // giving up, said to the peer
    CHECK(probes[3].seq() == p.l_nxt);
    CHECK(p.app.closes == 1);
    CHECK(p.app.err == TcpError::timed_out);
    CHECK(p.ctr(StackCounter::tcp_conn_timed_out) == 1);
    CHECK(p.tcp->connection_count() == 0);
  }
  SECTION("no probe while data is in flight: retransmissions watch the peer") {
    p.advance(5 * kNsPerSec);
    REQUIRE(p.tcp->send(p.conn, bytes_n(10), p.now) == 10);
    p.l_nxt += 10;
    p.advance(11 * kNsPerSec);
    const auto segs = p.out();
    REQUIRE_FALSE(segs.empty());
    for (const Out& s : segs) CHECK_FALSE(s.data.empty());  // retransmissions only
    p.send_ack();
    p.out();
    const TimeNs acked = p.now;
    p.advance(10 * kNsPerSec);  // idle again: probes resume
    const auto later = p.out();
    REQUIRE_FALSE(later.empty());
    CHECK(later.front().data.empty());
    CHECK(later.front().seq() == p.l_nxt - 1);
    CHECK(later.front().at - acked <= 10 * kNsPerSec);
  }
  SECTION("set_keepalive(false) stops it") {
    p.tcp->set_keepalive(p.conn, false, p.now);
    p.advance(100 * kNsPerSec);
    p.none();
  }
}
