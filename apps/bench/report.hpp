// Benchmark figures and their output: a table for people, JSON for tools.
//
// Every case reports ustack's figures and, where one exists, the Linux
// kernel's equivalent measured in the same run, with the ratio. Keys carry
// their unit (p99_ns, pps, allocs_per_pkt, gbps, bytes_per_conn).
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
  double gbps = 0;          // payload bits delivered per second / 1e9
  double ops_per_sec = 0;   // operations (round trips, connections) per second
  double bytes_per_conn = 0;
  // Whole-phase wall-clock rates, where the figures above come from the
  // undisturbed operations only (see apps/bench/tcp.cpp); 0 when the same.
  double pps_wall = 0, gbps_wall = 0, ops_per_sec_wall = 0;
};

// Which figures a case has; the table prints only those, the JSON all.
namespace show {
constexpr unsigned kLatency = 1u << 0;
constexpr unsigned kPps = 1u << 1;
constexpr unsigned kAllocs = 1u << 2;
constexpr unsigned kGbps = 1u << 3;
constexpr unsigned kOps = 1u << 4;
constexpr unsigned kBytesPerConn = 1u << 5;
constexpr unsigned kDefault = kLatency | kPps | kAllocs;
}  // namespace show

struct CaseResult {
  std::string name;
  std::string what;
  Figures ustack;
  std::optional<Figures> kernel;  // the baseline measured beside ustack (JSON key "kernel")
  std::string baseline = "kernel";  // what that baseline is: "kernel", or "openssl" for tls
  std::string kernel_note;  // why the kernel figure is missing, if it is
  unsigned shown = show::kDefault;
  std::string ops_unit = "op/s";  // label of ops_per_sec in the table
  std::string note;  // how the figure was measured, printed under it
  std::string goal;  // a target and whether this run met it (printed, never asserted)
};

// printf of one number, for notes and goals ("p99 %.2f us"); up to 511 characters.
std::string fmt(const char* f, double v);

// Fills the latency fields from per-operation samples (sorted in place).
void fill_latency(Figures& f, std::vector<std::uint64_t>& samples_ns);

// The case that sums the heap allocations of every measured ustack phase over
// `count` units (packets, datagrams, ...); its goal is 0. The kernel's are not
// comparable, so it has no kernel figure.
CaseResult allocs_case(std::string name, std::string what, std::uint64_t allocs, std::uint64_t count,
                       const std::string& unit);

void print_table(const std::vector<CaseResult>& cases);
bool write_json(const std::string& path, const std::string& bench, const std::vector<CaseResult>& cases);

}  // namespace ustack::bench
