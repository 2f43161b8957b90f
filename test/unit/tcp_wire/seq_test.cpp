// SeqNum: wrap-around arithmetic, comparisons across 2^32, the 2^31 case,
// and seq_in_window() against references computed with 64-bit integers.
//
// The references below follow the RFC text literally (RFC 1982 §3.2 for
// "<", RFC 9293 §3.4 for "lo =< x < lo + len") on int64 values and share
// no code with seq.hpp.
//
// The TCP wire tests need no EAL, so this binary has its own Catch2 main
// (here) instead of the DPDK-initialising one in test/support.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/seq.hpp"

using ustack::SeqNum;
using ustack::seq_in_window;

namespace Catch {
template <>
struct StringMaker<SeqNum> {
  static std::string convert(SeqNum s) { return "SeqNum(" + std::to_string(s.raw()) + ")"; }
};
}  // namespace Catch

namespace {

constexpr std::int64_t kTwo32 = std::int64_t{1} << 32;
constexpr std::int64_t kTwo31 = std::int64_t{1} << 31;

// RFC 1982 §3.2, SERIAL_BITS = 32:
//   s1 < s2 iff (i1 < i2 and i2 - i1 < 2^31) or (i1 > i2 and i1 - i2 > 2^31).
bool ref_less(std::uint32_t a, std::uint32_t b) {
  const std::int64_t i1 = a;
  const std::int64_t i2 = b;
  return (i1 < i2 && i2 - i1 < kTwo31) || (i1 > i2 && i1 - i2 > kTwo31);
}

// RFC 9293 §3.4 "lo =< x < lo + len" with lo + len allowed past 2^32: put
// the window on the 64-bit line and try x and x + 2^32.
bool ref_in_window(std::uint32_t x, std::uint32_t lo, std::uint32_t len) {
  const std::int64_t l = lo;
  const std::int64_t h = l + len;  // may exceed 2^32
  const std::int64_t x0 = x;
  const std::int64_t x1 = x0 + kTwo32;
  return (x0 >= l && x0 < h) || (x1 >= l && x1 < h);
}

// Signed distance a - b as the representative in [-2^31, 2^31).
std::int64_t ref_distance(std::uint32_t a, std::uint32_t b) {
  std::int64_t d = (std::int64_t{a} - std::int64_t{b}) % kTwo32;
  if (d >= kTwo31) d -= kTwo32;
  if (d < -kTwo31) d += kTwo32;
  return d;
}

// Points where wrap-around bugs live, and their neighbours.
std::vector<std::uint32_t> interesting_points() {
  std::vector<std::uint32_t> v;
  for (const std::uint32_t base : {0u, 0x7fffffffu, 0x80000000u, 0xffffffffu, 0x40000000u, 0xc0000000u,
                                   0x12345678u, 0xfffffff0u}) {
    for (std::uint32_t d = 0; d < 5; ++d) {
      v.push_back(base + d);
      v.push_back(base - d);
    }
  }
  return v;
}

}  // namespace

TEST_CASE("SeqNum: addition and subtraction wrap", "[seq]") {
  CHECK(SeqNum{0xffffffffu} + 1 == SeqNum{0});
  CHECK(SeqNum{0xfffffff0u} + 0x20 == SeqNum{0x10});
  CHECK(SeqNum{0} - 1 == SeqNum{0xffffffffu});
  CHECK(SeqNum{0x10} - 0x20 == SeqNum{0xfffffff0u});
  CHECK(SeqNum{5} + 0 == SeqNum{5});
  CHECK(SeqNum{5} + 0xffffffffu == SeqNum{4});  // adding 2^32 - 1 is subtracting 1
  SeqNum s{0xfffffffeu};
  s += 3;
  CHECK(s.raw() == 1);
  s -= 2;
  CHECK(s.raw() == 0xffffffffu);
  CHECK(SeqNum{}.raw() == 0);
}

TEST_CASE("SeqNum: signed distance across the wrap", "[seq]") {
  CHECK(SeqNum{0x10} - SeqNum{0xfffffff0u} == 0x20);
  CHECK(SeqNum{0xfffffff0u} - SeqNum{0x10} == -0x20);
  CHECK(SeqNum{7} - SeqNum{7} == 0);
  CHECK(SeqNum{0x7fffffffu} - SeqNum{0} == INT32_MAX);
  CHECK(SeqNum{0} - SeqNum{0x7fffffffu} == -INT32_MAX);
  CHECK(SeqNum{0x80000001u} - SeqNum{0} == -INT32_MAX);  // 2^31 + 1 ahead is 2^31 - 1 behind
  // Exactly half the circle: INT32_MIN both ways.
  CHECK(SeqNum{0x80000000u} - SeqNum{0} == INT32_MIN);
  CHECK(SeqNum{0} - SeqNum{0x80000000u} == INT32_MIN);
  CHECK(SeqNum{0x10} - SeqNum{0x80000010u} == INT32_MIN);
  // (a + n) - a == n for every n below 2^31.
  for (const std::uint32_t a : interesting_points())
    for (const std::uint32_t n : {0u, 1u, 1000u, 0x3fffffffu, 0x7fffffffu}) {
      INFO(a << " + " << n);
      CHECK((SeqNum{a} + n) - SeqNum{a} == static_cast<std::int32_t>(n));
      CHECK(SeqNum{a} - (SeqNum{a} + n) == -static_cast<std::int32_t>(n));
    }
}

