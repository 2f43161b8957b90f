// NewReno (RFC 5681 + RFC 6582) with RFC 3465 byte counting: exact window values per
// event, and growth per RTT on a simulated ACK clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>

#include "core/time.hpp"
#include "tcp/newreno.hpp"

#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

// Round numbers: IW = min(10*1000, max(2*1000, 14600)) = 10 segments.
constexpr std::uint32_t kMss = 1000;
constexpr std::uint32_t kIss = 4'294'960'000u;  // close to 2^32: the run wraps the space
constexpr TimeNs kRtt = 100 * kNsPerMs;

CcConfig config(std::uint32_t smss = kMss) {
  CcConfig c;
  c.smss = smss;
  return c;
}

// A sender on a simulated ACK clock. The window outstanding at the start of a round is
// acknowledged by ACKs spread evenly over one RTT, each covering `segs_per_ack`
// segments (2 = a delayed-ACK receiver); after every ACK the sender refills the window
// with full segments, as an ACK-clocked sender with unlimited data does.
template <class Cc>
struct AckClock {
  Cc& cc;
  TimeNs rtt = kRtt;
  std::uint32_t segs_per_ack = 1;
  TimeNs now = 0;
  std::uint32_t una = kIss;
  std::uint32_t nxt = kIss;

  std::uint32_t flight() const { return nxt - una; }
  void fill() {
    while (flight() + cc.smss() <= cc.cwnd()) nxt += cc.smss();
  }
  AckAction ack(std::uint32_t bytes, TimeNs at) {
    now = at;
    una += bytes;
    return cc.on_ack({.now = now,
                      .ack = SeqNum{una},
                      .acked_bytes = bytes,
                      .flight_size = flight(),
                      .srtt = rtt});
  }
  DupAckAction dup_ack() {
    return cc.on_dup_ack(
        {.now = now, .ack = SeqNum{una}, .snd_max = SeqNum{nxt}, .flight_size = flight()});
  }
  void round() {
    fill();
    const std::uint32_t per_ack = segs_per_ack * cc.smss();
    const std::uint32_t acks = std::max<std::uint32_t>(1, flight() / per_ack);
    const TimeNs start = now;
    for (std::uint32_t i = 0; i < acks; ++i) {
      ack(per_ack, start + (i + 1) * rtt / acks);
      fill();
    }
  }
};

// Slow start on the ACK clock until cwnd reaches `segs` segments (exactly, when `segs`
// is IW times a power of two).
template <class Cc>
void grow_to(AckClock<Cc>& clk, std::uint32_t segs) {
  while (clk.cc.cwnd() < segs * kMss) clk.round();
  clk.fill();
}

}  // namespace

TEST_CASE("NewReno: initial window is RFC 6928's min(10*MSS, max(2*MSS, 14600))", "[newreno]") {
  CHECK(rfc6928_initial_window(1460) == 14600);
  CHECK(rfc6928_initial_window(536) == 5360);    // 10*MSS is the smaller
  CHECK(rfc6928_initial_window(4000) == 14600);  // 14600 is the smaller
  CHECK(rfc6928_initial_window(9000) == 18000);  // 2*MSS is the floor
  CHECK(rfc6928_initial_window(1000) == 10000);

  NewReno cc(config());
  CHECK(cc.cwnd() == 10 * kMss);
  CHECK(cc.ssthresh() == kCwndMax);  // "arbitrarily high" until a loss
  CHECK(cc.in_slow_start());
  CHECK_FALSE(cc.in_recovery());

  CcConfig c = config();
  c.initial_window = 4 * kMss;
  CHECK(NewReno(c).cwnd() == 4 * kMss);
}

TEST_CASE("NewReno: slow start grows by min(N, 2*SMSS) per ACK (RFC 3465)", "[newreno]") {
  NewReno cc(config());
  std::uint32_t ack = kIss;
  auto on_ack = [&](std::uint32_t bytes, std::uint32_t flight_before) {
    ack += bytes;
    return cc.on_ack({.now = 0,
                      .ack = SeqNum{ack},
                      .acked_bytes = bytes,
                      .flight_size = flight_before - bytes,
                      .srtt = kRtt});
  };
  CHECK(on_ack(kMss, 10 * kMss) == AckAction::normal);
  CHECK(cc.cwnd() == 11 * kMss);  // one segment ACKed: +1 SMSS
  on_ack(2 * kMss, 11 * kMss);
  CHECK(cc.cwnd() == 13 * kMss);  // a delayed ACK of two: +2 SMSS
  on_ack(5 * kMss, 13 * kMss);
  CHECK(cc.cwnd() == 15 * kMss);  // a stretch ACK of five: still +2 SMSS (L = 2*SMSS)
  on_ack(300, 15 * kMss);
  CHECK(cc.cwnd() == 15 * kMss + 300);  // a small segment counts its bytes only

  // Application-limited: with half the window unused nothing was learnt about the path.
  const std::uint32_t before = cc.cwnd();
  on_ack(kMss, 7 * kMss);
  CHECK(cc.cwnd() == before);
}

