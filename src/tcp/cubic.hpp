// CUBIC congestion control.
//
// Read first:
//   RFC 9438 §4.1    definitions: C = 0.4, beta_cubic = 0.7, W_max, cwnd_prior, K, t_epoch
//   RFC 9438 §4.2    W_cubic(t) = C*(t - K)^3 + W_max, K = cbrt((W_max - cwnd_epoch)/C),
//                    target = W_cubic(t + RTT) bounded to [cwnd, 1.5*cwnd]
//   RFC 9438 §4.3    Reno-friendly region: W_est, alpha_cubic = 3(1-beta)/(1+beta), and
//                    alpha = 1 once W_est >= cwnd_prior
//   RFC 9438 §4.4-5  concave and convex regions: cwnd += (target - cwnd)/cwnd per ACK
//   RFC 9438 §4.6    multiplicative decrease; §4.7 fast convergence; §4.8 timeout
//   RFC 9438 §4.10   slow start (Reno's, from RenoWindow; HyStart++ is not implemented)
//   RFC 9438 §5.8    t must not include application-limited periods
//   newreno.hpp      the fast retransmit / fast recovery CUBIC keeps unchanged (§4.2:
//                    "It does not make any changes to the TCP Fast Recovery and Fast
//                    Retransmit algorithms")
//
// Not implemented: the optional undo after a spurious congestion event (§4.9), because
// the connection has no spurious-loss detection (F-RTO, Eifel, DSACK) to trigger it yet.
//
// Arithmetic. Windows are bytes (the RFC allows it: §4.1, "Implementations can use
// bytes", with segments_acked replaced by acknowledged bytes). Time is integer
// microseconds inside the cubic: W_cubic in bytes is W_max + 2*SMSS*dt^3 / (5*10^18)
// for dt in us, which at |dt| <= 2^31 us (36 min) fits an unsigned 128-bit product with
// room to spare, and is exact to the byte. K comes from an integer cube root of a
// 128-bit value (a 31-step binary search, once per congestion event). Every constant is
// rational: C = 2/5, beta = 7/10, alpha_cubic = 9/17, (1+beta)/2 = 17/20, so nothing
// needs floating point, per-ACK results are reproducible bit for bit across compilers
// and -ffast-math, and fractional growth is carried in remainder accumulators instead
// of being rounded away on every ACK.
#pragma once

#include <cstdint>

#include "core/time.hpp"
#include "tcp/newreno.hpp"

namespace ustack::tcp {

class Cubic {
 public:
  // Beyond this distance from K the cubic term is clamped (the window would be at
  // kCwndMax or 0 long before).
  static constexpr std::int64_t kMaxDtUs = std::int64_t{1} << 31;

  explicit Cubic(const CcConfig& cfg = {}) noexcept;

  AckAction on_ack(const AckEvent& ev) noexcept;
  DupAckAction on_dup_ack(const DupAckEvent& ev) noexcept;
  void on_rto(const RtoEvent& ev) noexcept;
  bool on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept;

  std::uint32_t cwnd() const noexcept { return w_.cwnd(); }
  std::uint32_t ssthresh() const noexcept { return w_.ssthresh(); }
  std::uint32_t smss() const noexcept { return w_.smss(); }
  bool in_slow_start() const noexcept { return w_.in_slow_start(); }
  bool in_recovery() const noexcept { return w_.in_recovery(); }
  const RenoWindow& window() const noexcept { return w_; }

  // CUBIC state, for tests and telemetry. Windows in bytes, times in ns.
  std::uint32_t w_max() const noexcept { return w_max_; }
  std::uint32_t cwnd_prior() const noexcept { return cwnd_prior_; }
  std::uint64_t w_est() const noexcept { return w_est_; }
  bool in_epoch() const noexcept { return epoch_valid_; }  // a CA stage has started
  TimeNs epoch_start() const noexcept { return t_epoch_; }
  std::uint32_t cwnd_epoch() const noexcept { return cwnd_epoch_; }
  TimeNs k() const noexcept { return static_cast<TimeNs>(k_us_) * kNsPerUs; }

  // W_cubic at distance dt_us = t - K from the plateau, in bytes (RFC 9438 eq. 1),
  // saturating at 0 and kCwndMax.
  static std::uint64_t window_at(std::uint64_t w_max, std::int64_t dt_us,
                                 std::uint32_t smss) noexcept;
  // K in us for a window that must climb `deficit` bytes back to W_max (eq. 2).
  static std::uint64_t k_us(std::uint64_t deficit, std::uint32_t smss) noexcept;

 private:
  void start_epoch(TimeNs now) noexcept;
  void grow(const AckEvent& ev, std::uint32_t acked) noexcept;

  RenoWindow w_;
  bool fast_convergence_;
  bool epoch_valid_ = false;
  // The next CA stage follows a timeout: K = 0 and W_max = cwnd_epoch (§4.8).
  bool after_rto_ = false;
  // alpha_cubic has switched to 1 (§4.3) for this epoch.
  bool alpha_one_ = false;
  std::uint32_t w_max_ = 0;
  std::uint32_t cwnd_prior_ = 0;
  std::uint32_t cwnd_epoch_ = 0;
  TimeNs t_epoch_ = 0;
  TimeNs last_ack_ = 0;  // `now` of the previous ACK, to discount app-limited gaps
  std::int64_t k_us_ = 0;
  std::uint64_t w_est_ = 0;
  // Numerators of growth not yet worth a whole byte: W_est's in units of
  // 1/(17*cwnd) bytes, cwnd's in units of 1/cwnd bytes.
  std::uint64_t w_est_rem_ = 0;
  std::uint64_t cwnd_rem_ = 0;
};

}  // namespace ustack::tcp
