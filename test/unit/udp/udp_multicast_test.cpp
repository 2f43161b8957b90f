// UDP sockets and IGMP membership (RFC 3376 §2/§3.2 through the socket
// calls; RFC 1112 §6.1 for the send options): one stack with an IgmpHost and
// a UdpLayer built on it, fed crafted multicast frames from several sources,
// with everything it emits collected and parsed back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <vector>

#include "igmp/igmp_host.hpp"
#include "test/support/support.hpp"
#include "test/unit/net/frames.hpp"
#include "udp/udp_layer.hpp"
#include "wire/ethernet.hpp"
#include "wire/igmp.hpp"
#include "wire/ipv4.hpp"
#include "wire/udp.hpp"

#if USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::test;
namespace rec = wire::igmp_record;

namespace {

using Vec = std::vector<std::uint8_t>;

constexpr Ipv4Addr kG{239, 1, 2, 3};
constexpr Ipv4Addr kG2{239, 1, 2, 4};
constexpr Ipv4Addr kSsm{232, 1, 1, 1};
constexpr Ipv4Addr kS1{10, 0, 0, 1};
constexpr Ipv4Addr kS2{10, 0, 0, 9};
constexpr Ipv4Addr kS3{10, 0, 0, 20};
constexpr std::uint16_t kPort = 5000;

Vec udp_msg(Ipv4Addr src, Ipv4Addr dst, std::uint16_t sport, std::uint16_t dport, const Vec& payload) {
  Vec v(8 + payload.size());
  wire::UdpRepr{sport, dport}.emit(MutBytes{v}, src, dst, Bytes{payload});
  std::copy(payload.begin(), payload.end(), v.begin() + 8);
  return v;
}

// One record of an emitted IGMPv3 report.
struct Record {
  std::uint8_t type;
  Ipv4Addr group;
  std::vector<Ipv4Addr> sources;
};

struct Fx {
  ScopedPool pool{1023};
  CollectSink sink;
  DeviceCaps caps;
  StackConfig cfg;
  TimeNs now = kNsPerSec;
  std::unique_ptr<Stack> stack;
  std::unique_ptr<IgmpHost> igmp;
  std::unique_ptr<UdpLayer> udp;
  std::vector<MacAddr> macs;  // the last MAC list IGMP asked the NIC for