TEST_CASE("NewReno: slow start doubles cwnd every RTT, with or without delayed ACKs", "[newreno]") {
  for (std::uint32_t per_ack : {1u, 2u}) {
    NewReno cc(config());
    AckClock<NewReno> clk{cc};
    clk.segs_per_ack = per_ack;
    for (std::uint32_t segs : {20u, 40u, 80u, 160u}) {
      clk.round();
      CHECK(cc.cwnd() == segs * kMss);
    }
    CHECK(clk.now == 4 * kRtt);
  }
}

TEST_CASE("NewReno: congestion avoidance adds about one SMSS per RTT", "[newreno]") {
  for (std::uint32_t per_ack : {1u, 2u}) {
    NewReno cc(config());
    AckClock<NewReno> clk{cc};
    grow_to(clk, 40);
    // A loss with 40 segments in flight: ssthresh = 20 segments. The recovery ends with
    // 20 segments of new data outstanding, so cwnd = min(ssthresh, 20 + 1) = ssthresh.
    for (int i = 0; i < 3; ++i) clk.dup_ack();
    REQUIRE(cc.ssthresh() == 20 * kMss);
    clk.una = clk.nxt;
    clk.nxt = clk.una + 20 * kMss;
    REQUIRE(cc.on_ack({.now = clk.now,
                       .ack = SeqNum{clk.una},
                       .acked_bytes = 40 * kMss,
                       .flight_size = clk.flight(),
                       .srtt = kRtt}) == AckAction::recovery_done);
    REQUIRE(cc.cwnd() == 20 * kMss);
    REQUIRE_FALSE(cc.in_slow_start());

    clk.segs_per_ack = per_ack;
    for (int r = 1; r <= 30; ++r) {
      const std::uint32_t before = cc.cwnd();
      clk.round();
      // One cwnd of bytes ACKed per RTT = one SMSS, give or take a round boundary.
      CHECK(cc.cwnd() - before <= kMss);
      CHECK(cc.cwnd() >= (20 + r - 1) * kMss);
    }
    CHECK(cc.cwnd() >= 49 * kMss);
    CHECK(cc.cwnd() <= 50 * kMss);
  }
}

TEST_CASE("NewReno: the third duplicate ACK enters fast retransmit (RFC 5681 3.2)", "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 20);
  REQUIRE(clk.flight() == 20 * kMss);

  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(cc.cwnd() == 20 * kMss);  // RFC 3042: limited transmit leaves cwnd alone
  CHECK_FALSE(cc.in_recovery());

  CHECK(clk.dup_ack() == DupAckAction::fast_retransmit);
  CHECK(cc.in_recovery());
  CHECK(cc.ssthresh() == 10 * kMss);                // max(FlightSize/2, 2*SMSS)
  CHECK(cc.cwnd() == 13 * kMss);                    // ssthresh + 3*SMSS
  CHECK(cc.window().recover() == SeqNum{clk.nxt});  // RFC 6582: highest sequence sent

  CHECK(clk.dup_ack() == DupAckAction::inflated);
  CHECK(cc.cwnd() == 14 * kMss);  // step 4: +SMSS per further duplicate
  CHECK(clk.dup_ack() == DupAckAction::inflated);
  CHECK(cc.cwnd() == 15 * kMss);
}

TEST_CASE("NewReno: ssthresh never drops below 2*SMSS", "[newreno]") {
  NewReno cc(config());
  for (int i = 0; i < 3; ++i)
    cc.on_dup_ack({.now = 0,
                   .ack = SeqNum{kIss},
                   .snd_max = SeqNum{kIss + 3 * kMss},
                   .flight_size = 3 * kMss});
  CHECK(cc.ssthresh() == 2 * kMss);  // FlightSize/2 = 1.5 SMSS is too small
  CHECK(cc.cwnd() == 5 * kMss);
}

