// CUBIC (RFC 9438) against a reference written here, independently, in double
// precision and in segments, straight from the RFC's equations: the implementation
// works in integer bytes and microseconds, so agreement within a fraction of a percent
// over tens of thousands of ACKs says the fixed-point arithmetic is the RFC's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/time.hpp"
#include "tcp/cubic.hpp"
#include "tcp/newreno.hpp"

#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

constexpr std::uint32_t kMss = 1000;
constexpr std::uint32_t kIss = 4'000'000'000u;
constexpr TimeNs kRtt = 100 * kNsPerMs;

double secs(TimeNs t) { return static_cast<double>(t) / 1e9; }
double segs(std::uint64_t bytes) { return static_cast<double>(bytes) / kMss; }

CcConfig config(bool fast_convergence = true) {
  CcConfig c;
  c.smss = kMss;
  c.fast_convergence = fast_convergence;
  return c;
}

// RFC 9438 §4, in segments and seconds, as the text states it.
struct RefCubic {
  static constexpr double C = 0.4;
  static constexpr double beta = 0.7;
  static constexpr double alpha_cubic = 3 * (1 - beta) / (1 + beta);  // §4.3
  bool fast_convergence = true;

  double cwnd = 0, ssthresh = 1e18, cwnd_prior = 0, w_max = 0, k = 0, w_est = 0;
  double t_epoch = 0;
  bool epoch = false, after_timeout = false, alpha_is_one = false;

  double w_cubic(double t) const { return C * std::pow(t - k, 3) + w_max; }  // eq. 1

  // §4.7 then §4.6, on the third duplicate ACK.
  void on_loss(double flight) {
    w_max = (fast_convergence && cwnd < w_max) ? cwnd * (1 + beta) / 2 : cwnd;
    cwnd_prior = cwnd;
    ssthresh = std::max(flight * beta, 2.0);
    epoch = false;
  }
  // §4.8.
  void on_timeout(double flight) {
    cwnd_prior = cwnd;
    ssthresh = std::max(flight * beta, 2.0);
    cwnd = 1;
    epoch = false;
    after_timeout = true;
  }
  // A new ACK in congestion avoidance, `acked` segments, at time `now` (s).
  void on_ca_ack(double now, double acked, double rtt) {
    if (!epoch) {
      epoch = true;
      t_epoch = now;
      if (after_timeout || w_max <= cwnd) {  // §4.8 / §4.10: K = 0, W_max = cwnd_epoch
        k = 0;
        w_max = cwnd;
      } else {
        k = std::cbrt((w_max - cwnd) / C);  // eq. 2
      }
      after_timeout = false;
      w_est = cwnd;
      alpha_is_one = w_est >= cwnd_prior;
    }
    const double t = now - t_epoch;
    w_est += (alpha_is_one ? 1.0 : alpha_cubic) * acked / cwnd;  // eq. 4
    if (w_est >= cwnd_prior) alpha_is_one = true;
    if (w_cubic(t) < w_est) {
      cwnd = std::max(cwnd, w_est);  // Reno-friendly region
    } else {
      const double target = std::clamp(w_cubic(t + rtt), cwnd, 1.5 * cwnd);
      cwnd += (target - cwnd) / cwnd * acked;  // concave / convex regions
    }
  }
};

// The ACK clock of newreno_test.cpp: the window outstanding at the start of a round is
// ACKed by ACKs spread evenly over one RTT; the sender refills after each ACK. `each`
// runs after every ACK (to drive the reference on the same events).
struct AckClock {
  Cubic& cc;
  TimeNs rtt = kRtt;
  TimeNs now = 0;
  std::uint32_t una = kIss;
  std::uint32_t nxt = kIss;

