// TCP segments (RFC 9293 §3.1 header format, §3.2 options; RFC 7323 window
// scale and timestamps; RFC 2018 SACK; RFC 3168 §6.1 for ECE/CWR).
//
// Layout: src port(2) dst port(2) seq(4) ack(4) data offset(4 bits)
// reserved(4 bits) flags(8) window(2) checksum(2) urgent pointer(2)
// options(0..40) payload.
//
// TcpSegment::parse() checks, in order: the fixed header is present, the
// buffer is no longer than a TCP length can say (the pseudo-header carries it
// in 16 bits), the data offset is at least 5 and fits, and the checksum over
// the pseudo-header and the whole segment, unless the caller says the NIC has
// verified it. The buffer is the whole segment: the caller has already cut it
// to the IP total length. Options are not looked at by parse(); they are
// parsed on demand by TcpOptions::parse(), so a segment with malformed
// options is still a valid view (see TcpOptions for the policy).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/seq.hpp"
#include "ustack/addr.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"

namespace ustack::wire {

inline constexpr std::size_t kTcpMinHeaderLen = 20;
inline constexpr std::size_t kTcpMaxHeaderLen = 60;
inline constexpr std::size_t kTcpMaxOptionsLen = kTcpMaxHeaderLen - kTcpMinHeaderLen;
// The pseudo-header's TCP length is 16 bits (RFC 9293 §3.1).
inline constexpr std::size_t kTcpMaxSegmentLen = 0xffff;

// Option kinds and their fixed lengths (IANA "TCP Option Kind Numbers").
namespace tcp_opt {
inline constexpr std::uint8_t kEol = 0;
inline constexpr std::uint8_t kNop = 1;
inline constexpr std::uint8_t kMss = 2;
inline constexpr std::uint8_t kWindowScale = 3;
inline constexpr std::uint8_t kSackPermitted = 4;
inline constexpr std::uint8_t kSack = 5;
inline constexpr std::uint8_t kTimestamps = 8;

inline constexpr std::uint8_t kMssLen = 4;
inline constexpr std::uint8_t kWindowScaleLen = 3;
inline constexpr std::uint8_t kSackPermittedLen = 2;
inline constexpr std::uint8_t kSackBaseLen = 2;   // kind, length
inline constexpr std::uint8_t kSackBlockLen = 8;  // left, right edge
inline constexpr std::uint8_t kTimestampsLen = 10;
}  // namespace tcp_opt

// RFC 7323 §2.3: a shift count above 14 is used as 14.
inline constexpr std::uint8_t kTcpMaxWindowScale = 14;
// RFC 2018 §3: at most 4 blocks fit in 40 bytes of options.
inline constexpr std::size_t kTcpMaxSackBlocks = 4;

// The eight flag bits of byte 13. The four bits before them (reserved in
// RFC 9293, formerly NS) are not flags here; TcpSegment::reserved() shows them.
struct TcpFlags {
  std::uint8_t bits = 0;

  static constexpr std::uint8_t kFin = 0x01;
  static constexpr std::uint8_t kSyn = 0x02;
  static constexpr std::uint8_t kRst = 0x04;
  static constexpr std::uint8_t kPsh = 0x08;
  static constexpr std::uint8_t kAck = 0x10;
  static constexpr std::uint8_t kUrg = 0x20;
  static constexpr std::uint8_t kEce = 0x40;
  static constexpr std::uint8_t kCwr = 0x80;

  constexpr bool fin() const { return (bits & kFin) != 0; }
  constexpr bool syn() const { return (bits & kSyn) != 0; }
  constexpr bool rst() const { return (bits & kRst) != 0; }
  constexpr bool psh() const { return (bits & kPsh) != 0; }
  constexpr bool ack() const { return (bits & kAck) != 0; }
  constexpr bool urg() const { return (bits & kUrg) != 0; }
  constexpr bool ece() const { return (bits & kEce) != 0; }
  constexpr bool cwr() const { return (bits & kCwr) != 0; }
  // True when every flag of `f` is set.
  constexpr bool has(TcpFlags f) const { return (bits & f.bits) == f.bits; }

