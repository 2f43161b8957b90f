// The test pattern every TCP test service speaks: --tcp-source sends it,
// --tcp-get checks it, the interop tests generate it in Python.
//
//   byte i of a stream = (7 * (i mod 251) + floor(i / 251)) mod 256
//
// Within a block of 251 bytes the bytes step by 7 (251 is prime, so every
// offset in the block has its own value); each block is the previous one
// plus 1. The period is 251 * 256 = 64,256 bytes, which no segment size,
// mbuf size or power of two divides, so a lost, repeated or reordered chunk
// of a transfer shows as a mismatch near where it happened. In Python:
//
//   period = bytes((7 * (i % 251) + i // 251) % 256 for i in range(64256))
//
// The table holds one period plus kMaxChunk bytes, so any chunk of up to
// kMaxChunk bytes starting anywhere in the period is contiguous in memory:
// senders copy from it and checkers compare against it without computing
// byte by byte. It is static storage (no heap), filled on first use.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>

namespace ustack::services {

inline constexpr std::size_t kPatternPeriod = 251 * 256;
inline constexpr std::size_t kPatternMaxChunk = 16384;

constexpr std::uint8_t pattern_byte(std::uint64_t i) {
  return static_cast<std::uint8_t>(7 * (i % 251) + i / 251);
}

class Pattern {
 public:
  // `len` (at most kPatternMaxChunk) bytes of the stream from `offset` on.
  static std::span<const std::uint8_t> chunk(std::uint64_t offset, std::size_t len) {
    const auto& t = table();
    return {t.data() + offset % kPatternPeriod, std::min(len, kPatternMaxChunk)};
  }
  // Index (from 0) of the first byte of `data` that is not the stream's
  // bytes from `offset` on; data.size() when all match.
  static std::size_t mismatch(std::uint64_t offset, std::span<const std::uint8_t> data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const std::size_t n = std::min(data.size() - done, kPatternMaxChunk);
      const auto want = chunk(offset + done, n);
      if (std::memcmp(data.data() + done, want.data(), n) != 0) {
        for (std::size_t i = 0; i < n; ++i)
          if (data[done + i] != want[i]) return done + i;
      }
      done += n;
    }
    return data.size();
  }
  // Fills the table (also done on first use; call at start-up so that the
  // first connection does not pay for it).
  static void init() { (void)table(); }

 private:
  static const std::array<std::uint8_t, kPatternPeriod + kPatternMaxChunk>& table() {
    static const auto t = [] {
      std::array<std::uint8_t, kPatternPeriod + kPatternMaxChunk> a{};
      for (std::size_t i = 0; i < a.size(); ++i) a[i] = pattern_byte(i);
      return a;
    }();
    return t;
  }
};

}  // namespace ustack::services
