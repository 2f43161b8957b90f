// Stats output: the one-line summary (SIGUSR1, --stats-interval) and the JSON
// document written at exit (--stats-json). Both read snapshots, so they never
// touch an lcore's state directly.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drivers/ethdev.hpp"
#include "drivers/rss_info.hpp"
#include "ustack/stats.hpp"

namespace ustack {

struct LcoreSnapshot {
  unsigned lcore_id = 0;
  std::uint16_t queue = 0;
  std::array<std::uint64_t, kStackCounterCount> counters{};
  std::optional<std::size_t> arp_entries;  // only once the lcore has stopped
  // ARP replies copied to other lcores, and copies dropped (more than one queue only).
  std::uint64_t arp_shared = 0;
  std::uint64_t arp_share_dropped = 0;

  void read(const StackCounters& c) {
    for (std::size_t i = 0; i < kStackCounterCount; ++i) counters[i] = c.get(i);
  }
  std::uint64_t get(StackCounter c) const { return counters[static_cast<std::size_t>(c)]; }
  // Sum of every counter whose name contains "drop".
  std::uint64_t drops() const;
};

struct PortSnapshot {
  std::uint16_t port_id = 0;
  std::string driver;
  std::string mac;
  std::uint16_t mtu = 0;
  std::uint16_t queues = 0;
  std::string link;
  std::optional<PortStats> stats;
  RssInfo rss;  // queue 0's view
};

// True for counters that count a dropped packet (name contains "drop").
bool is_drop_counter(std::size_t index);
// The protocol group of a counter: its name's prefix up to the first '_'
// when that is eth/arp/ipv4/icmp/udp, else "resources".
std::string counter_group(std::size_t index);

// The start-up report of how the port steers flows: one summary line, then
// a line for what was degraded on the way (when anything was):
//   port 0: rss toeplitz, key symmetric, reta 128 entries over 2 queues, hashes ipv4-tcp ipv4-udp
//   port 0: rss unknown over 2 queues (TCP checks each flow's queue in software): WHY
std::vector<std::string> rss_report(std::uint16_t port_id, const RssInfo& rss);

// "t=1.0s lcore0/q0 rx=.. tx=.. drop=.. | port0 ipackets=.. ..." (no newline).
std::string stats_line(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port);

// The whole document; see docs/running.md for its shape.
std::string stats_json(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port);

// Writes `text` to `path` atomically (temporary file + rename). False with `err` set on failure.
bool write_file(const std::string& path, const std::string& text, std::string& err);

}  // namespace ustack
