// ESTABLISHED and the checks every synchronized state shares: RFC 9293
// §3.10.7.4 in its order (sequence number, RST, SYN, ACK, text, FIN), with
// RFC 5961's RST / SYN / ACK rules and RFC 7323's PAWS.
#include "test/unit/tcp_state/peer.hpp"

using namespace ustack;
using namespace ustack::test;

namespace {

bool orderly_end(TcpState s) {
  return s == TcpState::closing || s == TcpState::last_ack || s == TcpState::time_wait;
}

}  // namespace

TEST_CASE("RST in every synchronized state (RFC 5961 §3.2)", "[tcp_state][rst]") {
  const TcpState s = GENERATE(TcpState::established, TcpState::fin_wait_1, TcpState::fin_wait_2, TcpState::close_wait,
                              TcpState::closing, TcpState::last_ack, TcpState::time_wait);
  INFO("state " << to_string(s));
  Peer p;
  p.to_state(s);
  const int closes_before = p.app.closes;

  SECTION("exactly RCV.NXT: the connection is reset") {
    p.inject(p.repr(kRst, p.p_nxt));
    p.none();
    CHECK(p.tcp->connection_count() == 0);
    CHECK(p.ctr(StackCounter::tcp_conn_reset) == 1);
    if (s == TcpState::time_wait) {
      CHECK(p.app.closes == 1);  // it heard the orderly end already; nothing more
    } else {
      CHECK(p.app.closes == 1);
      CHECK(p.app.err == (orderly_end(s) ? TcpError::none : TcpError::reset));
    }
    p.advance(300 * kNsPerSec);
    p.none();  // no timer survives it
  }
  SECTION("in the window, not RCV.NXT: challenge ACK, the connection stays") {
    p.inject(p.repr(kRst, p.p_nxt + 1));
    const Out a = p.one();
    CHECK(a.flags_are(kAck));
    CHECK(a.seq() == p.l_nxt);
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 1);
    CHECK(p.tcp->connection_count() == 1);
    CHECK(p.app.closes == closes_before);
    // The peer's exact RST, as the challenge ACK asks for, then works.
    p.inject(p.repr(kRst, a.ack()));
    CHECK(p.tcp->connection_count() == 0);
  }
  SECTION("outside the window: dropped silently") {
    p.inject(p.repr(kRst, p.p_nxt + 200000));
    p.inject(p.repr(kRst, p.p_nxt - 1));
    p.inject(p.repr(kRst | kAck, p.p_nxt - 70000, p.l_nxt));
    p.none();
    CHECK(p.ctr(StackCounter::tcp_drop_rst_out_of_window) == 3);
    CHECK(p.tcp->connection_count() == 1);
    CHECK(p.app.closes == closes_before);
  }
}

TEST_CASE("SYN in the window of a synchronized connection: challenge ACK (RFC 5961 §4)", "[tcp_state][syn]") {
  // TIME-WAIT has its own rules for a SYN (RFC 6191): see closing_test.cpp.
  const TcpState s = GENERATE(TcpState::established, TcpState::fin_wait_1, TcpState::fin_wait_2,
                              TcpState::close_wait, TcpState::closing, TcpState::last_ack);
  INFO("state " << to_string(s));
  Peer p;
  p.to_state(s);
  const int variant = GENERATE(range(0, 4));
  const TcpFlags f = (variant & 1) ? kSyn | kAck : kSyn;
  const std::uint32_t off = (variant & 2) ? 1000u : 0u;
  INFO("flags " << flag_str(f) << " offset " << off);
  p.inject(p.repr(f, p.p_nxt + off, p.l_nxt));
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.seq() == p.l_nxt);
  CHECK(a.ack() == p.p_nxt);
  CHECK(p.ctr(StackCounter::tcp_drop_syn_in_window) == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 1);
  CHECK(p.tcp->connection_count() == 1);
  CHECK(p.state() == s);
}

