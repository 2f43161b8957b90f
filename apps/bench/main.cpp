// ustack-bench: benchmarks that run ustack's case and the Linux kernel's
// equivalent in the same run and print both with their ratio.
//
//   ustack-bench l2l3 [--iterations N] [--kernel-iterations N] [--json FILE]
//   ustack-bench tcp  [--iterations N] [--kernel-iterations N] [--bulk-mib N]
//                     [--conns N] [--only LIST] [--json FILE]
//   ustack-bench tls  [--iterations N] [--json FILE]
//   ustack-bench udp  [--iterations N] [--kernel-iterations N] [--only LIST] [--json FILE]
//   ustack-bench mcast [--iterations N] [--kernel-iterations N] [--fanout LIST] [--json FILE]
//   ustack-bench shim [--iterations N] [--kernel-iterations N] [--json FILE]
//
// Later cases (quic) are added as subcommands with the same output shape.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

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
      "                         [--bulk-mib N] [--conns N] [--only LIST]   (tcp only)\n"
      "                         [--only LIST] (udp)  [--fanout LIST] (mcast)\n"
      "       (tls takes --iterations and --json only)\n"
      "cases:\n"
      "  l2l3   ICMP echo through two stacks on the in-memory pair (one core) vs the\n"
      "         kernel's ICMP echo over loopback: p50/p99/p99.9 round trip, packets per\n"
      "         second, ns per packet, heap allocations per packet\n"
      "         (defaults: --iterations 200000 --kernel-iterations 50000)\n"
      "  tcp    TCP through two stacks on the in-memory pair (one core) vs the kernel's\n"
      "         TCP over loopback (one thread): handshake and 64-byte round-trip\n"
      "         p50/p99/p99.9, bulk Gbit/s, connections per second, bytes per idle\n"
      "         connection, heap allocations per packet\n"
      "         (defaults: --iterations 20000 --kernel-iterations 10000 --bulk-mib 512\n"
      "          --conns 500; --only handshake,rr64,bulk,cps,memory runs a subset)\n"
      "  udp    UDP through two stacks on the in-memory pair (one core) vs the kernel's\n"
      "         UDP over loopback (one thread): one-way latency (send call to receive\n"
      "         callback) and 64-byte round trip p50/p99/p99.9, datagrams per second,\n"
      "         heap allocations per datagram\n"
      "         (defaults: --iterations 200000 --kernel-iterations 50000;\n"
      "          --only oneway,rr64,pps runs a subset)\n"
      "  mcast  multicast fan-out: one datagram to N sockets joined to a group on the\n"
      "         receiving stack vs the kernel's multicast over lo to N joined sockets:\n"
      "         latency until the last member has it, deliveries per second, heap\n"
      "         allocations per delivery\n"
      "         (defaults: --iterations 50000 --kernel-iterations 10000 --fanout 1,8,64;\n"
      "          at most 100 sockets per case)\n"
      "  tls    TLS 1.3 full and resumed handshakes, client and server in memory on one\n"
      "         core: ustack's engine vs OpenSSL's libssl through a BIO pair, handshakes\n"
      "         per second and p50/p99/p99.9 latency (default: --iterations 2000; no EAL)\n"

      "  shim   64-byte TCP round trip from a thread through the thread shim (busy poll and\n"
      "         epoll on the eventfd), and 64-byte UDP one-way latency through it in each\n"
      "         direction (thread to lcore, lcore to a busy-polling thread), each beside the\n"
      "         same on the lcore and through kernel sockets between two threads over\n"
      "         loopback; the thread crossing's cost in ns (needs two CPUs)\n"
      "         (defaults: --iterations 50000 --kernel-iterations 20000, per figure)\n");
}

double seconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::uint64_t parse_count(std::string_view flag, std::string_view v) {
  char* end = nullptr;
  const std::string s(v);
  const unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || n == 0 || n > 100'000'000ULL)
    usage_error("bad " + std::string(flag) + " '" + s + "': expected 1..100000000");
  return n;
}

