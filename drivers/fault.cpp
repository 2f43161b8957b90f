#include "drivers/fault.hpp"

#include <algorithm>

namespace ustack {
namespace {

// std::*_heap keep the largest element at the front; this makes it the
// earliest release, and among equal releases the earliest arrival.
bool later(const auto& x, const auto& y) { return x.release != y.release ? x.release > y.release : x.seq > y.seq; }

std::uint64_t lane_seed(std::uint64_t seed, int which) {
  SplitMix64 s(seed);
  std::uint64_t v = s.next();
  for (int i = 0; i < which; ++i) v = s.next();
  return v;
}

// True when no other mbuf shares any of this packet's buffers.
bool writable(const rte_mbuf* m) {
  for (; m; m = m->next)
    if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1) return false;
  return true;
}

}  // namespace

FaultInjector::Lane::Lane(const FaultConfig& c, std::uint64_t seed, std::size_t cap)
    : cfg(c), rng(seed), capacity(cap), is_rx(false) {
  line.reserve(cap);
}

FaultInjector::FaultInjector(Device& inner, std::uint64_t seed, FaultConfig rx, FaultConfig tx,
                             std::size_t delay_capacity)
    : inner_(inner),
      rx_(rx, lane_seed(seed, 0), delay_capacity),
      tx_(tx, lane_seed(seed, 1), delay_capacity),
      tx_scratch_(new rte_mbuf*[kTxBatch]) {
  rx_.is_rx = true;
}

FaultInjector::~FaultInjector() {
  for (Lane* l : {&rx_, &tx_}) {
    for (const Slot& s : l->line) rte_pktmbuf_free(s.m);
    l->line.clear();
    if (l->held) rte_pktmbuf_free(l->held);
    l->held = nullptr;
  }
}

std::optional<TimeNs> FaultInjector::next_release_time() const {
  std::optional<TimeNs> t;
  for (const Lane* l : {&rx_, &tx_})
    if (!l->line.empty() && (!t || l->line.front().release < *t)) t = l->line.front().release;
  return t;
}

rte_mbuf* FaultInjector::pop(Lane& l) {
  std::pop_heap(l.line.begin(), l.line.end(), [](const Slot& x, const Slot& y) { return later(x, y); });
  rte_mbuf* m = l.line.back().m;
  l.line.pop_back();
  return m;
}

void FaultInjector::enqueue(Lane& l, rte_mbuf* m, TimeNs release, TimeNs now) {
  if (l.line.size() == l.capacity) {
    rte_pktmbuf_free(m);
    ++l.counters.overflow;
    return;
  }
  if (release > now) ++l.counters.delayed;
  l.line.push_back(Slot{release, l.next_seq++, m});  // within reserve(): no allocation
  std::push_heap(l.line.begin(), l.line.end(), [](const Slot& x, const Slot& y) { return later(x, y); });
}

rte_mbuf* FaultInjector::corrupt(Lane& l, rte_mbuf* m, std::uint64_t draw) {
  const std::uint32_t len = rte_pktmbuf_pkt_len(m);
  if (len == 0) return m;
  if (!writable(m)) {
    // Someone else (a retransmit queue, a duplicate) still reads this buffer.
    rte_mbuf* copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
    if (!copy) return m;  // no mbuf to corrupt into: pass it unharmed
    rte_pktmbuf_free(m);
    m = copy;
  }
  std::uint32_t off = static_cast<std::uint32_t>((draw >> 3) % len);
  rte_mbuf* seg = m;
  while (off >= seg->data_len) {
    off -= seg->data_len;
    seg = seg->next;
  }
  *rte_pktmbuf_mtod_offset(seg, std::uint8_t*, off) ^= static_cast<std::uint8_t>(1u << (draw & 7));
  // A checksum the NIC verified before the flip no longer holds.
  if (l.is_rx)
    m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK |
                     RTE_MBUF_F_RX_OUTER_L4_CKSUM_MASK | RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD);
  ++l.counters.corrupted;
  return m;
}

