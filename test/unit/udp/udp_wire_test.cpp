// UDP datagrams (RFC 768): golden bytes, every parse error, zero checksum,
// the 0 -> 0xffff rule, emit, checksum offload.
//
// Every vector was generated with scapy 2.5 (the expression is next to it;
// bytes are the UDP part of the IP packet, i.e. raw(IP(raw(pkt)))[20:]).
// The malformed ones were made malformed by scapy too (len=, chksum=). The
// "pseudo" values are the folded pseudo-header sums, computed by the same
// script from the addresses and the UDP length.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "wire/checksum.hpp"
#include "wire/udp.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

const Ipv4Addr kPeer(192, 0, 2, 2);
const Ipv4Addr kUs(192, 0, 2, 1);

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=5353, dport=9)/b"hello world"
// checksum 0xd503; pseudo 0x8428
const Vec kHello{
    0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0xd5, 0x03, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64,
};

// scapy: IP(src="192.0.2.1", dst="192.0.2.2")/UDP(sport=40000, dport=53)
// checksum 0xdf64; pseudo 0x841d
const Vec kEmpty{
    0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0xdf, 0x64,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=1234, dport=5678, chksum=0)/b"no checksum"
const Vec kZeroChecksum{
    0x04, 0xd2, 0x16, 0x2e, 0x00, 0x13, 0x00, 0x00, 0x6e, 0x6f, 0x20, 0x63,
    0x68, 0x65, 0x63, 0x6b, 0x73, 0x75, 0x6d,
};

// A payload chosen so that the computed checksum is 0, which RFC 768 sends as
// 0xffff (scapy does too).
// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=7, dport=7)/bytes.fromhex("7bc8")
// checksum 0xffff; pseudo 0x841f
const Vec kAllOnes{
    0x00, 0x07, 0x00, 0x07, 0x00, 0x0a, 0xff, 0xff, 0x7b, 0xc8,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=5353, dport=9, chksum=0x1234)/b"hello world"
const Vec kBadChecksum{
    0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0x12, 0x34, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64,
};

// scapy: UDP(sport=5353, dport=9, len=7, chksum=0)/b"hello world"
const Vec kLengthBelowHeader{
    0x14, 0xe9, 0x00, 0x09, 0x00, 0x07, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=5353, dport=9, len=30)/b"hello world"
const Vec kLengthPastBuffer{
    0x14, 0xe9, 0x00, 0x09, 0x00, 0x1e, 0xd4, 0xf8, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64,
};

// scapy: IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=5353, dport=9)/b"hell"
// checksum 0x920e; pseudo 0x8421. (kHelloTrailing appends " world" to it by
// hand: scapy would checksum the trailing bytes too, which no receiver does.)
const Vec kHell{
    0x14, 0xe9, 0x00, 0x09, 0x00, 0x0c, 0x92, 0x0e, 0x68, 0x65, 0x6c, 0x6c,
};

Vec tail(const Vec& v, std::size_t from) { return Vec(v.begin() + static_cast<std::ptrdiff_t>(from), v.end()); }

UdpDatagram must_parse(const Vec& v, Ipv4Addr src, Ipv4Addr dst) {
  const auto d = UdpDatagram::parse(Bytes{v}, src, dst);
  INFO("parse error " << to_string(d.error()));
  REQUIRE(d.ok());
  return *d;
}

struct Golden {
  const char* name;
  const Vec* bytes;
  Ipv4Addr src, dst;
  UdpRepr repr;
  std::uint16_t pseudo_sum;
};

const Golden kGoldens[] = {
    {"hello", &kHello, kPeer, kUs, {5353, 9}, 0x8428},
    {"empty", &kEmpty, kUs, kPeer, {40000, 53}, 0x841d},
    {"all ones", &kAllOnes, kPeer, kUs, {7, 7}, 0x841f},
};

}  // namespace

