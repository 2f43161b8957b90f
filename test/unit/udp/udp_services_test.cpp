// The UDP services (services/udp_services.hpp) and the feed header
// (services/feed.hpp) on two engines over the in-memory pair, on a virtual
// clock; the engine's UDP/IGMP wiring; the multicast steering device
// (runtime/mcast_steer.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <vector>

#include "drivers/fault.hpp"
#include "drivers/mem_pair.hpp"
#include "services/feed.hpp"
#include "services/pattern.hpp"
#include "services/udp_services.hpp"
#include "src/runtime/engine.hpp"
#include "src/runtime/mcast_steer.hpp"
#include "test/support/support.hpp"
#include "test/unit/net/frames.hpp"
#include "wire/ethernet.hpp"
#include "wire/udp.hpp"

#if USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::test;
using namespace ustack::services;

namespace {

using Vec = std::vector<std::uint8_t>;

constexpr Ipv4Addr kA{10, 1, 0, 1};
constexpr Ipv4Addr kB{10, 1, 0, 2};
constexpr Ipv4Addr kG{239, 1, 2, 3};

DeviceCaps caps_of(std::uint8_t n) {
  DeviceCaps c;
  c.mac = MacAddr{{0x02, 0, 0, 0, 0, n}};
  return c;
}
StackConfig config_of(std::uint8_t n) {
  StackConfig c;
  c.mac = caps_of(n).mac;
  c.ip = Ipv4Cidr{Ipv4Addr{10, 1, 0, n}, 24};
  c.gratuitous_arp_on_start = false;
  return c;
}

// A publishes, B (the IGMP owner) joins and echoes. B's receive side may
// drop frames (seeded), to make gaps.
struct Pair {
  ScopedPool pool{4095};
  TimeNs now = kNsPerSec;
  IgmpConfig icfg;
  MemPair wire{2048, caps_of(1), caps_of(2)};
  FaultInjector b_faults;
  Engine a;
  Engine b;
  UdpLayer& ua;
  UdpLayer& ub;

  explicit Pair(double b_drop = 0)
      : b_faults(wire.b(), 42, FaultConfig{b_drop, 0, 0, 0, 0, 0}, FaultConfig{}),
        a(wire.a(), config_of(1), pool.mp, now),
        b(b_faults, config_of(2), pool.mp, now),
        ua(a.enable_udp(UdpConfig{})),
        ub(b.enable_udp(UdpConfig{}, &icfg)) {}
  void step(TimeNs dt = 10 * kNsPerUs) {
    now += dt;
    a.run_once(now);
    b.run_once(now);
  }
};

}  // namespace

