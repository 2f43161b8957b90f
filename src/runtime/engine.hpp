// The body of one lcore's poll loop, independent of where packets come from:
//
//   rx_burst -> Stack::rx (demux -> arp | ipv4 -> icmp | tcp | udp ...)
//            -> Stack::poll (timer wheel)
//            -> TxBatch flush -> tx_burst
//
// The runtime calls run_once() with the TSC-derived `now`; tests and
// simulations call it with a virtual clock; nothing here reads a clock, takes
// a lock, allocates or makes a syscall.
//
// The engine is the lcore's context: besides the stack it holds the lcore's
// own copy of how the NIC steers flows to queues (rss()), and, once
// enable_tcp() built it, the lcore's TCP (the stack's protocol-6 handler),
// whose active opens use rss() to pick source ports whose replies land on
// this queue. TCP needs no call of its own in the loop: segments reach it
// from Stack::rx, its timers fire from Stack::poll, and what it sends goes
// out with the same flush.
//
// enable_udp() builds the lcore's UDP the same way, and on the one lcore
// that owns the port's multicast membership (queue 0 in the runtime) an
// IgmpHost first: the UDP sockets join through it, and each change of its
// group set reprograms the port's multicast MAC filter (program_multicast).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <optional>
#include <utility>
#include <span>

#include "drivers/device.hpp"
#include "drivers/rss_info.hpp"
#include "drivers/tx_batch.hpp"
#include "net/stack.hpp"
#include "igmp/igmp_host.hpp"
#include "tcp/tcp_layer.hpp"
#include "udp/udp_layer.hpp"

namespace ustack {

// Work an lcore does every iteration besides packets (the thread shim's
// rings). Both calls must be non-blocking and bounded.
class LoopHook {
 public:
  // After receive processing and timers, before the TX flush, so that what
  // it sends leaves in this iteration's burst.
  virtual void poll(TimeNs now) = 0;
  // After the flush: work that should not delay packets (the shim's eventfd
  // writes, which are syscalls).
  virtual void after_flush(TimeNs now) = 0;

 protected:
  ~LoopHook() = default;
};

class Engine final : public PacketSink {
 public:
  static constexpr std::uint16_t kRxBurst = 32;

  // `rss`: this lcore's view of the NIC's steering (its `queue` set); devices
  // without queues to steer between (replay, in-memory pair) have one queue.
  Engine(Device& dev, const StackConfig& cfg, rte_mempool* pool, TimeNs now,
         RssInfo rss = RssInfo::single_queue())
      : dev_(dev), tx_(dev), stack_(cfg, pool, dev.caps(), *this, now), rss_(std::move(rss)) {}

  void start(TimeNs now) {
    stack_.start(now);
    flush(now);
  }

  // One iteration. Returns the number of packets received.
  std::uint16_t run_once(TimeNs now) {
    const std::uint16_t n = dev_.rx_burst(std::span<rte_mbuf*>(rx_.data(), rx_.size()), now);
    for (std::uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(rx_[i + 1], void*));
      stack_.rx(rx_[i], now);
    }
    stack_.poll(now);
    if (hook_) hook_->poll(now);
    flush(now);
    if (hook_) hook_->after_flush(now);
    return n;
  }

  void flush(TimeNs now) {
    TxBatch::add(pending_, tx_.flush(now));
    account();
    dev_.flush(now);
  }

  void emit(Packet&& p, TimeNs now) override { tx_.push(p.release(), now, pending_); }