TEST_CASE("UDP: a datagram with an odd payload parses", "[udp][wire]") {
  const UdpDatagram d = must_parse(kHello, kPeer, kUs);
  CHECK(d.src_port() == 5353);
  CHECK(d.dst_port() == 9);
  CHECK(d.length() == 19);
  CHECK(d.checksum() == 0xd503);
  CHECK(d.has_checksum());
  CHECK(d.header().data() == kHello.data());
  CHECK(d.header().size() == 8);
  CHECK(d.payload().data() == kHello.data() + 8);
  CHECK(Vec(d.payload().begin(), d.payload().end()) == Vec{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  CHECK(d.bytes().size() == kHello.size());
  CHECK(UdpRepr::from(d) == UdpRepr{5353, 9});
}

TEST_CASE("UDP: an empty payload parses", "[udp][wire]") {
  const UdpDatagram d = must_parse(kEmpty, kUs, kPeer);
  CHECK(d.length() == 8);
  CHECK(d.payload().empty());
}

TEST_CASE("UDP: a zero checksum means none and is accepted", "[udp][wire]") {
  const UdpDatagram d = must_parse(kZeroChecksum, kPeer, kUs);
  CHECK_FALSE(d.has_checksum());
  CHECK(d.src_port() == 1234);
  CHECK(d.dst_port() == 5678);
  CHECK(d.payload().size() == 11);
  // Whatever the addresses: there is nothing to verify.
  CHECK(UdpDatagram::parse(Bytes{kZeroChecksum}, Ipv4Addr(1, 2, 3, 4), Ipv4Addr(5, 6, 7, 8)).ok());
  // But a corrupted payload is no longer caught: RFC 768's trade-off.
  Vec v = kZeroChecksum;
  v[10] ^= 0x40;
  CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs).ok());
}

TEST_CASE("UDP: a checksum of 0xffff (a computed zero) verifies", "[udp][wire]") {
  const UdpDatagram d = must_parse(kAllOnes, kPeer, kUs);
  CHECK(d.checksum() == 0xffff);
  CHECK(d.has_checksum());
}

TEST_CASE("UDP: truncated below the header", "[udp][wire][malformed]") {
  for (std::size_t n = 0; n < 8; ++n) {
    INFO(n << " bytes");
    const Vec v(kHello.begin(), kHello.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs).error() == ParseError::truncated);
    CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs, false).error() == ParseError::truncated);
  }
}

TEST_CASE("UDP: a length field below 8 or past the buffer", "[udp][wire][malformed]") {
  CHECK(UdpDatagram::parse(Bytes{kLengthBelowHeader}, kPeer, kUs).error() == ParseError::bad_length);
  CHECK(UdpDatagram::parse(Bytes{kLengthBelowHeader}, kPeer, kUs, false).error() == ParseError::bad_length);
  CHECK(UdpDatagram::parse(Bytes{kLengthPastBuffer}, kPeer, kUs).error() == ParseError::bad_length);
  CHECK(UdpDatagram::parse(Bytes{kLengthPastBuffer}, kPeer, kUs, false).error() == ParseError::bad_length);
  // A datagram cut short by one byte says more than it has.
  const Vec cut(kHello.begin(), kHello.end() - 1);
  CHECK(UdpDatagram::parse(Bytes{cut}, kPeer, kUs).error() == ParseError::bad_length);
  // Length 0 (the RFC 2675 jumbogram marker, IPv6 only) is below 8 too.
  Vec zero = kEmpty;
  zero[4] = zero[5] = 0;
  CHECK(UdpDatagram::parse(Bytes{zero}, kUs, kPeer, false).error() == ParseError::bad_length);
}

TEST_CASE("UDP: bytes after the length are cut off, and not summed", "[udp][wire]") {
  Vec trailing = kHell;
  for (char c : std::string_view{" world"}) trailing.push_back(static_cast<std::uint8_t>(c));
  const UdpDatagram d = must_parse(trailing, kPeer, kUs);
  CHECK(d.length() == 12);
  CHECK(d.bytes().size() == 12);
  CHECK(d.payload().size() == 4);
  CHECK(d.checksum() == 0x920e);
}

