// Stack behaviour on a virtual clock: frames in at explicit times, frames
// out through a collecting sink. One fixture; each section is one case.
#include <catch2/catch.hpp>

#include "test/unit/net/frames.hpp"
#include "wire/checksum.hpp"

using namespace ustack;
using namespace ustack::test;
using wire::ArpOp;

namespace {

struct Fixture {
  rte_mempool* mp;
  unsigned avail_at_start;
  CollectSink sink;
  DeviceCaps caps;
  StackConfig cfg;
  std::unique_ptr<Stack> stack;
  TimeNs now = 1'000'000'000;

  explicit Fixture(StackConfig c = default_config(), rte_mempool* pool_ = nullptr)
      : mp(pool_ ? pool_ : test::pool()), avail_at_start(rte_mempool_avail_count(mp)), cfg(c) {
    caps.mac = kOurMac;
    stack = std::make_unique<Stack>(cfg, mp, caps, sink, now);
  }
  ~Fixture() {
    sink.out.clear();
    stack.reset();
  }

  static StackConfig default_config() {
    StackConfig c;
    c.mac = kOurMac;
    c.ip = Ipv4Cidr{kOurIp, 24};
    c.gratuitous_arp_on_start = true;
    return c;
  }

  void rx(const std::vector<std::uint8_t>& frame) { stack->rx(packet_of(frame, mp).release(), now); }
  void advance(TimeNs dt) {
    now += dt;
    stack->poll(now);
  }
  std::uint64_t ctr(StackCounter c) const { return stack->counters().get(c); }

  // Teach the stack the peer's MAC through an ARP request for us.
  void learn_peer() {
    rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                 arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp)));
    sink.out.clear();
  }
};

wire::EthernetFrame eth_of(const std::vector<std::uint8_t>& f) {
  auto e = wire::EthernetFrame::parse(f);
  REQUIRE(e.ok());
  return *e;
}

}  // namespace

TEST_CASE("ARP: a request for our address is answered and teaches us the sender", "[arp]") {
  Fixture fx;
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp)));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  auto eth = eth_of(out[0]);
  CHECK(eth.dst() == kPeerMac);
  CHECK(eth.src() == kOurMac);
  CHECK(eth.ethertype() == wire::ethertype::kArp);
  CHECK(out[0].size() == 14 + 28);  // link padding of the request is not echoed
  auto arp = wire::ArpPacket::parse(eth.payload());
  REQUIRE(arp.ok());
  CHECK(arp->op() == ArpOp::reply);
  CHECK(arp->sender_mac() == kOurMac);
  CHECK(arp->sender_ip() == kOurIp);
  CHECK(arp->target_mac() == kPeerMac);
  CHECK(arp->target_ip() == kPeerIp);
  CHECK(fx.stack->arp().state(kPeerIp) == ArpCache::State::reachable);
  CHECK(fx.ctr(StackCounter::arp_rx_request) == 1);
  CHECK(fx.ctr(StackCounter::arp_tx_reply) == 1);
}

TEST_CASE("ARP: requests for other hosts are not answered and do not create entries", "[arp]") {
  Fixture fx;
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, Ipv4Addr{10, 0, 0, 77})));
  CHECK(fx.sink.out.empty());
  CHECK(fx.stack->arp().state(kPeerIp) == ArpCache::State::free);
  CHECK(fx.ctr(StackCounter::arp_drop_not_for_us) == 1);
}

TEST_CASE("ARP: start announces our address (RFC 5227 gratuitous ARP)", "[arp]") {
  Fixture fx;
  fx.stack->start(fx.now);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  auto eth = eth_of(out[0]);
  CHECK(eth.dst().is_broadcast());
  auto arp = wire::ArpPacket::parse(eth.payload());
  REQUIRE(arp.ok());
  CHECK(arp->op() == ArpOp::request);
  CHECK(arp->sender_ip() == kOurIp);
  CHECK(arp->target_ip() == kOurIp);
  CHECK(fx.ctr(StackCounter::arp_tx_gratuitous) == 1);
}

