// The Internet checksum (RFC 1071), the pseudo-header sum, and the RFC 1624
// incremental update.
//
// Reference values come from the RFC text, from scapy (noted next to each
// vector), or from the naive word-at-a-time sum below, which follows RFC 1071
// §4.1 literally and shares no code with checksum.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "wire/checksum.hpp"

using namespace ustack;
using namespace ustack::wire;

namespace {

// RFC 1071 §4.1, one 16-bit word at a time, odd byte padded with zero.
std::uint16_t reference_checksum(const std::vector<std::uint8_t>& d) {
  std::uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < d.size(); i += 2) {
    sum += static_cast<std::uint32_t>(d[i] << 8 | d[i + 1]);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  if (i < d.size()) {
    sum += static_cast<std::uint32_t>(d[i] << 8);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint16_t word_at(const std::vector<std::uint8_t>& d, std::size_t off) {
  return static_cast<std::uint16_t>(d[off] << 8 | d[off + 1]);
}
void set_word(std::vector<std::uint8_t>& d, std::size_t off, std::uint16_t w) {
  d[off] = static_cast<std::uint8_t>(w >> 8);
  d[off + 1] = static_cast<std::uint8_t>(w);
}

// Checksum of a 20-byte IPv4 header with the checksum field (10..11) zeroed.
std::uint16_t full_header_checksum(std::vector<std::uint8_t> h) {
  set_word(h, 10, 0);
  return internet_checksum(Bytes{h});
}

}  // namespace

TEST_CASE("RFC 1071 §3 numerical example", "[checksum]") {
  // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 have the one's complement sum
  // dd f2, so the checksum is its complement 22 0d.
  const std::array<std::uint8_t, 8> d{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(internet_checksum(Bytes{d}) == 0x220d);
  // The unfolded sum folds to the same dd f2 regardless of how it was chunked.
  CHECK(checksum_fold(checksum_add(Bytes{d})) == 0x220d);
  CHECK(static_cast<std::uint16_t>(~checksum_fold(checksum_add(Bytes{d}))) == 0xddf2);
}

TEST_CASE("Checksum of a real IPv4 header verifies", "[checksum]") {
  // scapy: IP(src="192.0.2.2", dst="192.0.2.1", id=0x1c46, flags="DF", ttl=64)/ICMP(...)
  // header only; checksum 0x9a8f.
  std::array<std::uint8_t, 20> h{0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01,
                                 0x9a, 0x8f, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00, 0x02, 0x01};
  CHECK(checksum_ok(Bytes{h}));
  h[10] = h[11] = 0;
  CHECK(internet_checksum(Bytes{h}) == 0x9a8f);
  h[10] = 0x9a;
  h[11] = 0x8e;  // off by one
  CHECK_FALSE(checksum_ok(Bytes{h}));
}

TEST_CASE("Odd lengths pad the last byte with zero", "[checksum]") {
  // Hand computed: 0x0102 + 0x0300 = 0x0402, complement 0xfbfd.
  const std::array<std::uint8_t, 3> three{0x01, 0x02, 0x03};
  CHECK(internet_checksum(Bytes{three}) == 0xfbfd);
  // One byte: 0xab00 -> 0x54ff.
  const std::array<std::uint8_t, 1> one{0xab};
  CHECK(internet_checksum(Bytes{one}) == 0x54ff);
  // Empty: sum 0 -> 0xffff.
  CHECK(internet_checksum(Bytes{}) == 0xffff);
  // Five bytes exercise the 32-bit chunk, no 16-bit tail, and the odd byte:
  // 0xffff + 0xffff + 0x0100 = 0x200fe -> 0x0100 (end-around) -> complement 0xfeff.
  const std::array<std::uint8_t, 5> five{0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK(internet_checksum(Bytes{five}) == 0xfeff);
  // Seven bytes: chunk, 16-bit tail, odd byte.
  // 0x0001 + 0x0002 + 0x0003 + 0x0400 = 0x0406 -> 0xfbf9.
  const std::array<std::uint8_t, 7> seven{0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x04};
  CHECK(internet_checksum(Bytes{seven}) == 0xfbf9);
}

TEST_CASE("Checksum matches the RFC 1071 reference on random data", "[checksum]") {
  std::mt19937 rng(1071);
  for (std::size_t len = 0; len < 300; ++len) {
    for (int rep = 0; rep < 4; ++rep) {
      std::vector<std::uint8_t> d(len);
      // rep 0: all ones (maximal carries); rep 1: all zero; others random.
      for (auto& x : d) x = rep == 0 ? 0xff : rep == 1 ? 0x00 : static_cast<std::uint8_t>(rng());
      INFO("len " << len << " rep " << rep);
      REQUIRE(internet_checksum(Bytes{d}) == reference_checksum(d));
      // Storing the checksum in an even-aligned field makes the data verify.
      if (len >= 2 && len % 2 == 0) {
        set_word(d, 0, 0);
        set_word(d, 0, internet_checksum(Bytes{d}));
        REQUIRE(checksum_ok(Bytes{d}));
      }
    }
  }
  // A jumbo-sized buffer of 0xff (carries accumulate for a long time).
  std::vector<std::uint8_t> big(65535, 0xff);
  CHECK(internet_checksum(Bytes{big}) == reference_checksum(big));
}

TEST_CASE("Checksum does not depend on where the data sits in memory", "[checksum]") {
  // checksum_add loads 8-byte words: every start address modulo 8, and
  // lengths around the 32-byte and 8-byte loop boundaries.
  std::mt19937 rng(8);
  std::vector<std::uint8_t> buf(2048 + 16);
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 31u, 32u, 33u, 63u, 64u, 65u, 1447u, 1448u, 1460u, 1480u, 2048u}) {
    std::vector<std::uint8_t> d(len);
    for (auto& x : d) x = static_cast<std::uint8_t>(rng());
    const std::uint16_t want = reference_checksum(d);
    for (std::size_t shift = 0; shift < 16; ++shift) {
      std::copy(d.begin(), d.end(), buf.begin() + static_cast<std::ptrdiff_t>(shift));
      INFO("len " << len << " shift " << shift);
      REQUIRE(internet_checksum(Bytes{buf.data() + shift, len}) == want);
    }
  }
}

TEST_CASE("checksum_add chains at even offsets", "[checksum]") {
  std::mt19937 rng(42);
  std::vector<std::uint8_t> d(257);
  for (auto& x : d) x = static_cast<std::uint8_t>(rng());
  const Bytes all{d};
  for (std::size_t split = 0; split <= d.size(); split += 2) {
    const std::uint32_t s = checksum_add(all.subspan(split), checksum_add(all.first(split)));
    INFO("split " << split);
    REQUIRE(checksum_fold(s) == reference_checksum(d));
  }
  // A large initial sum (as from a pseudo-header) is carried correctly.
  const std::uint32_t big_initial = 0xfffffff0u;
  const std::array<std::uint8_t, 4> w{0x00, 0x20, 0x00, 0x00};
  // 0xfffffff0 == 0xffff*0x10000 + 0xfff0, one's complement ≡ 0xffff + 0xfff0 ≡ 0xfff0;
  // + 0x0020 = 0x10010 -> 0x0011 -> complement 0xffee.
  CHECK(checksum_fold(checksum_add(Bytes{w}, big_initial)) == 0xffee);
}

TEST_CASE("Pseudo-header sum gives the UDP checksum scapy computes", "[checksum]") {
  // scapy: IP(src="192.0.2.1", dst="192.0.2.2")/UDP(sport=5353, dport=9)/b"hello world"
  // UDP length 19 (odd), checksum 0xd503.
  std::vector<std::uint8_t> udp{0x14, 0xe9, 0x00, 0x09, 0x00, 0x13, 0x00, 0x00, 0x68, 0x65,
                                0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64};
  const Ipv4Addr src(192, 0, 2, 1), dst(192, 0, 2, 2);
  const auto ph = pseudo_header_sum(src, dst, 17, static_cast<std::uint16_t>(udp.size()));
  CHECK(checksum_fold(checksum_add(Bytes{udp}, ph)) == 0xd503);
  // Same with b"hello worl" (even length 18): scapy gives 0x3906.
  udp.pop_back();
  udp[5] = 18;
  const auto ph18 = pseudo_header_sum(src, dst, 17, 18);
  CHECK(checksum_fold(checksum_add(Bytes{udp}, ph18)) == 0x3906);
  // With the checksum in place the whole thing verifies.
  set_word(udp, 6, 0x3906);
  CHECK(checksum_fold(checksum_add(Bytes{udp}, ph18)) == 0);
}

TEST_CASE("RFC 1624 §4 example", "[checksum][incremental]") {
  // RFC 1624 §4 (eqn. 3 worked example): HC = 0xDD2F, m = 0x5555, m' = 0x3285
  // gives HC' = 0x0000.
  CHECK(checksum_update16(0xdd2f, 0x5555, 0x3285) == 0x0000);
  // And back again.
  CHECK(checksum_update16(0x0000, 0x3285, 0x5555) == 0xdd2f);
  // An unchanged field leaves the checksum unchanged, including 0x0000.
  CHECK(checksum_update16(0x0000, 0x1234, 0x1234) == 0x0000);
  CHECK(checksum_update16(0xabcd, 0xffff, 0xffff) == 0xabcd);
  CHECK(checksum_update16(0xabcd, 0x0000, 0x0000) == 0xabcd);
}

TEST_CASE("RFC 1624 update equals full recomputation: random fields", "[checksum][incremental]") {
  std::mt19937 rng(1624);
  const std::array<std::uint16_t, 6> specials{0x0000, 0xffff, 0x0001, 0xfffe, 0x8000, 0x7fff};
  for (int iter = 0; iter < 20000; ++iter) {
    // A plausible IPv4 header: version/IHL 0x45 keeps it from being all zero,
    // which is the one input where +0 and -0 differ (RFC 1624 §3).
    std::vector<std::uint8_t> h(20);
    for (auto& x : h) x = static_cast<std::uint8_t>(rng());
    h[0] = 0x45;
    if (iter % 7 == 0) std::fill(h.begin() + 1, h.end(), 0);  // mostly zero words
    if (iter % 11 == 0) std::fill(h.begin() + 1, h.end(), 0xff);  // mostly ones
    set_word(h, 10, full_header_checksum(h));
    REQUIRE(checksum_ok(Bytes{h}));

    // Any 16-bit field except the checksum itself.
    std::size_t off = 2 * (rng() % 10);
    if (off == 10) off = 8;
    const std::uint16_t old_w = word_at(h, off);
    std::uint16_t new_w = static_cast<std::uint16_t>(rng());
    switch (iter % 5) {
      case 0: new_w = specials[rng() % specials.size()]; break;
      case 1: new_w = old_w; break;
      case 2: new_w = static_cast<std::uint16_t>(~old_w); break;
      default: break;
    }
    const std::uint16_t old_ck = word_at(h, 10);
    set_word(h, off, new_w);
    // Only an all-zero message tells +0 from -0: recomputation gives 0xffff
    // and eqn. 3 gives 0x0000 (RFC 1624 §3). No IPv4 header is all zero.
    std::vector<std::uint8_t> rest = h;
    set_word(rest, 10, 0);
    if (std::all_of(rest.begin(), rest.end(), [](std::uint8_t b) { return b == 0; })) continue;
    const std::uint16_t expect = full_header_checksum(h);
    const std::uint16_t got = checksum_update16(old_ck, old_w, new_w);
    INFO("iter " << iter << " off " << off << " old " << old_w << " new " << new_w);
    REQUIRE(got == expect);
    set_word(h, 10, got);
    REQUIRE(checksum_ok(Bytes{h}));
  }
}

TEST_CASE("RFC 1624 update covers every result value, 0x0000 included", "[checksum][incremental]") {
  // Sweep the identification field through all 65536 values for a few
  // headers: the resulting checksums take every value but 0xffff (which a
  // non-zero header can never have), including 0x0000, where eqn. 2 of RFC
  // 1624 would wrongly give 0xffff.
  std::mt19937 rng(65536);
  for (int base = 0; base < 4; ++base) {
    std::vector<std::uint8_t> h(20);
    for (auto& x : h) x = static_cast<std::uint8_t>(rng());
    h[0] = 0x45;
    set_word(h, 10, full_header_checksum(h));
    std::uint16_t ck = word_at(h, 10);
    std::uint16_t prev = word_at(h, 4);
    bool saw_zero = false;
    for (std::uint32_t v = 0; v <= 0xffff; ++v) {
      const auto w = static_cast<std::uint16_t>(v);
      set_word(h, 4, w);
      const std::uint16_t expect = full_header_checksum(h);
      // Chain updates: each step starts from the previous incremental result,
      // so an error would compound instead of hiding.
      ck = checksum_update16(ck, prev, w);
      prev = w;
      if (ck != expect) {
        INFO("base " << base << " ident " << v);
        REQUIRE(ck == expect);
      }
      saw_zero |= ck == 0x0000;
      REQUIRE(ck != 0xffff);
    }
    CHECK(saw_zero);
  }
}

TEST_CASE("RFC 1624 32-bit update (address rewrite) equals full recomputation",
          "[checksum][incremental]") {
  std::mt19937 rng(32);
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::uint8_t> h(20);
    for (auto& x : h) x = static_cast<std::uint8_t>(rng());
    h[0] = 0x45;
    set_word(h, 10, full_header_checksum(h));
    const std::size_t off = iter % 2 ? 12 : 16;  // src or dst address
    const std::uint32_t old_v = std::uint32_t{word_at(h, off)} << 16 | word_at(h, off + 2);
    std::uint32_t new_v = static_cast<std::uint32_t>(rng());
    if (iter % 13 == 0) new_v = 0;
    if (iter % 17 == 0) new_v = 0xffffffffu;
    if (iter % 19 == 0) new_v = old_v;
    const std::uint16_t old_ck = word_at(h, 10);
    set_word(h, off, static_cast<std::uint16_t>(new_v >> 16));
    set_word(h, off + 2, static_cast<std::uint16_t>(new_v));
    INFO("iter " << iter);
    REQUIRE(checksum_update32(old_ck, old_v, new_v) == full_header_checksum(h));
  }
}

TEST_CASE("Incremental TTL decrement matches RFC 1141 style forwarding", "[checksum][incremental]") {
  // The header from the IPv4 test (scapy, ttl 64, checksum 0x9a8f); after
  // TTL 64 -> 63 scapy computes checksum 0x9b8f for the same header.
  // The TTL shares its 16-bit word with the protocol: 0x4001 -> 0x3f01.
  CHECK(checksum_update16(0x9a8f, 0x4001, 0x3f01) == 0x9b8f);
}

TEST_CASE("A sum split at any offset recombines: checksum_at_odd_offset", "[checksum]") {
  // What TCP does for a payload spread over an mbuf chain: each piece summed
  // alone, the pieces that start at an odd offset byte-swapped.
  std::mt19937 rng(42);
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<std::uint8_t> v(1 + rng() % 1500);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    if (iter % 7 == 0) std::fill(v.begin(), v.end(), 0xff);
    const std::uint16_t whole = checksum_fold(checksum_add(Bytes{v}));
    std::uint32_t sum = 0;
    std::size_t off = 0;
    while (off < v.size()) {
      const std::size_t n = std::min<std::size_t>(v.size() - off, 1 + rng() % 300);
      const std::uint32_t s = checksum_add(Bytes{v}.subspan(off, n));
      sum += off % 2 ? checksum_at_odd_offset(s) : checksum_reduce(s);
      off += n;
    }
    INFO("iter " << iter << " size " << v.size());
    REQUIRE(checksum_fold(sum) == whole);
  }
}
