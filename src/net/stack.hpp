// One stack instance: everything one lcore needs to be an IPv4 host on one
// port queue — ARP cache, routing, IPv4 in/out, ICMP, counters, timers.
//
// Sans-IO: packets and `now` come in through rx() and poll(); packets go out
// through the PacketSink given at construction (in the runtime, a TxBatch in
// front of the device). The stack allocates only from its mempool, never from
// the heap, after construction. Nothing in it is shared with another lcore.
//
// Upper layers (TCP, UDP, IGMP) register a ProtocolHandler per IP protocol
// and send through ip_output(), which routes, resolves the next hop by ARP
// (queueing a bounded number of packets while it waits) and frames.
#pragma once

#include <rte_mempool.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/time.hpp"
#include "core/timer_wheel.hpp"
#include "drivers/device.hpp"
#include "net/arp_cache.hpp"
#include "net/packet.hpp"
#include "ustack/addr.hpp"
#include "ustack/stats.hpp"
#include "wire/arp.hpp"
#include "wire/ipv4.hpp"

namespace ustack {

struct StackConfig {
  MacAddr mac;                        // usually DeviceCaps::mac
  Ipv4Cidr ip;                        // our address and connected subnet
  std::optional<Ipv4Addr> gateway;    // default route; none: only the subnet is reachable
  std::optional<std::uint16_t> vlan;  // 802.1Q VID to tag with and accept; none: untagged only
  std::uint8_t ttl = 64;
  ArpConfig arp;
  // ICMP error rate limit: a token bucket (RFC 1812 §4.3.2.8). Echo replies are not limited.
  std::uint32_t icmp_errors_per_sec = 1000;
  std::uint32_t icmp_error_burst = 50;
  bool reply_to_broadcast_echo = false;  // RFC 1122 §3.2.2.6: MAY; off like Linux
  bool gratuitous_arp_on_start = true;
};

// What the stack emits goes here. The runtime's implementation pushes into a
// TxBatch; tests collect packets.
class PacketSink {
 public:
  virtual void emit(Packet&& p, TimeNs now) = 0;

 protected:
  ~PacketSink() = default;
};

// An upper-layer protocol (TCP, UDP, IGMP). `pkt` holds the whole frame with
// data() still at the Ethernet header; `ip` views into it.
class ProtocolHandler {
 public:
  virtual void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) = 0;
  // An ICMP error about a datagram we sent: `quoted` is the offending IP
  // header and leading payload as the error carried it.
  virtual void icmp_error(std::uint8_t /*type*/, std::uint8_t /*code*/, Bytes /*quoted*/, TimeNs /*now*/) {}

 protected:
  ~ProtocolHandler() = default;
};

struct EchoReply {
  Ipv4Addr from;
  std::uint16_t ident;
  std::uint16_t seq;
  Bytes data;
};
using EchoReplyFn = void (*)(const EchoReply& r, TimeNs now, void* ctx);

// Per-datagram choices for ip_output() beyond destination and protocol.
struct Ipv4TxOptions {
  std::uint8_t tos = 0;
  // Unset: StackConfig::ttl for unicast and broadcast, 1 for multicast
  // (RFC 1112 §6.1).
  std::optional<std::uint8_t> ttl;
  // RFC 2113 Router Alert option (IHL 6), which IGMP puts on every message.
  bool router_alert = false;
};

// Whether this host wants a datagram sent to multicast `group` by `src`
// (RFC 1112 §7.2; RFC 3376 §3.2 for per-source filters). IGMP installs one.
using MulticastFilterFn = bool (*)(Ipv4Addr group, Ipv4Addr src, std::uint8_t proto, const void* ctx);

class Stack {
 public:
  // Headroom every packet handed to ip_output() must have for IPv4 + Ethernet + VLAN
  // (4 more with Ipv4TxOptions::router_alert).
  static constexpr std::size_t kHeaderRoom = 20 + 14 + 4;

  Stack(const StackConfig& cfg, rte_mempool* pool, const DeviceCaps& caps, PacketSink& out, TimeNs now);
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Sends the gratuitous ARP announcement (RFC 5227 §2.3) if configured.
  void start(TimeNs now);

  // Takes ownership of one received frame.
  void rx(rte_mbuf* m, TimeNs now);

  // Fires due timers (ARP retries and expiry). Call once per loop iteration.
  void poll(TimeNs now) { timers_.advance(now); }
  TimeNs next_deadline() const { return timers_.next_deadline(); }