TEST_CASE("ARP: malformed and unsupported ARP is counted by reason", "[arp][drop]") {
  Fixture fx;
  auto good = arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp);
  auto truncated = std::vector<std::uint8_t>(good.begin(), good.begin() + 20);
  auto bad_hlen = good;
  bad_hlen[4] = 8;
  auto bad_htype = good;
  bad_htype[1] = 6;  // IEEE 802 hardware type
  auto bad_op = good;
  bad_op[7] = 9;
  auto mcast_sender = arp_payload(ArpOp::request, MacAddr::broadcast(), kPeerIp, MacAddr{}, kOurIp);
  for (auto* p : {&truncated, &bad_hlen, &bad_htype, &bad_op, &mcast_sender})
    fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp, *p));
  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::arp_drop_truncated) == 1);
  CHECK(fx.ctr(StackCounter::arp_drop_malformed) == 2);
  CHECK(fx.ctr(StackCounter::arp_drop_unsupported) == 2);
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}

TEST_CASE("ICMP: echo request is answered in place, byte-exact payload", "[icmp]") {
  Fixture fx;
  fx.learn_peer();
  std::vector<std::uint8_t> data(56);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const unsigned before = rte_mempool_avail_count(fx.mp);
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4,
                  ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kIcmp, echo_msg(true, 0x4242, 7, data))));
  REQUIRE(fx.sink.out.size() == 1);
  CHECK(rte_mempool_avail_count(fx.mp) == before - 1);  // the request's mbuf became the reply
  auto out = fx.sink.take();
  auto eth = eth_of(out[0]);
  CHECK(eth.dst() == kPeerMac);
  auto ip = wire::Ipv4Packet::parse(eth.payload());
  REQUIRE(ip.ok());  // includes header checksum verification
  CHECK(ip->src() == kOurIp);
  CHECK(ip->dst() == kPeerIp);
  CHECK(ip->protocol() == wire::ipproto::kIcmp);
  auto icmp = wire::IcmpPacket::parse(ip->payload());
  REQUIRE(icmp.ok());  // includes ICMP checksum verification
  CHECK(icmp->type() == wire::icmp_type::kEchoReply);
  CHECK(icmp->echo_ident() == 0x4242);
  CHECK(icmp->echo_seq() == 7);
  CHECK(std::vector<std::uint8_t>(icmp->body().begin(), icmp->body().end()) == data);
  CHECK(fx.ctr(StackCounter::icmp_tx_echo_reply) == 1);
}

TEST_CASE("ICMP: echo with link padding and IP options is answered without them", "[icmp]") {
  Fixture fx;
  fx.learn_peer();
  auto dgram = ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {1, 2, 3}));
  // Insert a 4-byte NOP option block: IHL 6, total length + 4, new checksum.
  dgram.insert(dgram.begin() + 20, {1, 1, 1, 0});
  dgram[0] = 0x46;
  store_be16(dgram, 2, static_cast<std::uint16_t>(dgram.size()));
  store_be16(dgram, 10, 0);
  store_be16(dgram, 10, wire::internet_checksum(Bytes{dgram.data(), 24}));
  auto frame = eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, dgram);
  frame.resize(frame.size() + 9, 0xee);  // trailing link-layer padding
  fx.rx(frame);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  auto ip = wire::Ipv4Packet::parse(eth_of(out[0]).payload());
  REQUIRE(ip.ok());
  CHECK(ip->header_len() == 20);
  CHECK(ip->total_len() == 20 + 8 + 3);
  CHECK(out[0].size() == 14 + 20 + 8 + 3);
}

TEST_CASE("ICMP: echo to broadcast is not answered by default", "[icmp]") {
  Fixture fx;
  fx.learn_peer();
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kIpv4,
                  ipv4_datagram(kPeerIp, Ipv4Addr{10, 0, 0, 255}, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {}))));
  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::icmp_drop_broadcast_echo) == 1);
}

