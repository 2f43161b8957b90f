// The UDP layer: one stack fed crafted frames through a collecting sink (drop
// reasons, offloads, ICMP), and two stacks on the in-memory pair exchanging
// datagrams on a virtual clock (sockets, queues, fan-out, errors).
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "drivers/mem_pair.hpp"
#include "src/runtime/engine.hpp"
#include "test/support/support.hpp"
#include "test/unit/net/frames.hpp"
#include "udp/udp_layer.hpp"
#include "wire/checksum.hpp"
#include "wire/udp.hpp"

#if USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::test;

namespace {

using Vec = std::vector<std::uint8_t>;

Vec pattern(std::size_t n, std::uint8_t seed) {
  Vec v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 131);
  return v;
}

Vec udp_msg(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport, const Vec& payload) {
  Vec v(8 + payload.size());
  wire::UdpRepr{sport, dport}.emit(MutBytes{v}, src, dst, Bytes{payload});
  std::copy(payload.begin(), payload.end(), v.begin() + 8);
  return v;
}

Vec bytes_of_span(Bytes b) { return Vec(b.begin(), b.end()); }

// --- One stack, frames in, frames out --------------------------------------

struct One {
  ScopedPool pool{511};
  CollectSink sink;
  DeviceCaps caps;
  StackConfig cfg;
  TimeNs now = kNsPerSec;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<UdpLayer> udp;

  explicit One(DeviceCaps c = {}, UdpConfig ucfg = {}) : caps(c) {
    caps.mac = kOurMac;
    cfg.mac = kOurMac;
    cfg.ip = Ipv4Cidr{kOurIp, 24};
    stack = std::make_unique<Stack>(cfg, pool.mp, caps, sink, now);
    udp = std::make_unique<UdpLayer>(*stack, ucfg);
  }
  ~One() {
    udp.reset();
    sink.out.clear();
    stack.reset();
  }
  std::uint64_t ctr(StackCounter c) const { return stack->counters().get(c); }
  void rx_frame(const Vec& frame, std::uint64_t ol_flags = 0) {
    Packet p = packet_of(Bytes{frame}, pool.mp);
    p.get()->ol_flags = ol_flags;
    stack->rx(p.release(), now);
  }
  void rx_udp(const Vec& udp_bytes, Ipv4Addr dst = kOurIp, std::uint64_t ol_flags = 0) {
    const MacAddr mac = dst == kOurIp ? kOurMac : MacAddr::broadcast();
    rx_frame(eth_frame(mac, kPeerMac, wire::ethertype::kIpv4, ipv4_datagram(kPeerIp, dst, wire::ipproto::kUdp, udp_bytes)),
             ol_flags);
  }
  void learn_peer() {
    rx_frame(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                       arp_payload(wire::ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp)));
    sink.out.clear();
  }
};

// --- Two stacks back to back ------------------------------------------------

constexpr Ipv4Addr kA{10, 1, 0, 1};
constexpr Ipv4Addr kB{10, 1, 0, 2};
constexpr Ipv4Addr kSubnetBroadcast{10, 1, 0, 255};
constexpr Ipv4Addr kGroup{239, 1, 2, 3};
constexpr Ipv4Addr kOtherGroup{239, 9, 9, 9};

struct Pair {
  ScopedPool pool{2047};
  TimeNs now = kNsPerSec;
  MemPair wire;
  Engine a;
  Engine b;
  UdpLayer ua;
  UdpLayer ub;

  explicit Pair(UdpConfig ucfg = {})
      : wire(1024, caps(1), caps(2)),
        a(wire.a(), config(1), pool.mp, now),
        b(wire.b(), config(2), pool.mp, now),
        ua(a.stack(), ucfg),
        ub(b.stack(), ucfg) {}

  static DeviceCaps caps(std::uint8_t n) {
    DeviceCaps c;
    c.mac = MacAddr{{0x02, 0, 0, 0, 0, n}};
    return c;
  }
  static StackConfig config(std::uint8_t n) {
    StackConfig c;
    c.mac = caps(n).mac;
    c.ip = Ipv4Cidr{Ipv4Addr{10, 1, 0, n}, 24};
    c.gratuitous_arp_on_start = false;
    return c;
  }
  // Enough loop iterations for an ARP exchange and the datagrams behind it.
  void pump(int iterations = 6) {
    for (int i = 0; i < iterations; ++i) {
      now += kNsPerUs;
      a.run_once(now);
      b.run_once(now);
    }
  }
  // Resolve both ways with a ping, so bursts do not queue behind ARP (whose
  // per-entry queue is short) and UDP counters start from zero.
  void resolve() {
    a.stack().send_echo_request(kB, 1, 1, {}, now);
    pump();
  }
  std::uint64_t ctr_a(StackCounter c) { return a.stack().counters().get(c); }
  std::uint64_t ctr_b(StackCounter c) { return b.stack().counters().get(c); }
};