  friend constexpr TcpFlags operator|(TcpFlags a, TcpFlags b) {
    return TcpFlags{static_cast<std::uint8_t>(a.bits | b.bits)};
  }
  constexpr bool operator==(const TcpFlags&) const = default;
};

namespace tcp_flag {
inline constexpr TcpFlags kFin{TcpFlags::kFin};
inline constexpr TcpFlags kSyn{TcpFlags::kSyn};
inline constexpr TcpFlags kRst{TcpFlags::kRst};
inline constexpr TcpFlags kPsh{TcpFlags::kPsh};
inline constexpr TcpFlags kAck{TcpFlags::kAck};
inline constexpr TcpFlags kUrg{TcpFlags::kUrg};
inline constexpr TcpFlags kEce{TcpFlags::kEce};
inline constexpr TcpFlags kCwr{TcpFlags::kCwr};
}  // namespace tcp_flag

class TcpSegment {
 public:
  static constexpr std::size_t kSrcPortOff = 0;
  static constexpr std::size_t kDstPortOff = 2;
  static constexpr std::size_t kSeqOff = 4;
  static constexpr std::size_t kAckOff = 8;
  static constexpr std::size_t kDataOffOff = 12;  // data offset << 4 | reserved
  static constexpr std::size_t kFlagsOff = 13;
  static constexpr std::size_t kWindowOff = 14;
  static constexpr std::size_t kChecksumOff = 16;
  static constexpr std::size_t kUrgentOff = 18;
  static constexpr std::size_t kOptionsOff = 20;

  TcpSegment() = default;

  // `src`/`dst` are the IPv4 addresses for the pseudo-header; they are only
  // read when verify_checksum is true (pass false when the NIC reported
  // RTE_MBUF_F_RX_L4_CKSUM_GOOD).
  static Result<TcpSegment> parse(Bytes b, Ipv4Addr src, Ipv4Addr dst, bool verify_checksum = true) {
    if (b.size() < kTcpMinHeaderLen) return ParseError::truncated;
    if (b.size() > kTcpMaxSegmentLen) return ParseError::bad_length;
    const std::size_t hl = static_cast<std::size_t>(b[kDataOffOff] >> 4) * 4;
    if (hl < kTcpMinHeaderLen) return ParseError::bad_header_len;
    if (hl > b.size()) return ParseError::truncated;
    if (verify_checksum) {
      const std::uint32_t ph = pseudo_header_sum(src, dst, ipproto::kTcp, static_cast<std::uint16_t>(b.size()));
      if (checksum_fold(checksum_add(b, ph)) != 0) return ParseError::bad_checksum;
    }
    TcpSegment s;
    s.b_ = b;
    s.hl_ = static_cast<std::uint8_t>(hl);
    return s;
  }

  std::uint16_t src_port() const { return load_be16(b_, kSrcPortOff); }
  std::uint16_t dst_port() const { return load_be16(b_, kDstPortOff); }
  SeqNum seq() const { return SeqNum{load_be32(b_, kSeqOff)}; }
  SeqNum ack() const { return SeqNum{load_be32(b_, kAckOff)}; }
  // In 32-bit words, 5..15.
  std::uint8_t data_offset() const { return static_cast<std::uint8_t>(hl_ / 4); }
  std::size_t header_len() const { return hl_; }
  // The 4 bits between data offset and flags; zero from a conforming sender.
  std::uint8_t reserved() const { return static_cast<std::uint8_t>(b_[kDataOffOff] & 0x0f); }
  TcpFlags flags() const { return TcpFlags{b_[kFlagsOff]}; }
  // Unscaled, as on the wire.
  std::uint16_t window() const { return load_be16(b_, kWindowOff); }
  std::uint16_t checksum() const { return load_be16(b_, kChecksumOff); }
  std::uint16_t urgent_ptr() const { return load_be16(b_, kUrgentOff); }
  Bytes options() const { return b_.subspan(kOptionsOff, hl_ - kTcpMinHeaderLen); }
  Bytes header() const { return b_.first(hl_); }
  Bytes payload() const { return b_.subspan(hl_); }
  Bytes bytes() const { return b_; }
  // SEG.LEN (RFC 9293 §3.4): payload octets plus one each for SYN and FIN.
  std::size_t seg_len() const {
    const TcpFlags f = flags();
    return payload().size() + (f.syn() ? 1 : 0) + (f.fin() ? 1 : 0);
  }

