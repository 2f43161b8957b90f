// Fault injection wrapping any Device, per direction, seeded.
//
// The kernel here has no netem, so loss, duplication, corruption, delay and
// reordering are made in the driver layer (smoltcp's FaultInjector shape).
// RX faults apply to packets coming up from inner.rx_burst, TX faults to
// packets going down to inner.tx_burst.
//
// Per packet, in this order:
//   drop       free it;
//   corrupt    flip one random bit of one random byte (a copy is corrupted
//              instead when the buffer is shared, so a sender's retransmit
//              copy is never touched); RX checksum-offload flags are cleared
//              so the stack verifies in software;
//   duplicate  add an rte_pktmbuf_copy from the mbuf's own pool (a failed
//              copy counts as not duplicated); the copy gets its own delay;
//   reorder    hold the packet back until after the next packet that gets
//              through (one packet is held at a time);
//   delay      queue it in the delay line until now >= now_in + delay_ns +
//              uniform[0, jitter_ns]; jitter alone therefore reorders.
// The delay line is a preallocated min-heap ordered by (release time, arrival
// order), so packets due at the same time keep their order. A full line drops
// and counts `overflow`.
//
// Determinism: each direction has its own splitmix64 stream derived from the
// seed, and every packet that is accepted consumes the same number of draws
// whatever the rates, so the same seed and the same input give the same
// faults, and changing one rate does not reshuffle the others.
//
// TX ownership: packets accepted (dropped, delayed or sent) count in the
// return value, since the wrapper owns them. tx_burst stops accepting, and
// returns short, only when the delay line is full of packets not yet due.
// When inner refuses released packets they are freed and counted in
// `inner_rejected` (the delay line is a wire: it does not retry).
//
// Nothing allocates per packet (duplicates and corruption copies come from
// the mbuf's pool, as a NIC's would).
#pragma once

#include <rte_mbuf.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/time.hpp"
#include "drivers/device.hpp"

namespace ustack {

// splitmix64 (Steele, Lea, Flood 2014): one 64-bit word of state, good
// enough statistics for fault decisions, trivially reproducible.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // True with probability p: p <= 0 never, p >= 1 always. Always one draw.
  bool chance(double p) {
    const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;  // [0, 1)
    return u < p;
  }
  // Uniform in [0, max]. Always one draw.
  std::uint64_t upto(std::uint64_t max) {
    const std::uint64_t r = next();
    return max == ~std::uint64_t{0} ? r : r % (max + 1);
  }

 private:
  std::uint64_t s_;
};

struct FaultConfig {
  double drop = 0, duplicate = 0, reorder = 0, corrupt = 0;
  TimeNs delay_ns = 0, jitter_ns = 0;
};

struct FaultCounters {
  // passed: packets handed on (to the caller for RX, accepted by inner for TX),
  // duplicates included. delayed: packets queued with a release time after
  // the `now` they arrived at.
  std::uint64_t passed = 0, dropped = 0, duplicated = 0, reordered = 0, corrupted = 0, delayed = 0,
                overflow = 0;
  std::uint64_t inner_rejected = 0;  // TX only: released but refused by inner.tx_burst (freed)
};

class FaultInjector final : public Device {
 public:
  FaultInjector(Device& inner, std::uint64_t seed, FaultConfig rx, FaultConfig tx,
                std::size_t delay_capacity = 4096);
  ~FaultInjector() override;  // frees everything still delayed or held
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  const DeviceCaps& caps() const override { return inner_.caps(); }
  // Returns the RX packets due at `now`. Pulls from inner again (a bounded
  // number of times) while inner fills the space offered, so 0 means inner
  // had nothing more, not that the faults ate one burst.
  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override;
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return inner_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return inner_.set_allmulticast(on); }
  // Sends the TX packets that are due, then inner.flush(now). Due RX packets
  // wait for the next rx_burst; a packet held for reordering waits for the
  // next packet.
  void flush(TimeNs now) override;

  const FaultCounters& rx_counters() const { return rx_.counters; }
  const FaultCounters& tx_counters() const { return tx_.counters; }

  // Earliest release time in either delay line (for a virtual-time driver to
  // know when to poll next); nullopt when both are empty.
  std::optional<TimeNs> next_release_time() const;
  // Packets in the delay lines plus the ones held for reordering.
  std::size_t rx_queued() const { return rx_.line.size() + (rx_.held ? 1 : 0); }
  std::size_t tx_queued() const { return tx_.line.size() + (tx_.held ? 1 : 0); }

 private:
  struct Slot {
    TimeNs release;
    std::uint64_t seq;
    rte_mbuf* m;
  };
  // One direction: its faults, its random stream, its delay line.
  struct Lane {
    Lane(const FaultConfig& c, std::uint64_t seed, std::size_t capacity);
    FaultConfig cfg;
    SplitMix64 rng;
    std::size_t capacity;
    std::vector<Slot> line;  // min-heap on (release, seq); reserved to capacity
    std::uint64_t next_seq = 0;
    rte_mbuf* held = nullptr;
    TimeNs held_release = 0;
    FaultCounters counters;
    bool is_rx;
  };

  void admit(Lane& l, rte_mbuf* m, TimeNs now);
  void enqueue(Lane& l, rte_mbuf* m, TimeNs release, TimeNs now);
  rte_mbuf* corrupt(Lane& l, rte_mbuf* m, std::uint64_t draw);
  static bool due(const Lane& l, TimeNs now) { return !l.line.empty() && l.line.front().release <= now; }
  static rte_mbuf* pop(Lane& l);
  void release_tx(TimeNs now);

  Device& inner_;
  Lane rx_;
  Lane tx_;
  static constexpr std::size_t kTxBatch = 64;
  std::unique_ptr<rte_mbuf*[]> tx_scratch_;
};

}  // namespace ustack
