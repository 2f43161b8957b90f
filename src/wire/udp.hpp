// UDP datagrams (RFC 768; RFC 1122 §4.1.3 for what a host must check; RFC
// 1071 and RFC 1624 for the checksum arithmetic).
//
// Layout: src port(2) dst port(2) length(2) checksum(2) payload. The length
// counts header and payload; the checksum covers the pseudo-header (source,
// destination, zero, protocol 17, UDP length), the header and the payload.
//
// UdpDatagram::parse() checks, in order: the 8-byte header is present
// (`truncated`), the length field is at least 8 and no more than the buffer
// (`bad_length`), and the checksum (`bad_checksum`) unless the field is zero
// (RFC 768: "all zero ... means that the transmitter generated no checksum";
// RFC 1122 §4.1.3.4 lets a receiver accept those, and we do) or the caller
// says the NIC has verified it. The buffer may be longer than the length
// field says (the IP payload can carry trailing bytes a sender put there); the
// view is cut to the length, and the checksum is over exactly those bytes.
#pragma once

#include <cassert>
#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ustack/addr.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"

namespace ustack::wire {

inline constexpr std::size_t kUdpHeaderLen = 8;
// The length field is 16 bits and counts the header.
inline constexpr std::size_t kUdpMaxPayloadLen = 0xffff - kUdpHeaderLen;

class UdpDatagram {
 public:
  static constexpr std::size_t kSrcPortOff = 0;
  static constexpr std::size_t kDstPortOff = 2;
  static constexpr std::size_t kLengthOff = 4;
  static constexpr std::size_t kChecksumOff = 6;

  UdpDatagram() = default;

  // `b` is the IP payload. `src`/`dst` are the IPv4 addresses for the
  // pseudo-header; they are only read when verify_checksum is true (pass
  // false when the NIC reported RTE_MBUF_F_RX_L4_CKSUM_GOOD).
  static Result<UdpDatagram> parse(Bytes b, Ipv4Addr src, Ipv4Addr dst, bool verify_checksum = true) {
    if (b.size() < kUdpHeaderLen) return ParseError::truncated;
    const std::size_t len = load_be16(b, kLengthOff);
    if (len < kUdpHeaderLen || len > b.size()) return ParseError::bad_length;
    b = b.first(len);
    // A zero field means "no checksum". A computed checksum of zero is sent
    // as 0xffff (RFC 768), which verifies like any other value.
    if (verify_checksum && load_be16(b, kChecksumOff) != 0) {
      const std::uint32_t ph = pseudo_header_sum(src, dst, ipproto::kUdp, static_cast<std::uint16_t>(len));
      if (checksum_fold(checksum_add(b, ph)) != 0) return ParseError::bad_checksum;
    }
    UdpDatagram d;
    d.b_ = b;
    return d;
  }

  std::uint16_t src_port() const { return load_be16(b_, kSrcPortOff); }
  std::uint16_t dst_port() const { return load_be16(b_, kDstPortOff); }
  // The length field, which parse() made equal to bytes().size().
  std::uint16_t length() const { return load_be16(b_, kLengthOff); }
  std::uint16_t checksum() const { return load_be16(b_, kChecksumOff); }
  bool has_checksum() const { return checksum() != 0; }
  Bytes header() const { return b_.first(kUdpHeaderLen); }
  Bytes payload() const { return b_.subspan(kUdpHeaderLen); }
  Bytes bytes() const { return b_; }

 private:
  Bytes b_;
};

// The value form of a header: what to emit in front of a payload.
struct UdpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;

  static UdpRepr from(const UdpDatagram& d) { return UdpRepr{d.src_port(), d.dst_port()}; }

  static constexpr std::size_t header_len() { return kUdpHeaderLen; }
  static constexpr std::size_t buffer_len(std::size_t payload_len) { return kUdpHeaderLen + payload_len; }

  // Writes the 8-byte header into `out` (at least 8 bytes). The payload is
  // not copied: it is only summed, and its length goes into the length field
  // and the pseudo-header; the caller puts it after the header. The payload
  // must be at most kUdpMaxPayloadLen bytes.
  //
  // With compute_checksum true the checksum is computed in software, and a
  // result of zero is sent as 0xffff (RFC 768: zero would mean "none").
  //
  // With compute_checksum false the field gets the folded, uncomplemented
  // pseudo-header sum, which is what DPDK's TX L4 offload
  // (RTE_MBUF_F_TX_UDP_CKSUM) expects there and what rte_ipv4_phdr_cksum()
  // returns; the NIC adds header and payload and stores the complement (and
  // must itself send a zero result as 0xffff, RFC 768 applying to it too).
  void emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Bytes payload, bool compute_checksum = true) const;

  bool operator==(const UdpRepr&) const = default;
};

}  // namespace ustack::wire
