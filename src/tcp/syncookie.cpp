// SYN cookies: see syncookie.hpp for the layout and the validity window.
#include "tcp/syncookie.hpp"

#include <algorithm>
#include <array>

namespace ustack::tcp {

namespace {

// Domain tags keep the two keyed values apart even for equal inputs.
constexpr std::uint8_t kTagWhitening = 'W';
constexpr std::uint8_t kTagMac = 'C';

constexpr std::uint32_t kCounterMask = 0x1f;  // 5 bits of the period counter
constexpr std::uint32_t kMacMask = 0x00ffffff;

constexpr std::uint8_t kNoWscale = 0x0f;
constexpr std::uint8_t kMaxWscale = 14;  // RFC 7323 §2.3
constexpr std::uint32_t kSackBit = 0x10;

}  // namespace

std::uint32_t SynCookies::whitening(const FourTuple& t) const {
  std::array<std::uint8_t, kFourTupleBytes + 1> in{};
  const auto tb = tuple_bytes(t);
  for (std::size_t i = 0; i < tb.size(); ++i) in[i] = tb[i];
  in[kFourTupleBytes] = kTagWhitening;
  return static_cast<std::uint32_t>(siphash24(secret_, in));
}

std::uint32_t SynCookies::mac24(const FourTuple& t, std::uint32_t client_isn, std::uint64_t counter,
                                std::uint8_t mss_idx) const {
  // tuple (12) | client ISN (4, BE) | counter (8, BE) | mss index | tag
  std::array<std::uint8_t, kFourTupleBytes + 4 + 8 + 2> in{};
  const auto tb = tuple_bytes(t);
  std::size_t n = 0;
  for (const std::uint8_t b : tb) in[n++] = b;
  for (int s = 24; s >= 0; s -= 8) in[n++] = static_cast<std::uint8_t>(client_isn >> s);
  for (int s = 56; s >= 0; s -= 8) in[n++] = static_cast<std::uint8_t>(counter >> s);
  in[n++] = mss_idx;
  in[n++] = kTagMac;
  return static_cast<std::uint32_t>(siphash24(secret_, in)) & kMacMask;
}

std::uint8_t SynCookies::mss_index(std::uint16_t mss) {
  std::uint8_t idx = 0;
  for (std::uint8_t i = 0; i < kMssTable.size(); ++i)
    if (kMssTable[i] <= mss) idx = i;
  return idx;
}

std::uint32_t SynCookies::make(const FourTuple& t, std::uint32_t client_isn, std::uint16_t mss,
                               TimeNs now) const {
  const std::uint64_t counter = now / kPeriodNs;
  const std::uint8_t idx = mss_index(mss);
  const std::uint32_t plain = ((static_cast<std::uint32_t>(counter) & kCounterMask) << 27) |
                              (std::uint32_t{idx} << 24) | mac24(t, client_isn, counter, idx);
  return plain + whitening(t);
}

std::optional<std::uint16_t> SynCookies::check(const FourTuple& t, std::uint32_t client_isn,
                                               std::uint32_t cookie, TimeNs now) const {
  const std::uint32_t plain = cookie - whitening(t);
  const std::uint64_t counter = now / kPeriodNs;
  // The 5 bits name at most one period among the current and the previous
  // kMaxAge ones; the MAC then checks the full counter of that period.
  const std::uint64_t age = (counter - (plain >> 27)) & kCounterMask;
  if (age > kMaxAge || age > counter) return std::nullopt;
  const auto idx = static_cast<std::uint8_t>((plain >> 24) & 0x7);
  if ((plain & kMacMask) != mac24(t, client_isn, counter - age, idx)) return std::nullopt;
  return kMssTable[idx];
}

std::uint32_t SynCookies::encode_options(std::uint32_t tsval, const CookieOptions& opts) {
  std::uint32_t bits = opts.wscale ? std::min<std::uint8_t>(*opts.wscale, kMaxWscale) : kNoWscale;
  if (opts.sack_permitted) bits |= kSackBit;
  constexpr std::uint32_t mask = (1u << kTsOptionBits) - 1;
  std::uint32_t out = (tsval & ~mask) | bits;
  if (out > tsval) out -= 1u << kTsOptionBits;  // never ahead of our clock (wraps near 0, as TSval does)
  return out;
}

CookieOptions SynCookies::decode_options(std::uint32_t tsecr) {
  CookieOptions o;
  const auto ws = static_cast<std::uint8_t>(tsecr & 0x0f);
  if (ws != kNoWscale) o.wscale = ws;
  o.sack_permitted = (tsecr & kSackBit) != 0;
  return o;
}

}  // namespace ustack::tcp
