#include "tcp/sack_scoreboard.hpp"

#include <algorithm>

namespace ustack::tcp {

namespace {

SeqNum seq_max(SeqNum a, SeqNum b) { return a < b ? b : a; }
SeqNum seq_min(SeqNum a, SeqNum b) { return b < a ? b : a; }
std::uint32_t dist(SeqNum from, SeqNum to) { return static_cast<std::uint32_t>(to - from); }

}  // namespace

SackScoreboard::SackScoreboard(std::uint32_t smss, SeqNum snd_una, std::size_t capacity)
    : smss_(smss == 0 ? 1 : smss),
      ranges_(std::make_unique<SackBlock[]>(capacity == 0 ? 1 : capacity)),
      cap_(capacity == 0 ? 1 : capacity),
      snd_una_(snd_una),
      snd_nxt_(snd_una),
      high_rxt_(snd_una),
      rescue_rxt_(snd_una),
      recovery_point_(snd_una) {}

void SackScoreboard::reset(std::uint32_t smss, SeqNum snd_una) {
  smss_ = smss == 0 ? 1 : smss;
  n_ = 0;
  snd_una_ = snd_nxt_ = high_rxt_ = rescue_rxt_ = recovery_point_ = snd_una;
  rescue_valid_ = in_recovery_ = rto_hold_ = false;
  dup_acks_ = 0;
  pipe_ = 0;
}

void SackScoreboard::on_send_new(std::uint32_t len) {
  snd_nxt_ += len;
  pipe_ += len;
}

bool SackScoreboard::is_sacked(SeqNum seq) const {
  for (std::size_t k = 0; k < n_; ++k) {
    if (ranges_[k].left <= seq && seq < ranges_[k].right) return true;
  }
  return false;
}

std::uint32_t SackScoreboard::sacked_bytes() const {
  std::uint32_t total = 0;
  for (std::size_t k = 0; k < n_; ++k) total += dist(ranges_[k].left, ranges_[k].right);
  return total;
}

std::uint32_t SackScoreboard::insert(SeqNum l, SeqNum r, bool& overflow) {
  // First range that overlaps or touches [l, r) or lies above it.
  std::size_t i = 0;
  while (i < n_ && ranges_[i].right < l) ++i;
  // Ranges i .. j-1 overlap or touch [l, r): they merge into one.
  std::size_t j = i;
  std::uint32_t covered = 0;
  SeqNum nl = l;
  SeqNum nr = r;
  while (j < n_ && ranges_[j].left <= r) {
    const SeqNum ol = seq_max(l, ranges_[j].left);
    const SeqNum orr = seq_min(r, ranges_[j].right);
    if (ol < orr) covered += dist(ol, orr);
    nl = seq_min(nl, ranges_[j].left);
    nr = seq_max(nr, ranges_[j].right);
    ++j;
  }
  const std::uint32_t newly = dist(l, r) - covered;
  if (j > i) {
    ranges_[i] = SackBlock{nl, nr};
    const std::size_t gone = j - i - 1;
    if (gone) {
      std::copy(ranges_.get() + j, ranges_.get() + n_, ranges_.get() + i + 1);
      n_ -= gone;
    }
    return newly;
  }
  // A new disjoint range at index i.
  if (n_ == cap_) {
    overflow = true;
    ++overflow_drops_;
    if (i == n_) return 0;  // it is the highest: forget it
    --n_;                   // forget the highest one to make room
  }
  std::copy_backward(ranges_.get() + i, ranges_.get() + n_, ranges_.get() + n_ + 1);
  ranges_[i] = SackBlock{l, r};
  ++n_;
  return newly;
}

void SackScoreboard::trim_below_una() {
  std::size_t k = 0;
  while (k < n_ && ranges_[k].right <= snd_una_) ++k;
  if (k) {
    std::copy(ranges_.get() + k, ranges_.get() + n_, ranges_.get());
    n_ -= k;
  }
  if (n_ && ranges_[0].left < snd_una_) ranges_[0].left = snd_una_;
}

bool SackScoreboard::is_lost(SeqNum seq) const {
  const SeqNum above = seq + 1;  // octets with sequence numbers greater than seq
  std::uint32_t count = 0;
  std::uint64_t bytes = 0;
  const std::uint64_t byte_limit = static_cast<std::uint64_t>(kDupThresh - 1) * smss_;
  for (std::size_t k = n_; k-- > 0;) {
    if (ranges_[k].right <= above) break;
    bytes += dist(seq_max(ranges_[k].left, above), ranges_[k].right);
    ++count;
    if (count >= kDupThresh || bytes > byte_limit) return true;
  }
  return false;
}

std::uint32_t SackScoreboard::update_pipe() {
  // Walk the holes (un-SACKed octets) of [snd_una, snd_nxt). IsLost() is the
  // same for every octet of one hole (the SACKed octets above them are the
  // same), so each hole is one step instead of one per octet.
  std::uint64_t pipe = 0;
  const SeqNum hr = rxt_floor();
  SeqNum cur = snd_una_;
  for (std::size_t k = 0; k <= n_; ++k) {
    const SeqNum hole_end = k < n_ ? ranges_[k].left : snd_nxt_;
    if (cur < hole_end) {
      const bool lost = k < n_ && is_lost(cur);
      if (!lost) pipe += dist(cur, hole_end);                    // (a)
      if (cur < hr) pipe += dist(cur, seq_min(hole_end, hr));  // (b)
    }
    if (k < n_) cur = ranges_[k].right;
  }
  pipe_ = static_cast<std::uint32_t>(pipe);
  return pipe_;
}

bool SackScoreboard::first_hole_below_highest_sack(SeqNum from, SeqNum& start,
                                                   SeqNum& end) const {
  SeqNum cur = from;
  for (std::size_t k = 0; k < n_; ++k) {
    if (ranges_[k].right <= cur) continue;
    if (ranges_[k].left <= cur) {
      cur = ranges_[k].right;
      continue;
    }
    start = cur;
    end = ranges_[k].left;
    return true;
  }
  return false;
}

TxSegment SackScoreboard::next_seg(std::uint32_t sendable_new) const {
  SeqNum s;
  SeqNum e;
  const bool candidate = first_hole_below_highest_sack(rxt_floor(), s, e);
  // Rule (1): the smallest un-SACKed octet above HighRxt, below the highest
  // SACKed octet, that IsLost(). IsLost() only weakens as seq grows, so if
  // the smallest candidate is not lost, none above it is.
  if (candidate && is_lost(s)) {
    return TxSegment{TxSegment::Kind::retransmit, s, std::min(dist(s, e), smss_), 1};
  }
  // Rule (2): new data.
  if (sendable_new > 0) {
    return TxSegment{TxSegment::Kind::new_data, snd_nxt_, std::min(sendable_new, smss_), 2};
  }
  // Rule (3): the same candidate, not (yet) lost.
  if (candidate) {
    return TxSegment{TxSegment::Kind::retransmit, s, std::min(dist(s, e), smss_), 3};
  }
  // Rule (4): one rescue retransmission per recovery, covering the highest
  // outstanding un-SACKed octet, once HighACK has passed RescueRxt.
  if (in_recovery_ && (!rescue_valid_ || snd_una_ > rescue_rxt_)) {
    SeqNum hole_start;
    SeqNum hole_end;
    if (n_ == 0 || ranges_[n_ - 1].right < snd_nxt_) {
      hole_end = snd_nxt_;
      hole_start = n_ ? ranges_[n_ - 1].right : snd_una_;
    } else {
      hole_end = ranges_[n_ - 1].left;
      hole_start = n_ > 1 ? ranges_[n_ - 2].right : snd_una_;
    }
    if (hole_start < hole_end) {
      const std::uint32_t len = std::min(dist(hole_start, hole_end), smss_);
      return TxSegment{TxSegment::Kind::rescue, hole_end - len, len, 4};
    }
  }
  return TxSegment{};
}

void SackScoreboard::on_transmit(const TxSegment& seg) {
  switch (seg.kind) {
    case TxSegment::Kind::none:
      break;
    case TxSegment::Kind::new_data:
      on_send_new(seg.len);
      break;
    case TxSegment::Kind::retransmit:
      on_retransmit(seg.seq, seg.len, false);
      break;
    case TxSegment::Kind::rescue:
      on_retransmit(seg.seq, seg.len, true);
      break;
  }
}

void SackScoreboard::on_retransmit(SeqNum seq, std::uint32_t len, bool rescue) {
  pipe_ += len;  // (C.4)
  if (rescue) {
    // Rule (4): RescueRxt = RecoveryPoint; HighRxt MUST NOT be updated.
    rescue_rxt_ = in_recovery_ ? recovery_point_ : seq + len;
    rescue_valid_ = true;
    return;
  }
  // (C.2): HighRxt covers the retransmitted octets below HighData.
  if (!(seq < snd_nxt_)) return;
  const SeqNum end = seq_min(seq + len, snd_nxt_);
  if (high_rxt_ < end) high_rxt_ = end;
}

SackScoreboard::AckResult SackScoreboard::on_ack(SeqNum ack, std::span<const SackBlock> blocks) {
  AckResult res;
  if (snd_nxt_ < ack) {
    res.ack_invalid = true;
    return res;
  }
  if (snd_una_ < ack) {
    res.cumulative = true;
    res.acked_bytes = dist(snd_una_, ack);
    snd_una_ = ack;
    trim_below_una();
    if (high_rxt_ < snd_una_) high_rxt_ = snd_una_;
    if (rto_hold_ && snd_una_ >= recovery_point_) rto_hold_ = false;
  }

  // Update() (§4), with the validation of RFC 2018/2883.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const SackBlock& b = blocks[i];
    if (!(b.left < b.right)) {
      ++res.ignored_blocks;
      continue;
    }
    if (i == 0) {
      const bool below_ack = b.right <= snd_una_;
      const bool inside_second = blocks.size() > 1 && blocks[1].left < blocks[1].right &&
                                 blocks[1].left <= b.left && b.right <= blocks[1].right;
      if (below_ack || inside_second) {
        res.dsack = true;
        continue;
      }
    }
    if (b.left < snd_una_ || snd_nxt_ < b.right) {
      ++res.ignored_blocks;
      continue;
    }
    res.newly_sacked += insert(b.left, b.right, res.overflow);
  }

