// A device is burst queues plus a capabilities record.
//
// Every packet backend (DPDK ethdev queue, pcap replay, in-memory pair) and
// every wrapper (fault injection, pcap tee) implements this interface, so the
// poll loop and the tests do not know which one they drive. Conventions follow
// DPDK's burst API: rx_burst fills up to pkts.size() mbufs and returns how
// many; tx_burst takes ownership of the first N it returns, and the caller
// still owns (and must count and free) the rest.
//
// `now` is passed to both calls so wrappers that model time (delay, replay)
// never read a clock.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <span>

#include "core/time.hpp"
#include "ustack/addr.hpp"

namespace ustack {

struct DeviceCaps {
  MacAddr mac;
  std::uint16_t mtu = 1500;
  std::uint16_t max_burst = 32;
  // Offloads the stack may rely on. RX flags mean the PMD reports
  // RTE_MBUF_F_RX_*_CKSUM_{GOOD,BAD} (UNKNOWN still means "verify in software").
  bool rx_ipv4_cksum = false;
  bool rx_l4_cksum = false;
  bool tx_ipv4_cksum = false;
  bool tx_udp_cksum = false;
  bool tx_tcp_cksum = false;
  bool tso = false;
  // Accepts mbuf chains (RTE_ETH_TX_OFFLOAD_MULTI_SEGS): TCP then sends
  // payload as indirect mbufs into its send buffer instead of copying it.
  bool tx_multi_seg = false;
  bool mc_filter = false;  // can program an exact multicast MAC list
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceCaps& caps() const = 0;
  virtual std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) = 0;
  virtual std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) = 0;
  // Program the multicast MAC filter; false when the device cannot (the caller
  // then falls back to all-multicast or accepts software filtering).
  virtual bool set_mc_addr_list(std::span<const MacAddr> /*macs*/) { return false; }
  virtual bool set_allmulticast(bool /*on*/) { return false; }
  // Push out anything the device buffers (capture writers, delay lines up to now).
  virtual void flush(TimeNs /*now*/) {}
};

}  // namespace ustack
