// Address parsing and formatting: MacAddr, Ipv4Addr, Ipv4Cidr.
//
// The wire tests need no EAL, so this binary has its own Catch2 main (here)
// instead of the DPDK-initialising one in test/support.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "ustack/addr.hpp"

using ustack::Ipv4Addr;
using ustack::Ipv4Cidr;
using ustack::MacAddr;

TEST_CASE("MacAddr parses colon and dash forms", "[addr][mac]") {
  const auto m = MacAddr::parse("02:00:5e:10:a0:ff");
  REQUIRE(m);
  CHECK(m->b == std::array<std::uint8_t, 6>{0x02, 0x00, 0x5e, 0x10, 0xa0, 0xff});
  CHECK(m->to_string() == "02:00:5e:10:a0:ff");

  const auto d = MacAddr::parse("02-00-5E-10-A0-FF");
  REQUIRE(d);
  CHECK(*d == *m);
  // Output is always lower case with colons.
  CHECK(d->to_string() == "02:00:5e:10:a0:ff");

  const auto u = MacAddr::parse("AA:BB:CC:DD:EE:FF");
  REQUIRE(u);
  CHECK(u->b == std::array<std::uint8_t, 6>{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff});
}

TEST_CASE("MacAddr rejects malformed text", "[addr][mac]") {
  for (const char* s : {
           "",
           "02:00:5e:10:a0",        // five octets
           "02:00:5e:10:a0:ff:01",  // seven octets
           "02:00:5e:10:a0:f",      // short last octet
           "2:0:5e:10:a0:ff",       // single-digit octets
           "02:00:5e:10:a0:fg",     // not hex
           "02.00.5e.10.a0.ff",     // wrong separator
           "02:00:5e:10:a0:ff:",    // trailing separator
           " 02:00:5e:10:a0:ff",    // leading space (length 18)
           "02:00:5e:10:a0 ff",     // space as separator
           "0200:5e:10:a0:ff:",     // separator misplaced, right length
           "+2:00:5e:10:a0:ff",
           "02:00-5e:10:a0:ff",     // mixed separators
       }) {
    INFO(s);
    CHECK_FALSE(MacAddr::parse(s));
  }
}

TEST_CASE("MacAddr classification", "[addr][mac]") {
  CHECK(MacAddr::broadcast().is_broadcast());
  CHECK(MacAddr::broadcast().is_multicast());
  CHECK(MacAddr::broadcast().to_string() == "ff:ff:ff:ff:ff:ff");
  CHECK(MacAddr{}.is_zero());
  CHECK(MacAddr{}.to_string() == "00:00:00:00:00:00");
  // The I/G bit is the least significant bit of the first octet.
  CHECK(MacAddr::parse("01:00:5e:00:00:fb")->is_multicast());
  CHECK(MacAddr::parse("33:33:00:00:00:01")->is_multicast());
  CHECK_FALSE(MacAddr::parse("02:00:00:00:00:01")->is_multicast());
  CHECK_FALSE(MacAddr::parse("fe:ff:ff:ff:ff:ff")->is_multicast());
  CHECK_FALSE(MacAddr::parse("ff:ff:ff:ff:ff:fe")->is_broadcast());
  CHECK_FALSE(MacAddr::parse("00:00:00:00:00:01")->is_zero());
}

TEST_CASE("Ipv4Addr parses dotted quads", "[addr][ipv4]") {
  struct Case {
    const char* text;
    std::uint32_t v;
  };
  for (const Case c : {
           Case{"0.0.0.0", 0x00000000u},
           Case{"255.255.255.255", 0xffffffffu},
           Case{"192.0.2.1", 0xc0000201u},
           Case{"10.20.30.40", 0x0a141e28u},
           Case{"127.0.0.1", 0x7f000001u},
           Case{"1.0.0.0", 0x01000000u},
           Case{"0.0.0.1", 0x00000001u},
           Case{"100.99.9.0", 0x64630900u},
       }) {
    INFO(c.text);
    const auto a = Ipv4Addr::parse(c.text);
    REQUIRE(a);
    CHECK(a->v == c.v);
    CHECK(a->to_string() == c.text);
  }
  CHECK(Ipv4Addr(192, 0, 2, 1).v == 0xc0000201u);
}

