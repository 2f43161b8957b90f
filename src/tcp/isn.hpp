// Initial sequence numbers (RFC 6528) and the keyed hash TCP uses for them.
//
// Read: RFC 6528 §3 (ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey)); RFC 9293 §3.4.1; Aumasson and Bernstein, "SipHash: a fast
// short-input PRF" (2012), §2 for the algorithm used as F here.
//
// SipHash is in core/siphash.hpp (why it is not EVP_MAC is explained there);
// libcrypto stays the source of the secret (RAND_bytes).
//
// One secret per use: the stack draws independent secrets for the ISN
// generator, the SYN cookies and each flow table, so a value one of them
// exposes (an ISN is sent in clear) says nothing about the others.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "core/siphash.hpp"
#include "core/time.hpp"
#include "tcp/tuple.hpp"

namespace ustack::tcp {

// A 128-bit SipHash key: 16 secret bytes, chosen once per start.
using Secret = SipKey;

// 16 bytes from libcrypto's CSPRNG (RAND_bytes); nullopt when it is not
// seeded. Production only: tests and pcap replay pass a fixed Secret so runs
// repeat exactly.
std::optional<Secret> random_secret();

// The keyed hash itself lives in core/siphash.hpp; these names keep TCP's
// call sites short.
using ustack::siphash;
using ustack::siphash13;
using ustack::siphash24;

// RFC 6528 ISNs: M + F(4-tuple, secret), where M ticks every 4 µs of `now`
// (so it wraps every ~4.77 hours, as RFC 9293's clock does) and F is the low
// 32 bits of SipHash-2-4 over the canonical tuple bytes. For one tuple,
// successive ISNs advance with time, so a new incarnation starts above the
// old one's sequence space (RFC 6528 §3, what TIME_WAIT reuse relies on);
// across tuples they are unpredictable without the secret.
class IsnGenerator {
 public:
  static constexpr TimeNs kTickNs = 4 * kNsPerUs;

  explicit IsnGenerator(const Secret& secret) : secret_(secret) {}

  std::uint32_t next(const FourTuple& t, TimeNs now) const {
    const auto bytes = tuple_bytes(t);
    const auto f = static_cast<std::uint32_t>(siphash24(secret_, bytes));
    return static_cast<std::uint32_t>(now / kTickNs) + f;
  }

 private:
  Secret secret_;
};

}  // namespace ustack::tcp
