#include "tcp/reassembly.hpp"

#include <utility>

namespace ustack::tcp {

ReassemblyQueue::ReassemblyQueue(std::size_t max_segments, std::size_t max_bytes)
    : slots_(max_segments == 0 ? 1 : max_segments), max_bytes_(max_bytes) {}

void ReassemblyQueue::clear() {
  for (std::size_t i = 0; i < n_; ++i) slots_[i].pkt.reset();
  n_ = 0;
  bytes_ = 0;
  have_last_ = false;
}

void ReassemblyQueue::remove_front(std::size_t k) {
  for (std::size_t i = k; i < n_; ++i) slots_[i - k] = std::move(slots_[i]);
  n_ -= k;
  if (n_ == 0) have_last_ = false;
}

ReassemblyQueue::Insert ReassemblyQueue::insert(SeqNum rcv_nxt, SeqNum seq, Packet&& payload) {
  std::uint32_t len = static_cast<std::uint32_t>(payload.len());
  // Bytes before RCV.NXT were delivered already.
  if (seq < rcv_nxt) {
    const auto old = static_cast<std::uint32_t>(rcv_nxt - seq);
    if (old >= len) return Insert::duplicate;
    payload.consume_front(old);
    seq = rcv_nxt;
    len -= old;
  }
  if (len == 0) return Insert::duplicate;
  SeqNum end = seq + len;

  // First slot that starts at or after `seq`.
  std::size_t pos = 0;
  while (pos < n_ && slots_[pos].seq < seq) ++pos;
  // The previous segment may cover our front.
  if (pos > 0) {
    const Slot& prev = slots_[pos - 1];
    const SeqNum prev_end = prev.seq + prev.len;
    if (end <= prev_end) return Insert::duplicate;
    if (seq < prev_end) {
      const auto cut = static_cast<std::uint32_t>(prev_end - seq);
      payload.consume_front(cut);
      seq = prev_end;
      len -= cut;
    }
  }
  // Following segments may cover our back. Segments we wholly cover are kept
  // (data already queued wins), so we keep only the part before the next one.
  if (pos < n_) {
    const Slot& next = slots_[pos];
    if (!(seq < next.seq)) return Insert::duplicate;  // next starts where we do and is queued
    if (next.seq < end) {
      const auto cut = static_cast<std::uint32_t>(end - next.seq);
      payload.trim_back(cut);
      len -= cut;
      end = next.seq;
    }
  }
  if (len == 0) return Insert::duplicate;
  if (n_ == slots_.size() || bytes_ + len > max_bytes_) return Insert::full;

  for (std::size_t i = n_; i > pos; --i) slots_[i] = std::move(slots_[i - 1]);
  slots_[pos].seq = seq;
  slots_[pos].len = len;
  slots_[pos].pkt = std::move(payload);
  ++n_;
  bytes_ += len;
  last_seq_ = seq;
  have_last_ = true;
  return Insert::queued;
}

std::size_t ReassemblyQueue::sack_blocks(std::span<SackBlock> out) const {
  if (out.empty() || n_ == 0) return 0;
  // Merge touching segments into blocks, remembering which holds the latest.
  std::size_t written = 0;
  SackBlock latest{};
  bool latest_found = false;
  std::size_t i = 0;
  while (i < n_) {
    SackBlock b{slots_[i].seq, slots_[i].seq + slots_[i].len};
    bool has_latest = have_last_ && slots_[i].seq == last_seq_;
    std::size_t j = i + 1;
    while (j < n_ && slots_[j].seq == b.right) {
      b.right = slots_[j].seq + slots_[j].len;
      has_latest = has_latest || (have_last_ && slots_[j].seq == last_seq_);
      ++j;
    }
    if (has_latest) {
      latest = b;
      latest_found = true;
    } else if (written < out.size()) {
      out[written++] = b;
    }
    i = j;
  }
  if (!latest_found) return written;
  // Put the latest block first, shifting the others (dropping the last if full).
  const std::size_t keep = written < out.size() ? written : out.size() - 1;
  for (std::size_t k = keep; k > 0; --k) out[k] = out[k - 1];
  out[0] = latest;
  return keep + 1;
}

}  // namespace ustack::tcp
