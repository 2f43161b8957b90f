// The ARP cache (RFC 826, RFC 1122 §2.3.2), fixed capacity, no heap after start.
//
// Entries live in a preallocated array indexed by an open-addressed hash of
// the IPv4 address (linear probing, backward-shift deletion on the index
// array, so entries — which embed their timer — never move).
//
// Entry life cycle:
//   incomplete: a request was sent; up to `pending_per_entry` packets wait
//               (oldest kept, newest dropped and counted: RFC 1122 says "at
//               least one", Linux keeps a small queue). Retried every
//               `retry_ns`, `max_retries` times, then the waiting packets are
//               dropped and counted and the entry removed.
//   reachable:  confirmed by a reply or by a request naming us. After
//               `reachable_ns` it becomes
//   stale:      still used, but the first use sends a unicast request to
//               confirm; removed if not confirmed within `reachable_ns` more.
// A full table refuses new resolutions (counted), it does not evict, so an
// ARP flood cannot push out the gateway.
#pragma once

#include <cstdint>
#include <vector>

#include "core/time.hpp"
#include "core/timer_wheel.hpp"
#include "net/packet.hpp"
#include "ustack/addr.hpp"

namespace ustack {

class Stack;

struct ArpConfig {
  std::uint32_t entries = 256;
  TimeNs reachable_ns = 60 * kNsPerSec;
  TimeNs retry_ns = 1 * kNsPerSec;
  std::uint8_t max_retries = 3;  // requests after the first
  std::uint8_t pending_per_entry = 4;
};

class ArpCache {
 public:
  enum class State : std::uint8_t { free, incomplete, reachable, stale };
  static constexpr std::uint8_t kMaxPending = 16;

  ArpCache(Stack& stack, const ArpConfig& cfg);
  ArpCache(const ArpCache&) = delete;
  ArpCache& operator=(const ArpCache&) = delete;
  ~ArpCache();

  // The MAC for `ip` if known (reachable or stale). A stale hit schedules a
  // unicast confirmation request.
  const MacAddr* lookup(Ipv4Addr ip, TimeNs now);

  // Queues `pkt` (data() at its IPv4 header) until `ip` resolves, sending
  // the first request if this starts a resolution. False when dropped.
  bool enqueue(Ipv4Addr ip, Packet&& pkt, TimeNs now);

  // Learns ip -> mac. `create`: add an entry if none exists (we were the
  // target of the sender's request); otherwise only update an existing one
  // (RFC 826's merge flag). Flushes waiting packets on resolution.
  void update(Ipv4Addr ip, const MacAddr& mac, bool create, TimeNs now);

  State state(Ipv4Addr ip) const;
  std::size_t size() const { return used_; }
  std::size_t capacity() const { return entries_.size(); }

 private:
  struct Entry {
    ArpCache* owner = nullptr;
    Ipv4Addr ip;
    MacAddr mac;
    State state = State::free;
    std::uint8_t retries = 0;
    std::uint8_t npending = 0;
    bool confirm_sent = false;
    Timer timer;
    std::array<rte_mbuf*, kMaxPending> pending{};
  };

  std::size_t slot_of(Ipv4Addr ip) const;
  Entry* find(Ipv4Addr ip);
  const Entry* find(Ipv4Addr ip) const;
  Entry* insert(Ipv4Addr ip);
  void remove(Entry& e);
  void drop_pending(Entry& e);
  static void on_timer(Timer& t, TimeNs now, void* ctx);

  Stack& stack_;
  ArpConfig cfg_;
  std::vector<Entry> entries_;
  std::vector<std::int32_t> index_;  // open-addressed: entry index or -1
  std::vector<std::int32_t> free_;   // free entry indices (a stack)
  std::size_t used_ = 0;
};

}  // namespace ustack
