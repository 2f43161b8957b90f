// SYN cookies (RFC 4987 §3.6): a listener under SYN flood keeps no state
// for a half-open connection; what it must remember travels in its ISN.
//
// Read: RFC 4987 §3.6; RFC 9293 §3.10.7.2 (what the returning ACK carries);
// RFC 7323 §5.4 and §7 (timestamps, and why TSval may carry a few bits).
//
// Layout of the 32-bit cookie (our ISN in the SYN-ACK), before whitening:
//
//    31      27 26  24 23                                     0
//   +----------+------+----------------------------------------+
//   | t mod 32 | mss  |  MAC24(4-tuple, client ISN, t, mss)    |
//   +----------+------+----------------------------------------+
//
//   t      the period counter, now / 64 s. The MAC covers the whole counter,
//          so a cookie replayed 32 periods later (same 5 bits) fails.
//   mss    an index into kMssTable: the largest entry not above the MSS
//          the caller will use (entry 0 when even that is larger, as RFC
//          9293's default 536 is what a peer must accept).
//   MAC24  low 24 bits of SipHash-2-4 under the secret; covers the index,
//          so a client cannot raise its MSS by flipping bits.
//
// The cookie sent is that word plus W(4-tuple), a per-tuple keyed value, so
// the counter and index are not visible on the wire and ISNs do not cluster
// (RFC 6528's concern). A guessing attacker must hit 24 bits per try, per
// tuple, within two periods.
//
// Validity: a cookie made in period c is accepted in periods c and c + 1
// (kMaxAge = 1), i.e. for at least 64 s and at most 128 s: far longer than
// the RTT the client needs to answer, short enough that a captured cookie
// expires quickly.
//
// Options: the cookie cannot carry window scale and SACK-permitted. When the
// client's SYN offered timestamps, encode_options() stores them in the low 5
// bits of our TSval, which the client echoes in TSecr of its ACK; the TSval
// is moved back rather than forward so our timestamp clock never runs ahead
// (the peer's PAWS check, RFC 7323 §5). Without timestamps the connection
// proceeds without window scaling and SACK. These bits are not covered by
// the MAC (as in Linux): only a host that already knows the cookie can alter
// them, and it gains nothing it could not get with its own SYN.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/time.hpp"
#include "tcp/isn.hpp"
#include "tcp/tuple.hpp"

namespace ustack::tcp {

// What the client's SYN offered, as far as a cookie can remember it.
struct CookieOptions {
  std::optional<std::uint8_t> wscale;  // shift count the client offered (0..14)
  bool sack_permitted = false;

  constexpr bool operator==(const CookieOptions&) const = default;
};

class SynCookies {
 public:
  static constexpr TimeNs kPeriodNs = 64 * kNsPerSec;
  static constexpr std::uint64_t kMaxAge = 1;  // periods a cookie stays valid after its own
  // Common MSS values, ascending: RFC 9293's default, IPv6-minimum-derived
  // and tunnel/VPN paths, PPPoE (1492 - 40), Ethernet (1500 - 40), jumbo
  // (9000 - 40).
  static constexpr std::array<std::uint16_t, 8> kMssTable = {536, 1200, 1300, 1380,
                                                            1440, 1452, 1460, 8960};
  static constexpr std::uint32_t kTsOptionBits = 5;  // low TSval bits used by encode_options

  explicit SynCookies(const Secret& secret) : secret_(secret) {}

  // The ISN for our SYN-ACK answering a SYN with sequence number
  // `client_isn` on `t`, remembering `mss` (rounded down to the table).
  std::uint32_t make(const FourTuple& t, std::uint32_t client_isn, std::uint16_t mss,
                     TimeNs now) const;

  // Validates the ACK completing the handshake: `client_isn` is its SEG.SEQ
  // - 1 and `cookie` its SEG.ACK - 1. The MSS to use when the cookie is one
  // we made for this tuple and client ISN within the last kMaxAge + 1
  // periods; nullopt otherwise (the caller counts the drop and may answer
  // with a RST, RFC 9293 §3.10.7.1).
  std::optional<std::uint16_t> check(const FourTuple& t, std::uint32_t client_isn,
                                     std::uint32_t cookie, TimeNs now) const;

  // The table index `mss` rounds down to.
  static std::uint8_t mss_index(std::uint16_t mss);

  // `tsval` (our timestamp clock) with its low kTsOptionBits replaced by
  // `opts`, never above `tsval`.
  static std::uint32_t encode_options(std::uint32_t tsval, const CookieOptions& opts);
  // The options a TSecr produced by encode_options carries.
  static CookieOptions decode_options(std::uint32_t tsecr);

 private:
  std::uint32_t whitening(const FourTuple& t) const;
  std::uint32_t mac24(const FourTuple& t, std::uint32_t client_isn, std::uint64_t counter,
                      std::uint8_t mss_idx) const;

  Secret secret_;
};

}  // namespace ustack::tcp
