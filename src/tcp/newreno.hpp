// Reno congestion control with the NewReno fast recovery, and the window machinery that
// CUBIC shares with it.
//
// Read first:
//   RFC 5681 §2      definitions: SMSS, FlightSize, duplicate ACK
//   RFC 5681 §3.1    slow start, congestion avoidance, ssthresh = max(FlightSize/2, 2*SMSS)
//                    (equation 4), the loss window after an RTO
//   RFC 5681 §3.2    fast retransmit / fast recovery (steps 1-6)
//   RFC 5681 §4.1    restart window after an idle period longer than the RTO
//   RFC 6582 §3.2    NewReno: the `recover` point (steps 1-2), partial and full ACKs
//                    (step 3), RTO (step 4); its implementation notes on the
//                    "Impatient" retransmission timer variant
//   RFC 3465 §2      Appropriate Byte Counting; L = 2*SMSS in slow start, 1*SMSS in the
//                    slow start that follows an RTO (§2.3)
//   RFC 6928 §2      initial window min(10*MSS, max(2*MSS, 14600))
//   RFC 3042         limited transmit (the caller's; we only say when it applies)
//
// Sans-IO: every entry point takes `now`; nothing reads a clock or allocates. The
// connection decides what a duplicate ACK is (RFC 5681 §2: no data, no window change,
// outstanding data, ACK == SND.UNA) and keeps the sequence space; it tells this module
// what happened and gets back what to do (retransmit, restart the timer).
//
// Units: every window is in bytes (uint32_t). cwnd never exceeds kCwndMax, the largest
// window a peer can advertise (65535 << 14 < 2^30), so cwnd + a few SMSS never wraps.
#pragma once

#include <cstdint>

#include "core/seq.hpp"
#include "core/time.hpp"

namespace ustack::tcp {

inline constexpr std::uint32_t kCwndMax = 1u << 30;

// RFC 5681 §3.2: the third duplicate ACK triggers fast retransmit.
inline constexpr std::uint32_t kDupAckThreshold = 3;

// RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)) bytes.
constexpr std::uint32_t rfc6928_initial_window(std::uint32_t smss) noexcept {
  const std::uint64_t ten = 10ull * smss;
  const std::uint64_t two = 2ull * smss;
  const std::uint64_t floor = two > 14600 ? two : 14600;
  return static_cast<std::uint32_t>(ten < floor ? ten : floor);
}

struct CcConfig {
  std::uint32_t smss = 1460;
  std::uint32_t initial_window = 0;  // bytes; 0 selects rfc6928_initial_window(smss)
  bool fast_convergence = true;      // CUBIC only (RFC 9438 §4.7)
};

// A new cumulative ACK: SEG.ACK advanced SND.UNA.
struct AckEvent {
  TimeNs now = 0;
  SeqNum ack;                     // SEG.ACK
  std::uint32_t acked_bytes = 0;  // bytes newly acknowledged (new SND.UNA - old SND.UNA)
  std::uint32_t flight_size = 0;  // SND.MAX - SND.UNA after this ACK
  // RFC 6298 SRTT after this ACK's sample (if any) went to the RttEstimator; 0 before
  // the first sample. CUBIC needs the smoothed RTT (RFC 9438 §4.1.2), not the raw one.
  TimeNs srtt = 0;
};

// A duplicate ACK by RFC 5681 §2's definition (the connection checks that).
struct DupAckEvent {
  TimeNs now = 0;
  SeqNum ack;                     // SEG.ACK (== SND.UNA)
  SeqNum snd_max;                 // one past the highest sequence number sent so far
  std::uint32_t flight_size = 0;  // SND.MAX - SND.UNA
};

// The retransmission timer expired (call before retransmitting).
struct RtoEvent {
  TimeNs now = 0;
  SeqNum snd_max;                 // one past the highest sequence number sent so far
  std::uint32_t flight_size = 0;  // SND.MAX - SND.UNA
};

// What the connection does after a new ACK.
enum class AckAction : std::uint8_t {
  // Ordinary ACK outside fast recovery: restart the retransmission timer if data is
  // still outstanding (RFC 6298 (5.3)), send what cwnd now allows.
  normal,
  // RFC 6582 §3.2 step 3 partial ACK: retransmit the first unacknowledged segment now.
  // Only the first one of a recovery restarts the retransmission timer (step 3; the
  // "Impatient" variant), so a recovery with many losses falls back on the RTO instead
  // of repairing one segment per RTT.
  first_partial_ack,
  partial_ack,
  // RFC 6582 §3.2 step 3 full ACK: fast recovery is over, cwnd deflated.
  recovery_done,
};

// What the connection does after a duplicate ACK.
enum class DupAckAction : std::uint8_t {
  // First or second duplicate: RFC 3042 limited transmit may send one new segment if the
  // receive window allows and FlightSize <= cwnd + 2*SMSS. cwnd is unchanged.
  limited_transmit,
  // Third duplicate: retransmit the first unacknowledged segment now. ssthresh and cwnd
  // were reduced and fast recovery entered (recover = snd_max).
  fast_retransmit,
  // Third (or later) duplicate that does not cover more than `recover` (RFC 6582 §3.2
  // step 2): the loss was already responded to; no retransmit, no reduction.
  suppressed,
  // Further duplicate during fast recovery: cwnd was inflated by SMSS (RFC 5681 §3.2
  // step 4); send new data if cwnd allows.
  inflated,
};

// cwnd, ssthresh and the loss-recovery state machine common to the Reno family: slow
// start with byte counting, NewReno fast retransmit/recovery, the RTO loss window and
// the idle restart. Algorithms own one and add their congestion-avoidance growth and
// their multiplicative-decrease factor beta (ssthresh = max(FlightSize * beta, 2*SMSS)):
// 1/2 for Reno (RFC 5681 eq. 4), 7/10 for CUBIC (RFC 9438 §4.6).
class RenoWindow {
 public:
  struct AckResult {
    AckAction action = AckAction::normal;
    // Bytes this ACK credits to congestion avoidance growth: acked_bytes when the
    // sender is in congestion avoidance and was cwnd-limited, otherwise 0.
    std::uint32_t ca_bytes = 0;
    // Outside recovery, whether the sender had filled cwnd when this ACK arrived
    // (FlightSize before the ACK + SMSS > cwnd). When it had not, the window has not
    // been tested and must not grow (RFC 9438 §5.8; RFC 7661 discusses why).
    bool cwnd_limited = false;
  };

