// The send side's retransmission queue: bytes the application has written
// and the peer has not yet acknowledged, i.e. the sequence space
// [SND.UNA, SND.UNA + buffered) of RFC 9293 §3.3.1 ("send sequence space")
// and §3.10.7.4 (what an acceptable ACK removes). RFC 7323 §2.3 for why the
// buffer is kept below 2^30 bytes: every sequence comparison then stays
// well inside half the circle.
//
// Storage is a fixed ring of mbuf pointers plus a byte limit (the
// "SO_SNDBUF"), both set at construction; nothing is allocated on the heap
// afterwards. Each ring slot holds exactly one single-segment mbuf; a chain
// given to write_zero_copy() is unlinked into one slot per segment, so a
// lookup by sequence number is a binary search over the slots.
//
// Transmission never copies payload: segment() chains indirect mbufs
// (rte_pktmbuf_attach, the mechanism behind rte_pktmbuf_clone) that
// reference the buffered data. The buffered mbufs stay here for
// retransmission; an indirect mbuf holds a reference on the buffer it points
// into, so a segment stays byte-exact even when an ACK frees its source mbuf
// before the NIC has sent it. Buffered bytes are never rewritten: ack() only
// moves data_off/data_len of the slot's own mbuf header, and write_copy()
// only appends beyond the bytes any earlier segment can reference.
//
// Backpressure, never blocking: writes accept what fits (byte limit, ring
// slots, mbufs in the pool) and report how much that was.
#pragma once

#include <rte_mbuf.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/bytes.hpp"
#include "core/seq.hpp"
#include "net/packet.hpp"

namespace ustack::tcp {

class SendBuffer {
 public:
  // The most header bytes a caller prepends to a segment: Ethernet (14) +
  // IPv6 (40) + TCP with a full option area (60). The first mbuf of every
  // packet segment()/segment_copy() returns has at least this much headroom.
  static constexpr std::size_t kMaxHeaderBytes = 14 + 40 + 60;
  // RFC 7323 §2.3: a larger buffer could not be told apart on the circle.
  static constexpr std::size_t kMaxBytesLimit = std::size_t{1} << 30;

  // `pool` supplies the mbufs write_copy() fills. `max_bytes` is clamped to
  // kMaxBytesLimit; `max_segments` (at least 1) is the number of ring slots,
  // i.e. of buffered mbufs. `snd_una` is the first sequence number the
  // buffer will hold (ISS + 1 once the SYN is acknowledged).
  SendBuffer(rte_mempool* pool, std::size_t max_bytes, std::size_t max_segments, SeqNum snd_una);
  SendBuffer(const SendBuffer&) = delete;
  SendBuffer& operator=(const SendBuffer&) = delete;
  ~SendBuffer() { clear(); }

  // Copies a prefix of `data` into the buffer: first into the tailroom of the
  // last mbuf (when write_copy() allocated it), then into fresh mbufs from
  // the pool, each filled to its whole data room (headers never go into
  // these mbufs, so they keep no headroom). Returns the bytes accepted,
  // fewer than data.size() when the byte limit, the ring or the pool runs
  // out; 0 when nothing fits.
  std::size_t write_copy(Bytes data);

  // Takes ownership of `p` (an mbuf or a chain, direct or indirect) as-is
  // when all of it fits (byte limit and one ring slot per non-empty segment)
  // and returns true; `p` is then empty. Otherwise returns false and `p` is
  // left untouched with the caller. An empty Packet is refused; a packet of
  // length 0 is accepted and freed. The caller must not write into the
  // mbufs' data afterwards (retransmissions read it).
  bool write_zero_copy(Packet& p);
  bool write_zero_copy(Packet&& p) { return write_zero_copy(p); }

