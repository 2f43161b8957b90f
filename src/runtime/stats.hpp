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
#include "drivers/fault.hpp"
#include "drivers/rss_info.hpp"
#include "ustack/stats.hpp"

namespace ustack {

// One lcore's instance of a TCP service (--tcp-echo, --tcp-discard, --tcp-source).
struct ServiceSnapshot {
  std::string kind;
  std::uint16_t port = 0;
  std::uint64_t source_bytes = 0;  // source only
  std::uint64_t connections = 0, active = 0, completed = 0, failed = 0, bytes_in = 0, bytes_out = 0;
};

// One lcore's UDP service: kind "udp-echo" (target "PORT"), "join"
// ("GROUP:PORT" or "GROUP:PORT@SOURCE") or "mcast-send" ("GROUP:PORT").
struct UdpServiceSnapshot {
  std::string kind;
  std::string target;
  std::string status = "ok";  // join: why the join was refused, if it was
  std::uint64_t datagrams_in = 0, bytes_in = 0, datagrams_out = 0, bytes_out = 0, send_failed = 0;
  std::uint64_t queue_drops = 0;  // the socket's receive queue was full
  // join: feed datagrams, sequence numbers missing, gaps, late (reordered or
  // duplicated), datagrams without the feed header.
  std::uint64_t feed = 0, missing = 0, gap_events = 0, late = 0, not_feed = 0;
  // mcast-send: the publisher's settings.
  std::uint32_t rate = 0;
  std::uint16_t size = 0;
};

// A --tcp-get's outcome (or its progress while it runs).
struct GetSnapshot {
  std::string target;  // IP:PORT
  std::string outcome; // "running", "ok", or what went wrong
  bool ok = false;
  std::uint64_t bytes = 0;
  std::optional<std::uint64_t> expected;
  std::optional<std::uint64_t> mismatch_at;
  double elapsed_s = 0, connect_s = 0;
  std::uint64_t retransmits = 0;
  bool sack = false, timestamps = false;
  unsigned snd_wscale = 0, rcv_wscale = 0, mss = 0;
};

struct LcoreSnapshot {
  unsigned lcore_id = 0;
  std::uint16_t queue = 0;
  std::array<std::uint64_t, kStackCounterCount> counters{};
  // Gauges, for leak checks: TCP connections in any state (TIME-WAIT
  // included) and in TIME-WAIT, out of tcp_capacity; free mbufs in this
  // queue's pool (mempool caches included), out of mbuf_pool_size.
  std::uint32_t tcp_connections = 0, tcp_time_wait = 0, tcp_capacity = 0;
  std::uint64_t mbuf_available = 0, mbuf_pool_size = 0;
  std::vector<ServiceSnapshot> services;
  std::vector<UdpServiceSnapshot> udp_services;
  // Multicast moved to queue 0 (more than one queue only): out, in, dropped (ring full).
  std::uint64_t mcast_steered_out = 0, mcast_steered_in = 0, mcast_steer_dropped = 0;
  // The lcore that owns IGMP: exact multicast MAC lists programmed, and
  // membership changes the port refused (all-multicast instead).
  bool igmp_owner = false;
  std::uint64_t mc_filter_programmed = 0, mc_filter_fallbacks = 0;
  // --fault-*: what was injected on this lcore's queue (only once the lcore has stopped).
  std::optional<FaultCounters> fault_rx, fault_tx;
  std::optional<std::size_t> arp_entries;  // only once the lcore has stopped
  // ARP replies copied to other lcores, and copies dropped (more than one queue only).
  std::uint64_t arp_shared = 0;
  std::uint64_t arp_share_dropped = 0;
  // TCP segments moved to (out) and from (in) other lcores, and dropped
  // (the owner's ring full); software steering only (tcp_steer.hpp).
  std::uint64_t tcp_steered_out = 0, tcp_steered_in = 0, tcp_steer_dropped = 0;

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
// when that is eth/arp/ipv4/icmp/tcp/udp/igmp, else "resources".
std::string counter_group(std::size_t index);

// The start-up report of how the port steers flows: one summary line, then
// a line for what was degraded on the way (when anything was):
//   port 0: rss toeplitz, key symmetric, reta 128 entries over 2 queues, hashes ipv4-tcp ipv4-udp
//   port 0: rss unknown over 2 queues (TCP is steered to its lcores in software): WHY
std::vector<std::string> rss_report(std::uint16_t port_id, const RssInfo& rss);

// "t=1.0s lcore0/q0 rx=.. tx=.. drop=.. | port0 ipackets=.. ... | lcore0 conns=.. time_wait=..
// mbuf_avail=.." (no newline).
std::string stats_line(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port);

// The whole document; see docs/running.md for its shape.
std::string stats_json(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port,
                       const std::vector<GetSnapshot>& gets = {});

// Writes `text` to `path` atomically (temporary file + rename). False with `err` set on failure.
bool write_file(const std::string& path, const std::string& text, std::string& err);

}  // namespace ustack
