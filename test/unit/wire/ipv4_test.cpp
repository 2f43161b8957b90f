// IPv4 headers (RFC 791): golden bytes, every parse error, options, padding,
// fragments, emit.
//
// Every vector was generated with scapy 2.5 (expression next to it). The
// malformed ones were generated malformed by scapy too, so their checksums
// are correct: each one fails for exactly the reason under test.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "wire/ipv4.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

// scapy: IP(src="192.0.2.2", dst="192.0.2.1", id=0x1c46, flags="DF", ttl=64)
//        /ICMP(type=8, id=0x1234, seq=1)/b"ustack!!"
const Vec kEcho{
    0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x9a, 0x8f,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x08, 0x00, 0x77, 0x69,
    0x12, 0x34, 0x00, 0x01, 0x75, 0x73, 0x74, 0x61, 0x63, 0x6b, 0x21, 0x21,
};

// scapy: IP(src="10.0.0.1", dst="10.0.0.2", id=0xbeef, flags="MF", frag=185,
//           ttl=17, tos=0xb8, proto=17)/Raw(b"\x00"*8)
const Vec kFragment{
    0x45, 0xb8, 0x00, 0x1c, 0xbe, 0xef, 0x20, 0xb9, 0x11, 0x11, 0xb5, 0x6e,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
};

// scapy: IP(version=6, src="192.0.2.2", dst="192.0.2.1", proto=1)
const Vec kVersion6{
    0x65, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0xd6, 0xe4,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01,
};

// scapy: IP(ihl=4, src="192.0.2.2", dst="192.0.2.1", proto=1)
const Vec kIhl4{
    0x44, 0x00, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0xf7, 0xe4,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01,
};

// scapy: IP(len=19, src="192.0.2.2", dst="192.0.2.1", proto=1): total < IHL*4.
const Vec kLen19{
    0x45, 0x00, 0x00, 0x13, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0xf6, 0xe5,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01,
};

// scapy: IP(len=40, src="192.0.2.2", dst="192.0.2.1", proto=17)/Raw(b"\x00"*8):
// total length 40 in a 28-byte buffer.
const Vec kLen40In28{
    0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0xf6, 0xc0,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
};

// IHL 6 with a Router Alert option, as IGMPv3 sends it.
// scapy: IP(src="192.0.2.2", dst="224.0.0.22", ttl=1, tos=0xc0, id=0, proto=2,
//           options=[IPOption_Router_Alert()])/Raw(bytes.fromhex("2200f9020000000104000000e00000fb"))
const Vec kRouterAlert{
    0x46, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x81, 0xf7,
    0xc0, 0x00, 0x02, 0x02, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00,
    0x22, 0x00, 0xf9, 0x02, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00,
    0xe0, 0x00, 0x00, 0xfb,
};

// IHL 15 (the maximum, 40 bytes of options) with Record Route.
// scapy: IP(src="192.0.2.2", dst="192.0.2.1", proto=17, ttl=7,
//           options=[IPOption_RR(routers=["10.0.0.%d" % i for i in range(1, 10)]),
//                    IPOption_EOL()])/Raw(bytes(range(4)))
const Vec kRecordRoute{
    0x4f, 0x00, 0x00, 0x40, 0x00, 0x01, 0x00, 0x00, 0x07, 0x11, 0xed, 0x27,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01, 0x07, 0x27, 0x04, 0x0a,
    0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x03, 0x0a,
    0x00, 0x00, 0x04, 0x0a, 0x00, 0x00, 0x05, 0x0a, 0x00, 0x00, 0x06, 0x0a,
    0x00, 0x00, 0x07, 0x0a, 0x00, 0x00, 0x08, 0x0a, 0x00, 0x00, 0x09, 0x00,
    0x00, 0x01, 0x02, 0x03,
};

// scapy: IP(src="10.0.0.1", dst="10.0.0.2", id=0xbeef, flags=0, ttl=17, tos=0xb8,
//           proto=17, len=28), header only.
const Vec kNoDfHeader{
    0x45, 0xb8, 0x00, 0x1c, 0xbe, 0xef, 0x00, 0x00, 0x11, 0x11, 0xd6, 0x27,
    0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
};

Vec prefix(const Vec& v, std::size_t n) { return Vec(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)); }

}  // namespace