  std::uint32_t flight() const { return nxt - una; }
  void fill() {
    while (flight() + kMss <= cc.cwnd()) nxt += kMss;
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
  void round(const std::function<void()>& each = {}) {
    fill();
    const std::uint32_t acks = std::max<std::uint32_t>(1, flight() / kMss);
    const TimeNs start = now;
    for (std::uint32_t i = 0; i < acks; ++i) {
      ack(kMss, start + (i + 1) * rtt / acks);
      if (each) each();
      fill();
    }
  }
  // A loss detected by three duplicates, repaired within one RTT; the full ACK arrives
  // with `after` bytes of new data outstanding. Returns the cwnd just before the loss.
  std::uint32_t loss_and_recovery(std::uint32_t after) {
    fill();
    const std::uint32_t before = cc.cwnd();
    for (int i = 0; i < 3; ++i) dup_ack();
    REQUIRE(cc.in_recovery());
    const std::uint32_t acked = flight();
    una = nxt;
    nxt = una + after;
    now += rtt;
    REQUIRE(cc.on_ack({.now = now,
                       .ack = SeqNum{una},
                       .acked_bytes = acked,
                       .flight_size = after,
                       .srtt = rtt}) == AckAction::recovery_done);
    return before;
  }
};

// The sender's cwnd in the reference and the implementation, sampled at given times.
struct Trajectory {
  std::vector<double> at;  // seconds since the epoch
  std::vector<double> impl, ref;
};

}  // namespace

