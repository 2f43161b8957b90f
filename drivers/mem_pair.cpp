#include "drivers/mem_pair.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ustack {
namespace {

DeviceCaps with_default_mac(DeviceCaps caps, std::uint8_t last) {
  if (caps.mac.is_zero()) caps.mac = MacAddr{{0x02, 0x00, 0x00, 0x00, 0x00, last}};
  return caps;
}

}  // namespace

MemPair::MemPair(std::size_t ring_capacity, DeviceCaps caps_a, DeviceCaps caps_b)
    : a_to_b_(ring_capacity),
      b_to_a_(ring_capacity),
      a_(with_default_mac(caps_a, 0x01), b_to_a_, a_to_b_),
      b_(with_default_mac(caps_b, 0x02), a_to_b_, b_to_a_) {
  if (ring_capacity == 0) throw std::invalid_argument("MemPair: ring capacity must be at least 1");
}

MemPair::~MemPair() {
  for (Ring* r : {&a_to_b_, &b_to_a_}) {
    for (std::size_t i = 0; i < r->size; ++i) rte_pktmbuf_free(r->slots[(r->head + i) % r->slots.size()]);
    r->size = 0;
  }
}

std::uint16_t MemPair::End::rx_burst(std::span<rte_mbuf*> pkts, TimeNs /*now*/) {
  if (rx_.size == 0) return 0;  // most polls, kept cheap: the loop around it is what is measured
  const std::size_t cap = rx_.slots.size();
  const auto n = static_cast<std::uint16_t>(std::min({pkts.size(), rx_.size, std::size_t{UINT16_MAX}}));
  std::uint16_t got = 0;
  for (std::uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx_.slots[rx_.head];
    rx_.head = rx_.head + 1 == cap ? 0 : rx_.head + 1;
    // A wire carries bytes, not the sender's mbufs: a chain (multi-segment
    // TX) arrives as one contiguous frame, as a NIC receives it.
    if (m->nb_segs > 1 && !(m = linearize(m))) {
      ++rx_.counters.dropped_no_mbuf;
      continue;
    }
    // Nor the sender's offload requests: the receiver sees what a NIC
    // without offloads would give it.
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
    pkts[got++] = m;
  }
  rx_.size -= n;
  return got;
}

rte_mbuf* MemPair::End::linearize(rte_mbuf* chain) {
  rte_mbuf* m = rte_pktmbuf_alloc(chain->pool);
  const std::uint32_t len = rte_pktmbuf_pkt_len(chain);
  char* dst = m && rte_pktmbuf_tailroom(m) >= len ? rte_pktmbuf_append(m, static_cast<std::uint16_t>(len)) : nullptr;
  if (dst) {
    const void* src = rte_pktmbuf_read(chain, 0, len, dst);
    if (src != dst) std::memcpy(dst, src, len);
  } else {
    rte_pktmbuf_free(m);
    m = nullptr;
  }
  rte_pktmbuf_free(chain);
  return m;
}

std::uint16_t MemPair::End::tx_burst(std::span<rte_mbuf*> pkts, TimeNs /*now*/) {
  const std::size_t cap = tx_.slots.size();
  const std::size_t offered = std::min(pkts.size(), std::size_t{UINT16_MAX});
  const auto n = static_cast<std::uint16_t>(std::min(offered, cap - tx_.size));
  std::size_t tail = (tx_.head + tx_.size) % cap;
  for (std::uint16_t i = 0; i < n; ++i) {
    tx_.slots[tail] = pkts[i];
    tail = tail + 1 == cap ? 0 : tail + 1;
  }
  tx_.size += n;
  tx_.counters.delivered += n;
  tx_.counters.dropped_full += offered - n;
  return n;
}

}  // namespace ustack