TEST_CASE("IPv4: echo request header parses", "[ipv4]") {
  const auto p = Ipv4Packet::parse(Bytes{kEcho});
  REQUIRE(p.ok());
  CHECK(p->header_len() == 20);
  CHECK(p->total_len() == 36);
  CHECK(p->tos() == 0);
  CHECK(p->ident() == 0x1c46);
  CHECK(p->dont_fragment());
  CHECK_FALSE(p->more_fragments());
  CHECK(p->frag_offset() == 0);
  CHECK_FALSE(p->is_fragment());
  CHECK(p->ttl() == 64);
  CHECK(p->protocol() == ipproto::kIcmp);
  CHECK(p->checksum() == 0x9a8f);
  CHECK(p->src() == Ipv4Addr(192, 0, 2, 2));
  CHECK(p->dst() == Ipv4Addr(192, 0, 2, 1));
  CHECK(p->options().empty());
  CHECK(p->header().size() == 20);
  REQUIRE(p->payload().size() == 16);
  CHECK(p->payload().data() == kEcho.data() + 20);
  CHECK(p->payload()[0] == 0x08);  // ICMP echo request
  CHECK(p->bytes().size() == 36);
}

TEST_CASE("IPv4: fragment flags, offset, TOS", "[ipv4][fragment]") {
  const auto p = Ipv4Packet::parse(Bytes{kFragment});
  REQUIRE(p.ok());
  CHECK(p->tos() == 0xb8);
  CHECK(p->ident() == 0xbeef);
  CHECK_FALSE(p->dont_fragment());
  CHECK(p->more_fragments());
  CHECK(p->frag_offset() == 185 * 8);  // 1480 bytes
  CHECK(p->is_fragment());
  CHECK(p->ttl() == 17);
  CHECK(p->protocol() == ipproto::kUdp);
  CHECK(p->payload().size() == 8);
}

TEST_CASE("IPv4: fragment accessors over the whole flags/offset word", "[ipv4][fragment]") {
  // Checksum is not what this test is about: verification off.
  struct Case {
    std::uint16_t word;
    bool df, mf;
    std::size_t offset;
    bool fragment;
  };
  for (const Case c : {
           Case{0x0000, false, false, 0, false},
           Case{0x4000, true, false, 0, false},
           Case{0x2000, false, true, 0, true},      // first fragment
           Case{0x00b9, false, false, 1480, true},  // last fragment
           Case{0x1fff, false, false, 0x1fff * 8, true},  // max offset 65528
           Case{0x3fff, false, true, 0x1fff * 8, true},
           Case{0x8000, false, false, 0, false},    // reserved bit alone
           Case{0x6001, true, true, 8, true},
       }) {
    Vec v = kFragment;
    v[6] = static_cast<std::uint8_t>(c.word >> 8);
    v[7] = static_cast<std::uint8_t>(c.word);
    const auto p = Ipv4Packet::parse(Bytes{v}, /*verify_checksum=*/false);
    REQUIRE(p.ok());
    INFO("flags/offset word " << c.word);
    CHECK(p->dont_fragment() == c.df);
    CHECK(p->more_fragments() == c.mf);
    CHECK(p->frag_offset() == c.offset);
    CHECK(p->is_fragment() == c.fragment);
  }
}

TEST_CASE("IPv4: truncated below the fixed header", "[ipv4][malformed]") {
  for (std::size_t n = 0; n < 20; ++n) {
    INFO(n << " bytes");
    CHECK(Ipv4Packet::parse(Bytes{prefix(kEcho, n)}).error() == ParseError::truncated);
  }
}

TEST_CASE("IPv4: version other than 4", "[ipv4][malformed]") {
  CHECK(Ipv4Packet::parse(Bytes{kVersion6}).error() == ParseError::bad_version);
  // Version 0 and 15 too, and version is checked before anything else.
  for (std::uint8_t vi : {0x05, 0xf5, 0x35, 0x60}) {
    Vec v = kEcho;
    v[0] = vi;
    INFO("ver/ihl " << int{vi});
    CHECK(Ipv4Packet::parse(Bytes{v}, false).error() == ParseError::bad_version);
  }
}

