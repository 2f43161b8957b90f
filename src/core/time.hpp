// Time in ustack is a parameter, never a clock read.
//
// The runtime reads the TSC once per poll-loop iteration and converts it to
// monotonic nanoseconds; a pcap replay uses the capture's timestamps; a
// simulation uses a virtual clock. Protocol code only ever sees TimeNs.
#pragma once

#include <cstdint>

namespace ustack {

using TimeNs = std::uint64_t;

inline constexpr TimeNs kNsPerUs = 1'000;
inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;
inline constexpr TimeNs kNever = ~TimeNs{0};

}  // namespace ustack
