// ustack-replay: runs a capture through one stack instance and writes what
// the stack sends to another capture.
//
// The capture's timestamps are the clock: before each input packet the
// stack's timers are fired at their own deadlines, so the output (contents
// and timestamps) depends only on the input and the arguments. The same
// input always gives the same output bytes.
//
// --join GROUP:PORT[@SOURCE] joins a group (IGMPv3, through the stack's
// IgmpHost, at the first packet's time) on a UDP socket that counts what it
// receives (and feed gaps: services/feed.hpp); --join-dump FILE writes every
// datagram the joined sockets receive, in delivery order, as records of
// group (4 bytes), port (2), payload length (2) and the payload.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/fault.hpp"
#include "drivers/pcap_replay.hpp"
#include "services/feed.hpp"
#include "src/runtime/engine.hpp"
#include "udp/udp_layer.hpp"

using namespace ustack;

namespace {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "ustack-replay: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

void print_usage() {
  std::printf(
      "usage: ustack-replay --in IN.pcap --out OUT.pcap --ip A.B.C.D/N [--mac MAC] [--gw A.B.C.D]\n"
      "                     [--vlan VID] [--drain SECONDS] [--no-announce]\n"
      "                     [--drop P] [--duplicate P] [--corrupt P] [--seed N]\n"
      "                     [--join GROUP:PORT[@SOURCE]]... [--join-dump FILE]\n"
      "  Replays IN through one ustack instance with the capture's timestamps as the clock\n"
      "  and writes everything the stack sends to OUT. --drain keeps the clock running past\n"
      "  the last input packet so timers (ARP retries) still fire. --drop/--duplicate/\n"
      "  --corrupt inject seeded faults (probability 0..1) on the input. --join joins a\n"
      "  multicast group on a UDP socket (any source, or only SOURCE) and counts its datagrams\n"
      "  and feed gaps; --join-dump writes them (group, port, length, payload per record).\n"
      "  Prints a summary.\n");
}

struct JoinSpec {
  Ipv4Addr group;
  std::uint16_t port = 0;
  std::optional<Ipv4Addr> source;
};

// One --join: its socket, counters, and the dump file shared by all joins.
struct Joiner {
  JoinSpec spec;
  UdpSocket* sock = nullptr;
  std::FILE* dump = nullptr;
  std::uint64_t datagrams = 0, bytes = 0, not_feed = 0;
  services::FeedTracker feed;

  static void on_readable(UdpSocket& s, TimeNs, void* ctx) {
    auto& j = *static_cast<Joiner*>(ctx);
    while (auto d = s.recv()) {
      const Bytes p = d->pkt.data();
      ++j.datagrams;
      j.bytes += p.size();
      if (const auto h = services::FeedHeader::parse(p)) j.feed.on_seq(h->seq);
      else ++j.not_feed;
      if (j.dump) {
        std::uint8_t hdr[8];
        store_be32(MutBytes{hdr}, 0, j.spec.group.v);
        store_be16(MutBytes{hdr}, 4, j.spec.port);
        store_be16(MutBytes{hdr}, 6, static_cast<std::uint16_t>(p.size()));
        std::fwrite(hdr, 1, sizeof hdr, j.dump);
        std::fwrite(p.data(), 1, p.size(), j.dump);
      }
    }
  }
};

struct Args {
  std::string in, out;
  StackConfig cfg;
  TimeNs drain_ns = 0;
  bool announce = true;
  FaultConfig faults;
  std::uint64_t seed = 1;
  std::vector<JoinSpec> joins;
  std::string join_dump;
  bool any_fault() const { return faults.drop > 0 || faults.duplicate > 0 || faults.corrupt > 0; }
};

double parse_probability(std::string_view flag, std::string_view v) {
  char* end = nullptr;
  const std::string s(v);
  const double p = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(p >= 0.0 && p <= 1.0))
    usage_error("bad " + std::string(flag) + " '" + s + "': expected a probability 0..1");
  return p;
}