TEST_CASE("IPv4: IHL below 5", "[ipv4][malformed]") {
  CHECK(Ipv4Packet::parse(Bytes{kIhl4}).error() == ParseError::bad_header_len);
  for (std::uint8_t ihl = 0; ihl < 5; ++ihl) {
    Vec v = kEcho;
    v[0] = static_cast<std::uint8_t>(0x40 | ihl);
    INFO("ihl " << int{ihl});
    CHECK(Ipv4Packet::parse(Bytes{v}, false).error() == ParseError::bad_header_len);
  }
}

TEST_CASE("IPv4: IHL larger than the buffer", "[ipv4][malformed]") {
  // IHL 15 needs 60 bytes; cut the RR packet inside its options.
  for (std::size_t n = 20; n < 60; ++n) {
    INFO(n << " bytes");
    CHECK(Ipv4Packet::parse(Bytes{prefix(kRecordRoute, n)}).error() == ParseError::truncated);
  }
}

TEST_CASE("IPv4: total length shorter than the header", "[ipv4][malformed]") {
  CHECK(Ipv4Packet::parse(Bytes{kLen19}).error() == ParseError::bad_length);
  // Total length 0 (as with TSO on some stacks) is equally refused.
  Vec v = kEcho;
  v[2] = v[3] = 0;
  CHECK(Ipv4Packet::parse(Bytes{v}, false).error() == ParseError::bad_length);
  // With options, total must cover IHL*4, not just 20.
  Vec ra = kRouterAlert;
  ra[2] = 0;
  ra[3] = 23;
  CHECK(Ipv4Packet::parse(Bytes{ra}, false).error() == ParseError::bad_length);
  ra[3] = 24;  // exactly the header: fine, empty payload
  const auto p = Ipv4Packet::parse(Bytes{ra}, false);
  REQUIRE(p.ok());
  CHECK(p->payload().empty());
}

TEST_CASE("IPv4: total length longer than the buffer", "[ipv4][malformed]") {
  CHECK(Ipv4Packet::parse(Bytes{kLen40In28}).error() == ParseError::truncated);
  // A valid packet cut short by one byte.
  CHECK(Ipv4Packet::parse(Bytes{prefix(kEcho, kEcho.size() - 1)}).error() == ParseError::truncated);
}

TEST_CASE("IPv4: bad header checksum", "[ipv4][malformed]") {
  for (std::size_t i = 0; i < 20; ++i) {
    if (i == 0 || i == 2 || i == 3) continue;  // these change the length checks
    Vec v = kEcho;
    v[i] ^= 0x10;
    INFO("flipped byte " << i);
    CHECK(Ipv4Packet::parse(Bytes{v}).error() == ParseError::bad_checksum);
    // The NIC verified it (or the caller does not care): accepted.
    CHECK(Ipv4Packet::parse(Bytes{v}, /*verify_checksum=*/false).ok());
  }
  // The payload is not covered by the header checksum.
  Vec v = kEcho;
  v[30] ^= 0xff;
  CHECK(Ipv4Packet::parse(Bytes{v}).ok());
  // Options are covered.
  Vec ra = kRouterAlert;
  ra[22] ^= 0x01;
  CHECK(Ipv4Packet::parse(Bytes{ra}).error() == ParseError::bad_checksum);
}

