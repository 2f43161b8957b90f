// IGMP messages (RFC 2236 §2, RFC 3376 §4, §7.1): golden bytes, version
// distinction, the floating-point codes, every parse error, emit.
//
// Every vector was generated with scapy 2.5 (scapy.contrib.igmp and
// scapy.contrib.igmpv3; expression next to it). The malformed ones were
// generated malformed by scapy too, so their checksums are correct (except
// the one about the checksum): each fails for exactly the reason under test.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "wire/igmp.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

// scapy: IGMP(type=0x11, mrcode=0, gaddr="0.0.0.0")
const Vec kV1Query{0x11, 0x00, 0xee, 0xff, 0x00, 0x00, 0x00, 0x00};
// scapy: IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0")
const Vec kV2GeneralQuery{0x11, 0x64, 0xee, 0x9b, 0x00, 0x00, 0x00, 0x00};
// scapy: IGMP(type=0x11, mrcode=10, gaddr="239.1.2.3")
const Vec kV2GroupQuery{0x11, 0x0a, 0xfd, 0xf0, 0xef, 0x01, 0x02, 0x03};
// scapy's IGMP() fills Max Resp Code 20 in reports too; receivers ignore it.
// scapy: IGMP(type=0x12, gaddr="239.1.2.3")
const Vec kV1Report{0x12, 0x14, 0xfc, 0xe6, 0xef, 0x01, 0x02, 0x03};
// scapy: IGMP(type=0x16, gaddr="239.1.2.3")
const Vec kV2Report{0x16, 0x14, 0xf8, 0xe6, 0xef, 0x01, 0x02, 0x03};
// scapy: IGMP(type=0x17, gaddr="239.1.2.3")
const Vec kV2Leave{0x17, 0x14, 0xf7, 0xe6, 0xef, 0x01, 0x02, 0x03};
// What a host sends (RFC 2236 §2.2: Max Resp Time zero outside queries).
// scapy: IGMP(type=0x16, mrcode=0, gaddr="239.1.2.3")
const Vec kV2ReportZeroCode{0x16, 0x00, 0xf8, 0xfa, 0xef, 0x01, 0x02, 0x03};
// scapy: IGMP(type=0x17, mrcode=0, gaddr="239.1.2.3")
const Vec kV2LeaveZeroCode{0x17, 0x00, 0xf7, 0xfa, 0xef, 0x01, 0x02, 0x03};
// scapy: IGMP(type=0x12, mrcode=0, gaddr="239.1.2.3")
const Vec kV1ReportZeroCode{0x12, 0x00, 0xfc, 0xfa, 0xef, 0x01, 0x02, 0x03};

// scapy: IGMPv3(type=0x11, mrcode=100)/IGMPv3mq(gaddr="0.0.0.0", qrv=2, qqic=125)
const Vec kV3GeneralQuery{
    0x11, 0x64, 0xec, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x02, 0x7d, 0x00, 0x00,
};

// scapy: IGMPv3(type=0x11, mrcode=0xa3)/IGMPv3mq(gaddr="232.1.1.1", s=1, qrv=3, qqic=0x8f,
//          srcaddrs=["10.0.0.1", "10.0.0.9"])
const Vec kV3SourceQuery{
    0x11, 0xa3, 0xe5, 0xbe, 0xe8, 0x01, 0x01, 0x01, 0x0b, 0x8f, 0x00, 0x02,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x09,
};

// Three bytes of additional data after the fields (RFC 3376 §4.1.10).
// scapy: IGMPv3(type=0x11, mrcode=50)/IGMPv3mq(gaddr="239.1.2.3", qrv=7, qqic=0)/Raw(b"\xaa\xbb\xcc")
const Vec kV3GroupQueryExtra{
    0x11, 0x32, 0x80, 0x0c, 0xef, 0x01, 0x02, 0x03, 0x07, 0x00, 0x00, 0x00,
    0xaa, 0xbb, 0xcc,
};