// "a,b,c" -> {"a", "b", "c"}; "" and "a,,b" yield empty names, which callers reject.
std::vector<std::string_view> split(std::string_view list) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = list.find(',');
    out.push_back(list.substr(0, comma));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("missing CASE");
  const std::string_view which = argv[1];
  if (which == "--help" || which == "-h") {
    usage();
    return 0;
  }
  const bool tcp = which == "tcp", udp = which == "udp", mcast = which == "mcast", tls = which == "tls",
             shim = which == "shim";
  if (which != "l2l3" && !tcp && !udp && !mcast && !tls && !shim)
    usage_error("unknown case '" + std::string(which) + "'");
  Options opt;
  TcpOptions topt;
  UdpOptions uopt;
  TlsOptions lopt;
  ShimOptions sopt;
  if (mcast) {
    uopt.iterations = 50'000;
    uopt.kernel_iterations = 10'000;
  }
  std::string json;
  for (int i = 2; i < argc; ++i) {
    const std::string_view f = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error("missing value for " + std::string(f));
      return argv[++i];
    };
    if (f == "--iterations")
      opt.iterations = topt.iterations = uopt.iterations = lopt.iterations = sopt.iterations = parse_count(f, value());
    else if (!tls && f == "--kernel-iterations")
      opt.kernel_iterations = topt.kernel_iterations = uopt.kernel_iterations = sopt.kernel_iterations =
          parse_count(f, value());
    else if (f == "--json") json = value();
    else if (tcp && f == "--only") {
      topt.only = value();
      for (const auto name : split(topt.only))
        if (name != "handshake" && name != "rr64" && name != "bulk" && name != "cps" && name != "memory")
          usage_error("--only: unknown case '" + std::string(name) + "' (handshake, rr64, bulk, cps, memory)");
    } else if (udp && f == "--only") {
      uopt.only = value();
      for (const auto name : split(uopt.only))
        if (name != "oneway" && name != "rr64" && name != "pps")
          usage_error("--only: unknown case '" + std::string(name) + "' (oneway, rr64, pps)");
    } else if (mcast && f == "--fanout") {
      uopt.fanout.clear();
      for (const auto n : split(value())) {
        char* end = nullptr;
        const std::string v(n);
        const unsigned long k = std::strtoul(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || k == 0 || k > 100)
          usage_error("bad --fanout '" + v + "': expected socket counts 1..100, comma-separated");
        if (std::find(uopt.fanout.begin(), uopt.fanout.end(), k) != uopt.fanout.end())
          usage_error("--fanout: " + std::to_string(k) + " given twice");
        uopt.fanout.push_back(static_cast<std::uint32_t>(k));
      }
    } else if (tcp && f == "--bulk-mib") {
      topt.bulk_bytes = parse_count(f, value());
      if (topt.bulk_bytes > 16384) usage_error("--bulk-mib: at most 16384");
      topt.bulk_bytes <<= 20;
    }
    else if (tcp && f == "--conns") {
      topt.idle_conns = static_cast<std::uint32_t>(parse_count(f, value()));
      if (topt.idle_conns > 1000) usage_error("--conns: at most 1000 (the connection pool holds 1024)");
    } else usage_error("unknown argument '" + std::string(f) + "'");
  }

  double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  auto finish = [&](const std::vector<CaseResult>& cases) {
    const double wall = seconds(CLOCK_MONOTONIC) - wall0, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    print_table(cases);
    // Well below 100%: the cores were shared, and whole-run rates and tails
    // measured the scheduler as much as the stacks.
    std::printf("run: %.1f s wall, this process on a CPU %.0f%% of it\n", wall, wall > 0 ? 100.0 * cpu / wall : 0);
    if (!json.empty() && !write_json(json, std::string(which), cases)) {
      std::fprintf(stderr, "ustack-bench: cannot write %s\n", json.c_str());
      return 1;
    }
    return 0;
  };
  if (tls) return finish(bench_tls(lopt));  // pure libcrypto/libssl: no EAL, no mbufs

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
  wall0 = seconds(CLOCK_MONOTONIC);  // the run, not EAL start-up
  cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  const int rc = finish(tcp     ? bench_tcp(topt, pool)
                        : udp   ? bench_udp(uopt, pool)
                        : mcast ? bench_mcast(uopt, pool)
                        : shim  ? bench_shim(sopt, pool)
                                : bench_l2l3(opt, pool));
  rte_eal_cleanup();
  return rc;
}
