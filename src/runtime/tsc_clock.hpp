// Monotonic nanoseconds since start-up from the TSC: the runtime's only clock.
//
// Read once per poll-loop iteration. The conversion avoids a hardware divide
// (DPDK's reciprocal division) and overflow for any uptime: whole seconds and
// the remainder are scaled separately. Every lcore shares the start point, so
// a time taken on one lcore compares with one taken on another (invariant TSC).
#pragma once

#include <rte_cycles.h>
#include <rte_reciprocal.h>

#include <cstdint>

#include "core/time.hpp"

namespace ustack {

class TscClock {
 public:
  TscClock() = default;
  // Call after rte_eal_init (rte_get_tsc_hz needs EAL).
  void start() {
    hz_ = rte_get_tsc_hz();
    inv_hz_ = rte_reciprocal_value_u64(hz_);
    tsc0_ = rte_rdtsc();
  }

  TimeNs now() const { return to_ns(rte_rdtsc() - tsc0_); }

  TimeNs to_ns(std::uint64_t cycles) const {
    const std::uint64_t sec = rte_reciprocal_divide_u64(cycles, &inv_hz_);
    const std::uint64_t rem = cycles - sec * hz_;  // < hz_, so rem * 1e9 fits for hz < 18 GHz
    return sec * kNsPerSec + rte_reciprocal_divide_u64(rem * kNsPerSec, &inv_hz_);
  }

  std::uint64_t hz() const { return hz_; }

 private:
  std::uint64_t hz_ = 1;
  rte_reciprocal_u64 inv_hz_{};
  std::uint64_t tsc0_ = 0;
};

}  // namespace ustack