// scapy: IGMPv3(type=0x22)/IGMPv3mr(records=[IGMPv3gr(rtype=4, maddr="239.1.2.3"),
//          IGMPv3gr(rtype=1, maddr="232.1.1.1", srcaddrs=["10.0.0.1", "10.0.0.9"]),
//          IGMPv3gr(rtype=6, maddr="232.1.1.2", srcaddrs=["192.0.2.7"])])
const Vec kV3Report{
    0x22, 0x00, 0x39, 0xdc, 0x00, 0x00, 0x00, 0x03, 0x04, 0x00, 0x00, 0x00,
    0xef, 0x01, 0x02, 0x03, 0x01, 0x00, 0x00, 0x02, 0xe8, 0x01, 0x01, 0x01,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x09, 0x06, 0x00, 0x00, 0x01,
    0xe8, 0x01, 0x01, 0x02, 0xc0, 0x00, 0x02, 0x07,
};

// A record with one word of aux data, then one of an unknown type (7).
// scapy: IGMPv3(type=0x22)/IGMPv3mr(numgrp=2)/Raw(bytes(IGMPv3gr(rtype=5, auxdlen=1,
//          maddr="239.9.9.9", srcaddrs=["10.1.1.1"])) + b"\xde\xad\xbe\xef"
//          + bytes(IGMPv3gr(rtype=7, maddr="239.9.9.10")))
const Vec kV3ReportAux{
    0x22, 0x00, 0x39, 0x35, 0x00, 0x00, 0x00, 0x02, 0x05, 0x01, 0x00, 0x01,
    0xef, 0x09, 0x09, 0x09, 0x0a, 0x01, 0x01, 0x01, 0xde, 0xad, 0xbe, 0xef,
    0x07, 0x00, 0x00, 0x00, 0xef, 0x09, 0x09, 0x0a,
};

// --- malformed and truncated ---

// scapy: IGMP(type=0x11, mrcode=100, gaddr="0.0.0.0")/Raw(b"\x00\x00")
const Vec kQueryLen10{0x11, 0x64, 0xee, 0x9b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

// scapy: IGMPv3(type=0x11, mrcode=100)/IGMPv3mq(gaddr="232.1.1.1", numsrc=3, srcaddrs=["10.0.0.1"])
const Vec kV3QueryShortSources{
    0x11, 0x64, 0xfb, 0x94, 0xe8, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x03,
    0x0a, 0x00, 0x00, 0x01,
};

// scapy: IGMPv3(type=0x11, mrcode=100)/IGMPv3mq(gaddr="0.0.0.0", srcaddrs=["10.0.0.1"])
const Vec kV3GeneralWithSources{
    0x11, 0x64, 0xe4, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x01,
};

// scapy: IGMP(type=0x11, mrcode=100, gaddr="10.1.1.1")
const Vec kV2QueryUnicastGroup{0x11, 0x64, 0xe3, 0x99, 0x0a, 0x01, 0x01, 0x01};

// scapy: IGMP(type=0x16, gaddr="239.1.2.3", chksum=0x1234)
const Vec kV2ReportBadChecksum{0x16, 0x14, 0x12, 0x34, 0xef, 0x01, 0x02, 0x03};

// Two records announced, one present.
// scapy: IGMPv3(type=0x22)/IGMPv3mr(numgrp=2, records=[IGMPv3gr(rtype=2, maddr="239.1.2.3",
//          srcaddrs=["10.0.0.1"])])
const Vec kV3ReportShort{
    0x22, 0x00, 0xe0, 0xf6, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x01,
    0xef, 0x01, 0x02, 0x03, 0x0a, 0x00, 0x00, 0x01,
};

// A record announcing two sources, holding one.
// scapy: IGMPv3(type=0x22)/IGMPv3mr(numgrp=1, records=[IGMPv3gr(rtype=1, numsrc=2,
//          maddr="239.1.2.3", srcaddrs=["10.0.0.1"])])
const Vec kV3ReportSourcesPastEnd{
    0x22, 0x00, 0xe1, 0xf6, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x02,
    0xef, 0x01, 0x02, 0x03, 0x0a, 0x00, 0x00, 0x01,
};

// RFC 2236 §2.5: a longer v2 message is fine; the checksum covers all of it.
// scapy: IGMP(type=0x16, gaddr="239.1.2.3")/Raw(b"\x01\x02\x03\x04")
const Vec kV2ReportLong{0x16, 0x14, 0xf4, 0xe0, 0xef, 0x01, 0x02, 0x03, 0x01, 0x02, 0x03, 0x04};

Vec prefix(const Vec& v, std::size_t n) { return Vec(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)); }

