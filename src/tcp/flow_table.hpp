// The per-lcore flow table: which connection (or listener) a segment is for.
//
// Read: RFC 9293 §3.10.7 (segment arrival: connection first, then listener,
// else RST); RFC 6191 (reusing a TIME_WAIT 4-tuple).
//
// Layout: one open-addressed array of slots, sized at construction to the
// power of two at or above twice the maximum number of entries (load factor
// at most 1/2), linear probing, backward-shift deletion. The slot itself
// holds the 4-tuple, the 32-bit value (a connection or listener index into
// the caller's pool) and the tuple's hash, so a hit costs one cache line in
// the common case and deletion never rehashes. Values are plain indices, so
// slots may move (unlike the ARP cache, whose entries embed timers and sit
// behind an index array).
//
// Hash: SipHash-1-3 of the tuple's canonical bytes under a per-table secret.
// A remote peer chooses its address and port freely, so an unkeyed hash
// would let it aim thousands of flows at one probe run (hash flooding);
// without the key, collisions cannot be chosen. The slot keeps 32 bits of
// the hash: the home slot is its low bits (tables up to 2^31 slots) and it
// filters most non-matching probes before the tuple compare.
//
// Nothing allocates after construction: insert fails (InsertResult::full)
// when `capacity()` entries are present, it never grows or evicts, so a SYN
// flood cannot push out established connections.
//
// TIME_WAIT: the table only maps tuples. A connection in TIME_WAIT stays in
// the table under its tuple; when a new SYN arrives for it, the caller finds
// the TIME_WAIT connection and decides per RFC 6191 (timestamps) or RFC 9293
// §3.6.1 (sequence numbers above the old incarnation's, which RFC 6528 ISNs
// provide) whether to reuse it: erase() then insert() the new connection, or
// simply keep the entry and reinitialise the connection it points to.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tcp/isn.hpp"
#include "tcp/tuple.hpp"
#include "ustack/addr.hpp"

namespace ustack::tcp {

enum class InsertResult : std::uint8_t {
  ok,
  exists,   // the key is already present; its value is unchanged
  full,     // capacity() entries present
  invalid,  // the value is TupleMap::kNoValue
};

// An open-addressed FourTuple -> uint32_t map with a fixed capacity.
class TupleMap {
 public:
  static constexpr std::uint32_t kNoValue = 0xffffffffu;  // marks an empty slot
  static constexpr std::uint32_t kMaxCapacity = 1u << 30;

  // `capacity` entries (at least 1, at most kMaxCapacity); all memory is
  // allocated here.
  TupleMap(std::uint32_t capacity, const Secret& key);

  InsertResult insert(const FourTuple& k, std::uint32_t value);

  std::optional<std::uint32_t> find(const FourTuple& k) const {
    const std::uint32_t h = hash_of(k);
    for (std::uint32_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.value == kNoValue) return std::nullopt;
      if (slot.hash == h && slot.key == k) return slot.value;
    }
  }

  // True when `k` was present.
  bool erase(const FourTuple& k);

  std::uint32_t size() const { return size_; }
  std::uint32_t capacity() const { return capacity_; }
  // Slots in the probe array (a power of two, >= 2 * capacity()).
  std::size_t slot_count() const { return slots_.size(); }
  // Heap bytes of the probe array.
  std::size_t bytes() const { return slots_.size() * sizeof(Slot); }

 private:
  struct Slot {
    FourTuple key;
    std::uint32_t value = kNoValue;
    std::uint32_t hash = 0;
  };

  std::uint32_t hash_of(const FourTuple& k) const {
    return static_cast<std::uint32_t>(siphash13(key_, tuple_bytes(k)));
  }

  Secret key_;
  std::vector<Slot> slots_;
  std::uint32_t mask_ = 0;
  std::uint32_t capacity_ = 0;
  std::uint32_t size_ = 0;
};

struct FlowTableConfig {
  std::uint32_t max_connections = 1024;
  std::uint32_t max_listeners = 64;
};

// Connections by 4-tuple, listeners by local address and port.
class FlowTable {
 public:
  FlowTable(const FlowTableConfig& cfg, const Secret& key)
      : conns_(cfg.max_connections, key), listeners_(cfg.max_listeners, key) {}

  // Connections. `conn` is the caller's connection index.
  InsertResult insert(const FourTuple& t, std::uint32_t conn) { return conns_.insert(t, conn); }
  std::optional<std::uint32_t> find(const FourTuple& t) const { return conns_.find(t); }
  bool erase(const FourTuple& t) { return conns_.erase(t); }
  std::uint32_t size() const { return conns_.size(); }
  std::uint32_t capacity() const { return conns_.capacity(); }
  std::size_t connection_bytes() const { return conns_.bytes(); }  // heap bytes of the connection map

  // Listeners. An unspecified `local` (0.0.0.0) listens on every address;
  // a listener bound to the segment's destination address wins over it.
  InsertResult add_listener(Ipv4Addr local, std::uint16_t port, std::uint32_t listener) {
    return listeners_.insert(listen_key(local, port), listener);
  }
  std::optional<std::uint32_t> find_listener(Ipv4Addr local, std::uint16_t port) const {
    if (auto l = listeners_.find(listen_key(local, port))) return l;
    return listeners_.find(listen_key(Ipv4Addr{}, port));
  }
  bool remove_listener(Ipv4Addr local, std::uint16_t port) {
    return listeners_.erase(listen_key(local, port));
  }
  std::uint32_t listener_count() const { return listeners_.size(); }
  std::uint32_t listener_capacity() const { return listeners_.capacity(); }

 private:
  static constexpr FourTuple listen_key(Ipv4Addr local, std::uint16_t port) {
    return FourTuple{local, Ipv4Addr{}, port, 0};
  }

  TupleMap conns_;
  TupleMap listeners_;
};

}  // namespace ustack::tcp