  Fx() {
    caps.mac = kOurMac;
    cfg.mac = kOurMac;
    cfg.ip = Ipv4Cidr{kOurIp, 24};
    cfg.gratuitous_arp_on_start = false;
    stack = std::make_unique<Stack>(cfg, pool.mp, caps, sink, now);
    igmp = std::make_unique<IgmpHost>(*stack, IgmpConfig{});
    igmp->set_mac_list_callback(
        [](std::span<const MacAddr> m, void* ctx) {
          static_cast<Fx*>(ctx)->macs.assign(m.begin(), m.end());
        },
        this);
    udp = std::make_unique<UdpLayer>(*stack, UdpConfig{}, igmp.get());
  }
  ~Fx() {
    udp.reset();
    igmp.reset();
    sink.out.clear();
    stack.reset();
  }
  std::uint64_t ctr(StackCounter c) const { return stack->counters().get(c); }
  void rx_mcast(Ipv4Addr src, Ipv4Addr group, std::uint16_t port, const Vec& payload) {
    const Vec frame = eth_frame(wire::multicast_mac(group), kPeerMac, wire::ethertype::kIpv4,
                                ipv4_datagram(src, group, wire::ipproto::kUdp, udp_msg(src, group, 4000, port, payload)));
    Packet p = packet_of(Bytes{frame}, pool.mp);
    stack->rx(p.release(), now);
  }
  UdpSocket* sock(std::uint16_t port = kPort) {
    UdpSocket* s = udp->open();
    REQUIRE(s != nullptr);
    s->set_reuse(true);
    REQUIRE(s->bind(Ipv4Addr{}, port) == UdpStatus::ok);
    return s;
  }
  // The IGMPv3 records in everything emitted since the last call.
  std::vector<Record> reports() {
    std::vector<Record> out;
    for (const Vec& f : sink.take()) {
      const auto ip = wire::Ipv4Packet::parse(Bytes{f}.subspan(wire::kEthHeaderLen));
      if (!ip || ip->protocol() != wire::ipproto::kIgmp) continue;
      const auto r = wire::IgmpV3Report::parse(ip->payload());
      REQUIRE(r);
      for (const auto& g : *r) {
        Record x{g.type(), g.group(), {}};
        for (std::size_t i = 0; i < g.num_sources(); ++i) x.sources.push_back(g.source(i));
        out.push_back(x);
      }
    }
    return out;
  }
  std::vector<Vec> udp_frames() {
    std::vector<Vec> out;
    for (const Vec& f : sink.take()) {
      const auto ip = wire::Ipv4Packet::parse(Bytes{f}.subspan(wire::kEthHeaderLen));
      if (ip && ip->protocol() == wire::ipproto::kUdp) out.push_back(f);
    }
    return out;
  }
};

bool has_record(const std::vector<Record>& v, std::uint8_t type, Ipv4Addr g, std::vector<Ipv4Addr> src = {}) {
  std::sort(src.begin(), src.end());
  for (auto r : v) {
    std::sort(r.sources.begin(), r.sources.end());
    if (r.type == type && r.group == g && r.sources == src) return true;
  }
  return false;
}

std::size_t drain(UdpSocket& s, std::vector<Ipv4Addr>* from = nullptr) {
  std::size_t n = 0;
  while (auto d = s.recv()) {
    if (from) from->push_back(d->from.addr);
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("UDP multicast: only sockets that joined the group get its datagrams", "[udp][multicast][igmp]") {
  Fx fx;
  UdpSocket* joined = fx.sock();
  UdpSocket* other = fx.sock();  // same port, never joined
  UdpSocket* g2 = fx.sock();
  fx.rx_mcast(kS1, kG, kPort, {1, 2, 3});
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);  // nobody joined: the interface drops it

  REQUIRE(joined->join(kG, fx.now) == UdpStatus::ok);
  REQUIRE(g2->join(kG2, fx.now) == UdpStatus::ok);
  const auto r = fx.reports();
  CHECK(has_record(r, rec::kChangeToExclude, kG));
  CHECK(has_record(r, rec::kChangeToExclude, kG2));
  CHECK(std::find(fx.macs.begin(), fx.macs.end(), wire::multicast_mac(kG)) != fx.macs.end());

  fx.rx_mcast(kS1, kG, kPort, {1, 2, 3});
  fx.rx_mcast(kS2, kG2, kPort, {4});
  CHECK(drain(*joined) == 1);
  CHECK(drain(*g2) == 1);
  CHECK(drain(*other) == 0);
  // Another port: the group is joined but nobody listens there.
  fx.rx_mcast(kS1, kG, kPort + 1, {9});
  CHECK(fx.ctr(StackCounter::udp_drop_no_socket_multi) == 1);
  // 224.0.0.1 needs no join.
  fx.rx_mcast(kS1, Ipv4Addr{224, 0, 0, 1}, kPort, {5});
  CHECK(drain(*other) == 1);
}

TEST_CASE("UDP multicast: membership is the union of the sockets' source filters", "[udp][multicast][igmp]") {
  Fx fx;
  UdpSocket* a = fx.sock();
  UdpSocket* b = fx.sock();
  const Ipv4Addr s1[] = {kS1};
  const Ipv4Addr s2[] = {kS2};
  REQUIRE(a->set_source_filter(kSsm, FilterMode::include, s1, fx.now) == UdpStatus::ok);
  REQUIRE(b->set_source_filter(kSsm, FilterMode::include, s2, fx.now) == UdpStatus::ok);
  auto st = fx.igmp->interface_state(kSsm);
  REQUIRE(st);
  CHECK(st->mode == FilterMode::include);
  CHECK(std::vector<Ipv4Addr>(st->sources.begin(), st->sources.end()) == std::vector<Ipv4Addr>{kS1, kS2});
  const auto r = fx.reports();
  // The first join's report, then the second merged with the first's
  // pending retransmission (RFC 3376 §5.1).
  CHECK(has_record(r, rec::kAllowNewSources, kSsm, {kS1}));
  CHECK(has_record(r, rec::kAllowNewSources, kSsm, {kS1, kS2}));

  fx.rx_mcast(kS1, kSsm, kPort, {1});
  fx.rx_mcast(kS2, kSsm, kPort, {2});
  fx.rx_mcast(kS3, kSsm, kPort, {3});  // in nobody's list: the interface drops it
  std::vector<Ipv4Addr> fa, fb;
  CHECK(drain(*a, &fa) == 1);
  CHECK(drain(*b, &fb) == 1);
  CHECK(fa == std::vector<Ipv4Addr>{kS1});
  CHECK(fb == std::vector<Ipv4Addr>{kS2});
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);

  // An EXCLUDE socket turns the interface to EXCLUDE (RFC 3376 §3.2: the
  // intersection of the exclude lists minus the include lists).
  UdpSocket* c = fx.sock();
  const Ipv4Addr ex[] = {kS1, kS3};
  REQUIRE(c->set_source_filter(kSsm, FilterMode::exclude, ex, fx.now) == UdpStatus::ok);
  st = fx.igmp->interface_state(kSsm);
  REQUIRE(st);
  CHECK(st->mode == FilterMode::exclude);
  CHECK(std::vector<Ipv4Addr>(st->sources.begin(), st->sources.end()) == std::vector<Ipv4Addr>{kS3});
  fx.rx_mcast(kS1, kSsm, kPort, {1});
  fx.rx_mcast(kS2, kSsm, kPort, {2});
  fx.rx_mcast(kS3, kSsm, kPort, {3});
  CHECK(drain(*a) == 1);  // S1 only
  CHECK(drain(*b) == 1);  // S2 only
  std::vector<Ipv4Addr> fc;
  CHECK(drain(*c, &fc) == 1);  // everything but S1 and S3
  CHECK(fc == std::vector<Ipv4Addr>{kS2});
}

TEST_CASE("UDP multicast: leaving or closing one socket keeps the group while another is in it", "[udp][multicast][igmp]") {
  Fx fx;
  UdpSocket* a = fx.sock();
  UdpSocket* b = fx.sock();
  REQUIRE(a->join(kG, fx.now) == UdpStatus::ok);
  REQUIRE(b->join(kG, fx.now) == UdpStatus::ok);
  (void)fx.reports();
  CHECK(a->leave(kG, fx.now) == UdpStatus::ok);
  CHECK(fx.reports().empty());  // the interface state did not change
  fx.rx_mcast(kS1, kG, kPort, {1});
  CHECK(drain(*a) == 0);
  CHECK(drain(*b) == 1);

  fx.now += kNsPerMs;
  b->close(fx.now);  // the last member: a leave (TO_IN {}) goes out at once
  CHECK(!fx.igmp->interface_state(kG));
  CHECK(has_record(fx.reports(), rec::kChangeToInclude, kG));
  CHECK(std::find(fx.macs.begin(), fx.macs.end(), wire::multicast_mac(kG)) == fx.macs.end());
  fx.rx_mcast(kS1, kG, kPort, {1});
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);

