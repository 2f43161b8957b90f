// ICMP (RFC 792): echo and error messages, golden bytes, parse and emit.
//
// Vectors generated with scapy 2.5 (expression next to each).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

using Vec = std::vector<std::uint8_t>;

Vec bytes_of(const char* s) { return Vec(s, s + std::char_traits<char>::length(s)); }

// scapy: ICMP(type=8, id=0x1234, seq=1)/b"ustack!!"
// (the ICMP part of the IPv4 echo vector in ipv4_test.cpp)
const Vec kEchoRequest{
    0x08, 0x00, 0x77, 0x69, 0x12, 0x34, 0x00, 0x01, 0x75, 0x73, 0x74, 0x61,
    0x63, 0x6b, 0x21, 0x21,
};

// scapy: ICMP(type=0, id=0x1234, seq=1)/b"ustack!!"
const Vec kEchoReply{
    0x00, 0x00, 0x7f, 0x69, 0x12, 0x34, 0x00, 0x01, 0x75, 0x73, 0x74, 0x61,
    0x63, 0x6b, 0x21, 0x21,
};

// scapy: ICMP(type=8, id=0xbeef, seq=0xfffe)/b"abc": odd length.
const Vec kEchoOdd{
    0x08, 0x00, 0x74, 0xae, 0xbe, 0xef, 0xff, 0xfe, 0x61, 0x62, 0x63,
};

// scapy: ICMP(type=8, id=0, seq=0): header only. Checksum by hand: ~0x0800.
const Vec kEchoEmpty{0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00};

// The datagram the errors below are about.
// scapy: IP(src="192.0.2.1", dst="192.0.2.2", id=7, ttl=64)/UDP(sport=5353, dport=9)/b"hello world"
const Vec kOffending{
    0x45, 0x00, 0x00, 0x27, 0x00, 0x07, 0x00, 0x00, 0x40, 0x11, 0xf6, 0xbb,
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, 0x14, 0xe9, 0x00, 0x09,
    0x00, 0x13, 0xd5, 0x03, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f,
    0x72, 0x6c, 0x64,
};

// scapy: ICMP(type=3, code=3)/Raw(bytes(offending)[:28])
const Vec kPortUnreach{
    0x03, 0x03, 0x12, 0xf4, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x27,
    0x00, 0x07, 0x00, 0x00, 0x40, 0x11, 0xf6, 0xbb, 0xc0, 0x00, 0x02, 0x01,
    0xc0, 0x00, 0x02, 0x02, 0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0xd5, 0x03,
};

// scapy: ICMP(type=3, code=4, nexthopmtu=1400)/Raw(bytes(offending)[:28])
const Vec kFragNeeded{
    0x03, 0x04, 0x0d, 0x7b, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x00, 0x27,
    0x00, 0x07, 0x00, 0x00, 0x40, 0x11, 0xf6, 0xbb, 0xc0, 0x00, 0x02, 0x01,
    0xc0, 0x00, 0x02, 0x02, 0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0xd5, 0x03,
};

// scapy: ICMP(type=11, code=0)/Raw(bytes(offending)[:28])
const Vec kTimeExceeded{
    0x0b, 0x00, 0x0a, 0xf7, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x27,
    0x00, 0x07, 0x00, 0x00, 0x40, 0x11, 0xf6, 0xbb, 0xc0, 0x00, 0x02, 0x01,
    0xc0, 0x00, 0x02, 0x02, 0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0xd5, 0x03,
};

Vec prefix(const Vec& v, std::size_t n) { return Vec(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)); }
Vec tail(const Vec& v, std::size_t from) { return Vec(v.begin() + static_cast<std::ptrdiff_t>(from), v.end()); }
Vec to_vec(Bytes b) { return Vec(b.begin(), b.end()); }

}  // namespace

TEST_CASE("ICMP: echo request parses", "[icmp][echo]") {
  const auto p = IcmpPacket::parse(Bytes{kEchoRequest});
  REQUIRE(p.ok());
  CHECK(p->type() == icmp_type::kEchoRequest);
  CHECK(p->code() == 0);
  CHECK(p->checksum() == 0x7769);
  CHECK(p->echo_ident() == 0x1234);
  CHECK(p->echo_seq() == 1);
  CHECK(p->rest_of_header() == 0x12340001u);
  CHECK_FALSE(p->is_error());
  CHECK(to_vec(p->body()) == bytes_of("ustack!!"));
  CHECK(p->bytes().size() == 16);
}