 private:
  Bytes b_;
  std::uint8_t hl_ = kTcpMinHeaderLen;
};

struct SackBlock {
  SeqNum left;   // first sequence number of the block
  SeqNum right;  // sequence number just after the block
  constexpr bool operator==(const SackBlock&) const = default;
};

struct TcpTimestamps {
  std::uint32_t tsval = 0;
  std::uint32_t tsecr = 0;
  constexpr bool operator==(const TcpTimestamps&) const = default;
};

// The options ustack understands, as values.
//
// Parsing walks the option list until EOL or its end. NOP is skipped; a kind
// we do not know is skipped by its length (RFC 9293 §3.1). If the same
// option appears twice, the last one wins. Which options are meaningful on
// which segments (MSS, window scale and SACK-permitted only on a SYN) is the
// TCP layer's business, not the parser's: it reports what is there.
//
// Malformed lists: a length below 2, a length running past the options area,
// a known kind with the wrong length (MSS not 4, window scale not 3,
// SACK-permitted not 2, timestamps not 10, SACK not 2 + 8n with n in 1..4),
// or an option other than EOL/NOP with no room for its length byte. The
// choice: the whole list is refused with ParseError::malformed and no part of
// it is returned. Half-applying options (keeping an MSS but losing the window
// scale after a bad length, say) would silently desynchronise the two ends,
// so it is not offered. The segment view stays valid and the caller decides:
// RFC 9293 §3.1 asks only that an illegal length (e.g. zero) be handled. The
// intended policy for ustack's TCP is to drop the segment and count the
// reason, never answering with a RST (which a blind attacker could provoke).
// A caller that prefers what Linux and FreeBSD do (use the options before
// the bad one, keep the segment) can at most treat the error as "no options".
struct TcpOptions {
  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> wscale;  // 0..14 after parse
  bool wscale_clamped = false;         // the peer sent more than 14
  bool sack_permitted = false;
  std::array<SackBlock, kTcpMaxSackBlocks> sack_blocks{};  // unused ones stay zero
  std::uint8_t sack_count = 0;
  std::optional<TcpTimestamps> timestamps;

  std::span<const SackBlock> sacks() const {
    return std::span<const SackBlock>{sack_blocks}.first(sack_count < kTcpMaxSackBlocks ? sack_count
                                                                                       : kTcpMaxSackBlocks);
  }

  // `options` is TcpSegment::options(): the bytes between the fixed header
  // and the data offset. Never reads outside it.
  static Result<TcpOptions> parse(Bytes options);

  bool operator==(const TcpOptions&) const = default;
};

// The value form of a header: what to emit in front of a payload.
//
// Options are laid out the way Linux does (tcp_options_write()), each group
// already a multiple of 4 bytes so no trailing padding is needed:
//   MSS                      02 04 mm mm
//   SACK-permitted + TS      04 02 08 0a tsval tsecr     (SYN with both)
//   TS alone                 01 01 08 0a tsval tsecr
//   SACK-permitted alone     01 01 04 02
//   window scale             01 03 03 ws
//   SACK blocks              01 01 05 len left right ...
// A Linux SYN is therefore MSS, SACK-permitted, timestamps, NOP, window
// scale: 20 bytes. Everything but SACK blocks takes at most 20 bytes, so only
// SACK blocks can overflow the 40-byte options area: emit() writes as many of
// them as fit, in order, and drops the rest, as Linux does. RFC 2018 §4 puts
// the most recent block first, so the dropped ones are the least useful.
// sack_blocks_emitted() says how many made it. A window scale above 14 is
// written as 14 (RFC 7323 §2.3: a sender must not send more).
struct TcpRepr {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  SeqNum seq;
  SeqNum ack;
  TcpFlags flags;
  std::uint16_t window = 0;
  std::uint16_t urgent_ptr = 0;
  TcpOptions options;

  // The fields of a parsed segment, with its parsed options.
  static TcpRepr from(const TcpSegment& s, const TcpOptions& o) {
    return TcpRepr{s.src_port(), s.dst_port(), s.seq(), s.ack(), s.flags(), s.window(), s.urgent_ptr(), o};
  }

  std::size_t sack_blocks_emitted() const;
  std::size_t options_len() const;  // a multiple of 4, at most 40
  std::size_t header_len() const { return kTcpMinHeaderLen + options_len(); }

  // Writes header_len() bytes into `out` (which must be that long). The
  // payload is not copied: it is only summed, and its length counts in the
  // pseudo-header; the caller puts it after the header.
  //
  // With compute_checksum false the checksum field gets the folded,
  // uncomplemented pseudo-header sum (addresses, protocol, TCP length), which
  // is what DPDK's TX L4 offload (RTE_MBUF_F_TX_TCP_CKSUM) expects there and
  // what rte_ipv4_phdr_cksum() returns for a non-TSO packet; the NIC then
  // adds the header and payload and stores the complement. For TSO the
  // pseudo-header length must be 0 instead, which this does not do.
  void emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Bytes payload, bool compute_checksum = true) const;
  // The same for a payload that is not contiguous (an mbuf chain): its
  // length, and its unfolded sum (checksum_add, chained at even offsets),
  // or nullopt to leave the checksum to the NIC as above.
  void emit_split(MutBytes out, Ipv4Addr src, Ipv4Addr dst, std::uint16_t payload_len,
                  std::optional<std::uint32_t> payload_sum) const;

  bool operator==(const TcpRepr&) const = default;
};

}  // namespace ustack::wire
