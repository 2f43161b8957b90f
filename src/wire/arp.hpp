// ARP for IPv4 over Ethernet (RFC 826, RFC 5227 for probes/announcements).
//
// Layout (28 bytes): htype(2)=1 ptype(2)=0x0800 hlen(1)=6 plen(1)=4 oper(2)
// sha(6) spa(4) tha(6) tpa(4). Other hardware/protocol types are
// well-formed ARP we do not handle: `unsupported`, not `malformed`.
#pragma once

#include <cstdint>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ustack/addr.hpp"
#include "wire/ethernet.hpp"  // load_mac/store_mac: ARP here is ARP over Ethernet

namespace ustack::wire {

inline constexpr std::size_t kArpLen = 28;

enum class ArpOp : std::uint16_t { request = 1, reply = 2 };

class ArpPacket {
 public:
  static constexpr std::size_t kHtypeOff = 0;
  static constexpr std::size_t kPtypeOff = 2;
  static constexpr std::size_t kHlenOff = 4;
  static constexpr std::size_t kPlenOff = 5;
  static constexpr std::size_t kOperOff = 6;
  static constexpr std::size_t kShaOff = 8;
  static constexpr std::size_t kSpaOff = 14;
  static constexpr std::size_t kThaOff = 18;
  static constexpr std::size_t kTpaOff = 24;

  ArpPacket() = default;

  static Result<ArpPacket> parse(Bytes b) {
    if (b.size() < kArpLen) return ParseError::truncated;
    if (load_be16(b, kHtypeOff) != 1 || load_be16(b, kPtypeOff) != 0x0800) return ParseError::unsupported;
    if (b[kHlenOff] != 6 || b[kPlenOff] != 4) return ParseError::malformed;
    const std::uint16_t op = load_be16(b, kOperOff);
    if (op != 1 && op != 2) return ParseError::unsupported;  // RARP/InARP opcodes
    ArpPacket p;
    p.b_ = b.first(kArpLen);
    return p;
  }

  ArpOp op() const { return static_cast<ArpOp>(load_be16(b_, kOperOff)); }
  MacAddr sender_mac() const { return load_mac(b_, kShaOff); }
  Ipv4Addr sender_ip() const { return Ipv4Addr{load_be32(b_, kSpaOff)}; }
  MacAddr target_mac() const { return load_mac(b_, kThaOff); }
  Ipv4Addr target_ip() const { return Ipv4Addr{load_be32(b_, kTpaOff)}; }

 private:
  Bytes b_;
};

struct ArpRepr {
  ArpOp op = ArpOp::request;
  MacAddr sender_mac;
  Ipv4Addr sender_ip;
  MacAddr target_mac;
  Ipv4Addr target_ip;

  static constexpr std::size_t buffer_len() { return kArpLen; }

  static ArpRepr from(const ArpPacket& p) {
    return ArpRepr{p.op(), p.sender_mac(), p.sender_ip(), p.target_mac(), p.target_ip()};
  }

  void emit(MutBytes out) const {
    store_be16(out, ArpPacket::kHtypeOff, 1);
    store_be16(out, ArpPacket::kPtypeOff, 0x0800);
    out[ArpPacket::kHlenOff] = 6;
    out[ArpPacket::kPlenOff] = 4;
    store_be16(out, ArpPacket::kOperOff, static_cast<std::uint16_t>(op));
    store_mac(out, ArpPacket::kShaOff, sender_mac);
    store_mac(out, ArpPacket::kThaOff, target_mac);
    store_be32(out, ArpPacket::kSpaOff, sender_ip.v);
    store_be32(out, ArpPacket::kTpaOff, target_ip.v);
  }
  bool operator==(const ArpRepr&) const = default;
};

}  // namespace ustack::wire