UdpSocket* bound(UdpLayer& l, Ipv4Addr addr, std::uint16_t port, bool reuse = false) {
  UdpSocket* s = l.open();
  REQUIRE(s != nullptr);
  s->set_reuse(reuse);
  REQUIRE(s->bind(addr, port) == UdpStatus::ok);
  return s;
}

}  // namespace

// --- Receive path: drops by reason ----------------------------------------

TEST_CASE("UDP layer: malformed datagrams are counted by reason and never answered", "[udp][drop]") {
  One fx;
  fx.learn_peer();
  UdpSocket* s = bound(*fx.udp, Ipv4Addr{}, 9);
  const Vec good = udp_msg(kPeerIp, kOurIp, 5353, 9, {'h', 'i', '!'});
  Vec bad_ck = good;
  bad_ck[8] ^= 0xff;
  Vec short_len = good;
  short_len[5] = 7;
  Vec long_len = good;
  long_len[5] = 12;
  fx.rx_udp(Vec(good.begin(), good.begin() + 7));
  fx.rx_udp(bad_ck);
  fx.rx_udp(short_len);
  fx.rx_udp(long_len);
  CHECK(fx.ctr(StackCounter::udp_drop_truncated) == 1);
  CHECK(fx.ctr(StackCounter::udp_drop_bad_checksum) == 1);
  CHECK(fx.ctr(StackCounter::udp_drop_bad_length) == 2);
  CHECK(fx.ctr(StackCounter::udp_rx_datagrams) == 0);
  CHECK(s->rx_queued() == 0);
  CHECK(fx.sink.out.empty());  // no ICMP about garbage
  fx.rx_udp(good);
  CHECK(fx.ctr(StackCounter::udp_rx_datagrams) == 1);
  CHECK(s->rx_queued() == 1);
  s->close();
  CHECK(fx.pool.avail() == 511);  // everything came back
}

TEST_CASE("UDP layer: a UDP length shorter than the IP payload is trimmed", "[udp]") {
  One fx;
  UdpSocket* s = bound(*fx.udp, kOurIp, 9);
  Vec dgram = udp_msg(kPeerIp, kOurIp, 1, 9, {'a', 'b', 'c'});
  dgram.insert(dgram.end(), {'x', 'y', 'z', 'z', 'y'});  // inside the IP payload, after the UDP length
  fx.rx_udp(dgram);
  std::uint8_t buf[64];
  const auto info = s->recv_from(MutBytes{buf});
  REQUIRE(info);
  CHECK(info->len == 3);
  CHECK(Vec(buf, buf + 3) == Vec{'a', 'b', 'c'});
}

TEST_CASE("UDP layer: NIC checksum verdicts are used when the device reports them", "[udp][offload]") {
  DeviceCaps caps;
  caps.rx_l4_cksum = true;
  One fx(caps);
  UdpSocket* s = bound(*fx.udp, Ipv4Addr{}, 9);
  Vec bad = udp_msg(kPeerIp, kOurIp, 1, 9, {1, 2, 3, 4});
  bad[9] ^= 0x10;
  Vec zero = bad;
  zero[6] = zero[7] = 0;
  fx.rx_udp(bad, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_GOOD);  // the NIC vouched: not re-checked
  CHECK(s->rx_queued() == 1);
  fx.rx_udp(bad, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_NONE);  // data intact, field not filled in
  CHECK(s->rx_queued() == 2);
  fx.rx_udp(bad, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_BAD);  // re-checked in software: bad
  CHECK(fx.ctr(StackCounter::udp_drop_bad_checksum) == 1);
  fx.rx_udp(zero, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_BAD);  // "no checksum" flagged by the NIC: accepted
  CHECK(s->rx_queued() == 3);
  fx.rx_udp(bad, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN);  // no verdict: software
  CHECK(fx.ctr(StackCounter::udp_drop_bad_checksum) == 2);
  // A device that does not report L4 verdicts is not trusted.
  One plain;
  UdpSocket* t = bound(*plain.udp, Ipv4Addr{}, 9);
  plain.rx_udp(bad, kOurIp, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
  CHECK(t->rx_queued() == 0);
  CHECK(plain.ctr(StackCounter::udp_drop_bad_checksum) == 1);
}

TEST_CASE("UDP layer: a closed port gets ICMP port unreachable, a broadcast does not", "[udp][icmp]") {
  One fx;
  fx.learn_peer();
  const Vec dgram = udp_msg(kPeerIp, kOurIp, 4000, 7777, {'q'});
  fx.rx_udp(dgram);
  CHECK(fx.ctr(StackCounter::udp_drop_no_socket) == 1);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  const auto eth = wire::EthernetFrame::parse(out[0]);
  REQUIRE(eth.ok());
  const auto ip = wire::Ipv4Packet::parse(eth->payload());
  REQUIRE(ip.ok());
  CHECK(ip->dst() == kPeerIp);
  const auto icmp = wire::IcmpPacket::parse(ip->payload());
  REQUIRE(icmp.ok());
  CHECK(icmp->type() == 3);
  CHECK(icmp->code() == 3);
  // The quote: the offending IP header and the UDP header.
  const Bytes q = icmp->body();
  REQUIRE(q.size() == 20 + 8);
  CHECK(bytes_of_span(q.subspan(20)) == Vec(dgram.begin(), dgram.begin() + 8));

  fx.rx_udp(udp_msg(kPeerIp, Ipv4Addr{10, 0, 0, 255}, 4000, 7777, {'q'}), Ipv4Addr{10, 0, 0, 255});
  fx.rx_udp(udp_msg(kPeerIp, kGroup, 4000, 7777, {'q'}), kGroup);
  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::udp_drop_no_socket_multi) == 2);
  CHECK(fx.ctr(StackCounter::udp_drop_no_socket) == 1);
}