// Applies one direction's faults to one arriving packet and queues what is
// left of it. The draws happen up front, all of them, so each packet consumes
// the same amount of randomness whatever the rates and outcomes.
void FaultInjector::admit(Lane& l, rte_mbuf* m, TimeNs now) {
  const bool drop = l.rng.chance(l.cfg.drop);
  const bool flip = l.rng.chance(l.cfg.corrupt);
  const bool dup = l.rng.chance(l.cfg.duplicate);
  const bool hold = l.rng.chance(l.cfg.reorder);
  const std::uint64_t flip_draw = l.rng.next();
  const TimeNs release = now + l.cfg.delay_ns + l.rng.upto(l.cfg.jitter_ns);
  const TimeNs dup_release = now + l.cfg.delay_ns + l.rng.upto(l.cfg.jitter_ns);

  if (drop) {
    rte_pktmbuf_free(m);
    ++l.counters.dropped;
    return;
  }
  if (flip) m = corrupt(l, m, flip_draw);
  rte_mbuf* copy = nullptr;
  if (dup) {
    copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
    if (copy) ++l.counters.duplicated;
  }
  rte_mbuf* const was_held = l.held;
  if (hold && !was_held) {
    l.held = m;
    l.held_release = release;
    ++l.counters.reordered;
  } else {
    enqueue(l, m, release, now);
  }
  if (copy) enqueue(l, copy, dup_release, now);
  if (was_held) {
    // This packet got through, so the one held back goes right after it.
    l.held = nullptr;
    enqueue(l, was_held, std::max(l.held_release, release), now);
  }
}

// Pulls from inner into the unused tail of `pkts`, then hands up what is due.
// When faults swallowed a full burst, inner may hold more: pull again (a few
// times at most, so a flooded port cannot stall the loop), so that returning
// 0 means "nothing for now" rather than "everything this pull was dropped".
std::uint16_t FaultInjector::rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  constexpr int kMaxPulls = 8;
  std::uint16_t n = 0;
  for (int pull = 0; pull < kMaxPulls && n < pkts.size(); ++pull) {
    const auto room = pkts.subspan(n);
    const std::uint16_t got = inner_.rx_burst(room, now);
    for (std::uint16_t i = 0; i < got; ++i) admit(rx_, room[i], now);
    while (n < pkts.size() && due(rx_, now)) pkts[n++] = pop(rx_);
    if (got < room.size()) break;  // inner is empty for now
  }
  rx_.counters.passed += n;
  return n;
}

void FaultInjector::release_tx(TimeNs now) {
  while (due(tx_, now)) {
    std::uint16_t k = 0;
    while (k < kTxBatch && due(tx_, now)) tx_scratch_[k++] = pop(tx_);
    const std::uint16_t sent = inner_.tx_burst(std::span<rte_mbuf*>(tx_scratch_.get(), k), now);
    tx_.counters.passed += sent;
    if (sent < k) {
      rte_pktmbuf_free_bulk(tx_scratch_.get() + sent, k - sent);
      tx_.counters.inner_rejected += k - sent;
    }
  }
}

std::uint16_t FaultInjector::tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) {
  const auto offered = static_cast<std::uint16_t>(std::min<std::size_t>(pkts.size(), UINT16_MAX));
  release_tx(now);
  std::uint16_t i = 0;
  for (; i < offered; ++i) {
    if (tx_.line.size() == tx_.capacity) {
      // Packets admitted with no delay in this burst are due: send them to
      // make room before refusing anything.
      release_tx(now);
      if (tx_.line.size() == tx_.capacity) break;
    }
    admit(tx_, pkts[i], now);
  }
  tx_.counters.overflow += offered - i;
  release_tx(now);
  return i;
}

void FaultInjector::flush(TimeNs now) {
  release_tx(now);
  inner_.flush(now);
}

}  // namespace ustack