TEST_CASE("ESTABLISHED: in-order data is delivered and acknowledged", "[tcp_state][established]") {
  Peer p;
  p.establish_passive();
  p.tcp->set_delayed_ack(p.conn, false);
  p.send_data(bytes_n(1000));
  CHECK(p.app.got == bytes_n(1000));
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.ack() == p.p_nxt);
  // The application read it all, but the right edge moves only by a full
  // segment or more (receiver SWS avoidance, RFC 9293 §3.8.6.2.2).
  CHECK(a.h.window == 65535 - 1000);
  const auto st = p.stats();
  CHECK(st->bytes_in == 1000);
  CHECK(st->unread == 0);
}

TEST_CASE("ESTABLISHED: an ACK of data never sent is answered with an ACK and dropped (RFC 5961 §5.2)",
          "[tcp_state][established][ack]") {
  Peer p;
  p.establish_passive();
  p.inject(p.repr(kAck | kPsh, p.p_nxt, p.l_nxt + 100), bytes_n(50));
  const Out a = p.one();
  CHECK(a.flags_are(kAck));
  CHECK(a.seq() == p.l_nxt);
  CHECK(a.ack() == p.p_nxt);  // the data was not taken
  CHECK(p.app.got.empty());
  CHECK(p.ctr(StackCounter::tcp_drop_bad_ack) == 1);
  CHECK(p.state() == TcpState::established);
}

TEST_CASE("ESTABLISHED: ACK acceptability (RFC 5961 §5.2)", "[tcp_state][established][ack]") {
  Peer p;
  p.establish_passive();
  // Send and have acknowledged 3000 bytes so SND.UNA moves away from the ISS.
  p.tcp->send(p.conn, bytes_n(3000), p.now);
  p.out();
  p.l_nxt += 3000;
  p.send_ack();
  REQUIRE(p.stats()->unacked == 0);

  SECTION("too old (below SND.UNA - MAX.SND.WND): challenge ACK, data dropped") {
    p.inject(p.repr(kAck | kPsh, p.p_nxt, p.l_nxt - 70000), bytes_n(10));
    const Out a = p.one();
    CHECK(a.flags_are(kAck));
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.app.got.empty());
    CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 1);
    CHECK(p.ctr(StackCounter::tcp_drop_bad_ack) == 1);
  }
  SECTION("old but within MAX.SND.WND: a duplicate ACK, the data is taken") {
    p.tcp->set_delayed_ack(p.conn, false);
    p.inject(p.repr(kAck | kPsh, p.p_nxt, p.l_nxt - 2000), bytes_n(10));
    CHECK(p.app.got == bytes_n(10));
    CHECK(p.ctr(StackCounter::tcp_drop_bad_ack) == 0);
    CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 0);
    CHECK(p.one().ack() == p.p_nxt + 10);
  }
}

TEST_CASE("ESTABLISHED: FIN with data", "[tcp_state][established][fin]") {
  Peer p;
  p.establish_passive();
  p.send_data(bytes_n(300), kPsh | kFin);
  CHECK(p.app.got == bytes_n(300));
  CHECK(p.app.eof);
  CHECK(p.tcp->peer_closed(p.conn));
  CHECK(p.state() == TcpState::close_wait);
  const Out a = p.one();  // the FIN is acknowledged at once
  CHECK(a.ack() == p.p_nxt);
  CHECK(a.ack() == p.p_iss + 1 + 300 + 1);
}