TEST_CASE("IPv4: options are skipped, IHL 6..15", "[ipv4][options]") {
  SECTION("Router Alert, IHL 6") {
    const auto p = Ipv4Packet::parse(Bytes{kRouterAlert});
    REQUIRE(p.ok());
    CHECK(p->header_len() == 24);
    CHECK(p->total_len() == 40);
    CHECK(p->tos() == 0xc0);
    CHECK(p->ttl() == 1);
    CHECK(p->protocol() == ipproto::kIgmp);
    CHECK(p->dst() == Ipv4Addr(224, 0, 0, 22));
    REQUIRE(p->options().size() == 4);
    CHECK(p->options()[0] == 0x94);
    CHECK(p->options()[1] == 0x04);
    REQUIRE(p->payload().size() == 16);
    CHECK(p->payload()[0] == 0x22);  // IGMPv3 report
    CHECK(p->payload().data() == kRouterAlert.data() + 24);
  }
  SECTION("Record Route, IHL 15") {
    const auto p = Ipv4Packet::parse(Bytes{kRecordRoute});
    REQUIRE(p.ok());
    CHECK(p->header_len() == 60);
    CHECK(p->options().size() == 40);
    CHECK(p->options()[0] == 0x07);
    CHECK(p->header().size() == 60);
    REQUIRE(p->payload().size() == 4);
    CHECK(p->payload()[3] == 0x03);
  }
  SECTION("NOP padding, every IHL from 6 to 15") {
    // scapy: IP(src="192.0.2.2", dst="192.0.2.1", proto=17, ttl=7,
    //           options=[IPOption_NOP()]*(4*n-1) + [IPOption_EOL()])/Raw(bytes(range(4)))
    // for n = 1..10; the header checksums scapy computed:
    const std::uint16_t cksum[] = {0x2ccc, 0x29c6, 0x26c0, 0x23ba, 0x20b4,
                                   0x1dae, 0x1aa8, 0x17a2, 0x149c, 0x1196};
    for (std::size_t n = 1; n <= 10; ++n) {
      const std::size_t hl = 20 + 4 * n;
      Vec v{static_cast<std::uint8_t>(0x40 | (5 + n)), 0x00, 0x00, static_cast<std::uint8_t>(hl + 4),
            0x00, 0x01, 0x00, 0x00, 0x07, 0x11,
            static_cast<std::uint8_t>(cksum[n - 1] >> 8), static_cast<std::uint8_t>(cksum[n - 1]),
            0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01};
      v.insert(v.end(), 4 * n - 1, 0x01);  // NOP
      v.push_back(0x00);                   // EOL
      for (std::uint8_t b : {0, 1, 2, 3}) v.push_back(b);
      INFO("IHL " << 5 + n);
      const auto p = Ipv4Packet::parse(Bytes{v});
      REQUIRE(p.ok());
      CHECK(p->header_len() == hl);
      CHECK(p->options().size() == 4 * n);
      REQUIRE(p->payload().size() == 4);
      CHECK(p->payload()[0] == 0);
      CHECK(p->payload()[3] == 3);
      CHECK(p->src() == Ipv4Addr(192, 0, 2, 2));
    }
  }
}

TEST_CASE("IPv4: link-layer padding after total length is cut off", "[ipv4]") {
  // A 28-byte datagram in a minimum-size Ethernet frame carries 18 bytes of
  // padding (46 - 28).
  Vec padded = kFragment;
  padded.resize(46, 0xa5);
  const auto p = Ipv4Packet::parse(Bytes{padded});
  REQUIRE(p.ok());
  CHECK(p->total_len() == 28);
  CHECK(p->bytes().size() == 28);
  REQUIRE(p->payload().size() == 8);
  for (auto b : p->payload()) CHECK(b == 0x00);  // none of the 0xa5 padding
}

TEST_CASE("IPv4: emit writes the golden header", "[ipv4][emit]") {
  SECTION("DF, checksum computed") {
    const Ipv4Repr r{Ipv4Addr(192, 0, 2, 2), Ipv4Addr(192, 0, 2, 1), ipproto::kIcmp,
                     16, 64, 0, 0x1c46, true};
    CHECK(r.buffer_len() == 36);
    Vec out(20, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == prefix(kEcho, 20));
  }
  SECTION("no DF, TOS set") {
    const Ipv4Repr r{Ipv4Addr(10, 0, 0, 1), Ipv4Addr(10, 0, 0, 2), ipproto::kUdp,
                     8, 17, 0xb8, 0xbeef, false};
    Vec out(20, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kNoDfHeader);
  }
  SECTION("checksum left zero for the NIC") {
    const Ipv4Repr r{Ipv4Addr(192, 0, 2, 2), Ipv4Addr(192, 0, 2, 1), ipproto::kIcmp,
                     16, 64, 0, 0x1c46, true};
    Vec out(20, 0xaa);
    r.emit(MutBytes{out}, /*compute_checksum=*/false);
    Vec expect = prefix(kEcho, 20);
    expect[10] = expect[11] = 0;
    CHECK(out == expect);
  }
}