// --- Transmit path ------------------------------------------------------------

TEST_CASE("UDP layer: software checksum, or the offload contract when the device offers it", "[udp][offload]") {
  const Vec payload = pattern(101, 3);
  for (const bool offload : {false, true}) {
    INFO("offload " << offload);
    DeviceCaps caps;
    caps.tx_udp_cksum = offload;
    One fx(caps);
    fx.learn_peer();
    UdpSocket* s = bound(*fx.udp, Ipv4Addr{}, 4242);
    REQUIRE(s->send_to(Bytes{payload}, kPeerIp, 53, fx.now) == UdpStatus::ok);
    REQUIRE(fx.sink.out.size() == 1);
    const rte_mbuf* m = fx.sink.out[0].get();
    Vec frame = bytes_of(fx.sink.out[0]);
    const auto ip = wire::Ipv4Packet::parse(Bytes{frame}.subspan(14));
    REQUIRE(ip.ok());
    CHECK(ip->protocol() == wire::ipproto::kUdp);
    const std::size_t l4 = 14 + 20;
    const std::uint16_t field = load_be16(Bytes{frame}, l4 + 6);
    if (!offload) {
      CHECK((m->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) == 0);
      const auto d = wire::UdpDatagram::parse(ip->payload(), kOurIp, kPeerIp);
      REQUIRE(d.ok());
      CHECK(d->src_port() == 4242);
      CHECK(d->dst_port() == 53);
      CHECK(bytes_of_span(d->payload()) == payload);
      continue;
    }
    CHECK((m->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM) == RTE_MBUF_F_TX_UDP_CKSUM);
    CHECK((m->ol_flags & RTE_MBUF_F_TX_IPV4) == RTE_MBUF_F_TX_IPV4);
    CHECK(m->l2_len == 14);
    CHECK(m->l3_len == 20);
    CHECK(field == static_cast<std::uint16_t>(~wire::checksum_fold(
                       wire::pseudo_header_sum(kOurIp, kPeerIp, wire::ipproto::kUdp, 8 + 101))));
    // The NIC's part: sum from the L4 header, store the complement.
    std::uint16_t nic = wire::internet_checksum(Bytes{frame}.subspan(l4));
    if (nic == 0) nic = 0xffff;
    store_be16(MutBytes{frame}, l4 + 6, nic);
    CHECK(wire::UdpDatagram::parse(Bytes{frame}.subspan(l4), kOurIp, kPeerIp).ok());
  }
}

TEST_CASE("UDP layer: send refusals leave no trace", "[udp][tx]") {
  One fx;
  fx.learn_peer();
  UdpSocket* s = fx.udp->open();
  REQUIRE(s);
  const Vec big(fx.udp->max_payload() + 1);
  CHECK(fx.udp->max_payload() == 1472);
  CHECK(s->send_to(Bytes{big}, kPeerIp, 9, fx.now) == UdpStatus::too_big);
  CHECK(s->send_to({}, Ipv4Addr{}, 9, fx.now) == UdpStatus::bad_address);
  CHECK(s->send_to({}, kPeerIp, 0, fx.now) == UdpStatus::bad_address);
  CHECK(s->send({}, fx.now) == UdpStatus::not_connected);
  CHECK_FALSE(s->is_bound());
  // Zero-copy without room for the headers: the caller keeps the packet.
  const Vec three{1, 2, 3};
  Packet p = packet_of(Bytes{three}, fx.pool.mp);
  p.prepend(rte_pktmbuf_headroom(p.get()) - 20);  // an app that used the headroom for its own header
  REQUIRE(rte_pktmbuf_headroom(p.get()) < Stack::kHeaderRoom + 8);
  const std::size_t len = p.len();
  CHECK(s->send_packet_to(std::move(p), kPeerIp, 9, fx.now) == UdpStatus::no_headroom);
  REQUIRE(p);
  CHECK(p.len() == len);
  // A chain is refused too.
  Packet tail = packet_of(Bytes{three}.first(1), fx.pool.mp);
  Packet head = packet_of(Bytes{three}, fx.pool.mp);
  REQUIRE(rte_pktmbuf_chain(head.get(), tail.release()) == 0);
  CHECK(s->send_packet_to(std::move(head), kPeerIp, 9, fx.now) == UdpStatus::not_contiguous);
  CHECK(head);
  CHECK(fx.sink.out.empty());
  // Unknown destination: the stack refuses (no route) and says so.
  UdpSocket* t = fx.udp->open();
  CHECK(t->send_to(Bytes{big}.first(4), Ipv4Addr{192, 0, 2, 9}, 9, fx.now) == UdpStatus::dropped);
  CHECK(t->stats().tx_dropped == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_no_route) == 1);
}