TEST_CASE(
    "NewReno: partial ACKs deflate, add back one SMSS and ask for a retransmit "
    "(RFC 6582 3.2 step 3)",
    "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 20);
  const std::uint32_t una = clk.una;
  const std::uint32_t recover = clk.nxt;
  for (int i = 0; i < 5; ++i) clk.dup_ack();
  REQUIRE(cc.cwnd() == 15 * kMss);  // 10 + 3 + 2 inflations

  auto ack_to = [&](std::uint32_t ack, std::uint32_t flight) {
    const std::uint32_t bytes = ack - clk.una;
    clk.una = ack;
    return cc.on_ack({.now = clk.now,
                      .ack = SeqNum{ack},
                      .acked_bytes = bytes,
                      .flight_size = flight,
                      .srtt = kRtt});
  };
  // Three segments repaired, another hole behind them.
  CHECK(ack_to(una + 3 * kMss, 17 * kMss) == AckAction::first_partial_ack);
  CHECK(cc.cwnd() == 13 * kMss);  // 15 - 3 + 1
  CHECK(cc.in_recovery());
  CHECK(cc.ssthresh() == 10 * kMss);
  // Less than one SMSS ACKed: deflate only; and it is no longer the first partial ACK.
  CHECK(ack_to(una + 3 * kMss + 500, 16 * kMss + 500) == AckAction::partial_ack);
  CHECK(cc.cwnd() == 12 * kMss + 500);
  // Duplicates between partial ACKs still inflate.
  CHECK(clk.dup_ack() == DupAckAction::inflated);
  CHECK(cc.cwnd() == 13 * kMss + 500);
  // A partial ACK never takes cwnd below one SMSS.
  CHECK(ack_to(recover - kMss, kMss) == AckAction::partial_ack);
  CHECK(cc.cwnd() == kMss);
  CHECK(cc.in_recovery());
}

TEST_CASE("NewReno: a full ACK deflates to min(ssthresh, max(FlightSize, SMSS) + SMSS)",
          "[newreno]") {
  SECTION("little outstanding: FlightSize + SMSS, no burst") {
    NewReno cc(config());
    AckClock<NewReno> clk{cc};
    grow_to(clk, 20);
    for (int i = 0; i < 4; ++i) clk.dup_ack();
    const std::uint32_t recover = clk.nxt;
    CHECK(cc.on_ack({.now = clk.now,
                     .ack = SeqNum{recover},
                     .acked_bytes = 20 * kMss,
                     .flight_size = 0,
                     .srtt = kRtt}) == AckAction::recovery_done);
    CHECK_FALSE(cc.in_recovery());
    CHECK(cc.cwnd() == 2 * kMss);  // max(0, SMSS) + SMSS
    CHECK(cc.ssthresh() == 10 * kMss);
    CHECK(cc.in_slow_start());  // back to ssthresh by slow start
  }
  SECTION("new data outstanding beyond recover: ssthresh") {
    NewReno cc(config());
    AckClock<NewReno> clk{cc};
    grow_to(clk, 20);
    for (int i = 0; i < 4; ++i) clk.dup_ack();
    const std::uint32_t recover = clk.nxt;
    CHECK(cc.on_ack({.now = clk.now,
                     .ack = SeqNum{recover + kMss},
                     .acked_bytes = 21 * kMss,
                     .flight_size = 15 * kMss,
                     .srtt = kRtt}) == AckAction::recovery_done);
    CHECK(cc.cwnd() == 10 * kMss);  // min(10, 15 + 1) segments
  }
}

TEST_CASE(
    "NewReno: duplicates that do not cover more than recover do not reduce again "
    "(RFC 6582 3.2 step 2)",
    "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 20);
  for (int i = 0; i < 3; ++i) clk.dup_ack();
  const std::uint32_t recover = clk.nxt;
  clk.una = recover;
  clk.nxt = recover + 8 * kMss;
  REQUIRE(cc.on_ack({.now = clk.now,
                     .ack = SeqNum{recover},
                     .acked_bytes = 20 * kMss,
                     .flight_size = clk.flight(),
                     .srtt = kRtt}) == AckAction::recovery_done);
  const std::uint32_t cwnd = cc.cwnd();
  const std::uint32_t ssthresh = cc.ssthresh();

  // Duplicates at exactly `recover` (e.g. caused by our own retransmissions).
  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(clk.dup_ack() == DupAckAction::suppressed);
  CHECK(clk.dup_ack() == DupAckAction::suppressed);
  CHECK(cc.cwnd() == cwnd);
  CHECK(cc.ssthresh() == ssthresh);
  CHECK_FALSE(cc.in_recovery());

  // Once the cumulative ACK passes recover, a new loss is a new congestion event.
  clk.ack(kMss, kRtt);
  for (int i = 0; i < 2; ++i) clk.dup_ack();
  CHECK(clk.dup_ack() == DupAckAction::fast_retransmit);
  CHECK(cc.in_recovery());
}