TEST_CASE("ESTABLISHED: a FIN beyond a gap waits for the gap", "[tcp_state][established][fin]") {
  Peer p;
  const bool sack = GENERATE(false, true);  // with SACK the duplicate ACK carries the block
  p.establish_passive(PeerSyn{1460, std::nullopt, sack, false});
  REQUIRE(p.stats()->sack == sack);
  const SeqNum gap = p.p_nxt;
  const auto data = bytes_n(200);
  const Bytes first = Bytes{data}.first(100), second = Bytes{data}.subspan(100);

  SECTION("data and FIN beyond the gap") {
    p.send(kAck | kPsh | kFin, gap + 100, second);
    const Out dup = p.one();  // at once, not delayed
    CHECK(dup.ack() == gap);
    if (sack) {
      REQUIRE(dup.h.options.sack_count == 1);
      CHECK(dup.h.options.sack_blocks[0].left == gap + 100);
      CHECK(dup.h.options.sack_blocks[0].right == gap + 200);
    }
    CHECK(p.state() == TcpState::established);
    CHECK(p.app.got.empty());
    CHECK_FALSE(p.app.eof);
    CHECK(p.stats()->ooo_segs_in == 1);
  }
  SECTION("a bare FIN beyond the gap") {
    p.send(kAck | kPsh, gap + 100, second);
    p.one();
    p.send(kAck | kFin, gap + 200);
    CHECK(p.one().ack() == gap);
    CHECK(p.state() == TcpState::established);
  }
  // The gap fills: everything, FIN included, in one ACK.
  p.send(kAck | kPsh, gap, first);
  p.p_nxt = gap + 201;
  const Out a = p.one();
  CHECK(a.ack() == gap + 201);
  CHECK(a.h.options.sack_count == 0);
  CHECK(p.app.got == data);
  CHECK(p.app.eof);
  CHECK(p.state() == TcpState::close_wait);
}

TEST_CASE("ESTABLISHED: segments outside the receive window", "[tcp_state][established][window]") {
  Peer p;
  p.establish_passive();
  p.tcp->set_delayed_ack(p.conn, false);
  p.send_data(bytes_n(100));
  const Out first = p.one();
  const SeqNum edge = first.ack() + first.h.window;

  SECTION("data entirely beyond the window: duplicate ACK, dropped") {
    p.send(kAck | kPsh, p.p_nxt + 70000, bytes_n(10));
    const Out a = p.one();
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.ctr(StackCounter::tcp_drop_out_of_window) == 1);
    CHECK(p.stats()->ooo_segs_in == 0);
  }
  SECTION("old duplicate data: ACK at once, not delivered twice") {
    p.send(kAck | kPsh, p.p_nxt - 100, bytes_n(100));
    const Out a = p.one();
    CHECK(a.ack() == p.p_nxt);
    CHECK(p.app.got == bytes_n(100));
  }
  SECTION("partly old: the new part is taken") {
    auto d = bytes_n(100);
    auto more = bytes_n(150, 7);
    std::copy(d.begin() + 50, d.end(), more.begin());  // overlapping bytes agree
    p.send(kAck | kPsh, p.p_nxt - 50, more);
    p.p_nxt += 100;
    CHECK(p.one().ack() == p.p_nxt);
    REQUIRE(p.app.got.size() == 200);
    CHECK(std::equal(p.app.got.begin() + 100, p.app.got.end(), more.begin() + 50));
  }
  SECTION("partly beyond the window: trimmed to it") {
    p.app.auto_read = false;
    std::vector<std::uint8_t> big(1400);
    // Fill all but 100 bytes of the offered window, then send 1400 bytes.
    while (edge - p.p_nxt > 1500) {
      p.send_data(big);
      p.out();
    }
    p.send_data(std::vector<std::uint8_t>(static_cast<std::size_t>(edge - p.p_nxt) - 100));
    p.out();
    p.send(kAck | kPsh, p.p_nxt, big);
    const Out a = p.one();
    CHECK(a.ack() == edge);
    CHECK(a.h.window == 0);
    CHECK(p.tcp->readable(p.conn) == static_cast<std::uint32_t>(edge - (p.p_iss + 101)));
  }
  SECTION("pure ACKs out of the window are answered at most once per 500 ms") {
    p.inject(p.repr(kAck, p.p_nxt + 100000, p.l_nxt));
    CHECK(p.one().ack() == p.p_nxt);
    p.inject(p.repr(kAck, p.p_nxt + 100000, p.l_nxt));
    p.none();
    CHECK(p.ctr(StackCounter::tcp_oow_ack_limited) == 1);
    p.advance(500 * kNsPerMs);
    p.inject(p.repr(kAck, p.p_nxt + 100000, p.l_nxt));
    CHECK(p.one().ack() == p.p_nxt);
  }
  CHECK(p.state() == TcpState::established);
}