TEST_CASE("UDP: bad checksum", "[udp][wire][malformed]") {
  CHECK(UdpDatagram::parse(Bytes{kBadChecksum}, kPeer, kUs).error() == ParseError::bad_checksum);
  CHECK(UdpDatagram::parse(Bytes{kBadChecksum}, kPeer, kUs, /*verify_checksum=*/false).ok());
  // Any single bit flip outside the length field is caught (flips in the
  // length field are bad_length or a different checksum span).
  for (const Vec* golden : {&kHello, &kAllOnes}) {
    for (std::size_t i = 0; i < golden->size(); ++i) {
      if (i == UdpDatagram::kLengthOff || i == UdpDatagram::kLengthOff + 1) continue;
      Vec v = *golden;
      v[i] ^= 0x01;
      INFO("flipped byte " << i);
      CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs).error() == ParseError::bad_checksum);
      CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs, false).ok());
    }
  }
  // The pseudo-header is covered: a different source or destination.
  CHECK(UdpDatagram::parse(Bytes{kHello}, Ipv4Addr(192, 0, 2, 3), kUs).error() == ParseError::bad_checksum);
  CHECK(UdpDatagram::parse(Bytes{kHello}, kPeer, Ipv4Addr(192, 0, 2, 255)).error() == ParseError::bad_checksum);
  // The uncomplemented sum in the field (the offload form never finished by a NIC) fails.
  Vec v = kHello;
  v[6] = 0x2a;  // ~0xd503
  v[7] = 0xfc;
  CHECK(UdpDatagram::parse(Bytes{v}, kPeer, kUs).error() == ParseError::bad_checksum);
}

TEST_CASE("UDP: emit writes the golden datagrams", "[udp][wire][emit]") {
  for (const Golden& g : kGoldens) {
    INFO(g.name);
    const Vec payload = tail(*g.bytes, 8);
    Vec out(8, 0xaa);
    g.repr.emit(MutBytes{out}, g.src, g.dst, Bytes{payload});
    out.insert(out.end(), payload.begin(), payload.end());
    CHECK(out == *g.bytes);  // checksum included: scapy's, 0xffff for the zero sum
  }
}

TEST_CASE("UDP: checksum offload writes the pseudo-header sum", "[udp][wire][emit][offload]") {
  for (const Golden& g : kGoldens) {
    INFO(g.name);
    const Vec payload = tail(*g.bytes, 8);
    Vec out(8, 0xaa);
    g.repr.emit(MutBytes{out}, g.src, g.dst, Bytes{payload}, /*compute_checksum=*/false);
    CHECK(load_be16(Bytes{out}, UdpDatagram::kChecksumOff) == g.pseudo_sum);
    Vec expect(g.bytes->begin(), g.bytes->begin() + 8);
    expect[6] = static_cast<std::uint8_t>(g.pseudo_sum >> 8);
    expect[7] = static_cast<std::uint8_t>(g.pseudo_sum);
    CHECK(out == expect);
    // What the NIC does: sum from the L4 header on, field included, store the
    // complement, and send a zero result as 0xffff.
    out.insert(out.end(), payload.begin(), payload.end());
    std::uint16_t nic = internet_checksum(Bytes{out});
    if (nic == 0) nic = 0xffff;
    CHECK(nic == load_be16(Bytes{*g.bytes}, UdpDatagram::kChecksumOff));
  }
}

TEST_CASE("UDP: random datagrams round trip through emit and parse", "[udp][wire][emit]") {
  std::mt19937 rng(768);
  for (int iter = 0; iter < 2000; ++iter) {
    const UdpRepr r{static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng())};
    const Ipv4Addr src{static_cast<std::uint32_t>(rng())};
    const Ipv4Addr dst{static_cast<std::uint32_t>(rng())};
    Vec payload(rng() % 1500);
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
    Vec out(8 + payload.size());
    r.emit(MutBytes{out}, src, dst, Bytes{payload});
    std::copy(payload.begin(), payload.end(), out.begin() + 8);
    const auto d = UdpDatagram::parse(Bytes{out}, src, dst);
    REQUIRE(d.ok());
    CHECK(d->has_checksum());  // never 0: a computed zero goes out as 0xffff
    CHECK(UdpRepr::from(*d) == r);
    CHECK(d->length() == out.size());
    CHECK(d->payload().size() == payload.size());
  }
}
