#include "wire/checksum.hpp"

#include <bit>
#include <cstring>

namespace ustack::wire {

namespace {

// One's complement addition of 64-bit words: the carry out of bit 63 wraps
// around into bit 0 (RFC 1071 §2(C): the sum may be taken in any word size
// and folded at the end).
inline std::uint64_t add_wrap(std::uint64_t a, std::uint64_t b) {
  a += b;
  return a + (a < b);
}

inline std::uint64_t load64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

std::uint32_t checksum_add(Bytes data, std::uint32_t sum) {
  // RFC 1071 §2(B): the one's complement sum does not depend on byte order.
  // Summing native-order 64-bit words gives the sum of the byte-swapped
  // 16-bit words on a little-endian host; swapping the folded result back
  // gives the big-endian sum. Four independent accumulators keep the adds'
  // carry chains from serialising the loop.
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (; n >= 32; p += 32, n -= 32) {
    a0 = add_wrap(a0, load64(p));
    a1 = add_wrap(a1, load64(p + 8));
    a2 = add_wrap(a2, load64(p + 16));
    a3 = add_wrap(a3, load64(p + 24));
  }
  for (; n >= 8; p += 8, n -= 8) a0 = add_wrap(a0, load64(p));
  // The last 0..7 bytes as one 4-, one 2- and one 1-byte load. (A memcpy of
  // n bytes into a zeroed word compiles to a byte loop whose narrow stores
  // the word load cannot forward from: a store-forwarding stall on every
  // 20-byte IPv4 header.) Each piece lands on a 16-bit boundary of its own
  // addend, so its words keep their native order. An odd final byte is the
  // first byte of a zero-padded 16-bit word (RFC 1071 §4.1's left-over
  // byte): the word's high half on the wire, its low byte in native order
  // on a little-endian host.
  if (n & 4) {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    a1 = add_wrap(a1, w);
    p += 4;
  }
  if (n & 2) {
    std::uint16_t w;
    std::memcpy(&w, p, sizeof w);
    a2 = add_wrap(a2, w);
    p += 2;
  }
  if (n & 1) {
    const std::uint64_t b = *p;
    a3 = add_wrap(a3, std::endian::native == std::endian::little ? b : b << 8);
  }
  std::uint64_t acc = add_wrap(add_wrap(a0, a1), add_wrap(a2, a3));
  // Fold 64 -> 16 bits with end-around carries.
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  std::uint32_t s = static_cast<std::uint32_t>(acc);
  if constexpr (std::endian::native == std::endian::little) s = static_cast<std::uint16_t>((s << 8) | (s >> 8));
  // Add the caller's partial sum and fold again: the result is at most
  // 0xffff, so chained calls and pseudo-header additions cannot overflow.
  std::uint64_t t = std::uint64_t{sum} + s;
  while (t >> 16) t = (t & 0xffff) + (t >> 16);
  return static_cast<std::uint32_t>(t);
}

}  // namespace ustack::wire
