#include "drivers/mem_pair.hpp"

#include <catch2/catch.hpp>
#include <rte_mempool.h>

#include <cstdio>
#include <vector>

#include "core/bytes.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

using TestPool = test::ScopedPool;

// An Ethernet frame whose payload starts with `id`, `len` bytes long.
std::vector<std::uint8_t> frame(std::uint32_t id, std::size_t len = 64) {
  std::vector<std::uint8_t> f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = static_cast<std::uint8_t>(i * 7 + id);
  store_be16(f, 12, 0x88b5);
  store_be32(f, 14, id);
  return f;
}

rte_mbuf* mbuf_of(const std::vector<std::uint8_t>& bytes, rte_mempool* mp) {
  return test::packet_of(Bytes{bytes}, mp).release();
}

// Receives everything waiting on `d` (bursts of `burst`), copies the bytes out and frees the mbufs.
std::vector<std::vector<std::uint8_t>> drain(Device& d, std::size_t burst = 8) {
  std::vector<std::vector<std::uint8_t>> out;
  std::vector<rte_mbuf*> pkts(burst);
  for (;;) {
    const std::uint16_t n = d.rx_burst(pkts, 0);
    REQUIRE(n <= burst);
    if (n == 0) return out;
    for (std::uint16_t i = 0; i < n; ++i) {
      out.push_back(test::bytes_of(pkts[i]));
      rte_pktmbuf_free(pkts[i]);
    }
  }
}

// Sends frames `ids` on `d`; frees (and returns the number of) those refused.
std::size_t send(Device& d, rte_mempool* mp, std::initializer_list<std::uint32_t> ids) {
  std::vector<rte_mbuf*> pkts;
  for (std::uint32_t id : ids) pkts.push_back(mbuf_of(frame(id), mp));
  const std::uint16_t sent = d.tx_burst(pkts, 0);
  for (std::size_t i = sent; i < pkts.size(); ++i) rte_pktmbuf_free(pkts[i]);
  return pkts.size() - sent;
}

}  // namespace

TEST_CASE("mem pair: packets cross both ways byte-exact and in order", "[mem_pair]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    MemPair pair(16);
    CHECK(send(pair.a(), pool.mp, {1, 2, 3}) == 0);
    CHECK(send(pair.b(), pool.mp, {10, 11}) == 0);
    CHECK(pair.in_flight_to_b() == 3);
    CHECK(pair.in_flight_to_a() == 2);

    const auto at_b = drain(pair.b());
    REQUIRE(at_b.size() == 3);
    CHECK(at_b[0] == frame(1));
    CHECK(at_b[1] == frame(2));
    CHECK(at_b[2] == frame(3));
    const auto at_a = drain(pair.a());
    REQUIRE(at_a.size() == 2);
    CHECK(at_a[0] == frame(10));
    CHECK(at_a[1] == frame(11));

    CHECK(pair.a_to_b().delivered == 3);
    CHECK(pair.b_to_a().delivered == 2);
    CHECK(pair.a_to_b().dropped_full == 0);
    CHECK(drain(pair.a()).empty());
    CHECK(drain(pair.b()).empty());
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("mem pair: a full ring returns short and counts the drops", "[mem_pair]") {
  TestPool pool(64);
  const unsigned start = pool.avail();
  {
    MemPair pair(4);
    // 6 offered, 4 fit: DPDK convention, the caller keeps (and frees) the last 2.
    CHECK(send(pair.a(), pool.mp, {0, 1, 2, 3, 4, 5}) == 2);
    CHECK(pair.a_to_b().delivered == 4);
    CHECK(pair.a_to_b().dropped_full == 2);
    CHECK(pair.b_to_a().dropped_full == 0);
    CHECK(send(pair.a(), pool.mp, {6}) == 1);
    CHECK(pair.a_to_b().dropped_full == 3);

    // Partial receive, then refill across the ring's wrap point.
    std::vector<rte_mbuf*> two(2);
    REQUIRE(pair.b().rx_burst(two, 0) == 2);
    CHECK(test::bytes_of(two[0]) == frame(0));
    CHECK(test::bytes_of(two[1]) == frame(1));
    rte_pktmbuf_free_bulk(two.data(), 2);
    CHECK(send(pair.a(), pool.mp, {7, 8, 9}) == 1);
    const auto got = drain(pair.b(), 3);
    REQUIRE(got.size() == 4);
    CHECK(got[0] == frame(2));
    CHECK(got[1] == frame(3));
    CHECK(got[2] == frame(7));
    CHECK(got[3] == frame(8));
    CHECK(pair.a_to_b().delivered == 6);
    CHECK(pair.a_to_b().dropped_full == 4);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("mem pair: packets still on the wire are freed with the pair", "[mem_pair]") {
  TestPool pool(16);
  const unsigned start = pool.avail();
  {
    MemPair pair(8);
    CHECK(send(pair.a(), pool.mp, {1, 2, 3}) == 0);
    CHECK(send(pair.b(), pool.mp, {4}) == 0);
    CHECK(pool.avail() == start - 4);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("mem pair: default MACs are distinct and local, given caps are kept", "[mem_pair]") {
  MemPair defaults;
  CHECK(defaults.a().caps().mac == MacAddr{{0x02, 0, 0, 0, 0, 0x01}});
  CHECK(defaults.b().caps().mac == MacAddr{{0x02, 0, 0, 0, 0, 0x02}});

  DeviceCaps ca;
  ca.mac = MacAddr{{0x02, 0xaa, 0, 0, 0, 0x10}};
  ca.mtu = 9000;
  DeviceCaps cb;
  cb.max_burst = 4;
  MemPair given(8, ca, cb);
  CHECK(given.a().caps().mac == ca.mac);
  CHECK(given.a().caps().mtu == 9000);
  CHECK(given.b().caps().mac == MacAddr{{0x02, 0, 0, 0, 0, 0x02}});
  CHECK(given.b().caps().max_burst == 4);
}

TEST_CASE("mem pair: multi-segment packets arrive as one contiguous frame; TX offload requests do not cross", "[mem_pair]") {
  TestPool pool(16);
  const unsigned start = pool.avail();
  {
    MemPair pair(8);
    const auto head_bytes = frame(1, 40);
    const auto tail_bytes = frame(2, 30);
    rte_mbuf* head = mbuf_of(head_bytes, pool.mp);
    rte_mbuf* tail = mbuf_of(tail_bytes, pool.mp);
    REQUIRE(rte_pktmbuf_chain(head, tail) == 0);
    head->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    std::vector<rte_mbuf*> one{head};
    REQUIRE(pair.a().tx_burst(one, 0) == 1);

    REQUIRE(pair.b().rx_burst(one, 0) == 1);
    CHECK(one[0]->nb_segs == 1);  // as a NIC receives a frame another sent from a chain
    CHECK(one[0] != head);
    std::vector<std::uint8_t> want = head_bytes;
    want.insert(want.end(), tail_bytes.begin(), tail_bytes.end());
    CHECK(test::bytes_of(one[0]) == want);
    CHECK((one[0]->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK) == 0);
    CHECK(pair.a_to_b().dropped_no_mbuf == 0);
    rte_pktmbuf_free(one[0]);
  }
  CHECK(pool.avail() == start);
}