TEST_CASE("Ipv4Addr rejects malformed text", "[addr][ipv4]") {
  for (const char* s : {
           "",
           "1.2.3",             // missing part
           "1.2.3.",            // empty last part
           ".1.2.3",            // empty first part
           "1..2.3",            // empty middle part
           "1.2.3.4.5",         // too many parts
           "256.0.0.1",         // > 255
           "1.2.3.256",
           "1.2.3.1000",
           "99999999999.1.1.1",  // overflows unsigned
           "01.2.3.4",          // leading zero (octal ambiguity)
           "1.2.3.04",
           "00.1.2.3",
           "1.2.3.000",
           "+1.2.3.4",
           "1.2.3.-4",
           "-1.2.3.4",
           "0x1.2.3.4",
           " 1.2.3.4",
           "1.2.3.4 ",
           "1.2.3.4/24",
           "1,2,3,4",
           "a.b.c.d",
           "1.2.3.4a",
       }) {
    INFO(s);
    CHECK_FALSE(Ipv4Addr::parse(s));
  }
}

TEST_CASE("Ipv4Addr classification", "[addr][ipv4]") {
  CHECK(Ipv4Addr{}.is_unspecified());
  CHECK(Ipv4Addr(255, 255, 255, 255).is_limited_broadcast());
  CHECK(Ipv4Addr(224, 0, 0, 1).is_multicast());
  CHECK(Ipv4Addr(239, 255, 255, 250).is_multicast());
  CHECK_FALSE(Ipv4Addr(223, 255, 255, 255).is_multicast());
  CHECK_FALSE(Ipv4Addr(240, 0, 0, 0).is_multicast());
  CHECK(Ipv4Addr(127, 1, 2, 3).is_loopback());
  CHECK_FALSE(Ipv4Addr(128, 0, 0, 1).is_loopback());
  CHECK(Ipv4Addr(10, 0, 0, 1) < Ipv4Addr(10, 0, 0, 2));
  CHECK(Ipv4Addr(9, 255, 255, 255) < Ipv4Addr(10, 0, 0, 0));
}

TEST_CASE("Ipv4Cidr parses address and prefix", "[addr][cidr]") {
  const auto c = Ipv4Cidr::parse("192.0.2.77/24");
  REQUIRE(c);
  CHECK(c->addr == Ipv4Addr(192, 0, 2, 77));
  CHECK(c->prefix_len == 24);
  CHECK(c->mask() == 0xffffff00u);
  CHECK(c->network() == Ipv4Addr(192, 0, 2, 0));
  CHECK(c->broadcast() == Ipv4Addr(192, 0, 2, 255));
  CHECK(c->contains(Ipv4Addr(192, 0, 2, 1)));
  CHECK(c->contains(Ipv4Addr(192, 0, 2, 255)));
  CHECK_FALSE(c->contains(Ipv4Addr(192, 0, 3, 1)));
  CHECK(c->to_string() == "192.0.2.77/24");

  const auto all = Ipv4Cidr::parse("0.0.0.0/0");
  REQUIRE(all);
  CHECK(all->mask() == 0u);
  CHECK(all->contains(Ipv4Addr(203, 0, 113, 9)));
  CHECK(all->broadcast() == Ipv4Addr(255, 255, 255, 255));

  const auto host = Ipv4Cidr::parse("198.51.100.7/32");
  REQUIRE(host);
  CHECK(host->mask() == 0xffffffffu);
  CHECK(host->contains(Ipv4Addr(198, 51, 100, 7)));
  CHECK_FALSE(host->contains(Ipv4Addr(198, 51, 100, 6)));

  const auto odd = Ipv4Cidr::parse("10.1.2.3/13");
  REQUIRE(odd);
  CHECK(odd->mask() == 0xfff80000u);
  CHECK(odd->network() == Ipv4Addr(10, 0, 0, 0));
  CHECK(odd->broadcast() == Ipv4Addr(10, 7, 255, 255));
  CHECK(odd->to_string() == "10.1.2.3/13");

  const auto p31 = Ipv4Cidr::parse("10.0.0.1/31");
  REQUIRE(p31);
  CHECK(p31->mask() == 0xfffffffeu);
}

TEST_CASE("Ipv4Cidr rejects malformed text", "[addr][cidr]") {
  for (const char* s : {
           "192.0.2.1",       // no prefix
           "192.0.2.1/",      // empty prefix
           "192.0.2.1/33",    // prefix too long
           "192.0.2.1/99",
           "192.0.2.1/4294967296",  // overflows unsigned
           "192.0.2.1/-1",
           "192.0.2.1/+8",
           "192.0.2.1/ 8",
           "192.0.2.1/8 ",
           "192.0.2.1/8x",
           "192.0.2.1/8/8",
           "/24",
           "256.0.2.1/24",
           "192.0.2/24",
           "192.0.02.1/24",
           "192.0.2.1/08",    // leading zero in the prefix
       }) {
    INFO(s);
    CHECK_FALSE(Ipv4Cidr::parse(s));
  }
}
