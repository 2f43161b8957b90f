// The process-wide side of the thread shim: every lcore's ShimLcore, and
// which channel numbers application threads have claimed. A thread that
// attaches claims the same channel number on every lcore.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "shim/lcore.hpp"

namespace ustack::shim {

class Hub {
 public:
  // `polling_cpus`: the CPUs the lcores poll on (dedicated-core mode); a
  // thread allowed to run on one of them is refused at attach, because it
  // would take the CPU from a loop that never yields.
  explicit Hub(std::vector<ShimLcore*> lcores, std::vector<int> polling_cpus = {});

  std::uint32_t lcore_count() const { return static_cast<std::uint32_t>(lcores_.size()); }
  ShimLcore& lcore(std::uint32_t i) { return *lcores_[i]; }
  std::uint32_t channels() const { return channels_; }

  // Claims a channel number; -1 and `err` when none is free or the calling
  // thread may run on a polling CPU.
  int claim(std::string& err);

 private:
  std::vector<ShimLcore*> lcores_;
  std::vector<int> polling_cpus_;
  std::uint32_t channels_ = 0;
  std::unique_ptr<std::atomic<bool>[]> claimed_;
};

}  // namespace ustack::shim
