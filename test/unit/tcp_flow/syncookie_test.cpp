// SYN cookies: a cookie comes back valid for its own tuple, client ISN and
// the two periods after it was made, and for nothing else.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>

#include "tcp/syncookie.hpp"

using namespace ustack;
using namespace ustack::tcp;

namespace {

Secret key_a() {
  Secret k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(0xa0 + i);
  return k;
}

const FourTuple kTuple{Ipv4Addr{10, 0, 0, 1}, Ipv4Addr{198, 51, 100, 23}, 443, 51515};
constexpr std::uint32_t kClientIsn = 0x12345678;
constexpr TimeNs kPeriod = SynCookies::kPeriodNs;

}  // namespace

TEST_CASE("Cookies round-trip every MSS in the table", "[syncookie]") {
  const SynCookies sc(key_a());
  const TimeNs made = 1000 * kPeriod + 5 * kNsPerSec;
  for (const std::uint16_t mss : SynCookies::kMssTable) {
    INFO("mss " << mss);
    const std::uint32_t c = sc.make(kTuple, kClientIsn, mss, made);
    CHECK(sc.check(kTuple, kClientIsn, c, made) == mss);
    CHECK(sc.check(kTuple, kClientIsn, c, made + kNsPerSec) == mss);
    // The last instant of the following period is still accepted...
    CHECK(sc.check(kTuple, kClientIsn, c, (made / kPeriod + 2) * kPeriod - 1) == mss);
    // ...the first instant after it is not.
    CHECK_FALSE(sc.check(kTuple, kClientIsn, c, (made / kPeriod + 2) * kPeriod));
  }
}

TEST_CASE("Cookie MSS rounds down to the table, never above what was offered", "[syncookie]") {
  const SynCookies sc(key_a());
  const TimeNs now = 3 * kPeriod;
  const auto roundtrip = [&](std::uint16_t mss) {
    return sc.check(kTuple, kClientIsn, sc.make(kTuple, kClientIsn, mss, now), now);
  };
  CHECK(roundtrip(1459) == 1452);
  CHECK(roundtrip(1461) == 1460);
  CHECK(roundtrip(8959) == 1460);
  CHECK(roundtrip(9000) == 8960);
  CHECK(roundtrip(65535) == 8960);
  CHECK(roundtrip(536) == 536);
  CHECK(roundtrip(100) == 536);  // below the table: RFC 9293's default
  for (std::uint8_t i = 0; i < SynCookies::kMssTable.size(); ++i)
    CHECK(SynCookies::mss_index(SynCookies::kMssTable[i]) == i);
}

TEST_CASE("Cookies are refused for another tuple or client ISN", "[syncookie]") {
  const SynCookies sc(key_a());
  const TimeNs now = 77 * kPeriod + 1;
  const std::uint32_t c = sc.make(kTuple, kClientIsn, 1460, now);
  REQUIRE(sc.check(kTuple, kClientIsn, c, now) == 1460);

  FourTuple t = kTuple;
  t.local = Ipv4Addr{10, 0, 0, 2};
  CHECK_FALSE(sc.check(t, kClientIsn, c, now));
  t = kTuple;
  t.remote = Ipv4Addr{198, 51, 100, 24};
  CHECK_FALSE(sc.check(t, kClientIsn, c, now));
  t = kTuple;
  t.local_port = 444;
  CHECK_FALSE(sc.check(t, kClientIsn, c, now));
  t = kTuple;
  t.remote_port = 51516;
  CHECK_FALSE(sc.check(t, kClientIsn, c, now));
  CHECK_FALSE(sc.check(kTuple, kClientIsn + 1, c, now));
  CHECK_FALSE(sc.check(kTuple, kClientIsn ^ 0x80000000u, c, now));

  // Another secret (another run of the stack) does not accept it.
  Secret k = key_a();
  k[0] ^= 0x01;
  CHECK_FALSE(SynCookies(k).check(kTuple, kClientIsn, c, now));
}

TEST_CASE("Cookies expire after the next period and are not valid before they were made", "[syncookie]") {
  const SynCookies sc(key_a());
  const TimeNs made = 500 * kPeriod + 10;
  const std::uint32_t c = sc.make(kTuple, kClientIsn, 1440, made);
  CHECK(sc.check(kTuple, kClientIsn, c, made + kPeriod) == 1440);
  CHECK_FALSE(sc.check(kTuple, kClientIsn, c, made + 2 * kPeriod));
  CHECK_FALSE(sc.check(kTuple, kClientIsn, c, made + 5 * kPeriod));
  CHECK_FALSE(sc.check(kTuple, kClientIsn, c, made - kPeriod));
  // 32 periods later the 5-bit counter matches again; the MAC over the
  // full counter refuses it.
  CHECK_FALSE(sc.check(kTuple, kClientIsn, c, made + 32 * kPeriod));
  CHECK_FALSE(sc.check(kTuple, kClientIsn, c, made + 33 * kPeriod));
}

