// The keyed hash (SipHash, checked against libcrypto's EVP_MAC "SIPHASH"
// and the paper's vectors) and RFC 6528 ISNs.
//
// No EAL here, so this binary has its own Catch2 main.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "tcp/isn.hpp"

using namespace ustack;
using namespace ustack::tcp;

namespace {

Secret counting_key() {
  Secret k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i);
  return k;
}

// libcrypto as the reference: EVP_MAC SIPHASH with an 8-byte output and the
// given round counts, the 64-bit result read little-endian as the paper does.
std::uint64_t evp_siphash(const Secret& key, std::span<const std::uint8_t> msg, unsigned c, unsigned d) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  REQUIRE(mac != nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  REQUIRE(ctx != nullptr);
  std::size_t size = 8;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
      OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c),
      OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &d),
      OSSL_PARAM_construct_end(),
  };
  REQUIRE(EVP_MAC_init(ctx, key.data(), key.size(), params) == 1);
  REQUIRE(EVP_MAC_update(ctx, msg.data(), msg.size()) == 1);
  std::uint8_t out[8];
  std::size_t outlen = 0;
  REQUIRE(EVP_MAC_final(ctx, out, &outlen, sizeof out) == 1);
  REQUIRE(outlen == 8);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | out[i];
  return v;
}

FourTuple tuple(std::uint8_t host, std::uint16_t lport, std::uint16_t rport) {
  return FourTuple{Ipv4Addr{10, 0, 0, 1}, Ipv4Addr{192, 0, 2, host}, lport, rport};
}

}  // namespace

TEST_CASE("SipHash-2-4 matches the paper's test vectors", "[siphash]") {
  // Key 00..0f; message 00..(n-1). From the SipHash paper, appendix A.
  const Secret key = counting_key();
  std::vector<std::uint8_t> msg;
  CHECK(siphash24(key, msg) == 0x726fdb47dd0e0e31ull);
  for (std::uint8_t i = 0; i < 15; ++i) msg.push_back(i);
  CHECK(siphash24(key, msg) == 0xa129ca6149be45e5ull);
}

TEST_CASE("SipHash-2-4 and SipHash-1-3 match libcrypto's EVP_MAC SIPHASH", "[siphash]") {
  std::mt19937_64 rng(6528);
  for (int round = 0; round < 40; ++round) {
    Secret key{};
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    // Every length around the 8-byte word boundaries, and the lengths used
    // by the ISN (12), the cookie (13, 26) and beyond.
    for (std::size_t len = 0; len <= 40; ++len) {
      std::vector<std::uint8_t> msg(len);
      for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
      INFO("round " << round << " len " << len);
      CHECK(siphash24(key, msg) == evp_siphash(key, msg, 2, 4));
      CHECK(siphash13(key, msg) == evp_siphash(key, msg, 1, 3));
    }
  }
}

TEST_CASE("SipHash is usable at compile time", "[siphash]") {
  constexpr Secret key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  constexpr std::array<std::uint8_t, 3> msg{'a', 'b', 'c'};
  constexpr std::uint64_t h = siphash24(key, msg);
  STATIC_REQUIRE(h != 0);
  CHECK(h == evp_siphash(key, msg, 2, 4));
}

TEST_CASE("ISN: M advances one per 4 microseconds for a fixed tuple", "[isn]") {
  const IsnGenerator gen(counting_key());
  const FourTuple t = tuple(7, 80, 40000);
  const TimeNs t0 = 123 * kNsPerSec + 17;
  const std::uint32_t base = gen.next(t, t0);
  CHECK(gen.next(t, t0 + 1) == base);  // t0 is 17 ns into its 4 µs tick
  CHECK(gen.next(t, t0 + 4 * kNsPerUs) == base + 1);
  CHECK(gen.next(t, t0 + kNsPerSec) == base + 250'000);

  // Successive ISNs for one tuple compare greater in sequence space (what a
  // new incarnation after TIME_WAIT relies on), up to half the wrap period.
  std::uint32_t prev = base;
  for (TimeNs now = t0 + kNsPerMs; now < t0 + 3600 * kNsPerSec; now += 7 * kNsPerSec + 3 * kNsPerMs) {
    const std::uint32_t isn = gen.next(t, now);
    CHECK(static_cast<std::int32_t>(isn - prev) > 0);
    CHECK(isn - base == static_cast<std::uint32_t>(now / IsnGenerator::kTickNs - t0 / IsnGenerator::kTickNs));
    prev = isn;
  }
  // The clock wraps after 2^32 ticks (~4.77 h), as RFC 9293's ISN clock does.
  CHECK(gen.next(t, t0 + (TimeNs{1} << 32) * IsnGenerator::kTickNs) == base);
}

TEST_CASE("ISN: F differs per tuple and is deterministic per secret", "[isn]") {
  const IsnGenerator gen(counting_key());
  const TimeNs now = 5 * kNsPerSec;
  const FourTuple t = tuple(7, 80, 40000);

  // Each field matters, including which side is local.
  std::set<std::uint32_t> seen{gen.next(t, now)};
  FourTuple v = t;
  v.local = Ipv4Addr{10, 0, 0, 2};
  seen.insert(gen.next(v, now));
  v = t;
  v.remote = Ipv4Addr{192, 0, 2, 8};
  seen.insert(gen.next(v, now));
  v = t;
  v.local_port = 81;
  seen.insert(gen.next(v, now));
  v = t;
  v.remote_port = 40001;
  seen.insert(gen.next(v, now));
  seen.insert(gen.next(FourTuple{t.remote, t.local, t.remote_port, t.local_port}, now));
  CHECK(seen.size() == 6);

  // Many tuples at one instant: no structure an attacker could use, and
  // (with this fixed secret) no collision among 4096 of them.
  std::set<std::uint32_t> many;
  for (std::uint16_t p = 0; p < 4096; ++p) many.insert(gen.next(tuple(9, 443, static_cast<std::uint16_t>(30000 + p)), now));
  CHECK(many.size() == 4096);

  // Same secret, same ISNs: pcap replay repeats a run exactly.
  const IsnGenerator again(counting_key());
  CHECK(again.next(t, now) == gen.next(t, now));
  Secret other = counting_key();
  other[15] ^= 1;
  const IsnGenerator different(other);
  CHECK(different.next(t, now) != gen.next(t, now));
}

TEST_CASE("random_secret draws fresh bytes from libcrypto", "[isn]") {
  const auto a = random_secret();
  const auto b = random_secret();
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a != *b);
}
