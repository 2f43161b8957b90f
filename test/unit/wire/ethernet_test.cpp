// Ethernet II with and without an 802.1Q tag: golden bytes, parse and emit.
//
// Vectors were generated with scapy 2.5 (expressions next to each) and pasted
// as literals.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include "wire/ethernet.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

// scapy: Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02", type=0x0800)/Raw(b"\x45\x00")
const Vec kUntagged{
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00,
};

// scapy: Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:02")
//        /Dot1Q(prio=5, id=1, vlan=100)
//        /ARP(op=1, hwsrc="02:00:00:00:00:02", psrc="192.0.2.2", pdst="192.0.2.1")
// TCI 0xb064: PCP 5, DEI 1, VID 100.
const Vec kTagged{
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x81, 0x00, 0xb0, 0x64, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x02, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x01,
};

constexpr MacAddr kMac1{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr MacAddr kMac2{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

Vec prefix(const Vec& v, std::size_t n) { return Vec(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)); }

}  // namespace

TEST_CASE("Ethernet: untagged frame parses", "[ethernet]") {
  const auto f = EthernetFrame::parse(Bytes{kUntagged});
  REQUIRE(f.ok());
  CHECK(f->dst() == kMac1);
  CHECK(f->src() == kMac2);
  CHECK(f->ethertype() == ethertype::kIpv4);
  CHECK_FALSE(f->has_vlan());
  CHECK_FALSE(f->vlan_tci().has_value());
  CHECK_FALSE(f->vlan_id().has_value());
  CHECK(f->header_len() == 14);
  REQUIRE(f->payload().size() == 2);
  CHECK(f->payload()[0] == 0x45);
  CHECK(f->payload().data() == kUntagged.data() + 14);
  CHECK(f->bytes().size() == kUntagged.size());
}

TEST_CASE("Ethernet: 802.1Q tagged frame parses", "[ethernet][vlan]") {
  const auto f = EthernetFrame::parse(Bytes{kTagged});
  REQUIRE(f.ok());
  CHECK(f->dst() == MacAddr::broadcast());
  CHECK(f->src() == kMac2);
  CHECK(f->has_vlan());
  REQUIRE(f->vlan_tci().has_value());
  CHECK(*f->vlan_tci() == 0xb064);
  CHECK(*f->vlan_id() == 100);
  // The ethertype is the inner one, not 0x8100.
  CHECK(f->ethertype() == ethertype::kArp);
  CHECK(f->header_len() == 18);
  REQUIRE(f->payload().size() == 28);
  CHECK(f->payload().data() == kTagged.data() + 18);
  CHECK(f->payload()[0] == 0x00);
  CHECK(f->payload()[1] == 0x01);  // ARP htype
}

TEST_CASE("Ethernet: VID uses only the low 12 bits of the TCI", "[ethernet][vlan]") {
  Vec v = kTagged;
  v[14] = 0xff;  // PCP 7, DEI 1, VID high nibble 0xf
  v[15] = 0xfe;
  const auto f = EthernetFrame::parse(Bytes{v});
  REQUIRE(f.ok());
  CHECK(*f->vlan_tci() == 0xfffe);
  CHECK(*f->vlan_id() == 0x0ffe);
}

TEST_CASE("Ethernet: truncated frames", "[ethernet][malformed]") {
  for (std::size_t n = 0; n < 14; ++n) {
    INFO("untagged, " << n << " bytes");
    CHECK(EthernetFrame::parse(Bytes{prefix(kUntagged, n)}).error() == ParseError::truncated);
  }
  // Exactly a header: valid, empty payload.
  const Vec hdr_only = prefix(kUntagged, 14);
  const auto h = EthernetFrame::parse(Bytes{hdr_only});
  REQUIRE(h.ok());
  CHECK(h->payload().empty());

  // Tag announced (0x8100) but the TCI or inner ethertype is cut off.
  for (std::size_t n = 14; n < 18; ++n) {
    INFO("tagged, " << n << " bytes");
    CHECK(EthernetFrame::parse(Bytes{prefix(kTagged, n)}).error() == ParseError::truncated);
  }
  const Vec tag_only = prefix(kTagged, 18);
  const auto t = EthernetFrame::parse(Bytes{tag_only});
  REQUIRE(t.ok());
  CHECK(t->ethertype() == ethertype::kArp);
  CHECK(t->payload().empty());
}

TEST_CASE("Ethernet: 802.1ad outer tag is not unwrapped", "[ethernet][vlan]") {
  // QinQ (0x88a8) is reported as the ethertype for the caller to drop.
  Vec v = kTagged;
  v[12] = 0x88;
  v[13] = 0xa8;
  const auto f = EthernetFrame::parse(Bytes{v});
  REQUIRE(f.ok());
  CHECK_FALSE(f->has_vlan());
  CHECK(f->ethertype() == ethertype::kQinQ);
  CHECK(f->header_len() == 14);
}

TEST_CASE("Ethernet: emit writes the golden header", "[ethernet][emit]") {
  SECTION("untagged") {
    const EthernetRepr r{kMac1, kMac2, ethertype::kIpv4, std::nullopt};
    REQUIRE(r.header_len() == 14);
    Vec out(14, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == prefix(kUntagged, 14));
  }
  SECTION("tagged") {
    const EthernetRepr r{MacAddr::broadcast(), kMac2, ethertype::kArp, std::uint16_t{0xb064}};
    REQUIRE(r.header_len() == 18);
    Vec out(18, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == prefix(kTagged, 18));
  }
  SECTION("writes only header_len bytes") {
    const EthernetRepr r{kMac1, kMac2, ethertype::kArp, std::nullopt};
    Vec out(20, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out[14] == 0xaa);
    CHECK(out[19] == 0xaa);
  }
}

TEST_CASE("Ethernet: parse -> repr -> emit round trip", "[ethernet][emit]") {
  for (const Vec* golden : {&kUntagged, &kTagged}) {
    const auto f = EthernetFrame::parse(Bytes{*golden});
    REQUIRE(f.ok());
    const EthernetRepr r = EthernetRepr::from(*f);
    CHECK(r.header_len() == f->header_len());
    Vec out(r.header_len());
    r.emit(MutBytes{out});
    CHECK(out == prefix(*golden, r.header_len()));
    // Re-parsing the emitted header gives the same value.
    const auto again = EthernetFrame::parse(Bytes{out});
    REQUIRE(again.ok());
    CHECK(EthernetRepr::from(*again) == r);
  }
}

TEST_CASE("Ethernet: IPv4 multicast MAC mapping (RFC 1112 §6.4)", "[ethernet]") {
  // 01:00:5e followed by the low 23 bits of the group address.
  CHECK(multicast_mac(Ipv4Addr(224, 0, 0, 1)) == MacAddr{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}});
  CHECK(multicast_mac(Ipv4Addr(224, 0, 0, 251)) == MacAddr{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}});
  // 239.255.255.250 (SSDP): the top bit of the second octet is dropped.
  CHECK(multicast_mac(Ipv4Addr(239, 255, 255, 250)) == MacAddr{{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa}});
  // 224.128.0.1 and 224.0.0.1 share a MAC (32:1 overlap).
  CHECK(multicast_mac(Ipv4Addr(224, 128, 0, 1)) == multicast_mac(Ipv4Addr(224, 0, 0, 1)));
  CHECK(multicast_mac(Ipv4Addr(225, 1, 2, 3)) == MacAddr{{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}});
  CHECK(multicast_mac(Ipv4Addr(224, 0, 0, 1)).is_multicast());
}