  RenoWindow(const CcConfig& cfg, std::uint32_t beta_num, std::uint32_t beta_den) noexcept;

  AckResult on_ack(const AckEvent& ev) noexcept;
  DupAckAction on_dup_ack(const DupAckEvent& ev) noexcept;
  // Returns true when this timeout set ssthresh, i.e. it is the first timeout since new
  // data was last acknowledged. A repeated timeout of the same segment keeps ssthresh
  // (RFC 5681 §3.1: FlightSize is no longer meaningful then) but still sets cwnd = LW.
  bool on_rto(const RtoEvent& ev) noexcept;
  // Call before sending when nothing is in flight. If nothing was sent for longer than
  // `rto`, cwnd = min(IW, cwnd) (RFC 5681 §4.1) and this returns true.
  bool on_idle_restart(TimeNs now, TimeNs last_send, TimeNs rto) noexcept;

  // For the algorithm's congestion-avoidance growth; clamped to [SMSS, kCwndMax].
  void set_cwnd(std::uint64_t bytes) noexcept;

  std::uint32_t cwnd() const noexcept { return cwnd_; }
  std::uint32_t ssthresh() const noexcept { return ssthresh_; }
  std::uint32_t smss() const noexcept { return smss_; }
  std::uint32_t initial_window() const noexcept { return iw_; }
  bool in_slow_start() const noexcept { return cwnd_ < ssthresh_; }
  bool in_recovery() const noexcept { return in_recovery_; }
  std::uint32_t dup_acks() const noexcept { return dup_acks_; }
  SeqNum recover() const noexcept { return recover_; }  // valid once a loss was seen

 private:
  void observe(TimeNs now) noexcept;
  std::uint32_t reduced_ssthresh(std::uint32_t flight_size) const noexcept;

  std::uint32_t smss_;
  std::uint32_t iw_;
  std::uint32_t beta_num_;
  std::uint32_t beta_den_;
  std::uint32_t cwnd_;
  // RFC 5681 §3.1: "arbitrarily high" until the first loss.
  std::uint32_t ssthresh_ = kCwndMax;
  SeqNum recover_;
  std::uint32_t dup_acks_ = 0;
  TimeNs last_now_ = 0;
  bool have_recover_ = false;  // RFC 6582 initialises recover to ISS: no loss yet
  bool in_recovery_ = false;
  bool partial_seen_ = false;          // a partial ACK already arrived in this recovery
  bool rto_unacked_ = false;           // an RTO fired and no new data was acked since
  bool slow_start_after_rto_ = false;  // RFC 3465 §2.3: L = 1*SMSS
};

// Reno congestion avoidance (RFC 5681 §3.1 with RFC 3465 byte counting) on NewReno
// fast recovery (RFC 6582).
class NewReno {
 public:
  explicit NewReno(const CcConfig& cfg = {}) noexcept;

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

 private:
  RenoWindow w_;
  // RFC 3465 §2.1 bytes_acked: bytes acknowledged in congestion avoidance since cwnd
  // last grew by one SMSS.
  std::uint32_t bytes_acked_ = 0;
};

}  // namespace ustack::tcp