TEST_CASE("IPv4: every malformed datagram is a counted drop with its reason", "[ipv4][drop]") {
  Fixture fx;
  fx.learn_peer();
  auto good = ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {9, 9}));
  auto fix_cksum = [](std::vector<std::uint8_t>& d) {
    const std::size_t ihl = static_cast<std::size_t>(d[0] & 0xf) * 4;
    store_be16(d, 10, 0);
    if (ihl <= d.size() && ihl >= 20) store_be16(d, 10, wire::internet_checksum(Bytes{d.data(), ihl}));
  };
  auto send = [&](std::vector<std::uint8_t> d) { fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, d)); };

  send({good.begin(), good.begin() + 12});  // truncated header
  auto v6 = good; v6[0] = 0x65; fix_cksum(v6); send(v6);
  auto ihl4 = good; ihl4[0] = 0x44; send(ihl4);
  auto ihl15 = good; ihl15[0] = 0x4f; fix_cksum(ihl15); send(ihl15);  // IHL beyond the buffer
  auto short_total = good; store_be16(short_total, 2, 16); fix_cksum(short_total); send(short_total);
  auto long_total = good; store_be16(long_total, 2, 200); fix_cksum(long_total); send(long_total);
  auto bad_sum = good; bad_sum[10] ^= 0x01; send(bad_sum);
  auto frag = good; store_be16(frag, 6, 0x2000); fix_cksum(frag); send(frag);  // MF set
  auto frag2 = good; store_be16(frag2, 6, 0x0010); fix_cksum(frag2); send(frag2);  // offset 128
  auto other_dst = ipv4_datagram(kPeerIp, Ipv4Addr{10, 0, 0, 9}, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {}));
  send(other_dst);
  auto mcast_src = ipv4_datagram(Ipv4Addr{224, 0, 0, 1}, kOurIp, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {}));
  send(mcast_src);
  fx.rx({0x01, 0x02, 0x03});  // truncated Ethernet
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv6, good));
  fx.rx(eth_frame(MacAddr{{0x02, 9, 9, 9, 9, 9}}, kPeerMac, wire::ethertype::kIpv4, good));
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, good, std::uint16_t{5}));  // VLAN 5, none configured
  auto bad_icmp = ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kIcmp, {8, 0, 0, 0, 0, 1, 0, 1});  // wrong sum
  send(bad_icmp);
  send(ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kIcmp, {8, 0, 0}));  // truncated ICMP

  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::ipv4_drop_truncated) == 3);
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_version) == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_ihl) == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_length) == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_checksum) == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_fragment) == 2);
  CHECK(fx.ctr(StackCounter::ipv4_drop_not_for_us) == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_source) == 1);
  CHECK(fx.ctr(StackCounter::eth_drop_truncated) == 1);
  CHECK(fx.ctr(StackCounter::eth_drop_unknown_ethertype) == 1);
  CHECK(fx.ctr(StackCounter::eth_drop_not_for_us) == 1);
  CHECK(fx.ctr(StackCounter::eth_drop_vlan_mismatch) == 1);
  CHECK(fx.ctr(StackCounter::icmp_drop_bad_checksum) == 1);
  CHECK(fx.ctr(StackCounter::icmp_drop_truncated) == 1);
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}

TEST_CASE("IPv4: unknown protocol gets a rate-limited protocol-unreachable quoting the datagram", "[ipv4][icmp]") {
  StackConfig cfg = Fixture::default_config();
  cfg.icmp_errors_per_sec = 10;
  cfg.icmp_error_burst = 3;
  Fixture fx(cfg);
  fx.learn_peer();
  const auto dgram = ipv4_datagram(kPeerIp, kOurIp, 99, std::vector<std::uint8_t>(40, 0xab));
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, dgram));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  auto ip = wire::Ipv4Packet::parse(eth_of(out[0]).payload());
  REQUIRE(ip.ok());
  CHECK(ip->dst() == kPeerIp);
  auto icmp = wire::IcmpPacket::parse(ip->payload());
  REQUIRE(icmp.ok());
  CHECK(icmp->type() == wire::icmp_type::kDestUnreachable);
  CHECK(icmp->code() == wire::icmp_unreach::kProtocol);
  // RFC 792: the offending header plus the first 8 bytes of its payload.
  REQUIRE(icmp->body().size() == 28);
  CHECK(std::equal(icmp->body().begin(), icmp->body().end(), dgram.begin()));

  // Burst of 3: two more pass at the same instant, then the limiter holds.
  for (int i = 0; i < 5; ++i) fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, dgram));
  CHECK(fx.sink.take().size() == 2);
  CHECK(fx.ctr(StackCounter::icmp_error_rate_limited) == 3);
  fx.advance(100 * kNsPerMs);  // 10/s refills one token in 100 ms
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, dgram));
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, dgram));
  CHECK(fx.sink.take().size() == 1);
  CHECK(fx.ctr(StackCounter::ipv4_drop_unknown_protocol) == 8);
}

