// Retransmission timeout estimator.
//
// Read first:
//   RFC 6298 §2    SRTT/RTTVAR update, first-sample rule, RTO = SRTT + max(G, 4*RTTVAR),
//                  the 1 s initial RTO, minimum and maximum RTO (2.4, 2.5)
//   RFC 6298 §3    Karn's algorithm: which segments may be timed
//   RFC 6298 §5    timer management; (5.5) exponential backoff, (5.7) the 3 s rule after a
//                  lost SYN, and the note that a new sample "collapses" a backed-off RTO
//   RFC 7323 §4    with timestamps, retransmitted segments may be timed (Karn does not apply)
//
// Sans-IO: the estimator never reads a clock and owns no timer. The connection measures
// the RTT (from its own send times or from TSecr), feeds it here, and arms its
// retransmission timer for rto(). All arithmetic is integer nanoseconds: with alpha = 1/8
// and beta = 1/4 each update is a multiply-add and one integer division, and the
// truncation error (< 1 ns per update) is far below any clock the runtime has.
#pragma once

#include <cstdint>

#include "core/time.hpp"

namespace ustack::tcp {

struct RttConfig {
  // RFC 6298 (2.4) says a minimum of 1 s; like most deployed stacks we default lower,
  // to 200 ms, because on today's paths a 1 s floor turns every tail loss into a
  // second of dead air, and spurious timeouts are caught by the SRTT + 4*RTTVAR term
  // on paths whose RTT is near the floor. Configurable for those who want RFC's value.
  TimeNs min_rto = 200 * kNsPerMs;
  // RFC 6298 (2.5): a maximum "MAY be placed on RTO provided it is at least 60 seconds".
  // We take exactly 60 s. The cap bounds how long a sender sits silent after a path
  // heals; giving up on the connection (RFC 9293 §3.8.3 R2, >= 100 s) is decided by
  // the connection counting elapsed time, so a larger cap would only make recovery
  // after an outage slower without changing when a dead peer is declared dead.
  TimeNs max_rto = 60 * kNsPerSec;
  // RFC 6298 (2.1): before the first measurement, RTO = 1 s.
  TimeNs initial_rto = 1 * kNsPerSec;
  // G, the clock granularity of the timer that enforces the RTO. `now` is ns-precise,
  // but the retransmission timer lives on the lcore's timer wheel, which fires up to one
  // tick (100 us in net::Stack) plus one poll-loop iteration late; 1 ms covers both.
  TimeNs granularity = 1 * kNsPerMs;
};

// RFC 6298 RTO computation for one connection.
//
// Karn's algorithm is the caller's job: do NOT call on_rtt_sample() with a measurement
// taken from a segment that was retransmitted (the ACK may be for either copy), unless
// the sample comes from the TCP timestamp option (RFC 7323 §4), which says which copy
// was acknowledged. Until such a valid sample arrives, a backed-off RTO stays backed
// off (RFC 6298 §5, the note after (5.7)).
class RttEstimator {
 public:
  // Samples above this are clamped before use: far beyond any real RTT, and it keeps
  // 7*SRTT and 4*RTTVAR comfortably inside 64 bits whatever the caller feeds.
  static constexpr TimeNs kMaxSample = 3600 * kNsPerSec;
  // RFC 6298 (5.7).
  static constexpr TimeNs kSynLossRto = 3 * kNsPerSec;

  explicit RttEstimator(const RttConfig& cfg = {}) noexcept;

  // One RTT measurement R (RFC 6298 (2.2) for the first, (2.3) afterwards). Recomputes
  // the RTO and clears any backoff: a fresh measurement is better evidence than the
  // doubling was.
  void on_rtt_sample(TimeNs rtt) noexcept;

  // The retransmission timer expired: RTO = min(2 * RTO, max_rto) (RFC 6298 (5.5)).
  void backoff() noexcept;

  // Drops the backoff and returns to the computed RTO (or the initial RTO if there has
  // been no sample). For callers that learn the path is alive without a usable sample.
  void reset_backoff() noexcept;

  // RFC 6298 (5.7): the SYN (or SYN-ACK) timed out and the handshake then completed.
  // If the RTO in use is below 3 s it is re-initialised to 3 s (capped by max_rto) for
  // the data phase; the next valid sample replaces it as usual.
  void on_handshake_done_after_syn_timeout() noexcept;

  bool has_sample() const noexcept { return has_sample_; }
  TimeNs srtt() const noexcept { return srtt_; }      // 0 until has_sample()
  TimeNs rttvar() const noexcept { return rttvar_; }  // 0 until has_sample()
  TimeNs rto() const noexcept { return rto_; }        // includes backoff
  // Consecutive backoffs since the last sample or reset; the connection compares it
  // with its R1/R2 limits (RFC 9293 §3.8.3).
  std::uint32_t backoff_count() const noexcept { return backoffs_; }
  const RttConfig& config() const noexcept { return cfg_; }

 private:
  TimeNs clamp_rto(TimeNs rto) const noexcept;

  RttConfig cfg_;
  TimeNs srtt_ = 0;
  TimeNs rttvar_ = 0;
  TimeNs base_rto_;  // RTO from the last computation, before backoff
  TimeNs rto_;       // base_rto_ doubled backoffs_ times, capped
  std::uint32_t backoffs_ = 0;
  bool has_sample_ = false;
};

}  // namespace ustack::tcp
