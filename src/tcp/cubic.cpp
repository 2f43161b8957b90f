// CUBIC (RFC 9438); see cubic.hpp for the sections to read and the arithmetic.
#include "tcp/cubic.hpp"

#include <algorithm>

namespace ustack::tcp {

namespace {

__extension__ using u128 = unsigned __int128;

// RFC 9438 constants as exact fractions.
constexpr std::uint32_t kBetaNum = 7, kBetaDen = 10;           // beta_cubic = 0.7 (§4.6)
constexpr std::uint64_t kAlphaNum = 9, kAlphaDen = 17;         // 3(1-0.7)/(1+0.7) (§4.3)
constexpr std::uint64_t kFastConvNum = 17, kFastConvDen = 20;  // (1+0.7)/2 (§4.7)
// C = 0.4 segments/s^3. With dt in us and windows in bytes:
//   delta = 0.4 * SMSS * dt^3 / 10^18 = 2 * SMSS * dt^3 / (5 * 10^18)
constexpr std::uint64_t kCubeDen = 5'000'000'000'000'000'000ull;  // 5 * 10^18
// K^3 [us^3] = deficit / (0.4 * SMSS) * 10^18 = deficit * 2.5 * 10^18 / SMSS
constexpr std::uint64_t kKNum = 2'500'000'000'000'000'000ull;  // 2.5 * 10^18

// Largest y with y^3 <= x. The inputs here stay below 2^92, so y < 2^31.
std::uint64_t icbrt(u128 x) noexcept {
  std::uint64_t lo = 0, hi = std::uint64_t{1} << 31;  // invariant: lo^3 <= x < hi^3
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const u128 m = mid;
    if (m * m * m <= x)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace

std::uint64_t Cubic::window_at(std::uint64_t w_max, std::int64_t dt_us,
                               std::uint32_t smss) noexcept {
  const std::int64_t dt = std::clamp(dt_us, -kMaxDtUs, kMaxDtUs);
  const u128 mag = static_cast<std::uint64_t>(dt < 0 ? -dt : dt);
  // mag^3 <= 2^93 and 2*SMSS < 2^17: the product stays below 2^110.
  const u128 delta128 = mag * mag * mag * (2 * u128{smss}) / kCubeDen;
  const std::uint64_t delta =
      delta128 > kCwndMax ? std::uint64_t{kCwndMax} : static_cast<std::uint64_t>(delta128);
  if (dt >= 0) return std::min<std::uint64_t>(w_max + delta, kCwndMax);
  return delta >= w_max ? 0 : w_max - delta;
}

std::uint64_t Cubic::k_us(std::uint64_t deficit, std::uint32_t smss) noexcept {
  // deficit <= kCwndMax = 2^30, so the numerator is below 2^92.
  const u128 x = u128{std::min<std::uint64_t>(deficit, kCwndMax)} * kKNum / smss;
  return icbrt(x);
}

Cubic::Cubic(const CcConfig& cfg) noexcept
    : w_(cfg, kBetaNum, kBetaDen), fast_convergence_(cfg.fast_convergence) {}

void Cubic::start_epoch(TimeNs now) noexcept {
  // §4.2: t counts from the start of this congestion avoidance stage, and the cubic is
  // anchored at the cwnd it starts from.
  epoch_valid_ = true;
  t_epoch_ = now;
  cwnd_epoch_ = w_.cwnd();
  if (after_rto_ || w_max_ <= cwnd_epoch_) {
    // §4.8 (first CA stage after a timeout) and §4.10 (CA reached without a loss to
    // define W_max): K = 0 and W_max = cwnd_epoch, i.e. start straight on the convex
    // side, probing upward from where we are.
    w_max_ = cwnd_epoch_;
    k_us_ = 0;
  } else {
    k_us_ = static_cast<std::int64_t>(k_us(w_max_ - cwnd_epoch_, w_.smss()));
  }
  after_rto_ = false;
  // §4.3 and §4.8: W_est starts at cwnd_epoch.
  w_est_ = cwnd_epoch_;
  w_est_rem_ = 0;
  cwnd_rem_ = 0;
  alpha_one_ = w_est_ >= cwnd_prior_;
}

void Cubic::grow(const AckEvent& ev, std::uint32_t acked) noexcept {
  const std::uint64_t cwnd = w_.cwnd();
  const std::uint64_t smss = w_.smss();

  // §4.3 eq. 4 in bytes: W_est += alpha * (acked / SMSS) / (cwnd / SMSS) segments
  //                            = alpha * acked * SMSS / cwnd bytes.
  // With alpha = a/17 the increment is a * acked * SMSS / (17 * cwnd); the remainder
  // carries to the next ACK so a window of small ACKs adds up to the exact total.
  w_est_rem_ += (alpha_one_ ? kAlphaDen : kAlphaNum) * acked * smss;
  const std::uint64_t est_den = kAlphaDen * cwnd;
  w_est_ = std::min<std::uint64_t>(w_est_ + w_est_rem_ / est_den, kCwndMax);
  w_est_rem_ %= est_den;
  // §4.3: once W_est is back at the window of the last congestion event, grow it at
  // Reno's own rate: from here on Reno would not be any more careful than we are.
  if (!alpha_one_ && w_est_ >= cwnd_prior_) alpha_one_ = true;

  const std::int64_t t_us = static_cast<std::int64_t>((ev.now - t_epoch_) / kNsPerUs);
  const std::uint64_t w_cubic_t = window_at(w_max_, t_us - k_us_, w_.smss());
  if (w_cubic_t < w_est_) {
    // Reno-friendly region (§4.3): cwnd follows W_est. §4.2 summarises the regions as
    // "choose the higher of the two values", so an ACK never shrinks cwnd here.
    if (w_est_ > cwnd) w_.set_cwnd(w_est_);
    cwnd_rem_ = 0;
    return;
  }

  // Concave (cwnd < W_max, §4.4) or convex (cwnd >= W_max, §4.5): the same rule. Aim
  // for where the cubic will be one RTT from now, no lower than cwnd (the increase rate
  // never goes negative) and no higher than 1.5*cwnd (never faster than slow start).
  const std::int64_t rtt_us = static_cast<std::int64_t>(ev.srtt / kNsPerUs);
  std::uint64_t target = window_at(w_max_, t_us + rtt_us - k_us_, w_.smss());
  target = std::clamp(target, cwnd, cwnd + cwnd / 2);
  // (target - cwnd)/cwnd segments per SMSS-sized ACK becomes, with byte counting,
  // (target - cwnd) * acked / cwnd bytes: a whole window of ACKs moves cwnd to target,
  // whether they arrive one per segment or one per two.
  cwnd_rem_ += (target - cwnd) * acked;
  const std::uint64_t inc = cwnd_rem_ / cwnd;
  cwnd_rem_ -= inc * cwnd;
  if (inc != 0) w_.set_cwnd(cwnd + inc);
}

AckAction Cubic::on_ack(const AckEvent& ev) noexcept {
  const RenoWindow::AckResult r = w_.on_ack(ev);
  if (r.ca_bytes != 0) {
    if (!epoch_valid_) start_epoch(ev.now);
    grow(ev, r.ca_bytes);
  } else if (epoch_valid_ && r.action == AckAction::normal && !r.cwnd_limited &&
             ev.acked_bytes != 0 && !w_.in_slow_start()) {
    // §5.8: t must not include application-limited periods. The sender left cwnd
    // unused up to this ACK, so the time since the previous ACK does not count: slide
    // the epoch forward by it, and the cubic resumes where it was.
    t_epoch_ = std::min(t_epoch_ + (ev.now - last_ack_), ev.now);
  }
  last_ack_ = ev.now;
  return r.action;
}

DupAckAction Cubic::on_dup_ack(const DupAckEvent& ev) noexcept {
  const std::uint32_t cwnd_before = w_.cwnd();
  const DupAckAction a = w_.on_dup_ack(ev);
  if (a != DupAckAction::fast_retransmit) return a;
  // RenoWindow already applied §4.6's ssthresh = max(FlightSize * 0.7, 2*SMSS) and
  // entered fast recovery. What is CUBIC's own: remember where the loss happened.
  // §4.7 fast convergence: a loss below the previous W_max means the available share
  // shrank (a new flow arrived?); plateau lower, at 0.85 * cwnd, to release bandwidth.
  if (fast_convergence_ && cwnd_before < w_max_) {
    w_max_ = static_cast<std::uint32_t>(std::uint64_t{cwnd_before} * kFastConvNum / kFastConvDen);
  } else {
    w_max_ = cwnd_before;
  }
  cwnd_prior_ = cwnd_before;
  // The next ACK in congestion avoidance (after recovery) starts a new epoch.
  epoch_valid_ = false;
  after_rto_ = false;
  return a;
}

void Cubic::on_rto(const RtoEvent& ev) noexcept {
  const std::uint32_t cwnd_before = w_.cwnd();
  // §4.8: cwnd to the loss window as Reno does, ssthresh with beta_cubic (RenoWindow's
  // beta is 7/10 for us). cwnd_prior follows ssthresh: only the first timeout sets it.
  if (w_.on_rto(ev)) cwnd_prior_ = cwnd_before;
  epoch_valid_ = false;
  after_rto_ = true;
}

bool Cubic::on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept {
  const bool restarted = w_.on_idle_restart(now, last_send, rto);
  if (restarted) {
    // cwnd fell back to the restart window; the next CA stage is a new epoch.
    epoch_valid_ = false;
  } else if (epoch_valid_ && now > last_send) {
    // §5.8: an idle period shorter than the RTO keeps cwnd but must not count towards t.
    t_epoch_ = std::min(t_epoch_ + (now - last_send), now);
  }
  last_ack_ = now;  // the gap is accounted for; do not discount it again
  return restarted;
}

}  // namespace ustack::tcp
