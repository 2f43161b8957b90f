// Two stacks back to back on the in-memory pair, on a virtual clock, with
// seeded faults in the driver layer. What the application receives must be
// exactly what was sent, or nothing; every fault is accounted for.
#include <catch2/catch.hpp>

#include <map>

#include "drivers/fault.hpp"
#include "drivers/mem_pair.hpp"
#include "src/runtime/engine.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

struct Received {
  std::map<std::uint16_t, int> seen;  // seq -> times
  int wrong_payload = 0;
  static void on(const EchoReply& r, TimeNs, void* ctx) {
    auto* self = static_cast<Received*>(ctx);
    ++self->seen[r.seq];
    if (r.data.size() != 64) {
      ++self->wrong_payload;
      return;
    }
    for (std::size_t i = 0; i < r.data.size(); ++i)
      if (r.data[i] != static_cast<std::uint8_t>(r.seq * 31 + i)) {
        ++self->wrong_payload;
        return;
      }
  }
};

std::uint64_t total_drops(const StackCounters& c) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < kStackCounterCount; ++i)
    if (kStackCounterNames[i].find("drop") != std::string_view::npos) n += c.get(i);
  return n;
}

struct Pair {
  TimeNs now = kNsPerSec;  // first: the engines below are built at this time
  MemPair wire;
  FaultInjector fa;
  Engine a;
  Engine b;

  Pair(std::uint64_t seed, FaultConfig a_rx, FaultConfig a_tx)
      : wire(1024, caps(1), caps(2)),
        fa(wire.a(), seed, a_rx, a_tx),
        a(fa, config(1), test::pool(), now),
        b(wire.b(), config(2), test::pool(), now) {}

  static DeviceCaps caps(std::uint8_t n) {
    DeviceCaps c;
    c.mac = MacAddr{{0x02, 0, 0, 0, 0, n}};
    return c;
  }
  static StackConfig config(std::uint8_t n) {
    StackConfig c;
    c.mac = caps(n).mac;
    c.ip = Ipv4Cidr{Ipv4Addr{10, 1, 0, n}, 24};
    c.icmp_errors_per_sec = 1'000'000;
    return c;
  }
  void step(TimeNs dt) {
    now += dt;
    a.run_once(now);
    b.run_once(now);
  }
};

}  // namespace

TEST_CASE("Simulation: pings across a lossy, duplicating, reordering, corrupting wire", "[sim]") {
  FaultConfig f;
  f.drop = 0.05;
  f.duplicate = 0.03;
  f.corrupt = 0.02;
  f.delay_ns = 50 * kNsPerUs;
  f.jitter_ns = 100 * kNsPerUs;  // reorders packets sent within the jitter window
  const unsigned avail = rte_mempool_avail_count(test::pool());
  {
    Pair p(0xC0FFEE, f, f);
    Received rx;
    p.a.stack().on_echo_reply(&Received::on, &rx);
    p.a.start(p.now);
    p.b.start(p.now);
    std::vector<std::uint8_t> data(64);
    constexpr std::uint16_t kPings = 2000;
    for (std::uint16_t seq = 0; seq < kPings; ++seq) {
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(seq * 31 + i);
      p.a.stack().send_echo_request(Ipv4Addr{10, 1, 0, 2}, 7, seq, Bytes{data}, p.now);
      p.step(20 * kNsPerUs);
    }
    for (int i = 0; i < 5000; ++i) p.step(100 * kNsPerUs);  // drain delay lines, ARP retries

    CHECK(rx.wrong_payload == 0);  // corruption never reaches the application
    std::size_t dup = 0;
    for (auto& [seq, n] : rx.seen) dup += static_cast<std::size_t>(n - 1);
    // Each ping crosses the faulty end twice; expect ~90% of echoes back.
    CHECK(rx.seen.size() > kPings * 80 / 100);
    CHECK(rx.seen.size() < kPings);
    CHECK(dup > 0);  // duplicated replies are delivered as duplicates, as the kernel does
    const auto& txc = p.fa.tx_counters();
    const auto& rxc = p.fa.rx_counters();
    CHECK(txc.dropped > 0);
    CHECK(rxc.dropped > 0);
    CHECK(txc.corrupted + rxc.corrupted > 0);
    // Every corrupted frame that reached a stack was refused by some check
    // (checksum, address, type) — except bit flips that land in link padding
    // or in ARP fields without a checksum, so this is a lower bound.
    CHECK(total_drops(p.a.stack().counters()) + total_drops(p.b.stack().counters()) >= (txc.corrupted + rxc.corrupted) / 2);
  }
  CHECK(rte_mempool_avail_count(test::pool()) == avail);  // nothing leaked through any fault path
}

TEST_CASE("Simulation: ARP resolves through loss by retrying", "[sim][arp]") {
  FaultConfig tx;
  tx.drop = 0.5;
  Pair p(42, FaultConfig{}, tx);
  Received rx;
  p.a.stack().on_echo_reply(&Received::on, &rx);
  std::vector<std::uint8_t> data(64);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
  int attempts = 0;
  while (rx.seen.empty() && attempts < 20) {
    p.a.stack().send_echo_request(Ipv4Addr{10, 1, 0, 2}, 7, 0, Bytes{data}, p.now);
    for (int i = 0; i < 1500; ++i) p.step(kNsPerMs);
    ++attempts;
  }
  CHECK(rx.seen.count(0) == 1);
  CHECK(p.a.stack().arp().state(Ipv4Addr{10, 1, 0, 2}) == ArpCache::State::reachable);
  CHECK(p.a.stack().counters().get(StackCounter::arp_tx_request) >= 1);
}

TEST_CASE("Simulation: same seed, same run", "[sim]") {
  auto run = [](std::uint64_t seed) {
    FaultConfig f;
    f.drop = 0.2;
    f.duplicate = 0.1;
    Pair p(seed, f, f);
    Received rx;
    p.a.stack().on_echo_reply(&Received::on, &rx);
    std::vector<std::uint8_t> data(64);
    for (std::uint16_t seq = 0; seq < 300; ++seq) {
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(seq * 31 + i);
      p.a.stack().send_echo_request(Ipv4Addr{10, 1, 0, 2}, 7, seq, Bytes{data}, p.now);
      p.step(10 * kNsPerUs);
    }
    for (int i = 0; i < 3000; ++i) p.step(kNsPerMs);
    return rx.seen;
  };
  CHECK(run(1) == run(1));
  CHECK(run(1) != run(2));
}
