// ICMP for IPv4 (RFC 792; RFC 1122 §3.2.2 for host requirements, RFC 1812
// §4.3.2.3 for how much of the offending datagram an error quotes).
//
// Every ICMP message has type(1) code(1) checksum(2) rest-of-header(4) and a
// body. Echo puts identifier(2) sequence(2) in the rest-of-header; errors put
// an unused/MTU word there and quote the offending IP header plus at least 8
// bytes of its payload in the body.
#pragma once

#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "wire/checksum.hpp"

namespace ustack::wire {

inline constexpr std::size_t kIcmpHeaderLen = 8;

namespace icmp_type {
inline constexpr std::uint8_t kEchoReply = 0;
inline constexpr std::uint8_t kDestUnreachable = 3;
inline constexpr std::uint8_t kRedirect = 5;
inline constexpr std::uint8_t kEchoRequest = 8;
inline constexpr std::uint8_t kTimeExceeded = 11;
inline constexpr std::uint8_t kParameterProblem = 12;
}  // namespace icmp_type

namespace icmp_unreach {
inline constexpr std::uint8_t kNet = 0;
inline constexpr std::uint8_t kHost = 1;
inline constexpr std::uint8_t kProtocol = 2;
inline constexpr std::uint8_t kPort = 3;
inline constexpr std::uint8_t kFragNeeded = 4;
}  // namespace icmp_unreach

class IcmpPacket {
 public:
  static constexpr std::size_t kTypeOff = 0;
  static constexpr std::size_t kCodeOff = 1;
  static constexpr std::size_t kChecksumOff = 2;
  static constexpr std::size_t kIdentOff = 4;  // echo
  static constexpr std::size_t kSeqOff = 6;    // echo
  static constexpr std::size_t kRestOff = 4;

  IcmpPacket() = default;

  // The checksum covers the whole ICMP message (header and body).
  static Result<IcmpPacket> parse(Bytes b, bool verify_checksum = true) {
    if (b.size() < kIcmpHeaderLen) return ParseError::truncated;
    if (verify_checksum && !checksum_ok(b)) return ParseError::bad_checksum;
    IcmpPacket p;
    p.b_ = b;
    return p;
  }

  std::uint8_t type() const { return b_[kTypeOff]; }
  std::uint8_t code() const { return b_[kCodeOff]; }
  std::uint16_t checksum() const { return load_be16(b_, kChecksumOff); }
  std::uint16_t echo_ident() const { return load_be16(b_, kIdentOff); }
  std::uint16_t echo_seq() const { return load_be16(b_, kSeqOff); }
  std::uint32_t rest_of_header() const { return load_be32(b_, kRestOff); }
  bool is_error() const {
    const auto t = type();
    return t == icmp_type::kDestUnreachable || t == icmp_type::kTimeExceeded ||
           t == icmp_type::kParameterProblem || t == icmp_type::kRedirect || t == 4 /* source quench */;
  }
  Bytes body() const { return b_.subspan(kIcmpHeaderLen); }
  Bytes bytes() const { return b_; }

 private:
  Bytes b_;
};

// Echo request or reply.
struct IcmpEchoRepr {
  bool request = true;
  std::uint16_t ident = 0;
  std::uint16_t seq = 0;
  Bytes data;

  std::size_t buffer_len() const { return kIcmpHeaderLen + data.size(); }

  // Writes header + data into `out` (buffer_len() bytes) with the checksum.
  void emit(MutBytes out) const {
    store8(out, IcmpPacket::kTypeOff, request ? icmp_type::kEchoRequest : icmp_type::kEchoReply);
    store8(out, IcmpPacket::kCodeOff, 0);
    store_be16(out, IcmpPacket::kChecksumOff, 0);
    store_be16(out, IcmpPacket::kIdentOff, ident);
    store_be16(out, IcmpPacket::kSeqOff, seq);
    for (std::size_t i = 0; i < data.size(); ++i) out[kIcmpHeaderLen + i] = data[i];
    store_be16(out, IcmpPacket::kChecksumOff, internet_checksum(Bytes{out.data(), buffer_len()}));
  }
};

// An error message quoting the offending datagram. RFC 1812 allows quoting as
// much as fits in 576 bytes; we quote the header + 8 bytes as RFC 792 asks,
// up to kMaxQuote, which is what the Linux kernel's parsers need.
struct IcmpErrorRepr {
  static constexpr std::size_t kMaxQuote = 548;  // 576 - 20 (IP) - 8 (ICMP)

  std::uint8_t type = icmp_type::kDestUnreachable;
  std::uint8_t code = 0;
  std::uint32_t rest = 0;  // unused, or next-hop MTU for frag-needed
  Bytes quoted;            // offending IP header + leading payload, already cut

  // How much of `offending` (a whole IP datagram) to quote.
  static Bytes quote_of(Bytes offending, std::size_t ip_header_len) {
    std::size_t n = ip_header_len + 8;
    if (n > kMaxQuote) n = kMaxQuote;
    if (n > offending.size()) n = offending.size();
    return offending.first(n);
  }

  std::size_t buffer_len() const { return kIcmpHeaderLen + quoted.size(); }

  void emit(MutBytes out) const {
    store8(out, IcmpPacket::kTypeOff, type);
    store8(out, IcmpPacket::kCodeOff, code);
    store_be16(out, IcmpPacket::kChecksumOff, 0);
    store_be32(out, IcmpPacket::kRestOff, rest);
    for (std::size_t i = 0; i < quoted.size(); ++i) out[kIcmpHeaderLen + i] = quoted[i];
    store_be16(out, IcmpPacket::kChecksumOff, internet_checksum(Bytes{out.data(), buffer_len()}));
  }
};

}  // namespace ustack::wire
