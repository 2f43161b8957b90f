// TCP segments (RFC 9293 §3.1) and options (RFC 7323, RFC 2018): golden
// bytes, every parse error, malformed options, emit, checksum offload.
//
// Every segment vector was generated with scapy 2.5 (expression next to it;
// bytes are the TCP part of the IP packet). The malformed ones were
// generated malformed by scapy too, so their checksums are correct: each one
// fails for exactly the reason under test. Option lists that are only fed to
// TcpOptions::parse() are written out by hand from the RFC formats.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "core/seq.hpp"
#include "wire/checksum.hpp"
#include "wire/tcp.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

const Ipv4Addr kPeer(192, 0, 2, 2);
const Ipv4Addr kUs(192, 0, 2, 1);

// A Linux SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=0xfffffff0,
//          flags="S", window=64240, options=[("MSS", 1460), ("SAckOK", b""),
//          ("Timestamp", (2864434397, 0)), ("NOP", None), ("WScale", 7)])
// checksum 0xb4f0; pseudo-header sum 0x8432
const Vec kSyn{
    0x9c, 0x40, 0x00, 0x50, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xb4, 0xf0, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    0x04, 0x02, 0x08, 0x0a, 0xaa, 0xbb, 0xcc, 0xdd, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x03, 0x03, 0x07,
};

