// RFC 6298 RTO estimator: the worked numbers of §2, the bounds of (2.4)/(2.5), the
// backoff of (5.5), the 3 s rule of (5.7), and G's role in RTO = SRTT + max(G, 4*RTTVAR).
//
// This binary needs no EAL, so it has its own Catch2 main, here.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/time.hpp"
#include "tcp/rtt.hpp"

using namespace ustack;
using namespace ustack::tcp;

namespace {

constexpr TimeNs ms(double v) { return static_cast<TimeNs>(v * 1e6); }

// A config with the RFC's bounds out of the way, to see the bare formula.
RttConfig unclamped(TimeNs g = 1) {
  RttConfig c;
  c.min_rto = 1;
  c.max_rto = 3600 * kNsPerSec;
  c.granularity = g;
  return c;
}

}  // namespace

TEST_CASE("RTO: before any sample the RTO is the initial 1 s (RFC 6298 2.1)", "[rtt]") {
  RttEstimator e;
  CHECK_FALSE(e.has_sample());
  CHECK(e.rto() == kNsPerSec);
  CHECK(e.srtt() == 0);
  CHECK(e.rttvar() == 0);
  CHECK(e.config().min_rto == 200 * kNsPerMs);
  CHECK(e.config().max_rto == 60 * kNsPerSec);
}

TEST_CASE("RTO: first sample sets SRTT = R, RTTVAR = R/2 (RFC 6298 2.2)", "[rtt]") {
  RttEstimator e;
  e.on_rtt_sample(ms(100));
  CHECK(e.has_sample());
  CHECK(e.srtt() == ms(100));
  CHECK(e.rttvar() == ms(50));
  // SRTT + max(G, 4*RTTVAR) = 100 + 200 ms.
  CHECK(e.rto() == ms(300));
}

TEST_CASE("RTO: later samples use alpha 1/8, beta 1/4 with the old SRTT (2.3)", "[rtt]") {
  RttEstimator e;
  e.on_rtt_sample(ms(100));
  e.on_rtt_sample(ms(200));
  // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5 ms (the OLD SRTT, 100, is used).
  CHECK(e.rttvar() == ms(62.5));
  // SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms.
  CHECK(e.srtt() == ms(112.5));
  CHECK(e.rto() == ms(112.5) + 4 * ms(62.5));  // 362.5 ms

  e.on_rtt_sample(ms(80));
  // RTTVAR = 3/4 * 62.5 + 1/4 * |112.5 - 80| = 46.875 + 8.125 = 55 ms.
  CHECK(e.rttvar() == ms(55));
  // SRTT = 7/8 * 112.5 + 1/8 * 80 = 98.4375 + 10 = 108.4375 ms.
  CHECK(e.srtt() == ms(108.4375));
  CHECK(e.rto() == ms(108.4375) + ms(220));
}

TEST_CASE("RTO: a long sample sequence tracks the real-valued formula", "[rtt]") {
  // Reference in double precision, straight from §2; the integer version may differ
  // only by its truncations, < 1 ns per step.
  const std::vector<double> samples_ms = {30, 31, 29, 45, 120, 33, 32, 31, 30, 500, 35,
                                          36, 34, 33, 31, 29,  28, 30, 31, 32, 33,  30};
  RttEstimator e(unclamped());
  double srtt = 0, rttvar = 0;
  bool first = true;
  for (double r : samples_ms) {
    e.on_rtt_sample(ms(r));
    const double rn = r * 1e6;
    if (first) {
      srtt = rn;
      rttvar = rn / 2;
      first = false;
    } else {
      rttvar = 0.75 * rttvar + 0.25 * std::fabs(srtt - rn);
      srtt = 0.875 * srtt + 0.125 * rn;
    }
    CHECK(std::fabs(static_cast<double>(e.srtt()) - srtt) < 10);
    CHECK(std::fabs(static_cast<double>(e.rttvar()) - rttvar) < 10);
    CHECK(std::fabs(static_cast<double>(e.rto()) - (srtt + std::max(1.0, 4 * rttvar))) < 50);
  }
}

TEST_CASE("RTO: the minimum clamps a small computed RTO (2.4)", "[rtt]") {
  RttEstimator e;  // min_rto 200 ms
  e.on_rtt_sample(ms(10));
  CHECK(e.srtt() == ms(10));
  CHECK(e.rto() == ms(200));  // 10 + 20 = 30 ms, raised to the minimum

  RttConfig rfc;
  rfc.min_rto = kNsPerSec;  // RFC 6298's own 1 s floor
  RttEstimator strict(rfc);
  strict.on_rtt_sample(ms(100));
  CHECK(strict.rto() == kNsPerSec);
}

