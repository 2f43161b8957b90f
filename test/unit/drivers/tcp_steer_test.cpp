// Software TCP steering (src/runtime/tcp_steer.hpp): the owner function is
// the Toeplitz model TCP's active open uses, and the device moves segments
// of other lcores' flows into their rings without copying.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "drivers/mem_pair.hpp"
#include "src/runtime/tcp_steer.hpp"
#include "tcp/rss.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

// An Ethernet + IPv4 + TCP header (no payload) from src:sport to dst:dport.
rte_mbuf* tcp_frame(rte_mempool* mp, Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport,
                    bool vlan = false) {
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  REQUIRE(m);
  const std::size_t l2 = vlan ? 18 : 14;
  auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(l2 + 40)));
  std::memset(p, 0, l2 + 40);
  if (vlan) {
    p[12] = 0x81, p[13] = 0x00, p[16] = 0x08, p[17] = 0x00;
  } else {
    p[12] = 0x08, p[13] = 0x00;
  }
  std::uint8_t* ip = p + l2;
  ip[0] = 0x45, ip[3] = 40, ip[8] = 64, ip[9] = 6;
  for (int i = 0; i < 4; ++i) ip[12 + i] = static_cast<std::uint8_t>(src.v >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) ip[16 + i] = static_cast<std::uint8_t>(dst.v >> (24 - 8 * i));
  ip[20] = static_cast<std::uint8_t>(sport >> 8), ip[21] = static_cast<std::uint8_t>(sport);
  ip[22] = static_cast<std::uint8_t>(dport >> 8), ip[23] = static_cast<std::uint8_t>(dport);
  return m;
}

}  // namespace

TEST_CASE("TCP steering: owner() is Toeplitz with the symmetric key through the RETA", "[steer]") {
  TcpSteer steer;
  std::string err;
  REQUIRE(steer.init(3, SOCKET_ID_ANY, err));
  const RssInfo info = steer.info(1);
  CHECK(info.known());
  CHECK(info.key_symmetric());
  CHECK(info.reta.size() == TcpSteer::kRetaSize);
  std::mt19937 rng(7);
  std::array<int, 3> per{};
  for (int i = 0; i < 2000; ++i) {
    const Ipv4Addr a(static_cast<std::uint32_t>(rng())), b(static_cast<std::uint32_t>(rng()));
    const auto pa = static_cast<std::uint16_t>(rng()), pb = static_cast<std::uint16_t>(rng());
    const auto want = tcp::queue_of(tcp::rss_hash_ipv4_l4(tcp::kSymmetricRssKey, a, b, pa, pb), info.reta);
    REQUIRE(steer.owner(a.v, b.v, pa, pb) == want);
    REQUIRE(steer.owner(b.v, a.v, pb, pa) == want);  // symmetric
    ++per[want];
  }
  for (int n : per) CHECK(n > 500);  // spread over all three queues
  // An active open on queue 1 picks a port whose replies are steered back to it.
  const Ipv4Addr local{10, 0, 0, 2}, remote{10, 0, 0, 1};
  for (std::uint16_t hint = 50000; hint < 50010; ++hint) {
    auto port = tcp::pick_source_port(local, remote, 80, 1, info.reta, info.key, tcp::PortRange{}, hint);
    REQUIRE(port);
    CHECK(steer.owner(remote.v, local.v, 80, *port) == 1);
  }
}

TEST_CASE("TCP steering: segments of another lcore's flows move to its ring, the rest stays", "[steer]") {
  rte_mempool* mp = test::make_pool("steer_pool", 255);
  TcpSteer steer;
  std::string err;
  REQUIRE(steer.init(2, SOCKET_ID_ANY, err));
  DeviceCaps caps;
  MemPair wire(64, caps, caps);
  TcpSteerDevice d0(wire.a(), steer, 0), d1(wire.a(), steer, 1);
  const Ipv4Addr us{10, 0, 0, 2}, peer{10, 0, 0, 1};
  // Find one flow per queue.
  std::uint16_t port_q0 = 0, port_q1 = 0;
  for (std::uint16_t p = 1000; !port_q0 || !port_q1; ++p)
    (steer.owner(peer.v, us.v, p, 7) == 0 ? port_q0 : port_q1) = p;
  std::array<rte_mbuf*, 5> in{tcp_frame(mp, peer, us, port_q0, 7), tcp_frame(mp, peer, us, port_q1, 7),
                              tcp_frame(mp, peer, us, port_q1, 7, true), tcp_frame(mp, peer, us, port_q0, 7, true),
                              rte_pktmbuf_alloc(mp)};
  // The last is not TCP (an empty frame): it stays where it arrived.
  const rte_mbuf* q1_a = in[1];
  const rte_mbuf* q1_b = in[2];
  REQUIRE(wire.b().tx_burst(in, 0) == in.size());
  std::array<rte_mbuf*, 8> got{};
  const auto n0 = d0.rx_burst(got, 0);
  CHECK(n0 == 3);
  CHECK(d0.steered_out() == 2);
  for (std::uint16_t i = 0; i < n0; ++i) rte_pktmbuf_free(got[i]);
  const auto n1 = d1.rx_burst(got, 0);
  REQUIRE(n1 == 2);
  CHECK(got[0] == q1_a);  // the same mbufs, in order
  CHECK(got[1] == q1_b);
  CHECK(d1.steered_in() == 2);
  for (std::uint16_t i = 0; i < n1; ++i) rte_pktmbuf_free(got[i]);
  CHECK(rte_mempool_avail_count(mp) == 255);
  rte_mempool_free(mp);
}