TEST_CASE("ICMP: echo reply and odd-length echo parse", "[icmp][echo]") {
  const auto r = IcmpPacket::parse(Bytes{kEchoReply});
  REQUIRE(r.ok());
  CHECK(r->type() == icmp_type::kEchoReply);
  CHECK(r->echo_ident() == 0x1234);
  CHECK(r->echo_seq() == 1);

  const auto o = IcmpPacket::parse(Bytes{kEchoOdd});
  REQUIRE(o.ok());
  CHECK(o->echo_ident() == 0xbeef);
  CHECK(o->echo_seq() == 0xfffe);
  CHECK(to_vec(o->body()) == bytes_of("abc"));

  const auto e = IcmpPacket::parse(Bytes{kEchoEmpty});
  REQUIRE(e.ok());
  CHECK(e->body().empty());
}

TEST_CASE("ICMP: inside its IPv4 datagram", "[icmp][echo]") {
  // The IPv4 echo vector from ipv4_test.cpp: header + kEchoRequest.
  Vec dgram{0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01,
            0x9a, 0x8f, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01};
  dgram.insert(dgram.end(), kEchoRequest.begin(), kEchoRequest.end());
  const auto ip = Ipv4Packet::parse(Bytes{dgram});
  REQUIRE(ip.ok());
  const auto p = IcmpPacket::parse(ip->payload());
  REQUIRE(p.ok());
  CHECK(p->echo_ident() == 0x1234);
}

TEST_CASE("ICMP: truncated", "[icmp][malformed]") {
  for (std::size_t n = 0; n < kIcmpHeaderLen; ++n) {
    INFO(n << " bytes");
    CHECK(IcmpPacket::parse(Bytes{prefix(kEchoRequest, n)}).error() == ParseError::truncated);
    CHECK(IcmpPacket::parse(Bytes{prefix(kEchoRequest, n)}, false).error() == ParseError::truncated);
  }
}

TEST_CASE("ICMP: bad checksum", "[icmp][malformed]") {
  // The checksum covers the body as well as the header.
  for (std::size_t i = 0; i < kEchoRequest.size(); ++i) {
    Vec v = kEchoRequest;
    v[i] ^= 0x01;
    INFO("flipped byte " << i);
    CHECK(IcmpPacket::parse(Bytes{v}).error() == ParseError::bad_checksum);
    CHECK(IcmpPacket::parse(Bytes{v}, /*verify_checksum=*/false).ok());
  }
  // A byte cut off the end changes the sum too (odd-length padding).
  CHECK(IcmpPacket::parse(Bytes{prefix(kEchoRequest, 15)}).error() == ParseError::bad_checksum);
  // Swapping two 16-bit words is invisible to the Internet checksum (a known
  // weakness, RFC 1071 §2(B)): still accepted.
  Vec swapped = kEchoRequest;
  std::swap(swapped[8], swapped[10]);
  std::swap(swapped[9], swapped[11]);
  CHECK(IcmpPacket::parse(Bytes{swapped}).ok());
}

TEST_CASE("ICMP: echo emit writes the golden bytes with checksum", "[icmp][echo][emit]") {
  const Vec data = bytes_of("ustack!!");
  SECTION("request") {
    const IcmpEchoRepr r{true, 0x1234, 1, Bytes{data}};
    REQUIRE(r.buffer_len() == 16);
    Vec out(16, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kEchoRequest);
  }
  SECTION("reply") {
    const IcmpEchoRepr r{false, 0x1234, 1, Bytes{data}};
    Vec out(16, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kEchoReply);
  }
  SECTION("odd-length data") {
    const Vec abc = bytes_of("abc");
    const IcmpEchoRepr r{true, 0xbeef, 0xfffe, Bytes{abc}};
    REQUIRE(r.buffer_len() == 11);
    Vec out(11, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kEchoOdd);
  }
  SECTION("no data") {
    const IcmpEchoRepr r{true, 0, 0, Bytes{}};
    Vec out(8, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kEchoEmpty);
  }
}

TEST_CASE("ICMP: echo request turned into a reply round trips", "[icmp][echo][emit]") {
  // What a host does with a ping: parse, answer with the same ident/seq/data.
  const auto req = IcmpPacket::parse(Bytes{kEchoRequest});
  REQUIRE(req.ok());
  const IcmpEchoRepr reply{false, req->echo_ident(), req->echo_seq(), req->body()};
  Vec out(reply.buffer_len());
  reply.emit(MutBytes{out});
  CHECK(out == kEchoReply);
  const auto back = IcmpPacket::parse(Bytes{out});
  REQUIRE(back.ok());
  CHECK(back->type() == icmp_type::kEchoReply);
  CHECK(to_vec(back->body()) == to_vec(req->body()));
}

