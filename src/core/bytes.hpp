// Big-endian loads and stores over byte spans.
//
// Wire code never casts packet memory to a struct: it reads fields at named
// offsets through these helpers, after the view has checked the length once.
// The helpers themselves do not re-check bounds (the views do, at parse time);
// in debug builds std::span's operator[] is still checked by the sanitizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ustack {

using Bytes = std::span<const std::uint8_t>;
using MutBytes = std::span<std::uint8_t>;

inline std::uint8_t load8(Bytes b, std::size_t off) { return b[off]; }

inline std::uint16_t load_be16(Bytes b, std::size_t off) {
  return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]);
}

inline std::uint32_t load_be32(Bytes b, std::size_t off) {
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) |
         (std::uint32_t{b[off + 2]} << 8) | std::uint32_t{b[off + 3]};
}

inline std::uint64_t load_be64(Bytes b, std::size_t off) {
  return (std::uint64_t{load_be32(b, off)} << 32) | load_be32(b, off + 4);
}

inline void store8(MutBytes b, std::size_t off, std::uint8_t v) { b[off] = v; }

inline void store_be16(MutBytes b, std::size_t off, std::uint16_t v) {
  b[off] = static_cast<std::uint8_t>(v >> 8);
  b[off + 1] = static_cast<std::uint8_t>(v);
}

inline void store_be32(MutBytes b, std::size_t off, std::uint32_t v) {
  b[off] = static_cast<std::uint8_t>(v >> 24);
  b[off + 1] = static_cast<std::uint8_t>(v >> 16);
  b[off + 2] = static_cast<std::uint8_t>(v >> 8);
  b[off + 3] = static_cast<std::uint8_t>(v);
}

inline void store_be64(MutBytes b, std::size_t off, std::uint64_t v) {
  store_be32(b, off, static_cast<std::uint32_t>(v >> 32));
  store_be32(b, off + 4, static_cast<std::uint32_t>(v));
}

}  // namespace ustack
