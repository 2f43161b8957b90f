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

namespace ustack {

struct PingTarget {
  Ipv4Addr dst;
  std::uint16_t count = 5;
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