const Ipv4Addr kGroup(239, 1, 2, 3);

}  // namespace

TEST_CASE("IGMP: Max Resp Code / QQIC floating-point encoding (RFC 3376 §4.1.1)", "[igmp]") {
  // Linear below 128.
  for (std::uint32_t v = 0; v < 128; ++v) {
    CHECK(igmp_decode_code(static_cast<std::uint8_t>(v)) == v);
    CHECK(igmp_encode_code(v) == v);
  }
  // 1|exp|mant: (mant | 0x10) << (exp + 3).
  CHECK(igmp_decode_code(0x80) == 128);
  CHECK(igmp_decode_code(0x8f) == 248);
  CHECK(igmp_decode_code(0xa3) == (0x13u << 5));  // 608 tenths: 60.8 s
  CHECK(igmp_decode_code(0xff) == 31744);
  // Every code round-trips, and encoding is monotonic and never rounds up.
  for (unsigned c = 0; c < 256; ++c) {
    INFO("code " << c);
    CHECK(igmp_encode_code(igmp_decode_code(static_cast<std::uint8_t>(c))) == c);
  }
  std::uint8_t last = 0;
  for (std::uint32_t v = 0; v <= 40000; ++v) {
    const std::uint8_t c = igmp_encode_code(v);
    REQUIRE(igmp_decode_code(c) <= v);
    REQUIRE(c >= last);
    last = c;
  }
  CHECK(igmp_encode_code(125) == 125);
  CHECK(igmp_encode_code(129) == 0x80);  // 128: rounds down
  CHECK(igmp_encode_code(1000000) == 0xff);
}

TEST_CASE("IGMP: v1 and v2 queries are told apart by Max Resp Code (RFC 3376 §7.1)", "[igmp][query]") {
  SECTION("v1: code 0 means 10 s, group ignored") {
    const auto q = IgmpQuery::parse(Bytes{kV1Query});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v1);
    CHECK(q->max_resp_code() == 0);
    CHECK(q->max_resp_time_ds() == 100);
    CHECK(q->max_resp_time_ns() == 10 * kNsPerSec);
    CHECK(q->is_general());
    CHECK(q->num_sources() == 0);
    CHECK(q->qrv() == 0);
    CHECK(q->qqic() == 0);
    CHECK_FALSE(q->suppress_router_processing());
    // RFC 1112: a v1 query's group field is ignored on receipt.
    Vec v = kV1Query;
    v[4] = 0xef;
    v[2] = v[3] = 0;
    store_be16(MutBytes{v}, 2, internet_checksum(Bytes{v}));
    const auto q2 = IgmpQuery::parse(Bytes{v});
    REQUIRE(q2.ok());
    CHECK(q2->is_general());
  }
  SECTION("v2 general: linear tenths") {
    const auto q = IgmpQuery::parse(Bytes{kV2GeneralQuery});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v2);
    CHECK(q->max_resp_time_ds() == 100);
    CHECK(q->is_general());
  }
  SECTION("v2 group-specific; codes >= 128 are linear in v2") {
    const auto q = IgmpQuery::parse(Bytes{kV2GroupQuery});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v2);
    CHECK(q->max_resp_time_ns() == kNsPerSec);
    CHECK_FALSE(q->is_general());
    CHECK(q->group() == kGroup);
    Vec v(8);
    IgmpV2Repr::query(200, kGroup).emit(MutBytes{v});
    const auto q2 = IgmpQuery::parse(Bytes{v});
    REQUIRE(q2.ok());
    CHECK(q2->max_resp_time_ds() == 200);
  }
}

