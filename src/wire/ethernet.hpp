// Ethernet II frames with an optional 802.1Q tag (IEEE 802.3, 802.1Q).
//
// Layout: dst(6) src(6) [0x8100 TCI(2)] ethertype(2) payload. The FCS is
// stripped by every PMD we use and is never part of the buffer.
#pragma once

#include <cstdint>
#include <optional>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "ustack/addr.hpp"

namespace ustack::wire {

namespace ethertype {
inline constexpr std::uint16_t kIpv4 = 0x0800;
inline constexpr std::uint16_t kArp = 0x0806;
inline constexpr std::uint16_t kVlan = 0x8100;   // 802.1Q
inline constexpr std::uint16_t kQinQ = 0x88a8;   // 802.1ad, not handled
inline constexpr std::uint16_t kIpv6 = 0x86dd;
}  // namespace ethertype

inline constexpr std::size_t kEthHeaderLen = 14;

// A MAC address at `off` (the caller has checked 6 bytes are there).
inline MacAddr load_mac(Bytes b, std::size_t off) {
  MacAddr m;
  for (std::size_t i = 0; i < 6; ++i) m.b[i] = b[off + i];
  return m;
}
inline void store_mac(MutBytes b, std::size_t off, const MacAddr& m) {
  for (std::size_t i = 0; i < 6; ++i) b[off + i] = m.b[i];
}
inline constexpr std::size_t kVlanTagLen = 4;

// A checked view of a received frame. parse() verifies that every header byte
// exists before any accessor can read it.
class EthernetFrame {
 public:
  static constexpr std::size_t kDstOff = 0;
  static constexpr std::size_t kSrcOff = 6;
  static constexpr std::size_t kTypeOff = 12;
  static constexpr std::size_t kTciOff = 14;
  static constexpr std::size_t kInnerTypeOff = 16;

  EthernetFrame() = default;

  static Result<EthernetFrame> parse(Bytes b) {
    if (b.size() < kEthHeaderLen) return ParseError::truncated;
    EthernetFrame f;
    f.b_ = b;
    if (load_be16(b, kTypeOff) == ethertype::kVlan) {
      if (b.size() < kEthHeaderLen + kVlanTagLen) return ParseError::truncated;
      f.hdr_len_ = kEthHeaderLen + kVlanTagLen;
    } else {
      f.hdr_len_ = kEthHeaderLen;
    }
    return f;
  }

  MacAddr dst() const { return load_mac(b_, kDstOff); }
  MacAddr src() const { return load_mac(b_, kSrcOff); }
  bool has_vlan() const { return hdr_len_ != kEthHeaderLen; }
  // Tag control information (PCP, DEI, VID); nullopt when untagged.
  std::optional<std::uint16_t> vlan_tci() const {
    if (!has_vlan()) return std::nullopt;
    return load_be16(b_, kTciOff);
  }
  std::optional<std::uint16_t> vlan_id() const {
    if (!has_vlan()) return std::nullopt;
    return static_cast<std::uint16_t>(load_be16(b_, kTciOff) & 0x0fff);
  }
  // The ethertype of the payload (the inner one when tagged).
  std::uint16_t ethertype() const { return load_be16(b_, has_vlan() ? kInnerTypeOff : kTypeOff); }
  std::size_t header_len() const { return hdr_len_; }
  Bytes payload() const { return b_.subspan(hdr_len_); }
  Bytes bytes() const { return b_; }

 private:
  Bytes b_;
  std::size_t hdr_len_ = kEthHeaderLen;
};

// The value form: what to write in front of a payload.
struct EthernetRepr {
  MacAddr dst;
  MacAddr src;
  std::uint16_t ethertype = 0;
  std::optional<std::uint16_t> vlan_tci;  // tag added when set

  std::size_t header_len() const { return vlan_tci ? kEthHeaderLen + kVlanTagLen : kEthHeaderLen; }

  static EthernetRepr from(const EthernetFrame& f) {
    return EthernetRepr{f.dst(), f.src(), f.ethertype(), f.vlan_tci()};
  }

  // Writes header_len() bytes at the front of `out` (which must be that long).
  void emit(MutBytes out) const {
    store_mac(out, EthernetFrame::kDstOff, dst);
    store_mac(out, EthernetFrame::kSrcOff, src);
    if (vlan_tci) {
      store_be16(out, EthernetFrame::kTypeOff, ethertype::kVlan);
      store_be16(out, EthernetFrame::kTciOff, *vlan_tci);
      store_be16(out, EthernetFrame::kInnerTypeOff, ethertype);
    } else {
      store_be16(out, EthernetFrame::kTypeOff, ethertype);
    }
  }
  bool operator==(const EthernetRepr&) const = default;
};

// RFC 1112 §6.4: 01:00:5e + the low 23 bits of the group address.
constexpr MacAddr multicast_mac(Ipv4Addr group) {
  return MacAddr{{0x01, 0x00, 0x5e, static_cast<std::uint8_t>((group.v >> 16) & 0x7f),
                  static_cast<std::uint8_t>(group.v >> 8), static_cast<std::uint8_t>(group.v)}};
}

}  // namespace ustack::wire