TEST_CASE("UDP layer: an exhausted mempool is a status, not a crash", "[udp][resources]") {
  One fx;
  fx.learn_peer();
  UdpSocket* s = bound(*fx.udp, Ipv4Addr{}, 0);
  std::vector<Packet> hog;
  while (Packet p = Packet::alloc(fx.pool.mp)) hog.push_back(std::move(p));
  CHECK(s->send_to(Bytes{}, kPeerIp, 9, fx.now) == UdpStatus::no_mbuf);
  CHECK(fx.ctr(StackCounter::mbuf_alloc_failed) == 1);
}

// --- Sockets ------------------------------------------------------------------

TEST_CASE("UDP layer: bind rules, ephemeral ports, the socket pool", "[udp][bind]") {
  UdpConfig cfg;
  cfg.max_sockets = 8;
  cfg.ephemeral_first = 50000;
  cfg.ephemeral_last = 50003;
  One fx({}, cfg);
  UdpLayer& u = *fx.udp;

  UdpSocket* a = u.open();
  CHECK(a->bind(Ipv4Addr{10, 0, 0, 99}, 80) == UdpStatus::bad_address);  // not ours
  CHECK(a->bind(kOurIp, 80) == UdpStatus::ok);
  CHECK(a->bind(kOurIp, 81) == UdpStatus::already_bound);
  UdpSocket* b = u.open();
  CHECK(b->bind(Ipv4Addr{}, 80) == UdpStatus::addr_in_use);  // the wildcard overlaps
  CHECK(b->bind(Ipv4Addr{10, 0, 0, 255}, 80) == UdpStatus::ok);  // a different specific address
  UdpSocket* c = u.open();
  c->set_reuse(true);
  CHECK(c->bind(kOurIp, 80) == UdpStatus::addr_in_use);  // `a` did not set reuse
  CHECK(c->bind(kGroup, 80) == UdpStatus::ok);
  a->close();
  b->close();
  c->close();

  // Four ephemeral ports, all different, then none.
  std::set<std::uint16_t> ports;
  std::vector<UdpSocket*> eph;
  for (int i = 0; i < 4; ++i) {
    UdpSocket* s = u.open();
    REQUIRE(s->bind(Ipv4Addr{}, 0) == UdpStatus::ok);
    CHECK(s->local().port >= 50000);
    CHECK(s->local().port <= 50003);
    ports.insert(s->local().port);
    eph.push_back(s);
  }
  CHECK(ports.size() == 4);
  UdpSocket* none = u.open();
  CHECK(none->bind(Ipv4Addr{}, 0) == UdpStatus::no_ports);
  CHECK(none->send_to(Bytes{}, kPeerIp, 9, fx.now) == UdpStatus::no_ports);  // implicit bind
  CHECK(none->connect(kPeerIp, 9) == UdpStatus::no_ports);
  // Closing one frees its port for the next.
  const std::uint16_t freed = eph[2]->local().port;
  eph[2]->close();
  CHECK(none->bind(Ipv4Addr{}, 0) == UdpStatus::ok);
  CHECK(none->local().port == freed);

  // The pool: 8 sockets at most; 4 are open.
  CHECK(u.open_sockets() == 4);
  std::vector<UdpSocket*> more;
  while (UdpSocket* s = u.open()) more.push_back(s);
  CHECK(more.size() == 4);
  CHECK(u.open_sockets() == 8);
  more[0]->close();
  CHECK(u.open() == more[0]);  // the slot is reused
}

TEST_CASE("UDP layer: unbind frees the port and keeps the socket, its memberships aside", "[udp][bind]") {
  One fx;
  UdpLayer& u = *fx.udp;
  UdpSocket* a = u.open();
  REQUIRE(a->bind(kOurIp, 80) == UdpStatus::ok);
  REQUIRE(a->connect(kPeerIp, 9) == UdpStatus::ok);
  a->unbind();
  CHECK(!a->is_bound());
  CHECK(!a->is_connected());
  CHECK(a->is_open());
  // The port is free again: another socket takes it without reuse.
  UdpSocket* b = u.open();
  CHECK(b->bind(Ipv4Addr{}, 80) == UdpStatus::ok);
  // A datagram to it goes to `b`; `a` is on no port list any more.
  fx.rx_udp(udp_msg(kPeerIp, kOurIp, 9, 80, pattern(4, 1)));
  CHECK(b->rx_queued() == 1);
  CHECK(a->rx_queued() == 0);
  // Unbinding an unbound socket changes nothing; it may bind again.
  a->unbind();
  CHECK(a->bind(kOurIp, 81) == UdpStatus::ok);
  a->close();
  b->close();
  CHECK(u.open_sockets() == 0);
}