TEST_CASE("IGMP: v3 queries", "[igmp][query]") {
  SECTION("general") {
    const auto q = IgmpQuery::parse(Bytes{kV3GeneralQuery});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v3);
    CHECK(q->max_resp_time_ds() == 100);
    CHECK(q->is_general());
    CHECK(q->qrv() == 2);
    CHECK(q->qqic() == 125);
    CHECK(q->query_interval_s() == 125);
    CHECK(q->num_sources() == 0);
    CHECK_FALSE(q->suppress_router_processing());
  }
  SECTION("group-and-source-specific, S flag, exponential codes") {
    const auto q = IgmpQuery::parse(Bytes{kV3SourceQuery});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v3);
    CHECK(q->max_resp_code() == 0xa3);
    CHECK(q->max_resp_time_ds() == 608);
    CHECK(q->max_resp_time_ns() == 60'800 * kNsPerMs);
    CHECK(q->group() == Ipv4Addr(232, 1, 1, 1));
    CHECK(q->suppress_router_processing());
    CHECK(q->qrv() == 3);
    CHECK(q->qqic() == 0x8f);
    CHECK(q->query_interval_s() == 248);
    REQUIRE(q->num_sources() == 2);
    CHECK(q->source(0) == Ipv4Addr(10, 0, 0, 1));
    CHECK(q->source(1) == Ipv4Addr(10, 0, 0, 9));
  }
  SECTION("additional data after the sources is ignored but checksummed") {
    const auto q = IgmpQuery::parse(Bytes{kV3GroupQueryExtra});
    REQUIRE(q.ok());
    CHECK(q->version() == IgmpVersion::v3);
    CHECK(q->group() == kGroup);
    CHECK(q->qrv() == 7);
    CHECK(q->qqic() == 0);
    CHECK(q->num_sources() == 0);
    Vec v = kV3GroupQueryExtra;
    v[14] ^= 0x01;
    CHECK(IgmpQuery::parse(Bytes{v}).error() == ParseError::bad_checksum);
  }
}

TEST_CASE("IGMP: query errors", "[igmp][query][malformed]") {
  for (std::size_t n = 0; n < 8; ++n) {
    INFO(n << " bytes");
    CHECK(IgmpQuery::parse(Bytes{prefix(kV2GeneralQuery, n)}).error() == ParseError::truncated);
    CHECK(IgmpMessage::parse(Bytes{prefix(kV2GeneralQuery, n)}).error() == ParseError::truncated);
  }
  // RFC 3376 §7.1: 9..11 bytes is no query version at all.
  CHECK(IgmpQuery::parse(Bytes{kQueryLen10}).error() == ParseError::malformed);
  CHECK(IgmpQuery::parse(Bytes{kQueryLen10}, false).error() == ParseError::malformed);
  // N says 3 sources, 1 present.
  CHECK(IgmpQuery::parse(Bytes{kV3QueryShortSources}).error() == ParseError::truncated);
  // A cut v3 query: the sources are short, then it is no query at all.
  CHECK(IgmpQuery::parse(Bytes{prefix(kV3SourceQuery, 19)}, false).error() == ParseError::truncated);
  CHECK(IgmpQuery::parse(Bytes{prefix(kV3SourceQuery, 12)}, false).error() == ParseError::truncated);
  CHECK(IgmpQuery::parse(Bytes{prefix(kV3SourceQuery, 11)}, false).error() == ParseError::malformed);
  // §4.1.9: a general query carries no sources.
  CHECK(IgmpQuery::parse(Bytes{kV3GeneralWithSources}).error() == ParseError::malformed);
  CHECK(IgmpQuery::parse(Bytes{kV2QueryUnicastGroup}).error() == ParseError::malformed);
  // Not a query at all.
  CHECK(IgmpQuery::parse(Bytes{kV2Report}).error() == ParseError::malformed);
  // Checksum over the whole message.
  for (std::size_t i = 0; i < kV3SourceQuery.size(); ++i) {
    Vec v = kV3SourceQuery;
    v[i] ^= 0x20;
    INFO("flipped byte " << i);
    CHECK(IgmpQuery::parse(Bytes{v}).error() == ParseError::bad_checksum);
  }
}

