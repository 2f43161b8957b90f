// RSS decisions of the ethdev driver (drivers/ethdev_rss.*): which hash
// functions and key to configure for what a PMD offers, the RETA to program,
// and what a read-back state means for TCP. Pure: no port is opened.
#include "drivers/ethdev_rss.hpp"

#include <catch2/catch.hpp>
#include <rte_ethdev.h>

#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

#include "tcp/rss.hpp"

using namespace ustack;

namespace {

constexpr std::uint64_t kAllHf = RTE_ETH_RSS_PROTO_MASK;
constexpr std::uint64_t kOurHf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

std::vector<std::uint8_t> bytes_of(std::span<const std::uint8_t> k) { return {k.begin(), k.end()}; }

// A port that did everything we asked: symmetric key, table i % n, IPv4 TCP/UDP hashed.
RssReadback good_readback(std::uint16_t nqueues, std::uint16_t reta_size = 128) {
  RssReadback rb;
  rb.nqueues = nqueues;
  rb.enabled = true;
  rb.hf = kOurHf;
  rb.key = symmetric_rss_key(40);
  rb.reta = plan_reta(reta_size, nqueues);
  return rb;
}

}  // namespace

TEST_CASE("the driver's symmetric key is tcp::kSymmetricRssKey at any length", "[rss]") {
  CHECK(symmetric_rss_key(40) == bytes_of(tcp::kSymmetricRssKey));
  const auto k52 = symmetric_rss_key(52);  // i40e's key size
  REQUIRE(k52.size() == 52);
  CHECK(std::equal(tcp::kSymmetricRssKey.begin(), tcp::kSymmetricRssKey.end(), k52.begin()));
  for (std::size_t i = 2; i < k52.size(); ++i) CHECK(k52[i] == k52[i - 2]);
}

TEST_CASE("plan_rss_config: one queue needs no RSS", "[rss]") {
  const RssConfigPlan p = plan_rss_config(1, kAllHf, 40);
  CHECK_FALSE(p.enable);
  CHECK(p.hf == 0);
  CHECK(p.key.empty());
  CHECK(p.note.empty());
}

TEST_CASE("plan_rss_config: a PMD without RSS (net_af_packet, net_memif) leaves it off with a note", "[rss]") {
  const RssConfigPlan p = plan_rss_config(2, 0, 0);
  CHECK_FALSE(p.enable);
  CHECK(p.note.find("no RSS hash function") != std::string::npos);
}

TEST_CASE("plan_rss_config: no IPv4 hash function offered means RSS off", "[rss]") {
  const RssConfigPlan p = plan_rss_config(4, RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_TCP, 40);
  CHECK_FALSE(p.enable);
  CHECK(p.note.find("no IPv4") != std::string::npos);
}