  // close() without a time uses the latest the stack has seen; a reopened
  // slot has a fresh IGMP id, so nothing of the old socket's state follows it.
  REQUIRE(a->join(kG2, fx.now) == UdpStatus::ok);
  const SocketId old_id = a->igmp_id();
  a->close();
  CHECK(!fx.igmp->interface_state(kG2));
  UdpSocket* again = fx.udp->open();
  REQUIRE(again == a);
  CHECK(again->igmp_id() != old_id);
  CHECK(!fx.igmp->socket_accepts(again->igmp_id(), kG2, kS1));
}

TEST_CASE("UDP multicast: a callback that closes its socket leaves the group at once", "[udp][multicast][igmp]") {
  Fx fx;
  UdpSocket* a = fx.sock();
  REQUIRE(a->join(kG, fx.now) == UdpStatus::ok);
  a->on_readable([](UdpSocket& s, TimeNs now, void*) { s.close(now); }, nullptr);
  (void)fx.reports();
  fx.rx_mcast(kS1, kG, kPort, {1});
  CHECK(fx.udp->open_sockets() == 0);
  CHECK(!fx.igmp->interface_state(kG));
  CHECK(has_record(fx.reports(), rec::kChangeToInclude, kG));
}

TEST_CASE("UDP multicast: join refusals are statuses and change nothing", "[udp][multicast][igmp]") {
  Fx fx;
  UdpSocket* a = fx.sock();
  CHECK(a->join(kS1, fx.now) == UdpStatus::not_multicast);
  CHECK(a->leave(kS1, fx.now) == UdpStatus::not_multicast);
  std::vector<Ipv4Addr> many(fx.igmp->config().max_sources + 1);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = Ipv4Addr{static_cast<std::uint32_t>(0x0a000100 + i)};
  CHECK(a->set_source_filter(kG, FilterMode::include, many, fx.now) == UdpStatus::sources_full);
  CHECK(!fx.igmp->interface_state(kG));
  CHECK(std::string(to_string(UdpStatus::sources_full)) == "too many sources");

  // Group records run out: the status says so, earlier groups are intact.
  IgmpConfig small;
  small.max_groups = 2;
  Fx fy;
  fy.igmp = std::make_unique<IgmpHost>(*fy.stack, small);
  fy.udp = std::make_unique<UdpLayer>(*fy.stack, UdpConfig{}, fy.igmp.get());
  UdpSocket* b = fy.sock();
  CHECK(b->join(kG, fy.now) == UdpStatus::ok);
  CHECK(b->join(kG2, fy.now) == UdpStatus::ok);
  CHECK(b->join(kSsm, fy.now) == UdpStatus::table_full);
  CHECK(fy.igmp->interface_state(kG));

  // A layer without an IgmpHost cannot join; a closed socket cannot either.
  ScopedPool pool{255};
  CollectSink sink;
  Stack st(fx.cfg, pool.mp, fx.caps, sink, fx.now);
  UdpLayer plain(st);
  UdpSocket* p = plain.open();
  CHECK(p->join(kG, fx.now) == UdpStatus::no_igmp);
  p->close();
  CHECK(p->join(kG, fx.now) == UdpStatus::closed);
}