TEST_CASE("NewReno: an RTO collapses cwnd to one SMSS (RFC 5681 3.1, RFC 6582 step 4)",
          "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 20);
  for (int i = 0; i < 3; ++i) clk.dup_ack();
  REQUIRE(cc.in_recovery());

  cc.on_rto({.now = kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = clk.flight()});
  CHECK(cc.cwnd() == kMss);  // the loss window
  CHECK(cc.ssthresh() == 10 * kMss);
  CHECK_FALSE(cc.in_recovery());  // the timeout ends fast recovery
  CHECK(cc.window().recover() == SeqNum{clk.nxt});

  // The same segment times out again: ssthresh is held (FlightSize is stale by now).
  cc.on_rto({.now = 3 * kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = 2 * kMss});
  CHECK(cc.ssthresh() == 10 * kMss);
  CHECK(cc.cwnd() == kMss);

  // Duplicates for data from before the timeout do not trigger fast retransmit.
  clk.now = 3 * kNsPerSec;
  for (int i = 0; i < 2; ++i) clk.dup_ack();
  CHECK(clk.dup_ack() == DupAckAction::suppressed);

  // Slow start after an RTO counts at most one SMSS per ACK (RFC 3465 2.3).
  clk.ack(2 * kMss, 4 * kNsPerSec);
  CHECK(cc.cwnd() == 2 * kMss);
  clk.ack(kMss, 4 * kNsPerSec);
  CHECK(cc.cwnd() == 3 * kMss);

  // New data was ACKed: a further timeout is a new episode and sets ssthresh again.
  cc.on_rto({.now = 5 * kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = 8 * kMss});
  CHECK(cc.ssthresh() == 4 * kMss);
  CHECK(cc.cwnd() == kMss);
}

TEST_CASE("NewReno: slow start after an RTO stops at ssthresh, then L is 2*SMSS again",
          "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 20);
  cc.on_rto({.now = clk.now, .snd_max = SeqNum{clk.nxt}, .flight_size = 8 * kMss});
  REQUIRE(cc.ssthresh() == 4 * kMss);
  clk.una = clk.nxt;  // go-back-N: everything is resent and ACKed one segment at a time
  for (int i = 0; i < 6; ++i) clk.round();
  CHECK(cc.cwnd() >= 4 * kMss);
  CHECK(cc.cwnd() < 10 * kMss);  // congestion avoidance, not doubling
}

TEST_CASE(
    "NewReno: restart window after an idle period longer than the RTO "
    "(RFC 5681 4.1)",
    "[newreno]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  grow_to(clk, 40);
  const TimeNs last_send = clk.now;
  const TimeNs rto = 300 * kNsPerMs;

  CHECK_FALSE(cc.on_idle_restart(last_send + rto, last_send, rto));  // not longer than RTO
  CHECK(cc.cwnd() == 40 * kMss);
  CHECK(cc.on_idle_restart(last_send + 2 * kNsPerSec, last_send, rto));
  CHECK(cc.cwnd() == 10 * kMss);     // RW = min(IW, cwnd)
  CHECK(cc.ssthresh() == kCwndMax);  // the old estimate is kept

  // RW never raises a window that is already below IW.
  cc.on_rto({.now = 3 * kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = 10 * kMss});
  REQUIRE(cc.cwnd() == kMss);
  CHECK(cc.on_idle_restart(10 * kNsPerSec, 3 * kNsPerSec, rto));
  CHECK(cc.cwnd() == kMss);
}

TEST_CASE("NewReno: sequence comparison survives wrap-around", "[newreno]") {
  // kIss sits 7296 bytes below 2^32: every scenario above wraps. Check the recover
  // comparison right at the edge explicitly.
  NewReno cc(config());
  const std::uint32_t una = 0xFFFFFC00u;          // 1 KiB below the wrap
  const std::uint32_t snd_max = una + 10 * kMss;  // wrapped past 0
  for (int i = 0; i < 3; ++i)
    cc.on_dup_ack(
        {.now = 0, .ack = SeqNum{una}, .snd_max = SeqNum{snd_max}, .flight_size = 10 * kMss});
  REQUIRE(cc.in_recovery());
  CHECK(cc.on_ack({.now = 0,
                   .ack = SeqNum{una + 5 * kMss},
                   .acked_bytes = 5 * kMss,
                   .flight_size = 5 * kMss,
                   .srtt = kRtt}) == AckAction::first_partial_ack);
  CHECK(cc.on_ack({.now = 0,
                   .ack = SeqNum{snd_max},
                   .acked_bytes = 5 * kMss,
                   .flight_size = 0,
                   .srtt = kRtt}) == AckAction::recovery_done);
}

#ifdef USTACK_COUNT_ALLOCS
TEST_CASE("NewReno: no heap allocation after construction", "[newreno][alloc]") {
  NewReno cc(config());
  AckClock<NewReno> clk{cc};
  const std::uint64_t before = thread_alloc_count();
  grow_to(clk, 80);
  for (int i = 0; i < 5; ++i) clk.dup_ack();
  clk.ack(3 * kMss, clk.now + kRtt);
  cc.on_rto({.now = clk.now + kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = clk.flight()});
  cc.on_idle_restart(clk.now + 10 * kNsPerSec, clk.now, kNsPerSec);
  CHECK(thread_alloc_count() == before);
}
#endif
