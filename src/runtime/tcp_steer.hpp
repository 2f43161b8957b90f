// TCP segments to the lcore that owns their connection, when the port cannot
// be trusted to do it.
//
// Each lcore's TcpLayer knows only its own connections. With more than one
// queue and RSS steering we cannot model (RssSteering::unknown: a PMD that
// hides its key or table, or has no RSS at all), segments of one connection
// may arrive on any queue. net_af_packet shows it: its kernel fanout hashes
// the skb's flow hash, and the Linux sender picks a new one for a flow
// when it retransmits (net.core.txrehash), so a connection's retransmission
// lands on the other lcore, which answers it with a RST. An active open's
// replies would not even start on the right queue.
//
// TcpSteerDevice wraps each lcore's device in that case. Every IPv4 TCP
// segment it receives belongs to the queue that Toeplitz over (src, dst,
// sport, dport) with the symmetric key, looked up in a fixed RETA of its
// own, selects (owner()); a segment for another queue goes into that queue's
// ring, as it is (no copy), and each rx_burst first takes what its own ring
// holds. The lcores' TCP gets the same key and RETA as its RSS model
// (RssSteering::software), so connect() picks source ports whose replies
// are steered back to it, exactly as with a NIC whose RSS is known.
//
// The rings are lock-free (multi-producer enqueue, single-consumer dequeue).
// A segment that finds its owner's ring full is dropped and counted (TCP
// retransmits it). Nothing here allocates, locks or makes a syscall after
// construction; the cost is one 16-bit Toeplitz per TCP segment (the
// symmetric key makes the hash a function of the XOR of the input's 16-bit
// words) and a ring operation per segment that changes lcore.
#pragma once

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "drivers/device.hpp"
#include "drivers/rss_info.hpp"
#include "tcp/rss.hpp"

namespace ustack {

class TcpSteer {
 public:
  static constexpr unsigned kRingSize = 4096;
  static constexpr std::size_t kRetaSize = 128;

  TcpSteer() = default;
  TcpSteer(const TcpSteer&) = delete;
  TcpSteer& operator=(const TcpSteer&) = delete;
  ~TcpSteer() {
    for (rte_ring* r : rings_) {
      rte_mbuf* m = nullptr;
      while (rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
      rte_ring_free(r);
    }
  }

  // One ring per queue. False with `err` set on failure.
  bool init(std::uint16_t nb_queues, int socket, std::string& err) {
    reta_.assign(kRetaSize, 0);
    tcp::fill_reta(reta_, nb_queues);
    for (std::uint16_t q = 0; q < nb_queues; ++q) {
      char name[RTE_RING_NAMESIZE];
      std::snprintf(name, sizeof name, "ustack_tcp_q%u", q);
      rte_ring* r = rte_ring_create(name, kRingSize, socket, RING_F_SC_DEQ);
      if (!r) {
        err = std::string("TCP steering ring ") + name + ": " + rte_strerror(rte_errno);
        return false;
      }
      rings_.push_back(r);
    }
    return true;
  }

  std::size_t size() const { return rings_.size(); }
  rte_ring* ring(std::size_t q) const { return rings_[q]; }

  // The queue that owns a segment from src:sport to dst:dport (as received).
  // Equal to tcp::queue_of(tcp::rss_hash_ipv4_l4(key, ...), reta): with a
  // key of period 16 bits, Toeplitz over the 12-byte input equals Toeplitz
  // over the XOR of its six 16-bit words (tcp/rss.hpp).
  std::uint16_t owner(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport) const {
    const std::uint16_t w = static_cast<std::uint16_t>((src >> 16) ^ src ^ (dst >> 16) ^ dst ^ sport ^ dport);
    const std::array<std::uint8_t, 2> in{static_cast<std::uint8_t>(w >> 8), static_cast<std::uint8_t>(w)};
    return tcp::queue_of(tcp::toeplitz(tcp::kSymmetricRssKey, in), reta_);
  }

  // What lcore `queue`'s TCP is to assume about steering.
  RssInfo info(std::uint16_t queue) const {
    RssInfo r;
    r.steering = RssSteering::software;
    std::copy(tcp::kSymmetricRssKey.begin(), tcp::kSymmetricRssKey.end(), r.key.begin());
    r.reta = reta_;
    r.nqueues = static_cast<std::uint16_t>(rings_.size());
    r.queue = queue;
    r.ipv4_tcp = true;
    r.note = "TCP segments are moved to their lcore in software";
    return r;
  }

 private:
  std::vector<rte_ring*> rings_;
  std::vector<std::uint16_t> reta_;
};

class TcpSteerDevice final : public Device {
 public:
  TcpSteerDevice(Device& inner, const TcpSteer& steer, std::uint16_t queue)
      : inner_(inner), steer_(steer), queue_(queue) {}

  const DeviceCaps& caps() const override { return inner_.caps(); }

  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override {
    const unsigned in = rte_ring_sc_dequeue_burst(steer_.ring(queue_), reinterpret_cast<void**>(pkts.data()),
                                                  static_cast<unsigned>(pkts.size()), nullptr);
    if (in) bump(steered_in_, in);
    const std::uint16_t got = inner_.rx_burst(pkts.subspan(in), now);
    std::uint16_t kept = static_cast<std::uint16_t>(in);
    for (std::uint16_t i = 0; i < got; ++i) {
      rte_mbuf* m = pkts[in + i];
      const int q = tcp_owner(m);
      if (q < 0 || q == queue_) {
        pkts[kept++] = m;
        continue;
      }
      if (rte_ring_mp_enqueue(steer_.ring(static_cast<std::size_t>(q)), m) != 0) {
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

  // Segments this lcore handed to others, took from others, and dropped (owner's ring full).
  std::uint64_t steered_out() const { return steered_out_.load(std::memory_order_relaxed); }
  std::uint64_t steered_in() const { return steered_in_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // The owning queue of an IPv4 TCP segment (untagged or behind one 802.1Q
  // tag, not a fragment), or -1 for anything else, which stays where it
  // arrived. Reads only the first segment; the stack checks the rest.
  int tcp_owner(const rte_mbuf* m) const {
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::size_t len = rte_pktmbuf_data_len(m);
    std::size_t off = 12;
    if (len < off + 2) return -1;
    std::uint16_t type = be16(p + off);
    if (type == 0x8100) {
      off += 4;
      if (len < off + 2) return -1;
      type = be16(p + off);
    }
    if (type != 0x0800) return -1;
    const std::size_t ip = off + 2;
    if (len < ip + 20 || (p[ip] >> 4) != 4) return -1;
    const std::size_t ihl = static_cast<std::size_t>(p[ip] & 0x0f) * 4;
    if (ihl < 20 || p[ip + 9] != 6) return -1;
    if ((be16(p + ip + 6) & 0x3fff) != 0) return -1;  // MF or an offset: the stack drops fragments
    if (len < ip + ihl + 4) return -1;
    const std::uint32_t src = be32(p + ip + 12), dst = be32(p + ip + 16);
    return steer_.owner(src, dst, be16(p + ip + ihl), be16(p + ip + ihl + 2));
  }

 private:
  static std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
  static std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
  }
  // Single writer (this lcore); relaxed load+store, no locked instruction.
  static void bump(std::atomic<std::uint64_t>& v, std::uint64_t by = 1) {
    v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  Device& inner_;
  const TcpSteer& steer_;
  std::uint16_t queue_;
  std::atomic<std::uint64_t> steered_out_{0};
  std::atomic<std::uint64_t> steered_in_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace ustack
