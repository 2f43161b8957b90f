// ARP replies for every lcore, when there is more than one queue.
//
// Each lcore's stack has its own ARP cache (nothing is shared), but RSS and
// kernel fanout steer frames by IP flow, and an ARP frame has none: a NIC
// puts it on queue 0, net_af_packet on whichever socket its hash picks. So
// the reply to lcore 1's request usually reaches lcore 0, and lcore 1 would
// retry until it gives up.
//
// ArpShareDevice wraps each lcore's device. When its rx_burst sees an ARP
// reply (or a gratuitous ARP, which only updates existing entries), it copies
// the frame into every other lcore's ring; each rx_burst first takes what
// its ring holds. Requests are not copied: the lcore that received one
// answers it, and a copy would make every lcore answer.
//
// The rings are lock-free (multi-producer enqueue, single-consumer dequeue);
// copies come from the receiving lcore's mempool. Nothing here allocates from
// the heap, locks or makes a syscall after construction. A copy that finds
// no mbuf or a full ring is dropped and counted: the target lcore's own ARP
// retry covers it.
#pragma once

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "drivers/device.hpp"

namespace ustack {

class ArpShare {
 public:
  static constexpr unsigned kRingSize = 256;

  ArpShare() = default;
  ArpShare(const ArpShare&) = delete;
  ArpShare& operator=(const ArpShare&) = delete;
  ~ArpShare() {
    for (rte_ring* r : rings_) {
      rte_mbuf* m = nullptr;
      while (rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
      rte_ring_free(r);
    }
  }

  // One ring per queue. False with `err` set on failure.
  bool init(std::uint16_t nb_queues, int socket, std::string& err) {
    for (std::uint16_t q = 0; q < nb_queues; ++q) {
      char name[RTE_RING_NAMESIZE];
      std::snprintf(name, sizeof name, "ustack_arp_q%u", q);
      rte_ring* r = rte_ring_create(name, kRingSize, socket, RING_F_SC_DEQ);
      if (!r) {
        err = std::string("ARP share ring ") + name + ": " + rte_strerror(rte_errno);
        return false;
      }
      rings_.push_back(r);
    }
    return true;
  }

  std::size_t size() const { return rings_.size(); }
  rte_ring* ring(std::size_t q) const { return rings_[q]; }

 private:
  std::vector<rte_ring*> rings_;
};

class ArpShareDevice final : public Device {
 public:
  ArpShareDevice(Device& inner, ArpShare& share, std::uint16_t queue, rte_mempool* pool)
      : inner_(inner), share_(share), queue_(queue), pool_(pool) {}

  const DeviceCaps& caps() const override { return inner_.caps(); }

  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override {
    const unsigned shared = rte_ring_sc_dequeue_burst(share_.ring(queue_), reinterpret_cast<void**>(pkts.data()),
                                                      static_cast<unsigned>(pkts.size()), nullptr);
    const std::uint16_t own = inner_.rx_burst(pkts.subspan(shared), now);
    for (std::uint16_t i = 0; i < own; ++i) {
      rte_mbuf* m = pkts[shared + i];
      if (is_arp_to_share(m)) [[unlikely]]
        copy_to_others(m);
    }
    return static_cast<std::uint16_t>(shared + own);
  }
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override { return inner_.tx_burst(pkts, now); }
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return inner_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return inner_.set_allmulticast(on); }
  void flush(TimeNs now) override { inner_.flush(now); }

  // Copies sent to other lcores, and copies dropped (no mbuf, ring full).
  std::uint64_t shared() const { return shared_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // An ARP reply, or a gratuitous ARP (sender IP == target IP), untagged or
  // behind one 802.1Q tag. Reads only the first segment.
  static bool is_arp_to_share(const rte_mbuf* m) {
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    std::size_t len = rte_pktmbuf_data_len(m);
    std::size_t off = 12;
    if (len < off + 2) return false;
    std::uint16_t type = static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
    if (type == 0x8100) {
      off += 4;
      if (len < off + 2) return false;
      type = static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
    }
    if (type != 0x0806) return false;
    const std::size_t arp = off + 2;
    // htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) tha(6) tpa(4)
    if (len < arp + 28) return false;
    const std::uint16_t op = static_cast<std::uint16_t>(p[arp + 6] << 8 | p[arp + 7]);
    if (op == 2) return true;
    return op == 1 && p[arp + 14] == p[arp + 24] && p[arp + 15] == p[arp + 25] && p[arp + 16] == p[arp + 26] &&
           p[arp + 17] == p[arp + 27];
  }

 private:
  void copy_to_others(const rte_mbuf* m) {
    for (std::size_t q = 0; q < share_.size(); ++q) {
      if (q == queue_) continue;
      rte_mbuf* c = rte_pktmbuf_copy(m, pool_, 0, UINT32_MAX);
      if (c == nullptr || rte_ring_mp_enqueue(share_.ring(q), c) != 0) {
        if (c) rte_pktmbuf_free(c);
        bump(dropped_);
        continue;
      }
      bump(shared_);
    }
  }
  // Single writer (this lcore); relaxed load+store, no locked instruction.
  static void bump(std::atomic<std::uint64_t>& v) {
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  Device& inner_;
  ArpShare& share_;
  std::uint16_t queue_;
  rte_mempool* pool_;
  std::atomic<std::uint64_t> shared_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace ustack
