// Two TCP stacks back to back on the in-memory pair, on a virtual clock,
// optionally with seeded faults on a's side of the wire. Shared by the TCP
// simulation, state-machine and benchmark-style tests.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>
#include <optional>

#include "drivers/fault.hpp"
#include "drivers/mem_pair.hpp"
#include "drivers/pcap_tee.hpp"
#include "src/runtime/engine.hpp"
#include "tcp/tcp_layer.hpp"
#include "test/support/support.hpp"

namespace ustack::test {

inline tcp::Secret fixed_secret(std::uint8_t v) {
  tcp::Secret s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(v + i);
  return s;
}

struct TcpPair {
  TimeNs now = kNsPerSec;
  MemPair wire;
  // USTACK_TCP_PCAP=file records b's side of the wire (what b sends and
  // receives), for tshark when a test needs debugging.
  std::unique_ptr<PcapTee> tee;
  FaultInjector fa;
  Engine a;
  Engine b;
  tcp::TcpLayer ta;
  tcp::TcpLayer tb;

  static DeviceCaps caps(std::uint8_t n, bool multi_seg = false) {
    DeviceCaps c;
    c.mac = MacAddr{{0x02, 0, 0, 0, 0, n}};
    c.tx_multi_seg = multi_seg;  // chained zero-copy TX; the pair linearizes on delivery
    return c;
  }
  static StackConfig config(std::uint8_t n) {
    StackConfig c;
    c.mac = caps(n).mac;
    c.ip = Ipv4Cidr{Ipv4Addr{10, 1, 0, n}, 24};
    c.icmp_errors_per_sec = 1'000'000;
    c.gratuitous_arp_on_start = false;
    return c;
  }
  static tcp::TcpConfig tcp_config(std::uint8_t n, const tcp::TcpConfig& base) {
    tcp::TcpConfig c = base;
    c.isn_secret = fixed_secret(static_cast<std::uint8_t>(n * 16));
    c.cookie_secret = fixed_secret(static_cast<std::uint8_t>(n * 16 + 1));
    c.table_secret = fixed_secret(static_cast<std::uint8_t>(n * 16 + 2));
    return c;
  }

  TcpPair(const tcp::TcpConfig& cfg = {}, std::uint64_t seed = 1, FaultConfig a_rx = {}, FaultConfig a_tx = {},
          rte_mempool* mp = nullptr, std::size_t ring = 4096, bool multi_seg = false)
      : wire(ring, caps(1, multi_seg), caps(2, multi_seg)),
        tee(open_tee(wire.b())),
        fa(wire.a(), seed, a_rx, a_tx, 16384),
        a(fa, config(1), mp ? mp : test::pool(), now),
        b(tee ? static_cast<Device&>(*tee) : wire.b(), config(2), mp ? mp : test::pool(), now),
        ta(a.stack(), tcp_config(1, cfg)),
        tb(b.stack(), tcp_config(2, cfg)) {}

  static std::unique_ptr<PcapTee> open_tee(Device& d) {
    const char* path = std::getenv("USTACK_TCP_PCAP");
    if (!path) return nullptr;
    std::string err;
    return PcapTee::open(d, path, 0, err);
  }

  Ipv4Addr ip_a() const { return Ipv4Addr{10, 1, 0, 1}; }
  Ipv4Addr ip_b() const { return Ipv4Addr{10, 1, 0, 2}; }

  void step(TimeNs dt = 10 * kNsPerUs) {
    now += dt;
    a.run_once(now);
    b.run_once(now);
  }
  // Steps until `done()` or `limit` of virtual time passed; jumps over idle
  // stretches to the next timer. Returns done().
  template <class Done>
  bool run_until(Done&& done, TimeNs limit = 60 * kNsPerSec, TimeNs dt = 10 * kNsPerUs) {
    const TimeNs end = now + limit;
    int idle = 0;
    while (!done() && now < end) {
      const auto before = a.stack().counters().get(StackCounter::eth_rx_packets) +
                          b.stack().counters().get(StackCounter::eth_rx_packets);
      step(dt);
      const auto after = a.stack().counters().get(StackCounter::eth_rx_packets) +
                         b.stack().counters().get(StackCounter::eth_rx_packets);
      if (after == before) {
        if (++idle > 200) {
          const TimeNs next = std::min(a.stack().next_deadline(), b.stack().next_deadline());
          if (next != kNever && next > now + dt) now = std::min(next, end) - dt;
          idle = 0;
        }
      } else {
        idle = 0;
      }
    }
    return done();
  }
};

}  // namespace ustack::test