TEST_CASE("UDP multicast: send with TTL 1 by default, the socket's TTL when set", "[udp][multicast][tx]") {
  Fx fx;
  UdpSocket* s = fx.sock(6000);
  const Vec payload{1, 2, 3, 4};
  REQUIRE(s->send_to(Bytes{payload}, kG, kPort, fx.now) == UdpStatus::ok);
  s->set_multicast_ttl(32);
  CHECK(s->multicast_ttl() == 32);
  REQUIRE(s->send_to(Bytes{payload}, kG, kPort, fx.now) == UdpStatus::ok);
  const auto frames = fx.udp_frames();
  REQUIRE(frames.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto eth = wire::EthernetFrame::parse(Bytes{frames[i]});
    REQUIRE(eth);
    CHECK(eth->dst() == wire::multicast_mac(kG));
    const auto ip = wire::Ipv4Packet::parse(Bytes{frames[i]}.subspan(wire::kEthHeaderLen));
    REQUIRE(ip);
    CHECK(ip->dst() == kG);
    CHECK(ip->ttl() == (i == 0 ? 1 : 32));
    const auto u = wire::UdpDatagram::parse(ip->payload(), ip->src(), ip->dst(), true);
    REQUIRE(u);
    CHECK(Vec(u->payload().begin(), u->payload().end()) == payload);
  }
  // The TTL is for groups only: unicast keeps the stack's.
  CHECK(s->set_multicast_if(Ipv4Addr{}) == UdpStatus::ok);
  CHECK(s->set_multicast_if(kOurIp) == UdpStatus::ok);
  CHECK(s->set_multicast_if(kS1) == UdpStatus::bad_address);
}

