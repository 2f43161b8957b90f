// The receive side's out-of-order queue (RFC 9293 §3.10.7.4 "segment text",
// RFC 2018 §4 for the SACK blocks it reports, RFC 7323 for why a window
// never spans more than 2^30 so the ordering below is always defined).
//
// Segments that arrive beyond RCV.NXT wait here, each as a Packet whose data
// is exactly its payload. The queue holds at most `max_segments` segments
// and `max_bytes` payload bytes, both fixed at construction: an attacker
// sending confetti cannot make it grow, and refusing a segment is always
// safe (the sender retransmits it). Slots are a sorted array; inserting
// shifts at most max_segments pointers, which for the small bounds used
// (tens of segments) beats any linked structure and never allocates.
//
// Overlap policy: data already queued wins; a new segment is trimmed to the
// bytes nobody holds yet, and a segment wholly covered is a duplicate. (RFC
// 9293 allows keeping either copy; keeping the queued one means a retransmit
// can never rewrite bytes we may already have SACKed.)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/seq.hpp"
#include "net/packet.hpp"
#include "tcp/sack_block.hpp"

namespace ustack::tcp {

class ReassemblyQueue {
 public:
  enum class Insert : std::uint8_t {
    queued,     // some new bytes are now held
    duplicate,  // every byte was already held or already delivered
    full,       // refused: the segment or byte bound is reached
  };

  ReassemblyQueue(std::size_t max_segments, std::size_t max_bytes);
  ReassemblyQueue(const ReassemblyQueue&) = delete;
  ReassemblyQueue& operator=(const ReassemblyQueue&) = delete;
  ~ReassemblyQueue() { clear(); }

  // Queues `payload` (data() at the first payload byte, len() payload bytes)
  // that starts at `seq`, given the receiver's current RCV.NXT. The caller
  // has already checked the segment is acceptable (inside the window).
  Insert insert(SeqNum rcv_nxt, SeqNum seq, Packet&& payload);

  // Hands every segment that now continues the in-order stream to
  // `deliver(Packet&&)`, trimmed to start exactly at rcv_nxt, and advances
  // rcv_nxt past it. Returns the bytes delivered.
  template <class Deliver>
  std::size_t drain(SeqNum& rcv_nxt, Deliver&& deliver) {
    std::size_t delivered = 0;
    std::size_t done = 0;
    while (done < n_) {
      Slot& s = slots_[done];
      if (rcv_nxt < s.seq) break;
      const SeqNum end = s.seq + s.len;
      if (end <= rcv_nxt) {  // overtaken by in-order data: nothing new
        bytes_ -= s.len;
        s.pkt.reset();
        ++done;
        continue;
      }
      const std::uint32_t skip = static_cast<std::uint32_t>(rcv_nxt - s.seq);
      if (skip) s.pkt.consume_front(skip);
      const std::uint32_t len = s.len - skip;
      bytes_ -= s.len;
      rcv_nxt += len;
      delivered += len;
      deliver(std::move(s.pkt));
      ++done;
    }
    if (done) remove_front(done);
    return delivered;
  }

  // Writes up to out.size() SACK blocks describing what is held: the block
  // holding the most recently queued segment first (RFC 2018 §4), then the
  // others in ascending order. Returns how many were written.
  std::size_t sack_blocks(std::span<SackBlock> out) const;

  void clear();
  bool empty() const { return n_ == 0; }
  std::size_t segments() const { return n_; }
  std::size_t bytes() const { return bytes_; }
  std::size_t max_segments() const { return slots_.size(); }
  // Heap bytes of the slot array (allocated at construction).
  std::size_t slot_bytes() const { return slots_.size() * sizeof(Slot); }
  std::size_t max_bytes() const { return max_bytes_; }

 private:
  struct Slot {
    SeqNum seq;
    std::uint32_t len = 0;
    Packet pkt;
  };
  void remove_front(std::size_t k);

  std::vector<Slot> slots_;  // sorted by seq, [0, n_) used; sized once
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
  std::size_t max_bytes_;
  SeqNum last_seq_;          // the most recently queued segment's start
  bool have_last_ = false;
};

}  // namespace ustack::tcp
