// TCP sequence numbers: 32-bit serial numbers that wrap (RFC 9293 §3.4,
// RFC 1982 §3 for the arithmetic, RFC 7323 §2.3 for why windows stay below
// 2^30 so that the comparison is never ambiguous in a correct connection).
//
// A SeqNum is a point on a circle of 2^32 values. Adding or subtracting an
// unsigned count moves along the circle; subtracting two points gives the
// signed distance between them, and `a < b` means "b is ahead of a by less
// than half the circle". This is the comparison RFC 9293 §3.4 asks for
// ("the symbol =< means less than or equal (modulo 2**32)").
//
// The one ambiguous case: two numbers exactly 2^31 apart. Each is then half
// the circle ahead of the other, and RFC 1982 §3.2 leaves their order
// undefined. Here it is defined, deterministically, as *incomparable*:
// a < b, a > b, a <= b and a >= b are all false, and only a != b holds.
// That is RFC 1982's definition read literally (neither clause of its "<"
// holds at exactly 2^(SERIAL_BITS-1)), and it fails closed: an acceptance
// test written positively ("lo <= x && x < hi") rejects such a number
// whichever end it is compared with. (Linux's before() instead answers
// "yes" both ways, so before(a, b) && before(b, a) can hold.) The signed
// difference a - b of such a pair is INT32_MIN in both orders.
// A correct TCP never meets the case: RFC 7323 §2.3 caps the scaled window
// at 2^30 precisely so that every comparison it makes is within 2^31.
//
// seq_in_window() is the RFC 9293 §3.4 acceptability test
// "lo =< x < lo + len" done as one unsigned subtraction, so it is exact for
// every len (0 included) and for windows that span the wrap.
#pragma once

#include <cstdint>

namespace ustack {

class SeqNum {
 public:
  constexpr SeqNum() = default;
  constexpr explicit SeqNum(std::uint32_t v) : v_(v) {}

  constexpr std::uint32_t raw() const { return v_; }

  friend constexpr SeqNum operator+(SeqNum a, std::uint32_t n) { return SeqNum{a.v_ + n}; }
  friend constexpr SeqNum operator-(SeqNum a, std::uint32_t n) { return SeqNum{a.v_ - n}; }
  constexpr SeqNum& operator+=(std::uint32_t n) {
    v_ += n;
    return *this;
  }
  constexpr SeqNum& operator-=(std::uint32_t n) {
    v_ -= n;
    return *this;
  }

  // Signed distance from b to a: positive when a is ahead. C++20 defines the
  // unsigned -> signed conversion as modular, so this is exact.
  friend constexpr std::int32_t operator-(SeqNum a, SeqNum b) {
    return static_cast<std::int32_t>(a.v_ - b.v_);
  }

  friend constexpr bool operator==(SeqNum a, SeqNum b) { return a.v_ == b.v_; }
  // a < b: b is 1 .. 2^31-1 ahead of a. Exactly 2^31 apart: neither is less.
  friend constexpr bool operator<(SeqNum a, SeqNum b) {
    const std::int32_t d = a - b;
    return d < 0 && d != INT32_MIN;
  }
  friend constexpr bool operator>(SeqNum a, SeqNum b) { return b < a; }
  friend constexpr bool operator<=(SeqNum a, SeqNum b) { return a == b || a < b; }
  friend constexpr bool operator>=(SeqNum a, SeqNum b) { return a == b || b < a; }

 private:
  std::uint32_t v_ = 0;
};

// lo <= x < lo + len on the circle. False for every x when len is 0.
constexpr bool seq_in_window(SeqNum x, SeqNum lo, std::uint32_t len) {
  return x.raw() - lo.raw() < len;
}

}  // namespace ustack