TEST_CASE("UDP layer: the default ephemeral range, and the same seed picks the same ports", "[udp][bind]") {
  One x, y;
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 50; ++i) {
    UdpSocket* s = x.udp->open();
    UdpSocket* t = y.udp->open();
    REQUIRE(s->bind(Ipv4Addr{}, 0) == UdpStatus::ok);
    REQUIRE(t->bind(Ipv4Addr{}, 0) == UdpStatus::ok);
    CHECK(s->local().port >= 49152);
    CHECK(s->local().port == t->local().port);
    seen.insert(s->local().port);
  }
  CHECK(seen.size() == 50);
}

// --- Two stacks ---------------------------------------------------------------

TEST_CASE("UDP pair: 1 and 1472 byte datagrams arrive byte-exact, copied and zero-copy", "[udp][pair]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, kA, 5000);
  UdpSocket* sb = bound(p.ub, Ipv4Addr{}, 6000);
  int readable = 0;
  sb->on_readable([](UdpSocket&, TimeNs, void* ctx) { ++*static_cast<int*>(ctx); }, &readable);

  const Vec one{0x5a};
  REQUIRE(sa->send_to(Bytes{one}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();  // ARP, then the datagram
  CHECK(readable == 1);
  std::uint8_t buf[2048];
  auto info = sb->recv_from(MutBytes{buf});
  REQUIRE(info);
  CHECK(info->len == 1);
  CHECK(info->datagram_len == 1);
  CHECK(buf[0] == 0x5a);
  CHECK(info->from == UdpEndpoint{kA, 5000});
  CHECK(info->to == kB);

  // 1472 bytes, the most a 1500-byte MTU carries without fragments.
  const Vec big = pattern(1472, 9);
  REQUIRE(sb->send_to(Bytes{big}, info->from.addr, info->from.port, p.now) == UdpStatus::ok);
  CHECK(sb->send_to(Bytes{pattern(1473, 0)}, kA, 5000, p.now) == UdpStatus::too_big);
  p.pump();
  auto d = sa->recv();
  REQUIRE(d);
  CHECK(d->from == UdpEndpoint{kB, 6000});
  CHECK(d->pkt.len() == 1472);
  CHECK(bytes_of(d->pkt) == big);
  // Zero-copy means the payload is where the NIC put it: the UDP header is
  // right in front of it, in the same buffer.
  const std::uint8_t* at = d->pkt.data().data();
  CHECK(load_be16(Bytes{at - 8, 8}, wire::UdpDatagram::kSrcPortOff) == 6000);
  CHECK(load_be16(Bytes{at - 8, 8}, wire::UdpDatagram::kLengthOff) == 1480);

  // Echo it back without a copy: the received mbuf, headers prepended in place.
  rte_mbuf* m = d->pkt.get();
  d->pkt.data()[0] ^= 0xff;
  REQUIRE(sa->send_packet_to(std::move(d->pkt), kB, 6000, p.now) == UdpStatus::ok);
  CHECK_FALSE(d->pkt);
  p.pump();
  auto e = sb->recv();
  REQUIRE(e);
  Vec expect = big;
  expect[0] ^= 0xff;
  CHECK(bytes_of(e->pkt) == expect);
  CHECK(e->pkt.get() == m);  // the in-memory wire hands over the very same mbuf
  CHECK(sa->stats().tx_datagrams == 2);
  CHECK(sa->stats().tx_bytes == 1 + 1472);
  CHECK(sb->stats().rx_datagrams == 2);
  CHECK(sb->stats().rx_bytes == 1 + 1472);
  CHECK(p.ctr_b(StackCounter::udp_rx_datagrams) == 2);
  CHECK(p.ctr_a(StackCounter::udp_tx_datagrams) == 2);
}

TEST_CASE("UDP pair: a short buffer truncates, the rest of the datagram is gone", "[udp][pair]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, Ipv4Addr{}, 5000);
  UdpSocket* sb = bound(p.ub, Ipv4Addr{}, 6000);
  const Vec msg = pattern(100, 1);
  REQUIRE(sa->send_to(Bytes{msg}, kB, 6000, p.now) == UdpStatus::ok);
  REQUIRE(sa->send_to(Bytes{msg}.first(10), kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  std::uint8_t buf[40];
  auto info = sb->recv_from(MutBytes{buf});
  REQUIRE(info);
  CHECK(info->truncated());
  CHECK(info->len == 40);
  CHECK(info->datagram_len == 100);
  CHECK(Vec(buf, buf + 40) == Vec(msg.begin(), msg.begin() + 40));
  info = sb->recv_from(MutBytes{buf});
  REQUIRE(info);
  CHECK_FALSE(info->truncated());
  CHECK(info->len == 10);
  CHECK_FALSE(sb->recv_from(MutBytes{buf}));
}

TEST_CASE("UDP pair: port unreachable comes back and is reported to the sending socket", "[udp][pair][icmp]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, Ipv4Addr{}, 5000);
  struct Seen {
    int n = 0;
    UdpIcmpError last;
  } seen;
  sa->on_error(
      [](UdpSocket&, const UdpIcmpError& e, TimeNs, void* ctx) {
        auto* s = static_cast<Seen*>(ctx);
        ++s->n;
        s->last = e;
      },
      &seen);
  REQUIRE(sa->send_to(Bytes{pattern(20, 0)}, kB, 7777, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(p.ctr_b(StackCounter::udp_drop_no_socket) == 1);
  CHECK(p.ctr_b(StackCounter::icmp_tx_error) == 1);
  CHECK(p.ctr_a(StackCounter::icmp_rx_error) == 1);
  CHECK(p.ctr_a(StackCounter::udp_rx_icmp_error) == 1);
  REQUIRE(seen.n == 1);
  CHECK(seen.last.type == 3);
  CHECK(seen.last.code == 3);
  CHECK(seen.last.remote == UdpEndpoint{kB, 7777});
  const auto err = sa->take_error();
  REQUIRE(err);
  CHECK(err->remote == UdpEndpoint{kB, 7777});
  CHECK_FALSE(sa->take_error());  // read once
  CHECK(sa->stats().icmp_errors == 1);

  // A connected socket hears only about its own peer; with none left on the
  // port the error is counted and dropped.
  UdpSocket* sc = bound(p.ua, Ipv4Addr{}, 5001);
  REQUIRE(sc->connect(kB, 9999) == UdpStatus::ok);
  sa->close();
  REQUIRE(sc->send_to(Bytes{}, kB, 7777, p.now) == UdpStatus::ok);  // not to its peer
  REQUIRE(sc->send(Bytes{}, p.now) == UdpStatus::ok);                // to its peer (9999, closed)
  p.pump();
  CHECK(p.ctr_a(StackCounter::udp_drop_icmp_no_socket) == 1);
  const auto e2 = sc->take_error();
  REQUIRE(e2);
  CHECK(e2->remote == UdpEndpoint{kB, 9999});
}

TEST_CASE("UDP pair: the receive queue is bounded in datagrams and bytes, drops are counted", "[udp][pair][drop]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, Ipv4Addr{}, 5000);
  UdpSocket* sb = bound(p.ub, Ipv4Addr{}, 6000);
  sb->set_rx_limits(4, 1 << 20);
  p.resolve();
  const Vec msg = pattern(100, 7);
  for (int i = 0; i < 10; ++i) REQUIRE(sa->send_to(Bytes{msg}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(sb->rx_queued() == 4);
  CHECK(sb->rx_queued_bytes() == 400);
  CHECK(sb->stats().rx_drop_queue_full == 6);
  CHECK(p.ctr_b(StackCounter::udp_drop_queue_full) == 6);
  CHECK(p.ctr_b(StackCounter::udp_rx_delivered) == 4);
  CHECK(p.ctr_b(StackCounter::udp_rx_datagrams) == 10);

  // Bytes: 250 fits two datagrams of 100 (the payload is what counts).
  while (sb->recv()) {
  }
  sb->set_rx_limits(64, 250);
  for (int i = 0; i < 3; ++i) REQUIRE(sa->send_to(Bytes{msg}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(sb->rx_queued() == 2);
  CHECK(sb->stats().rx_drop_queue_full == 7);
  // Draining makes room again.
  CHECK(sb->recv());
  REQUIRE(sa->send_to(Bytes{msg}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(sb->rx_queued() == 2);
  // Closing with datagrams queued returns their mbufs.
  sb->close();
  sa->close();
  p.pump();
  CHECK(p.ub.open_sockets() == 0);
}

TEST_CASE("UDP pair: multicast and broadcast reach every accepting socket, payload stored once", "[udp][pair][multicast]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, Ipv4Addr{}, 5000);
  UdpSocket* r1 = bound(p.ub, Ipv4Addr{}, 7000, true);
  UdpSocket* r2 = bound(p.ub, kGroup, 7000, true);
  UdpSocket* r3 = bound(p.ub, Ipv4Addr{}, 7000, true);
  UdpSocket* other_group = bound(p.ub, kOtherGroup, 7000, true);
  UdpSocket* unicast_only = bound(p.ub, kB, 7000, true);
  UdpSocket* greedy = p.ub.open();  // no reuse: the port is taken
  CHECK(greedy->bind(Ipv4Addr{}, 7000) == UdpStatus::addr_in_use);
  greedy->close();

  const Vec msg = pattern(333, 4);
  const unsigned before = p.pool.avail();
  REQUIRE(sa->send_to(Bytes{msg}, kGroup, 7000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(p.ctr_b(StackCounter::udp_rx_datagrams) == 1);
  CHECK(p.ctr_b(StackCounter::udp_rx_delivered) == 3);
  CHECK(other_group->rx_queued() == 0);
  CHECK(unicast_only->rx_queued() == 0);
  auto d1 = r1->recv();
  auto d2 = r2->recv();
  auto d3 = r3->recv();
  REQUIRE(d1);
  REQUIRE(d2);
  REQUIRE(d3);
  for (auto* d : {&*d1, &*d2, &*d3}) {
    CHECK(bytes_of(d->pkt) == msg);
    CHECK(d->from == UdpEndpoint{kA, 5000});
    CHECK(d->to == kGroup);
  }
  // One payload: the three views point at the same bytes, two indirect
  // mbufs hold references to the one direct mbuf the frame arrived in.
  CHECK(d1->pkt.data().data() == d2->pkt.data().data());
  CHECK(d2->pkt.data().data() == d3->pkt.data().data());
  int direct = 0;
  rte_mbuf* owner = nullptr;
  for (auto* d : {&*d1, &*d2, &*d3}) {
    if (RTE_MBUF_DIRECT(d->pkt.get())) {
      ++direct;
      owner = d->pkt.get();
    }
  }
  REQUIRE(direct == 1);
  CHECK(rte_mbuf_refcnt_read(owner) == 3);
  for (auto* d : {&*d1, &*d2, &*d3})
    if (!RTE_MBUF_DIRECT(d->pkt.get())) CHECK(rte_mbuf_from_indirect(d->pkt.get()) == owner);
  // The frame's mbuf plus two indirect ones: three mbufs for three readers.
  CHECK(before - p.pool.avail() == 3);
  // A shared buffer cannot be sent in place: headers would land in bytes others read.
  CHECK(r1->send_packet_to(std::move(d1->pkt), kA, 5000, p.now) == UdpStatus::shared_mbuf);
  CHECK(r1->send_packet_to(std::move(d2->pkt), kA, 5000, p.now) == UdpStatus::shared_mbuf);
  d1.reset();
  d2.reset();
  d3.reset();
  p.pump();
  CHECK(p.pool.avail() == before);

  // Subnet broadcast: the wildcard sockets only (a group or unicast bind does not match).
  REQUIRE(sa->send_to(Bytes{msg}, kSubnetBroadcast, 7000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(r1->rx_queued() == 1);
  CHECK(r3->rx_queued() == 1);
  CHECK(r2->rx_queued() == 0);
  CHECK(other_group->rx_queued() == 0);
  CHECK(unicast_only->rx_queued() == 0);
  auto b1 = r1->recv();
  REQUIRE(b1);
  CHECK(b1->to == kSubnetBroadcast);

  // Unicast to the shared port: one socket, the most specific (bound to kB).
  REQUIRE(sa->send_to(Bytes{msg}, kB, 7000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(unicast_only->rx_queued() == 1);
  CHECK(r1->rx_queued() == 0);
  CHECK(r3->rx_queued() == 1);  // still the broadcast one

  // A full queue is skipped without costing a clone.
  r3->set_rx_limits(1, 1 << 20);
  REQUIRE(sa->send_to(Bytes{msg}, kGroup, 7000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(r3->stats().rx_drop_queue_full == 1);
  CHECK(r1->rx_queued() == 1);
  CHECK(r2->rx_queued() == 1);
  CHECK(p.ctr_b(StackCounter::udp_drop_queue_full) == 1);
  CHECK(p.ctr_b(StackCounter::icmp_tx_error) == 0);  // never about multicast or broadcast
}

TEST_CASE("UDP pair: a callback may close sockets during multicast delivery", "[udp][pair][multicast]") {
  Pair p;
  UdpSocket* sa = bound(p.ua, Ipv4Addr{}, 5000);
  UdpSocket* r[3];
  for (auto*& s : r) s = bound(p.ub, Ipv4Addr{}, 7000, true);
  // Each reader closes every reader when it is told: the first notified
  // closes the rest before they get their copy.
  struct Ctx {
    UdpSocket** all;
    int notified = 0;
  } ctx{r};
  for (auto* s : r)
    s->on_readable(
        [](UdpSocket&, TimeNs, void* c) {
          auto* x = static_cast<Ctx*>(c);
          ++x->notified;
          for (int i = 0; i < 3; ++i) x->all[i]->close();
        },
        &ctx);
  const unsigned before = p.pool.avail();
  REQUIRE(sa->send_to(Bytes{pattern(10, 0)}, kGroup, 7000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(ctx.notified == 1);
  CHECK(p.ub.open_sockets() == 0);
  CHECK(p.pool.avail() == before);
  // The port is free again.
  UdpSocket* s = p.ub.open();
  CHECK(s->bind(Ipv4Addr{}, 7000) == UdpStatus::ok);
}

TEST_CASE("UDP pair: connect sets the default destination and filters the source", "[udp][pair][connect]") {
  Pair p;
  UdpSocket* a5000 = bound(p.ua, Ipv4Addr{}, 5000);
  UdpSocket* a5001 = bound(p.ua, Ipv4Addr{}, 5001);
  UdpSocket* conn = bound(p.ub, Ipv4Addr{}, 6000);
  REQUIRE(conn->connect(kA, 5000) == UdpStatus::ok);
  CHECK(conn->is_connected());
  REQUIRE(a5000->send_to(Bytes{pattern(5, 1)}, kB, 6000, p.now) == UdpStatus::ok);
  REQUIRE(a5001->send_to(Bytes{pattern(5, 2)}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(conn->rx_queued() == 1);
  CHECK(p.ctr_b(StackCounter::udp_drop_no_socket) == 1);  // the stranger got port unreachable
  CHECK(a5001->take_error());
  CHECK_FALSE(a5000->take_error());
  auto d = conn->recv();
  REQUIRE(d);
  CHECK(d->from == UdpEndpoint{kA, 5000});

  // send() goes to the peer.
  REQUIRE(conn->send(Bytes{pattern(3, 3)}, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(a5000->rx_queued() == 1);
  CHECK(a5001->rx_queued() == 0);

  // An unconnected socket sharing the port takes the strangers; the
  // connected one, more specific, keeps its peer.
  conn->close();
  UdpSocket* c2 = p.ub.open();
  c2->set_reuse(true);
  REQUIRE(c2->bind(Ipv4Addr{}, 6000) == UdpStatus::ok);
  REQUIRE(c2->connect(kA, 5000) == UdpStatus::ok);
  UdpSocket* any = bound(p.ub, Ipv4Addr{}, 6000, true);
  REQUIRE(a5000->send_to(Bytes{pattern(5, 1)}, kB, 6000, p.now) == UdpStatus::ok);
  REQUIRE(a5001->send_to(Bytes{pattern(5, 2)}, kB, 6000, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(c2->rx_queued() == 1);
  CHECK(any->rx_queued() == 1);
  CHECK(any->recv()->from == UdpEndpoint{kA, 5001});

  // connect() on an unbound socket binds an ephemeral port; disconnect lifts the filter.
  UdpSocket* e = p.ub.open();
  REQUIRE(e->connect(kA, 5000) == UdpStatus::ok);
  CHECK(e->local().port >= 49152);
  e->disconnect();
  CHECK_FALSE(e->is_connected());
  CHECK(e->send(Bytes{}, p.now) == UdpStatus::not_connected);
}

TEST_CASE("UDP pair: an unbound socket sending gets an ephemeral port the reply finds", "[udp][pair][bind]") {
  Pair p;
  UdpSocket* client = p.ua.open();
  UdpSocket* server = bound(p.ub, Ipv4Addr{}, 53);
  REQUIRE(client->send_to(Bytes{pattern(12, 0)}, kB, 53, p.now) == UdpStatus::ok);
  CHECK(client->is_bound());
  CHECK(client->local().port >= 49152);
  p.pump();
  auto q = server->recv();
  REQUIRE(q);
  CHECK(q->from.port == client->local().port);
  REQUIRE(server->send_packet_to(std::move(q->pkt), q->from.addr, q->from.port, p.now) == UdpStatus::ok);
  p.pump();
  CHECK(client->rx_queued() == 1);
}

#if USTACK_COUNT_ALLOCS
TEST_CASE("UDP pair: steady-state datagrams allocate nothing", "[udp][pair][alloc]") {
  Pair p;
  UdpSocket* client = bound(p.ua, Ipv4Addr{}, 0);
  UdpSocket* server = bound(p.ub, Ipv4Addr{}, 9000);
  UdpSocket* m[3];
  for (auto*& s : m) s = bound(p.ub, Ipv4Addr{}, 9001, true);
  std::uint8_t buf[2048];
  const Vec msg = pattern(512, 5);
  std::uint64_t echoed = 0;
  auto round = [&] {
    // A copy send, a zero-copy echo, a copy receive, and a multicast fan-out.
    (void)client->send_to(Bytes{msg}, kB, 9000, p.now);
    (void)client->send_to(Bytes{msg}.first(64), kGroup, 9001, p.now);
    p.pump(2);
    while (auto q = server->recv())
      if (server->send_packet_to(std::move(q->pkt), q->from.addr, q->from.port, p.now) == UdpStatus::ok) ++echoed;
    for (auto* s : m)
      while (s->recv_from(MutBytes{buf})) {
      }
    p.pump(2);
    while (client->recv_from(MutBytes{buf})) {
    }
  };
  for (int i = 0; i < 100; ++i) round();  // warm-up: ARP on both sides
  REQUIRE(echoed == 100);
  const auto before = thread_alloc_count();
  for (int i = 0; i < 10000; ++i) round();
  const auto allocs = thread_alloc_count() - before;
  CHECK(echoed == 10100);
  CHECK(client->stats().rx_datagrams == 10100);
  CHECK(m[2]->stats().rx_datagrams == 10100);
  CHECK(allocs == 0);
}
#endif
