// Initial sequence numbers (RFC 6528) and the keyed hash TCP uses for them.
//
// Read: RFC 6528 §3 (ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey)); RFC 9293 §3.4.1; Aumasson and Bernstein, "SipHash: a fast
// short-input PRF" (2012), §2 for the algorithm used as F here.
//
// Why SipHash written here and not EVP_MAC "SIPHASH": libcrypto is the
// reference the tests check this code against (same key, same message, same
// output, for SipHash-2-4 and SipHash-1-3). On OpenSSL 3.0.22 re-keying a
// preallocated EVP_MAC_CTX with EVP_MAC_init + update + final was measured
// to allocate nothing, but it cost ~120 ns per 12-byte message through the
// provider dispatch (the inline version below: ~22 ns, same machine), and
// its not allocating is not a documented guarantee. That matters because the
// flow table hashes every received segment and SYN cookies hash every SYN
// of a flood. libcrypto stays the source of the secret (RAND_bytes).
//
// One secret per use: the stack draws independent secrets for the ISN
// generator, the SYN cookies and each flow table, so a value one of them
// exposes (an ISN is sent in clear) says nothing about the others.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "core/time.hpp"
#include "tcp/tuple.hpp"

namespace ustack::tcp {

// A 128-bit SipHash key: 16 secret bytes, chosen once per start.
using Secret = std::array<std::uint8_t, 16>;

// 16 bytes from libcrypto's CSPRNG (RAND_bytes); nullopt when it is not
// seeded. Production only: tests and pcap replay pass a fixed Secret so runs
// repeat exactly.
std::optional<Secret> random_secret();

namespace detail {

constexpr std::uint64_t load_le64(const std::uint8_t* p, std::size_t n) {
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
constexpr std::uint64_t siphash(const Secret& key, std::span<const std::uint8_t> msg) {
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
constexpr std::uint64_t siphash24(const Secret& key, std::span<const std::uint8_t> msg) {
  return siphash<2, 4>(key, msg);
}

// The table hash: SipHash-1-3, the reduced-round variant hash tables use to
// resist hash flooding (collisions cannot be found without the key) at about
// half the cost. Not used where an attacker sees the output.
constexpr std::uint64_t siphash13(const Secret& key, std::span<const std::uint8_t> msg) {
  return siphash<1, 3>(key, msg);
}

// RFC 6528 ISNs: M + F(4-tuple, secret), where M ticks every 4 µs of `now`
// (so it wraps every ~4.77 hours, as RFC 9293's clock does) and F is the low
// 32 bits of SipHash-2-4 over the canonical tuple bytes. For one tuple,
// successive ISNs advance with time, so a new incarnation starts above the
// old one's sequence space (RFC 6528 §3, what TIME_WAIT reuse relies on);
// across tuples they are unpredictable without the secret.
class IsnGenerator {
 public:
  static constexpr TimeNs kTickNs = 4 * kNsPerUs;

  explicit IsnGenerator(const Secret& secret) : secret_(secret) {}

  std::uint32_t next(const FourTuple& t, TimeNs now) const {
    const auto bytes = tuple_bytes(t);
    const auto f = static_cast<std::uint32_t>(siphash24(secret_, bytes));
    return static_cast<std::uint32_t>(now / kTickNs) + f;
  }

 private:
  Secret secret_;
};

}  // namespace ustack::tcp