// scapy: IP(src="192.0.2.1", dst="192.0.2.2")/TCP(sport=80, dport=40000, seq=0x12345678,
//          ack=0xfffffff1, flags="SA", window=65160, options=[("MSS", 1460), ("SAckOK", b""),
//          ("Timestamp", (1000, 2864434397)), ("NOP", None), ("WScale", 9)])
// checksum 0x44b1; pseudo-header sum 0x8432
const Vec kSynAck{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0xf1,
    0xa0, 0x12, 0xfe, 0x88, 0x44, 0xb1, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x03, 0xe8, 0xaa, 0xbb, 0xcc, 0xdd,
    0x01, 0x03, 0x03, 0x09,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=0xfffffffd,
//          ack=0x12345679, flags="PA", window=502, options=[("NOP", None), ("NOP", None),
//          ("Timestamp", (2864434500, 1000))])/Raw(b"GET / HTTP/1.0\r\n\r\n")
// checksum 0x90e5; pseudo-header sum 0x843c
const Vec kData{
    0x9c, 0x40, 0x00, 0x50, 0xff, 0xff, 0xff, 0xfd, 0x12, 0x34, 0x56, 0x79,
    0x80, 0x18, 0x01, 0xf6, 0x90, 0xe5, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0xaa, 0xbb, 0xcd, 0x44, 0x00, 0x00, 0x03, 0xe8, 0x47, 0x45, 0x54, 0x20,
    0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x30, 0x0d, 0x0a,
    0x0d, 0x0a,
};

// SACK with 1..3 blocks after timestamps, as Linux sends them.
// scapy: IP(src="192.0.2.1", dst="192.0.2.2")/TCP(sport=80, dport=40000, seq=0x12345679,
//          ack=1000, flags="A", window=509, options=[("NOP", None), ("NOP", None),
//          ("Timestamp", (1100, 2864434500)), ("NOP", None), ("NOP", None), ("SAck", (2000, 3000))])
// checksum 0x21ab
const Vec kSack1{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x03, 0xe8,
    0xb0, 0x10, 0x01, 0xfd, 0x21, 0xab, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0x00, 0x00, 0x04, 0x4c, 0xaa, 0xbb, 0xcd, 0x44, 0x01, 0x01, 0x05, 0x0a,
    0x00, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x0b, 0xb8,
};

// As kSack1 with Timestamp (1101, 2864434501), SAck (4000, 5000, 2000, 3000).
// checksum 0xde70
const Vec kSack2{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x03, 0xe8,
    0xd0, 0x10, 0x01, 0xfd, 0xde, 0x70, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0x00, 0x00, 0x04, 0x4d, 0xaa, 0xbb, 0xcd, 0x45, 0x01, 0x01, 0x05, 0x12,
    0x00, 0x00, 0x0f, 0xa0, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x07, 0xd0,
    0x00, 0x00, 0x0b, 0xb8,
};

// As kSack1 with Timestamp (1102, 2864434502),
// SAck (0xfffffff0, 0x10, 4000, 5000, 2000, 3000): 40 bytes of options, the
// first block spanning the wrap.
// checksum 0xbe5d
const Vec kSack3{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x03, 0xe8,
    0xf0, 0x10, 0x01, 0xfd, 0xbe, 0x5d, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0x00, 0x00, 0x04, 0x4e, 0xaa, 0xbb, 0xcd, 0x46, 0x01, 0x01, 0x05, 0x1a,
    0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x0f, 0xa0,
    0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x0b, 0xb8,
};

// Four blocks need the room timestamps would take.
// scapy: IP(src="192.0.2.1", dst="192.0.2.2")/TCP(sport=80, dport=40000, seq=0x12345679,
//          ack=1000, flags="A", window=509, options=[("NOP", None), ("NOP", None),
//          ("SAck", (7000, 8000, 0xfffffff0, 0x10, 4000, 5000, 2000, 3000))])
// checksum 0x191d
const Vec kSack4{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x03, 0xe8,
    0xe0, 0x10, 0x01, 0xfd, 0x19, 0x1d, 0x00, 0x00, 0x01, 0x01, 0x05, 0x22,
    0x00, 0x00, 0x1b, 0x58, 0x00, 0x00, 0x1f, 0x40, 0xff, 0xff, 0xff, 0xf0,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x0f, 0xa0, 0x00, 0x00, 0x13, 0x88,
    0x00, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x0b, 0xb8,
};

// scapy: IP(src="192.0.2.1", dst="192.0.2.2")/TCP(sport=80, dport=40000, seq=0x12345679,
//          ack=0, flags="R", window=0)
// checksum 0x269f; pseudo-header sum 0x841e
const Vec kRst{
    0x00, 0x50, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x79, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x04, 0x00, 0x00, 0x26, 0x9f, 0x00, 0x00,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=0x00000011,
//          ack=0x12345679, flags="FA", window=502, options=[("NOP", None), ("NOP", None),
//          ("Timestamp", (2864434600, 1102))])
// checksum 0x6ec1; pseudo-header sum 0x842a
const Vec kFinAck{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x11, 0x12, 0x34, 0x56, 0x79,
    0x80, 0x11, 0x01, 0xf6, 0x6e, 0xc1, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0xaa, 0xbb, 0xcd, 0xa8, 0x00, 0x00, 0x04, 0x4e,
};

// URG, ECE, CWR, odd-length payload.
// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=1, dport=65535, seq=1, ack=2,
//          flags="UECAP", window=65535, urgptr=3)/Raw(b"x")
// checksum 0xb2e0; pseudo-header sum 0x841f
const Vec kUrgEce{
    0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x50, 0xf8, 0xff, 0xff, 0xb2, 0xe0, 0x00, 0x03, 0x78,
};

// Malformed options in otherwise valid segments, all
// IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=1, ack=2, flags="A",
//    window=502, dataofs=N)/Raw(bytes.fromhex(OPTIONS + "6869"))   (payload "hi")

// dataofs=6, OPTIONS "fd000101": unknown kind, length 0.
const Vec kOptLen0{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x60, 0x10, 0x01, 0xf6, 0x16, 0xd6, 0x00, 0x00, 0xfd, 0x00, 0x01, 0x01,
    0x68, 0x69,
};
// dataofs=6, OPTIONS "fd010101": unknown kind, length 1.
const Vec kOptLen1{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x60, 0x10, 0x01, 0xf6, 0x16, 0xd5, 0x00, 0x00, 0xfd, 0x01, 0x01, 0x01,
    0x68, 0x69,
};
// dataofs=6, OPTIONS "0101fd07": length 7 with 2 bytes left (the payload
// would cover it: the parser must stop at the data offset).
const Vec kOptOverrun{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x60, 0x10, 0x01, 0xf6, 0x16, 0xcf, 0x00, 0x00, 0x01, 0x01, 0xfd, 0x07,
    0x68, 0x69,
};
// dataofs=6, OPTIONS "02030501": MSS with length 3.
const Vec kOptMssLen3{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x60, 0x10, 0x01, 0xf6, 0x0d, 0xd4, 0x00, 0x00, 0x02, 0x03, 0x05, 0x01,
    0x68, 0x69,
};
// dataofs=8, OPTIONS "050b000007d0000007d8ff01": SACK with length 11.
const Vec kOptSackLen11{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x80, 0x10, 0x01, 0xf6, 0xe1, 0x1a, 0x00, 0x00, 0x05, 0x0b, 0x00, 0x00,
    0x07, 0xd0, 0x00, 0x00, 0x07, 0xd8, 0xff, 0x01, 0x68, 0x69,
};
// dataofs=6, OPTIONS "0103030f": window scale 15 (well formed, clamped).
const Vec kOptWscale15{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x60, 0x10, 0x01, 0xf6, 0x10, 0xc6, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0f,
    0x68, 0x69,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=1, ack=2,
//          flags="A", window=502, dataofs=4)
const Vec kDoff4{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x40, 0x10, 0x01, 0xf6, 0x9d, 0x47, 0x00, 0x00,
};

// Data offset 15 (60 bytes) in a 24-byte segment.
// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/TCP(sport=40000, dport=80, seq=1, ack=2,
//          flags="A", window=502, dataofs=15)/Raw(b"abcd")
const Vec kDoff15Short{
    0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0xf0, 0x10, 0x01, 0xf6, 0x28, 0x7c, 0x00, 0x00, 0x61, 0x62, 0x63, 0x64,
};

Vec prefix(const Vec& v, std::size_t n) { return Vec(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)); }
Vec tail(const Vec& v, std::size_t from) { return Vec(v.begin() + static_cast<std::ptrdiff_t>(from), v.end()); }

TcpSegment must_parse(const Vec& v, Ipv4Addr src, Ipv4Addr dst) {
  const auto s = TcpSegment::parse(Bytes{v}, src, dst);
  REQUIRE(s.ok());
  return *s;
}

TcpOptions must_parse_options(const TcpSegment& s) {
  const auto o = TcpOptions::parse(s.options());
  REQUIRE(o.ok());
  return *o;
}

TcpOptions sack_options(std::initializer_list<std::uint32_t> edges) {
  TcpOptions o;
  std::size_t k = 0;
  for (auto it = edges.begin(); it != edges.end(); it += 2, ++k)
    o.sack_blocks[k] = SackBlock{SeqNum{*it}, SeqNum{*(it + 1)}};
  o.sack_count = static_cast<std::uint8_t>(k);
  return o;
}

// The hand-built value of every golden segment, from its scapy expression.
struct Golden {
  const char* name;
  const Vec* bytes;
  Ipv4Addr src, dst;
  TcpRepr repr;
  std::size_t payload_len;
  std::uint16_t pseudo_sum;  // what the checksum field holds when offloaded
};

std::vector<Golden> goldens() {
  TcpOptions syn_opts;
  syn_opts.mss = 1460;
  syn_opts.sack_permitted = true;
  syn_opts.timestamps = TcpTimestamps{2864434397u, 0};
  syn_opts.wscale = 7;
  TcpOptions synack_opts = syn_opts;
  synack_opts.timestamps = TcpTimestamps{1000, 2864434397u};
  synack_opts.wscale = 9;
  TcpOptions data_opts;
  data_opts.timestamps = TcpTimestamps{2864434500u, 1000};
  TcpOptions sack1 = sack_options({2000, 3000});
  sack1.timestamps = TcpTimestamps{1100, 2864434500u};
  TcpOptions sack2 = sack_options({4000, 5000, 2000, 3000});
  sack2.timestamps = TcpTimestamps{1101, 2864434501u};
  TcpOptions sack3 = sack_options({0xfffffff0u, 0x10, 4000, 5000, 2000, 3000});
  sack3.timestamps = TcpTimestamps{1102, 2864434502u};
  const TcpOptions sack4 = sack_options({7000, 8000, 0xfffffff0u, 0x10, 4000, 5000, 2000, 3000});
  TcpOptions fin_opts;
  fin_opts.timestamps = TcpTimestamps{2864434600u, 1102};

  const auto A = tcp_flag::kAck;
  const SeqNum ours{0x12345679};
  return {
      {"SYN", &kSyn, kPeer, kUs, {40000, 80, SeqNum{0xfffffff0u}, SeqNum{0}, tcp_flag::kSyn, 64240, 0, syn_opts}, 0, 0x8432},
      {"SYN-ACK", &kSynAck, kUs, kPeer,
       {80, 40000, SeqNum{0x12345678}, SeqNum{0xfffffff1u}, tcp_flag::kSyn | A, 65160, 0, synack_opts}, 0, 0x8432},
      {"data", &kData, kPeer, kUs,
       {40000, 80, SeqNum{0xfffffffdu}, ours, tcp_flag::kPsh | A, 502, 0, data_opts}, 18, 0x843c},
      {"SACK 1", &kSack1, kUs, kPeer, {80, 40000, ours, SeqNum{1000}, A, 509, 0, sack1}, 0, 0x8436},
      {"SACK 2", &kSack2, kUs, kPeer, {80, 40000, ours, SeqNum{1000}, A, 509, 0, sack2}, 0, 0x843e},
      {"SACK 3", &kSack3, kUs, kPeer, {80, 40000, ours, SeqNum{1000}, A, 509, 0, sack3}, 0, 0x8446},
      {"SACK 4", &kSack4, kUs, kPeer, {80, 40000, ours, SeqNum{1000}, A, 509, 0, sack4}, 0, 0x8442},
      {"RST", &kRst, kUs, kPeer, {80, 40000, ours, SeqNum{0}, tcp_flag::kRst, 0, 0, {}}, 0, 0x841e},
      {"FIN-ACK", &kFinAck, kPeer, kUs,
       {40000, 80, SeqNum{0x11}, ours, tcp_flag::kFin | A, 502, 0, fin_opts}, 0, 0x842a},
      {"URG ECE CWR", &kUrgEce, kPeer, kUs,
       {1, 65535, SeqNum{1}, SeqNum{2},
        tcp_flag::kUrg | tcp_flag::kEce | tcp_flag::kCwr | A | tcp_flag::kPsh, 65535, 3, {}},
       1, 0x841f},
  };
}

}  // namespace

TEST_CASE("TCP: Linux SYN parses", "[tcp]") {
  const TcpSegment s = must_parse(kSyn, kPeer, kUs);
  CHECK(s.src_port() == 40000);
  CHECK(s.dst_port() == 80);
  CHECK(s.seq() == SeqNum{0xfffffff0u});
  CHECK(s.ack() == SeqNum{0});
  CHECK(s.data_offset() == 10);
  CHECK(s.header_len() == 40);
  CHECK(s.reserved() == 0);
  CHECK(s.flags() == tcp_flag::kSyn);
  CHECK(s.flags().syn());
  CHECK_FALSE(s.flags().ack());
  CHECK(s.window() == 64240);
  CHECK(s.checksum() == 0xb4f0);
  CHECK(s.urgent_ptr() == 0);
  CHECK(s.options().size() == 20);
  CHECK(s.options().data() == kSyn.data() + 20);
  CHECK(s.header().size() == 40);
  CHECK(s.payload().empty());
  CHECK(s.bytes().size() == 40);
  CHECK(s.seg_len() == 1);  // the SYN occupies one sequence number

  const TcpOptions o = must_parse_options(s);
  REQUIRE(o.mss);
  CHECK(*o.mss == 1460);
  CHECK(o.sack_permitted);
  REQUIRE(o.timestamps);
  CHECK(o.timestamps->tsval == 0xaabbccddu);
  CHECK(o.timestamps->tsecr == 0);
  REQUIRE(o.wscale);
  CHECK(*o.wscale == 7);
  CHECK_FALSE(o.wscale_clamped);
  CHECK(o.sack_count == 0);
  CHECK(o.sacks().empty());
}

TEST_CASE("TCP: SYN-ACK parses", "[tcp]") {
  const TcpSegment s = must_parse(kSynAck, kUs, kPeer);
  CHECK(s.src_port() == 80);
  CHECK(s.dst_port() == 40000);
  CHECK(s.seq() == SeqNum{0x12345678});
  CHECK(s.ack() == SeqNum{0xfffffff1u});
  CHECK(s.ack() - SeqNum{0xfffffff0u} == 1);
  CHECK(s.flags() == (tcp_flag::kSyn | tcp_flag::kAck));
  CHECK(s.flags().has(tcp_flag::kSyn | tcp_flag::kAck));
  CHECK(s.window() == 65160);
  CHECK(s.seg_len() == 1);
  const TcpOptions o = must_parse_options(s);
  CHECK(o.mss == std::optional<std::uint16_t>{1460});
  CHECK(o.wscale == std::optional<std::uint8_t>{9});
  CHECK(o.sack_permitted);
  CHECK(o.timestamps == std::optional<TcpTimestamps>{TcpTimestamps{1000, 2864434397u}});
}

TEST_CASE("TCP: data segment with timestamps", "[tcp]") {
  const TcpSegment s = must_parse(kData, kPeer, kUs);
  CHECK(s.seq() == SeqNum{0xfffffffdu});
  CHECK(s.ack() == SeqNum{0x12345679});
  CHECK(s.header_len() == 32);
  CHECK(s.flags() == (tcp_flag::kPsh | tcp_flag::kAck));
  CHECK(s.flags().psh());
  CHECK(s.window() == 502);
  REQUIRE(s.payload().size() == 18);
  CHECK(s.payload().data() == kData.data() + 32);
  CHECK(s.payload()[0] == 'G');
  CHECK(s.payload()[17] == '\n');
  CHECK(s.seg_len() == 18);
  // The data spans the wrap: it ends 15 past 0.
  CHECK(s.seq() + static_cast<std::uint32_t>(s.seg_len()) == SeqNum{15});
  const TcpOptions o = must_parse_options(s);
  CHECK_FALSE(o.mss);
  CHECK_FALSE(o.wscale);
  CHECK_FALSE(o.sack_permitted);
  CHECK(o.timestamps == std::optional<TcpTimestamps>{TcpTimestamps{2864434500u, 1000}});
}

TEST_CASE("TCP: SACK with 1 to 4 blocks", "[tcp][sack]") {
  struct Case {
    const Vec* v;
    std::vector<std::uint32_t> edges;
    bool timestamps;
  };
  for (const Case& c : {
           Case{&kSack1, {2000, 3000}, true},
           Case{&kSack2, {4000, 5000, 2000, 3000}, true},
           Case{&kSack3, {0xfffffff0u, 0x10, 4000, 5000, 2000, 3000}, true},
           Case{&kSack4, {7000, 8000, 0xfffffff0u, 0x10, 4000, 5000, 2000, 3000}, false},
       }) {
    const std::size_t n = c.edges.size() / 2;
    INFO(n << " blocks");
    const TcpSegment s = must_parse(*c.v, kUs, kPeer);
    CHECK(s.flags() == tcp_flag::kAck);
    CHECK(s.ack() == SeqNum{1000});
    CHECK(s.payload().empty());
    CHECK(s.seg_len() == 0);
    const TcpOptions o = must_parse_options(s);
    REQUIRE(o.sack_count == n);
    REQUIRE(o.sacks().size() == n);
    for (std::size_t k = 0; k < n; ++k) {
      CHECK(o.sacks()[k].left == SeqNum{c.edges[2 * k]});
      CHECK(o.sacks()[k].right == SeqNum{c.edges[2 * k + 1]});
    }
    for (std::size_t k = n; k < kTcpMaxSackBlocks; ++k) CHECK(o.sack_blocks[k] == SackBlock{});
    CHECK(o.timestamps.has_value() == c.timestamps);
  }
  // The wrapping block is 0x20 long.
  const TcpOptions o = must_parse_options(must_parse(kSack3, kUs, kPeer));
  CHECK(o.sacks()[0].right - o.sacks()[0].left == 0x20);
}

TEST_CASE("TCP: RST and FIN+ACK", "[tcp]") {
  const TcpSegment r = must_parse(kRst, kUs, kPeer);
  CHECK(r.flags() == tcp_flag::kRst);
  CHECK(r.flags().rst());
  CHECK(r.header_len() == 20);
  CHECK(r.options().empty());
  CHECK(r.payload().empty());
  CHECK(r.window() == 0);
  CHECK(r.seg_len() == 0);
  CHECK(must_parse_options(r) == TcpOptions{});

  const TcpSegment f = must_parse(kFinAck, kPeer, kUs);
  CHECK(f.flags() == (tcp_flag::kFin | tcp_flag::kAck));
  CHECK(f.flags().fin());
  CHECK(f.seq() == SeqNum{0x11});
  CHECK(f.seg_len() == 1);  // FIN occupies one sequence number
  CHECK(must_parse_options(f).timestamps == std::optional<TcpTimestamps>{TcpTimestamps{2864434600u, 1102}});
}

TEST_CASE("TCP: URG, ECE, CWR, urgent pointer, odd payload", "[tcp]") {
  const TcpSegment s = must_parse(kUrgEce, kPeer, kUs);
  CHECK(s.src_port() == 1);
  CHECK(s.dst_port() == 65535);
  CHECK(s.window() == 65535);
  CHECK(s.urgent_ptr() == 3);
  CHECK(s.flags().bits == 0xf8);
  CHECK(s.flags().urg());
  CHECK(s.flags().ece());
  CHECK(s.flags().cwr());
  CHECK(s.flags().ack());
  CHECK(s.flags().psh());
  CHECK_FALSE(s.flags().fin());
  CHECK_FALSE(s.flags().syn());
  CHECK_FALSE(s.flags().rst());
  REQUIRE(s.payload().size() == 1);
  CHECK(s.payload()[0] == 'x');
}

TEST_CASE("TCP: flags, one bit each", "[tcp][flags]") {
  // RFC 9293 §3.1 figure 1 and RFC 3168 §6.1: bit order CWR ECE URG ACK PSH RST SYN FIN.
  struct Case {
    TcpFlags f;
    std::uint8_t bit;
    bool (TcpFlags::*get)() const;
  };
  const Case cases[] = {
      {tcp_flag::kFin, 0x01, &TcpFlags::fin}, {tcp_flag::kSyn, 0x02, &TcpFlags::syn},
      {tcp_flag::kRst, 0x04, &TcpFlags::rst}, {tcp_flag::kPsh, 0x08, &TcpFlags::psh},
      {tcp_flag::kAck, 0x10, &TcpFlags::ack}, {tcp_flag::kUrg, 0x20, &TcpFlags::urg},
      {tcp_flag::kEce, 0x40, &TcpFlags::ece}, {tcp_flag::kCwr, 0x80, &TcpFlags::cwr},
  };
  for (const Case& c : cases) {
    INFO("bit " << int{c.bit});
    CHECK(c.f.bits == c.bit);
    for (const Case& other : cases) CHECK((c.f.*other.get)() == (other.bit == c.bit));
  }
  CHECK((tcp_flag::kSyn | tcp_flag::kAck).bits == 0x12);
  CHECK(TcpFlags{0x12}.has(tcp_flag::kSyn));
  CHECK_FALSE(TcpFlags{0x02}.has(tcp_flag::kSyn | tcp_flag::kAck));
  CHECK(TcpFlags{}.has(TcpFlags{}));
}

TEST_CASE("TCP: truncated below the fixed header", "[tcp][malformed]") {
  for (std::size_t n = 0; n < 20; ++n) {
    INFO(n << " bytes");
    CHECK(TcpSegment::parse(Bytes{prefix(kSyn, n)}, kPeer, kUs).error() == ParseError::truncated);
    CHECK(TcpSegment::parse(Bytes{prefix(kSyn, n)}, kPeer, kUs, false).error() == ParseError::truncated);
  }
}

TEST_CASE("TCP: data offset below 5", "[tcp][malformed]") {
  CHECK(TcpSegment::parse(Bytes{kDoff4}, kPeer, kUs).error() == ParseError::bad_header_len);
  for (std::uint8_t doff = 0; doff < 5; ++doff) {
    Vec v = kRst;
    v[12] = static_cast<std::uint8_t>(doff << 4);
    INFO("data offset " << int{doff});
    CHECK(TcpSegment::parse(Bytes{v}, kUs, kPeer, false).error() == ParseError::bad_header_len);
    CHECK(TcpSegment::parse(Bytes{v}, kUs, kPeer).error() == ParseError::bad_header_len);
  }
}

TEST_CASE("TCP: data offset larger than the segment", "[tcp][malformed]") {
  CHECK(TcpSegment::parse(Bytes{kDoff15Short}, kPeer, kUs).error() == ParseError::truncated);
  // The SYN's data offset 10 needs 40 bytes; cut it inside its options.
  for (std::size_t n = 20; n < 40; ++n) {
    INFO(n << " bytes");
    CHECK(TcpSegment::parse(Bytes{prefix(kSyn, n)}, kPeer, kUs).error() == ParseError::truncated);
    CHECK(TcpSegment::parse(Bytes{prefix(kSyn, n)}, kPeer, kUs, false).error() == ParseError::truncated);
  }
  // Exactly the header (the SYN has no payload): accepted, checksum and all.
  CHECK(TcpSegment::parse(Bytes{prefix(kSyn, 40)}, kPeer, kUs).ok());
}

TEST_CASE("TCP: longer than a 16-bit TCP length", "[tcp][malformed]") {
  Vec big(kTcpMaxSegmentLen + 1, 0);
  std::copy(kRst.begin(), kRst.end(), big.begin());
  CHECK(TcpSegment::parse(Bytes{big}, kUs, kPeer).error() == ParseError::bad_length);
  CHECK(TcpSegment::parse(Bytes{big}, kUs, kPeer, false).error() == ParseError::bad_length);
  big.pop_back();  // 65535 is allowed (the checksum is not what this is about)
  CHECK(TcpSegment::parse(Bytes{big}, kUs, kPeer, false).ok());
}

TEST_CASE("TCP: bad checksum", "[tcp][malformed]") {
  // All three were sent by the peer to us.
  for (const Vec* golden : {&kSyn, &kData, &kUrgEce}) {
    for (std::size_t i = 0; i < golden->size(); ++i) {
      Vec v = *golden;
      v[i] ^= 0x01;  // low bit: byte 12 changes only the reserved bits
      INFO("flipped byte " << i << " of " << golden->size());
      CHECK(TcpSegment::parse(Bytes{v}, kPeer, kUs).error() == ParseError::bad_checksum);
      // The NIC verified it (or the caller does not care): accepted.
      CHECK(TcpSegment::parse(Bytes{v}, kPeer, kUs, /*verify_checksum=*/false).ok());
    }
  }
  // The pseudo-header is covered: a different source address...
  CHECK(TcpSegment::parse(Bytes{kSyn}, Ipv4Addr(192, 0, 2, 3), kUs).error() == ParseError::bad_checksum);
  CHECK(TcpSegment::parse(Bytes{kSyn}, Ipv4Addr(192, 0, 2, 3), kUs, false).ok());
  // ...or destination...
  CHECK(TcpSegment::parse(Bytes{kSyn}, kPeer, Ipv4Addr(198, 51, 100, 1)).error() == ParseError::bad_checksum);
  // ...but swapping them is invisible to a one's complement sum.
  CHECK(TcpSegment::parse(Bytes{kSyn}, kUs, kPeer).ok());
  // ...and the TCP length: link-layer padding left on the segment, even zeros,
  // changes the pseudo-header length (the caller must cut to the IP length).
  Vec padded = kRst;
  padded.resize(26, 0x00);
  CHECK(TcpSegment::parse(Bytes{padded}, kUs, kPeer).error() == ParseError::bad_checksum);
  // The uncomplemented sum in the field (a classic offload mistake) fails.
  Vec rst = kRst;
  rst[16] = 0xd9;  // ~0x269f
  rst[17] = 0x60;
  CHECK(TcpSegment::parse(Bytes{rst}, kUs, kPeer).error() == ParseError::bad_checksum);
}

TEST_CASE("TCP: malformed options leave the segment valid", "[tcp][options][malformed]") {
  for (const Vec* v : {&kOptLen0, &kOptLen1, &kOptOverrun, &kOptMssLen3, &kOptSackLen11}) {
    const TcpSegment s = must_parse(*v, kPeer, kUs);  // checksum and all
    INFO("options of " << s.options().size() << " bytes starting " << int{s.options()[0]});
    CHECK(s.flags() == tcp_flag::kAck);
    REQUIRE(s.payload().size() == 2);
    CHECK(s.payload()[0] == 'h');
    CHECK(TcpOptions::parse(s.options()).error() == ParseError::malformed);
  }
}

TEST_CASE("TCP: window scale above 14 is clamped", "[tcp][options]") {
  const TcpOptions o = must_parse_options(must_parse(kOptWscale15, kPeer, kUs));
  CHECK(o.wscale == std::optional<std::uint8_t>{14});
  CHECK(o.wscale_clamped);
  for (const std::uint8_t shift : {0, 1, 13, 14, 15, 16, 100, 255}) {
    const Vec opts{0x01, 0x03, 0x03, shift};
    const auto p = TcpOptions::parse(Bytes{opts});
    REQUIRE(p.ok());
    INFO("shift " << int{shift});
    CHECK(*p->wscale == (shift > 14 ? 14 : shift));
    CHECK(p->wscale_clamped == (shift > 14));
  }
  // The last window scale wins, with its own clamped flag.
  const Vec twice{0x03, 0x03, 0x20, 0x03, 0x03, 0x05};
  const auto p = TcpOptions::parse(Bytes{twice});
  REQUIRE(p.ok());
  CHECK(*p->wscale == 5);
  CHECK_FALSE(p->wscale_clamped);
}

TEST_CASE("TCP options: malformed lists", "[tcp][options][malformed]") {
  struct Case {
    const char* what;
    Vec opts;
  };
  const Case cases[] = {
      {"unknown kind, length 0", {0xfd, 0x00, 0x01, 0x01}},
      {"unknown kind, length 1", {0xfd, 0x01, 0x01, 0x01}},
      {"MSS length 0", {0x02, 0x00, 0x05, 0xb4}},
      {"MSS length 1", {0x02, 0x01, 0x05, 0xb4}},
      {"MSS length 3", {0x02, 0x03, 0x05, 0x01}},
      {"MSS length 5", {0x02, 0x05, 0x05, 0xb4, 0x00, 0x01, 0x01, 0x01}},
      {"MSS cut short", {0x01, 0x01, 0x02, 0x04, 0x05}},
      {"window scale length 2", {0x01, 0x03, 0x02, 0x01}},
      {"window scale length 4", {0x03, 0x04, 0x07, 0x00}},
      {"SACK-permitted length 3", {0x04, 0x03, 0x00, 0x01}},
      {"SACK-permitted length 4", {0x04, 0x04, 0x00, 0x00}},
      {"timestamps length 9", {0x08, 0x09, 0, 0, 0, 1, 0, 0, 0, 0x01, 0x01, 0x01}},
      {"timestamps length 11", {0x08, 0x0b, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x01}},
      {"timestamps overrun", {0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1}},
      {"SACK without blocks (length 2)", {0x05, 0x02, 0x01, 0x01}},
      {"SACK length 9", {0x05, 0x09, 0, 0, 0, 1, 0, 0, 0, 2, 0x01, 0x01}},
      {"SACK length 11", {0x05, 0x0b, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0x01}},
      {"SACK with 5 blocks (length 42)",
       {0x05, 0x2a, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0,
        0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0x01, 0x01}},
      {"SACK overrun", {0x01, 0x01, 0x05, 0x12, 0, 0, 0, 1, 0, 0, 0, 2}},
      {"kind with no room for its length", {0x01, 0x01, 0x01, 0xfd}},
      {"MSS with no room for its length", {0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x01, 0x02}},
      {"length 255", {0xfd, 0xff, 0x00, 0x00}},
      {"good options, then a bad one", {0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0xfe, 0x00, 0x01, 0x01}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK(TcpOptions::parse(Bytes{c.opts}).error() == ParseError::malformed);
  }
}

TEST_CASE("TCP options: accepted edge cases", "[tcp][options]") {
  SECTION("empty, all NOPs, EOL first") {
    CHECK(TcpOptions::parse(Bytes{}).value() == TcpOptions{});
    const Vec nops(40, 0x01);
    CHECK(TcpOptions::parse(Bytes{nops}).value() == TcpOptions{});
    const Vec eol(40, 0x00);
    CHECK(TcpOptions::parse(Bytes{eol}).value() == TcpOptions{});
  }
  SECTION("EOL ends the list; what follows is not read") {
    const Vec v{0x02, 0x04, 0x05, 0xb4, 0x00, 0x03, 0x03, 0x07, 0xfd, 0x00, 0xff, 0xff};
    const auto p = TcpOptions::parse(Bytes{v});
    REQUIRE(p.ok());
    CHECK(p->mss == std::optional<std::uint16_t>{1460});
    CHECK_FALSE(p->wscale);
  }
  SECTION("unknown kinds are skipped by their length") {
    // MPTCP (30) and an experiment (253), then MSS and SACK-permitted.
    const Vec v{0x1e, 0x0c, 0x00, 0x81, 1, 2, 3, 4, 5, 6, 7, 8,
                0xfd, 0x02, 0x02, 0x04, 0x02, 0x18, 0x04, 0x02};
    const auto p = TcpOptions::parse(Bytes{v});
    REQUIRE(p.ok());
    CHECK(p->mss == std::optional<std::uint16_t>{536});
    CHECK(p->sack_permitted);
  }
  SECTION("an unknown kind that contains valid-looking option bytes") {
    // Kind 253 length 6 hides "02 04 ff ff": it must not be read as an MSS.
    const Vec v{0xfd, 0x06, 0x02, 0x04, 0xff, 0xff, 0x01, 0x01};
    const auto p = TcpOptions::parse(Bytes{v});
    REQUIRE(p.ok());
    CHECK_FALSE(p->mss);
  }
  SECTION("an option that ends exactly at the end") {
    const Vec v{0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2};
    const auto p = TcpOptions::parse(Bytes{v});
    REQUIRE(p.ok());
    CHECK(p->timestamps == std::optional<TcpTimestamps>{TcpTimestamps{1, 2}});
  }
  SECTION("the last MSS wins; a shorter second SACK clears the first") {
    const Vec v{0x02, 0x04, 0x05, 0xb4, 0x02, 0x04, 0x02, 0x18,
                0x05, 0x12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
                0x05, 0x0a, 0, 0, 0, 9, 0, 0, 0, 10};
    const auto p = TcpOptions::parse(Bytes{v});
    REQUIRE(p.ok());
    CHECK(p->mss == std::optional<std::uint16_t>{536});
    REQUIRE(p->sack_count == 1);
    CHECK(p->sacks()[0] == SackBlock{SeqNum{9}, SeqNum{10}});
    CHECK(p->sack_blocks[1] == SackBlock{});
  }
}

TEST_CASE("TCP options: never read past the options area", "[tcp][options]") {
  // Each prefix of the SYN's options, cut inside a larger buffer whose next
  // bytes would complete the option: the parse must decide from the prefix
  // alone. Expected results written from the layout
  // [0..3] MSS, [4..5] SACK-permitted, [6..15] timestamps, [16] NOP, [17..19] WS.
  const Vec opts = tail(kSyn, 20);
  const bool ok_at[21] = {true,  false, false, false, true,  false, true,  false, false, false, false,
                          false, false, false, false, false, true,  true,  false, false, true};
  for (std::size_t n = 0; n <= 20; ++n) {
    INFO(n << " bytes of options");
    const auto p = TcpOptions::parse(Bytes{opts}.first(n));
    CHECK(p.ok() == ok_at[n]);
    if (!p.ok()) CHECK(p.error() == ParseError::malformed);
  }
  // A segment whose payload would complete an overrunning option.
  const TcpSegment s = must_parse(kOptOverrun, kPeer, kUs);
  CHECK(s.options().size() == 4);
  CHECK(TcpOptions::parse(s.options()).error() == ParseError::malformed);
}

TEST_CASE("TCP: emit writes the golden segments", "[tcp][emit]") {
  for (const Golden& g : goldens()) {
    INFO(g.name);
    const Vec& golden = *g.bytes;
    const std::size_t hl = golden.size() - g.payload_len;
    const Vec payload = tail(golden, hl);
    CHECK(g.repr.header_len() == hl);
    CHECK(g.repr.options_len() == hl - 20);
    CHECK(g.repr.sack_blocks_emitted() == g.repr.options.sack_count);
    Vec out(hl, 0xaa);
    g.repr.emit(MutBytes{out}, g.src, g.dst, Bytes{payload});
    out.insert(out.end(), payload.begin(), payload.end());
    CHECK(out == golden);  // checksum included: scapy's
  }
}

TEST_CASE("TCP: checksum offload writes the pseudo-header sum", "[tcp][emit][offload]") {
  for (const Golden& g : goldens()) {
    INFO(g.name);
    const Vec& golden = *g.bytes;
    const std::size_t hl = golden.size() - g.payload_len;
    const Vec payload = tail(golden, hl);
    Vec out(hl, 0xaa);
    g.repr.emit(MutBytes{out}, g.src, g.dst, Bytes{payload}, /*compute_checksum=*/false);
    // scapy's pseudo-header sum (folded, not complemented) in the field...
    CHECK(load_be16(Bytes{out}, TcpSegment::kChecksumOff) == g.pseudo_sum);
    // ...and everything else as computed in software.
    Vec expect = prefix(golden, hl);
    expect[16] = static_cast<std::uint8_t>(g.pseudo_sum >> 8);
    expect[17] = static_cast<std::uint8_t>(g.pseudo_sum);
    CHECK(out == expect);
    // What the NIC then does: sum header + payload from the L4 offset, field
    // included, and store the complement. That must give scapy's checksum.
    out.insert(out.end(), payload.begin(), payload.end());
    const std::uint16_t nic = internet_checksum(Bytes{out});
    CHECK(nic == load_be16(Bytes{golden}, TcpSegment::kChecksumOff));
  }
}

TEST_CASE("TCP: parse -> repr -> emit round trip", "[tcp][emit]") {
  for (const Golden& g : goldens()) {
    INFO(g.name);
    const Vec& golden = *g.bytes;
    const TcpSegment s = must_parse(golden, g.src, g.dst);
    const TcpRepr r = TcpRepr::from(s, must_parse_options(s));
    CHECK(r == g.repr);
    Vec out(r.header_len());
    r.emit(MutBytes{out}, g.src, g.dst, s.payload());
    out.insert(out.end(), s.payload().begin(), s.payload().end());
    CHECK(out == golden);
  }
}

TEST_CASE("TCP: option layout and the 40-byte limit", "[tcp][emit]") {
  TcpRepr r;
  r.src_port = 1;
  r.dst_port = 2;
  CHECK(r.header_len() == 20);
  r.options.mss = 1460;
  CHECK(r.options_len() == 4);
  r.options.sack_permitted = true;
  CHECK(r.options_len() == 8);  // NOP NOP SACK-permitted
  r.options.wscale = 7;
  CHECK(r.options_len() == 12);
  r.options.timestamps = TcpTimestamps{1, 2};
  CHECK(r.options_len() == 20);  // SACK-permitted shares the timestamps' word
  r.options.sack_permitted = false;
  CHECK(r.options_len() == 20);  // NOP NOP instead

  // SACK blocks fill what is left and no more; the first ones are kept.
  r.options = sack_options({1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(r.sack_blocks_emitted() == 4);
  CHECK(r.options_len() == 36);
  r.options.timestamps = TcpTimestamps{1, 2};
  CHECK(r.sack_blocks_emitted() == 3);  // as Linux: TS + 3 blocks
  CHECK(r.options_len() == 40);
  r.options.mss = 1460;
  r.options.wscale = 7;
  r.options.sack_permitted = true;
  CHECK(r.sack_blocks_emitted() == 2);
  CHECK(r.options_len() == 40);
  r.options.sack_count = 200;  // nonsense count: at most 4 are looked at
  CHECK(r.sack_blocks_emitted() == 2);
  r.options.timestamps.reset();
  r.options.sack_permitted = false;
  CHECK(r.sack_blocks_emitted() == 3);  // MSS + WS + 3 blocks = 36
  CHECK(r.options_len() == 36);

  // What is emitted parses back to the first blocks only.
  r.options = sack_options({1, 2, 3, 4, 5, 6, 7, 8});
  r.options.mss = 1460;
  r.options.wscale = 7;
  r.options.sack_permitted = true;
  r.options.timestamps = TcpTimestamps{10, 20};
  Vec out(r.header_len());
  REQUIRE(out.size() == 60);
  r.emit(MutBytes{out}, kUs, kPeer, Bytes{});
  // MSS | SACK-permitted TS | NOP WS | NOP NOP SACK(18): written from RFC layouts.
  const Vec expect_opts{0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 10, 0, 0, 0, 20,
                        0x01, 0x03, 0x03, 0x07, 0x01, 0x01, 0x05, 0x12, 0, 0, 0, 1, 0, 0, 0, 2,
                        0, 0, 0, 3, 0, 0, 0, 4};
  CHECK(tail(out, 20) == expect_opts);
  const TcpSegment s = must_parse(out, kUs, kPeer);
  CHECK(s.data_offset() == 15);
  const TcpOptions o = must_parse_options(s);
  REQUIRE(o.sack_count == 2);
  CHECK(o.sacks()[1] == SackBlock{SeqNum{3}, SeqNum{4}});
  CHECK(o.mss == r.options.mss);
  CHECK(o.timestamps == r.options.timestamps);
}

TEST_CASE("TCP: window scale above 14 is emitted as 14", "[tcp][emit]") {
  TcpRepr r;
  r.flags = tcp_flag::kSyn;
  r.options.wscale = 15;
  Vec out(r.header_len());
  REQUIRE(out.size() == 24);
  r.emit(MutBytes{out}, kPeer, kUs, Bytes{});
  CHECK(tail(out, 20) == Vec{0x01, 0x03, 0x03, 0x0e});
  const auto o = TcpOptions::parse(must_parse(out, kPeer, kUs).options());
  REQUIRE(o.ok());
  CHECK(*o->wscale == 14);
  CHECK_FALSE(o->wscale_clamped);
}

TEST_CASE("TCP: random values round trip through emit and parse", "[tcp][emit]") {
  std::mt19937 rng(7323);
  auto u32 = [&] { return static_cast<std::uint32_t>(rng()); };
  auto u16 = [&] { return static_cast<std::uint16_t>(rng()); };
  for (int i = 0; i < 5000; ++i) {
    TcpRepr r;
    r.src_port = u16();
    r.dst_port = u16();
    r.seq = SeqNum{u32()};
    r.ack = SeqNum{u32()};
    r.flags = TcpFlags{static_cast<std::uint8_t>(rng())};
    r.window = u16();
    r.urgent_ptr = u16();
    if (rng() % 2) r.options.mss = u16();
    if (rng() % 2) r.options.wscale = static_cast<std::uint8_t>(rng() % 15);
    r.options.sack_permitted = rng() % 2;
    if (rng() % 2) r.options.timestamps = TcpTimestamps{u32(), u32()};
    r.options.sack_count = static_cast<std::uint8_t>(rng() % 5);
    for (std::size_t k = 0; k < r.options.sack_count; ++k)
      r.options.sack_blocks[k] = SackBlock{SeqNum{u32()}, SeqNum{u32()}};
    Vec payload(rng() % 7);
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());

    Vec out(r.header_len());
    REQUIRE(out.size() <= 60);
    REQUIRE(out.size() % 4 == 0);
    r.emit(MutBytes{out}, kPeer, kUs, Bytes{payload});
    out.insert(out.end(), payload.begin(), payload.end());
    const auto s = TcpSegment::parse(Bytes{out}, kPeer, kUs);
    REQUIRE(s.ok());
    const auto o = TcpOptions::parse(s->options());
    REQUIRE(o.ok());
    // The blocks that did not fit are gone; everything else comes back.
    TcpRepr expect = r;
    expect.options.sack_count = static_cast<std::uint8_t>(r.sack_blocks_emitted());
    for (std::size_t k = expect.options.sack_count; k < kTcpMaxSackBlocks; ++k)
      expect.options.sack_blocks[k] = SackBlock{};
    INFO("iteration " << i);
    REQUIRE(TcpRepr::from(*s, *o) == expect);
    REQUIRE(s->payload().size() == payload.size());
  }
}
