// The benches' clock: the TSC, as the runtime's loop reads it. `now()` is the
// stacks' time (ns since the clock was made); `ns()` turns a measured span of
// cycles into nanoseconds.
#pragma once

#include <rte_cycles.h>

#include <cstdint>

#include "core/time.hpp"

namespace ustack::bench {

struct Clock {
  double ns_per_cycle = 1e9 / static_cast<double>(rte_get_tsc_hz());
  std::uint64_t t0 = rte_rdtsc();
  TimeNs now() const { return static_cast<TimeNs>(static_cast<double>(rte_rdtsc() - t0) * ns_per_cycle); }
  double ns(std::uint64_t cycles) const { return static_cast<double>(cycles) * ns_per_cycle; }
};

}  // namespace ustack::bench