TEST_CASE("RTO: the maximum clamps a large computed RTO (2.5)", "[rtt]") {
  RttEstimator e;
  e.on_rtt_sample(50 * kNsPerSec);  // 50 + 100 s
  CHECK(e.rto() == 60 * kNsPerSec);
  // Absurd samples are clamped before use and cannot overflow the arithmetic.
  e.on_rtt_sample(~TimeNs{0});
  CHECK(e.srtt() <= RttEstimator::kMaxSample);
  CHECK(e.rto() == 60 * kNsPerSec);
}

TEST_CASE("RTO: backoff doubles up to the maximum and a new sample collapses it (5.5)", "[rtt]") {
  RttEstimator e;
  e.on_rtt_sample(ms(100));
  REQUIRE(e.rto() == ms(300));
  e.backoff();
  CHECK(e.rto() == ms(600));
  CHECK(e.backoff_count() == 1);
  e.backoff();
  CHECK(e.rto() == ms(1200));
  for (int i = 0; i < 6; ++i) e.backoff();  // 300 ms * 2^8 = 76.8 s > 60 s
  CHECK(e.rto() == 60 * kNsPerSec);
  CHECK(e.backoff_count() == 8);
  for (int i = 0; i < 100; ++i) e.backoff();  // stays at the cap, never overflows
  CHECK(e.rto() == 60 * kNsPerSec);

  // A sample (Karn: from a segment that was not retransmitted) recomputes the RTO from
  // SRTT/RTTVAR: the backoff is gone.
  e.on_rtt_sample(ms(100));
  CHECK(e.backoff_count() == 0);
  CHECK(e.rto() < ms(400));
}

TEST_CASE("RTO: reset_backoff returns to the computed or initial RTO", "[rtt]") {
  RttEstimator fresh;
  fresh.backoff();
  fresh.backoff();
  CHECK(fresh.rto() == 4 * kNsPerSec);
  fresh.reset_backoff();
  CHECK(fresh.rto() == kNsPerSec);

  RttEstimator e;
  e.on_rtt_sample(ms(100));
  e.backoff();
  e.backoff();
  CHECK(e.rto() == ms(1200));
  e.reset_backoff();
  CHECK(e.rto() == ms(300));
  CHECK(e.backoff_count() == 0);
  CHECK(e.srtt() == ms(100));  // the estimates are untouched
}

TEST_CASE("RTO: G bounds the variance term on a steady path", "[rtt]") {
  // Identical samples drive RTTVAR towards 0; RTO then tends to SRTT + G, never to SRTT.
  RttEstimator coarse(unclamped(ms(50)));
  RttEstimator fine(unclamped(ms(1)));
  for (int i = 0; i < 200; ++i) {
    coarse.on_rtt_sample(ms(100));
    fine.on_rtt_sample(ms(100));
  }
  CHECK(coarse.srtt() == ms(100));
  CHECK(coarse.rttvar() < ms(0.001));
  CHECK(coarse.rto() == ms(150));  // max(G, 4*RTTVAR) = G = 50 ms
  CHECK(fine.rto() == ms(101));    // G = 1 ms

  // When 4*RTTVAR exceeds G, G plays no part.
  RttEstimator a(unclamped(ms(50)));
  a.on_rtt_sample(ms(100));  // 4*RTTVAR = 200 ms > G
  CHECK(a.rto() == ms(300));
}

TEST_CASE("RTO: after a lost SYN the data phase starts from 3 s (5.7)", "[rtt]") {
  RttEstimator e;  // 1 s, no sample (the SYN was retransmitted: Karn forbids timing it)
  e.backoff();     // the SYN timed out
  e.on_handshake_done_after_syn_timeout();
  CHECK(e.rto() == 3 * kNsPerSec);
  CHECK(e.backoff_count() == 0);
  e.on_rtt_sample(ms(100));  // the first data sample takes over as usual
  CHECK(e.rto() == ms(300));

  RttEstimator slow;
  slow.on_rtt_sample(2 * kNsPerSec);  // RTO already 6 s: not lowered
  slow.on_handshake_done_after_syn_timeout();
  CHECK(slow.rto() == 6 * kNsPerSec);
}

TEST_CASE("RTO: an inconsistent config is made usable", "[rtt]") {
  RttConfig c;
  c.min_rto = 2 * kNsPerSec;
  c.max_rto = kNsPerSec;    // below the minimum
  c.initial_rto = ms(100);  // below both
  RttEstimator e(c);
  CHECK(e.config().max_rto == 2 * kNsPerSec);
  CHECK(e.rto() == 2 * kNsPerSec);
}