TEST_CASE("plan_rss_config: IPv4/IPv6 TCP/UDP functions masked by what the PMD offers", "[rss]") {
  SECTION("everything offered: ours, nothing else (no L2, tunnel or port hashing)") {
    const RssConfigPlan p = plan_rss_config(2, kAllHf, 40);
    CHECK(p.enable);
    CHECK(p.hf == (kOurHf & kAllHf));
    CHECK((p.hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0);
    CHECK((p.hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0);
    CHECK((p.hf & RTE_ETH_RSS_L2_PAYLOAD) == 0);
    CHECK((p.hf & RTE_ETH_RSS_VXLAN) == 0);
  }
  SECTION("a subset offered: exactly that subset") {
    const std::uint64_t offered = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_L2_PAYLOAD;
    const RssConfigPlan p = plan_rss_config(8, offered, 40);
    CHECK(p.enable);
    CHECK(p.hf == (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP));
  }
}

TEST_CASE("plan_rss_config: the key follows the PMD's key size", "[rss]") {
  SECTION("40 bytes: kSymmetricRssKey") {
    const RssConfigPlan p = plan_rss_config(2, kAllHf, 40);
    CHECK(p.key == bytes_of(tcp::kSymmetricRssKey));
    CHECK(p.note.empty());
  }
  SECTION("52 bytes (i40e): the same pattern at 52 bytes, still symmetric") {
    const RssConfigPlan p = plan_rss_config(2, kAllHf, 52);
    CHECK(p.key == symmetric_rss_key(52));
  }
  SECTION("size not reported (net_null): keep the PMD's key") {
    const RssConfigPlan p = plan_rss_config(2, kAllHf, 0);
    CHECK(p.enable);
    CHECK(p.key.empty());
    CHECK(p.note.find("does not report its RSS key size") != std::string::npos);
  }
  SECTION("too short for IPv4: keep the PMD's key") {
    const RssConfigPlan p = plan_rss_config(2, kAllHf, 8);
    CHECK(p.enable);
    CHECK(p.key.empty());
    CHECK(p.note.find("8 bytes") != std::string::npos);
  }
}

TEST_CASE("plan_reta is tcp::fill_reta's table", "[rss]") {
  for (const auto& [size, nq] : {std::pair<std::uint16_t, std::uint16_t>{128, 2}, {512, 3}, {64, 1}, {8, 16}}) {
    std::vector<std::uint16_t> want(size);
    tcp::fill_reta(want, nq);
    CHECK(plan_reta(size, nq) == want);
  }
}

TEST_CASE("assess_rss: one queue is single_queue and known, with an empty table", "[rss]") {
  RssReadback rb;
  rb.nqueues = 1;
  const RssInfo r = assess_rss(rb);
  CHECK(r.steering == RssSteering::single_queue);
  CHECK(r.known());
  CHECK(r.reta.empty());
  CHECK_FALSE(r.key_symmetric());
  // pick_source_port needs no special case: an empty RETA selects queue 0.
  const auto p = tcp::pick_source_port(Ipv4Addr{10, 0, 0, 2}, Ipv4Addr{10, 0, 0, 1}, 80, r.queue, r.reta, r.key,
                                       tcp::PortRange{}, 50000);
  REQUIRE(p);
  CHECK(*p == 50000);
}

TEST_CASE("assess_rss: everything read back is toeplitz, and TCP can pick ports with it", "[rss]") {
  for (std::uint16_t nq : {2, 3, 4}) {
    RssInfo r = assess_rss(good_readback(nq));
    INFO("queues " << nq << ": " << r.note);
    REQUIRE(r.steering == RssSteering::toeplitz);
    CHECK(r.known());
    CHECK(r.nqueues == nq);
    CHECK(r.key_symmetric());
    CHECK(r.ipv4_tcp);
    CHECK(r.ipv4_udp);
    CHECK(r.note.empty());
    CHECK(std::equal(r.key.begin(), r.key.end(), tcp::kSymmetricRssKey.begin()));
    const Ipv4Addr local{192, 0, 2, 10}, remote{198, 51, 100, 7};
    for (std::uint16_t q = 0; q < nq; ++q) {
      r.queue = q;  // each lcore's copy
      const auto p = tcp::pick_source_port(local, remote, 443, r.queue, r.reta, r.key, tcp::PortRange{}, 49152);
      REQUIRE(p);
      // The reply (remote -> local) lands on the lcore's queue.
      CHECK(tcp::queue_of(tcp::rss_hash_ipv4_l4(r.key, remote, local, 443, *p), r.reta) == q);
    }
  }
}

TEST_CASE("assess_rss: the PMD's own key is used as read back", "[rss]") {
  SECTION("the Microsoft key: known, not symmetric") {
    RssReadback rb = good_readback(2);
    rb.key = bytes_of(tcp::kMicrosoftRssKey);
    rb.notes.push_back("the PMD does not report its RSS key size: keeping its own key");
    const RssInfo r = assess_rss(rb);
    CHECK(r.steering == RssSteering::toeplitz);
    CHECK_FALSE(r.key_symmetric());
    CHECK(r.key == tcp::kMicrosoftRssKey);
    CHECK(r.note == "the PMD does not report its RSS key size: keeping its own key");
  }
  SECTION("a 52-byte key: its first 40 bytes") {
    RssReadback rb = good_readback(2);
    std::vector<std::uint8_t> k(52);
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i + 1);
    rb.key = k;
    const RssInfo r = assess_rss(rb);
    REQUIRE(r.steering == RssSteering::toeplitz);
    CHECK(std::equal(r.key.begin(), r.key.end(), k.begin()));
  }
  SECTION("a 16-byte key, zero-padded: enough for IPv4") {
    RssReadback rb = good_readback(2);
    rb.key = symmetric_rss_key(16);
    const RssInfo r = assess_rss(rb);
    REQUIRE(r.steering == RssSteering::toeplitz);
    CHECK(r.key[15] == 0x5a);
    CHECK(r.key[16] == 0);
  }
}

TEST_CASE("assess_rss: anything missing or unusable makes the steering unknown, saying why", "[rss]") {
  auto unknown_because = [](const RssReadback& rb, const std::string& why) {
    const RssInfo r = assess_rss(rb);
    INFO(r.note);
    CHECK(r.steering == RssSteering::unknown);
    CHECK_FALSE(r.known());
    CHECK(r.reta.empty());
    CHECK(r.note.find(why) != std::string::npos);
  };
  SECTION("RSS off (net_af_packet qpairs=2): the configure note is the reason") {
    RssReadback rb;
    rb.nqueues = 2;
    rb.notes.push_back("the PMD offers no RSS hash function: RSS off, the PMD spreads flows its own way");
    unknown_because(rb, "no RSS hash function");
    rb.notes.clear();
    unknown_because(rb, "RSS is off");
  }
  SECTION("no key (net_tap: hash_conf_get not supported)") {
    RssReadback rb = good_readback(2);
    rb.key.reset();
    rb.hf.reset();
    rb.key_error = "rte_eth_dev_rss_hash_conf_get: Operation not supported";
    unknown_because(rb, "the RSS key cannot be read back (rte_eth_dev_rss_hash_conf_get: Operation not supported)");
  }
  SECTION("no table (net_tap: reta_size 0)") {
    RssReadback rb = good_readback(2);
    rb.reta.reset();
    rb.reta_error = "the PMD reports reta_size 0";
    unknown_because(rb, "the RETA cannot be read back (the PMD reports reta_size 0)");
  }
  SECTION("a key too short for IPv4") {
    RssReadback rb = good_readback(2);
    rb.key = symmetric_rss_key(12);
    unknown_because(rb, "12 bytes");
  }
  SECTION("a table whose size is not a power of two") {
    RssReadback rb = good_readback(2);
    rb.reta = plan_reta(100, 2);
    unknown_because(rb, "100 entries");
  }
  SECTION("an empty table") {
    RssReadback rb = good_readback(2);
    rb.reta = std::vector<std::uint16_t>{};
    unknown_because(rb, "0 entries");
  }
  SECTION("a table entry naming a queue we do not have") {
    RssReadback rb = good_readback(2);
    (*rb.reta)[5] = 2;
    unknown_because(rb, "RETA entry 5 selects queue 2 of 2");
  }
  SECTION("IPv4 TCP hashed without ports") {
    RssReadback rb = good_readback(2);
    rb.hf = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
    const RssInfo r = assess_rss(rb);
    CHECK(r.steering == RssSteering::unknown);
    CHECK_FALSE(r.ipv4_tcp);
    CHECK(r.ipv4_udp);
    CHECK(r.note.find("does not hash IPv4 TCP ports") != std::string::npos);
  }
  SECTION("degradations before the failure are kept") {
    RssReadback rb = good_readback(2);
    rb.notes.push_back("cannot program the RETA (Operation not supported): reading the PMD's own");
    rb.reta.reset();
    const RssInfo r = assess_rss(rb);
    CHECK(r.note.find("cannot program the RETA") == 0);
    CHECK(r.note.find("the RETA cannot be read back") != std::string::npos);
  }
}

TEST_CASE("assess_rss: the PMD's default table is fine when it cannot take ours", "[rss]") {
  RssReadback rb = good_readback(4, 64);
  rb.notes.push_back("cannot program the RETA (Operation not supported): reading the PMD's own");
  std::vector<std::uint16_t> all_zero(64, 0);
  rb.reta = all_zero;
  const RssInfo r = assess_rss(rb);
  CHECK(r.steering == RssSteering::toeplitz);
  CHECK(r.reta == all_zero);
  // Queues 1..3 get no hashed flow: still known, and said.
  CHECK(r.note.find("queue 1 is in no RETA entry") != std::string::npos);
  CHECK(r.note.find("queue 3 is in no RETA entry") != std::string::npos);
}

// TCP passes RssInfo's key straight to tcp::pick_source_port and friends.
static_assert(std::is_same_v<decltype(RssInfo::key), tcp::RssKey>);
static_assert(RssInfo::kKeyLen == tcp::kRssKeyLen);
