// Reno window machinery and NewReno; see newreno.hpp for the RFC sections to read.
#include "tcp/newreno.hpp"

#include <algorithm>
#include <cassert>

namespace ustack::tcp {

namespace {

std::uint32_t sane_smss(std::uint32_t smss) noexcept {
  // Zero would divide by zero in the CA arithmetic; above 64 KiB is no TCP segment.
  return std::clamp<std::uint32_t>(smss, 1, 65535);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// RenoWindow

RenoWindow::RenoWindow(const CcConfig& cfg, std::uint32_t beta_num, std::uint32_t beta_den) noexcept
    : smss_(sane_smss(cfg.smss)),
      iw_(cfg.initial_window != 0 ? std::clamp(cfg.initial_window, smss_, kCwndMax)
                                  : rfc6928_initial_window(smss_)),
      beta_num_(beta_num),
      beta_den_(beta_den != 0 ? beta_den : 1),
      cwnd_(iw_) {}

void RenoWindow::observe(TimeNs now) noexcept {
  assert(now >= last_now_ && "time went backwards");
  last_now_ = now;
}

std::uint32_t RenoWindow::reduced_ssthresh(std::uint32_t flight_size) const noexcept {
  // RFC 5681 eq. 4 with the algorithm's beta: max(FlightSize * beta, 2*SMSS). FlightSize,
  // not cwnd: a sender that was not using its whole window must not keep a window
  // derived from capacity it never tested.
  const std::uint64_t reduced = std::uint64_t{flight_size} * beta_num_ / beta_den_;
  const std::uint64_t floor = 2ull * smss_;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(std::max(reduced, floor), kCwndMax));
}

void RenoWindow::set_cwnd(std::uint64_t bytes) noexcept {
  cwnd_ = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(bytes, smss_, kCwndMax));
}

RenoWindow::AckResult RenoWindow::on_ack(const AckEvent& ev) noexcept {
  observe(ev.now);
  AckResult r;
  if (ev.acked_bytes == 0) return r;  // not a new ACK; nothing to count

  // New data was acknowledged: the next timeout is a new loss episode, and the
  // duplicate count starts over (RFC 5681 §3.2 counts consecutive duplicates).
  rto_unacked_ = false;
  dup_acks_ = 0;

  if (in_recovery_) {
    if (ev.ack >= recover_) {
      // RFC 6582 §3.2 step 3, full acknowledgment. Of the two permitted deflations we
      // take (1), cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS): when the recovery
      // repaired several holes, FlightSize can be far below ssthresh, and option (2)
      // (cwnd = ssthresh) would then release a line-rate burst of ssthresh - FlightSize
      // bytes on this single ACK. (1) needs no separate burst limiter, and slow start
      // climbs back to ssthresh within a few RTTs.
      const std::uint64_t deflated = std::uint64_t{std::max(ev.flight_size, smss_)} + smss_;
      set_cwnd(std::min<std::uint64_t>(ssthresh_, deflated));
      in_recovery_ = false;
      r.action = AckAction::recovery_done;
      return r;
    }
    // RFC 6582 §3.2 step 3, partial acknowledgment: another segment of the window was
    // lost. Deflate by what left the network, add back one SMSS if at least one SMSS
    // was acknowledged (the retransmission the caller now sends replaces it), stay in
    // recovery. cwnd never drops below one SMSS, so the retransmission can go out.
    std::uint64_t c = cwnd_ > ev.acked_bytes ? cwnd_ - ev.acked_bytes : 0;
    if (ev.acked_bytes >= smss_) c += smss_;
    set_cwnd(c);
    r.action = partial_seen_ ? AckAction::partial_ack : AckAction::first_partial_ack;
    partial_seen_ = true;
    return r;
  }

  // Growth only when the window was actually used: cwnd-limited if the data outstanding
  // before this ACK left no room for one more full segment.
  const std::uint64_t flight_before = std::uint64_t{ev.flight_size} + ev.acked_bytes;
  r.cwnd_limited = flight_before + smss_ > cwnd_;
  if (!r.cwnd_limited) return r;

  if (cwnd_ < ssthresh_) {
    // Slow start with RFC 3465 byte counting: cwnd += min(N, L). Counting bytes, not
    // ACKs, defeats ACK division (a receiver splitting one ACK into many to inflate our
    // window). L = 2*SMSS lets a delayed ACK (covering two segments) grow cwnd as two
    // ACKs would, and bounds what one stretch ACK can add. After an RTO, L = 1*SMSS
    // (RFC 3465 §2.3): the first ACKs can cover segments the receiver held in its
    // out-of-order queue, and counting them all would turn one ACK into a burst.
    const std::uint32_t limit = slow_start_after_rto_ ? smss_ : 2 * smss_;
    const std::uint32_t inc = std::min(ev.acked_bytes, limit);
    // Stop at ssthresh rather than overshoot it by up to L: ssthresh after a loss is the
    // estimate of what the path holds, and CUBIC's epoch starts from this cwnd.
    set_cwnd(std::min<std::uint64_t>(std::uint64_t{cwnd_} + inc, ssthresh_));
    if (cwnd_ >= ssthresh_) slow_start_after_rto_ = false;
    return r;
  }

  r.ca_bytes = ev.acked_bytes;
  return r;
}

DupAckAction RenoWindow::on_dup_ack(const DupAckEvent& ev) noexcept {
  observe(ev.now);
  if (in_recovery_) {
    // RFC 5681 §3.2 step 4: each further duplicate means another segment left the
    // network; inflate so a new one may take its place.
    set_cwnd(std::uint64_t{cwnd_} + smss_);
    return DupAckAction::inflated;
  }
  if (dup_acks_ != UINT32_MAX) ++dup_acks_;
  if (dup_acks_ < kDupAckThreshold) return DupAckAction::limited_transmit;

  // RFC 6582 §3.2 step 2: enter fast retransmit only if this ACK covers more than
  // `recover`. Otherwise the duplicates may be echoes of our own retransmissions of data
  // from a window we already reduced for (after an RTO or a recovery), and reducing
  // again would punish one loss twice.
  if (have_recover_ && !(ev.ack > recover_)) return DupAckAction::suppressed;

  // RFC 5681 §3.2 steps 2-3 (RFC 6582 step 2 sets recover first).
  recover_ = ev.snd_max;
  have_recover_ = true;
  ssthresh_ = reduced_ssthresh(ev.flight_size);
  set_cwnd(std::uint64_t{ssthresh_} + kDupAckThreshold * smss_);
  in_recovery_ = true;
  partial_seen_ = false;
  slow_start_after_rto_ = false;
  return DupAckAction::fast_retransmit;
}

bool RenoWindow::on_rto(const RtoEvent& ev) noexcept {
  observe(ev.now);
  const bool first = !rto_unacked_;
  if (first) {
    // RFC 5681 §3.1 eq. 4, only on the first timeout of a segment: after that the
    // FlightSize includes the data we already gave up on.
    ssthresh_ = reduced_ssthresh(ev.flight_size);
  }
  // RFC 5681 §3.1: cwnd = loss window = 1 full-sized segment, whatever IW was.
  cwnd_ = smss_;
  // RFC 6582 §3.2 step 4: recover = highest sequence sent; leave fast recovery.
  recover_ = ev.snd_max;
  have_recover_ = true;
  in_recovery_ = false;
  dup_acks_ = 0;
  rto_unacked_ = true;
  slow_start_after_rto_ = true;
  return first;
}

bool RenoWindow::on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept {
  observe(now);
  const TimeNs idle = now > last_send ? now - last_send : 0;
  if (idle <= rto) return false;
  // RFC 5681 §4.1: restart from RW = min(IW, cwnd). After an idle period the ACK clock
  // is gone, and a full old window sent at once would hit queues that may since have
  // filled with other traffic. ssthresh keeps the old estimate, so slow start climbs
  // back to it within a few RTTs.
  cwnd_ = std::min(cwnd_, iw_);
  return true;
}

// ---------------------------------------------------------------------------------------
// NewReno

NewReno::NewReno(const CcConfig& cfg) noexcept : w_(cfg, 1, 2) {}

AckAction NewReno::on_ack(const AckEvent& ev) noexcept {
  const RenoWindow::AckResult r = w_.on_ack(ev);
  if (r.ca_bytes == 0) return r.action;
  // RFC 3465 §2.1 / RFC 5681 §3.1 congestion avoidance by byte counting: one SMSS per
  // cwnd's worth of acknowledged bytes, i.e. one SMSS per RTT whether the receiver
  // ACKs every segment, every other one, or stretches its ACKs. Equation 3's
  // SMSS*SMSS/cwnd per ACK would instead grow slower under delayed ACKs.
  bytes_acked_ += r.ca_bytes;
  if (bytes_acked_ >= w_.cwnd()) {
    bytes_acked_ -= w_.cwnd();
    w_.set_cwnd(std::uint64_t{w_.cwnd()} + w_.smss());
    // One stretch ACK covering several windows still earns one SMSS: never carry more
    // than a window of credit.
    bytes_acked_ = std::min(bytes_acked_, w_.cwnd() - 1);
  }
  return r.action;
}

DupAckAction NewReno::on_dup_ack(const DupAckEvent& ev) noexcept {
  const DupAckAction a = w_.on_dup_ack(ev);
  // The window the credit was counted against is gone.
  if (a == DupAckAction::fast_retransmit) bytes_acked_ = 0;
  return a;
}

void NewReno::on_rto(const RtoEvent& ev) noexcept {
  w_.on_rto(ev);
  bytes_acked_ = 0;
}

bool NewReno::on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept {
  const bool restarted = w_.on_idle_restart(now, last_send, rto);
  if (restarted) bytes_acked_ = 0;
  return restarted;
}

}  // namespace ustack::tcp