  // §5: a cumulative ACK resets DupAcks; a duplicate (new SACK information,
  // §2) then counts, cumulative or not.
  if (res.cumulative) dup_acks_ = 0;
  if (res.newly_sacked > 0) {
    res.dup_ack = true;
    ++dup_acks_;
  }

  if (in_recovery_) {
    if (snd_una_ >= recovery_point_) {  // (A)
      exit_recovery();
      res.recovery_done = true;
    }
  } else if (res.dup_ack && !rto_hold_ &&
             (dup_acks_ >= kDupThresh || is_lost(snd_una_))) {  // steps (1), (2)
    res.enter_recovery = true;
  }
  update_pipe();  // (B.2); outside recovery it serves §5 step (3)
  return res;
}

SackScoreboard::RecoveryStart SackScoreboard::enter_recovery() {
  RecoveryStart out;
  in_recovery_ = true;
  recovery_point_ = snd_nxt_;  // (4.1)
  rto_hold_ = false;
  out.recovery_point = recovery_point_;
  out.flight_size = dist(snd_una_, snd_nxt_);

  // (4.3): the segment starting at HighACK + 1 (skipping SACKed octets, which
  // cannot normally start there: the receiver would have ACKed them).
  SeqNum s = snd_una_;
  SeqNum e = snd_nxt_;
  for (std::size_t k = 0; k < n_; ++k) {
    if (ranges_[k].right <= s) continue;
    if (ranges_[k].left <= s) {
      s = ranges_[k].right;
      continue;
    }
    e = ranges_[k].left;
    break;
  }
  if (s < e) {
    const std::uint32_t len = std::min(dist(s, e), smss_);
    out.retransmit = TxSegment{TxSegment::Kind::retransmit, s, len, 0};
    high_rxt_ = s + len;
    rescue_rxt_ = s + len;
    rescue_valid_ = true;
  } else {
    rescue_valid_ = false;
  }
  out.pipe = update_pipe();  // (4.4)
  return out;
}

void SackScoreboard::exit_recovery() {
  in_recovery_ = false;
  rescue_valid_ = false;
  // §5 (A): SACK information above the new HighACK is kept.
}

void SackScoreboard::on_rto() {
  recovery_point_ = snd_nxt_;
  in_recovery_ = false;
  rto_hold_ = snd_una_ < snd_nxt_;
  high_rxt_ = snd_una_;
  rescue_valid_ = false;
  dup_acks_ = 0;
  n_ = 0;  // SACK information discarded (see the header)
  update_pipe();
}

}  // namespace ustack::tcp