TEST_CASE("IGMP: v1/v2 reports and leave", "[igmp]") {
  struct Case {
    const Vec* bytes;
    std::uint8_t type;
  };
  for (const Case c : {Case{&kV1Report, igmp_type::kV1Report}, Case{&kV2Report, igmp_type::kV2Report},
                       Case{&kV2Leave, igmp_type::kV2Leave}, Case{&kV2ReportLong, igmp_type::kV2Report}}) {
    const auto m = IgmpMessage::parse(Bytes{*c.bytes});
    REQUIRE(m.ok());
    CHECK(m->type() == c.type);
    CHECK(m->group() == kGroup);
    CHECK(m->code() == 20);
    CHECK(m->bytes().size() == c.bytes->size());
    CHECK(IgmpV2Repr::from(*m) == IgmpV2Repr{c.type, 20, kGroup});
  }
  CHECK(IgmpMessage::parse(Bytes{kV2ReportBadChecksum}).error() == ParseError::bad_checksum);
  CHECK(IgmpMessage::parse(Bytes{kV2ReportBadChecksum}, false).ok());
  // The extra bytes are under the checksum.
  Vec v = kV2ReportLong;
  v[11] ^= 0x40;
  CHECK(IgmpMessage::parse(Bytes{v}).error() == ParseError::bad_checksum);
}

TEST_CASE("IGMP: v1/v2 emit writes the golden bytes", "[igmp][emit]") {
  struct Case {
    IgmpV2Repr r;
    const Vec* golden;
  };
  for (const Case& c : {Case{IgmpV2Repr::report_v2(kGroup), &kV2ReportZeroCode},
                        Case{IgmpV2Repr::leave(kGroup), &kV2LeaveZeroCode},
                        Case{IgmpV2Repr::report_v1(kGroup), &kV1ReportZeroCode},
                        Case{IgmpV2Repr::query(100), &kV2GeneralQuery}, Case{IgmpV2Repr::query(0), &kV1Query},
                        Case{IgmpV2Repr::query(10, kGroup), &kV2GroupQuery}}) {
    Vec out(IgmpV2Repr::buffer_len(), 0xaa);
    c.r.emit(MutBytes{out});
    CHECK(out == *c.golden);
  }
}

TEST_CASE("IGMP: v3 report with records of every shape", "[igmp][report]") {
  const auto r = IgmpV3Report::parse(Bytes{kV3Report});
  REQUIRE(r.ok());
  REQUIRE(r->num_records() == 3);
  std::vector<IgmpGroupRecord> recs(r->begin(), r->end());
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].type() == igmp_record::kChangeToExclude);
  CHECK(recs[0].group() == kGroup);
  CHECK(recs[0].num_sources() == 0);
  CHECK(recs[0].bytes().size() == 8);
  CHECK(recs[1].type() == igmp_record::kModeIsInclude);
  CHECK(recs[1].group() == Ipv4Addr(232, 1, 1, 1));
  REQUIRE(recs[1].num_sources() == 2);
  CHECK(recs[1].source(0) == Ipv4Addr(10, 0, 0, 1));
  CHECK(recs[1].source(1) == Ipv4Addr(10, 0, 0, 9));
  CHECK(recs[1].aux_data().empty());
  CHECK(recs[2].type() == igmp_record::kBlockOldSources);
  CHECK(recs[2].source(0) == Ipv4Addr(192, 0, 2, 7));
  for (const auto& rec : recs) CHECK(rec.known_type());
  CHECK(r->records_bytes().size() == kV3Report.size() - 8);
}

TEST_CASE("IGMP: v3 report aux data is skipped by length, unknown types kept", "[igmp][report]") {
  const auto r = IgmpV3Report::parse(Bytes{kV3ReportAux});
  REQUIRE(r.ok());
  auto it = r->begin();
  REQUIRE(it != r->end());
  const IgmpGroupRecord a = *it++;
  CHECK(a.type() == igmp_record::kAllowNewSources);
  CHECK(a.group() == Ipv4Addr(239, 9, 9, 9));
  CHECK(a.source(0) == Ipv4Addr(10, 1, 1, 1));
  REQUIRE(a.aux_data().size() == 4);
  CHECK(a.aux_data()[0] == 0xde);
  CHECK(a.bytes().size() == 16);
  REQUIRE(it != r->end());
  const IgmpGroupRecord b = *it++;
  CHECK(b.type() == 7);
  CHECK_FALSE(b.known_type());
  CHECK(b.group() == Ipv4Addr(239, 9, 9, 10));
  CHECK(it == r->end());
}