  // An acceptable ACK (snd_una <= ack <= end()) drops the bytes below it:
  // whole mbufs are freed, the first partially acknowledged one is trimmed
  // in place. Returns the bytes newly acknowledged; 0 for an ACK outside
  // that range, which changes nothing (the caller decides whether it is a
  // duplicate or an ACK of unsent data, RFC 9293 §3.10.7.4).
  std::size_t ack(SeqNum ack);

  // Builds a packet carrying the bytes [seq, seq + len), len =
  // min(max_len, end() - seq), without copying them:
  //   - the first mbuf is a fresh, empty header mbuf from `hdr_pool` with
  //     data_len 0 and at least kMaxHeaderBytes of headroom: the caller
  //     prepends its TCP, IP and Ethernet headers into it (Packet::prepend)
  //     and sets the offload fields (l2_len, ol_flags, ...) on it;
  //   - one indirect mbuf from `hdr_pool` per buffered mbuf the range
  //     touches follows, each sliced (data_off/data_len) to its part.
  // The returned packet's len() is the payload length before the caller
  // prepends anything. The device must support multi-segment TX
  // (RTE_ETH_TX_OFFLOAD_MULTI_SEGS); otherwise use segment_copy().
  // seq == end() (or max_len == 0) gives a header-only packet, for a pure
  // ACK or FIN. Returns an empty Packet when `hdr_pool` runs out (nothing is
  // leaked; the caller counts it and retries later), and on two caller bugs:
  // seq outside [snd_una(), end()], or a `hdr_pool` whose mbufs have less
  // than kMaxHeaderBytes of headroom. Retransmission is segment() again.
  Packet segment(SeqNum seq, std::uint32_t max_len, rte_mempool* hdr_pool) const;

  // The same range copied into one mbuf from `pool`, after the same
  // kMaxHeaderBytes-or-more headroom; len is additionally capped at that
  // mbuf's tailroom (read it back from len()). For small segments, and for
  // devices without multi-segment TX. Same empty-Packet cases as segment().
  Packet segment_copy(SeqNum seq, std::uint32_t max_len, rte_mempool* pool) const;

  SeqNum snd_una() const { return snd_una_; }
  SeqNum end() const { return snd_una_ + static_cast<std::uint32_t>(bytes_); }
  std::size_t buffered() const { return bytes_; }
  std::size_t free_space() const { return max_bytes_ - bytes_; }
  std::size_t max_bytes() const { return max_bytes_; }
  // Buffered mbufs (ring slots in use) and the ring's size.
  std::size_t segments() const { return n_; }
  std::size_t max_segments() const { return slots_.size(); }
  // Heap bytes of the ring (allocated at construction).
  std::size_t ring_bytes() const { return slots_.size() * sizeof(Slot); }

  // Frees every buffered mbuf; snd_una() stays, buffered() becomes 0.
  void clear();
  // clear(), then start again at `snd_una`: a pooled connection reuses its
  // buffer (and the ring allocated at construction) for the next connection.
  void reset(SeqNum snd_una) {
    clear();
    snd_una_ = snd_una;
  }

 private:
  struct Slot {
    rte_mbuf* m = nullptr;  // single segment; its data is exactly the slot's bytes
    SeqNum seq;             // sequence number of its first byte
  };
  Slot& at(std::size_t i) { return slots_[(head_ + i) % slots_.size()]; }
  const Slot& at(std::size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
  void push(rte_mbuf* m);
  // Index (from the head) of the slot holding `seq`; requires snd_una <= seq < end.
  std::size_t find(SeqNum seq) const;
  // Checks seq against [snd_una, end] and returns the payload length to send.
  bool range(SeqNum seq, std::uint32_t max_len, std::uint32_t& len) const;

  rte_mempool* pool_;
  std::vector<Slot> slots_;  // ring, sized once
  std::size_t head_ = 0;
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
  std::size_t max_bytes_;
  SeqNum snd_una_;
  bool tail_appendable_ = false;  // the last slot's mbuf came from write_copy()
};

}  // namespace ustack::tcp