TEST_CASE("IPv4: emit with Router Alert writes the golden IHL-6 header", "[ipv4][emit][options]") {
  // The header of kRouterAlert (scapy's default flags: no DF).
  Ipv4Repr r{Ipv4Addr(192, 0, 2, 2), Ipv4Addr(224, 0, 0, 22), ipproto::kIgmp, 16, 1, 0xc0, 0, false, true};
  CHECK(r.header_len() == 24);
  CHECK(r.buffer_len() == 40);
  Vec out(24, 0xaa);
  r.emit(MutBytes{out});
  CHECK(out == prefix(kRouterAlert, 24));
  // Checksum left to the NIC: only the checksum field differs.
  Vec nic(24, 0xaa);
  r.emit(MutBytes{nic}, /*compute_checksum=*/false);
  Vec expect = prefix(kRouterAlert, 24);
  expect[10] = expect[11] = 0;
  CHECK(nic == expect);
  // Without the flag the header is the usual 20 bytes.
  r.router_alert = false;
  CHECK(r.header_len() == 20);
  Vec plain(20);
  r.emit(MutBytes{plain});
  CHECK(plain[0] == 0x45);
  CHECK(checksum_ok(Bytes{plain}));
}

TEST_CASE("IPv4: has_router_alert walks the option list", "[ipv4][options]") {
  const auto ra = Ipv4Packet::parse(Bytes{kRouterAlert});
  REQUIRE(ra.ok());
  CHECK(ra->has_router_alert());
  const auto rr = Ipv4Packet::parse(Bytes{kRecordRoute});
  REQUIRE(rr.ok());
  CHECK_FALSE(rr->has_router_alert());
  const auto plain = Ipv4Packet::parse(Bytes{kEcho});
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->has_router_alert());
  // Option lists built by hand, checked with verification off.
  auto with_options = [](const Vec& opts) {
    Vec v{static_cast<std::uint8_t>(0x40 | (5 + opts.size() / 4)), 0, 0, static_cast<std::uint8_t>(20 + opts.size()),
          0, 0, 0, 0, 1, 2, 0, 0, 192, 0, 2, 2, 224, 0, 0, 22};
    v.insert(v.end(), opts.begin(), opts.end());
    return v;
  };
  struct Case {
    Vec opts;
    bool expect;
  };
  for (const Case& c : {
           Case{{0x01, 0x94, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00}, true},   // after a NOP
           Case{{0x07, 0x03, 0x04, 0x94, 0x04, 0x00, 0x00, 0x00}, true},   // after another option
           Case{{0x00, 0x94, 0x04, 0x00}, false},                          // after EOL: not in the list
           Case{{0x94, 0x04, 0x00, 0x01}, false},                          // value other than 0
           Case{{0x94, 0x03, 0x00, 0x00}, false},                          // wrong length
           Case{{0x07, 0x00, 0x94, 0x04}, false},                          // length 0: walk stops
           Case{{0x07, 0x09, 0x94, 0x04}, false},                          // length past the end
           Case{{0x01, 0x01, 0x01, 0x94}, false},                          // no room for the length
       }) {
    const Vec v = with_options(c.opts);
    const auto p = Ipv4Packet::parse(Bytes{v}, /*verify_checksum=*/false);
    REQUIRE(p.ok());
    CHECK(p->has_router_alert() == c.expect);
  }
}

TEST_CASE("IPv4: parse -> repr -> emit round trip", "[ipv4][emit]") {
  for (const Vec* golden : {&kEcho, &kFragment}) {
    const auto p = Ipv4Packet::parse(Bytes{*golden});
    REQUIRE(p.ok());
    const Ipv4Repr r = Ipv4Repr::from(*p);
    CHECK(r.buffer_len() == golden->size());
    Vec out(*golden);
    r.emit(MutBytes{out});
    const auto again = Ipv4Packet::parse(Bytes{out});
    REQUIRE(again.ok());
    CHECK(Ipv4Repr::from(*again) == r);
    if (golden == &kEcho) CHECK(out == kEcho);  // no fragment bits: byte-identical
  }
  // A header with options comes back without them (the repr never sends
  // options), with the same payload length.
  const auto ra = Ipv4Packet::parse(Bytes{kRouterAlert});
  REQUIRE(ra.ok());
  const Ipv4Repr r = Ipv4Repr::from(*ra);
  CHECK(r.payload_len == 16);
  Vec out(r.buffer_len());
  r.emit(MutBytes{out});
  const auto again = Ipv4Packet::parse(Bytes{out});
  REQUIRE(again.ok());
  CHECK(again->header_len() == 20);
  CHECK(again->total_len() == 36);
  CHECK(again->dst() == Ipv4Addr(224, 0, 0, 22));
}
