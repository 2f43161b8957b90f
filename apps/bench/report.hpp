// Benchmark figures and their output: a table for people, JSON for tools.
//
// Every case reports ustack's figures and, where one exists, the Linux
// kernel's equivalent measured in the same run, with the ratio. Keys carry
// their unit (p99_ns, pps, allocs_per_pkt).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ustack::bench {

struct Figures {
  std::uint64_t samples = 0;
  double p50_ns = 0, p99_ns = 0, p999_ns = 0, mean_ns = 0;
  double pps = 0;           // packets per second through the stack(s)
  double ns_per_pkt = 0;    // wall time per packet
  double allocs_per_pkt = 0;
};

struct CaseResult {
  std::string name;
  std::string what;
  Figures ustack;
  std::optional<Figures> kernel;
  std::string kernel_note;  // why the kernel figure is missing, if it is
};

// Fills the latency fields from per-operation samples (sorted in place).
void fill_latency(Figures& f, std::vector<std::uint64_t>& samples_ns);

void print_table(const std::vector<CaseResult>& cases);
bool write_json(const std::string& path, const std::string& bench, const std::vector<CaseResult>& cases);

}  // namespace ustack::bench