TEST_CASE("Cookies stay valid across the 5-bit counter wrap", "[syncookie]") {
  const SynCookies sc(key_a());
  for (const TimeNs made : {31 * kPeriod + 63 * kNsPerSec, 63 * kPeriod, 95 * kPeriod + 1}) {
    INFO("made at period " << made / kPeriod);
    const std::uint32_t c = sc.make(kTuple, kClientIsn, 1300, made);
    const TimeNs next = (made / kPeriod + 1) * kPeriod;  // counter low bits wrap 31 -> 0 here
    CHECK(sc.check(kTuple, kClientIsn, c, next) == 1300);
    CHECK(sc.check(kTuple, kClientIsn, c, next + kPeriod - 1) == 1300);
    CHECK_FALSE(sc.check(kTuple, kClientIsn, c, next + kPeriod));
  }
  // Right after start, a counter of 0 looks back at no period "-1".
  const std::uint32_t c0 = sc.make(kTuple, kClientIsn, 536, 0);
  CHECK(sc.check(kTuple, kClientIsn, c0, 0) == 536);
  CHECK(sc.check(kTuple, kClientIsn, c0 + (31u << 27), 0) == std::nullopt);
}

TEST_CASE("Forged cookies are refused", "[syncookie]") {
  const SynCookies sc(key_a());
  const TimeNs now = 1234 * kPeriod + 99;
  const std::uint32_t c = sc.make(kTuple, kClientIsn, 1460, now);
  // Any single flipped bit: the counter, the MSS index or the MAC.
  for (int bit = 0; bit < 32; ++bit) {
    INFO("bit " << bit);
    CHECK_FALSE(sc.check(kTuple, kClientIsn, c ^ (1u << bit), now));
  }
  // Editing the MSS index (the MAC covers it): every other index value with
  // the same counter and MAC is refused. Adding to the cookie adds to the
  // unwhitened word, so this sets the index field to i exactly.
  const std::uint32_t idx = SynCookies::mss_index(1460);
  for (std::uint32_t i = 0; i < SynCookies::kMssTable.size(); ++i) {
    if (i == idx) continue;
    INFO("index " << i);
    CHECK_FALSE(sc.check(kTuple, kClientIsn, c + ((i - idx) << 24), now));
  }
  // Random guesses.
  std::mt19937 rng(4987);
  int accepted = 0;
  for (int i = 0; i < 200'000; ++i)
    if (sc.check(kTuple, kClientIsn, static_cast<std::uint32_t>(rng()), now)) ++accepted;
  // 2 of 32 counter values pass the age test, then 2^-24 per MAC guess.
  CHECK(accepted == 0);
}

TEST_CASE("Cookies are deterministic per secret and whitened per tuple", "[syncookie]") {
  const SynCookies sc(key_a());
  const SynCookies same(key_a());
  const TimeNs now = 40 * kPeriod;
  CHECK(sc.make(kTuple, kClientIsn, 1460, now) == same.make(kTuple, kClientIsn, 1460, now));

  // Without whitening the top byte (counter + MSS index) would be the same
  // for every tuple at one instant; with it, it is spread.
  std::set<std::uint32_t> top_bytes;
  for (std::uint16_t p = 0; p < 256; ++p) {
    FourTuple t = kTuple;
    t.remote_port = static_cast<std::uint16_t>(40000 + p);
    top_bytes.insert(sc.make(t, kClientIsn, 1460, now) >> 24);
  }
  CHECK(top_bytes.size() > 100);
}

TEST_CASE("Window scale and SACK-permitted ride in the TSval's low bits", "[syncookie]") {
  for (const std::uint32_t tsval : {0x12345678u, 0u, 31u, 32u, 0xffffffffu, 0x80000010u}) {
    for (int ws = -1; ws <= 14; ++ws) {
      for (const bool sack : {false, true}) {
        CookieOptions o;
        if (ws >= 0) o.wscale = static_cast<std::uint8_t>(ws);
        o.sack_permitted = sack;
        const std::uint32_t enc = SynCookies::encode_options(tsval, o);
        INFO("tsval " << tsval << " ws " << ws << " sack " << sack);
        CHECK(SynCookies::decode_options(enc) == o);
        // Never ahead of our clock, and at most 2^5 - 1 behind it.
        CHECK(static_cast<std::int32_t>(tsval - enc) >= 0);
        CHECK(tsval - enc < (1u << SynCookies::kTsOptionBits));
      }
    }
  }
  // RFC 7323 caps the shift at 14.
  CookieOptions big;
  big.wscale = 20;
  CHECK(SynCookies::decode_options(SynCookies::encode_options(1000, big)).wscale == 14);
}
