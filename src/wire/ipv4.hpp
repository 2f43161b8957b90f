// IPv4 headers (RFC 791; RFC 1122 §3.2.1 for what a host must check).
//
// parse() checks, in order: the fixed header is present, version is 4, IHL is
// at least 5 and fits, total length covers the header and fits the buffer
// (link-layer padding after total length is allowed and cut off), and the
// header checksum, unless the caller says the NIC has verified it already.
// Options are skipped (never interpreted): payload() starts after IHL*4;
// has_router_alert() looks for the one option ustack sends (RFC 2113).
#pragma once

#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ustack/addr.hpp"
#include "wire/checksum.hpp"

namespace ustack::wire {

inline constexpr std::size_t kIpv4MinHeaderLen = 20;
inline constexpr std::size_t kIpv4MaxHeaderLen = 60;

// RFC 2113 §2.1: type 148 (copied, class 0, number 20), length 4, value 0
// ("routers shall examine packet").
inline constexpr std::uint8_t kIpv4OptEol = 0;
inline constexpr std::uint8_t kIpv4OptNop = 1;
inline constexpr std::uint8_t kIpv4OptRouterAlert = 0x94;
inline constexpr std::size_t kIpv4RouterAlertLen = 4;

namespace ipproto {
inline constexpr std::uint8_t kIcmp = 1;
inline constexpr std::uint8_t kIgmp = 2;
inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
}  // namespace ipproto

class Ipv4Packet {
 public:
  static constexpr std::size_t kVerIhlOff = 0;
  static constexpr std::size_t kTosOff = 1;
  static constexpr std::size_t kTotalLenOff = 2;
  static constexpr std::size_t kIdOff = 4;
  static constexpr std::size_t kFlagsFragOff = 6;
  static constexpr std::size_t kTtlOff = 8;
  static constexpr std::size_t kProtoOff = 9;
  static constexpr std::size_t kChecksumOff = 10;
  static constexpr std::size_t kSrcOff = 12;
  static constexpr std::size_t kDstOff = 16;

  static constexpr std::uint16_t kFlagDf = 0x4000;
  static constexpr std::uint16_t kFlagMf = 0x2000;
  static constexpr std::uint16_t kFragOffsetMask = 0x1fff;

  Ipv4Packet() = default;

  static Result<Ipv4Packet> parse(Bytes b, bool verify_checksum = true) {
    if (b.size() < kIpv4MinHeaderLen) return ParseError::truncated;
    if ((b[kVerIhlOff] >> 4) != 4) return ParseError::bad_version;
    const std::size_t ihl = static_cast<std::size_t>(b[kVerIhlOff] & 0x0f) * 4;
    if (ihl < kIpv4MinHeaderLen) return ParseError::bad_header_len;
    if (ihl > b.size()) return ParseError::truncated;
    const std::size_t total = load_be16(b, kTotalLenOff);
    if (total < ihl) return ParseError::bad_length;
    if (total > b.size()) return ParseError::truncated;
    if (verify_checksum && !checksum_ok(b.first(ihl))) return ParseError::bad_checksum;
    Ipv4Packet p;
    p.b_ = b.first(total);
    p.ihl_ = static_cast<std::uint8_t>(ihl);
    return p;
  }

  std::size_t header_len() const { return ihl_; }
  std::size_t total_len() const { return b_.size(); }
  std::uint8_t tos() const { return b_[kTosOff]; }
  std::uint16_t ident() const { return load_be16(b_, kIdOff); }
  bool dont_fragment() const { return (load_be16(b_, kFlagsFragOff) & kFlagDf) != 0; }
  bool more_fragments() const { return (load_be16(b_, kFlagsFragOff) & kFlagMf) != 0; }
  // Fragment offset in bytes.
  std::size_t frag_offset() const { return static_cast<std::size_t>(load_be16(b_, kFlagsFragOff) & kFragOffsetMask) * 8; }
  bool is_fragment() const { return more_fragments() || frag_offset() != 0; }
  std::uint8_t ttl() const { return b_[kTtlOff]; }
  std::uint8_t protocol() const { return b_[kProtoOff]; }
  std::uint16_t checksum() const { return load_be16(b_, kChecksumOff); }
  Ipv4Addr src() const { return Ipv4Addr{load_be32(b_, kSrcOff)}; }
  Ipv4Addr dst() const { return Ipv4Addr{load_be32(b_, kDstOff)}; }
  Bytes options() const { return b_.subspan(kIpv4MinHeaderLen, ihl_ - kIpv4MinHeaderLen); }
  // True when the options hold a well-formed Router Alert (94 04 00 00).
  // Walks the list by RFC 791's rules (EOL ends it, NOP is one byte, every
  // other option has a length byte); a malformed list stops the walk.
  bool has_router_alert() const {
    const Bytes o = options();
    std::size_t i = 0;
    while (i < o.size()) {
      const std::uint8_t t = o[i];
      if (t == kIpv4OptEol) return false;
      if (t == kIpv4OptNop) {
        ++i;
        continue;
      }
      if (o.size() - i < 2) return false;
      const std::size_t len = o[i + 1];
      if (len < 2 || len > o.size() - i) return false;
      if (t == kIpv4OptRouterAlert && len == kIpv4RouterAlertLen && load_be16(o, i + 2) == 0) return true;
      i += len;
    }
    return false;
  }
  Bytes header() const { return b_.first(ihl_); }
  Bytes payload() const { return b_.subspan(ihl_); }
  Bytes bytes() const { return b_; }