Args parse_args(int argc, char** argv) {
  Args a;
  a.cfg.mac = MacAddr{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
  bool have_ip = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error("missing value for " + std::string(flag));
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      print_usage();
      std::exit(0);
    } else if (flag == "--in") {
      a.in = value();
    } else if (flag == "--out") {
      a.out = value();
    } else if (flag == "--ip") {
      const auto v = value();
      auto c = Ipv4Cidr::parse(v);
      if (!c) usage_error("bad --ip '" + std::string(v) + "': expected A.B.C.D/N");
      a.cfg.ip = *c;
      have_ip = true;
    } else if (flag == "--mac") {
      const auto v = value();
      auto m = MacAddr::parse(v);
      if (!m || m->is_multicast() || m->is_zero()) usage_error("bad --mac '" + std::string(v) + "': expected a unicast aa:bb:cc:dd:ee:ff");
      a.cfg.mac = *m;
    } else if (flag == "--gw") {
      const auto v = value();
      auto g = Ipv4Addr::parse(v);
      if (!g) usage_error("bad --gw '" + std::string(v) + "': expected A.B.C.D");
      a.cfg.gateway = *g;
    } else if (flag == "--vlan") {
      const auto v = value();
      char* end = nullptr;
      const long vid = std::strtol(std::string(v).c_str(), &end, 10);
      if (v.empty() || *end != '\0' || vid < 1 || vid > 4094) usage_error("bad --vlan '" + std::string(v) + "': expected 1..4094");
      a.cfg.vlan = static_cast<std::uint16_t>(vid);
    } else if (flag == "--drain") {
      const auto v = value();
      char* end = nullptr;
      const double s = std::strtod(std::string(v).c_str(), &end);
      if (v.empty() || *end != '\0' || !(s >= 0) || s > 86400) usage_error("bad --drain '" + std::string(v) + "': expected seconds");
      a.drain_ns = static_cast<TimeNs>(s * 1e9);
    } else if (flag == "--drop") {
      a.faults.drop = parse_probability(flag, value());
    } else if (flag == "--duplicate") {
      a.faults.duplicate = parse_probability(flag, value());
    } else if (flag == "--corrupt") {
      a.faults.corrupt = parse_probability(flag, value());
    } else if (flag == "--seed") {
      const std::string v(value());
      char* end = nullptr;
      a.seed = std::strtoull(v.c_str(), &end, 0);
      if (v.empty() || *end != '\0') usage_error("bad --seed '" + v + "': expected an integer");
    } else if (flag == "--join") {
      const std::string v(value());
      const std::string_view sv(v);
      const auto colon = sv.find(':'), at = sv.find('@');
      JoinSpec j;
      const auto g = Ipv4Addr::parse(sv.substr(0, colon));
      char* end = nullptr;
      const std::string port = colon == std::string_view::npos ? "" : std::string(sv.substr(colon + 1, at - colon - 1));
      const long p = std::strtol(port.c_str(), &end, 10);
      if (!g || !g->is_multicast() || port.empty() || *end != '\0' || p < 1 || p > 65535)
        usage_error("bad --join '" + v + "': expected GROUP:PORT[@SOURCE] with a multicast GROUP");
      j.group = *g;
      j.port = static_cast<std::uint16_t>(p);
      if (at != std::string_view::npos) {
        const auto src = Ipv4Addr::parse(sv.substr(at + 1));
        if (!src || src->is_multicast() || src->is_unspecified())
          usage_error("bad --join '" + v + "': SOURCE must be a unicast address");
        j.source = *src;
      }
      a.joins.push_back(j);
    } else if (flag == "--join-dump") {
      a.join_dump = value();
    } else if (flag == "--no-announce") {
      a.announce = false;
    } else {
      usage_error("unknown argument '" + std::string(flag) + "'");
    }
  }
  if (a.in.empty()) usage_error("--in is required");
  if (a.out.empty()) usage_error("--out is required");
  if (!have_ip) usage_error("--ip is required");
  if (a.cfg.gateway && !a.cfg.ip.contains(*a.cfg.gateway))
    usage_error("--gw " + a.cfg.gateway->to_string() + " is not inside " + a.cfg.ip.to_string());
  if (!a.join_dump.empty() && a.joins.empty()) usage_error("--join-dump needs a --join");
  a.cfg.gratuitous_arp_on_start = a.announce;
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);

  // A replay needs mempools, not devices: a small EAL with no hugepages, no
  // PCI bus scan, no shared files, no telemetry socket.
  char prog[] = "ustack-replay";
  char a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "128", a5[] = "--no-shconf",
       a6[] = "--no-telemetry", a7[] = "-l", a8[] = "0", a9[] = "--log-level=*:error";
  char* eal_argv[] = {prog, a1, a2, a3, a4, a5, a6, a7, a8, a9, nullptr};
  if (rte_eal_init(9, eal_argv) < 0) {
    std::fprintf(stderr, "ustack-replay: EAL init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("replay", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!pool) {
    std::fprintf(stderr, "ustack-replay: mempool: %s\n", rte_strerror(rte_errno));
    return 1;
  }

  DeviceCaps caps;
  caps.mac = args.cfg.mac;
  std::string err;
  auto replay = PcapReplay::open(args.in, args.out, pool, caps, err);
  if (!replay) {
    std::fprintf(stderr, "ustack-replay: %s\n", err.c_str());
    return 1;
  }

  int rc = 0;
  {
    TimeNs now = replay->next_rx_time().value_or(0);
    std::optional<FaultInjector> faults;
    if (args.any_fault()) faults.emplace(*replay, args.seed, args.faults, FaultConfig{});
    Device& dev = faults ? static_cast<Device&>(*faults) : *replay;
    Engine engine(dev, args.cfg, pool, now);
    // UDP with IGMP: joined groups pass the stack's filter, everything else
    // multicast is dropped as not joined.
    std::FILE* dump = nullptr;
    if (!args.join_dump.empty()) {
      dump = std::fopen(args.join_dump.c_str(), "wb");
      if (!dump) {
        std::fprintf(stderr, "ustack-replay: --join-dump %s: %s\n", args.join_dump.c_str(), std::strerror(errno));
        return 1;
      }
    }
    std::vector<Joiner> joiners(args.joins.size());
    if (!args.joins.empty()) {
      const IgmpConfig icfg;
      UdpConfig ucfg;
      ucfg.max_sockets = static_cast<std::uint16_t>(args.joins.size() + 1);
      UdpLayer& udp = engine.enable_udp(ucfg, &icfg);
      for (std::size_t i = 0; i < args.joins.size(); ++i) {
        Joiner& j = joiners[i];
        j.spec = args.joins[i];
        j.dump = dump;
        j.sock = udp.open();
        UdpStatus st = j.sock ? UdpStatus::ok : UdpStatus::closed;
        if (st == UdpStatus::ok) {
          j.sock->set_reuse(true);
          st = j.sock->bind(Ipv4Addr{}, j.spec.port);
        }
        if (st == UdpStatus::ok) {
          if (j.spec.source) {
            const Ipv4Addr src[] = {*j.spec.source};
            st = j.sock->set_source_filter(j.spec.group, FilterMode::include, src, now);
          } else {
            st = j.sock->join(j.spec.group, now);
          }
        }
        if (st != UdpStatus::ok) {
          std::fprintf(stderr, "ustack-replay: --join %s:%u: %s\n", j.spec.group.to_string().c_str(), j.spec.port,
                       to_string(st));
          return 1;
        }
        j.sock->on_readable(&Joiner::on_readable, &j);
      }
    }
    engine.start(now);
    // Fire timers at their own deadlines up to `until`, then run at `until`.
    auto run_until = [&](TimeNs until) {
      for (TimeNs d = engine.stack().next_deadline(); d <= until; d = engine.stack().next_deadline()) {
        now = std::max(now, d);
        engine.run_once(now);
      }
      now = std::max(now, until);
      engine.run_once(now);
    };
    // The faults offered here (drop, duplicate, corrupt) have no delay, so the
    // injector hands every surviving packet up in the same burst: the input's
    // timestamps stay the only clock.
    while (auto t = replay->next_rx_time()) run_until(*t);
    if (args.drain_ns) run_until(now + args.drain_ns);
    engine.flush(now);

    const auto& rc_ = replay->counters();
    const auto& sc = engine.stack().counters();
    std::printf("packets in: %llu (%llu bytes)\npackets out: %llu (%llu bytes)\n",
                static_cast<unsigned long long>(rc_.rx_packets), static_cast<unsigned long long>(rc_.rx_bytes),
                static_cast<unsigned long long>(rc_.tx_packets), static_cast<unsigned long long>(rc_.tx_bytes));
    if (rc_.rx_drop_oversize || rc_.rx_drop_nombuf || rc_.rx_drop_truncated_capture)
      std::printf("replay drops: oversize %llu, no mbuf %llu, truncated capture %llu\n",
                  static_cast<unsigned long long>(rc_.rx_drop_oversize),
                  static_cast<unsigned long long>(rc_.rx_drop_nombuf),
                  static_cast<unsigned long long>(rc_.rx_drop_truncated_capture));
    std::printf("drops by reason:\n");
    bool any = false;
    for (std::size_t i = 0; i < kStackCounterCount; ++i) {
      if (kStackCounterNames[i].find("drop") == std::string_view::npos &&
          kStackCounterNames[i] != "arp_resolve_failed" && kStackCounterNames[i] != "icmp_error_rate_limited")
        continue;
      if (const auto v = sc.get(i)) {
        std::printf("  %-32s %llu\n", std::string(kStackCounterNames[i]).c_str(), static_cast<unsigned long long>(v));
        any = true;
      }
    }
    if (!any) std::printf("  (none)\n");
    for (const Joiner& j : joiners)
      std::printf("join %s:%u%s: datagrams %llu bytes %llu feed %llu missing %llu late %llu not_feed %llu\n",
                  j.spec.group.to_string().c_str(), j.spec.port,
                  j.spec.source ? ("@" + j.spec.source->to_string()).c_str() : "",
                  static_cast<unsigned long long>(j.datagrams), static_cast<unsigned long long>(j.bytes),
                  static_cast<unsigned long long>(j.feed.feed()), static_cast<unsigned long long>(j.feed.missing()),
                  static_cast<unsigned long long>(j.feed.late()), static_cast<unsigned long long>(j.not_feed));
    if (dump && std::fclose(dump) != 0) {
      std::fprintf(stderr, "ustack-replay: --join-dump %s: %s\n", args.join_dump.c_str(), std::strerror(errno));
      rc = 1;
    }
    if (faults) {
      const auto& f = faults->rx_counters();
      std::printf("faults injected: dropped %llu, duplicated %llu, corrupted %llu, passed %llu\n",
                  static_cast<unsigned long long>(f.dropped), static_cast<unsigned long long>(f.duplicated),
                  static_cast<unsigned long long>(f.corrupted), static_cast<unsigned long long>(f.passed));
    }
  }
  replay.reset();
  rte_eal_cleanup();
  return rc;
}
