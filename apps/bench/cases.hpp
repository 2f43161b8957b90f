#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <vector>

#include "apps/bench/report.hpp"

namespace ustack::bench {

struct Options {
  std::uint64_t iterations = 200'000;       // ustack operations per case
  std::uint64_t kernel_iterations = 50'000;  // kernel operations per case (slower: syscalls)
};

// ICMP echo through the in-memory pair vs the kernel over loopback.
std::vector<CaseResult> bench_l2l3(const Options& opt, rte_mempool* pool);

}  // namespace ustack::bench
