// The sender's SACK scoreboard and the loss recovery of RFC 6675 ("A
// Conservative Loss Recovery Algorithm Based on SACK for TCP").
//
// Read first:
//   RFC 6675 §2    definitions: HighACK, HighData, HighRxt, RescueRxt, Pipe,
//                  DupAcks, and the SACK-based "duplicate acknowledgment"
//   RFC 6675 §3    keeping the scoreboard
//   RFC 6675 §4    Update(), IsLost(), SetPipe(), NextSeg() rules (1)-(4)
//   RFC 6675 §5    entering loss recovery (steps 1-4), per-ACK processing (A)-(C)
//   RFC 6675 §5.1  retransmission timeouts
//   RFC 2018 §8    the receiver may renege: SACKed data is only advisory
//   RFC 2883 §4    how a sender recognises a D-SACK block
//
// Sequence conventions. The RFC names octets inclusively ("HighACK is the
// highest octet cumulatively ACKed", "HighRxt is the highest octet
// retransmitted"). Here every edge is the usual half-open TCP form:
//   snd_una()        = HighACK + 1   first unacknowledged octet (SND.UNA)
//   snd_nxt()        = HighData + 1  one past the highest octet sent
//   high_rxt()       = HighRxt + 1   one past the highest octet retransmitted
//   rescue_rxt()     = RescueRxt + 1
//   recovery_point() = RecoveryPoint + 1 = snd_nxt() when recovery began
// so the RFC's "HighACK > RescueRxt" is `snd_una() > rescue_rxt()` and "a
// cumulative ACK for a sequence number greater than RecoveryPoint" is
// `ack >= recovery_point()`.
//
// Division of labour. This module keeps sequence-space state only; cwnd and
// ssthresh belong to the congestion controller (newreno.hpp / cubic.hpp).
// The connection drives it:
//   - on_send_new(len) for every new segment sent, on_transmit() for every
//     segment sent because next_seg() returned it;
//   - on_ack() for every ACK. If the result says `enter_recovery`, call the
//     controller's loss response (ssthresh = cwnd = FlightSize/2 in §5 step
//     4.2, using RecoveryStart::flight_size) and enter_recovery(), then
//     retransmit RecoveryStart::retransmit;
//   - while cwnd - pipe() >= SMSS, send next_seg() (§5 step C).
//
// Storage: SACKed ranges are a sorted array of disjoint, non-adjacent blocks
// with a capacity fixed at construction (one allocation, in the
// constructor). When an ACK brings a new disjoint range and the array is
// full, the highest range is forgotten (the new one if it is the highest),
// and overflow_drops() counts it. Forgetting SACK information is always
// safe: the octets look outstanding, so pipe is larger, IsLost() says "lost"
// less often, and at worst SACKed data is retransmitted. Merging two ranges
// instead would claim octets the receiver never reported, which is not safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/seq.hpp"
#include "tcp/sack_block.hpp"

namespace ustack::tcp {

// What next_seg() tells the sender to transmit.
struct TxSegment {
  enum class Kind : std::uint8_t {
    none,        // nothing may be sent now
    retransmit,  // NextSeg rule (1) or (3): resend [seq, seq + len)
    new_data,    // NextSeg rule (2): send len octets of new data at snd_nxt()
    rescue,      // NextSeg rule (4): rescue retransmission of [seq, seq + len)
  };
  Kind kind = Kind::none;
  SeqNum seq;
  std::uint32_t len = 0;
  std::uint8_t rule = 0;  // the RFC 6675 §4 NextSeg rule that chose it (1-4); 0 for none
  bool operator==(const TxSegment&) const = default;
};

class SackScoreboard {
 public:
  // RFC 6675 §2: DupThresh, the number of duplicate ACKs (or SACKed
  // segments, for IsLost()) that indicates loss.
  static constexpr std::uint32_t kDupThresh = 3;
  static constexpr std::size_t kDefaultCapacity = 32;

  struct AckResult {
    bool ack_invalid = false;       // SEG.ACK > snd_nxt(): acks unsent data; nothing was changed
    bool cumulative = false;        // SND.UNA advanced
    std::uint32_t acked_bytes = 0;  // by how much
    std::uint32_t newly_sacked = 0; // octets SACKed for the first time by this ACK
    bool dup_ack = false;           // a duplicate ACK by RFC 6675 §2 (newly_sacked > 0)
    bool dsack = false;             // the first block was a D-SACK (RFC 2883 §4); not recorded
    std::uint32_t ignored_blocks = 0;  // malformed or outside [snd_una, snd_nxt]
    bool overflow = false;          // a range was forgotten because the array was full
    // §5 steps (1)/(2): DupAcks >= DupThresh or IsLost(HighACK + 1) on a
    // duplicate ACK outside recovery (and not held off by §5.1). The caller
    // should call enter_recovery().
    bool enter_recovery = false;
    // §5 (A): this ACK covered RecoveryPoint; loss recovery is over.
    bool recovery_done = false;
  };

  // What §5 step (4) leaves to the caller.
  struct RecoveryStart {
    SeqNum recovery_point;         // = snd_nxt() (RecoveryPoint + 1)
    TxSegment retransmit;          // step 4.3: the segment at HighACK + 1, already
                                   // accounted in high_rxt() and pipe(): do not report
                                   // it again with on_transmit()
    std::uint32_t flight_size = 0; // snd_nxt() - snd_una(), for ssthresh (step 4.2)
    std::uint32_t pipe = 0;        // step 4.4 SetPipe()
  };

