#include "runtime/options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "services/feed.hpp"

namespace ustack {
namespace {

// Flags taking a value, and flags without one.
constexpr std::string_view kValueFlags[] = {
    "--ip", "--gw", "--mac", "--vlan", "--port", "--pcap-out", "--stats-interval", "--stats-json",
    "--ping", "--duration", "--mtu", "--rx-desc", "--tx-desc",
    "--tcp-max-conns", "--tcp-sndbuf", "--tcp-rcvbuf", "--tcp-cc", "--tcp-min-rto-ms",
    "--tcp-echo", "--tcp-discard", "--tcp-source", "--tcp-get", "--tcp-get-timeout",
    "--fault-drop", "--fault-duplicate", "--fault-reorder", "--fault-corrupt", "--fault-seed",
    "--udp-echo", "--join", "--mcast-send", "--rate", "--size", "--mcast-ttl",
    "--app-cpus", "--shim-threads",
};
constexpr std::string_view kBoolFlags[] = {"--promisc", "--tcp-no-sack", "--tcp-no-timestamps", "--tcp-nagle",
                                           "--mcast-loop", "--help", "-h"};

// Limits of the TCP options. Buffers: at least a few segments, at most what
// the per-connection rings are sized for without wasting memory; the product
// with the connection count bounds the rings allocated at start-up.
constexpr std::uint32_t kMaxTcpConns = 65536;
constexpr std::uint64_t kMinTcpBuf = 4096;
constexpr std::uint64_t kMaxTcpBuf = 64ull << 20;
constexpr std::uint64_t kMaxTcpBufferBudget = 16ull << 30;  // max-conns x (sndbuf + rcvbuf), per lcore
constexpr std::size_t kMaxTcpServices = 16;                 // TcpConfig::max_listeners
constexpr std::size_t kMaxTcpGets = 8;
constexpr int kMaxCpu = 1023;        // CPU_SETSIZE - 1
constexpr std::uint32_t kMaxShimThreads = 64;


template <typename T>
bool parse_uint(std::string_view s, T& out, std::uint64_t max) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

// A byte count: digits with an optional binary suffix K, M or G (KiB, MiB, GiB).
bool parse_bytes(std::string_view s, std::uint64_t& out, std::uint64_t max) {
  std::uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'K': case 'k': mult = 1ull << 10; break;
      case 'M': case 'm': mult = 1ull << 20; break;
      case 'G': case 'g': mult = 1ull << 30; break;
      default: break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  std::uint64_t v = 0;
  if (!parse_uint(s, v, max / mult)) return false;
  out = v * mult;
  return true;
}

bool parse_probability(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 || v > 1) return false;
  out = v;
  return true;
}

// A CPU list as taskset and EAL's -l write it: "0-2,5". Sorted, no duplicates.
bool parse_cpu_list(std::string_view s, std::vector<int>& out) {
  out.clear();
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    const auto dash = item.find('-');
    int lo = 0, hi = 0;
    if (!parse_uint(item.substr(0, dash), lo, kMaxCpu)) return false;
    hi = lo;
    if (dash != std::string_view::npos && !parse_uint(item.substr(dash + 1), hi, kMaxCpu)) return false;
    if (hi < lo) return false;
    for (int c = lo; c <= hi; ++c) out.push_back(c);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
    if (s.empty()) return false;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return !out.empty();
}

bool parse_seconds(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 || v > 1e7) return false;
  out = v;
  return true;
}

constexpr std::size_t kMaxUdpEcho = 8;
constexpr std::size_t kMaxJoins = 32;  // well inside IgmpConfig's groups and memberships
constexpr std::uint32_t kMaxRate = 10'000'000;
constexpr std::uint16_t kMaxMcastSize = 9000 - 28;  // the largest MTU less IPv4 and UDP headers

// A group to join or send to: multicast, outside 224.0.0.0/24 (the local
// network control block: never reported by IGMP, RFC 3376 §5).
bool usable_group(Ipv4Addr a) { return a.is_multicast() && (a.v >> 8) != 0xe00000; }