  // Builds this lcore's TCP (once, at start-up: it allocates every
  // connection slot) with the steering of rss(): with steering known (by the
  // NIC, or in software: runtime/tcp_steer.hpp), connect() picks source
  // ports whose replies are steered to our queue.
  tcp::TcpLayer& enable_tcp(tcp::TcpConfig cfg) {
    cfg.rss_known = rss_.known();
    cfg.queue = rss_.queue;
    cfg.reta = rss_.reta;
    std::copy(rss_.key.begin(), rss_.key.end(), cfg.rss_key.begin());
    tcp_.emplace(stack_, cfg);
    return *tcp_;
  }
  // Builds this lcore's UDP (once, at start-up: it allocates every socket
  // and receive queue). With `igmp`, also the IgmpHost that owns the port's
  // multicast membership: its MAC list programs the port's filter at once
  // (224.0.0.1) and on every change of the group set. Only one lcore per
  // port may pass `igmp`; the others' UDP cannot join (UdpStatus::no_igmp).
  UdpLayer& enable_udp(const UdpConfig& cfg, const IgmpConfig* igmp = nullptr) {
    if (igmp) {
      igmp_.emplace(stack_, *igmp);
      igmp_->set_mac_list_callback(&Engine::on_mac_list, this);
    }
    udp_.emplace(stack_, cfg, igmp_ ? &*igmp_ : nullptr);
    return *udp_;
  }
  UdpLayer* udp() { return udp_ ? &*udp_ : nullptr; }
  IgmpHost* igmp() { return igmp_ ? &*igmp_ : nullptr; }
  tcp::TcpLayer* tcp() { return tcp_ ? &*tcp_ : nullptr; }
  const tcp::TcpLayer* tcp() const { return tcp_ ? &*tcp_ : nullptr; }
  // One hook (the thread shim), set before the loop starts.
  void set_hook(LoopHook* h) { hook_ = h; }

  Stack& stack() { return stack_; }
  Device& device() { return dev_; }
  const RssInfo& rss() const { return rss_; }

  // Points the port's multicast filter at `macs` (IGMP's list: 224.0.0.1's
  // MAC plus one per joined group). A device that cannot hold the exact list
  // is put in all-multicast mode instead; the stack's membership filter then
  // drops what nobody joined. All-multicast is switched off again once an
  // exact list fits, but only if this function switched it on (the operator
  // may have asked for it). A control-path call: only on membership changes.
  // Returns true when the exact list is programmed.
  bool program_multicast(std::span<const MacAddr> macs) {
    if (dev_.caps().mc_filter && dev_.set_mc_addr_list(macs)) {
      if (allmulti_by_us_ && dev_.set_allmulticast(false)) allmulti_by_us_ = false;
      bump(mc_programmed_);
      return true;
    }
    bump(mc_fallbacks_);
    if (!allmulti_by_us_ && dev_.set_allmulticast(true)) allmulti_by_us_ = true;
    if (!allmulti_by_us_) bump(mc_failures_);
    return false;
  }
  // For the control thread (relaxed): exact lists programmed; changes that
  // fell back to all-multicast; of those, ones where all-multicast could not
  // be switched on either (the port then passes only what it passes anyway).
  std::uint64_t mc_programmed() const { return mc_programmed_.load(std::memory_order_relaxed); }
  std::uint64_t mc_fallbacks() const { return mc_fallbacks_.load(std::memory_order_relaxed); }
  std::uint64_t mc_failures() const { return mc_failures_.load(std::memory_order_relaxed); }
  bool allmulticast_by_us() const { return allmulti_by_us_; }
  // The same as an IgmpHost MAC-list callback: set_mac_list_callback(&Engine::on_mac_list, &engine).
  static void on_mac_list(std::span<const MacAddr> macs, void* engine) {
    static_cast<Engine*>(engine)->program_multicast(macs);
  }

 private:
  static void bump(std::atomic<std::uint64_t>& v) {
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void account() {
    auto& c = stack_.counters();
    if (pending_.sent) {
      c.inc(StackCounter::eth_tx_packets, pending_.sent);
      c.inc(StackCounter::eth_tx_bytes, pending_.sent_bytes);
    }
    if (pending_.dropped) c.inc(StackCounter::tx_drop_queue_full, pending_.dropped);
    pending_ = {};
  }

  Device& dev_;
  TxBatch tx_;
  Stack stack_;
  TxBatch::Flushed pending_;
  std::array<rte_mbuf*, kRxBurst> rx_{};
  RssInfo rss_;
  bool allmulti_by_us_ = false;
  std::atomic<std::uint64_t> mc_programmed_{0}, mc_fallbacks_{0}, mc_failures_{0};
  // After stack_: destroyed first (they unregister from the stack and free
  // the mbufs their connections and sockets hold); UDP before the IgmpHost
  // its sockets joined through.
  std::optional<tcp::TcpLayer> tcp_;
  std::optional<IgmpHost> igmp_;
  std::optional<UdpLayer> udp_;
  LoopHook* hook_ = nullptr;
};

}  // namespace ustack