TEST_CASE("ESTABLISHED: the receive window closes when the application does not read",
          "[tcp_state][established][window]") {
  Peer p;
  const bool scaled = GENERATE(false, true);
  INFO("window scaling " << scaled);
  p.establish_passive(PeerSyn{1460, scaled ? std::optional<std::uint8_t>{2} : std::nullopt, false, false});
  p.app.auto_read = false;
  p.tcp->set_delayed_ack(p.conn, false);
  const std::uint32_t rcvbuf = p.tcp->config().defaults.rcvbuf;
  // Send while the last ACK offers room: full segments, then single bytes
  // (a peer that writes a byte at a time and never coalesces).
  std::uint32_t offered = p.stats()->rcv_wnd, accepted = 0;
  int rounds = 0;
  while (offered > 0 && accepted <= rcvbuf && ++rounds < 1000000) {
    const std::uint32_t n = offered >= 1460 ? 1460 : 1;
    p.send_data(bytes_n(n));
    const Out a = p.one();
    accepted = static_cast<std::uint32_t>(a.ack() - (p.p_iss + 1));
    REQUIRE(accepted == static_cast<std::uint32_t>(p.p_nxt - (p.p_iss + 1)));
    offered = std::uint32_t{a.h.window} << p.stats()->rcv_wscale;
  }
  CHECK(offered == 0);
  CHECK(accepted <= rcvbuf);
  CHECK(p.tcp->readable(p.conn) == accepted);
  // Zero-window probes are answered with the zero window, and refused once
  // they reach the edge offered before, which the rounding of the scaled
  // window may have left up to one unit beyond (RFC 7323 §2.4).
  bool refused = false;
  for (int i = 0; i <= (1 << p.stats()->rcv_wscale) && !refused; ++i) {
    const SeqNum at = p.p_nxt;
    p.send(kAck | kPsh, at, bytes_n(1));
    const Out z = p.one();
    CHECK(z.h.window == 0);
    if (z.ack() == at) refused = true;
    else p.p_nxt += 1;
  }
  CHECK(refused);
  CHECK(p.tcp->readable(p.conn) <= rcvbuf);
  // Reading reopens it with a window update.
  std::vector<std::uint8_t> buf(40000);
  CHECK(p.tcp->read(p.conn, buf, p.now) == 40000);
  const Out u = p.one();
  CHECK(u.ack() == p.p_nxt);
  CHECK((std::uint32_t{u.h.window} << p.stats()->rcv_wscale) >= 40000 - 2 * 1460);
}

TEST_CASE("PAWS: a segment with an older timestamp is dropped (RFC 7323 §5)", "[tcp_state][established][paws]") {
  Peer p;
  p.establish_passive(PeerSyn{1460, std::nullopt, false, true});
  p.tcp->set_delayed_ack(p.conn, false);
  p.send_data(bytes_n(10));
  p.one();
  p.p_tsval -= 1000;  // an old duplicate from the past
  p.send(kAck | kPsh, p.p_nxt, bytes_n(20));
  const Out a = p.one();  // duplicate ACK
  CHECK(a.ack() == p.p_nxt);
  CHECK(p.app.got.size() == 10);
  CHECK(p.ctr(StackCounter::tcp_drop_paws) == 1);

  SECTION("a RST is exempt from PAWS") {
    p.inject(p.repr(kRst, p.p_nxt));
    CHECK(p.tcp->connection_count() == 0);
    CHECK(p.app.err == TcpError::reset);
  }
  SECTION("a current timestamp is accepted") {
    p.p_tsval += 2000;
    p.send_data(bytes_n(20));
    CHECK(p.app.got.size() == 30);
  }
  SECTION("after 24 days idle the old timestamp is no longer trusted (RFC 7323 §5.5)") {
    p.advance(25ull * 24 * 3600 * kNsPerSec);
    p.send_data(bytes_n(20));
    CHECK(p.app.got.size() == 30);
    CHECK(p.ctr(StackCounter::tcp_drop_paws) == 1);
  }
}