TEST_CASE("IPv4: no ICMP error about broadcasts or ICMP errors", "[ipv4][icmp]") {
  Fixture fx;
  fx.learn_peer();
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kIpv4,
                  ipv4_datagram(kPeerIp, Ipv4Addr{10, 0, 0, 255}, 99, {1, 2, 3, 4})));
  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::ipv4_drop_unknown_protocol) == 1);
}

TEST_CASE("ARP resolution: queued output, retries, timeout, bounded queue", "[arp]") {
  StackConfig cfg = Fixture::default_config();
  cfg.arp.pending_per_entry = 2;
  cfg.arp.max_retries = 2;
  cfg.arp.retry_ns = 1 * kNsPerSec;
  Fixture fx(cfg);
  const Ipv4Addr target{10, 0, 0, 50};

  CHECK(fx.stack->send_echo_request(target, 1, 1, {}, fx.now));
  CHECK(fx.stack->send_echo_request(target, 1, 2, {}, fx.now));
  CHECK_FALSE(fx.stack->send_echo_request(target, 1, 3, {}, fx.now));  // queue of 2 is full
  CHECK(fx.ctr(StackCounter::arp_drop_pending_overflow) == 1);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);  // one request, not one per packet
  auto arp = wire::ArpPacket::parse(eth_of(out[0]).payload());
  REQUIRE(arp.ok());
  CHECK(arp->op() == ArpOp::request);
  CHECK(arp->target_ip() == target);
  CHECK(fx.stack->arp().state(target) == ArpCache::State::incomplete);

  fx.advance(999 * kNsPerMs);
  CHECK(fx.sink.out.empty());  // not before the retry interval
  fx.advance(2 * kNsPerMs);
  CHECK(fx.sink.take().size() == 1);  // retry 1
  fx.advance(1 * kNsPerSec + kNsPerMs);
  CHECK(fx.sink.take().size() == 1);  // retry 2
  fx.advance(1 * kNsPerSec + kNsPerMs);
  CHECK(fx.sink.out.empty());  // gave up
  CHECK(fx.stack->arp().state(target) == ArpCache::State::free);
  CHECK(fx.ctr(StackCounter::arp_resolve_failed) == 1);
  CHECK(fx.ctr(StackCounter::arp_drop_resolve_timeout) == 2);
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}

TEST_CASE("ARP resolution: a reply releases the queued packets in order", "[arp]") {
  Fixture fx;
  CHECK(fx.stack->send_echo_request(kPeerIp, 9, 1, {}, fx.now));
  CHECK(fx.stack->send_echo_request(kPeerIp, 9, 2, {}, fx.now));
  fx.sink.out.clear();
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::reply, kPeerMac, kPeerIp, kOurMac, kOurIp)));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2);
  for (std::uint16_t i = 0; i < 2; ++i) {
    auto eth = eth_of(out[i]);
    CHECK(eth.dst() == kPeerMac);
    auto ip = wire::Ipv4Packet::parse(eth.payload());
    REQUIRE(ip.ok());
    auto icmp = wire::IcmpPacket::parse(ip->payload());
    REQUIRE(icmp.ok());
    CHECK(icmp->echo_seq() == i + 1);
  }
  // A later send goes straight out.
  CHECK(fx.stack->send_echo_request(kPeerIp, 9, 3, {}, fx.now));
  CHECK(fx.sink.take().size() == 1);
}

TEST_CASE("ARP: reachable entries go stale, are confirmed by unicast, then expire", "[arp]") {
  StackConfig cfg = Fixture::default_config();
  cfg.arp.reachable_ns = 10 * kNsPerSec;
  Fixture fx(cfg);
  fx.learn_peer();
  fx.advance(10 * kNsPerSec + kNsPerMs);
  CHECK(fx.stack->arp().state(kPeerIp) == ArpCache::State::stale);
  CHECK(fx.stack->send_echo_request(kPeerIp, 1, 1, {}, fx.now));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2);  // unicast confirmation + the echo, still sent to the known MAC
  auto eth0 = eth_of(out[0]);
  CHECK(eth0.dst() == kPeerMac);
  CHECK(eth0.ethertype() == wire::ethertype::kArp);
  CHECK(eth_of(out[1]).dst() == kPeerMac);
  fx.advance(10 * kNsPerSec + kNsPerMs);
  CHECK(fx.stack->arp().state(kPeerIp) == ArpCache::State::free);
}

