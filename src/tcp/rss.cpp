// Toeplitz RSS hash and source-port selection: see rss.hpp.
#include "tcp/rss.hpp"

namespace ustack::tcp {

namespace {

std::uint8_t key_byte(std::span<const std::uint8_t> key, std::size_t i) {
  return i < key.size() ? key[i] : 0;
}

// The 32 key bits starting at bit `bit` (bit 0 = MSB of key[0]): what the
// algorithm XORs in for input bit number `bit`.
std::uint32_t key_window(std::span<const std::uint8_t> key, std::size_t bit) {
  const std::size_t byte = bit / 8;
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < 5; ++i) w = (w << 8) | key_byte(key, byte + i);
  return static_cast<std::uint32_t>(w >> (8 - bit % 8));
}

std::array<std::uint8_t, 12> l4_input(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport,
                                      std::uint16_t dport) {
  return {static_cast<std::uint8_t>(src.v >> 24), static_cast<std::uint8_t>(src.v >> 16),
          static_cast<std::uint8_t>(src.v >> 8),  static_cast<std::uint8_t>(src.v),
          static_cast<std::uint8_t>(dst.v >> 24), static_cast<std::uint8_t>(dst.v >> 16),
          static_cast<std::uint8_t>(dst.v >> 8),  static_cast<std::uint8_t>(dst.v),
          static_cast<std::uint8_t>(sport >> 8),  static_cast<std::uint8_t>(sport),
          static_cast<std::uint8_t>(dport >> 8),  static_cast<std::uint8_t>(dport)};
}

}  // namespace

std::uint32_t toeplitz(std::span<const std::uint8_t> key, std::span<const std::uint8_t> input) {
  // `win` holds the next 64 key bits; its top 32 are "the leftmost 32 bits
  // of K" for the current input bit. After each input byte the low 8 bits
  // have been shifted empty and take the next key byte.
  std::uint64_t win = 0;
  for (std::size_t i = 0; i < 8; ++i) win = (win << 8) | key_byte(key, i);
  std::size_t next = 8;
  std::uint32_t result = 0;
  for (const std::uint8_t byte : input) {
    for (int b = 7; b >= 0; --b) {
      if ((byte >> b) & 1) result ^= static_cast<std::uint32_t>(win >> 32);
      win <<= 1;
    }
    win |= key_byte(key, next++);
  }
  return result;
}

std::uint32_t rss_hash_ipv4(std::span<const std::uint8_t> key, Ipv4Addr src, Ipv4Addr dst) {
  const auto in = l4_input(src, dst, 0, 0);
  return toeplitz(key, std::span<const std::uint8_t>(in).first(8));
}

std::uint32_t rss_hash_ipv4_l4(std::span<const std::uint8_t> key, Ipv4Addr src, Ipv4Addr dst,
                               std::uint16_t src_port, std::uint16_t dst_port) {
  return toeplitz(key, l4_input(src, dst, src_port, dst_port));
}

void fill_reta(std::span<std::uint16_t> reta, std::uint16_t nqueues) {
  if (nqueues == 0) nqueues = 1;
  for (std::size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<std::uint16_t>(i % nqueues);
}

ReplyHash::ReplyHash(std::span<const std::uint8_t> key, Ipv4Addr local, Ipv4Addr remote,
                     std::uint16_t remote_port)
    : base_(rss_hash_ipv4_l4(key, remote, local, remote_port, 0)) {
  constexpr std::size_t kDstPortBit = 10 * 8;  // the destination port's first bit in the input
  for (std::size_t b = 0; b < window_.size(); ++b) window_[b] = key_window(key, kDstPortBit + b);
}

std::optional<std::uint16_t> pick_source_port(Ipv4Addr local, Ipv4Addr remote,
                                              std::uint16_t remote_port, std::uint16_t queue,
                                              std::span<const std::uint16_t> reta,
                                              std::span<const std::uint8_t> key, PortRange range,
                                              std::uint16_t hint) {
  return pick_source_port(local, remote, remote_port, queue, reta, key, range, hint,
                          [](std::uint16_t) { return true; });
}

}  // namespace ustack::tcp
