#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <array>
#include <thread>

#include "shim/spsc_ring.hpp"

using ustack::SpscRing;

namespace {

// The producer side of the two-thread tests: pushes 0, 1, ... n - 1 in
// batches of up to B, as the ring allows, yielding when it is full (the
// consumer may share this CPU on a loaded machine).
template <std::size_t B>
void produce(SpscRing<std::uint64_t>& r, std::uint64_t n) {
  std::array<std::uint64_t, B> batch{};
  std::uint64_t next = 0;
  while (next < n) {
    std::size_t k = 0;
    while (k < batch.size() && next + k < n) {
      batch[k] = next + k;
      ++k;
    }
    const std::size_t pushed = r.push(std::span<const std::uint64_t>(batch.data(), k));
    if (pushed == 0) std::this_thread::yield();
    next += pushed;
  }
}

}  // namespace

TEST_CASE("SpscRing: capacity rounds up to a power of two", "[shim]") {
  CHECK(SpscRing<int>(1).capacity() == 2);
  CHECK(SpscRing<int>(5).capacity() == 8);
  CHECK(SpscRing<int>(64).capacity() == 64);
}

TEST_CASE("SpscRing: fills, refuses when full, drains in order", "[shim]") {
  SpscRing<std::uint32_t> r(8);
  for (std::uint32_t i = 0; i < 8; ++i) CHECK(r.push(i));
  CHECK_FALSE(r.push(99u));
  CHECK(r.size() == 8);
  std::array<std::uint32_t, 5> out{};
  CHECK(r.pop(out) == 5);
  CHECK(out == std::array<std::uint32_t, 5>{0, 1, 2, 3, 4});
  // Partial push: three fit after five left... five slots are free now.
  std::array<std::uint32_t, 7> in{10, 11, 12, 13, 14, 15, 16};
  CHECK(r.push(in) == 5);
  std::array<std::uint32_t, 16> all{};
  CHECK(r.pop(all) == 8);
  CHECK(all[0] == 5);
  CHECK(all[2] == 7);
  CHECK(all[3] == 10);
  CHECK(all[7] == 14);
  CHECK(r.empty());
  std::uint32_t x;
  CHECK_FALSE(r.pop(x));
}

TEST_CASE("SpscRing: two threads, every element exactly once and in order", "[shim]") {
  SpscRing<std::uint64_t> r(256);
  constexpr std::uint64_t kN = 2'000'000;
  std::thread producer([&] { produce<13>(r, kN); });
  std::uint64_t expect = 0, bad = 0;
  std::array<std::uint64_t, 17> out{};
  while (expect < kN) {
    const std::size_t n = r.pop(out);
    if (n == 0) std::this_thread::yield();  // empty: let the producer run
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != expect++;
  }
  producer.join();
  CHECK(bad == 0);
  CHECK(r.empty());
}

// The lcore leaves a command it cannot run yet in the ring (ShimLcore::poll:
// peek a batch, advance past the ones that ran): peek must not take, and
// advance must take exactly what it is told, or a stalled send is lost or
// run twice.
TEST_CASE("SpscRing: peek does not consume; advance takes exactly n", "[shim]") {
  SpscRing<std::uint32_t> r(8);
  for (std::uint32_t i = 0; i < 5; ++i) REQUIRE(r.push(i));
  std::array<std::uint32_t, 8> out{};
  // Peeking again and again sees the same elements; nothing leaves the ring.
  for (int k = 0; k < 3; ++k) {
    out.fill(99);
    REQUIRE(r.peek(out) == 5);
    CHECK(out[0] == 0);
    CHECK(out[4] == 4);
    CHECK(out[5] == 99);  // untouched beyond what is there
    CHECK(r.size() == 5);
    CHECK(r.consumed() == 0);
  }
  // A peek into a smaller span sees a prefix.
  std::array<std::uint32_t, 2> two{};
  REQUIRE(r.peek(two) == 2);
  CHECK(two == std::array<std::uint32_t, 2>{0, 1});
  // advance(0) takes nothing.
  r.advance(0);
  CHECK(r.size() == 5);
  CHECK(r.consumed() == 0);
  // A partial advance: the rest is presented again, in order, first.
  r.advance(2);
  CHECK(r.size() == 3);
  CHECK(r.consumed() == 2);
  out.fill(99);
  REQUIRE(r.peek(out) == 3);
  CHECK(out[0] == 2);
  CHECK(out[1] == 3);
  CHECK(out[2] == 4);
  r.advance(1);
  std::uint32_t x = 0;
  REQUIRE(r.pop(x));  // pop is peek + advance
  CHECK(x == 3);
  REQUIRE(r.peek(out) == 1);
  CHECK(out[0] == 4);
  r.advance(1);
  CHECK(r.empty());
  CHECK(r.peek(out) == 0);
  CHECK_FALSE(r.pop(x));
}

