// libFuzzer target: ArpPacket::parse and ArpRepr::emit.
//
// Invariants:
//  - fewer than 28 bytes is always `truncated`; otherwise a refusal is
//    `unsupported` or `malformed`, never anything else;
//  - an accepted packet is Ethernet/IPv4 ARP with opcode 1 or 2, and its
//    value re-emits to exactly its first 28 bytes (everything in an
//    accepted ARP packet is either fixed or carried by the value), so the
//    round trip is byte-identical; trailing bytes (link padding) are ignored.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/bytes.hpp"
#include "wire/arp.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Bytes in{data, size};
  const auto p = ArpPacket::parse(in);
  if (!p) {
    if (size < kArpLen) {
      require(p.error() == ParseError::truncated);
    } else {
      require(p.error() == ParseError::unsupported || p.error() == ParseError::malformed);
    }
    return 0;
  }
  require(size >= kArpLen);
  require(p->op() == ArpOp::request || p->op() == ArpOp::reply);
  require(p->sender_ip().v == load_be32(in, ArpPacket::kSpaOff));
  require(p->target_ip().v == load_be32(in, ArpPacket::kTpaOff));
  for (std::size_t i = 0; i < 6; ++i) {
    require(p->sender_mac().b[i] == data[ArpPacket::kShaOff + i]);
    require(p->target_mac().b[i] == data[ArpPacket::kThaOff + i]);
  }

  const ArpRepr r = ArpRepr::from(*p);
  std::uint8_t out[kArpLen];
  std::memset(out, 0xa5, sizeof out);
  r.emit(MutBytes{out, sizeof out});
  require(std::memcmp(out, data, kArpLen) == 0);
  const auto again = ArpPacket::parse(Bytes{out, sizeof out});
  require(again.ok());
  require(ArpRepr::from(*again) == r);
  return 0;
}
