// IPv4 multicast to the lcore that owns the port's multicast membership.
//
// One lcore (queue 0) runs the IgmpHost: the sockets that join groups live
// on its UdpLayer, and it answers the queries. With more than one queue the
// NIC's RSS spreads multicast over all of them like any other traffic (a
// feed's datagrams hash by their addresses and ports), and a query may land
// anywhere. So with more than one queue every lcore's device is wrapped in a
// McastSteerDevice: an IPv4 frame to 224.0.0.0/4 received on queue q != 0 is
// moved, as it is (no copy), into queue 0's ring, and queue 0's rx_burst
// takes what the ring holds before its own queue. Delivery to every joined
// socket then happens once, on queue 0; the other lcores never see a group.
// Order within one feed is kept when the NIC steers a flow to one queue
// (what RSS does); a feed spread over queues may interleave at the ring.
//
// The ring is multi-producer, single-consumer. A frame that finds it full is
// dropped and counted (multicast_steer_dropped in the lcore stats). Nothing
// here allocates, locks or makes a syscall after construction; the cost on
// queues != 0 is a look at the IPv4 destination of each frame.
#pragma once

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "drivers/device.hpp"

namespace ustack {

class McastSteer {
 public:
  static constexpr unsigned kRingSize = 4096;

  McastSteer() = default;
  McastSteer(const McastSteer&) = delete;
  McastSteer& operator=(const McastSteer&) = delete;
  ~McastSteer() {
    if (!ring_) return;
    rte_mbuf* m = nullptr;
    while (rte_ring_dequeue(ring_, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
    rte_ring_free(ring_);
  }

  // `name` must be unique in the process (the ring's name). False with `err` set on failure.
  bool init(const char* name, int socket, std::string& err) {
    ring_ = rte_ring_create(name, kRingSize, socket, RING_F_SC_DEQ);
    if (!ring_) err = std::string("multicast steering ring: ") + rte_strerror(rte_errno);
    return ring_ != nullptr;
  }
  rte_ring* ring() const { return ring_; }

 private:
  rte_ring* ring_ = nullptr;
};

class McastSteerDevice final : public Device {
 public:
  // `owner`: this device is queue 0's (takes from the ring) or another's (puts into it).
  McastSteerDevice(Device& inner, const McastSteer& steer, bool owner) : inner_(inner), steer_(steer), owner_(owner) {}

  const DeviceCaps& caps() const override { return inner_.caps(); }

  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override {
    if (owner_) {
      const unsigned in = rte_ring_sc_dequeue_burst(steer_.ring(), reinterpret_cast<void**>(pkts.data()),
                                                    static_cast<unsigned>(pkts.size()), nullptr);
      if (in) bump(steered_in_, in);
      return static_cast<std::uint16_t>(in + inner_.rx_burst(pkts.subspan(in), now));
    }
    const std::uint16_t got = inner_.rx_burst(pkts, now);
    std::uint16_t kept = 0;
    for (std::uint16_t i = 0; i < got; ++i) {
      rte_mbuf* m = pkts[i];
      if (!is_ipv4_multicast(m)) {
        pkts[kept++] = m;
      } else if (rte_ring_mp_enqueue(steer_.ring(), m) != 0) {
        rte_pktmbuf_free(m);
        bump(dropped_);
      } else {
        bump(steered_out_);
      }
    }
    return kept;
  }
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override { return inner_.tx_burst(pkts, now); }
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return inner_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return inner_.set_allmulticast(on); }
  void flush(TimeNs now) override { inner_.flush(now); }

  std::uint64_t steered_out() const { return steered_out_.load(std::memory_order_relaxed); }
  std::uint64_t steered_in() const { return steered_in_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // An IPv4 datagram (untagged or behind one 802.1Q tag) to 224.0.0.0/4.
  // Reads only the first segment; the stack checks everything else.
  static bool is_ipv4_multicast(const rte_mbuf* m) {
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::size_t len = rte_pktmbuf_data_len(m);
    std::size_t off = 12;
    if (len < off + 2) return false;
    std::uint16_t type = static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
    if (type == 0x8100) {
      off += 4;
      if (len < off + 2) return false;
      type = static_cast<std::uint16_t>(p[off] << 8 | p[off + 1]);
    }
    const std::size_t ip = off + 2;
    if (type != 0x0800 || len < ip + 20 || (p[ip] >> 4) != 4) return false;
    return (p[ip + 16] >> 4) == 0xe;
  }

 private:
  static void bump(std::atomic<std::uint64_t>& v, std::uint64_t by = 1) {
    v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  Device& inner_;
  const McastSteer& steer_;
  bool owner_;
  std::atomic<std::uint64_t> steered_out_{0};
  std::atomic<std::uint64_t> steered_in_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace ustack