TEST_CASE("ARP: a full table refuses new resolutions without evicting", "[arp]") {
  StackConfig cfg = Fixture::default_config();
  cfg.arp.entries = 4;
  Fixture fx(cfg);
  fx.learn_peer();
  for (std::uint8_t i = 10; i < 13; ++i) CHECK(fx.stack->send_echo_request(Ipv4Addr{10, 0, 0, i}, 1, 1, {}, fx.now));
  CHECK(fx.stack->arp().size() == 4);
  CHECK_FALSE(fx.stack->send_echo_request(Ipv4Addr{10, 0, 0, 20}, 1, 1, {}, fx.now));
  CHECK(fx.ctr(StackCounter::arp_drop_table_full) == 1);
  CHECK(fx.stack->arp().state(kPeerIp) == ArpCache::State::reachable);
}

TEST_CASE("ARP: many entries inserted and expired keep the hash table consistent", "[arp]") {
  StackConfig cfg = Fixture::default_config();
  cfg.ip = Ipv4Cidr{Ipv4Addr{10, 0, 0, 2}, 16};
  cfg.arp.entries = 512;
  cfg.arp.max_retries = 0;
  Fixture fx(cfg);
  // Waves of resolutions that time out at different instants exercise
  // backward-shift deletion in every position of the probe runs.
  for (int wave = 0; wave < 20; ++wave) {
    for (std::uint32_t i = 0; i < 40; ++i) {
      const Ipv4Addr a{(10u << 24) | (static_cast<std::uint32_t>(wave) << 8) | (i * 37 % 250 + 1)};
      fx.stack->send_echo_request(a, 1, 1, {}, fx.now);
      if (i % 7 == 0) fx.advance(100 * kNsPerMs);
    }
    for (std::uint32_t i = 0; i < 40; i += 3) {
      const Ipv4Addr a{(10u << 24) | (static_cast<std::uint32_t>(wave) << 8) | (i * 37 % 250 + 1)};
      fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kArp, arp_payload(ArpOp::reply, kPeerMac, a, kOurMac, kOurIp)));
      CHECK(fx.stack->arp().state(a) == ArpCache::State::reachable);
    }
    fx.sink.out.clear();
  }
  for (int i = 0; i < 3; ++i) fx.advance(61 * kNsPerSec);  // reachable -> stale -> gone
  CHECK(fx.stack->arp().size() == 0);
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}

TEST_CASE("Routing: off-subnet goes to the gateway, no gateway means no route", "[ipv4]") {
  SECTION("no gateway") {
    Fixture fx;
    CHECK_FALSE(fx.stack->send_echo_request(Ipv4Addr{192, 0, 2, 1}, 1, 1, {}, fx.now));
    CHECK(fx.ctr(StackCounter::ipv4_drop_no_route) == 1);
    CHECK(fx.sink.out.empty());
  }
  SECTION("gateway") {
    StackConfig cfg = Fixture::default_config();
    cfg.gateway = kGwIp;
    Fixture fx(cfg);
    CHECK(fx.stack->send_echo_request(Ipv4Addr{192, 0, 2, 1}, 1, 1, {}, fx.now));
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    auto arp = wire::ArpPacket::parse(eth_of(out[0]).payload());
    REQUIRE(arp.ok());
    CHECK(arp->target_ip() == kGwIp);  // resolves the gateway, not the destination
    fx.rx(eth_frame(kOurMac, kGwMac, wire::ethertype::kArp, arp_payload(ArpOp::reply, kGwMac, kGwIp, kOurMac, kOurIp)));
    out = fx.sink.take();
    REQUIRE(out.size() == 1);
    auto eth = eth_of(out[0]);
    CHECK(eth.dst() == kGwMac);
    auto ip = wire::Ipv4Packet::parse(eth.payload());
    REQUIRE(ip.ok());
    CHECK(ip->dst() == Ipv4Addr{192, 0, 2, 1});
  }
}

