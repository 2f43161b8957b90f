// Frame builders for stack tests. They use the wire layer's value types,
// which have their own golden-byte tests, so a stack test checks behaviour,
// not serialisation.
#pragma once

#include <cstring>
#include <vector>

#include "net/stack.hpp"
#include "test/support/support.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace ustack::test {

inline constexpr MacAddr kOurMac{{0x02, 0, 0, 0, 0, 0x02}};
inline constexpr MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x01}};
inline constexpr MacAddr kGwMac{{0x02, 0, 0, 0, 0, 0xfe}};
inline constexpr Ipv4Addr kOurIp{10, 0, 0, 2};
inline constexpr Ipv4Addr kPeerIp{10, 0, 0, 1};
inline constexpr Ipv4Addr kGwIp{10, 0, 0, 254};

inline std::vector<std::uint8_t> eth_frame(const MacAddr& dst, const MacAddr& src, std::uint16_t type,
                                           const std::vector<std::uint8_t>& payload,
                                           std::optional<std::uint16_t> tci = std::nullopt) {
  wire::EthernetRepr e{dst, src, type, tci};
  std::vector<std::uint8_t> f(e.header_len() + payload.size());
  e.emit(f);
  std::memcpy(f.data() + e.header_len(), payload.data(), payload.size());
  return f;
}

inline std::vector<std::uint8_t> arp_payload(wire::ArpOp op, MacAddr sha, Ipv4Addr spa, MacAddr tha, Ipv4Addr tpa) {
  std::vector<std::uint8_t> v(wire::kArpLen);
  wire::ArpRepr{op, sha, spa, tha, tpa}.emit(v);
  return v;
}

inline std::vector<std::uint8_t> ipv4_datagram(Ipv4Addr src, Ipv4Addr dst, std::uint8_t proto,
                                               const std::vector<std::uint8_t>& payload) {
  wire::Ipv4Repr ip{src, dst, proto, static_cast<std::uint16_t>(payload.size()), 64, 0, 0x1234, true};
  std::vector<std::uint8_t> v(ip.buffer_len());
  ip.emit(v);
  std::memcpy(v.data() + ip.header_len(), payload.data(), payload.size());
  return v;
}

inline std::vector<std::uint8_t> echo_msg(bool request, std::uint16_t id, std::uint16_t seq,
                                          const std::vector<std::uint8_t>& data) {
  wire::IcmpEchoRepr e{request, id, seq, data};
  std::vector<std::uint8_t> v(e.buffer_len());
  e.emit(v);
  return v;
}

// What the stack emitted, in order.
class CollectSink final : public PacketSink {
 public:
  void emit(Packet&& p, TimeNs /*now*/) override { out.push_back(std::move(p)); }
  std::vector<std::vector<std::uint8_t>> take() {
    std::vector<std::vector<std::uint8_t>> r;
    for (auto& p : out) r.push_back(bytes_of(p));
    out.clear();
    return r;
  }
  std::vector<Packet> out;
};

}  // namespace ustack::test