  // `smss` > 0; `snd_una` is the first sequence number to be sent (ISS + 1
  // after the handshake): nothing is outstanding yet. `capacity` >= 1.
  SackScoreboard(std::uint32_t smss, SeqNum snd_una, std::size_t capacity = kDefaultCapacity);
  SackScoreboard(const SackScoreboard&) = delete;
  SackScoreboard& operator=(const SackScoreboard&) = delete;
  SackScoreboard(SackScoreboard&&) noexcept = default;
  SackScoreboard& operator=(SackScoreboard&&) noexcept = default;
  ~SackScoreboard() = default;

  // Forgets everything and starts again at `snd_una` with `smss`, keeping the
  // range array allocated at construction (pooled connections reuse it).
  void reset(std::uint32_t smss, SeqNum snd_una);
  // `len` new octets were sent at snd_nxt() (§5 (C.3), (C.4)).
  void on_send_new(std::uint32_t len);

  // Processes one ACK: Update() (§4) with its SACK blocks, DupAcks (§5), and
  // in recovery (A)/(B). SetPipe() is rerun at the end, so pipe() is current.
  // Blocks are validated: left < right, inside [snd_una, snd_nxt]; the first
  // block is a D-SACK (flagged, not recorded) when it lies at or below the
  // cumulative ACK or inside the second block (RFC 2883 §4).
  AckResult on_ack(SeqNum ack, std::span<const SackBlock> blocks);

  // §4 IsLost(SeqNum): DupThresh discontiguous SACKed ranges, or more than
  // (DupThresh - 1) * SMSS SACKed octets, above `seq`.
  bool is_lost(SeqNum seq) const;

  // §4 SetPipe(): recomputes and returns pipe.
  std::uint32_t update_pipe();
  // The octets currently estimated in the network: the last SetPipe() plus
  // whatever was sent since (§5 (C.4)).
  std::uint32_t pipe() const { return pipe_; }

  // §4 NextSeg(). `sendable_new` is how many octets of new data rule (2) may
  // send at snd_nxt(): the unsent data the application has queued, limited by
  // the peer's receive window. Rule (4) applies only during recovery. Does not
  // change state: report what is sent with on_transmit().
  TxSegment next_seg(std::uint32_t sendable_new) const;

  // A segment returned by next_seg() was sent: (C.2)-(C.4), and for rule (4)
  // RescueRxt = RecoveryPoint with HighRxt left alone.
  void on_transmit(const TxSegment& seg);
  // [seq, seq + len) was retransmitted (rules 1 and 3, or a caller's own
  // choice): HighRxt advances over the part below snd_nxt(); pipe += len.
  // With `rescue`, rule (4) bookkeeping instead.
  void on_retransmit(SeqNum seq, std::uint32_t len, bool rescue = false);

  // §5 step (4): RecoveryPoint = HighData; the first segment at HighACK + 1
  // is to be retransmitted now and HighRxt = RescueRxt = its end; SetPipe().
  // Called when on_ack() said enter_recovery (callers may also force it).
  RecoveryStart enter_recovery();
  // §5 (A). on_ack() calls it when ack >= recovery_point(); public so that a
  // caller can abandon recovery. The scoreboard above SND.UNA is kept.
  void exit_recovery();

  // §5.1. Recovery, if any, is terminated; RecoveryPoint = HighData and no new
  // recovery starts until SND.UNA reaches it. HighRxt = SND.UNA, RescueRxt
  // undefined, DupAcks = 0.
  // Choice: the SACK information is DISCARDED. RFC 2018 §8 says a sender
  // should clear its SACKed bits after a timeout because the receiver may
  // have reneged; then everything outstanding counts in pipe and is resent in
  // order from SND.UNA, which is what the RTO's go-back-N expects. Later
  // ACKs rebuild the scoreboard through Update() as usual.
  void on_rto();

  // State (half-open conventions above).
  SeqNum snd_una() const { return snd_una_; }
  SeqNum snd_nxt() const { return snd_nxt_; }
  SeqNum high_rxt() const { return high_rxt_; }
  bool rescue_rxt_valid() const { return rescue_valid_; }
  SeqNum rescue_rxt() const { return rescue_rxt_; }
  SeqNum recovery_point() const { return recovery_point_; }
  bool in_recovery() const { return in_recovery_; }
  // §5.1: true after an RTO until SND.UNA reaches recovery_point().
  bool recovery_held() const { return rto_hold_; }
  std::uint32_t dup_acks() const { return dup_acks_; }
  std::uint32_t smss() const { return smss_; }

  bool is_sacked(SeqNum seq) const;
  std::uint32_t sacked_bytes() const;
  std::span<const SackBlock> ranges() const { return {ranges_.get(), n_}; }
  std::size_t capacity() const { return cap_; }
  std::uint64_t overflow_drops() const { return overflow_drops_; }

 private:
  // Records [l, r) (already validated); returns the octets newly SACKed.
  std::uint32_t insert(SeqNum l, SeqNum r, bool& overflow);
  void trim_below_una();
  // The first un-SACKed octet at or above `from` (< snd_nxt_), and the end of
  // its hole; false when there is none below the highest SACKed octet.
  bool first_hole_below_highest_sack(SeqNum from, SeqNum& start, SeqNum& end) const;
  SeqNum rxt_floor() const { return high_rxt_ > snd_una_ ? high_rxt_ : snd_una_; }

  std::uint32_t smss_;
  std::unique_ptr<SackBlock[]> ranges_;
  std::size_t cap_;
  std::size_t n_ = 0;
  std::uint64_t overflow_drops_ = 0;

  SeqNum snd_una_;
  SeqNum snd_nxt_;
  SeqNum high_rxt_;
  SeqNum rescue_rxt_;
  SeqNum recovery_point_;
  bool rescue_valid_ = false;
  bool in_recovery_ = false;
  bool rto_hold_ = false;
  std::uint32_t dup_acks_ = 0;
  std::uint32_t pipe_ = 0;
};

}  // namespace ustack::tcp
