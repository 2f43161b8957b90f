// Toeplitz RSS: the specification's verification vectors, the symmetric
// key's symmetry, and source ports whose replies land on a chosen queue.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "tcp/rss.hpp"

using namespace ustack;
using namespace ustack::tcp;

namespace {

// "Verifying the RSS hash calculation" (Microsoft RSS specification; the
// same table is the "RSS Verification Suite" of Intel's 82599 and I210
// datasheets), IPv4 rows, under kMicrosoftRssKey.
struct Vector {
  Ipv4Addr src;
  std::uint16_t sport;
  Ipv4Addr dst;
  std::uint16_t dport;
  std::uint32_t ipv4;     // addresses only
  std::uint32_t ipv4_l4;  // addresses and ports
};
const Vector kVectors[] = {
    {{66, 9, 149, 187}, 2794, {161, 142, 100, 80}, 1766, 0x323e8fc2, 0x51ccc178},
    {{199, 92, 111, 2}, 14230, {65, 69, 140, 83}, 4739, 0xd718262a, 0xc626b0ea},
    {{24, 19, 198, 95}, 12898, {12, 22, 207, 184}, 38024, 0xd2d0a5de, 0x5c2b394a},
    {{38, 27, 205, 30}, 48228, {209, 142, 163, 6}, 2217, 0x82989176, 0xafc7327f},
    {{153, 39, 163, 191}, 44251, {202, 188, 127, 2}, 1303, 0x5d1809c5, 0x10e828a2},
};

std::vector<std::uint16_t> reta_for(std::uint16_t nqueues, std::size_t size = 128) {
  std::vector<std::uint16_t> reta(size);
  fill_reta(reta, nqueues);
  return reta;
}

}  // namespace

TEST_CASE("Toeplitz matches the RSS verification suite (IPv4)", "[rss]") {
  for (const Vector& v : kVectors) {
    INFO(v.src.to_string() << ":" << v.sport << " -> " << v.dst.to_string() << ":" << v.dport);
    CHECK(rss_hash_ipv4(kMicrosoftRssKey, v.src, v.dst) == v.ipv4);
    CHECK(rss_hash_ipv4_l4(kMicrosoftRssKey, v.src, v.dst, v.sport, v.dport) == v.ipv4_l4);
  }
}

TEST_CASE("Toeplitz of raw bytes: the first window and linearity", "[rss]") {
  const std::vector<std::uint8_t> key(kMicrosoftRssKey.begin(), kMicrosoftRssKey.end());
  // A single set first bit selects the key's first 32 bits.
  const std::uint8_t one[] = {0x80, 0, 0, 0};
  CHECK(toeplitz(key, one) == 0x6d5a56dau);
  // The last bit of a 12-byte input selects key bits 95..126 (bytes 11..15).
  std::uint8_t last[12] = {};
  last[11] = 0x01;
  CHECK(toeplitz(key, last) == (((0x3du & 1u) << 31) | (0x43a38fb0u >> 1)));
  CHECK(toeplitz(key, std::span<const std::uint8_t>{}) == 0);
  // hash(a ^ b) == hash(a) ^ hash(b).
  std::mt19937 rng(3);
  for (int i = 0; i < 1000; ++i) {
    std::uint8_t a[12], b[12], x[12];
    for (int j = 0; j < 12; ++j) {
      a[j] = static_cast<std::uint8_t>(rng());
      b[j] = static_cast<std::uint8_t>(rng());
      x[j] = a[j] ^ b[j];
    }
    CHECK(toeplitz(key, x) == (toeplitz(key, a) ^ toeplitz(key, b)));
  }
}

