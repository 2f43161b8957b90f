// ARP for IPv4 over Ethernet (RFC 826): golden bytes, parse and emit.
//
// Vectors generated with scapy 2.5 (expression next to each).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "wire/arp.hpp"
#include "wire/ethernet.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

// scapy: ARP(op=1, hwsrc="02:00:00:00:00:02", psrc="192.0.2.2",
//            hwdst="00:00:00:00:00:00", pdst="192.0.2.1")
const Vec kRequest{
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x02, 0xc0, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xc0, 0x00, 0x02, 0x01,
};

// scapy: ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="192.0.2.1",
//            hwdst="02:00:00:00:00:02", pdst="192.0.2.2")
const Vec kReply{
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xc0, 0x00, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xc0, 0x00, 0x02, 0x02,
};

// scapy: Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:02")/Dot1Q(prio=5, id=1, vlan=100)
//        /ARP(op=1, hwsrc="02:00:00:00:00:02", psrc="192.0.2.2", pdst="192.0.2.1")
const Vec kTaggedFrame{
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x81, 0x00, 0xb0, 0x64, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x01,
};

constexpr MacAddr kMac1{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr MacAddr kMac2{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr Ipv4Addr kIp1(192, 0, 2, 1);
constexpr Ipv4Addr kIp2(192, 0, 2, 2);

Vec with(Vec v, std::size_t off, std::uint8_t b) {
  v[off] = b;
  return v;
}

}  // namespace

TEST_CASE("ARP: request parses", "[arp]") {
  const auto p = ArpPacket::parse(Bytes{kRequest});
  REQUIRE(p.ok());
  CHECK(p->op() == ArpOp::request);
  CHECK(p->sender_mac() == kMac2);
  CHECK(p->sender_ip() == kIp2);
  CHECK(p->target_mac().is_zero());
  CHECK(p->target_ip() == kIp1);
}

TEST_CASE("ARP: reply parses", "[arp]") {
  const auto p = ArpPacket::parse(Bytes{kReply});
  REQUIRE(p.ok());
  CHECK(p->op() == ArpOp::reply);
  CHECK(p->sender_mac() == kMac1);
  CHECK(p->sender_ip() == kIp1);
  CHECK(p->target_mac() == kMac2);
  CHECK(p->target_ip() == kIp2);
}

TEST_CASE("ARP: inside a tagged Ethernet frame", "[arp]") {
  const auto f = EthernetFrame::parse(Bytes{kTaggedFrame});
  REQUIRE(f.ok());
  REQUIRE(f->ethertype() == ethertype::kArp);
  const auto p = ArpPacket::parse(f->payload());
  REQUIRE(p.ok());
  CHECK(p->op() == ArpOp::request);
  CHECK(p->sender_ip() == kIp2);
  CHECK(p->target_ip() == kIp1);
}

TEST_CASE("ARP: Ethernet minimum-size padding is ignored", "[arp]") {
  // A 42-byte ARP frame is padded to 60 bytes on the wire: 18 trailing bytes.
  Vec padded = kReply;
  padded.resize(kReply.size() + 18, 0xee);
  const auto p = ArpPacket::parse(Bytes{padded});
  REQUIRE(p.ok());
  CHECK(ArpRepr::from(*p) == ArpRepr::from(*ArpPacket::parse(Bytes{kReply})));
  CHECK(p->target_ip() == kIp2);
}

TEST_CASE("ARP: truncated", "[arp][malformed]") {
  for (std::size_t n = 0; n < kArpLen; ++n) {
    const Vec v(kRequest.begin(), kRequest.begin() + static_cast<std::ptrdiff_t>(n));
    INFO(n << " bytes");
    CHECK(ArpPacket::parse(Bytes{v}).error() == ParseError::truncated);
  }
}

TEST_CASE("ARP: other hardware or protocol types are unsupported", "[arp][malformed]") {
  // htype 6 (IEEE 802), hlen still 6.
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 1, 0x06)}).error() == ParseError::unsupported);
  // htype 0x0101 (high byte set).
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 0, 0x01)}).error() == ParseError::unsupported);
  // ptype 0x86dd (IPv6 over ARP does not exist, but is well-formed ARP).
  CHECK(ArpPacket::parse(Bytes{with(with(kRequest, 2, 0x86), 3, 0xdd)}).error() == ParseError::unsupported);
  // ptype 0x0801.
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 3, 0x01)}).error() == ParseError::unsupported);
}

TEST_CASE("ARP: opcodes other than request/reply are unsupported", "[arp][malformed]") {
  // 0 (reserved), 3/4 (RARP), 8/9 (InARP), 0x0101 (high byte).
  for (std::uint8_t op : {0, 3, 4, 8, 9}) {
    INFO("op " << int{op});
    CHECK(ArpPacket::parse(Bytes{with(kRequest, 7, op)}).error() == ParseError::unsupported);
  }
  CHECK(ArpPacket::parse(Bytes{with(kReply, 6, 0x01)}).error() == ParseError::unsupported);
}

TEST_CASE("ARP: Ethernet/IPv4 with wrong address lengths is malformed", "[arp][malformed]") {
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 4, 8)}).error() == ParseError::malformed);   // hlen 8
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 4, 0)}).error() == ParseError::malformed);   // hlen 0
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 5, 16)}).error() == ParseError::malformed);  // plen 16
  CHECK(ArpPacket::parse(Bytes{with(kRequest, 5, 0)}).error() == ParseError::malformed);   // plen 0
}

TEST_CASE("ARP: emit writes the golden bytes", "[arp][emit]") {
  const ArpRepr req{ArpOp::request, kMac2, kIp2, MacAddr{}, kIp1};
  const ArpRepr rep{ArpOp::reply, kMac1, kIp1, kMac2, kIp2};
  REQUIRE(ArpRepr::buffer_len() == 28);
  Vec out(28, 0xaa);
  req.emit(MutBytes{out});
  CHECK(out == kRequest);
  Vec out2(28, 0xaa);
  rep.emit(MutBytes{out2});
  CHECK(out2 == kReply);
}

TEST_CASE("ARP: parse -> repr -> emit round trip", "[arp][emit]") {
  for (const Vec* golden : {&kRequest, &kReply}) {
    const auto p = ArpPacket::parse(Bytes{*golden});
    REQUIRE(p.ok());
    const ArpRepr r = ArpRepr::from(*p);
    Vec out(ArpRepr::buffer_len());
    r.emit(MutBytes{out});
    CHECK(out == *golden);
  }
}
