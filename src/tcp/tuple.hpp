// The identity of a TCP connection: its IPv4 4-tuple, seen from this host.
//
// `local` is always our side and `remote` the peer, whichever way a segment
// travels, so a received segment maps to {dst, src, dport, sport} and a sent
// one to {src, dst, sport, dport}.
#pragma once

#include <array>
#include <cstdint>

#include "ustack/addr.hpp"

namespace ustack::tcp {

struct FourTuple {
  Ipv4Addr local;
  Ipv4Addr remote;
  std::uint16_t local_port = 0;
  std::uint16_t remote_port = 0;

  constexpr bool operator==(const FourTuple&) const = default;
};

// The canonical byte form hashed by the ISN generator, the SYN cookies and
// the flow table: local address, remote address, local port, remote port,
// all big-endian (12 bytes). A fixed encoding keeps hash values independent
// of struct padding and host byte order.
inline constexpr std::size_t kFourTupleBytes = 12;

constexpr std::array<std::uint8_t, kFourTupleBytes> tuple_bytes(const FourTuple& t) {
  return {static_cast<std::uint8_t>(t.local.v >> 24),  static_cast<std::uint8_t>(t.local.v >> 16),
          static_cast<std::uint8_t>(t.local.v >> 8),   static_cast<std::uint8_t>(t.local.v),
          static_cast<std::uint8_t>(t.remote.v >> 24), static_cast<std::uint8_t>(t.remote.v >> 16),
          static_cast<std::uint8_t>(t.remote.v >> 8),  static_cast<std::uint8_t>(t.remote.v),
          static_cast<std::uint8_t>(t.local_port >> 8), static_cast<std::uint8_t>(t.local_port),
          static_cast<std::uint8_t>(t.remote_port >> 8), static_cast<std::uint8_t>(t.remote_port)};
}

}  // namespace ustack::tcp
