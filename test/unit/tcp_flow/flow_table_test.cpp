// The flow table: a fixed-capacity keyed open-addressed map that agrees with
// std::unordered_map over long random operation sequences, refuses cleanly
// when full, and never allocates after construction.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "tcp/flow_table.hpp"
#include "tcp/isn.hpp"
#include "tcp/rss.hpp"
#include "tcp/syncookie.hpp"

#if USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

Secret key_of(std::uint8_t seed) {
  Secret k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return k;
}

// Tuple number i of a universe: a server with many clients, so tuples differ
// in few bits (the realistic and the adversarial case for a weak hash).
FourTuple nth(std::uint32_t i) {
  return FourTuple{Ipv4Addr{10, 0, 0, 1}, Ipv4Addr{static_cast<std::uint32_t>(0xc6336400u + (i >> 12))}, 443,
                   static_cast<std::uint16_t>(32768 + (i & 0xfff))};
}

struct TupleHash {
  std::size_t operator()(const FourTuple& t) const {
    return (std::size_t{t.local.v} * 1000003u) ^ (std::size_t{t.remote.v} << 1) ^
           (std::size_t{t.local_port} << 17) ^ t.remote_port;
  }
};

}  // namespace

TEST_CASE("Flow table sizes its probe array to at least twice the capacity", "[flow]") {
  CHECK(TupleMap(1000, key_of(1)).slot_count() == 2048);
  CHECK(TupleMap(1024, key_of(1)).slot_count() == 2048);
  CHECK(TupleMap(1, key_of(1)).slot_count() == 2);
  const TupleMap zero(0, key_of(1));
  CHECK(zero.capacity() == 1);
  const FlowTable ft(FlowTableConfig{500, 8}, key_of(1));
  CHECK(ft.capacity() == 500);
  CHECK(ft.listener_capacity() == 8);
  CHECK(ft.size() == 0);
}

TEST_CASE("Flow table fills to capacity, then refuses cleanly", "[flow]") {
  for (const std::uint32_t cap : {1u, 2u, 3u, 100u, 1000u}) {
    INFO("capacity " << cap);
    FlowTable ft(FlowTableConfig{cap, 4}, key_of(2));
    for (std::uint32_t i = 0; i < cap; ++i) REQUIRE(ft.insert(nth(i), i * 7) == InsertResult::ok);
    CHECK(ft.size() == cap);
    CHECK(ft.insert(nth(cap), 1) == InsertResult::full);
    CHECK(ft.insert(nth(cap + 1), 1) == InsertResult::full);
    CHECK(ft.insert(nth(0), 99) == InsertResult::exists);  // a duplicate still says so
    CHECK(ft.find(nth(0)) == 0u);                           // and keeps its value
    CHECK(ft.size() == cap);
    for (std::uint32_t i = 0; i < cap; ++i) CHECK(ft.find(nth(i)) == i * 7);
    CHECK_FALSE(ft.find(nth(cap)));
    // Erasing one makes room for exactly one.
    CHECK(ft.erase(nth(cap / 2)));
    CHECK_FALSE(ft.erase(nth(cap / 2)));
    CHECK(ft.insert(nth(cap), 5) == InsertResult::ok);
    CHECK(ft.insert(nth(cap + 1), 6) == InsertResult::full);
    CHECK(ft.find(nth(cap)) == 5u);
  }
}

TEST_CASE("Flow table refuses the empty-slot marker as a value", "[flow]") {
  TupleMap m(4, key_of(3));
  CHECK(m.insert(nth(1), TupleMap::kNoValue) == InsertResult::invalid);
  CHECK(m.size() == 0);
  CHECK_FALSE(m.find(nth(1)));
}

TEST_CASE("Flow table lookups stay correct while erasing in random order", "[flow]") {
  constexpr std::uint32_t kCap = 4096;
  TupleMap m(kCap, key_of(4));
  std::vector<std::uint32_t> order(kCap);
  for (std::uint32_t i = 0; i < kCap; ++i) {
    order[i] = i;
    REQUIRE(m.insert(nth(i), i) == InsertResult::ok);
  }
  std::mt19937 rng(9293);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> present(kCap, true);
  int wrong = 0;
  for (std::size_t n = 0; n < order.size(); ++n) {
    REQUIRE(m.erase(nth(order[n])));
    present[order[n]] = false;
    // After each erase every key is (still) found or (now) absent. Checking
    // all keys each time is quadratic; check all every 256th erase and 128
    // others (by tuple number, so scattered over the slots) in between.
    const bool full_check = n % 256 == 0 || n + 1 == order.size();
    const std::uint32_t lo = full_check ? 0 : (order[n] > 64 ? order[n] - 64 : 0);
    const std::uint32_t hi = full_check ? kCap : std::min(kCap, order[n] + 64);
    for (std::uint32_t i = lo; i < hi; ++i) {
      const auto v = m.find(nth(i));
      if (present[i] ? v != i : v.has_value()) ++wrong;
    }
  }
  CHECK(wrong == 0);
  CHECK(m.size() == 0);
}