TEST_CASE("The symmetric key hashes both directions of a flow alike", "[rss]") {
  std::mt19937 rng(0x6d5a);
  int asymmetric_default = 0;
  for (int i = 0; i < 10'000; ++i) {
    const Ipv4Addr a{static_cast<std::uint32_t>(rng())};
    const Ipv4Addr b{static_cast<std::uint32_t>(rng())};
    const auto pa = static_cast<std::uint16_t>(rng());
    const auto pb = static_cast<std::uint16_t>(rng());
    REQUIRE(rss_hash_ipv4_l4(kSymmetricRssKey, a, b, pa, pb) ==
            rss_hash_ipv4_l4(kSymmetricRssKey, b, a, pb, pa));
    REQUIRE(rss_hash_ipv4(kSymmetricRssKey, a, b) == rss_hash_ipv4(kSymmetricRssKey, b, a));
    if (rss_hash_ipv4_l4(kMicrosoftRssKey, a, b, pa, pb) != rss_hash_ipv4_l4(kMicrosoftRssKey, b, a, pb, pa))
      ++asymmetric_default;
  }
  // The verification key is not symmetric: that is why ports must be chosen.
  CHECK(asymmetric_default > 9'900);
}

TEST_CASE("ReplyHash equals the full hash of the reply for every local port", "[rss]") {
  const Ipv4Addr local{10, 1, 2, 3};
  const Ipv4Addr remote{203, 0, 113, 77};
  for (const RssKey& key : {kMicrosoftRssKey, kSymmetricRssKey}) {
    const ReplyHash h(key, local, remote, 8443);
    int wrong = 0;
    for (std::uint32_t p = 0; p <= 0xffff; ++p) {
      const auto port = static_cast<std::uint16_t>(p);
      if (h(port) != rss_hash_ipv4_l4(key, remote, local, 8443, port)) ++wrong;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("queue_of indexes the RETA with the hash's low bits", "[rss]") {
  const auto reta = reta_for(3, 64);
  CHECK(queue_of(0, reta) == 0);
  CHECK(queue_of(1, reta) == 1);
  CHECK(queue_of(5, reta) == 2);
  CHECK(queue_of(64 + 4, reta) == 1);
  CHECK(queue_of(0xffffffffu, reta) == 63 % 3);
  CHECK(queue_of(12345, std::span<const std::uint16_t>{}) == 0);
}

TEST_CASE("pick_source_port finds ports whose replies land on our queue, 1..8 queues", "[rss]") {
  const Ipv4Addr local{10, 0, 0, 5};
  const Ipv4Addr remotes[] = {{10, 0, 0, 9}, {198, 51, 100, 200}, {8, 8, 4, 4}};
  const std::uint16_t rports[] = {80, 443, 5201};
  const PortRange range{};  // 49152..65535
  for (const RssKey& key : {kMicrosoftRssKey, kSymmetricRssKey}) {
    const bool symmetric = key == kSymmetricRssKey;
    for (std::uint16_t nq = 1; nq <= 8; ++nq) {
      for (const std::size_t reta_size : {std::size_t{64}, std::size_t{128}, std::size_t{512}}) {
        const auto reta = reta_for(nq, reta_size);
        for (std::uint16_t q = 0; q < nq; ++q) {
          for (const Ipv4Addr remote : remotes) {
            for (const std::uint16_t rport : rports) {
              INFO("symmetric " << symmetric << " queues " << nq << " reta " << reta_size << " queue " << q
                                << " remote " << remote.to_string() << ":" << rport);
              const auto p = pick_source_port(local, remote, rport, q, reta, key, range, 50000);
              REQUIRE(p.has_value());
              CHECK(*p >= range.first);
              // The NIC's view of the reply: remote -> local.
              CHECK(queue_of(rss_hash_ipv4_l4(key, remote, local, rport, *p), reta) == q);
              if (symmetric)  // and our own sends hash the same way
                CHECK(queue_of(rss_hash_ipv4_l4(key, local, remote, *p, rport), reta) == q);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("pick_source_port spreads over the range and honours hint and usable", "[rss]") {
  const Ipv4Addr local{10, 0, 0, 5};
  const Ipv4Addr remote{192, 0, 2, 10};
  for (const RssKey& key : {kMicrosoftRssKey, kSymmetricRssKey}) {
    const auto reta = reta_for(8);
    const ReplyHash h(key, local, remote, 443);
    // Each queue owns a fair share of the ephemeral range.
    std::vector<int> per_queue(8);
    for (std::uint32_t p = 49152; p <= 65535; ++p) ++per_queue[queue_of(h(static_cast<std::uint16_t>(p)), reta)];
    for (const int n : per_queue) CHECK(n == 16384 / 8);

    // Successive picks with hint = last + 1 walk distinct ports of queue 3
    // and wrap round the range.
    std::set<std::uint16_t> seen;
    std::uint16_t hint = 65500;
    for (int i = 0; i < 3000; ++i) {
      const auto p = pick_source_port(local, remote, 443, 3, reta, key, PortRange{}, hint);
      REQUIRE(p.has_value());
      REQUIRE(queue_of(h(*p), reta) == 3);
      seen.insert(*p);
      hint = static_cast<std::uint16_t>(*p == 65535 ? 49152 : *p + 1);
    }
    CHECK(seen.size() == 2048);  // all of queue 3's ports, then it cycles
    // A port the caller reports in use is skipped.
    const auto first = pick_source_port(local, remote, 443, 3, reta, key, PortRange{}, 49152);
    REQUIRE(first.has_value());
    const auto second = pick_source_port(local, remote, 443, 3, reta, key, PortRange{}, 49152,
                                         [&](std::uint16_t p) { return p != *first; });
    REQUIRE(second.has_value());
    CHECK(*second > *first);
    CHECK(queue_of(h(*second), reta) == 3);
    // Nothing usable: nullopt.
    CHECK_FALSE(pick_source_port(local, remote, 443, 3, reta, key, PortRange{}, 0,
                                 [](std::uint16_t) { return false; }));
  }
}

TEST_CASE("pick_source_port without a RETA: one queue, every port qualifies", "[rss]") {
  const Ipv4Addr local(10, 0, 0, 1), remote(10, 0, 0, 2);
  const std::span<const std::uint16_t> none;
  CHECK(pick_source_port(local, remote, 443, 0, none, kSymmetricRssKey, PortRange{}, 50000) == 50000);
  CHECK(pick_source_port(local, remote, 443, 0, none, kSymmetricRssKey, PortRange{}, 0) == 49152);
  // The hint wraps round the range; usable() still decides.
  CHECK(pick_source_port(local, remote, 443, 0, none, kSymmetricRssKey, PortRange{}, 65535,
                         [](std::uint16_t p) { return p != 65535; }) == 49152);
  CHECK_FALSE(pick_source_port(local, remote, 443, 0, none, kSymmetricRssKey, PortRange{100, 101}, 0,
                               [](std::uint16_t) { return false; }));
  // No queue but 0 exists.
  CHECK_FALSE(pick_source_port(local, remote, 443, 1, none, kSymmetricRssKey, PortRange{}, 50000));
}

TEST_CASE("pick_source_port reports when the range has no port for the queue", "[rss]") {
  const Ipv4Addr local{10, 0, 0, 5};
  const Ipv4Addr remote{192, 0, 2, 10};
  const auto reta = reta_for(8);
  const ReplyHash h(kMicrosoftRssKey, local, remote, 443);
  const std::uint16_t port = 50000;
  const std::uint16_t its_queue = queue_of(h(port), reta);
  const std::uint16_t other = static_cast<std::uint16_t>((its_queue + 1) % 8);
  CHECK(pick_source_port(local, remote, 443, its_queue, reta, kMicrosoftRssKey, PortRange{port, port}, 0) ==
        port);
  CHECK_FALSE(pick_source_port(local, remote, 443, other, reta, kMicrosoftRssKey, PortRange{port, port}, 0));
  CHECK_FALSE(pick_source_port(local, remote, 443, its_queue, reta, kMicrosoftRssKey, PortRange{2, 1}, 0));
  // A queue the RETA never names.
  CHECK_FALSE(pick_source_port(local, remote, 443, 9, reta, kMicrosoftRssKey, PortRange{}, 0));
}
