#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apps/bench/report.hpp"

namespace ustack::bench {

// Whether case `name` runs: `only` is an --only list (comma-separated
// names), empty for every case.
inline bool want(std::string_view only, std::string_view name) {
  if (only.empty()) return true;
  while (!only.empty()) {
    const auto comma = only.find(',');
    if (only.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    only.remove_prefix(comma + 1);
  }
  return false;
}

struct Options {
  std::uint64_t iterations = 200'000;       // ustack operations per case
  std::uint64_t kernel_iterations = 50'000;  // kernel operations per case (slower: syscalls)
};

// ICMP echo through the in-memory pair vs the kernel over loopback.
std::vector<CaseResult> bench_l2l3(const Options& opt, rte_mempool* pool);

struct TcpOptions {
  std::uint64_t iterations = 20'000;         // handshakes, round trips, connection cycles (ustack)
  std::uint64_t kernel_iterations = 10'000;  // the same for the kernel
  std::uint64_t bulk_bytes = 512ull << 20;   // bulk transfer size, both stacks
  std::uint32_t idle_conns = 500;            // connections held open for the memory figure
  std::string only;                          // comma-separated subset: handshake,rr64,bulk,cps,memory
};

// TCP on two stacks over the in-memory pair vs the kernel's TCP over loopback:
// handshake, 64-byte round trip, bulk, connections per second, memory per
// idle connection, allocations per packet.
std::vector<CaseResult> bench_tcp(const TcpOptions& opt, rte_mempool* pool);

struct TlsOptions {
  std::uint64_t iterations = 2'000;  // handshakes per case, for each implementation
};

// TLS 1.3 handshakes (full and resumed) through ustack's engine vs OpenSSL's
// libssl, both in memory on one thread: handshakes per second and latency.
std::vector<CaseResult> bench_tls(const TlsOptions& opt);

struct UdpOptions {
  std::uint64_t iterations = 200'000;       // ustack datagrams (udp) or datagrams per fan-out (mcast)
  std::uint64_t kernel_iterations = 50'000;  // the same for the kernel
  std::string only;                          // udp: comma-separated subset of oneway,rr64,pps
  std::vector<std::uint32_t> fanout{1, 8, 64};  // mcast: receiving sockets per case
};

// UDP on two stacks over the in-memory pair vs the kernel's UDP over
// loopback: one-way latency, 64-byte round trip, datagrams per second,
// allocations per datagram.
std::vector<CaseResult> bench_udp(const UdpOptions& opt, rte_mempool* pool);
// Multicast fan-out to N joined sockets on the receiving stack vs the
// kernel's multicast over lo to N joined sockets.
std::vector<CaseResult> bench_mcast(const UdpOptions& opt, rte_mempool* pool);
struct ShimOptions {
  std::uint64_t iterations = 50'000;         // round trips per ustack figure
  std::uint64_t kernel_iterations = 20'000;  // round trips per kernel figure
};

// A 64-byte TCP round trip from a thread through the shim (busy poll and
// epoll), on the lcore, and through kernel sockets between two threads;
// the thread crossing's cost in ns (apps/bench/shim.cpp).
std::vector<CaseResult> bench_shim(const ShimOptions& opt, rte_mempool* pool);
// Its UDP half (apps/bench/shim_udp.cpp), which bench_shim appends: a
// 64-byte datagram one way from a thread through the shim to the lcore and
// back the other way, on the lcore, and between two threads through kernel
// sockets; the crossing's cost per direction. `lcore_cpu`: the CPU the
// bench's lcore thread polls on (the application thread gets the others).
std::vector<CaseResult> bench_shim_udp(const ShimOptions& opt, rte_mempool* pool, unsigned lcore_cpu);

}  // namespace ustack::bench