TEST_CASE("SeqNum: comparisons across 2^32", "[seq]") {
  const SeqNum before_wrap{0xfffffff0u};
  const SeqNum after_wrap{0x00000010u};
  CHECK(before_wrap < after_wrap);
  CHECK(before_wrap <= after_wrap);
  CHECK(after_wrap > before_wrap);
  CHECK(after_wrap >= before_wrap);
  CHECK_FALSE(after_wrap < before_wrap);
  CHECK_FALSE(before_wrap > after_wrap);
  CHECK_FALSE(before_wrap == after_wrap);
  CHECK(before_wrap != after_wrap);

  CHECK(SeqNum{0xffffffffu} < SeqNum{0});
  CHECK(SeqNum{0} > SeqNum{0xffffffffu});
  CHECK(SeqNum{0x7fffffffu} < SeqNum{0x80000000u});  // adjacent across the sign bit
  CHECK(SeqNum{0} < SeqNum{0x7fffffffu});            // 2^31 - 1 ahead: still ahead
  CHECK(SeqNum{0} > SeqNum{0x80000001u});            // 2^31 + 1 ahead: behind

  const SeqNum x{42};
  CHECK(x <= x);
  CHECK(x >= x);
  CHECK_FALSE(x < x);
  CHECK_FALSE(x > x);
}

TEST_CASE("SeqNum: exactly 2^31 apart is incomparable", "[seq]") {
  for (const std::uint32_t a : interesting_points()) {
    const SeqNum x{a};
    const SeqNum y{a + 0x80000000u};
    INFO(a);
    CHECK(x != y);
    CHECK_FALSE(x < y);
    CHECK_FALSE(y < x);
    CHECK_FALSE(x > y);
    CHECK_FALSE(y > x);
    CHECK_FALSE(x <= y);
    CHECK_FALSE(y <= x);
    CHECK_FALSE(x >= y);
    CHECK_FALSE(y >= x);
    // And the reference agrees: RFC 1982 leaves both "<" false here.
    CHECK_FALSE(ref_less(a, a + 0x80000000u));
    CHECK_FALSE(ref_less(a + 0x80000000u, a));
  }
}

TEST_CASE("SeqNum: every relation matches RFC 1982 on interesting pairs", "[seq]") {
  const auto pts = interesting_points();
  for (const std::uint32_t a : pts)
    for (const std::uint32_t b : pts) {
      const SeqNum x{a};
      const SeqNum y{b};
      INFO(a << " vs " << b);
      const bool lt = ref_less(a, b);
      const bool gt = ref_less(b, a);
      REQUIRE((x < y) == lt);
      REQUIRE((x > y) == gt);
      REQUIRE((x <= y) == (lt || a == b));
      REQUIRE((x >= y) == (gt || a == b));
      REQUIRE((x == y) == (a == b));
      REQUIRE(std::int64_t{x - y} == ref_distance(a, b));
      // Trichotomy except at exactly 2^31.
      const int n = int{x < y} + int{x == y} + int{x > y};
      REQUIRE(n == (std::uint32_t(a - b) == 0x80000000u ? 0 : 1));
    }
}

TEST_CASE("SeqNum: random pairs match RFC 1982", "[seq]") {
  std::mt19937 rng(1982);
  std::uniform_int_distribution<std::uint32_t> any;
  for (int i = 0; i < 200000; ++i) {
    const std::uint32_t a = any(rng);
    const std::uint32_t b = i % 2 ? any(rng) : a + (any(rng) & 0xff) - 0x80;  // near pairs too
    const SeqNum x{a};
    const SeqNum y{b};
    if ((x < y) != ref_less(a, b) || (x > y) != ref_less(b, a) || std::int64_t{x - y} != ref_distance(a, b)) {
      INFO(a << " vs " << b);
      FAIL("mismatch");
    }
  }
}

