// IGMP messages: IGMPv1/v2 (RFC 1112 appendix I, RFC 2236 §2) and IGMPv3
// (RFC 3376 §4). Read with: RFC 3376 §4.1 (query, Max Resp Code and QQIC
// floating-point encoding §4.1.1/§4.1.7), §4.2 (report, group records,
// §4.2.12 record types), §7.1 (telling query versions apart); RFC 2236 §2.5
// (longer messages); RFC 2113 (Router Alert, written by Ipv4Repr).
//
// Every IGMP message starts type(1) code(1) checksum(2); the checksum covers
// the whole IP payload, including bytes after the fields a version defines
// (RFC 2236 §2.5, RFC 3376 §4.1.10), so it is verified over all of it.
//
//   v1/v2 (8 bytes):  type code checksum group(4)
//   v3 query:         type=0x11 max-resp-code checksum group(4)
//                     resv(4 bits) S(1) QRV(3) QQIC(1) N(2) sources(4N) [extra]
//   v3 report:        type=0x22 reserved(1) checksum reserved(2) M(2) records
//   group record:     type(1) aux-words(1) N(2) group(4) sources(4N) aux(4*aux-words)
//
// The parsers validate every length before returning, so the accessors and
// the record iterator read without further checks.
#pragma once

#include <cstdint>
#include <iterator>
#include <span>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "ustack/addr.hpp"
#include "wire/checksum.hpp"

namespace ustack::wire {

inline constexpr std::size_t kIgmpHeaderLen = 8;        // v1/v2 messages; every message's minimum
inline constexpr std::size_t kIgmpV3QueryMinLen = 12;   // RFC 3376 §7.1: >= 12 is a v3 query
inline constexpr std::size_t kIgmpV3ReportHeaderLen = 8;
inline constexpr std::size_t kIgmpGroupRecordHeaderLen = 8;

namespace igmp_type {
inline constexpr std::uint8_t kMembershipQuery = 0x11;  // every version
inline constexpr std::uint8_t kV1Report = 0x12;
inline constexpr std::uint8_t kV2Report = 0x16;
inline constexpr std::uint8_t kV2Leave = 0x17;
inline constexpr std::uint8_t kV3Report = 0x22;
}  // namespace igmp_type

// RFC 3376 §4.2.12. Current-State records answer queries, Filter-Mode-Change
// and Source-List-Change records announce a change of the interface state.
namespace igmp_record {
inline constexpr std::uint8_t kModeIsInclude = 1;
inline constexpr std::uint8_t kModeIsExclude = 2;
inline constexpr std::uint8_t kChangeToInclude = 3;
inline constexpr std::uint8_t kChangeToExclude = 4;
inline constexpr std::uint8_t kAllowNewSources = 5;
inline constexpr std::uint8_t kBlockOldSources = 6;
}  // namespace igmp_record

namespace igmp_addr {
inline constexpr Ipv4Addr kAllSystems{224, 0, 0, 1};  // general queries; never reported
inline constexpr Ipv4Addr kAllRouters{224, 0, 0, 2};  // IGMPv2 leave
inline constexpr Ipv4Addr kV3Routers{224, 0, 0, 22};  // IGMPv3 reports
}  // namespace igmp_addr

enum class IgmpVersion : std::uint8_t { v1 = 1, v2 = 2, v3 = 3 };

// RFC 3376 §4.1.1 / §4.1.7: below 128 the code is the value; from 128 on it
// is 1|exp(3)|mant(4) meaning (mant | 0x10) << (exp + 3). Max Resp Code is
// in tenths of a second, QQIC in seconds. Range 0..31744.
constexpr std::uint32_t igmp_decode_code(std::uint8_t code) {
  if (code < 128) return code;
  const std::uint32_t exp = (code >> 4) & 0x07u;
  const std::uint32_t mant = code & 0x0fu;
  return (mant | 0x10u) << (exp + 3);
}

// The inverse, rounding down to the nearest representable value (a querier
// asking for a shorter delay is harmless); values above 31744 give 0xff.
constexpr std::uint8_t igmp_encode_code(std::uint32_t value) {
  if (value < 128) return static_cast<std::uint8_t>(value);
  for (std::uint32_t exp = 0; exp < 8; ++exp) {
    const std::uint32_t m = value >> (exp + 3);  // 16..31 for the right exponent
    if (m < 32) return static_cast<std::uint8_t>(0x80u | (exp << 4) | (m - 16));
  }
  return 0xff;
}

// Any IGMP message: the common 4 bytes plus the 4 after them, checksum
// verified over the whole buffer (the IP payload).
class IgmpMessage {
 public:
  static constexpr std::size_t kTypeOff = 0;
  static constexpr std::size_t kCodeOff = 1;  // Max Resp Code in queries, reserved elsewhere
  static constexpr std::size_t kChecksumOff = 2;
  static constexpr std::size_t kGroupOff = 4;  // v1/v2 messages and queries

  IgmpMessage() = default;