TEST_CASE("CUBIC: W_cubic(t) and K in fixed point match eq. 1 and eq. 2", "[cubic]") {
  const std::uint64_t w_max = 100 * kMss;  // 100 segments
  for (double dt : {-5.0, -2.0, -0.5, -0.001, 0.0, 0.001, 0.5, 2.0, 7.5}) {
    const double expect = (RefCubic::C * dt * dt * dt + 100) * kMss;
    const auto got = Cubic::window_at(w_max, static_cast<std::int64_t>(dt * 1e6), kMss);
    CHECK(std::fabs(static_cast<double>(got) - std::max(expect, 0.0)) <= 1.0);
  }
  // Saturation, both ways.
  CHECK(Cubic::window_at(w_max, Cubic::kMaxDtUs * 4, kMss) == kCwndMax);
  CHECK(Cubic::window_at(w_max, -Cubic::kMaxDtUs * 4, kMss) == 0);

  // K = cbrt((W_max - cwnd_epoch)/C): a 30-segment deficit takes cbrt(75) = 4.217 s.
  for (std::uint64_t deficit :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{300}, std::uint64_t{30'000},
        std::uint64_t{700'000}, std::uint64_t{kCwndMax}}) {
    const double expect_s = std::cbrt(segs(deficit) / RefCubic::C);
    const double got_s = static_cast<double>(Cubic::k_us(deficit, kMss)) / 1e6;
    CHECK(std::fabs(got_s - expect_s) <= 2e-6);
  }
  CHECK(std::fabs(static_cast<double>(Cubic::k_us(30'000, kMss)) - 4'217'163) <= 1);
}

TEST_CASE("CUBIC: loss response is beta_cubic = 0.7 on FlightSize (RFC 9438 4.6)", "[cubic]") {
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.fill();
  REQUIRE(clk.flight() == 160 * kMss);  // 10, 20, 40, 80, 160

  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(clk.dup_ack() == DupAckAction::limited_transmit);
  CHECK(clk.dup_ack() == DupAckAction::fast_retransmit);
  CHECK(cc.ssthresh() == 112 * kMss);  // 0.7 * 160
  CHECK(cc.cwnd() == 115 * kMss);      // ssthresh + 3*SMSS (fast recovery unchanged)
  CHECK(cc.w_max() == 160 * kMss);     // first loss: W_max = cwnd
  CHECK(cc.cwnd_prior() == 160 * kMss);
  CHECK_FALSE(cc.in_epoch());

  // NewReno would have halved.
  NewReno reno(config());
  for (int i = 0; i < 3; ++i)
    reno.on_dup_ack(
        {.now = 0, .ack = SeqNum{0}, .snd_max = SeqNum{160 * kMss}, .flight_size = 160 * kMss});
  CHECK(reno.ssthresh() == 80 * kMss);

  // The floor is 2*SMSS.
  Cubic small(config());
  for (int i = 0; i < 3; ++i)
    small.on_dup_ack(
        {.now = 0, .ack = SeqNum{0}, .snd_max = SeqNum{2 * kMss}, .flight_size = 2 * kMss});
  CHECK(small.ssthresh() == 2 * kMss);
}

TEST_CASE("CUBIC: fast convergence lowers W_max when the loss comes below it (4.7)", "[cubic]") {
  for (bool fc : {true, false}) {
    Cubic cc(config(fc));
    AckClock clk{cc};
    while (cc.cwnd() < 100 * kMss) clk.round();
    clk.loss_and_recovery(112 * kMss);
    REQUIRE(cc.w_max() == 160 * kMss);
    REQUIRE(cc.cwnd() == 112 * kMss);
    // A few rounds of CA, then the next loss, still below the old W_max.
    for (int r = 0; r < 3; ++r) clk.round();
    const std::uint32_t c = clk.loss_and_recovery(0);
    REQUIRE(c < 160 * kMss);
    if (fc) {
      CHECK(cc.w_max() == std::uint64_t{c} * 17 / 20);  // cwnd * (1 + beta) / 2
    } else {
      CHECK(cc.w_max() == c);
    }
    CHECK(cc.cwnd_prior() == c);
    // ssthresh comes from FlightSize (whole segments here), not from cwnd.
    const std::uint64_t flight = c / kMss * kMss;
    CHECK(cc.ssthresh() == std::max<std::uint64_t>(flight * 7 / 10, 2 * kMss));
  }

  // A loss above W_max just records it.
  Cubic cc(config(true));
  AckClock clk{cc};
  while (cc.cwnd() < 40 * kMss) clk.round();
  clk.loss_and_recovery(28 * kMss);  // W_max = 40 segments
  while (cc.cwnd() <= 45 * kMss) clk.round();
  const std::uint32_t c = clk.loss_and_recovery(0);
  CHECK(cc.w_max() == c);
}

TEST_CASE("CUBIC: concave then convex trajectory follows RFC 9438 after a loss", "[cubic]") {
  // W_max = 1280 segments, RTT 100 ms: K = cbrt(1280 * 0.3 / 0.4) ~ 9.87 s, far outside
  // the Reno-friendly region (W_est gains ~0.53 segment per RTT).
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 1000 * kMss) clk.round();
  REQUIRE(cc.cwnd() == 1280 * kMss);
  const double flight = segs(clk.flight() + 0);

  RefCubic ref;
  ref.cwnd = segs(cc.cwnd());
  ref.on_loss(flight);
  clk.fill();
  const std::uint32_t after = (cc.cwnd() * 7 / 10 / kMss) * kMss;  // refill to ~ssthresh
  clk.loss_and_recovery(after);
  // Full ACK: cwnd = min(ssthresh, FlightSize + SMSS), in both.
  ref.cwnd = std::min(ref.ssthresh, segs(after) + 1);
  REQUIRE(segs(cc.cwnd()) == Approx(ref.cwnd).epsilon(1e-9));
  REQUIRE(segs(cc.ssthresh()) == Approx(ref.ssthresh).epsilon(1e-9));

  Trajectory tr;
  const std::vector<double> checkpoints = {0.5, 1, 2, 4, 6, 8, 9.5, 10.5, 12, 14, 16};
  std::size_t next = 0;
  double epoch = -1;
  const std::uint32_t cwnd_at_ca = cc.cwnd();
  clk.round([&] {
    // Drive the reference on the same ACK.
    ref.on_ca_ack(secs(clk.now), 1.0, secs(kRtt));
    if (epoch < 0) epoch = secs(clk.now);
  });
  REQUIRE(cc.in_epoch());
  CHECK(secs(cc.epoch_start()) == Approx(epoch));
  CHECK(cc.cwnd_epoch() == cwnd_at_ca);
  // K: the implementation's integer cube root against cbrt() on the same inputs, and
  // against the brief form cbrt(W_max * (1 - beta) / C), which holds because the epoch
  // starts at ssthresh = 0.7 * W_max.
  CHECK(secs(cc.k()) == Approx(ref.k).epsilon(1e-6));
  CHECK(secs(cc.k()) == Approx(std::cbrt(1280 * 0.3 / 0.4)).epsilon(2e-3));

  while (next < checkpoints.size()) {
    clk.round([&] {
      ref.on_ca_ack(secs(clk.now), 1.0, secs(kRtt));
      if (next < checkpoints.size() && secs(clk.now) - epoch >= checkpoints[next]) {
        tr.at.push_back(checkpoints[next]);
        tr.impl.push_back(segs(cc.cwnd()));
        tr.ref.push_back(ref.cwnd);
        ++next;
      }
    });
  }
  for (std::size_t i = 0; i < tr.at.size(); ++i) {
    INFO("t = " << tr.at[i] << " s: impl " << tr.impl[i] << " ref " << tr.ref[i]);
    CHECK(tr.impl[i] == Approx(tr.ref[i]).epsilon(0.002));
    // And the window itself is the cubic, one RTT of ACK-clock lag aside: below W_max
    // before K (concave), above it after (convex).
    const double w = RefCubic::C * std::pow(tr.at[i] - ref.k, 3) + ref.w_max;
    CHECK(tr.impl[i] == Approx(w).epsilon(0.005));
    if (tr.at[i] < ref.k - 2) CHECK(tr.impl[i] < segs(cc.w_max()));
    if (tr.at[i] > ref.k + 2) CHECK(tr.impl[i] > segs(cc.w_max()));
    // The plateau: around K the window sits at W_max.
    if (std::fabs(tr.at[i] - ref.k) < 0.7) CHECK(tr.impl[i] == Approx(1280).epsilon(0.002));
  }
  // Not the Reno-friendly region: W_est trails far behind.
  CHECK(cc.w_est() + 200 * kMss < cc.cwnd());
}

TEST_CASE("CUBIC: the Reno-friendly region takes over at small RTTs (4.3)", "[cubic]") {
  // The same loss (W_max = 80 segments) at RTT 1 ms and at 100 ms, looked at 2 s into
  // the epoch. K = cbrt(80 * 0.3 / 0.4) = 3.9 s is 3900 RTTs at 1 ms: long before the
  // cubic leaves its plateau, Reno's linear growth (W_est) is far ahead, and CUBIC
  // must be at least as aggressive as Reno would be.
  struct Result {
    double cwnd, w_est, w_cubic, growth_first_rtts, growth_last_rtts;
  };
  auto run = [](TimeNs rtt) {
    Cubic cc(config());
    AckClock clk{cc};
    clk.rtt = rtt;
    while (cc.cwnd() < 80 * kMss) clk.round();
    RefCubic ref;
    ref.cwnd = segs(cc.cwnd());
    clk.fill();
    ref.on_loss(segs(clk.flight()));
    clk.loss_and_recovery(56 * kMss);
    ref.cwnd = std::min(ref.ssthresh, 57.0);
    REQUIRE(cc.cwnd() == 56 * kMss);

    auto drive = [&] { ref.on_ca_ack(secs(clk.now), 1.0, secs(rtt)); };
    std::vector<double> per_round{segs(cc.cwnd())};
    clk.round(drive);
    while (secs(clk.now - cc.epoch_start()) < 2.0) {
      clk.round(drive);
      per_round.push_back(segs(cc.cwnd()));
    }
    REQUIRE(per_round.size() > 20);
    const std::size_t n = per_round.size();
    CHECK(segs(cc.cwnd()) == Approx(ref.cwnd).epsilon(0.002));
    const double t = secs(clk.now - cc.epoch_start());
    return Result{segs(cc.cwnd()), segs(cc.w_est()),
                  RefCubic::C * std::pow(t - secs(cc.k()), 3) + segs(cc.w_max()),
                  (per_round[20] - per_round[0]) / 20, (per_round[n - 1] - per_round[n - 21]) / 20};
  };

  const Result fast = run(1 * kNsPerMs);
  // cwnd follows W_est, far above what the cubic alone would give.
  CHECK(fast.cwnd == Approx(fast.w_est).epsilon(0.001));
  CHECK(fast.cwnd > fast.w_cubic + 1000);
  // alpha_cubic = 3(1-0.7)/(1+0.7) = 0.529 segments per RTT at first ...
  CHECK(fast.growth_first_rtts == Approx(0.529).epsilon(0.05));
  // ... and Reno's own 1 segment per RTT once W_est passed cwnd_prior (80 segments).
  CHECK(fast.growth_last_rtts == Approx(1.0).epsilon(0.05));

  const Result slow = run(100 * kNsPerMs);
  // At 100 ms the same loss recovers along the concave cubic, ahead of W_est.
  CHECK(slow.cwnd > slow.w_est + 5);
  CHECK(slow.cwnd == Approx(slow.w_cubic).epsilon(0.03));
}

TEST_CASE("CUBIC: a timeout collapses cwnd, then CA starts at K = 0 from cwnd_epoch (4.8)",
          "[cubic]") {
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.fill();
  REQUIRE(clk.flight() == 160 * kMss);

  RefCubic ref;
  ref.cwnd = 160;
  ref.on_timeout(160);
  clk.now += kNsPerSec;
  cc.on_rto({.now = clk.now, .snd_max = SeqNum{clk.nxt}, .flight_size = clk.flight()});
  CHECK(cc.cwnd() == kMss);
  CHECK(cc.ssthresh() == 112 * kMss);  // beta_cubic, not Reno's 1/2
  CHECK(cc.cwnd_prior() == 160 * kMss);
  // Backed-off repeat: ssthresh and cwnd_prior stay.
  cc.on_rto({.now = clk.now + kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = kMss});
  clk.now += kNsPerSec;
  CHECK(cc.ssthresh() == 112 * kMss);
  CHECK(cc.cwnd_prior() == 160 * kMss);

  // Go-back-N: everything outstanding is resent; slow start (L = 1*SMSS) to ssthresh,
  // then CA. The reference sees the ACKs from the first one the implementation took in
  // congestion avoidance: the one after the ACK that brought cwnd to ssthresh.
  clk.una = clk.nxt;
  ref.cwnd = ref.ssthresh;
  double epoch = -1;
  bool was_slow_start = true;
  auto drive = [&] {
    if (!was_slow_start) {
      ref.on_ca_ack(secs(clk.now), 1.0, secs(kRtt));
      if (epoch < 0) epoch = secs(clk.now);
    }
    was_slow_start = cc.in_slow_start();
  };
  while (cc.in_slow_start()) clk.round(drive);
  REQUIRE(cc.cwnd() >= 112 * kMss);
  clk.round(drive);
  REQUIRE(cc.in_epoch());
  CHECK(secs(cc.epoch_start()) == Approx(epoch));
  CHECK(cc.k() == 0);
  CHECK(cc.cwnd_epoch() == 112 * kMss);
  CHECK(cc.w_max() == 112 * kMss);  // W_max = cwnd at the start of this CA stage
  CHECK(segs(cc.w_max()) == Approx(ref.w_max));

  // W(t) = 0.4 t^3 + 112: Reno-friendly for the first ~3.6 s (W_est gains 5.3/s), the
  // convex cubic after.
  for (double at : {1.0, 3.0, 5.0, 6.0}) {
    while (secs(clk.now) - epoch < at) clk.round(drive);
    INFO("t = " << at);
    CHECK(segs(cc.cwnd()) == Approx(ref.cwnd).epsilon(0.002));
  }
  CHECK(segs(cc.cwnd()) > 112 + 0.4 * 125);  // past W(5 s) = 162 segments
}

TEST_CASE("CUBIC: after a timeout the old W_max is not the plateau (4.8)", "[cubic]") {
  // A loss first sets W_max = 160 segments; a timeout follows. The CA stage after the
  // timeout must not aim for the old plateau (K from 160 - 112 segments would be 4.9 s
  // of concave climb): K = 0 and W_max = cwnd_epoch.
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.loss_and_recovery(112 * kMss);
  REQUIRE(cc.w_max() == 160 * kMss);
  clk.round();
  REQUIRE(cc.in_epoch());
  REQUIRE(cc.k() > 0);

  clk.fill();
  clk.now += kNsPerSec;
  cc.on_rto({.now = clk.now, .snd_max = SeqNum{clk.nxt}, .flight_size = clk.flight()});
  const std::uint32_t ssthresh = cc.ssthresh();
  CHECK(ssthresh == clk.flight() / 10 * 7);
  clk.una = clk.nxt;
  while (cc.in_slow_start()) clk.round();
  clk.round();
  REQUIRE(cc.in_epoch());
  CHECK(cc.k() == 0);
  CHECK(cc.cwnd_epoch() == ssthresh);
  CHECK(cc.w_max() == ssthresh);
}

TEST_CASE("CUBIC: partial and full ACKs behave as NewReno's", "[cubic]") {
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 20 * kMss) clk.round();
  clk.fill();
  for (int i = 0; i < 4; ++i) clk.dup_ack();
  REQUIRE(cc.cwnd() == 18 * kMss);  // 0.7 * 20 + 3 + 1 segments
  CHECK(clk.ack(2 * kMss, clk.now + kRtt) == AckAction::first_partial_ack);
  CHECK(cc.cwnd() == 17 * kMss);  // 18 - 2 + 1
  CHECK(clk.ack(2 * kMss, clk.now + kRtt) == AckAction::partial_ack);
  CHECK(cc.cwnd() == 16 * kMss);
}

TEST_CASE("CUBIC: application-limited time does not count towards t (5.8)", "[cubic]") {
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.loss_and_recovery(112 * kMss);
  for (int r = 0; r < 5; ++r) clk.round();
  REQUIRE(cc.in_epoch());
  const TimeNs epoch = cc.epoch_start();
  const std::uint32_t cwnd = cc.cwnd();

  // Ten seconds of a trickle: one segment in flight, ACKed every 100 ms.
  clk.una = clk.nxt;
  clk.nxt = clk.una + kMss;
  for (int i = 0; i < 100; ++i) {
    clk.ack(kMss, clk.now + kRtt);
    clk.nxt += kMss;
  }
  CHECK(cc.cwnd() == cwnd);  // no growth from an untested window
  CHECK(cc.w_est() <= cwnd);
  CHECK(cc.epoch_start() == epoch + 100 * kRtt);  // the epoch slid by the whole gap
}

TEST_CASE("CUBIC: idle restart (RFC 5681 4.1) starts a new epoch; a short idle shifts it",
          "[cubic]") {
  Cubic cc(config());
  AckClock clk{cc};
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.loss_and_recovery(112 * kMss);
  for (int r = 0; r < 5; ++r) clk.round();
  const TimeNs rto = 300 * kNsPerMs;

  const TimeNs epoch = cc.epoch_start();
  const TimeNs last_send = clk.now;
  CHECK_FALSE(cc.on_idle_restart(last_send + 200 * kNsPerMs, last_send, rto));
  CHECK(cc.epoch_start() == epoch + 200 * kNsPerMs);
  CHECK(cc.cwnd() > 112 * kMss);

  CHECK(cc.on_idle_restart(last_send + 5 * kNsPerSec, last_send + 200 * kNsPerMs, rto));
  CHECK(cc.cwnd() == 10 * kMss);  // min(IW, cwnd)
  CHECK_FALSE(cc.in_epoch());
  CHECK(cc.ssthresh() == 112 * kMss);
}

#ifdef USTACK_COUNT_ALLOCS
TEST_CASE("CUBIC: no heap allocation after construction", "[cubic][alloc]") {
  Cubic cc(config());
  AckClock clk{cc};
  const std::uint64_t before = thread_alloc_count();
  while (cc.cwnd() < 100 * kMss) clk.round();
  clk.loss_and_recovery(112 * kMss);
  for (int r = 0; r < 50; ++r) clk.round();
  cc.on_rto({.now = clk.now + kNsPerSec, .snd_max = SeqNum{clk.nxt}, .flight_size = clk.flight()});
  CHECK(thread_alloc_count() == before);
}
#endif
