#include "drivers/fault.hpp"

#include <catch2/catch.hpp>
#include <rte_mempool.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <numeric>
#include <vector>

#include "core/bytes.hpp"
#include "drivers/mem_pair.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

using TestPool = test::ScopedPool;

using Frame = std::vector<std::uint8_t>;

Frame frame(std::uint32_t id, std::size_t len = 64) {
  Frame f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = static_cast<std::uint8_t>(i * 13 + id);
  store_be16(f, 12, 0x88b5);
  store_be32(f, 14, id);
  return f;
}
std::uint32_t id_of(const Frame& f) { return load_be32(f, 14); }

std::vector<rte_mbuf*> mbufs(std::uint32_t first, std::uint32_t count, rte_mempool* mp) {
  std::vector<rte_mbuf*> v;
  for (std::uint32_t i = 0; i < count; ++i) v.push_back(test::packet_of(Bytes{frame(first + i)}, mp).release());
  return v;
}

// Offers frames first..first+count-1 to d.tx_burst; frees the refused ones and returns how many were taken.
std::size_t send(Device& d, rte_mempool* mp, std::uint32_t first, std::uint32_t count, TimeNs now) {
  auto pkts = mbufs(first, count, mp);
  const std::uint16_t sent = d.tx_burst(pkts, now);
  for (std::size_t i = sent; i < pkts.size(); ++i) rte_pktmbuf_free(pkts[i]);
  return sent;
}

// Everything d.rx_burst gives at `now`, copied out; the mbufs are freed.
std::vector<Frame> drain(Device& d, TimeNs now, std::size_t burst = 16) {
  std::vector<Frame> out;
  std::vector<rte_mbuf*> pkts(burst);
  for (;;) {
    const std::uint16_t n = d.rx_burst(pkts, now);
    if (n == 0) return out;
    for (std::uint16_t i = 0; i < n; ++i) {
      out.push_back(test::bytes_of(pkts[i]));
      rte_pktmbuf_free(pkts[i]);
    }
  }
}

std::vector<std::uint32_t> ids(const std::vector<Frame>& frames) {
  std::vector<std::uint32_t> v;
  for (const auto& f : frames) v.push_back(id_of(f));
  return v;
}

std::vector<std::uint32_t> iota(std::uint32_t n) {
  std::vector<std::uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

int bit_difference(const Frame& x, const Frame& y) {
  REQUIRE(x.size() == y.size());
  int bits = 0;
  for (std::size_t i = 0; i < x.size(); ++i) bits += std::popcount(static_cast<unsigned>(x[i] ^ y[i]));
  return bits;
}

bool counters_equal(const FaultCounters& x, const FaultCounters& y) {
  return x.passed == y.passed && x.dropped == y.dropped && x.duplicated == y.duplicated &&
         x.reordered == y.reordered && x.corrupted == y.corrupted && x.delayed == y.delayed &&
         x.overflow == y.overflow && x.inner_rejected == y.inner_rejected;
}

// TX faults: frames go down through the injector on pair.a() and come out at pair.b().
// RX faults: frames sent on pair.b() come up through the injector on pair.a().
struct Rig {
  Rig(FaultConfig rx, FaultConfig tx, std::uint64_t seed = 1, std::size_t delay_capacity = 4096,
      std::size_t ring = 1024)
      : pair(ring), inj(pair.a(), seed, rx, tx, delay_capacity) {}
  MemPair pair;
  FaultInjector inj;
};

}  // namespace

