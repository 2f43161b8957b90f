// How the port steers received packets to queues, as far as we know it: what
// TCP's active open needs to choose a source port whose replies come back to
// its own queue (tcp/rss.hpp, pick_source_port).
//
// The driver builds it once at start-up from what the NIC reports back (not
// from what we asked for: a PMD may ignore a key or keep its own table); the
// runtime gives every lcore its own copy with `queue` set. Plain data, no
// DPDK: protocol code takes it like DeviceCaps.
//
// Only IPv4 is modelled. Toeplitz over an IPv4 4-tuple (12 bytes) reads key
// bits 0..126, so the first 16 key bytes decide every IPv4 hash; `key` holds
// the first 40 (what IPv6 would need) and is zero-padded past a shorter key.
// DPDK 22.11 can neither select nor report the hash algorithm; every PMD
// that reports a key uses Toeplitz by default, and that is what we assume.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ustack {

enum class RssSteering : std::uint8_t {
  single_queue,  // one RX queue: every packet is this lcore's
  toeplitz,      // Toeplitz with `key`, then `reta`, both read back from the NIC
  unknown,       // several queues, the NIC's choice is not known: check flows in software
  software,      // the NIC's choice is not known, but the runtime moves every TCP
                 // segment to the queue Toeplitz with `key` and `reta` selects
                 // (src/runtime/tcp_steer.hpp): an lcore's view, never the port's
};

struct RssInfo {
  static constexpr std::size_t kKeyLen = 40;  // == tcp::kRssKeyLen

  RssSteering steering = RssSteering::unknown;
  std::array<std::uint8_t, kKeyLen> key{};  // toeplitz only
  std::vector<std::uint16_t> reta;          // toeplitz only; entry = queue; size a power of two
  std::uint16_t nqueues = 1;
  std::uint16_t queue = 0;  // this lcore's RX queue (set in each lcore's copy)
  bool ipv4_tcp = false;    // the NIC hashes IPv4 TCP over addresses and ports
  bool ipv4_udp = false;    // the same for UDP
  // Why steering is unknown, or what was degraded on the way (start-up text).
  std::string note;

  // One queue: nothing to steer. An empty RETA selects queue 0 (tcp::queue_of),
  // so pick_source_port() accepts the first usable port without a special case.
  static RssInfo single_queue() {
    RssInfo r;
    r.steering = RssSteering::single_queue;
    return r;
  }

  // True when queue_of(hash, reta) under `key` is where the NIC puts an IPv4
  // TCP segment: pick_source_port() may be trusted. Implies ipv4_tcp with
  // several queues.
  bool known() const { return steering != RssSteering::unknown; }

  // A key with a 16-bit period hashes both directions of a flow alike
  // (tcp/rss.hpp explains why); ours, repeated 0x6d5a, is one.
  bool key_symmetric() const {
    if (steering != RssSteering::toeplitz && steering != RssSteering::software) return false;
    for (std::size_t i = 2; i < key.size(); ++i)
      if (key[i] != key[i - 2]) return false;
    return true;
  }
};

inline const char* to_string(RssSteering s) {
  switch (s) {
    case RssSteering::single_queue: return "single-queue";
    case RssSteering::toeplitz: return "toeplitz";
    case RssSteering::software: return "software";
    case RssSteering::unknown: break;
  }
  return "unknown";
}

}  // namespace ustack