TEST_CASE("UDP multicast: loopback delivers to local members, once, without a copy", "[udp][multicast][loop]") {
  Fx fx;
  UdpSocket* member = fx.sock();
  UdpSocket* member2 = fx.sock();
  UdpSocket* outsider = fx.sock();
  REQUIRE(member->join(kG, fx.now) == UdpStatus::ok);
  REQUIRE(member2->join(kG, fx.now) == UdpStatus::ok);
  (void)fx.sink.take();
  UdpSocket* tx = fx.udp->open();
  const Vec payload{'f', 'e', 'e', 'd'};

  REQUIRE(tx->send_to(Bytes{payload}, kG, kPort, fx.now) == UdpStatus::ok);
  CHECK(member->rx_queued() == 0);  // off by default
  tx->set_multicast_loop(true);
  REQUIRE(tx->send_to(Bytes{payload}, kG, kPort, fx.now) == UdpStatus::ok);
  CHECK(fx.udp_frames().size() == 2);  // the wire still gets every one
  CHECK(tx->stats().tx_looped == 1);
  CHECK(fx.ctr(StackCounter::udp_tx_multicast_loop) == 1);
  for (UdpSocket* m : {member, member2}) {
    auto d = m->recv();
    REQUIRE(d);
    CHECK(d->from == UdpEndpoint{kOurIp, tx->local().port});
    CHECK(d->to == kG);
    CHECK(Vec(d->pkt.data().begin(), d->pkt.data().end()) == payload);
    CHECK(!m->recv());
  }
  CHECK(outsider->rx_queued() == 0);
  // A group nobody here joined: looped, then dropped by the interface filter.
  REQUIRE(tx->send_to(Bytes{payload}, kG2, kPort, fx.now) == UdpStatus::ok);
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);
  // Unicast is never looped.
  fx.rx_mcast(kS1, kG, kPort, {0});  // (keeps the counters honest: a real datagram still arrives)
  CHECK(member->rx_queued() == 1);
}

#if USTACK_COUNT_ALLOCS
TEST_CASE("UDP multicast: join, receive, loop and leave allocate nothing", "[udp][multicast][alloc]") {
  Fx fx;
  UdpSocket* a = fx.sock();
  UdpSocket* tx = fx.udp->open();
  tx->set_multicast_loop(true);
  const Vec payload(64, 0x5a);
  const Vec frame = eth_frame(wire::multicast_mac(kG), kPeerMac, wire::ethertype::kIpv4,
                              ipv4_datagram(kS1, kG, wire::ipproto::kUdp, udp_msg(kS1, kG, 4000, kPort, payload)));
  // Warm up once (the collecting sink's vector grows).
  REQUIRE(a->join(kG, fx.now) == UdpStatus::ok);
  REQUIRE(a->leave(kG, fx.now) == UdpStatus::ok);
  fx.sink.out.reserve(64);
  fx.sink.out.clear();
  const auto before = thread_alloc_count();
  for (int i = 0; i < 8; ++i) {
    REQUIRE(a->join(kG, fx.now) == UdpStatus::ok);
    Packet p = packet_of(Bytes{frame}, fx.pool.mp);
    fx.stack->rx(p.release(), fx.now);
    REQUIRE(tx->send_to(Bytes{payload}, kG, kPort, fx.now) == UdpStatus::ok);
    CHECK(drain(*a) == 2);
    REQUIRE(a->leave(kG, fx.now) == UdpStatus::ok);
    fx.sink.out.clear();
  }
  CHECK(thread_alloc_count() == before);
}
#endif
