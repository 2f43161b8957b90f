// libFuzzer target: IgmpMessage::parse, IgmpQuery::parse, IgmpV3Report::parse
// and its record iterator, IgmpV2Repr/IgmpV3QueryRepr/IgmpV3ReportRepr::emit,
// the Max Resp Code / QQIC codec.
//
// The input is an IGMP message (the IP payload). Everything is parsed from an
// exactly-sized heap copy, so ASan sees any read past the message.
//
// Invariants:
//  - fewer than 8 bytes is `truncated`; with verification off no parser
//    reports `bad_checksum`, and with it on a message is refused for its
//    checksum exactly when the unverified parse succeeds and the sum is bad;
//  - a query's version follows RFC 3376 §7.1 from its length and code; 9..11
//    bytes is `malformed`; a v3 query's sources lie inside the message; a
//    general query has none; the group is zero or multicast;
//  - queries and v1/v2 messages re-emit to the same bytes (v3: up to the
//    four reserved bits and the additional data; 8-byte forms: up to the
//    checksum's two representations of zero);
//  - a report's records tile records_bytes() in order, their count is the
//    header's, and re-emitting them (aux data dropped) parses back to the
//    same types, groups and sources;
//  - decode(encode(x)) <= x and encode(decode(c)) == c.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/igmp.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const std::vector<std::uint8_t> copy(data, data + size);
  const Bytes in{copy};

  // The codec on whatever the first bytes are.
  if (size >= 1) {
    require(igmp_encode_code(igmp_decode_code(data[0])) == data[0]);
    std::uint32_t x = 0;
    for (std::size_t i = 0; i < size && i < 3; ++i) x = x << 8 | data[i];
    require(igmp_decode_code(igmp_encode_code(x)) <= x);
  }

  const auto unverified = IgmpMessage::parse(in, /*verify_checksum=*/false);
  const auto m = IgmpMessage::parse(in);
  if (size < kIgmpHeaderLen) {
    require(!unverified && unverified.error() == ParseError::truncated);
    require(!m && m.error() == ParseError::truncated);
    require(IgmpQuery::parse(in, false).error() == ParseError::truncated);
    require(IgmpV3Report::parse(in, false).error() == ParseError::truncated);
    return 0;
  }
  require(unverified.ok());
  require(m.ok() == checksum_ok(in));
  if (!m) require(m.error() == ParseError::bad_checksum);
  const IgmpMessage& msg = *unverified;
  require(msg.bytes().data() == in.data() && msg.bytes().size() == size);

  // Queries.
  const auto q = IgmpQuery::parse(in, false);
  if (msg.type() != igmp_type::kMembershipQuery) {
    require(q.error() == ParseError::malformed);
  } else if (size > kIgmpHeaderLen && size < kIgmpV3QueryMinLen) {
    require(q.error() == ParseError::malformed);
  } else if (q) {
    const auto qv = IgmpQuery::parse(in);
    require(qv.ok() == checksum_ok(in));
    const IgmpVersion v = q->version();
    if (size == kIgmpHeaderLen) {
      require(v == (msg.code() == 0 ? IgmpVersion::v1 : IgmpVersion::v2));
      require(q->num_sources() == 0 && q->qrv() == 0 && q->qqic() == 0);
      require(q->max_resp_time_ds() == (v == IgmpVersion::v1 ? 100u : msg.code()));
      std::vector<std::uint8_t> out(8);
      IgmpV2Repr::from(msg).emit(MutBytes{out});
      require(std::memcmp(out.data(), data, 2) == 0 && std::memcmp(out.data() + 4, data + 4, 4) == 0);
      require(checksum_ok(Bytes{out}));
    } else {
      require(v == IgmpVersion::v3);
      const std::size_t n = q->num_sources();
      require(IgmpQuery::kSourcesOff + 4 * n <= size);
      require(q->max_resp_time_ds() == igmp_decode_code(msg.code()));
      if (q->is_general()) require(n == 0);
      std::vector<Ipv4Addr> src;
      for (std::size_t i = 0; i < n; ++i) src.push_back(q->source(i));
      const IgmpV3QueryRepr r{q->max_resp_code(), q->group(), q->suppress_router_processing(), q->qrv(), q->qqic(), src};
      std::vector<std::uint8_t> out(r.buffer_len());
      r.emit(MutBytes{out});
      require(std::memcmp(out.data(), data, 2) == 0);
      require(std::memcmp(out.data() + 4, data + 4, 4) == 0);
      require(out[8] == (data[8] & 0x0f));
      require(std::memcmp(out.data() + 9, data + 9, out.size() - 9) == 0);
      const auto again = IgmpQuery::parse(Bytes{out});
      require(again.ok() && again->version() == IgmpVersion::v3 && again->num_sources() == n);
    }
    const Ipv4Addr g = q->group();
    require(g.is_unspecified() || g.is_multicast());
    require(q->is_general() == g.is_unspecified());
  } else {
    require(q.error() == ParseError::truncated || q.error() == ParseError::malformed);
    if (q.error() == ParseError::truncated) require(size >= kIgmpV3QueryMinLen);
  }

  // Reports.
  const auto r = IgmpV3Report::parse(in, false);
  if (msg.type() != igmp_type::kV3Report) {
    require(r.error() == ParseError::malformed);
    return 0;
  }
  if (!r) {
    require(r.error() == ParseError::truncated);
    return 0;
  }
  require(IgmpV3Report::parse(in).ok() == checksum_ok(in));
  const Bytes recs = r->records_bytes();
  require(recs.data() == in.data() + IgmpV3Report::kRecordsOff);
  std::size_t count = 0;
  std::size_t off = 0;
  std::vector<Ipv4Addr> all_sources;
  std::vector<IgmpGroupRecordRepr> reprs;
  std::vector<std::size_t> starts;
  for (const IgmpGroupRecord g : *r) {
    require(g.bytes().data() == recs.data() + off);
    require(g.bytes().size() == IgmpGroupRecord::wire_len(g.bytes()));
    require(g.aux_data().data() + g.aux_data().size() == g.bytes().data() + g.bytes().size());
    require(g.known_type() == (g.type() >= 1 && g.type() <= 6));
    starts.push_back(all_sources.size());
    for (std::size_t i = 0; i < g.num_sources(); ++i) all_sources.push_back(g.source(i));
    reprs.push_back(IgmpGroupRecordRepr{g.type(), g.group(), {}});
    off += g.bytes().size();
    ++count;
  }
  require(count == r->num_records());
  require(off == recs.size());
  for (std::size_t k = 0; k < reprs.size(); ++k) {
    const std::size_t end = k + 1 < reprs.size() ? starts[k + 1] : all_sources.size();
    reprs[k].sources = std::span<const Ipv4Addr>(all_sources).subspan(starts[k], end - starts[k]);
  }
  const IgmpV3ReportRepr rep{reprs};
  std::vector<std::uint8_t> out(rep.buffer_len());
  rep.emit(MutBytes{out});
  const auto again = IgmpV3Report::parse(Bytes{out});
  require(again.ok());
  require(again->num_records() == reprs.size());
  std::size_t k = 0;
  for (const IgmpGroupRecord g : *again) {
    require(g.type() == reprs[k].type && g.group() == reprs[k].group);
    require(g.num_sources() == reprs[k].sources.size() && g.aux_data().empty());
    for (std::size_t i = 0; i < g.num_sources(); ++i) require(g.source(i) == reprs[k].sources[i]);
    ++k;
  }
  return 0;
}
