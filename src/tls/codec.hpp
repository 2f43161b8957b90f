// TLS presentation-language encoding (RFC 8446 §3): big-endian integers and
// vectors with a 1-, 2- or 3-byte length prefix.
//
// Reader is a bounds-checked cursor: every read says whether the bytes were
// there, so a parser can turn a short vector into ParseError::truncated
// without reading past the end. Writer appends to a caller-owned buffer and
// back-patches vector lengths, so emitters never compute a length by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/bytes.hpp"

namespace ustack::tls {

class Reader {
 public:
  explicit Reader(Bytes b) : b_(b) {}

  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = b_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = load_be16(b_, pos_);
    pos_ += 2;
    return true;
  }
  bool u24(std::uint32_t& v) {
    if (left() < 3) return false;
    v = (std::uint32_t{b_[pos_]} << 16) | (std::uint32_t{b_[pos_ + 1]} << 8) | b_[pos_ + 2];
    pos_ += 3;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = load_be32(b_, pos_);
    pos_ += 4;
    return true;
  }
  bool bytes(std::size_t n, Bytes& out) {
    if (left() < n) return false;
    out = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  // A vector<0..2^(8*prefix)-1> whose length prefix is `prefix` bytes.
  bool vec(int prefix, Bytes& out) {
    std::uint32_t n = 0;
    if (prefix == 1) {
      std::uint8_t v;
      if (!u8(v)) return false;
      n = v;
    } else if (prefix == 2) {
      std::uint16_t v;
      if (!u16(v)) return false;
      n = v;
    } else {
      if (!u24(n)) return false;
    }
    return bytes(n, out);
  }
  bool vec(int prefix, std::vector<std::uint8_t>& out) {
    Bytes b;
    if (!vec(prefix, b)) return false;
    out.assign(b.begin(), b.end());
    return true;
  }
  std::size_t left() const { return b_.size() - pos_; }
  bool empty() const { return left() == 0; }
  Bytes rest() const { return b_.subspan(pos_); }

 private:
  Bytes b_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u24(std::uint32_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 16));
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void bytes(Bytes b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void vec(int prefix, Bytes b) {
    const std::size_t m = open(prefix);
    bytes(b);
    close(m, prefix);
  }

  // Reserves a `prefix`-byte length; close() fills it with what was written since.
  std::size_t open(int prefix) {
    out_.insert(out_.end(), static_cast<std::size_t>(prefix), 0);
    return out_.size();
  }
  void close(std::size_t mark, int prefix) {
    const std::size_t n = out_.size() - mark;
    for (int i = 0; i < prefix; ++i) {
      out_[mark - 1 - static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
    }
  }
  std::size_t size() const { return out_.size(); }

 private:
  std::vector<std::uint8_t>& out_;
};

}  // namespace ustack::tls