TEST_CASE("fault: all rates zero passes everything untouched and in order", "[fault]") {
  TestPool pool(256);
  const unsigned start = pool.avail();
  {
    Rig rig({}, {});
    CHECK(send(rig.inj, pool.mp, 0, 50, 100) == 50);
    const auto tx_out = drain(rig.pair.b(), 100);
    REQUIRE(tx_out.size() == 50);
    for (std::uint32_t i = 0; i < 50; ++i) CHECK(tx_out[i] == frame(i));

    CHECK(send(rig.pair.b(), pool.mp, 100, 50, 100) == 50);
    const auto rx_out = drain(rig.inj, 100);
    REQUIRE(rx_out.size() == 50);
    for (std::uint32_t i = 0; i < 50; ++i) CHECK(rx_out[i] == frame(100 + i));

    for (const FaultCounters* c : {&rig.inj.tx_counters(), &rig.inj.rx_counters()}) {
      CHECK(c->passed == 50);
      CHECK(c->dropped + c->duplicated + c->reordered + c->corrupted + c->delayed + c->overflow == 0);
    }
    CHECK(rig.inj.caps().mac == rig.pair.a().caps().mac);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: drop 1.0 drops everything and still accepts TX", "[fault]") {
  TestPool pool(256);
  const unsigned start = pool.avail();
  {
    FaultConfig all;
    all.drop = 1.0;
    Rig rig(all, all);
    CHECK(send(rig.inj, pool.mp, 0, 40, 0) == 40);  // a lost frame was still sent
    CHECK(drain(rig.pair.b(), 0).empty());
    CHECK(rig.inj.tx_counters().dropped == 40);
    CHECK(rig.inj.tx_counters().passed == 0);

    CHECK(send(rig.pair.b(), pool.mp, 0, 40, 0) == 40);
    CHECK(drain(rig.inj, 0).empty());
    CHECK(rig.inj.rx_counters().dropped == 40);
    CHECK(rig.inj.rx_counters().passed == 0);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: duplicate 1.0 delivers every frame twice, byte-exact", "[fault]") {
  TestPool pool(256);
  const unsigned start = pool.avail();
  {
    FaultConfig dup;
    dup.duplicate = 1.0;
    Rig rig(dup, dup);
    CHECK(send(rig.inj, pool.mp, 0, 20, 0) == 20);
    const auto out = drain(rig.pair.b(), 0);
    REQUIRE(out.size() == 40);
    for (std::uint32_t i = 0; i < 20; ++i) {
      CHECK(out[2 * i] == frame(i));
      CHECK(out[2 * i + 1] == frame(i));
    }
    CHECK(rig.inj.tx_counters().duplicated == 20);
    CHECK(rig.inj.tx_counters().passed == 40);

    CHECK(send(rig.pair.b(), pool.mp, 0, 5, 0) == 5);
    CHECK(ids(drain(rig.inj, 0)) == std::vector<std::uint32_t>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4});
    CHECK(rig.inj.rx_counters().duplicated == 5);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: a duplicate that cannot be allocated is not counted", "[fault]") {
  TestPool pool(4);
  const unsigned start = pool.avail();
  {
    FaultConfig dup;
    dup.duplicate = 1.0;
    Rig rig({}, dup);
    // All four mbufs of the pool are in flight: no copy can be made.
    CHECK(send(rig.inj, pool.mp, 0, 4, 0) == 4);
    CHECK(ids(drain(rig.pair.b(), 0)) == std::vector<std::uint32_t>{0, 1, 2, 3});
    CHECK(rig.inj.tx_counters().duplicated == 0);
    CHECK(rig.inj.tx_counters().passed == 4);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: corrupt 1.0 flips exactly one bit; 0.0 flips none", "[fault]") {
  TestPool pool(256);
  const unsigned start = pool.avail();
  {
    FaultConfig flip;
    flip.corrupt = 1.0;
    Rig rig(flip, flip, 7);
    CHECK(send(rig.inj, pool.mp, 0, 64, 0) == 64);
    const auto out = drain(rig.pair.b(), 0);
    REQUIRE(out.size() == 64);
    std::vector<std::size_t> where;
    for (std::uint32_t i = 0; i < 64; ++i) {
      CHECK(bit_difference(out[i], frame(i)) == 1);
      for (std::size_t k = 0; k < out[i].size(); ++k)
        if (out[i][k] != frame(i)[k]) where.push_back(k);
    }
    CHECK(rig.inj.tx_counters().corrupted == 64);
    // The byte is chosen at random, not always the same one.
    std::sort(where.begin(), where.end());
    CHECK(std::unique(where.begin(), where.end()) - where.begin() > 10);

    // RX: a checksum the NIC verified before the flip is no longer claimed good.
    auto pkts = mbufs(0, 3, pool.mp);
    for (rte_mbuf* m : pkts) m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    REQUIRE(rig.pair.b().tx_burst(pkts, 0) == 3);
    std::vector<rte_mbuf*> got(8);
    REQUIRE(rig.inj.rx_burst(got, 0) == 3);
    for (int i = 0; i < 3; ++i) {
      CHECK(bit_difference(test::bytes_of(got[i]), frame(static_cast<std::uint32_t>(i))) == 1);
      CHECK((got[i]->ol_flags & (RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK)) == 0);
    }
    rte_pktmbuf_free_bulk(got.data(), 3);
    CHECK(rig.inj.rx_counters().corrupted == 3);
  }
  {
    Rig clean({}, {}, 7);
    CHECK(send(clean.inj, pool.mp, 0, 64, 0) == 64);
    const auto out = drain(clean.pair.b(), 0);
    REQUIRE(out.size() == 64);
    for (std::uint32_t i = 0; i < 64; ++i) CHECK(out[i] == frame(i));
    CHECK(clean.inj.tx_counters().corrupted == 0);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: corrupting a shared buffer leaves the other holder's bytes alone", "[fault]") {
  TestPool pool(16);
  const unsigned start = pool.avail();
  {
    FaultConfig flip;
    flip.corrupt = 1.0;
    Rig rig({}, flip);
    rte_mbuf* m = test::packet_of(Bytes{frame(5)}, pool.mp).release();
    rte_mbuf_refcnt_update(m, 1);  // as a retransmit queue would hold it
    std::vector<rte_mbuf*> one{m};
    REQUIRE(rig.inj.tx_burst(one, 0) == 1);
    const auto out = drain(rig.pair.b(), 0);
    REQUIRE(out.size() == 1);
    CHECK(bit_difference(out[0], frame(5)) == 1);
    CHECK(test::bytes_of(m) == frame(5));
    rte_pktmbuf_free(m);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: reorder 1.0 swaps each packet with the next", "[fault]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    FaultConfig swap;
    swap.reorder = 1.0;
    Rig rig(swap, swap);
    CHECK(send(rig.inj, pool.mp, 0, 5, 0) == 5);
    CHECK(ids(drain(rig.pair.b(), 0)) == std::vector<std::uint32_t>{1, 0, 3, 2});
    CHECK(rig.inj.tx_queued() == 1);  // 4 waits for a packet to follow
    CHECK(send(rig.inj, pool.mp, 5, 1, 10) == 1);
    CHECK(ids(drain(rig.pair.b(), 10)) == std::vector<std::uint32_t>{5, 4});
    CHECK(rig.inj.tx_counters().reordered == 3);
    CHECK(rig.inj.tx_counters().passed == 6);

    CHECK(send(rig.pair.b(), pool.mp, 0, 4, 0) == 4);
    CHECK(ids(drain(rig.inj, 0)) == std::vector<std::uint32_t>{1, 0, 3, 2});
    CHECK(rig.inj.rx_counters().reordered == 2);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: delay releases at the right now, not before", "[fault]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    FaultConfig late;
    late.delay_ns = 1000;
    Rig rig(late, late);
    CHECK(send(rig.inj, pool.mp, 0, 3, 100) == 3);
    CHECK(rig.inj.next_release_time() == TimeNs{1100});
    rig.inj.flush(1099);
    CHECK(drain(rig.pair.b(), 1099).empty());
    CHECK(send(rig.inj, pool.mp, 3, 1, 600) == 1);  // due at 1600
    rig.inj.flush(1100);
    CHECK(ids(drain(rig.pair.b(), 1100)) == std::vector<std::uint32_t>{0, 1, 2});
    CHECK(rig.inj.next_release_time() == TimeNs{1600});
    CHECK(send(rig.inj, pool.mp, 4, 1, 1599) == 1);  // a later send releases nothing early
    CHECK(drain(rig.pair.b(), 1599).empty());
    CHECK(send(rig.inj, pool.mp, 5, 1, 1600) == 1);  // tx_burst itself releases what is due
    CHECK(ids(drain(rig.pair.b(), 1600)) == std::vector<std::uint32_t>{3});
    rig.inj.flush(2599);
    CHECK(ids(drain(rig.pair.b(), 2599)) == std::vector<std::uint32_t>{4});
    CHECK(rig.inj.tx_counters().delayed == 6);
    CHECK(rig.inj.tx_queued() == 1);  // 5, due at 2600, freed by the destructor

    CHECK(send(rig.pair.b(), pool.mp, 10, 2, 0) == 2);
    CHECK(drain(rig.inj, 500).empty());  // pulled from inner, held until 1500
    CHECK(rig.inj.rx_queued() == 2);
    CHECK(drain(rig.inj, 1499).empty());
    CHECK(ids(drain(rig.inj, 1500)) == std::vector<std::uint32_t>{10, 11});
    CHECK(rig.inj.rx_counters().delayed == 2);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: jitter reorders, within [delay, delay + jitter]", "[fault]") {
  TestPool pool(256);
  const unsigned start = pool.avail();
  {
    FaultConfig jit;
    jit.delay_ns = 100;
    jit.jitter_ns = 10'000;
    Rig rig({}, jit, 3);
    CHECK(send(rig.inj, pool.mp, 0, 100, 0) == 100);
    CHECK(drain(rig.pair.b(), 99).empty());
    rig.inj.flush(99);
    CHECK(drain(rig.pair.b(), 99).empty());
    std::vector<std::uint32_t> order;
    for (TimeNs t = 100; t <= 10'100; t += 50) {
      rig.inj.flush(t);
      for (auto id : ids(drain(rig.pair.b(), t))) order.push_back(id);
    }
    REQUIRE(order.size() == 100);  // all out by delay + jitter
    CHECK_FALSE(std::is_sorted(order.begin(), order.end()));
    std::sort(order.begin(), order.end());
    CHECK(order == iota(100));  // a permutation: nothing lost or doubled
    CHECK(rig.inj.tx_counters().delayed == 100);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: a full delay line drops and counts overflow", "[fault]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    FaultConfig late;
    late.delay_ns = 1000;
    Rig rig(late, late, 1, 4);
    // TX: 4 fit, the line is full of packets not yet due, the rest is refused.
    CHECK(send(rig.inj, pool.mp, 0, 10, 0) == 4);
    CHECK(rig.inj.tx_counters().overflow == 6);
    rig.inj.flush(1000);
    CHECK(ids(drain(rig.pair.b(), 1000)) == std::vector<std::uint32_t>{0, 1, 2, 3});

    // RX: frames already taken from inner that do not fit are dropped.
    CHECK(send(rig.pair.b(), pool.mp, 0, 10, 0) == 10);
    CHECK(drain(rig.inj, 0).empty());
    CHECK(rig.inj.rx_counters().overflow == 6);
    CHECK(ids(drain(rig.inj, 1000)) == std::vector<std::uint32_t>{0, 1, 2, 3});
  }
  {
    // Without delay the line drains as it fills: a burst larger than it passes.
    Rig rig({}, {}, 1, 4);
    CHECK(send(rig.inj, pool.mp, 0, 10, 0) == 10);
    CHECK(ids(drain(rig.pair.b(), 0)) == iota(10));
    CHECK(rig.inj.tx_counters().overflow == 0);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("fault: packets inner refuses are freed and counted", "[fault]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    Rig rig({}, {}, 1, 4096, 2);
    CHECK(send(rig.inj, pool.mp, 0, 5, 0) == 5);
    CHECK(rig.inj.tx_counters().passed == 2);
    CHECK(rig.inj.tx_counters().inner_rejected == 3);
    CHECK(ids(drain(rig.pair.b(), 0)) == std::vector<std::uint32_t>{0, 1});
  }
  CHECK(pool.avail() == start);
}

namespace {

struct Run {
  std::vector<Frame> tx_out, rx_out;
  FaultCounters tx, rx;
};

// 300 frames each way in bursts of 10 with every fault enabled.
Run run_mixed(std::uint64_t seed, rte_mempool* mp) {
  FaultConfig mixed;
  mixed.drop = 0.2;
  mixed.duplicate = 0.2;
  mixed.reorder = 0.2;
  mixed.corrupt = 0.2;
  mixed.delay_ns = 50;
  mixed.jitter_ns = 300;
  Rig rig(mixed, mixed, seed);
  Run r;
  for (std::uint32_t burst = 0; burst < 30; ++burst) {
    const TimeNs now = burst * 100;
    REQUIRE(send(rig.inj, mp, burst * 10, 10, now) == 10);
    REQUIRE(send(rig.pair.b(), mp, 1000 + burst * 10, 10, now) == 10);
    for (auto& f : drain(rig.pair.b(), now)) r.tx_out.push_back(std::move(f));
    for (auto& f : drain(rig.inj, now)) r.rx_out.push_back(std::move(f));
  }
  rig.inj.flush(1'000'000);
  for (auto& f : drain(rig.pair.b(), 1'000'000)) r.tx_out.push_back(std::move(f));
  for (auto& f : drain(rig.inj, 1'000'000)) r.rx_out.push_back(std::move(f));
  r.tx = rig.inj.tx_counters();
  r.rx = rig.inj.rx_counters();
  return r;
}

}  // namespace

TEST_CASE("fault: same seed gives the same faults, another seed others", "[fault]") {
  TestPool pool(1023);
  const unsigned start = pool.avail();
  const Run first = run_mixed(42, pool.mp);
  const Run again = run_mixed(42, pool.mp);
  const Run other = run_mixed(43, pool.mp);
  CHECK(pool.avail() == start);

  // Every kind of fault happened, in both directions.
  for (const FaultCounters* c : {&first.tx, &first.rx}) {
    CHECK(c->dropped > 0);
    CHECK(c->duplicated > 0);
    CHECK(c->reordered > 0);
    CHECK(c->corrupted > 0);
    CHECK(c->delayed > 0);
  }
  CHECK(first.tx_out == again.tx_out);
  CHECK(first.rx_out == again.rx_out);
  CHECK(counters_equal(first.tx, again.tx));
  CHECK(counters_equal(first.rx, again.rx));
  CHECK(first.tx_out != other.tx_out);
  CHECK(first.rx_out != other.rx_out);
  // The directions draw from separate streams: the same traffic each way
  // would otherwise meet exactly the same faults.
  CHECK_FALSE(counters_equal(first.tx, first.rx));
}

TEST_CASE("fault: the generator is deterministic and its helpers honour their bounds", "[fault]") {
  SplitMix64 x(9), y(9), z(10);
  std::vector<std::uint64_t> xs, ys, zs;
  for (int i = 0; i < 8; ++i) {
    xs.push_back(x.next());
    ys.push_back(y.next());
    zs.push_back(z.next());
  }
  CHECK(xs == ys);
  CHECK(xs != zs);
  SplitMix64 r(1);
  int hits = 0;
  bool saw_max = false;
  for (int i = 0; i < 10'000; ++i) {
    CHECK_FALSE(r.chance(0.0));
    CHECK(r.chance(1.0));
    hits += r.chance(0.25) ? 1 : 0;
    const auto u = r.upto(3);
    CHECK(u <= 3);
    saw_max = saw_max || u == 3;
  }
  CHECK(hits > 2'200);
  CHECK(hits < 2'800);
  CHECK(saw_max);
  CHECK(r.upto(0) == 0);
}

TEST_CASE("fault: the destructor frees what is delayed or held", "[fault]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    FaultConfig late;
    late.delay_ns = 1'000'000;
    late.reorder = 0.5;
    Rig rig(late, late, 5);
    CHECK(send(rig.inj, pool.mp, 0, 10, 0) == 10);
    CHECK(send(rig.pair.b(), pool.mp, 0, 10, 0) == 10);
    CHECK(drain(rig.inj, 0).empty());
    CHECK(rig.inj.tx_queued() == 10);
    CHECK(rig.inj.rx_queued() == 10);
    CHECK(pool.avail() == start - 20);
  }
  CHECK(pool.avail() == start);
}
