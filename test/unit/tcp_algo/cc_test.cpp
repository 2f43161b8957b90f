// CongestionControl: the per-connection selection between NewReno and CUBIC, without
// heap allocation, forwarding every event to the chosen algorithm.
#include <catch2/catch.hpp>

#include <cstdint>
#include <type_traits>

#include "core/time.hpp"
#include "tcp/cc.hpp"
#include "tcp/rtt.hpp"

#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

constexpr std::uint32_t kMss = 1460;

// Fixed-size, nothrow: a connection slot in a preallocated table can hold one.
static_assert(std::is_nothrow_constructible_v<CongestionControl, CcAlgorithm, const CcConfig&>);
static_assert(std::is_nothrow_copy_constructible_v<CongestionControl>);
static_assert(sizeof(CongestionControl) <= 128, "keep it within two cache lines");

// The same event sequence through any algorithm: slow start, loss, recovery, RTO.
struct Trace {
  std::uint32_t iw, cwnd_ss, ssthresh_loss, cwnd_recovery, cwnd_after_full_ack;
  std::uint32_t cwnd_rto, ssthresh_rto;
  AckAction partial, full;
  DupAckAction third;
};

Trace drive(CongestionControl& cc) {
  Trace t{};
  RttEstimator rtt;
  t.iw = cc.cwnd();
  TimeNs now = 0;
  std::uint32_t una = 1, nxt = 1 + 10 * kMss;
  for (int i = 0; i < 10; ++i) {  // one window, ACKed segment by segment
    now += 10 * kNsPerMs;
    una += kMss;
    rtt.on_rtt_sample(100 * kNsPerMs);
    cc.on_ack({.now = now,
               .ack = SeqNum{una},
               .acked_bytes = kMss,
               .flight_size = nxt - una,
               .srtt = rtt.srtt()});
    nxt = una + cc.cwnd() / kMss * kMss;
  }
  t.cwnd_ss = cc.cwnd();
  for (int i = 0; i < 2; ++i)
    cc.on_dup_ack(
        {.now = now, .ack = SeqNum{una}, .snd_max = SeqNum{nxt}, .flight_size = nxt - una});
  t.third = cc.on_dup_ack(
      {.now = now, .ack = SeqNum{una}, .snd_max = SeqNum{nxt}, .flight_size = nxt - una});
  t.ssthresh_loss = cc.ssthresh();
  t.cwnd_recovery = cc.cwnd();
  una += kMss;
  t.partial = cc.on_ack({.now = now,
                         .ack = SeqNum{una},
                         .acked_bytes = kMss,
                         .flight_size = nxt - una,
                         .srtt = rtt.srtt()});
  const std::uint32_t acked = nxt - una;
  una = nxt;
  t.full = cc.on_ack(
      {.now = now, .ack = SeqNum{una}, .acked_bytes = acked, .flight_size = 0, .srtt = rtt.srtt()});
  t.cwnd_after_full_ack = cc.cwnd();
  nxt = una + cc.cwnd();
  cc.on_rto({.now = now + kNsPerSec, .snd_max = SeqNum{nxt}, .flight_size = nxt - una});
  t.cwnd_rto = cc.cwnd();
  t.ssthresh_rto = cc.ssthresh();
  return t;
}

}  // namespace

TEST_CASE("CongestionControl: selects the algorithm per connection", "[cc]") {
  CcConfig cfg;
  cfg.smss = kMss;
  CongestionControl reno(CcAlgorithm::newreno, cfg);
  CongestionControl cubic(CcAlgorithm::cubic, cfg);
  CHECK(reno.algorithm() == CcAlgorithm::newreno);
  CHECK(cubic.algorithm() == CcAlgorithm::cubic);
  CHECK(reno.newreno() != nullptr);
  CHECK(reno.cubic() == nullptr);
  CHECK(cubic.cubic() != nullptr);
  CHECK(cubic.newreno() == nullptr);
  CHECK(CongestionControl().algorithm() == CcAlgorithm::cubic);  // the default
  CHECK(reno.smss() == kMss);

  const Trace r = drive(reno);
  const Trace c = drive(cubic);

  // What they share: IW, slow start, the shape of fast recovery, the loss window.
  CHECK(r.iw == 14600);
  CHECK(c.iw == 14600);
  CHECK(r.cwnd_ss == 20 * kMss);
  CHECK(c.cwnd_ss == 20 * kMss);
  CHECK(r.third == DupAckAction::fast_retransmit);
  CHECK(c.third == DupAckAction::fast_retransmit);
  CHECK(r.partial == AckAction::first_partial_ack);
  CHECK(c.partial == AckAction::first_partial_ack);
  CHECK(r.full == AckAction::recovery_done);
  CHECK(c.full == AckAction::recovery_done);
  CHECK(r.cwnd_rto == kMss);
  CHECK(c.cwnd_rto == kMss);

  // Where they differ: the multiplicative decrease.
  CHECK(r.ssthresh_loss == 10 * kMss);  // 1/2
  CHECK(c.ssthresh_loss == 14 * kMss);  // 0.7
  CHECK(r.cwnd_recovery == 13 * kMss);
  CHECK(c.cwnd_recovery == 17 * kMss);
  CHECK(r.cwnd_after_full_ack == 2 * kMss);  // min(ssthresh, 0 + SMSS + SMSS)
  CHECK(c.cwnd_after_full_ack == 2 * kMss);
  CHECK(r.ssthresh_rto == 2 * kMss);  // FlightSize 2*SMSS: max(1, 2) SMSS
  CHECK(c.ssthresh_rto == 2 * kMss);

  // Forwarded accessors agree with the algorithm's own.
  CHECK(cubic.cwnd() == cubic.cubic()->cwnd());
  CHECK(cubic.in_slow_start() == cubic.cubic()->in_slow_start());
  CHECK_FALSE(reno.in_recovery());

  // Idle restart goes through too.
  CongestionControl idle(CcAlgorithm::newreno, cfg);
  CHECK(idle.on_idle_restart(5 * kNsPerSec, 0, kNsPerSec));
  CHECK(idle.cwnd() == 14600);
}

#ifdef USTACK_COUNT_ALLOCS
TEST_CASE("CongestionControl: building and driving one allocates nothing", "[cc][alloc]") {
  CcConfig cfg;
  cfg.smss = kMss;
  const std::uint64_t before = thread_alloc_count();
  for (CcAlgorithm a : {CcAlgorithm::newreno, CcAlgorithm::cubic}) {
    CongestionControl cc(a, cfg);
    (void)drive(cc);
  }
  CHECK(thread_alloc_count() == before);
}
#endif
