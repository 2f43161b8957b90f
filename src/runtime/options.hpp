// Command line of the dedicated-core process, DPDK style:
//
//   ustack [EAL args] -- [app args]
//
// split_argv() cuts argv at the first "--"; parse_app_options() reads the app
// half; eal_args.hpp completes the EAL half with defaults. Parsing never
// touches DPDK, so usage errors are reported before EAL starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ustack/addr.hpp"
#include "ustack/tcp.hpp"

namespace ustack {

struct PingTarget {
  Ipv4Addr dst;
  std::uint16_t count = 5;
};

// A TCP service every lcore runs on its own queue's share of the flows.
struct TcpServiceSpec {
  enum class Kind : std::uint8_t { echo, discard, source };
  Kind kind = Kind::echo;
  std::uint16_t port = 0;
  std::uint64_t bytes = 0;  // source: bytes of the pattern sent to each client
};

// Client mode: connect to dst:port, receive until EOF, check the pattern.
struct TcpGetSpec {
  Ipv4Addr dst;
  std::uint16_t port = 0;
  std::optional<std::uint64_t> bytes;  // expected byte count, when given
};

// The TCP every lcore runs (src/tcp/tcp_layer.hpp), as the command line sets it.
struct TcpOptionsCli {
  std::uint32_t max_conns = 1024;          // per lcore
  std::uint32_t sndbuf = 256 * 1024;       // per connection
  std::uint32_t rcvbuf = 256 * 1024;
  TcpCongestion congestion = TcpCongestion::cubic;
  bool sack = true;
  bool timestamps = true;
  bool nagle = false;
  std::uint32_t min_rto_ms = 200;
};

// --join GROUP:PORT[@SOURCE]: a socket on queue 0's UDP joined to GROUP
// (any source, or only SOURCE), counting datagrams and feed gaps.
struct UdpJoinSpec {
  Ipv4Addr group;
  std::uint16_t port = 0;
  std::optional<Ipv4Addr> source;
};

// --mcast-send GROUP:PORT with --rate, --size, --mcast-ttl, --mcast-loop.
struct McastSendSpec {
  Ipv4Addr group;
  std::uint16_t port = 0;
  std::uint32_t rate = 1000;  // datagrams per second
  std::uint16_t size = 64;    // UDP payload bytes, feed header included
  std::uint8_t ttl = 1;
  bool loop = false;
};

// Seeded faults on ustack's side of the wire, both directions (a test
// facility: drivers/fault.hpp).
struct FaultOptions {
  double drop = 0, duplicate = 0, reorder = 0, corrupt = 0;
  std::uint64_t seed = 1;
  bool any() const { return drop > 0 || duplicate > 0 || reorder > 0 || corrupt > 0; }
};

struct AppOptions {
  Ipv4Cidr ip;
  std::optional<Ipv4Addr> gateway;
  std::optional<MacAddr> mac;
  std::optional<std::uint16_t> vlan;
  std::uint16_t port = 0;
  std::string pcap_out;
  double stats_interval_s = 0;  // 0: only on SIGUSR1 and at exit
  std::string stats_json;
  std::vector<PingTarget> pings;
  double duration_s = 0;  // 0: until SIGINT/SIGTERM
  std::optional<std::uint16_t> mtu;
  bool promiscuous = false;
  std::uint16_t rx_desc = 1024;
  std::uint16_t tx_desc = 1024;
  TcpOptionsCli tcp;
  std::vector<TcpServiceSpec> services;
  std::vector<TcpGetSpec> gets;
  double get_timeout_s = 30;
  std::vector<std::uint16_t> udp_echo;  // ports
  std::vector<UdpJoinSpec> joins;
  std::optional<McastSendSpec> mcast_send;
  FaultOptions faults;
  // Dedicated-core mode (docs/api.md): the CPUs application threads run on
  // (empty: the process's CPUs that no lcore polls), and how many of them
  // may attach to the shim on every lcore.
  std::vector<int> app_cpus;
  std::uint32_t shim_threads = 4;
  bool help = false;
};

struct SplitArgv {
  std::vector<std::string> eal;  // argv[0] first
  std::vector<std::string> app;
  bool has_separator = false;
};
SplitArgv split_argv(int argc, const char* const* argv);

// Parses the app half. On error returns nullopt and sets `err` to one line
// (without the "ustack: " prefix). `help` set means: print usage, exit 0.
std::optional<AppOptions> parse_app_options(const std::vector<std::string>& args, std::string& err);

// True when `arg` is one of the app's own flags (to catch a missing "--").
bool is_app_flag(const std::string& arg);

std::string usage(const std::string& prog);

}  // namespace ustack