// GROUP:PORT
bool parse_group_port(std::string_view v, Ipv4Addr& group, std::uint16_t& port) {
  const auto colon = v.find(':');
  if (colon == std::string_view::npos) return false;
  const auto g = Ipv4Addr::parse(v.substr(0, colon));
  if (!g || !usable_group(*g)) return false;
  if (!parse_uint(v.substr(colon + 1), port, 65535) || port == 0) return false;
  group = *g;
  return true;
}

}  // namespace

SplitArgv split_argv(int argc, const char* const* argv) {
  SplitArgv r;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i] ? argv[i] : "";
    if (i > 0 && !r.has_separator && a == "--") {
      r.has_separator = true;
      continue;
    }
    (r.has_separator ? r.app : r.eal).push_back(a);
  }
  return r;
}

bool is_app_flag(const std::string& arg) {
  const std::string_view name = std::string_view(arg).substr(0, arg.find('='));
  for (auto f : kValueFlags)
    if (name == f) return true;
  for (auto f : kBoolFlags)
    if (name == f && f != "-h") return true;
  return false;
}

std::optional<AppOptions> parse_app_options(const std::vector<std::string>& args, std::string& err) {
  AppOptions o;
  bool have_ip = false;
  // Publisher settings, applied to --mcast-send once everything is read.
  std::optional<std::uint32_t> rate;
  std::optional<std::uint16_t> size;
  std::optional<std::uint8_t> mcast_ttl;
  bool mcast_loop = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    bool takes_value = false;
    bool known = false;
    for (auto f : kValueFlags)
      if (flag == f) known = takes_value = true;
    for (auto f : kBoolFlags)
      if (flag == f) known = true;
    if (!known) {
      err = "unknown option '" + args[i] + "' (see --help)";
      return std::nullopt;
    }
    if (!takes_value) {
      if (value) {
        err = flag + " takes no value";
        return std::nullopt;
      }
      if (flag == "--help" || flag == "-h") {
        o.help = true;
        return o;
      }
      if (flag == "--promisc") o.promiscuous = true;
      if (flag == "--tcp-no-sack") o.tcp.sack = false;
      if (flag == "--tcp-no-timestamps") o.tcp.timestamps = false;
      if (flag == "--tcp-nagle") o.tcp.nagle = true;
      if (flag == "--mcast-loop") mcast_loop = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        err = flag + " needs a value";
        return std::nullopt;
      }
      value = args[++i];
    }
    const std::string& v = *value;
    auto bad = [&](const char* want) {
      err = flag + ": bad value '" + v + "' (want " + want + ")";
      return std::nullopt;
    };
    if (flag == "--ip") {
      auto c = Ipv4Cidr::parse(v);
      if (!c || c->prefix_len == 0 || c->addr.is_unspecified() || c->addr.is_multicast() ||
          c->addr.is_limited_broadcast() || c->addr.is_loopback())
        return bad("a unicast address with prefix length, A.B.C.D/N");
      // In a /31 or /32 every address is a host (RFC 3021); otherwise the
      // network and broadcast addresses are not.
      if (c->prefix_len < 31 && (c->addr == c->network() || c->addr == c->broadcast()))
        return bad("a host address, not the subnet's network or broadcast address");
      o.ip = *c;
      have_ip = true;
    } else if (flag == "--gw") {
      auto a = Ipv4Addr::parse(v);
      if (!a || a->is_unspecified() || a->is_multicast() || a->is_limited_broadcast()) return bad("A.B.C.D");
      o.gateway = *a;
    } else if (flag == "--mac") {
      auto m = MacAddr::parse(v);
      if (!m || m->is_multicast() || m->is_zero()) return bad("a unicast MAC, aa:bb:cc:dd:ee:ff");
      o.mac = *m;
    } else if (flag == "--vlan") {
      std::uint16_t vid = 0;
      if (!parse_uint(v, vid, 4094) || vid == 0) return bad("a VLAN ID 1..4094");
      o.vlan = vid;
    } else if (flag == "--port") {
      if (!parse_uint(v, o.port, 1023)) return bad("a port number");
    } else if (flag == "--pcap-out") {
      if (v.empty()) return bad("a file name");
      o.pcap_out = v;
    } else if (flag == "--stats-interval") {
      if (!parse_seconds(v, o.stats_interval_s) || (o.stats_interval_s > 0 && o.stats_interval_s < 0.01))
        return bad("seconds, e.g. 1 or 0.5");
    } else if (flag == "--stats-json") {
      if (v.empty()) return bad("a file name");
      o.stats_json = v;
    } else if (flag == "--ping") {
      PingTarget t;
      const auto colon = v.find(':');
      auto a = Ipv4Addr::parse(std::string_view(v).substr(0, colon));
      if (!a || a->is_unspecified() || a->is_multicast() || a->is_limited_broadcast()) return bad("A.B.C.D[:COUNT]");
      t.dst = *a;
      if (colon != std::string::npos) {
        if (!parse_uint(std::string_view(v).substr(colon + 1), t.count, 65535) || t.count == 0)
          return bad("A.B.C.D[:COUNT] with COUNT 1..65535");
      }
      if (o.pings.size() >= 8) {
        err = "at most 8 --ping targets";
        return std::nullopt;
      }
      o.pings.push_back(t);
    } else if (flag == "--app-cpus") {
      if (!parse_cpu_list(v, o.app_cpus)) return bad("a CPU list such as 1 or 2-3,6 (CPUs 0..1023)");
    } else if (flag == "--shim-threads") {
      if (!parse_uint(v, o.shim_threads, kMaxShimThreads)) return bad("a thread count 0..64");
    } else if (flag == "--duration") {
      if (!parse_seconds(v, o.duration_s)) return bad("seconds");
    } else if (flag == "--mtu") {
      std::uint16_t mtu = 0;
      if (!parse_uint(v, mtu, 9216) || mtu < 68) return bad("an MTU 68..9216");
      o.mtu = mtu;
    } else if (flag == "--rx-desc") {
      if (!parse_uint(v, o.rx_desc, 32768) || o.rx_desc == 0) return bad("a descriptor count");
    } else if (flag == "--tx-desc") {
      if (!parse_uint(v, o.tx_desc, 32768) || o.tx_desc == 0) return bad("a descriptor count");
    } else if (flag == "--tcp-max-conns") {
      if (!parse_uint(v, o.tcp.max_conns, kMaxTcpConns) || o.tcp.max_conns == 0)
        return bad("a connection count 1..65536");
    } else if (flag == "--tcp-sndbuf" || flag == "--tcp-rcvbuf") {
      std::uint64_t b = 0;
      if (!parse_bytes(v, b, kMaxTcpBuf) || b < kMinTcpBuf) return bad("bytes 4096..64M (K, M suffixes allowed)");
      (flag == "--tcp-sndbuf" ? o.tcp.sndbuf : o.tcp.rcvbuf) = static_cast<std::uint32_t>(b);
    } else if (flag == "--tcp-cc") {
      if (v == "newreno") o.tcp.congestion = TcpCongestion::newreno;
      else if (v == "cubic") o.tcp.congestion = TcpCongestion::cubic;
      else return bad("newreno or cubic");
    } else if (flag == "--tcp-min-rto-ms") {
      if (!parse_uint(v, o.tcp.min_rto_ms, 60000) || o.tcp.min_rto_ms == 0) return bad("milliseconds 1..60000");
    } else if (flag == "--tcp-echo" || flag == "--tcp-discard" || flag == "--tcp-source") {
      TcpServiceSpec sv;
      sv.kind = flag == "--tcp-echo" ? TcpServiceSpec::Kind::echo
                : flag == "--tcp-discard" ? TcpServiceSpec::Kind::discard
                                          : TcpServiceSpec::Kind::source;
      const auto colon = v.find(':');
      if (sv.kind == TcpServiceSpec::Kind::source) {
        if (colon == std::string::npos || !parse_uint(std::string_view(v).substr(0, colon), sv.port, 65535) ||
            sv.port == 0 || !parse_bytes(std::string_view(v).substr(colon + 1), sv.bytes, 1ull << 50))
          return bad("PORT:BYTES, PORT 1..65535 (K, M, G suffixes allowed)");
      } else if (!parse_uint(v, sv.port, 65535) || sv.port == 0) {
        return bad("a TCP port 1..65535");
      }
      for (const auto& other : o.services)
        if (other.port == sv.port) {
          err = flag + ": port " + std::to_string(sv.port) + " already has a TCP service";
          return std::nullopt;
        }
      if (o.services.size() >= kMaxTcpServices) {
        err = "at most " + std::to_string(kMaxTcpServices) + " TCP services";
        return std::nullopt;
      }
      o.services.push_back(sv);
    } else if (flag == "--tcp-get") {
      // IP:PORT[:BYTES]
      TcpGetSpec g;
      const std::string_view sv(v);
      const auto c1 = sv.find(':');
      const auto c2 = c1 == std::string_view::npos ? std::string_view::npos : sv.find(':', c1 + 1);
      auto a = Ipv4Addr::parse(sv.substr(0, c1));
      if (!a || a->is_unspecified() || a->is_multicast() || a->is_limited_broadcast() || c1 == std::string_view::npos)
        return bad("IP:PORT[:BYTES]");
      g.dst = *a;
      const std::string_view port = c2 == std::string_view::npos ? sv.substr(c1 + 1) : sv.substr(c1 + 1, c2 - c1 - 1);
      if (!parse_uint(port, g.port, 65535) || g.port == 0) return bad("IP:PORT[:BYTES] with PORT 1..65535");
      if (c2 != std::string_view::npos) {
        std::uint64_t b = 0;
        if (!parse_bytes(sv.substr(c2 + 1), b, 1ull << 50)) return bad("IP:PORT[:BYTES] (K, M, G suffixes allowed)");
        g.bytes = b;
      }
      if (o.gets.size() >= kMaxTcpGets) {
        err = "at most " + std::to_string(kMaxTcpGets) + " --tcp-get targets";
        return std::nullopt;
      }
      o.gets.push_back(g);
    } else if (flag == "--tcp-get-timeout") {
      if (!parse_seconds(v, o.get_timeout_s) || o.get_timeout_s < 0.1) return bad("seconds, at least 0.1");
    } else if (flag == "--fault-drop" || flag == "--fault-duplicate" || flag == "--fault-reorder" ||
               flag == "--fault-corrupt") {
      double& p = flag == "--fault-drop" ? o.faults.drop
                  : flag == "--fault-duplicate" ? o.faults.duplicate
                  : flag == "--fault-reorder" ? o.faults.reorder
                                              : o.faults.corrupt;
      if (!parse_probability(v, p)) return bad("a probability 0..1");
    } else if (flag == "--udp-echo") {
      std::uint16_t port = 0;
      if (!parse_uint(v, port, 65535) || port == 0) return bad("a UDP port 1..65535");
      if (std::find(o.udp_echo.begin(), o.udp_echo.end(), port) != o.udp_echo.end()) {
        err = flag + ": port " + std::to_string(port) + " already has a UDP echo";
        return std::nullopt;
      }
      if (o.udp_echo.size() >= kMaxUdpEcho) {
        err = "at most " + std::to_string(kMaxUdpEcho) + " --udp-echo ports";
        return std::nullopt;
      }
      o.udp_echo.push_back(port);
    } else if (flag == "--join") {
      // GROUP:PORT[@SOURCE]
      UdpJoinSpec j;
      const std::string_view sv(v);
      const auto at = sv.find('@');
      if (!parse_group_port(sv.substr(0, at), j.group, j.port))
        return bad("GROUP:PORT[@SOURCE], a multicast group outside 224.0.0.0/24 and a port 1..65535");
      if (at != std::string_view::npos) {
        const auto s = Ipv4Addr::parse(sv.substr(at + 1));
        if (!s || s->is_unspecified() || s->is_multicast() || s->is_limited_broadcast() || s->is_loopback())
          return bad("GROUP:PORT[@SOURCE] with SOURCE a unicast address");
        j.source = *s;
      }
      for (const auto& other : o.joins)
        if (other.group == j.group && other.port == j.port && other.source == j.source) {
          err = flag + " " + v + " given twice";
          return std::nullopt;
        }
      if (o.joins.size() >= kMaxJoins) {
        err = "at most " + std::to_string(kMaxJoins) + " --join groups";
        return std::nullopt;
      }
      o.joins.push_back(j);
    } else if (flag == "--mcast-send") {
      McastSendSpec m;
      if (!parse_group_port(v, m.group, m.port))
        return bad("GROUP:PORT, a multicast group outside 224.0.0.0/24 and a port 1..65535");
      if (o.mcast_send) {
        err = "--mcast-send given twice (one publisher per process)";
        return std::nullopt;
      }
      o.mcast_send = m;
    } else if (flag == "--rate") {
      std::uint32_t r = 0;
      if (!parse_uint(v, r, kMaxRate) || r == 0) return bad("datagrams per second 1..10000000");
      rate = r;
    } else if (flag == "--size") {
      std::uint16_t sz = 0;
      if (!parse_uint(v, sz, kMaxMcastSize) || sz < services::kFeedHeaderLen)
        return bad("payload bytes 24..8972 (the feed header is 24)");
      size = sz;
    } else if (flag == "--mcast-ttl") {
      std::uint8_t t = 0;
      if (!parse_uint(v, t, 255) || t == 0) return bad("a TTL 1..255");
      mcast_ttl = t;
    } else if (flag == "--fault-seed") {
      if (!parse_uint(v, o.faults.seed, ~std::uint64_t{0})) return bad("an unsigned integer");
    }
  }
  if (!have_ip) {
    err = "--ip A.B.C.D/N is required (see --help)";
    return std::nullopt;
  }
  if (!o.mcast_send && (rate || size || mcast_ttl || mcast_loop)) {
    err = std::string(rate ? "--rate" : size ? "--size" : mcast_ttl ? "--mcast-ttl" : "--mcast-loop") +
          " needs --mcast-send GROUP:PORT";
    return std::nullopt;
  }
  if (o.mcast_send) {
    if (rate) o.mcast_send->rate = *rate;
    if (size) o.mcast_send->size = *size;
    if (mcast_ttl) o.mcast_send->ttl = *mcast_ttl;
    o.mcast_send->loop = mcast_loop;
  }
  if (std::uint64_t{o.tcp.max_conns} * (std::uint64_t{o.tcp.sndbuf} + o.tcp.rcvbuf) > kMaxTcpBufferBudget) {
    err = "--tcp-max-conns x (--tcp-sndbuf + --tcp-rcvbuf) is over 16G per lcore (" + std::to_string(o.tcp.max_conns) +
          " x " + std::to_string(o.tcp.sndbuf + std::uint64_t{o.tcp.rcvbuf}) + " bytes): fewer connections or smaller buffers";
    return std::nullopt;
  }
  for (const auto& g : o.gets) {
    if (g.dst == o.ip.addr) {
      err = "--tcp-get " + g.dst.to_string() + ": that is our own address";
      return std::nullopt;
    }
  }
  if (o.gateway) {
    if (!o.ip.contains(*o.gateway)) {
      err = "gateway " + o.gateway->to_string() + " is outside the subnet " + o.ip.to_string();
      return std::nullopt;
    }
    if (*o.gateway == o.ip.addr) {
      err = "gateway " + o.gateway->to_string() + " is our own address";
      return std::nullopt;
    }
  }
  return o;
}