 private:
  Bytes b_;
  std::uint8_t ihl_ = kIpv4MinHeaderLen;
};

// The value form of a header. The only option it can carry is the Router
// Alert, which IGMP requires on every message (RFC 3376 §4, RFC 2236 §2);
// ustack sends no other option. from() does not carry options over.
struct Ipv4Repr {
  Ipv4Addr src;
  Ipv4Addr dst;
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t ident = 0;
  bool dont_fragment = true;
  bool router_alert = false;  // appends 94 04 00 00: IHL 6

  constexpr std::size_t header_len() const { return kIpv4MinHeaderLen + (router_alert ? kIpv4RouterAlertLen : 0); }
  std::size_t buffer_len() const { return header_len() + payload_len; }

  static Ipv4Repr from(const Ipv4Packet& p) {
    return Ipv4Repr{p.src(), p.dst(), p.protocol(),
                    static_cast<std::uint16_t>(p.total_len() - p.header_len()),
                    p.ttl(), p.tos(), p.ident(), p.dont_fragment(), false};
  }

  // Writes the header_len()-byte header. With compute_checksum false the
  // checksum field is left zero for the NIC (RTE_MBUF_F_TX_IP_CKSUM) to fill.
  void emit(MutBytes out, bool compute_checksum = true) const {
    store8(out, Ipv4Packet::kVerIhlOff, static_cast<std::uint8_t>(0x40 | (header_len() / 4)));
    store8(out, Ipv4Packet::kTosOff, tos);
    store_be16(out, Ipv4Packet::kTotalLenOff, static_cast<std::uint16_t>(header_len() + payload_len));
    store_be16(out, Ipv4Packet::kIdOff, ident);
    store_be16(out, Ipv4Packet::kFlagsFragOff, dont_fragment ? Ipv4Packet::kFlagDf : 0);
    store8(out, Ipv4Packet::kTtlOff, ttl);
    store8(out, Ipv4Packet::kProtoOff, protocol);
    store_be16(out, Ipv4Packet::kChecksumOff, 0);
    store_be32(out, Ipv4Packet::kSrcOff, src.v);
    store_be32(out, Ipv4Packet::kDstOff, dst.v);
    if (router_alert) {
      store8(out, kIpv4MinHeaderLen, kIpv4OptRouterAlert);
      store8(out, kIpv4MinHeaderLen + 1, kIpv4RouterAlertLen);
      store_be16(out, kIpv4MinHeaderLen + 2, 0);
    }
    if (compute_checksum) {
      // Summed from the values, not from the bytes just written: reading
      // them back as words would stall on store forwarding.
      const auto hl = static_cast<std::uint32_t>(header_len());
      std::uint32_t sum = ((0x40u | hl / 4) << 8 | tos) + hl + payload_len + ident + (dont_fragment ? Ipv4Packet::kFlagDf : 0u) +
                          (std::uint32_t{ttl} << 8 | protocol) + (src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) +
                          (dst.v & 0xffff);
      if (router_alert) sum += std::uint32_t{kIpv4OptRouterAlert} << 8 | static_cast<std::uint32_t>(kIpv4RouterAlertLen);
      store_be16(out, Ipv4Packet::kChecksumOff, checksum_fold(sum));
    }
  }
  bool operator==(const Ipv4Repr&) const = default;
};

}  // namespace ustack::wire