TEST_CASE("ICMP: error messages parse", "[icmp][error]") {
  const auto u = IcmpPacket::parse(Bytes{kPortUnreach});
  REQUIRE(u.ok());
  CHECK(u->type() == icmp_type::kDestUnreachable);
  CHECK(u->code() == icmp_unreach::kPort);
  CHECK(u->is_error());
  CHECK(u->rest_of_header() == 0);
  CHECK(to_vec(u->body()) == prefix(kOffending, 28));
  // The quote is itself a parsable IPv4 header (without verifying its
  // total length against the buffer, which the quote cuts short).
  const auto q = Ipv4Packet::parse(u->body());
  CHECK(q.error() == ParseError::truncated);

  const auto f = IcmpPacket::parse(Bytes{kFragNeeded});
  REQUIRE(f.ok());
  CHECK(f->code() == icmp_unreach::kFragNeeded);
  CHECK(f->rest_of_header() == 1400);  // next-hop MTU in the low 16 bits (RFC 1191)

  const auto t = IcmpPacket::parse(Bytes{kTimeExceeded});
  REQUIRE(t.ok());
  CHECK(t->type() == icmp_type::kTimeExceeded);
  CHECK(t->is_error());
}

TEST_CASE("ICMP: which types are errors", "[icmp][error]") {
  // RFC 792/1122: 3 unreachable, 4 source quench, 5 redirect, 11 time
  // exceeded, 12 parameter problem are errors; queries are not.
  for (int type = 0; type < 256; ++type) {
    Vec v = kEchoEmpty;
    v[0] = static_cast<std::uint8_t>(type);
    const auto p = IcmpPacket::parse(Bytes{v}, false);
    REQUIRE(p.ok());
    const bool expect = type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
    INFO("type " << type);
    CHECK(p->is_error() == expect);
  }
}

TEST_CASE("ICMP: error emit writes the golden bytes", "[icmp][error][emit]") {
  const Bytes quote = IcmpErrorRepr::quote_of(Bytes{kOffending}, 20);
  REQUIRE(quote.size() == 28);
  SECTION("port unreachable") {
    const IcmpErrorRepr r{icmp_type::kDestUnreachable, icmp_unreach::kPort, 0, quote};
    REQUIRE(r.buffer_len() == 36);
    Vec out(36, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kPortUnreach);
  }
  SECTION("fragmentation needed with next-hop MTU") {
    const IcmpErrorRepr r{icmp_type::kDestUnreachable, icmp_unreach::kFragNeeded, 1400, quote};
    Vec out(36, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kFragNeeded);
  }
  SECTION("time exceeded") {
    const IcmpErrorRepr r{icmp_type::kTimeExceeded, 0, 0, quote};
    Vec out(36, 0xaa);
    r.emit(MutBytes{out});
    CHECK(out == kTimeExceeded);
  }
}

TEST_CASE("ICMP: error quote sizes", "[icmp][error]") {
  // IP header + 8 bytes of payload (RFC 792).
  CHECK(IcmpErrorRepr::quote_of(Bytes{kOffending}, 20).size() == 28);
  CHECK(IcmpErrorRepr::quote_of(Bytes{kOffending}, 20).data() == kOffending.data());
  // With 4 bytes of options: 24 + 8.
  const Vec with_opts(40, 0x00);
  CHECK(IcmpErrorRepr::quote_of(Bytes{with_opts}, 24).size() == 32);
  // With the maximum header: 60 + 8.
  const Vec max_hdr(100, 0x00);
  CHECK(IcmpErrorRepr::quote_of(Bytes{max_hdr}, 60).size() == 68);
  // A datagram shorter than header + 8 is quoted whole.
  CHECK(IcmpErrorRepr::quote_of(Bytes{prefix(kOffending, 25)}, 20).size() == 25);
  CHECK(IcmpErrorRepr::quote_of(Bytes{prefix(kOffending, 20)}, 20).size() == 20);
  const Vec sixty(64, 0x00);
  CHECK(IcmpErrorRepr::quote_of(Bytes{sixty}, 60).size() == 64);
  // Never more than kMaxQuote, so the error fits in 576 bytes.
  const Vec big(1500, 0x00);
  CHECK(IcmpErrorRepr::quote_of(Bytes{big}, 600).size() == IcmpErrorRepr::kMaxQuote);
  CHECK(IcmpErrorRepr::kMaxQuote + kIcmpHeaderLen + 20 == 576);
}

TEST_CASE("ICMP: error emit parses back", "[icmp][error][emit]") {
  const Bytes quote = IcmpErrorRepr::quote_of(Bytes{kOffending}, 20);
  const IcmpErrorRepr r{icmp_type::kParameterProblem, 0, 0x14000000u, quote};  // pointer = 20
  Vec out(r.buffer_len());
  r.emit(MutBytes{out});
  const auto p = IcmpPacket::parse(Bytes{out});
  REQUIRE(p.ok());
  CHECK(p->type() == icmp_type::kParameterProblem);
  CHECK(p->rest_of_header() == 0x14000000u);
  CHECK(to_vec(p->body()) == prefix(kOffending, 28));
  CHECK(tail(out, 8) == prefix(kOffending, 28));
}
