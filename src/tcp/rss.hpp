// Receive-side scaling as the NIC computes it, so an active open can pick a
// source port whose replies land on the opening lcore's own queue.
//
// Read: Microsoft, "RSS hashing functions" and "Verifying the RSS hash
// calculation" (the Toeplitz algorithm and its test vectors); the same text
// is in Intel's 82599/I210 datasheets ("RSS Verification Suite"); RFC 6056
// (choosing ephemeral ports); RFC 6335 §6 (the dynamic port range).
//
// Toeplitz: for each bit of the input, most significant bit of the first
// byte first, if the bit is set XOR the leftmost 32 bits of the key into the
// result, then shift the key left by one bit. For IPv4/TCP and IPv4/UDP the
// input is source address, destination address, source port, destination
// port (12 bytes, network order), so a 40-byte key covers it with room to
// spare (the same key then also serves IPv6's 36-byte input).
//
// The hash is linear over GF(2): hash(a ^ b) = hash(a) ^ hash(b). A key that
// repeats with a 16-bit period (0x6d5a...) makes every 16-bit input word
// meet the same key windows, so the hash depends only on the XOR of the
// input's 16-bit words; swapping source and destination does not change
// that XOR, so hash(a -> b) == hash(b -> a). That symmetric key is our
// default: both directions of a flow meet on one queue whatever port was
// chosen. With any other key (the NIC default, kMicrosoftRssKey, for one),
// pick_source_port() finds a port whose replies hash to our queue.
//
// What the NIC hashes for a reply is the segment it receives: source = the
// remote, destination = us. The functions below take explicit src/dst for
// that reason; pick_source_port() does the swap itself.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "ustack/addr.hpp"

namespace ustack::tcp {

inline constexpr std::size_t kRssKeyLen = 40;
using RssKey = std::array<std::uint8_t, kRssKeyLen>;

namespace detail {
constexpr RssKey repeating_key(std::uint8_t a, std::uint8_t b) {
  RssKey k{};
  for (std::size_t i = 0; i < k.size(); i += 2) {
    k[i] = a;
    k[i + 1] = b;
  }
  return k;
}
}  // namespace detail

// The symmetric key: 0x6d, 0x5a repeated. Our default.
inline constexpr RssKey kSymmetricRssKey = detail::repeating_key(0x6d, 0x5a);

// The key of the RSS specification's verification suite, which many NICs
// (and DPDK's drivers) use as their default.
inline constexpr RssKey kMicrosoftRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

// The Toeplitz hash of `input` under `key`. The key must hold at least
// input.size() + 4 bytes; bits past its end count as zero.
std::uint32_t toeplitz(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input);

// The hash a NIC computes for an IPv4 packet without (rss_hash_ipv4) and
// with (rss_hash_ipv4_l4) its TCP/UDP ports.
std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, Ipv4Addr src, Ipv4Addr dst);
std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key, Ipv4Addr src, Ipv4Addr dst,
                               std::uint16_t src_port, std::uint16_t dst_port);

// The queue a hash selects through a redirection table: NICs index the RETA
// with the hash's low bits, so its size must be a power of two (DPDK sizes
// are 64, 128, 512...). An empty table selects queue 0.
inline std::uint16_t queue_of(std::uint32_t hash, std::span<const std::uint16_t> reta) {
  if (reta.empty()) return 0;
  return reta[hash & (reta.size() - 1)];
}

// Entry i -> queue i % nqueues: the spread DPDK drivers program by default,
// and what the runtime should program so that this model matches the NIC.
void fill_reta(std::span<std::uint16_t> reta, std::uint16_t nqueues);

// Ephemeral ports to choose from, inclusive; RFC 6335's dynamic range by
// default. first <= last.
struct PortRange {
  std::uint16_t first = 49152;
  std::uint16_t last = 65535;
};

// The NIC's hash of segments from remote:remote_port to local:p, for any
// local port p, in at most 16 XORs: the hash of the fixed part once, then
// the key window of each set bit of p (Toeplitz is linear).
class ReplyHash {
 public:
  ReplyHash(std::span<const std::uint8_t> key, Ipv4Addr local, Ipv4Addr remote,
            std::uint16_t remote_port);

  std::uint32_t operator()(std::uint16_t local_port) const {
    std::uint32_t h = base_;
    for (unsigned b = 0; b < 16; ++b)
      h ^= window_[b] & (0u - ((static_cast<unsigned>(local_port) >> (15 - b)) & 1u));
    return h;
  }

 private:
  std::uint32_t base_ = 0;
  std::array<std::uint32_t, 16> window_{};  // [0] is the port's most significant bit
};

// An ephemeral port in `range` such that replies from remote:remote_port to
// local:port select `queue` through `reta`, and `usable(port)` holds (the
// caller checks the 4-tuple is free: flow table, TIME_WAIT). The search
// starts at `hint` (clamped into the range) and wraps once round the range;
// the caller advances its hint per RFC 6056 (e.g. last choice + 1). nullopt
// when no port in the range qualifies.
//
// Cost: one ReplyHash, then per candidate 16 XORs and a table load; with q
// queues a qualifying port is found after about q candidates.
template <class Usable>
std::optional<std::uint16_t> pick_source_port(Ipv4Addr local, Ipv4Addr remote,
                                              std::uint16_t remote_port, std::uint16_t queue,
                                              std::span<const std::uint16_t> reta,
                                              std::span<const std::uint8_t> key, PortRange range,
                                              std::uint16_t hint, Usable&& usable) {
  if (range.first > range.last) return std::nullopt;
  const std::uint32_t n = std::uint32_t{range.last} - range.first + 1;
  const std::uint32_t start = (hint >= range.first && hint <= range.last) ? hint - range.first : 0;
  auto port_at = [&](std::uint32_t i) {
    const std::uint32_t off = start + i < n ? start + i : start + i - n;
    return static_cast<std::uint16_t>(range.first + off);
  };
  if (reta.empty()) {
    // One queue (queue_of() is 0 for every hash): every port lands on it,
    // so skip the Toeplitz set-up, which costs more than the search.
    if (queue != 0) return std::nullopt;
    for (std::uint32_t i = 0; i < n; ++i)
      if (usable(port_at(i))) return port_at(i);
    return std::nullopt;
  }
  const ReplyHash hash(key, local, remote, remote_port);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto port = port_at(i);
    if (queue_of(hash(port), reta) == queue && usable(port)) return port;
  }
  return std::nullopt;
}

// The same, with every port usable.
std::optional<std::uint16_t> pick_source_port(Ipv4Addr local, Ipv4Addr remote,
                                              std::uint16_t remote_port, std::uint16_t queue,
                                              std::span<const std::uint16_t> reta,
                                              std::span<const std::uint8_t> key, PortRange range,
                                              std::uint16_t hint);

}  // namespace ustack::tcp
