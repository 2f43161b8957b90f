#include "wire/udp.hpp"

namespace ustack::wire {

void UdpRepr::emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Bytes payload, bool compute_checksum) const {
  assert(payload.size() <= kUdpMaxPayloadLen);
  const auto len = static_cast<std::uint16_t>(kUdpHeaderLen + payload.size());
  store_be16(out, UdpDatagram::kSrcPortOff, src_port);
  store_be16(out, UdpDatagram::kDstPortOff, dst_port);
  store_be16(out, UdpDatagram::kLengthOff, len);
  store_be16(out, UdpDatagram::kChecksumOff, 0);
  const std::uint32_t ph = pseudo_header_sum(src, dst, ipproto::kUdp, len);
  if (!compute_checksum) {
    store_be16(out, UdpDatagram::kChecksumOff, static_cast<std::uint16_t>(~checksum_fold(ph)));
    return;
  }
  // The header's words from their values (its checksum field is zero):
  // reading back the bytes just written would stall on store forwarding.
  const std::uint32_t hdr = std::uint32_t{src_port} + dst_port + len;
  std::uint16_t c = checksum_fold(checksum_add(payload, ph + hdr));
  if (c == 0) c = 0xffff;
  store_be16(out, UdpDatagram::kChecksumOff, c);
}

}  // namespace ustack::wire