TEST_CASE("Feed header: golden bytes, parse and refusals", "[udp][services][feed]") {
  const Vec golden{0x55, 0x53, 0x54, 0x46, 0x01, 0x00, 0x00, 0x18, 0x01, 0x02, 0x03, 0x04,
                   0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
  Vec b(kFeedHeaderLen + 3, 0xee);
  FeedHeader{0x0102030405060708, 0x1112131415161718}.emit(MutBytes{b});
  CHECK(Vec(b.begin(), b.begin() + kFeedHeaderLen) == golden);
  CHECK(b[kFeedHeaderLen] == 0xee);  // nothing written past the header
  const auto h = FeedHeader::parse(Bytes{b});
  REQUIRE(h);
  CHECK(h->seq == 0x0102030405060708);
  CHECK(h->send_time_ns == 0x1112131415161718);

  CHECK(!FeedHeader::parse(Bytes{golden}.first(23)));  // short
  Vec bad = golden;
  bad[3] ^= 1;
  CHECK(!FeedHeader::parse(Bytes{bad}));  // magic
  bad = golden;
  bad[7] = 0x17;
  CHECK(!FeedHeader::parse(Bytes{bad}));  // header length under 24
  bad = golden;
  bad[7] = 0x19;
  CHECK(!FeedHeader::parse(Bytes{bad}));  // header length past the datagram
  bad = golden;
  bad[4] = 9;
  bad[5] = 0xff;
  CHECK(FeedHeader::parse(Bytes{bad}));  // another version or flags: still read
}

TEST_CASE("Feed tracker: gaps, late and duplicated sequence numbers", "[udp][services][feed]") {
  FeedTracker t;
  CHECK(!t.next());
  for (std::uint64_t s : {5, 6, 8, 7, 8, 12, 13}) t.on_seq(s);
  CHECK(t.feed() == 7);
  CHECK(t.missing() == 4);  // 7 (then late), 9, 10, 11
  CHECK(t.gap_events() == 2);
  CHECK(t.late() == 2);  // 7, and 8 again
  CHECK(t.next() == 14u);
  t.on_seq(0);  // the publisher restarted: late once, then counted as it goes on
  CHECK(t.late() == 3);
}

TEST_CASE("Engine: UDP with the IgmpHost on the owning lcore only", "[udp][services][engine]") {
  Pair p;
  CHECK(p.a.igmp() == nullptr);
  REQUIRE(p.b.igmp() != nullptr);
  CHECK(p.b.udp() == &p.ub);
  UdpSocket* s = p.ua.open();
  CHECK(s->join(kG, p.now) == UdpStatus::no_igmp);
  UdpSocket* t = p.ub.open();
  CHECK(t->join(kG, p.now) == UdpStatus::ok);
  CHECK(p.b.igmp()->interface_state(kG));
  // The mem-pair end takes no exact list: each change fell back to all-multicast.
  CHECK(p.b.mc_fallbacks() == 2);  // at construction (224.0.0.1), and the join
  CHECK(p.b.mc_programmed() == 0);
  CHECK(p.b.allmulticast_by_us());
  t->close(p.now);
  s->close();
}

TEST_CASE("UDP services: a published feed reaches the joined socket whole and in order", "[udp][services][mcast]") {
  Pair p;
  McastJoin join(p.ub, kG, 5000, std::nullopt);
  McastJoin other(p.ub, Ipv4Addr{239, 9, 9, 9}, 5000, std::nullopt);  // same port, another group
  McastSender tx(p.ua, kG, 5000, 10'000, 200, 1, false, 1'000'000'000'000);
  REQUIRE(join.ok());
  REQUIRE(tx.ok());
  REQUIRE(join.start(p.now) == UdpStatus::ok);
  REQUIRE(other.start(p.now) == UdpStatus::ok);
  tx.start(p.now);
#if USTACK_COUNT_ALLOCS
  const auto allocs = thread_alloc_count();
#endif
  for (int i = 0; i < 10'000; ++i) {  // 100 ms at 10 µs per iteration: 1000 datagrams
    tx.poll(p.now);
    p.step();
  }
#if USTACK_COUNT_ALLOCS
  CHECK(thread_alloc_count() == allocs);  // publishing, IGMP and receiving allocate nothing
#endif
  for (int i = 0; i < 10; ++i) p.step();
  const auto& c = join.counters();
  CHECK(tx.counters().datagrams_out.get() == 1000);
  CHECK(tx.counters().send_failed.get() == 0);
  CHECK(c.datagrams_in.get() == 1000);
  CHECK(c.feed.get() == 1000);
  CHECK(c.bytes_in.get() == 200'000);
  CHECK(c.missing.get() == 0);
  CHECK(c.late.get() == 0);
  CHECK(c.not_feed.get() == 0);
  CHECK(other.counters().datagrams_in.get() == 0);

  // Leaving: the group is gone from the interface, later datagrams are dropped.
  join.stop(p.now);
  other.stop(p.now);
  CHECK(!p.b.igmp()->interface_state(kG));
  const auto before = p.b.stack().counters().get(StackCounter::ipv4_drop_multicast_not_joined);
  for (int i = 0; i < 1000; ++i) {
    tx.poll(p.now);
    p.step();
  }
  CHECK(p.b.stack().counters().get(StackCounter::ipv4_drop_multicast_not_joined) > before);
}

TEST_CASE("UDP services: lost datagrams show as missing sequence numbers", "[udp][services][mcast]") {
  Pair p(0.1);
  McastJoin join(p.ub, kG, 5000, Ipv4Addr{kA});  // SSM: only from A
  McastSender tx(p.ua, kG, 5000, 10'000, 64, 1, false, 0);
  REQUIRE(join.start(p.now) == UdpStatus::ok);
  tx.start(p.now);
  for (int i = 0; i < 20'000; ++i) {
    tx.poll(p.now);
    p.step();
  }
  for (int i = 0; i < 10; ++i) p.step();
  const auto& c = join.counters();
  const std::uint64_t sent = tx.counters().datagrams_out.get();
  CHECK(sent == 2000);
  CHECK(c.feed.get() < sent);
  CHECK(c.missing.get() > 0);
  // Every datagram is either received or counted missing, except a loss at
  // the very end, which no later sequence number reveals.
  CHECK(c.feed.get() + c.missing.get() <= sent);
  CHECK(c.feed.get() + c.missing.get() >= sent - 5);
  CHECK(c.late.get() == 0);
}

TEST_CASE("UDP services: echo returns 1- and 1472-byte datagrams byte-exact", "[udp][services][echo]") {
  Pair p;
  UdpEcho echo(p.ub, 7);
  REQUIRE(echo.ok());
  UdpSocket* s = p.ua.open();
  REQUIRE(s->connect(kB, 7) == UdpStatus::ok);
  Pattern::init();
  std::uint64_t allocs = 0;
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{1472}}) {
    const auto data = Pattern::chunk(n, n);
#if USTACK_COUNT_ALLOCS
    const auto before = thread_alloc_count();
#endif
    REQUIRE(s->send(Bytes{data}, p.now) == UdpStatus::ok);
    for (int i = 0; i < 10; ++i) p.step();
#if USTACK_COUNT_ALLOCS
    allocs += thread_alloc_count() - before;
#endif
    auto d = s->recv();
    REQUIRE(d);
    CHECK(d->from == UdpEndpoint{kB, 7});
    CHECK(Vec(d->pkt.data().begin(), d->pkt.data().end()) == Vec(data.begin(), data.end()));
  }
  CHECK(allocs == 0);  // sending, echoing and receiving allocate nothing
  CHECK(echo.counters().datagrams_in.get() == 3);
  CHECK(echo.counters().datagrams_out.get() == 3);
  CHECK(echo.counters().bytes_out.get() == 1 + 100 + 1472);
  CHECK(echo.counters().send_failed.get() == 0);
  s->close();
}

TEST_CASE("UDP services: a stalled publisher skips ahead instead of bursting", "[udp][services][mcast]") {
  Pair p;
  McastSender tx(p.ua, kG, 5000, 1000, 64, 4, false, 0);
  REQUIRE(tx.ok());
  tx.start(p.now);
  tx.poll(p.now);  // slot 0
  CHECK(tx.counters().datagrams_out.get() == 1);
  p.now += 10 * kNsPerSec;  // 10,000 slots late
  tx.poll(p.now);
  CHECK(tx.counters().datagrams_out.get() == 1 + McastSender::kMaxBurst);
  tx.poll(p.now);  // it skipped to the slot due now, not the 9,968 it missed
  CHECK(tx.counters().datagrams_out.get() == 2 + McastSender::kMaxBurst);
  tx.poll(p.now);
  CHECK(tx.counters().datagrams_out.get() == 2 + McastSender::kMaxBurst);
  p.now += kNsPerMs;
  tx.poll(p.now);
  CHECK(tx.counters().datagrams_out.get() == 3 + McastSender::kMaxBurst);
  // Too small or too big for one datagram: refused at construction.
  CHECK(!McastSender(p.ua, kG, 5000, 1000, 23, 1, false, 0).ok());
  CHECK(!McastSender(p.ua, kG, 5000, 1000, 1473, 1, false, 0).ok());
}

TEST_CASE("Multicast steering: IPv4 multicast moves to the owning queue, the rest stays", "[udp][steer]") {
  ScopedPool pool{255};
  struct Feed final : Device {
    DeviceCaps c;
    std::vector<rte_mbuf*> pending;
    const DeviceCaps& caps() const override { return c; }
    std::uint16_t rx_burst(std::span<rte_mbuf*> p, TimeNs) override {
      const std::size_t n = std::min(p.size(), pending.size());
      std::copy_n(pending.begin(), n, p.begin());
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
      return static_cast<std::uint16_t>(n);
    }
    std::uint16_t tx_burst(std::span<rte_mbuf*> p, TimeNs) override { return static_cast<std::uint16_t>(p.size()); }
  } q0, q1;
  McastSteer steer;
  std::string err;
  REQUIRE(steer.init("ut_mcast_steer", SOCKET_ID_ANY, err));
  McastSteerDevice d0(q0, steer, true), d1(q1, steer, false);
  auto frame = [&](Ipv4Addr dst, bool vlan = false) {
    Vec ip = ipv4_datagram(kA, dst, wire::ipproto::kUdp, Vec(8 + 4, 0));
    Vec f = eth_frame(dst.is_multicast() ? wire::multicast_mac(dst) : caps_of(2).mac, caps_of(1).mac,
                      wire::ethertype::kIpv4, ip);
    if (vlan) f.insert(f.begin() + 12, {0x81, 0x00, 0x00, 0x05});
    return packet_of(Bytes{f}, pool.mp).release();
  };
  q1.pending = {frame(kB), frame(kG), frame(Ipv4Addr{224, 0, 0, 1}), frame(kG, true), frame(kB, true)};
  q0.pending = {frame(kB)};
  std::array<rte_mbuf*, 8> got{};
  CHECK(d1.rx_burst(got, 0) == 2);  // the unicast ones stay
  for (std::size_t i = 0; i < 2; ++i) rte_pktmbuf_free(got[i]);
  CHECK(d1.steered_out() == 3);
  CHECK(d0.rx_burst(got, 0) == 4);  // the ring first, then its own queue
  CHECK(d0.steered_in() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(McastSteerDevice::is_ipv4_multicast(got[i]));
  CHECK(!McastSteerDevice::is_ipv4_multicast(got[3]));
  for (std::size_t i = 0; i < 4; ++i) rte_pktmbuf_free(got[i]);
  // Runts and non-IPv4 are not multicast.
  const Vec runt{0x01, 0x00, 0x5e, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x08};
  Packet r = packet_of(Bytes{runt}, pool.mp);
  CHECK(!McastSteerDevice::is_ipv4_multicast(r.get()));
}