  // Sends `pkt` (data() at the IP payload, with kHeaderRoom headroom) to `dst`.
  // Routes, resolves by ARP (queueing while unresolved) and frames. Returns
  // false when the packet was dropped (no route, queue full); the drop is
  // counted either way.
  // Multicast destinations need no route and no ARP: the frame goes to
  // multicast_mac(dst) (RFC 1112 §6.4), TTL 1 unless `opt` says otherwise.
  bool ip_output(Packet&& pkt, Ipv4Addr dst, std::uint8_t proto, TimeNs now, std::uint8_t tos = 0) {
    return ip_output(std::move(pkt), dst, proto, now, Ipv4TxOptions{tos, std::nullopt, false});
  }
  bool ip_output(Packet&& pkt, Ipv4Addr dst, std::uint8_t proto, TimeNs now, const Ipv4TxOptions& opt);

  // Ping client, for tests, the demo and benchmarks.
  bool send_echo_request(Ipv4Addr dst, std::uint16_t ident, std::uint16_t seq, Bytes data, TimeNs now);
  void on_echo_reply(EchoReplyFn fn, void* ctx) { echo_fn_ = fn; echo_ctx_ = ctx; }

  void set_protocol_handler(std::uint8_t proto, ProtocolHandler* h) { handlers_[proto] = h; }

  // Multicast reception: with a filter, a datagram to a multicast group other
  // than 224.0.0.1 (of which every host is a member) is delivered only when
  // the filter accepts it, and dropped as ipv4_drop_multicast_not_joined
  // otherwise. Without one (no IgmpHost on this stack), every multicast
  // datagram the NIC lets through is delivered, as before IGMP existed.
  void set_multicast_filter(MulticastFilterFn fn, const void* ctx) { mc_filter_ = fn; mc_filter_ctx_ = ctx; }

  // Sends an ICMP error about `offending` (a received frame whose IP header
  // is at `ip`), rate limited; never about ICMP errors, broadcasts, multicasts
  // or non-initial fragments (RFC 1122 §3.2.2).
  void send_icmp_error(const wire::Ipv4Packet& ip, std::uint8_t type, std::uint8_t code, TimeNs now);

  // 255.255.255.255 or our subnet's broadcast address. Public so UDP can
  // accept binds to a broadcast address (to receive only broadcasts).
  bool is_local_broadcast(Ipv4Addr a) const {
    return a.is_limited_broadcast() || (cfg_.ip.prefix_len < 31 && a == cfg_.ip.broadcast());
  }

  const StackConfig& config() const { return cfg_; }
  const DeviceCaps& caps() const { return caps_; }
  const StackCounters& counters() const { return ctr_; }
  StackCounters& counters() { return ctr_; }
  ArpCache& arp() { return arp_; }
  TimerWheel& timers() { return timers_; }
  rte_mempool* pool() const { return pool_; }

 private:
  friend class ArpCache;
  void arp_input(Packet&& pkt, Bytes payload, TimeNs now);
  void ipv4_input(Packet&& pkt, std::size_t l3_off, TimeNs now);
  void icmp_input(Packet&& pkt, const wire::Ipv4Packet& ip, std::size_t l3_off, TimeNs now);
  // Prepends the Ethernet header for `dst_mac` and emits.
  void emit_frame(Packet&& pkt, const MacAddr& dst_mac, std::uint16_t ethertype, TimeNs now);
  void send_arp(wire::ArpOp op, const MacAddr& eth_dst, const MacAddr& tha, Ipv4Addr tpa, TimeNs now);
  bool icmp_error_allowed(TimeNs now);
  // The on-link destination itself, else the gateway; false: no route. A
  // plain out-parameter, not an optional: GCC 12 kept an optional<Ipv4Addr>
  // in a stack slot written as two narrow stores and read back as one word,
  // a store-forwarding stall on every packet sent (~10 ns each).
  bool next_hop(Ipv4Addr dst, Ipv4Addr& hop) const;

  StackConfig cfg_;
  rte_mempool* pool_;
  DeviceCaps caps_;
  PacketSink& out_;
  StackCounters ctr_;
  TimerWheel timers_;
  ArpCache arp_;
  std::array<ProtocolHandler*, 256> handlers_{};
  EchoReplyFn echo_fn_ = nullptr;
  void* echo_ctx_ = nullptr;
  MulticastFilterFn mc_filter_ = nullptr;
  const void* mc_filter_ctx_ = nullptr;
  std::uint16_t ip_ident_ = 0;
  // ICMP error token bucket, in tokens scaled by 1e9 to stay integral.
  std::uint64_t icmp_tokens_;
  TimeNs icmp_last_refill_;
};

}  // namespace ustack