TEST_CASE("VLAN: a configured VID tags output and filters input", "[vlan]") {
  StackConfig cfg = Fixture::default_config();
  cfg.vlan = 42;
  Fixture fx(cfg);
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp)));  // untagged
  CHECK(fx.sink.out.empty());
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp), std::uint16_t{0x2000 | 42}));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  auto eth = eth_of(out[0]);
  CHECK(eth.vlan_id() == std::optional<std::uint16_t>{42});
  CHECK(eth.ethertype() == wire::ethertype::kArp);
  CHECK(fx.ctr(StackCounter::eth_drop_vlan_mismatch) == 1);
}

TEST_CASE("Resources: an exhausted mempool is a counted failure, not a crash", "[resources]") {
  rte_mempool* tiny = make_pool("stack_tiny", 4);
  {
    Fixture fx(Fixture::default_config(), tiny);
    fx.learn_peer();
    std::vector<Packet> hold;
    while (auto p = Packet::alloc(tiny)) hold.push_back(std::move(p));
    CHECK_FALSE(fx.stack->send_echo_request(kPeerIp, 1, 1, {}, fx.now));
    CHECK(fx.ctr(StackCounter::mbuf_alloc_failed) == 1);
  }
  rte_mempool_free(tiny);
}

TEST_CASE("ICMP: an echo request from 0.0.0.0 gets no reply", "[icmp]") {
  Fixture fx;
  fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4,
                  ipv4_datagram(Ipv4Addr{}, kOurIp, wire::ipproto::kIcmp, echo_msg(true, 1, 1, {1}))));
  CHECK(fx.sink.out.empty());
  CHECK(fx.ctr(StackCounter::ipv4_drop_bad_source) == 1);
  CHECK(fx.ctr(StackCounter::icmp_tx_echo_reply) == 0);
}

TEST_CASE("VLAN: a priority tag (VID 0) counts as untagged", "[vlan]") {
  Fixture fx;
  fx.rx(eth_frame(MacAddr::broadcast(), kPeerMac, wire::ethertype::kArp,
                  arp_payload(ArpOp::request, kPeerMac, kPeerIp, MacAddr{}, kOurIp), std::uint16_t{0xa000}));
  CHECK(fx.sink.take().size() == 1);
  CHECK(fx.ctr(StackCounter::eth_drop_vlan_mismatch) == 0);
}

namespace {

// Records what reached an upper layer.
struct RecordingHandler final : ProtocolHandler {
  void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs) override {
    dsts.push_back(ip.dst());
    Packet done = std::move(pkt);
  }
  std::vector<Ipv4Addr> dsts;
};

// A membership filter for tests: one group, one allowed source (any when unset).
struct TestFilter {
  Ipv4Addr group;
  std::optional<Ipv4Addr> only_src;
  static bool fn(Ipv4Addr g, Ipv4Addr s, std::uint8_t, const void* ctx) {
    const auto& f = *static_cast<const TestFilter*>(ctx);
    return g == f.group && (!f.only_src || *f.only_src == s);
  }
};

Packet payload_packet(std::initializer_list<std::uint8_t> bytes) {
  Packet p = Packet::alloc(test::pool());
  REQUIRE(p);
  MutBytes b = p.append(bytes.size());
  std::copy(bytes.begin(), bytes.end(), b.begin());
  return p;
}

}  // namespace

TEST_CASE("IPv4 output: multicast needs no route or ARP; TTL 1 by default", "[ipv4][multicast]") {
  Fixture fx;  // no gateway: a unicast off-subnet destination would have no route
  const Ipv4Addr group{239, 1, 2, 3};
  REQUIRE(fx.stack->ip_output(payload_packet({1, 2, 3, 4}), group, 99, fx.now));
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);  // no ARP request first
  auto eth = eth_of(out[0]);
  CHECK(eth.dst() == MacAddr{{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}});
  auto ip = wire::Ipv4Packet::parse(eth.payload());
  REQUIRE(ip.ok());
  CHECK(ip->dst() == group);
  CHECK(ip->ttl() == 1);
  CHECK(ip->header_len() == 20);
  CHECK_FALSE(ip->has_router_alert());
  CHECK(fx.ctr(StackCounter::arp_tx_request) == 0);
}