TEST_CASE("seq_in_window: plain, empty and spanning the wrap", "[seq][window]") {
  // Plain window [100, 110).
  CHECK_FALSE(seq_in_window(SeqNum{99}, SeqNum{100}, 10));
  CHECK(seq_in_window(SeqNum{100}, SeqNum{100}, 10));
  CHECK(seq_in_window(SeqNum{109}, SeqNum{100}, 10));
  CHECK_FALSE(seq_in_window(SeqNum{110}, SeqNum{100}, 10));
  // Empty window: nothing is in it, not even lo.
  CHECK_FALSE(seq_in_window(SeqNum{100}, SeqNum{100}, 0));
  CHECK_FALSE(seq_in_window(SeqNum{0}, SeqNum{0}, 0));
  // One-byte window.
  CHECK(seq_in_window(SeqNum{0xffffffffu}, SeqNum{0xffffffffu}, 1));
  CHECK_FALSE(seq_in_window(SeqNum{0}, SeqNum{0xffffffffu}, 1));
  // [2^32 - 16, 2^32 + 16): spans the wrap.
  const SeqNum lo{0xfffffff0u};
  CHECK_FALSE(seq_in_window(SeqNum{0xffffffefu}, lo, 32));
  CHECK(seq_in_window(SeqNum{0xfffffff0u}, lo, 32));
  CHECK(seq_in_window(SeqNum{0xffffffffu}, lo, 32));
  CHECK(seq_in_window(SeqNum{0}, lo, 32));
  CHECK(seq_in_window(SeqNum{0xf}, lo, 32));
  CHECK_FALSE(seq_in_window(SeqNum{0x10}, lo, 32));
  // Windows as large as TCP allows (2^30, RFC 7323 §2.3) and beyond.
  CHECK(seq_in_window(SeqNum{0x3fffffffu}, SeqNum{0}, 0x40000000u));
  CHECK_FALSE(seq_in_window(SeqNum{0x40000000u}, SeqNum{0}, 0x40000000u));
  CHECK(seq_in_window(SeqNum{0xfffffffeu}, SeqNum{0}, 0xffffffffu));
  CHECK_FALSE(seq_in_window(SeqNum{0xffffffffu}, SeqNum{0}, 0xffffffffu));
  CHECK(seq_in_window(SeqNum{0xffffffffu}, SeqNum{1}, 0xffffffffu));  // wraps to cover it
  CHECK_FALSE(seq_in_window(SeqNum{0}, SeqNum{1}, 0xffffffffu));      // the one excluded
}

TEST_CASE("seq_in_window: exhaustive small windows vs 64-bit reference", "[seq][window]") {
  // Every len 0..40 and every x within 48 of lo, for lo at each interesting
  // point; plus the huge lengths, for the same x.
  std::vector<std::uint32_t> lens;
  for (std::uint32_t n = 0; n <= 40; ++n) lens.push_back(n);
  for (const std::uint32_t n : {0x7fffffffu, 0x80000000u, 0x80000001u, 0xfffffff0u, 0xffffffffu}) lens.push_back(n);
  std::size_t checked = 0;
  for (const std::uint32_t lo : interesting_points())
    for (const std::uint32_t len : lens)
      for (std::uint32_t d = 0; d < 96; ++d) {
        const std::uint32_t x = lo - 48 + d;
        const bool got = seq_in_window(SeqNum{x}, SeqNum{lo}, len);
        if (got != ref_in_window(x, lo, len)) {
          INFO("x " << x << " lo " << lo << " len " << len);
          FAIL("mismatch");
        }
        ++checked;
      }
  CHECK(checked == interesting_points().size() * lens.size() * 96);
}

TEST_CASE("seq_in_window agrees with the comparisons for windows below 2^31", "[seq][window]") {
  // lo <= x && x < lo + len, written with the operators, is the same test
  // whenever len < 2^31 (it cannot be for larger windows: lo + len would
  // compare as behind lo).
  std::mt19937 rng(9293);
  std::uniform_int_distribution<std::uint32_t> any;
  for (int i = 0; i < 100000; ++i) {
    const SeqNum lo{any(rng)};
    const std::uint32_t len = any(rng) & (i % 2 ? 0x7fffffffu : 0xffu);
    const SeqNum x = lo + ((any(rng) & 0x1ff) - 0x100 + (i % 3 ? 0 : len));
    const bool ops = lo <= x && x < lo + len;
    if (ops != seq_in_window(x, lo, len)) {
      INFO("x " << x.raw() << " lo " << lo.raw() << " len " << len);
      FAIL("mismatch");
    }
  }
}

TEST_CASE("SeqNum is constexpr", "[seq]") {
  static_assert(SeqNum{0xffffffffu} + 1 == SeqNum{0});
  static_assert(SeqNum{0} - 1 == SeqNum{0xffffffffu});
  static_assert(SeqNum{1} - SeqNum{0xffffffffu} == 2);
  static_assert(SeqNum{0xffffffffu} < SeqNum{1});
  static_assert(!(SeqNum{0} < SeqNum{0x80000000u}));
  static_assert(seq_in_window(SeqNum{1}, SeqNum{0xffffffffu}, 3));
  static_assert(!seq_in_window(SeqNum{1}, SeqNum{1}, 0));
  static_assert(sizeof(SeqNum) == 4);
  SUCCEED();
}
