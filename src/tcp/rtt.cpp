// RFC 6298 retransmission timeout estimator; see rtt.hpp for the sections to read.
#include "tcp/rtt.hpp"

#include <algorithm>

namespace ustack::tcp {

namespace {

// RFC 6298 §2: K = 4.
constexpr TimeNs kRttvarMultiplier = 4;

// Makes a config usable whatever the caller set: max >= min, initial within them.
RttConfig sanitize(RttConfig c) noexcept {
  if (c.max_rto < c.min_rto) c.max_rto = c.min_rto;
  c.initial_rto = std::clamp(c.initial_rto, c.min_rto, c.max_rto);
  return c;
}

}  // namespace

RttEstimator::RttEstimator(const RttConfig& cfg) noexcept
    : cfg_(sanitize(cfg)), base_rto_(cfg_.initial_rto), rto_(cfg_.initial_rto) {}

TimeNs RttEstimator::clamp_rto(TimeNs rto) const noexcept {
  return std::clamp(rto, cfg_.min_rto, cfg_.max_rto);
}

void RttEstimator::on_rtt_sample(TimeNs rtt) noexcept {
  const TimeNs r = std::min(rtt, kMaxSample);
  if (!has_sample_) {
    // (2.2) SRTT <- R, RTTVAR <- R/2.
    srtt_ = r;
    rttvar_ = r / 2;
    has_sample_ = true;
  } else {
    // (2.3) RTTVAR <- (1 - 1/4) * RTTVAR + 1/4 * |SRTT - R'|, using the SRTT from
    // before this sample, then SRTT <- (1 - 1/8) * SRTT + 1/8 * R'. Each is one
    // multiply-add and one division, so the only rounding is the final truncation.
    const TimeNs err = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = (3 * rttvar_ + err) / 4;
    srtt_ = (7 * srtt_ + r) / 8;
  }
  // RTO <- SRTT + max(G, K*RTTVAR), then the (2.4)/(2.5) bounds. G keeps the RTO above
  // SRTT when RTTVAR decays towards zero on a perfectly steady path.
  base_rto_ = clamp_rto(srtt_ + std::max(cfg_.granularity, kRttvarMultiplier * rttvar_));
  rto_ = base_rto_;
  backoffs_ = 0;
}

void RttEstimator::backoff() noexcept {
  // (2.5)'s maximum is also the bound on the doubling. Compare before multiplying, so
  // no number of backoffs can overflow.
  rto_ = rto_ >= cfg_.max_rto / 2 ? cfg_.max_rto : 2 * rto_;
  if (backoffs_ != UINT32_MAX) ++backoffs_;
}

void RttEstimator::reset_backoff() noexcept {
  rto_ = base_rto_;
  backoffs_ = 0;
}

void RttEstimator::on_handshake_done_after_syn_timeout() noexcept {
  base_rto_ = std::max(base_rto_, std::min(kSynLossRto, cfg_.max_rto));
  rto_ = base_rto_;
  backoffs_ = 0;
}

}  // namespace ustack::tcp
