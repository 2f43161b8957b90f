// libFuzzer target: EthernetFrame::parse and EthernetRepr::emit.
//
// Invariants checked on every input:
//  - parse refuses exactly the frames shorter than their header (14 bytes,
//    18 when the ethertype announces an 802.1Q tag), and only as `truncated`;
//  - an accepted frame's payload is the rest of the buffer, in place;
//  - the value read back re-emits to the same header bytes, and re-parses to
//    the same value with the same payload.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "wire/ethernet.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Bytes in{data, size};
  const bool tagged = size >= kEthHeaderLen && load_be16(in, EthernetFrame::kTypeOff) == ethertype::kVlan;
  const std::size_t need = tagged ? kEthHeaderLen + kVlanTagLen : kEthHeaderLen;

  const auto f = EthernetFrame::parse(in);
  if (!f) {
    require(f.error() == ParseError::truncated);
    require(size < need);
    return 0;
  }
  require(size >= need);
  require(f->has_vlan() == tagged);
  require(f->header_len() == need);
  require(f->payload().data() == data + need);
  require(f->payload().size() == size - need);
  require(f->bytes().size() == size);
  require(f->vlan_tci().has_value() == tagged);
  require(f->vlan_id().has_value() == tagged);
  if (tagged) {
    require(*f->vlan_tci() == load_be16(in, EthernetFrame::kTciOff));
    require(*f->vlan_id() == (*f->vlan_tci() & 0x0fff));
    require(f->ethertype() == load_be16(in, EthernetFrame::kInnerTypeOff));
  } else {
    require(f->ethertype() == load_be16(in, EthernetFrame::kTypeOff));
  }
  for (std::size_t i = 0; i < 6; ++i) {
    require(f->dst().b[i] == data[i]);
    require(f->src().b[i] == data[6 + i]);
  }

  // Value round trip: header re-emitted byte for byte, payload copied.
  const EthernetRepr r = EthernetRepr::from(*f);
  require(r.header_len() == need);
  std::vector<std::uint8_t> out(r.header_len() + f->payload().size());
  r.emit(MutBytes{out});
  require(std::memcmp(out.data(), data, r.header_len()) == 0);
  if (!f->payload().empty())
    std::memcpy(out.data() + r.header_len(), f->payload().data(), f->payload().size());
  const auto again = EthernetFrame::parse(Bytes{out});
  require(again.ok());
  require(EthernetRepr::from(*again) == r);
  require(again->payload().size() == f->payload().size());
  require(std::memcmp(out.data(), data, size) == 0);
  return 0;
}
