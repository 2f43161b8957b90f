// IGMP parsing and emitting; see igmp.hpp for the formats and RFC sections.
#include "wire/igmp.hpp"

namespace ustack::wire {

Result<IgmpQuery> IgmpQuery::parse(Bytes b, bool verify_checksum) {
  const auto m = IgmpMessage::parse(b, verify_checksum);
  if (!m) return m.error();
  if (m->type() != igmp_type::kMembershipQuery) return ParseError::malformed;
  IgmpQuery q;
  q.b_ = b;
  // RFC 3376 §7.1: the length alone says v3; exactly 8 bytes is v1 or v2 by
  // the Max Resp Code; anything else (9..11 bytes) is no query at all.
  if (b.size() == kIgmpHeaderLen) {
    q.version_ = m->code() == 0 ? IgmpVersion::v1 : IgmpVersion::v2;
  } else if (b.size() < kIgmpV3QueryMinLen) {
    return ParseError::malformed;
  } else {
    q.version_ = IgmpVersion::v3;
    const std::size_t n = load_be16(b, kNumSourcesOff);
    if (kSourcesOff + 4 * n > b.size()) return ParseError::truncated;
    // §4.1.9: general and group-specific queries carry no sources.
    if (n != 0 && q.is_general()) return ParseError::malformed;
  }
  const Ipv4Addr g = q.group();
  if (!g.is_unspecified() && !g.is_multicast()) return ParseError::malformed;
  return q;
}

Result<IgmpV3Report> IgmpV3Report::parse(Bytes b, bool verify_checksum) {
  const auto m = IgmpMessage::parse(b, verify_checksum);
  if (!m) return m.error();
  if (m->type() != igmp_type::kV3Report) return ParseError::malformed;
  IgmpV3Report r;
  r.b_ = b;
  // Walk every record once here, so iteration never checks a length.
  std::size_t off = kRecordsOff;
  for (std::size_t i = 0, n = load_be16(b, kNumRecordsOff); i < n; ++i) {
    if (b.size() - off < kIgmpGroupRecordHeaderLen) return ParseError::truncated;
    const std::size_t len = IgmpGroupRecord::wire_len(b.subspan(off));
    if (b.size() - off < len) return ParseError::truncated;
    off += len;
  }
  r.records_end_ = off;
  return r;
}

void IgmpV2Repr::emit(MutBytes out) const {
  store8(out, IgmpMessage::kTypeOff, type);
  store8(out, IgmpMessage::kCodeOff, max_resp_code);
  store_be16(out, IgmpMessage::kChecksumOff, 0);
  store_be32(out, IgmpMessage::kGroupOff, group.v);
  store_be16(out, IgmpMessage::kChecksumOff, internet_checksum(Bytes{out.data(), buffer_len()}));
}

void IgmpV3QueryRepr::emit(MutBytes out) const {
  store8(out, IgmpMessage::kTypeOff, igmp_type::kMembershipQuery);
  store8(out, IgmpMessage::kCodeOff, max_resp_code);
  store_be16(out, IgmpMessage::kChecksumOff, 0);
  store_be32(out, IgmpQuery::kGroupOff, group.v);
  store8(out, IgmpQuery::kSqrvOff,
         static_cast<std::uint8_t>((suppress_router_processing ? IgmpQuery::kSFlag : 0) | (qrv & IgmpQuery::kQrvMask)));
  store8(out, IgmpQuery::kQqicOff, qqic);
  store_be16(out, IgmpQuery::kNumSourcesOff, static_cast<std::uint16_t>(sources.size()));
  for (std::size_t i = 0; i < sources.size(); ++i) store_be32(out, IgmpQuery::kSourcesOff + 4 * i, sources[i].v);
  store_be16(out, IgmpMessage::kChecksumOff, internet_checksum(Bytes{out.data(), buffer_len()}));
}

void IgmpV3ReportRepr::emit(MutBytes out) const {
  store8(out, IgmpMessage::kTypeOff, igmp_type::kV3Report);
  store8(out, 1, 0);
  store_be16(out, IgmpMessage::kChecksumOff, 0);
  store_be16(out, 4, 0);
  store_be16(out, IgmpV3Report::kNumRecordsOff, static_cast<std::uint16_t>(records.size()));
  std::size_t off = IgmpV3Report::kRecordsOff;
  for (const auto& r : records) {
    store8(out, off + IgmpGroupRecord::kTypeOff, r.type);
    store8(out, off + IgmpGroupRecord::kAuxLenOff, 0);
    store_be16(out, off + IgmpGroupRecord::kNumSourcesOff, static_cast<std::uint16_t>(r.sources.size()));
    store_be32(out, off + IgmpGroupRecord::kGroupOff, r.group.v);
    for (std::size_t i = 0; i < r.sources.size(); ++i)
      store_be32(out, off + IgmpGroupRecord::kSourcesOff + 4 * i, r.sources[i].v);
    off += r.buffer_len();
  }
  store_be16(out, IgmpMessage::kChecksumOff, internet_checksum(Bytes{out.data(), off}));
}

}  // namespace ustack::wire