std::string usage(const std::string& prog) {
  return "usage: " + prog +
         " [EAL args] -- --ip A.B.C.D/N [options]\n"
         "\n"
         "A kernel-bypass IPv4 host on one DPDK port: answers ARP and ping, pings on request.\n"
         "\n"
         "EAL args (DPDK's own; defaults are added so that only the device needs naming):\n"
         "  --vdev=net_af_packet0,iface=IF   drive a kernel interface (veth, tap) through AF_PACKET\n"
         "  -a PCI_ADDR                       use this NIC (bound to vfio-pci)\n"
         "  -l CORES                          lcores: one poll loop and one queue per lcore (default: one)\n"
         "  added when absent: --no-huge -m 512 (no free hugepages), --no-pci (a --vdev and no -a),\n"
         "  --no-shconf (with --no-huge), -l <first CPU of this process>\n"
         "\n"
         "app args:\n"
         "  --ip A.B.C.D/N            our address and connected subnet (required)\n"
         "  --gw A.B.C.D              default gateway (inside the subnet)\n"
         "  --mac M                   our MAC (default: the port's)\n"
         "  --vlan VID                tag with and accept only 802.1Q VLAN VID\n"
         "  --port N                  DPDK port id (default 0)\n"
         "  --mtu N                   set the port MTU (default: keep the port's)\n"
         "  --promisc                 promiscuous mode\n"
         "  --rx-desc N, --tx-desc N  descriptors per queue (default 1024 each)\n"
         "  --pcap-out FILE           record RX and TX to a nanosecond pcap (FILE-qN.pcap per queue when >1)\n"
         "  --stats-interval S        print a stats line every S seconds (also on SIGUSR1)\n"
         "  --stats-json FILE         write every counter as JSON at exit\n"
         "  --ping A.B.C.D[:COUNT]    ping an address COUNT times (default 5), one per 100 ms; repeatable\n"
         "  --duration S              exit after S seconds (default: run until SIGINT/SIGTERM)\n"
         "\n"
         "Application threads (dedicated-core mode, docs/api.md):\n"
         "  --app-cpus LIST           CPUs for application threads, e.g. 2-3 (default: the process's CPUs\n"
         "                            that no lcore polls); must not overlap the lcores' CPUs\n"
         "  --shim-threads N          application threads that may attach to the shim (default 4; 0: none)\n"
         "\n"
         "TCP (every lcore runs a TCP for the flows its queue receives):\n"
         "  --tcp-echo PORT           echo server (zero-copy, with backpressure); repeatable\n"
         "  --tcp-discard PORT        discard server; repeatable\n"
         "  --tcp-source PORT:BYTES   send BYTES of the test pattern to each client, then close; repeatable\n"
         "  --tcp-get IP:PORT[:BYTES] client mode: connect, receive until EOF, check the pattern (and the\n"
         "                            byte count), print the result and exit (3 on failure); repeatable\n"
         "  --tcp-get-timeout S       give up on --tcp-get after S seconds (default 30)\n"
         "  --tcp-max-conns N         connections per lcore (default 1024)\n"
         "  --tcp-sndbuf B, --tcp-rcvbuf B  per-connection buffers (default 256K each; K/M suffixes)\n"
         "  --tcp-cc newreno|cubic    congestion control (default cubic)\n"
         "  --tcp-no-sack, --tcp-no-timestamps  do not offer or accept SACK / timestamps\n"
         "  --tcp-nagle               Nagle's algorithm on (default off)\n"
         "  --tcp-min-rto-ms MS       minimum retransmission timeout (default 200)\n"
         "  The pattern: byte i of a stream is (7 * (i mod 251) + i / 251) mod 256.\n"
         "\n"
         "UDP and multicast (queue 0's lcore owns IGMP; with several queues, multicast is moved to it):\n"
         "  --udp-echo PORT           echo every datagram back to its sender (zero-copy); every lcore; repeatable\n"
         "  --join GROUP:PORT[@SOURCE]  join GROUP (IGMPv3; only from SOURCE if given) and count its datagrams\n"
         "                            and, with ustack's feed header, sequence gaps; repeatable\n"
         "  --mcast-send GROUP:PORT   publish a feed: --rate N datagrams/s (default 1000) of --size S bytes\n"
         "                            (24..8972, default 64: feed header, then the test pattern)\n"
         "  --mcast-ttl N             TTL of published datagrams (default 1)\n"
         "  --mcast-loop              also deliver published datagrams to this host's --join sockets\n"
         "  Feed header (big-endian): magic 0x55535446, version 1, flags, header length 24,\n"
         "  sequence (u64, from 0), send time (u64 ns since the Unix epoch).\n"
         "\n"
         "Fault injection on ustack's side of the wire, both directions (a test facility):\n"
         "  --fault-drop P, --fault-duplicate P, --fault-reorder P, --fault-corrupt P   probabilities 0..1\n"
         "  --fault-seed N            seed (default 1; lcore q uses N + q)\n"
         "  --help                    this text\n"
         "\n"
         "Signals: SIGINT/SIGTERM stop cleanly; SIGUSR1 prints stats.\n"
         "Exit status: 0 clean stop, 1 runtime failure, 2 usage error, 3 a --tcp-get failed.\n";
}

}  // namespace ustack
