// The two stacks the tcp, udp and shim benches run on the in-memory pair:
// stack n (1 or 2) has MAC 02:00:00:00:00:0n and 10.0.0.n/24, and sends no
// gratuitous ARP at start.
#pragma once

#include <cstdint>

#include "drivers/device.hpp"
#include "net/stack.hpp"

namespace ustack::bench {

inline DeviceCaps pair_caps(std::uint8_t n) {
  DeviceCaps c;
  c.mac = MacAddr{{0x02, 0, 0, 0, 0, n}};
  return c;
}

inline StackConfig pair_config(std::uint8_t n) {
  StackConfig c;
  c.mac = pair_caps(n).mac;
  c.ip = Ipv4Cidr{Ipv4Addr{10, 0, 0, n}, 24};
  c.gratuitous_arp_on_start = false;
  return c;
}

}  // namespace ustack::bench
