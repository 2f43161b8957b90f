// The Internet checksum (RFC 1071), the TCP/UDP pseudo-header sum, and
// incremental update (RFC 1624).
//
// Sums are carried as 32-bit partial sums of 16-bit big-endian words and
// folded once at the end. Whether a checksum is computed here or left to the
// NIC is decided by the caller from the device capabilities, never guessed.
#pragma once

#include <cstdint>

#include "core/bytes.hpp"
#include "ustack/addr.hpp"

namespace ustack::wire {

// Adds `data` as big-endian 16-bit words (odd trailing byte padded with zero)
// to `sum`. The result is unfolded; chain calls only at even offsets.
std::uint32_t checksum_add(Bytes data, std::uint32_t sum = 0);

// Folds carries and complements: the value to store in a checksum field.
constexpr std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Folds carries without complementing: a partial sum in 16 bits, safe to add
// to others without overflowing 32 bits.
constexpr std::uint32_t checksum_reduce(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

// A partial sum over bytes that begin at an odd offset of the checksummed
// data, made addable to the rest: the same sum byte-swapped (RFC 1071 §2(B)).
constexpr std::uint32_t checksum_at_odd_offset(std::uint32_t sum) {
  const std::uint32_t s = checksum_reduce(sum);
  return ((s & 0xff) << 8) | (s >> 8);
}

inline std::uint16_t internet_checksum(Bytes data) { return checksum_fold(checksum_add(data)); }

// True when `data` (with its checksum field in place) sums to all ones.
inline bool checksum_ok(Bytes data) { return internet_checksum(data) == 0; }

// The TCP/UDP pseudo-header (RFC 9293 §3.1, RFC 768) as an unfolded sum.
constexpr std::uint32_t pseudo_header_sum(Ipv4Addr src, Ipv4Addr dst, std::uint8_t proto,
                                          std::uint16_t l4_len) {
  return (src.v >> 16) + (src.v & 0xffff) + (dst.v >> 16) + (dst.v & 0xffff) + proto + l4_len;
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from
// `old_word` to `new_word`. Never produces the -0 ambiguity of eqn. 2.
constexpr std::uint16_t checksum_update16(std::uint16_t old_cksum, std::uint16_t old_word,
                                          std::uint16_t new_word) {
  std::uint32_t sum = static_cast<std::uint16_t>(~old_cksum);
  sum += static_cast<std::uint16_t>(~old_word);
  sum += new_word;
  return checksum_fold(sum);
}

constexpr std::uint16_t checksum_update32(std::uint16_t old_cksum, std::uint32_t old_v,
                                          std::uint32_t new_v) {
  const std::uint16_t c1 = checksum_update16(old_cksum, static_cast<std::uint16_t>(old_v >> 16),
                                             static_cast<std::uint16_t>(new_v >> 16));
  return checksum_update16(c1, static_cast<std::uint16_t>(old_v), static_cast<std::uint16_t>(new_v));
}

}  // namespace ustack::wire
