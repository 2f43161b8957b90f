#include "wire/checksum.hpp"

#include <cstring>

namespace ustack::wire {

std::uint32_t checksum_add(Bytes data, std::uint32_t sum) {
  // Sum 32-bit big-endian chunks into a 64-bit accumulator (carries cannot
  // overflow it for any packet size we handle), then fold to 32 bits.
  std::uint64_t acc = sum;
  std::size_t i = 0;
  const std::size_t n = data.size();
  for (; i + 4 <= n; i += 4) acc += load_be32(data, i);
  if (i + 2 <= n) {
    acc += load_be16(data, i);
    i += 2;
  }
  if (i < n) acc += std::uint32_t{data[i]} << 8;
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  // Fold 32 -> 16-bit words' sum (still unfolded in the 16-bit sense).
  std::uint32_t s = static_cast<std::uint32_t>(acc >> 16 & 0xffff) + static_cast<std::uint32_t>(acc & 0xffff);
  s += static_cast<std::uint32_t>(acc >> 32);
  return s;
}

}  // namespace ustack::wire
