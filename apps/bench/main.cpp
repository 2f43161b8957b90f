// ustack-bench: benchmarks that run ustack's case and the Linux kernel's
// equivalent in the same run and print both with their ratio.
//
//   ustack-bench l2l3 [--iterations N] [--kernel-iterations N] [--json FILE]
//
// Later cases (udp, mcast, tcp, shim, quic) are added as subcommands with the
// same output shape.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "apps/bench/cases.hpp"

using namespace ustack::bench;

namespace {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "ustack-bench: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

void usage() {
  std::printf(
      "usage: ustack-bench CASE [--iterations N] [--kernel-iterations N] [--json FILE]\n"
      "cases:\n"
      "  l2l3   ICMP echo through two stacks on the in-memory pair (one core) vs the\n"
      "         kernel's ICMP echo over loopback: p50/p99/p99.9 round trip, packets per\n"
      "         second, ns per packet, heap allocations per packet\n");
}

std::uint64_t parse_count(std::string_view flag, std::string_view v) {
  char* end = nullptr;
  const std::string s(v);
  const unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || n == 0 || n > 100'000'000ULL)
    usage_error("bad " + std::string(flag) + " '" + s + "': expected 1..100000000");
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("missing CASE");
  const std::string_view which = argv[1];
  if (which == "--help" || which == "-h") {
    usage();
    return 0;
  }
  if (which != "l2l3") usage_error("unknown case '" + std::string(which) + "'");
  Options opt;
  std::string json;
  for (int i = 2; i < argc; ++i) {
    const std::string_view f = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error("missing value for " + std::string(f));
      return argv[++i];
    };
    if (f == "--iterations") opt.iterations = parse_count(f, value());
    else if (f == "--kernel-iterations") opt.kernel_iterations = parse_count(f, value());
    else if (f == "--json") json = value();
    else usage_error("unknown argument '" + std::string(f) + "'");
  }

  char prog[] = "ustack-bench";
  char a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "256", a5[] = "--no-shconf",
       a6[] = "--no-telemetry", a7[] = "-l", a8[] = "0", a9[] = "--log-level=*:error";
  char* eal_argv[] = {prog, a1, a2, a3, a4, a5, a6, a7, a8, a9, nullptr};
  if (rte_eal_init(9, eal_argv) < 0) {
    std::fprintf(stderr, "ustack-bench: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("bench", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!pool) {
    std::fprintf(stderr, "ustack-bench: mempool: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  const auto cases = bench_l2l3(opt, pool);
  print_table(cases);
  int rc = 0;
  if (!json.empty() && !write_json(json, std::string(which), cases)) {
    std::fprintf(stderr, "ustack-bench: cannot write %s\n", json.c_str());
    rc = 1;
  }
  rte_eal_cleanup();
  return rc;
}