  // Errors: truncated (< 8 bytes), bad_checksum.
  static Result<IgmpMessage> parse(Bytes b, bool verify_checksum = true) {
    if (b.size() < kIgmpHeaderLen) return ParseError::truncated;
    if (verify_checksum && !checksum_ok(b)) return ParseError::bad_checksum;
    IgmpMessage m;
    m.b_ = b;
    return m;
  }

  std::uint8_t type() const { return b_[kTypeOff]; }
  std::uint8_t code() const { return b_[kCodeOff]; }
  std::uint16_t checksum() const { return load_be16(b_, kChecksumOff); }
  // The group field of the 8-byte formats (not meaningful in a v3 report).
  Ipv4Addr group() const { return Ipv4Addr{load_be32(b_, kGroupOff)}; }
  Bytes bytes() const { return b_; }

 private:
  Bytes b_;
};

// A Membership Query of any version, told apart by length (RFC 3376 §7.1).
class IgmpQuery {
 public:
  static constexpr std::size_t kMaxRespOff = 1;
  static constexpr std::size_t kGroupOff = 4;
  static constexpr std::size_t kSqrvOff = 8;  // resv(4) S(1) QRV(3)
  static constexpr std::size_t kQqicOff = 9;
  static constexpr std::size_t kNumSourcesOff = 10;
  static constexpr std::size_t kSourcesOff = 12;
  static constexpr std::uint8_t kSFlag = 0x08;
  static constexpr std::uint8_t kQrvMask = 0x07;
  // RFC 2236 §4: a v1 query's zero Max Response Time means 10 seconds.
  static constexpr std::uint32_t kV1MaxRespDs = 100;

  IgmpQuery() = default;

  // Errors: truncated (< 8 bytes, or fewer source bytes than N says),
  // bad_checksum, malformed (not a query type; 9..11 bytes, which RFC 3376
  // §7.1 says to ignore; a general query carrying sources; a group field that
  // is neither zero nor multicast). A v1 query's group field is ignored
  // (RFC 1112: "zeroed when sent, ignored when received").
  static Result<IgmpQuery> parse(Bytes b, bool verify_checksum = true);

  IgmpVersion version() const { return version_; }
  std::uint8_t max_resp_code() const { return b_[kMaxRespOff]; }
  // In tenths of a second: 10 s for v1, linear for v2, RFC 3376 §4.1.1 for v3.
  std::uint32_t max_resp_time_ds() const {
    switch (version_) {
      case IgmpVersion::v1: return kV1MaxRespDs;
      case IgmpVersion::v2: return max_resp_code();
      case IgmpVersion::v3: break;
    }
    return igmp_decode_code(max_resp_code());
  }
  TimeNs max_resp_time_ns() const { return TimeNs{max_resp_time_ds()} * 100 * kNsPerMs; }
  Ipv4Addr group() const {
    return version_ == IgmpVersion::v1 ? Ipv4Addr{} : Ipv4Addr{load_be32(b_, kGroupOff)};
  }
  bool is_general() const { return group().is_unspecified(); }

  // IGMPv3 fields; zero for v1/v2 queries.
  bool suppress_router_processing() const { return v3() && (b_[kSqrvOff] & kSFlag) != 0; }
  std::uint8_t qrv() const { return v3() ? static_cast<std::uint8_t>(b_[kSqrvOff] & kQrvMask) : 0; }
  std::uint8_t qqic() const { return v3() ? b_[kQqicOff] : 0; }
  // Querier's Query Interval in seconds (0: not given).
  std::uint32_t query_interval_s() const { return igmp_decode_code(qqic()); }
  std::uint16_t num_sources() const { return v3() ? load_be16(b_, kNumSourcesOff) : 0; }
  Ipv4Addr source(std::size_t i) const { return Ipv4Addr{load_be32(b_, kSourcesOff + 4 * i)}; }
  Bytes bytes() const { return b_; }

 private:
  bool v3() const { return version_ == IgmpVersion::v3; }
  Bytes b_;
  IgmpVersion version_ = IgmpVersion::v2;
};

// One group record of a v3 report (a view into a validated report).
class IgmpGroupRecord {
 public:
  static constexpr std::size_t kTypeOff = 0;
  static constexpr std::size_t kAuxLenOff = 1;  // in 32-bit words
  static constexpr std::size_t kNumSourcesOff = 2;
  static constexpr std::size_t kGroupOff = 4;
  static constexpr std::size_t kSourcesOff = 8;

  IgmpGroupRecord() = default;

  std::uint8_t type() const { return b_[kTypeOff]; }
  // RFC 3376 §4.2.12: records of other types are ignored by the receiver.
  bool known_type() const { return type() >= igmp_record::kModeIsInclude && type() <= igmp_record::kBlockOldSources; }
  std::uint16_t num_sources() const { return load_be16(b_, kNumSourcesOff); }
  Ipv4Addr group() const { return Ipv4Addr{load_be32(b_, kGroupOff)}; }
  Ipv4Addr source(std::size_t i) const { return Ipv4Addr{load_be32(b_, kSourcesOff + 4 * i)}; }
  Bytes aux_data() const { return b_.subspan(kSourcesOff + 4 * std::size_t{num_sources()}); }
  Bytes bytes() const { return b_; }