TEST_CASE("ESTABLISHED: abort() sends RST and forgets the connection", "[tcp_state][established][abort]") {
  Peer p;
  p.establish_passive();
  p.tcp->send(p.conn, bytes_n(500), p.now);
  p.out();
  p.tcp->abort(p.conn, p.now);
  const Out r = p.one();
  CHECK(r.flags_are(kRst | kAck));
  CHECK(r.seq() == p.l_nxt + 500);  // SND.MAX: beyond everything sent
  CHECK(r.ack() == p.p_nxt);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.app.closes == 0);  // the application ended it itself
  CHECK(p.ctr(StackCounter::tcp_conn_reset) == 1);
  CHECK(p.ctr(StackCounter::tcp_tx_rst) == 1);
  CHECK_FALSE(p.stats());
  CHECK(p.tcp->send(p.conn, bytes_n(1), p.now) == 0);  // the handle is dead
  p.advance(10 * kNsPerSec);
  p.none();
  // The peer's next segment finds no connection.
  p.send_data(bytes_n(10));
  CHECK(p.one().flags_are(kRst));
}

TEST_CASE("ESTABLISHED: close() with unread data resets (RFC 9293 §3.10.4)", "[tcp_state][established][close]") {
  Peer p;
  p.establish_passive();
  p.app.auto_read = false;
  p.send_data(bytes_n(100));
  p.out();
  p.tcp->close(p.conn, p.now);
  const Out r = p.one();
  CHECK(r.flags_are(kRst | kAck));
  CHECK(r.seq() == p.l_nxt);
  CHECK(r.ack() == p.p_nxt);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.app.closes == 0);
}

TEST_CASE("ESTABLISHED: data arriving after close() resets", "[tcp_state][established][close]") {
  Peer p;
  p.establish_passive();
  p.tcp->close(p.conn, p.now);
  const Out f = p.one();
  CHECK(f.flags_are(kFin | kAck));
  p.l_nxt += 1;
  p.send_data(bytes_n(10));
  const Out r = p.one();
  CHECK(r.flags_are(kRst | kAck));
  CHECK(p.ctr(StackCounter::tcp_drop_after_close) == 1);
  CHECK(p.tcp->connection_count() == 0);
  CHECK(p.app.closes == 0);
}

TEST_CASE("Challenge ACKs are rate limited per second (RFC 5961 §7)", "[tcp_state][established][rst]") {
  tcp::TcpConfig cfg = state_config();
  cfg.challenge_acks_per_sec = 2;
  Peer p(cfg);
  p.establish_passive();
  for (int i = 0; i < 2; ++i) {
    p.inject(p.repr(kRst, p.p_nxt + 10));
    CHECK(p.one().ack() == p.p_nxt);
  }
  p.inject(p.repr(kSyn, p.p_nxt + 10));
  p.none();
  CHECK(p.ctr(StackCounter::tcp_tx_challenge_ack) == 2);
  CHECK(p.ctr(StackCounter::tcp_challenge_ack_limited) == 1);
  p.advance(kNsPerSec);
  p.inject(p.repr(kRst, p.p_nxt + 10));
  CHECK(p.one().ack() == p.p_nxt);
  CHECK(p.state() == TcpState::established);
}

TEST_CASE("ESTABLISHED: the out-of-order queue is bounded", "[tcp_state][established][window]") {
  tcp::TcpConfig cfg = state_config();
  cfg.ooo_segments = 2;
  Peer p(cfg);
  p.establish_passive(PeerSyn{1460, std::nullopt, true, false});
  for (std::uint32_t i = 1; i <= 3; ++i) {
    p.send(kAck | kPsh, p.p_nxt + 200 * i, bytes_n(100));
    CHECK(p.one().ack() == p.p_nxt);
  }
  CHECK(p.ctr(StackCounter::tcp_drop_ooo_full) == 1);
  CHECK(p.stats()->ooo_segs_in == 3);
  // The gap fills: what was queued is delivered, the dropped one is not.
  p.send(kAck | kPsh, p.p_nxt, bytes_n(200));
  const Out a = p.one();
  CHECK(a.ack() == p.p_nxt + 300);
  REQUIRE(a.h.options.sack_count == 1);
  CHECK(a.h.options.sack_blocks[0].left == p.p_nxt + 400);
  CHECK(p.app.got.size() == 300);
}