TEST_CASE("SpscRing: room comes back only with advance, not with peek", "[shim]") {
  SpscRing<std::uint32_t> r(4);
  for (std::uint32_t i = 0; i < 4; ++i) REQUIRE(r.push(i));
  CHECK_FALSE(r.has_room(1));
  std::array<std::uint32_t, 4> out{};
  REQUIRE(r.peek(out) == 4);
  // The producer must not overwrite what the consumer has only peeked at.
  CHECK_FALSE(r.has_room(1));
  CHECK_FALSE(r.push(100u));
  r.advance(1);
  CHECK(r.has_room(1));
  CHECK_FALSE(r.has_room(2));
  REQUIRE(r.push(100u));
  CHECK_FALSE(r.push(101u));
  REQUIRE(r.peek(out) == 4);
  CHECK(out == std::array<std::uint32_t, 4>{1, 2, 3, 100});
}

// Peek/advance interleaved with pushes over many wrap-arounds of a small
// ring, the consumer advancing by a varying part of what it peeked (as the
// lcore does when a command stalls): every element is seen in order, and
// taken exactly once.
TEST_CASE("SpscRing: partial advances interleaved with pushes across wrap-around", "[shim]") {
  SpscRing<std::uint64_t> r(8);
  std::uint64_t next_push = 0, next_take = 0;
  std::uint64_t seed = 12345;
  auto rnd = [&](std::uint64_t n) {  // small LCG: deterministic, no <random> state to share
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  std::array<std::uint64_t, 8> batch{};
  std::array<std::uint64_t, 8> out{};
  bool in_order = true, exact = true;
  for (int round = 0; round < 20000; ++round) {
    // Push a batch of 0..5 (a prefix goes in when the ring is full).
    const std::size_t k = rnd(6);
    for (std::size_t i = 0; i < k; ++i) batch[i] = next_push + i;
    const std::size_t pushed = r.push(std::span<const std::uint64_t>(batch.data(), k));
    exact &= pushed <= k && r.size() <= r.capacity();
    next_push += pushed;
    // Peek up to 0..8, possibly twice, then take a part of it.
    const std::size_t want = rnd(9);
    const std::size_t n = r.peek(std::span<std::uint64_t>(out.data(), want));
    exact &= n == std::min<std::uint64_t>(want, next_push - next_take);
    for (std::size_t i = 0; i < n; ++i) in_order &= out[i] == next_take + i;
    if (rnd(4) == 0) {  // a second peek sees the same prefix
      std::array<std::uint64_t, 8> again{};
      const std::size_t m = r.peek(std::span<std::uint64_t>(again.data(), want));
      exact &= m >= n;
      for (std::size_t i = 0; i < n; ++i) in_order &= again[i] == out[i];
    }
    const std::size_t take = n ? rnd(n + 1) : 0;
    r.advance(take);
    next_take += take;
    exact &= r.consumed() == next_take && r.size() == next_push - next_take;
  }
  CHECK(in_order);
  CHECK(exact);
  CHECK(next_push > 10 * r.capacity());  // many wrap-arounds
  // Drain the rest: still in order.
  bool rest_in_order = true;
  while (next_take < next_push) {
    const std::size_t n = r.peek(out);
    REQUIRE(n > 0);
    for (std::size_t i = 0; i < n; ++i) rest_in_order &= out[i] == next_take + i;
    r.advance(n);
    next_take += n;
  }
  CHECK(rest_in_order);
  CHECK(r.empty());
}

// Two threads: the consumer peeks a batch and advances by only part of it
// (sometimes none), as a stalling lcore does; the producer pushes as the
// ring allows. Every element is taken exactly once, in order. Both sides
// yield when they cannot move: a 16-slot ring hands over often, and on a
// loaded machine two spinning threads may share one CPU.
TEST_CASE("SpscRing: two threads, the consumer advancing by part of each peek", "[shim]") {
  SpscRing<std::uint64_t> r(16);
  constexpr std::uint64_t kN = 200'000;
  std::thread producer([&] { produce<7>(r, kN); });
  std::uint64_t expect = 0, bad = 0, i = 0;
  std::array<std::uint64_t, 9> out{};
  while (expect < kN) {
    const std::size_t n = r.peek(out);
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    for (std::size_t j = 0; j < n; ++j) bad += out[j] != expect + j;
    const std::size_t take = ++i % 3 == 0 ? 0 : i % (n + 1);
    r.advance(take);
    expect += take;
  }
  producer.join();
  CHECK(bad == 0);
  CHECK(r.empty());
}

// emplace() and front(): the shim's fast paths write an element straight
// into its slot and read it where it lies. A full ring does not call the
// fill; front(i) sees exactly the elements pushed and not yet taken.
TEST_CASE("SpscRing: emplace fills in place, refuses when full; front reads without taking", "[shim]") {
  SpscRing<std::uint32_t> r(4);
  int calls = 0;
  for (std::uint32_t i = 0; i < 4; ++i) CHECK(r.emplace([&](std::uint32_t& v) { v = 10 + i, ++calls; }));
  CHECK_FALSE(r.emplace([&](std::uint32_t& v) { v = 99, ++calls; }));
  CHECK(calls == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    REQUIRE(r.front(i) != nullptr);
    CHECK(*r.front(i) == 10 + i);
  }
  CHECK(r.front(4) == nullptr);
  r.advance(3);
  REQUIRE(r.front(0) != nullptr);
  CHECK(*r.front(0) == 13);
  CHECK(r.front(1) == nullptr);
  // Room again, and the slots reused across the wrap.
  CHECK(r.emplace([](std::uint32_t& v) { v = 20; }));
  CHECK(r.emplace([](std::uint32_t& v) { v = 21; }));
  CHECK(r.emplace([](std::uint32_t& v) { v = 22; }));
  CHECK_FALSE(r.emplace([](std::uint32_t& v) { v = 23; }));
  std::array<std::uint32_t, 8> out{};
  CHECK(r.pop(out) == 4);
  CHECK(out[0] == 13);
  CHECK(out[3] == 22);
  CHECK(r.front(0) == nullptr);
}

// Two threads with an element of two cache lines, as the shim's: every
// byte of each element the consumer reads in place is the one the producer
// wrote for it (a torn or stale slot shows), and the consumer advances by
// part of what it saw, as the lcore does when a command must wait.
TEST_CASE("SpscRing: two threads, two-line elements written and read in place", "[shim]") {
  struct Msg {
    std::uint64_t n;
    std::uint8_t bytes[112];
  };
  SpscRing<Msg> r(32);
  constexpr std::uint64_t kN = 200'000;
  const auto byte = [](std::uint64_t n, std::size_t k) { return static_cast<std::uint8_t>(n * 7 + k * 13); };
  std::thread producer([&] {
    for (std::uint64_t next = 0; next < kN;) {
      if (r.emplace([&](Msg& m) {
            m.n = next;
            for (std::size_t k = 0; k < sizeof m.bytes; ++k) m.bytes[k] = byte(next, k);
          }))
        ++next;
      else
        std::this_thread::yield();
    }
  });
  std::uint64_t expect = 0, bad = 0, i = 0;
  while (expect < kN) {
    std::size_t seen = 0;
    for (const Msg* m; seen < 9 && (m = r.front(seen)) != nullptr; ++seen) {
      bad += m->n != expect + seen;
      for (std::size_t k = 0; k < sizeof m->bytes; ++k) bad += m->bytes[k] != byte(expect + seen, k);
    }
    if (seen == 0) {
      std::this_thread::yield();
      continue;
    }
    const std::size_t take = ++i % 4 == 0 ? 0 : i % (seen + 1);
    r.advance(take);
    expect += take;
  }
  producer.join();
  CHECK(bad == 0);
  CHECK(r.empty());
}