  // The record's length from its header (the caller has 8 bytes).
  static std::size_t wire_len(Bytes hdr) {
    return kIgmpGroupRecordHeaderLen + 4 * std::size_t{load_be16(hdr, kNumSourcesOff)} + 4 * std::size_t{hdr[kAuxLenOff]};
  }

 private:
  friend class IgmpV3Report;
  explicit IgmpGroupRecord(Bytes b) : b_(b) {}
  Bytes b_;
};

// An IGMPv3 Membership Report. Hosts do not act on these (RFC 3376 §5 has no
// rule for them); the view exists for counting, tests and the fuzzer.
class IgmpV3Report {
 public:
  static constexpr std::size_t kNumRecordsOff = 6;
  static constexpr std::size_t kRecordsOff = 8;

  IgmpV3Report() = default;

  // Errors: truncated (< 8 bytes, or a record running past the end),
  // bad_checksum, malformed (not type 0x22). Bytes after the last record are
  // ignored; unknown record types are kept (see IgmpGroupRecord::known_type).
  static Result<IgmpV3Report> parse(Bytes b, bool verify_checksum = true);

  std::uint16_t num_records() const { return load_be16(b_, kNumRecordsOff); }
  Bytes bytes() const { return b_; }
  // The records, without the bytes after the last one.
  Bytes records_bytes() const { return b_.subspan(kRecordsOff, records_end_ - kRecordsOff); }

  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = IgmpGroupRecord;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = IgmpGroupRecord;

    Iterator() = default;
    IgmpGroupRecord operator*() const { return IgmpGroupRecord{rest_.first(IgmpGroupRecord::wire_len(rest_))}; }
    Iterator& operator++() {
      rest_ = rest_.subspan(IgmpGroupRecord::wire_len(rest_));
      --left_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator t = *this;
      ++*this;
      return t;
    }
    bool operator==(const Iterator& o) const { return left_ == o.left_; }

   private:
    friend class IgmpV3Report;
    Iterator(Bytes rest, std::size_t left) : rest_(rest), left_(left) {}
    Bytes rest_;
    std::size_t left_ = 0;
  };
  Iterator begin() const { return Iterator{records_bytes(), num_records()}; }
  Iterator end() const { return Iterator{Bytes{}, 0}; }

 private:
  Bytes b_;
  std::size_t records_end_ = kRecordsOff;
};

// The 8-byte message of IGMPv1 and IGMPv2: v1/v2 queries, v1/v2 reports and
// the v2 leave. (IGMPv1's version and type nibbles read as these same types.)
struct IgmpV2Repr {
  std::uint8_t type = igmp_type::kV2Report;
  std::uint8_t max_resp_code = 0;  // queries only; zero in everything a host sends
  Ipv4Addr group;

  static constexpr IgmpV2Repr report_v1(Ipv4Addr g) { return {igmp_type::kV1Report, 0, g}; }
  static constexpr IgmpV2Repr report_v2(Ipv4Addr g) { return {igmp_type::kV2Report, 0, g}; }
  static constexpr IgmpV2Repr leave(Ipv4Addr g) { return {igmp_type::kV2Leave, 0, g}; }
  static constexpr IgmpV2Repr query(std::uint8_t max_resp_ds, Ipv4Addr g = {}) {
    return {igmp_type::kMembershipQuery, max_resp_ds, g};
  }
  static IgmpV2Repr from(const IgmpMessage& m) { return {m.type(), m.code(), m.group()}; }

  static constexpr std::size_t buffer_len() { return kIgmpHeaderLen; }
  // Writes 8 bytes with the checksum.
  void emit(MutBytes out) const;
  bool operator==(const IgmpV2Repr&) const = default;
};

// An IGMPv3 query (hosts never send one; tests and the fuzzer do).
struct IgmpV3QueryRepr {
  std::uint8_t max_resp_code = 100;  // 10 s
  Ipv4Addr group;                    // zero: general query
  bool suppress_router_processing = false;
  std::uint8_t qrv = 2;
  std::uint8_t qqic = 125;
  std::span<const Ipv4Addr> sources;

  std::size_t buffer_len() const { return kIgmpV3QueryMinLen + 4 * sources.size(); }
  void emit(MutBytes out) const;
};

// One group record to send. No auxiliary data: RFC 3376 §4.2.6 defines none.
struct IgmpGroupRecordRepr {
  std::uint8_t type = igmp_record::kModeIsExclude;
  Ipv4Addr group;
  std::span<const Ipv4Addr> sources;

  std::size_t buffer_len() const { return kIgmpGroupRecordHeaderLen + 4 * sources.size(); }
};

// An IGMPv3 report. The caller keeps buffer_len() within the link MTU
// (RFC 3376 §4.2.16: records that do not fit go in further reports).
struct IgmpV3ReportRepr {
  std::span<const IgmpGroupRecordRepr> records;

  std::size_t buffer_len() const {
    std::size_t n = kIgmpV3ReportHeaderLen;
    for (const auto& r : records) n += r.buffer_len();
    return n;
  }
  void emit(MutBytes out) const;
};

}  // namespace ustack::wire