TEST_CASE("IGMP: v3 report errors", "[igmp][report][malformed]") {
  CHECK(IgmpV3Report::parse(Bytes{kV3ReportShort}).error() == ParseError::truncated);
  CHECK(IgmpV3Report::parse(Bytes{kV3ReportSourcesPastEnd}).error() == ParseError::truncated);
  // Every cut of a valid report (checksum off, so only lengths speak).
  for (std::size_t n = 0; n < kV3Report.size(); ++n) {
    INFO(n << " bytes");
    const auto r = IgmpV3Report::parse(Bytes{prefix(kV3Report, n)}, false);
    CHECK(r.error() == ParseError::truncated);
  }
  // Aux data length running past the end.
  Vec v = kV3ReportAux;
  v[9] = 5;
  CHECK(IgmpV3Report::parse(Bytes{v}, false).error() == ParseError::truncated);
  CHECK(IgmpV3Report::parse(Bytes{v}).error() == ParseError::bad_checksum);
  CHECK(IgmpV3Report::parse(Bytes{kV3GeneralQuery}).error() == ParseError::malformed);
  // Zero records, and bytes after the last record: fine.
  Vec zero{0x22, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb};
  const auto z = IgmpV3Report::parse(Bytes{zero}, false);
  REQUIRE(z.ok());
  CHECK(z->begin() == z->end());
  CHECK(z->records_bytes().empty());
}

TEST_CASE("IGMP: v3 report emit writes the golden bytes", "[igmp][report][emit]") {
  const Ipv4Addr s1[] = {Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 9)};
  const Ipv4Addr s2[] = {Ipv4Addr(192, 0, 2, 7)};
  const IgmpGroupRecordRepr recs[] = {
      {igmp_record::kChangeToExclude, kGroup, {}},
      {igmp_record::kModeIsInclude, Ipv4Addr(232, 1, 1, 1), s1},
      {igmp_record::kBlockOldSources, Ipv4Addr(232, 1, 1, 2), s2},
  };
  const IgmpV3ReportRepr r{recs};
  REQUIRE(r.buffer_len() == kV3Report.size());
  Vec out(r.buffer_len(), 0xaa);
  r.emit(MutBytes{out});
  CHECK(out == kV3Report);
  // Re-parsed, the same records come back.
  const auto p = IgmpV3Report::parse(Bytes{out});
  REQUIRE(p.ok());
  std::size_t i = 0;
  for (const IgmpGroupRecord rec : *p) {
    REQUIRE(i < 3);
    CHECK(rec.type() == recs[i].type);
    CHECK(rec.group() == recs[i].group);
    REQUIRE(rec.num_sources() == recs[i].sources.size());
    for (std::size_t k = 0; k < recs[i].sources.size(); ++k) CHECK(rec.source(k) == recs[i].sources[k]);
    ++i;
  }
  CHECK(i == 3);
}

TEST_CASE("IGMP: v3 query emit writes the golden bytes", "[igmp][query][emit]") {
  SECTION("general") {
    const IgmpV3QueryRepr q{100, {}, false, 2, 125, {}};
    Vec out(q.buffer_len(), 0xaa);
    q.emit(MutBytes{out});
    CHECK(out == kV3GeneralQuery);
  }
  SECTION("group-and-source-specific with S") {
    const Ipv4Addr src[] = {Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 9)};
    const IgmpV3QueryRepr q{0xa3, Ipv4Addr(232, 1, 1, 1), true, 3, 0x8f, src};
    Vec out(q.buffer_len(), 0xaa);
    q.emit(MutBytes{out});
    CHECK(out == kV3SourceQuery);
  }
}