TEST_CASE("Flow table agrees with std::unordered_map over a long random sequence", "[flow]") {
  // A universe about 3x the capacity keeps the table mostly full, so inserts
  // hit `full`, `exists` and `ok`, and probe runs are long.
  for (const std::uint32_t cap : {7u, 64u, 1000u}) {
    INFO("capacity " << cap);
    TupleMap m(cap, key_of(static_cast<std::uint8_t>(cap)));
    std::unordered_map<FourTuple, std::uint32_t, TupleHash> ref;
    std::mt19937_64 rng(cap * 6191);
    const std::uint32_t universe = cap * 3;
    std::uint64_t ops[3] = {};
    for (int step = 0; step < 300'000; ++step) {
      const FourTuple k = nth(static_cast<std::uint32_t>(rng() % universe));
      switch (rng() % 3) {
        case 0: {
          const auto v = static_cast<std::uint32_t>(rng() % 1'000'000);
          const InsertResult r = m.insert(k, v);
          InsertResult expect = InsertResult::ok;
          if (ref.count(k)) expect = InsertResult::exists;
          else if (ref.size() == cap) expect = InsertResult::full;
          REQUIRE(r == expect);
          if (r == InsertResult::ok) ref.emplace(k, v);
          ++ops[static_cast<int>(r)];
          break;
        }
        case 1:
          REQUIRE(m.erase(k) == (ref.erase(k) == 1));
          break;
        default: {
          const auto it = ref.find(k);
          const auto v = m.find(k);
          REQUIRE(v.has_value() == (it != ref.end()));
          if (v) REQUIRE(*v == it->second);
        }
      }
      REQUIRE(m.size() == ref.size());
      if (step % 50'000 == 0) {
        for (std::uint32_t i = 0; i < universe; ++i) {
          const auto it = ref.find(nth(i));
          REQUIRE(m.find(nth(i)) == (it == ref.end() ? std::nullopt : std::optional(it->second)));
        }
      }
    }
    // Every outcome was exercised.
    CHECK(ops[0] > 1000);
    CHECK(ops[1] > 1000);
    CHECK(ops[2] > 1000);
  }
}

TEST_CASE("Listeners: a bound address wins over the wildcard", "[flow]") {
  FlowTable ft(FlowTableConfig{16, 3}, key_of(5));
  const Ipv4Addr a{10, 0, 0, 1};
  const Ipv4Addr b{10, 0, 0, 2};
  CHECK(ft.add_listener(Ipv4Addr{}, 80, 1) == InsertResult::ok);
  CHECK(ft.add_listener(a, 80, 2) == InsertResult::ok);
  CHECK(ft.add_listener(a, 443, 3) == InsertResult::ok);
  CHECK(ft.add_listener(b, 443, 4) == InsertResult::full);
  CHECK(ft.add_listener(a, 80, 9) == InsertResult::exists);
  CHECK(ft.listener_count() == 3);

  CHECK(ft.find_listener(a, 80) == 2u);
  CHECK(ft.find_listener(b, 80) == 1u);  // the wildcard
  CHECK(ft.find_listener(a, 443) == 3u);
  CHECK_FALSE(ft.find_listener(b, 443));
  CHECK_FALSE(ft.find_listener(a, 8080));

  CHECK(ft.remove_listener(a, 80));
  CHECK(ft.find_listener(a, 80) == 1u);
  CHECK(ft.remove_listener(Ipv4Addr{}, 80));
  CHECK_FALSE(ft.find_listener(a, 80));
  CHECK_FALSE(ft.remove_listener(Ipv4Addr{}, 80));

  // Listeners and connections are separate tables: a connection whose
  // remote is 0.0.0.0:0 (impossible on the wire) does not shadow a listener.
  CHECK(ft.insert(FourTuple{a, Ipv4Addr{}, 443, 0}, 77) == InsertResult::ok);
  CHECK(ft.find_listener(a, 443) == 3u);
  CHECK(ft.size() == 1);
}

#if USTACK_COUNT_ALLOCS
TEST_CASE("Nothing on the per-segment path allocates", "[flow][alloc]") {
  FlowTable ft(FlowTableConfig{2048, 16}, key_of(8));
  const IsnGenerator isn(key_of(9));
  const SynCookies cookies(key_of(10));
  std::vector<std::uint16_t> reta(128);
  fill_reta(reta, 4);
  std::mt19937 rng(1);

  // The counter does see allocations in this binary.
  const std::uint64_t c0 = thread_alloc_count();
  auto* probe = new std::uint64_t(1);
  asm volatile("" : : "r"(probe) : "memory");  // keep the allocation from being elided
  CHECK(thread_alloc_count() == c0 + 1);
  delete probe;

  const std::uint64_t before = thread_alloc_count();
  std::uint64_t sink = 0;
  for (int i = 0; i < 200'000; ++i) {
    const FourTuple t = nth(rng() % 6000);
    switch (rng() % 3) {
      case 0: sink += static_cast<std::uint64_t>(ft.insert(t, static_cast<std::uint32_t>(i))); break;
      case 1: sink += ft.erase(t); break;
      default: sink += ft.find(t).value_or(0);
    }
    sink += ft.find_listener(t.local, t.local_port).value_or(0);
    if (i % 16 == 0) {
      sink += isn.next(t, static_cast<TimeNs>(i) * kNsPerUs);
      const std::uint32_t c = cookies.make(t, 5, 1460, static_cast<TimeNs>(i) * kNsPerMs);
      sink += cookies.check(t, 5, c, static_cast<TimeNs>(i) * kNsPerMs).value_or(0);
      sink += pick_source_port(t.local, t.remote, t.remote_port, 1, reta, kMicrosoftRssKey, PortRange{},
                               static_cast<std::uint16_t>(i))
                  .value_or(0);
    }
  }
  const std::uint64_t allocs = thread_alloc_count() - before;
  CHECK(allocs == 0);
  CHECK(sink != 0);
}
#endif
