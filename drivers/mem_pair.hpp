// Two devices wired back to back in one process.
//
// What a() sends, b() receives, and the other way round: a wire made of two
// fixed-capacity rings of mbuf pointers, allocated in the constructor. This
// is the link for simulations (two stacks on virtual time, usually with a
// FaultInjector on one end) and for driver-level tests. A full ring behaves
// like a full NIC TX queue: tx_burst returns short, the caller frees the rest,
// and the ring's dropped_full counter says how many.
//
// Single-threaded: both ends and the counters belong to the thread that
// drives the pair.
#pragma once

#include <rte_mbuf.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/time.hpp"
#include "drivers/device.hpp"

namespace ustack {

class MemPair {
 public:
  // Caps' MACs default to distinct locally administered addresses
  // (02:00:00:00:00:01 for a, :02 for b) when zero.
  explicit MemPair(std::size_t ring_capacity = 1024, DeviceCaps caps_a = {}, DeviceCaps caps_b = {});
  MemPair(const MemPair&) = delete;
  MemPair& operator=(const MemPair&) = delete;
  ~MemPair();  // frees packets still on the wire

  Device& a() { return a_; }
  Device& b() { return b_; }

  // delivered: packets put on the ring towards the peer; dropped_full: packets
  // refused because that ring was full (returned to the caller by tx_burst).
  struct Counters {
    std::uint64_t delivered = 0, dropped_full = 0;
    std::uint64_t dropped_no_mbuf = 0;  // a chain found no mbuf to arrive in
  };
  const Counters& a_to_b() const { return a_to_b_.counters; }
  const Counters& b_to_a() const { return b_to_a_.counters; }

  // Packets currently on the wire towards b / towards a.
  std::size_t in_flight_to_b() const { return a_to_b_.size; }
  std::size_t in_flight_to_a() const { return b_to_a_.size; }

 private:
  struct Ring {
    explicit Ring(std::size_t capacity) : slots(capacity) {}
    std::vector<rte_mbuf*> slots;
    std::size_t head = 0;  // next to dequeue
    std::size_t size = 0;
    Counters counters;
  };

  class End final : public Device {
   public:
    End(const DeviceCaps& caps, Ring& rx, Ring& tx) : caps_(caps), rx_(rx), tx_(tx) {}
    const DeviceCaps& caps() const override { return caps_; }
    std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
    std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
    // The in-memory wire has no filter: every frame reaches the peer.
    bool set_allmulticast(bool on) override { return on; }

   private:
    // One contiguous copy of `chain` (which is freed), or nullptr.
    static rte_mbuf* linearize(rte_mbuf* chain);
    DeviceCaps caps_;
    Ring& rx_;
    Ring& tx_;
  };

  Ring a_to_b_;
  Ring b_to_a_;
  End a_;
  End b_;
};

}  // namespace ustack
