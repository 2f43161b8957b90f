// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012,
// §2): the keyed hash ustack uses wherever an attacker must not be able to
// predict or collide a value — TCP ISNs and SYN cookies (SipHash-2-4), flow
// table buckets (SipHash-1-3). Written here rather than called through
// libcrypto's EVP_MAC "SIPHASH" for speed (~22 ns against ~120 ns per
// 12-byte message on our machines) and because EVP_MAC's not allocating when
// re-keyed is not documented; the tests check this code against EVP_MAC.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace ustack {

// A 128-bit SipHash key.
using SipKey = std::array<std::uint8_t, 16>;

namespace detail {

// The first n (<= 8) bytes at p as a little-endian integer. At run time one
// (possibly short) copy: GCC does not turn the byte loop into a load, and the
// flow table hashes every segment's tuple. The loop stays for constexpr use.
constexpr std::uint64_t load_le64(const std::uint8_t* p, std::size_t n) {
  if (!std::is_constant_evaluated()) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, n);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  std::uint64_t v0, v1, v2, v3;

  constexpr void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

}  // namespace detail

// SipHash-c-d with a 64-bit output, per the paper: the key initialises four
// words XORed with "somepseudorandomlygeneratedbytes"; each little-endian
// 8-byte word m is absorbed as v3 ^= m, c rounds, v0 ^= m; the last word
// carries the remaining bytes and the length mod 256 in its top byte; then
// v2 ^= 0xff and d rounds, and the output is v0 ^ v1 ^ v2 ^ v3.
template <int C, int D>
constexpr std::uint64_t siphash(const SipKey& key, std::span<const std::uint8_t> msg) {
  const std::uint64_t k0 = detail::load_le64(key.data(), 8);
  const std::uint64_t k1 = detail::load_le64(key.data() + 8, 8);
  detail::SipState s{k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
                     k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
  const std::size_t whole = msg.size() & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    const std::uint64_t m = detail::load_le64(msg.data() + i, 8);
    s.v3 ^= m;
    for (int r = 0; r < C; ++r) s.round();
    s.v0 ^= m;
  }
  const std::uint64_t last =
      (std::uint64_t{msg.size() & 0xff} << 56) | detail::load_le64(msg.data() + whole, msg.size() - whole);
  s.v3 ^= last;
  for (int r = 0; r < C; ++r) s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  for (int r = 0; r < D; ++r) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// The PRF for ISNs and SYN cookies: full-strength SipHash-2-4.
constexpr std::uint64_t siphash24(const SipKey& key, std::span<const std::uint8_t> msg) {
  return siphash<2, 4>(key, msg);
}

// The table hash: SipHash-1-3, the reduced-round variant hash tables use to
// resist hash flooding (collisions cannot be found without the key) at about
// half the cost. Not used where an attacker sees the output.
constexpr std::uint64_t siphash13(const SipKey& key, std::span<const std::uint8_t> msg) {
  return siphash<1, 3>(key, msg);
}

}  // namespace ustack
