#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <array>
#include <thread>

#include "shim/spsc_ring.hpp"

using ustack::SpscRing;

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
  std::thread producer([&] {
    std::array<std::uint64_t, 13> batch{};
    std::uint64_t next = 0;
    while (next < kN) {
      std::size_t k = 0;
      while (k < batch.size() && next + k < kN) {
        batch[k] = next + k;
        ++k;
      }
      next += r.push(std::span<const std::uint64_t>(batch.data(), k));
    }
  });
  std::uint64_t expect = 0, bad = 0;
  std::array<std::uint64_t, 17> out{};
  while (expect < kN) {
    const std::size_t n = r.pop(out);
    for (std::size_t i = 0; i < n; ++i) bad += out[i] != expect++;
  }
  producer.join();
  CHECK(bad == 0);
  CHECK(r.empty());
}