TEST_CASE("IPv4 output: Router Alert and TTL on request, checksum offload covers 24 bytes", "[ipv4][multicast]") {
  SECTION("software checksum") {
    Fixture fx;
    const Ipv4TxOptions opt{0xc0, std::uint8_t{1}, true};
    REQUIRE(fx.stack->ip_output(payload_packet({9, 9, 9, 9, 9, 9, 9, 9}), Ipv4Addr{224, 0, 0, 22}, wire::ipproto::kIgmp,
                                fx.now, opt));
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    auto eth = eth_of(out[0]);
    CHECK(eth.dst() == MacAddr{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x16}});
    auto ip = wire::Ipv4Packet::parse(eth.payload());
    REQUIRE(ip.ok());  // checksum over all 24 bytes
    CHECK(ip->header_len() == 24);
    CHECK(ip->has_router_alert());
    CHECK(ip->tos() == 0xc0);
    CHECK(ip->ttl() == 1);
    CHECK(ip->total_len() == 32);
    CHECK(ip->payload().size() == 8);
  }
  SECTION("TTL override on unicast, options off") {
    Fixture fx;
    fx.learn_peer();
    REQUIRE(fx.stack->ip_output(payload_packet({1}), kPeerIp, 99, fx.now, Ipv4TxOptions{0, std::uint8_t{7}, false}));
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    auto ip = wire::Ipv4Packet::parse(eth_of(out[0]).payload());
    REQUIRE(ip.ok());
    CHECK(ip->ttl() == 7);
    CHECK(ip->header_len() == 20);
  }
  SECTION("NIC checksum: l3_len is the header with options") {
    StackConfig cfg = Fixture::default_config();
    rte_mempool* mp = test::pool();
    CollectSink sink;
    DeviceCaps caps;
    caps.mac = kOurMac;
    caps.tx_ipv4_cksum = true;
    Stack stack(cfg, mp, caps, sink, 1'000'000'000);
    REQUIRE(stack.ip_output(payload_packet({1, 2, 3, 4}), Ipv4Addr{224, 0, 0, 22}, wire::ipproto::kIgmp, 1'000'000'000,
                            Ipv4TxOptions{0xc0, std::nullopt, true}));
    REQUIRE(sink.out.size() == 1);
    CHECK(sink.out[0].get()->l3_len == 24);
    CHECK((sink.out[0].get()->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) != 0);
    const auto bytes = bytes_of(sink.out[0]);
    CHECK(bytes[14] == 0x46);
    CHECK(bytes[14 + 10] == 0);  // left for the NIC
    CHECK(bytes[14 + 11] == 0);
    sink.out.clear();
  }
}

TEST_CASE("IPv4 input: the membership filter decides multicast delivery", "[ipv4][multicast]") {
  Fixture fx;
  RecordingHandler h;
  fx.stack->set_protocol_handler(99, &h);
  const Ipv4Addr joined{239, 1, 2, 3};
  const Ipv4Addr other{239, 1, 2, 4};
  const Ipv4Addr all_systems{224, 0, 0, 1};
  auto send = [&](Ipv4Addr dst, Ipv4Addr src = kPeerIp) {
    fx.rx(eth_frame(wire::multicast_mac(dst), kPeerMac, wire::ethertype::kIpv4, ipv4_datagram(src, dst, 99, {1, 2})));
  };
  SECTION("no filter: every multicast datagram is delivered (as before IGMP)") {
    send(joined);
    send(other);
    CHECK(h.dsts.size() == 2);
    CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 0);
  }
  SECTION("with a filter: joined groups and 224.0.0.1 only") {
    TestFilter f{joined, std::nullopt};
    fx.stack->set_multicast_filter(&TestFilter::fn, &f);
    send(joined);
    send(other);
    send(all_systems);
    CHECK(h.dsts == std::vector<Ipv4Addr>{joined, all_systems});
    CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);
    // Unicast is not the filter's business.
    fx.rx(eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4, ipv4_datagram(kPeerIp, kOurIp, 99, {1})));
    CHECK(h.dsts.size() == 3);
  }
  SECTION("the filter sees the source") {
    TestFilter f{joined, Ipv4Addr{10, 0, 0, 7}};
    fx.stack->set_multicast_filter(&TestFilter::fn, &f);
    send(joined, kPeerIp);
    send(joined, Ipv4Addr{10, 0, 0, 7});
    CHECK(h.dsts.size() == 1);
    CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);
  }
  fx.stack->set_protocol_handler(99, nullptr);
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}
