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
  // The last 0..7 bytes, zero-padded to a word: an odd final byte lands in
  // the high half of its 16-bit word, as RFC 1071 pads it.
  if (n != 0) {
    std::uint64_t tail = 0;
    std::memcpy(&tail, p, n);
    a0 = add_wrap(a0, tail);
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
