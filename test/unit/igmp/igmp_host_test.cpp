// The IGMPv3 host (RFC 3376 §3.2, §5, §7.2.1; RFC 2236 §3, §6) on a virtual
// clock: a Stack with a collecting sink, queries and reports fed in as
// frames at explicit times, everything emitted parsed back with the wire
// views. Random delays come from a seeded or scripted generator.
//
// Frame literals were generated with scapy 2.5 (scapy.contrib.igmp,
// scapy.contrib.igmpv3; expression next to each).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "igmp/igmp_host.hpp"
#include "runtime/engine.hpp"
#include "test/unit/net/frames.hpp"
#include "wire/ethernet.hpp"
#include "wire/igmp.hpp"
#include "wire/ipv4.hpp"

#if USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::test;
namespace rec = wire::igmp_record;
using Vec = std::vector<std::uint8_t>;

namespace {

// A 100 µs wheel fires at most one tick late.
constexpr TimeNs kTick = 100 * kNsPerUs;

const Ipv4Addr kG{239, 1, 2, 3};
const Ipv4Addr kG2{239, 1, 2, 4};
const Ipv4Addr kSsm{232, 1, 1, 1};
const Ipv4Addr kS1{10, 0, 0, 1};
const Ipv4Addr kS2{10, 0, 0, 9};
const Ipv4Addr kS3{10, 0, 0, 20};
const Ipv4Addr kS4{10, 0, 0, 21};
const Ipv4Addr kS5{10, 0, 0, 22};
const Ipv4Addr kRouter{10, 0, 0, 254};
const Ipv4Addr kOtherHost{10, 0, 0, 77};
const Ipv4Addr kAllSystems{224, 0, 0, 1};

// scapy: Ether(dst="01:00:5e:00:00:16", src="02:00:00:00:00:02")/IP(src="10.0.0.2", dst="224.0.0.22",
//          ttl=1, tos=0xc0, id=0, flags="DF", options=[IPOption_Router_Alert()])
//        /IGMPv3(type=0x22)/IGMPv3mr(records=[IGMPv3gr(rtype=4, maddr="239.1.2.3")])
const Vec kFrameJoinV3{
    0x01, 0x00, 0x5e, 0x00, 0x00, 0x16, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x46, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02,
    0xf9, 0xf7, 0x0a, 0x00, 0x00, 0x02, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04,
    0x00, 0x00, 0x22, 0x00, 0xe8, 0xf9, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00,
    0x00, 0x00, 0xef, 0x01, 0x02, 0x03,
};

// scapy: (the same Ether/IP)/IGMPv3(type=0x22)/IGMPv3mr(records=[IGMPv3gr(rtype=5,
//          maddr="232.1.1.1", srcaddrs=["10.0.0.1", "10.0.0.9"])])
const Vec kFrameSsmJoinV3{
    0x01, 0x00, 0x5e, 0x00, 0x00, 0x16, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x46, 0xc0, 0x00, 0x30, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02,
    0xf9, 0xef, 0x0a, 0x00, 0x00, 0x02, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04,
    0x00, 0x00, 0x22, 0x00, 0xdb, 0xef, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00,
    0x00, 0x02, 0xe8, 0x01, 0x01, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
    0x00, 0x09,
};

// scapy: Ether(dst="01:00:5e:01:02:03", src="02:00:00:00:00:02")/IP(src="10.0.0.2", dst="239.1.2.3",
//          ttl=1, tos=0xc0, id=0, flags="DF", options=[IPOption_Router_Alert()])
//        /IGMP(type=0x16, mrcode=0, gaddr="239.1.2.3")
const Vec kFrameReportV2{
    0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02,
    0xe9, 0x11, 0x0a, 0x00, 0x00, 0x02, 0xef, 0x01, 0x02, 0x03, 0x94, 0x04,
    0x00, 0x00, 0x16, 0x00, 0xf8, 0xfa, 0xef, 0x01, 0x02, 0x03,
};

// scapy: Ether(dst="01:00:5e:00:00:02", src="02:00:00:00:00:02")/IP(src="10.0.0.2", dst="224.0.0.2",
//          ttl=1, tos=0xc0, id=1, flags="DF", options=[IPOption_Router_Alert()])
//        /IGMP(type=0x17, mrcode=0, gaddr="239.1.2.3")
const Vec kFrameLeaveV2{
    0x01, 0x00, 0x5e, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x46, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x01, 0x02,
    0xfa, 0x12, 0x0a, 0x00, 0x00, 0x02, 0xe0, 0x00, 0x00, 0x02, 0x94, 0x04,
    0x00, 0x00, 0x17, 0x00, 0xf7, 0xfa, 0xef, 0x01, 0x02, 0x03,
};

// scapy: Ether(dst="01:00:5e:01:02:03", src="02:00:00:00:00:02")/IP(src="10.0.0.2", dst="239.1.2.3",
//          ttl=1, tos=0xc0, id=0, flags="DF", options=[IPOption_Router_Alert()])
//        /IGMP(type=0x12, mrcode=0, gaddr="239.1.2.3")
const Vec kFrameReportV1{
    0x01, 0x00, 0x5e, 0x01, 0x02, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02,
    0xe9, 0x11, 0x0a, 0x00, 0x00, 0x02, 0xef, 0x01, 0x02, 0x03, 0x94, 0x04,
    0x00, 0x00, 0x12, 0x00, 0xfc, 0xfa, 0xef, 0x01, 0x02, 0x03,
};

struct Sent {
  TimeNs at;
  Vec frame;
};

class TimedSink final : public PacketSink {
 public:
  void emit(Packet&& p, TimeNs now) override {
    out.push_back(Sent{now, bytes_of(p)});
    Packet done = std::move(p);
  }
  std::vector<Sent> take() { return std::exchange(out, {}); }
  std::vector<Sent> out;
};

// Values from a script first, then SplitMix64 from a seed.
struct TestRng {
  std::uint64_t state = 1;
  std::deque<std::uint64_t> script;
  static std::uint64_t next(void* ctx) {
    auto& r = *static_cast<TestRng*>(ctx);
    if (!r.script.empty()) {
      const std::uint64_t v = r.script.front();
      r.script.pop_front();
      return v;
    }
    std::uint64_t z = (r.state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // The value that makes random_delay(max) return exactly `d` (1 <= d <= max).
  static std::uint64_t delay(TimeNs d) { return d - 1; }
};

// One v3 group record as received.
struct Rec {
  std::uint8_t type;
  Ipv4Addr group;
  std::vector<Ipv4Addr> sources;  // sorted
  bool operator==(const Rec&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Rec& r) {
  os << "{type " << int{r.type} << " " << r.group.to_string() << " [";
  for (auto s : r.sources) os << s.to_string() << " ";
  return os << "]}";
}

// The IGMP message of an emitted frame, after checking what RFC 3376 §4
// asks of every IGMP datagram: TTL 1, TOS 0xc0, Router Alert, protocol 2,
// the group MAC of its destination.
struct Igmp {
  Ipv4Addr dst;
  std::uint16_t ident;
  Vec msg;
};
Igmp igmp_of(const Vec& frame) {
  const auto eth = wire::EthernetFrame::parse(Bytes{frame});
  REQUIRE(eth.ok());
  REQUIRE(eth->ethertype() == wire::ethertype::kIpv4);
  const auto ip = wire::Ipv4Packet::parse(eth->payload());
  REQUIRE(ip.ok());
  CHECK(ip->ttl() == 1);
  CHECK(ip->tos() == 0xc0);
  CHECK(ip->has_router_alert());
  CHECK(ip->header_len() == 24);
  CHECK(ip->protocol() == wire::ipproto::kIgmp);
  CHECK(ip->src() == kOurIp);
  CHECK(eth->dst() == wire::multicast_mac(ip->dst()));
  CHECK(eth->src() == kOurMac);
  REQUIRE(wire::IgmpMessage::parse(ip->payload()).ok());  // checksum
  return Igmp{ip->dst(), ip->ident(), Vec(ip->payload().begin(), ip->payload().end())};
}

std::vector<Rec> records_of(const Vec& frame) {
  const Igmp m = igmp_of(frame);
  CHECK(m.dst == Ipv4Addr(224, 0, 0, 22));
  const auto r = wire::IgmpV3Report::parse(Bytes{m.msg});
  REQUIRE(r.ok());
  std::vector<Rec> out;
  for (const wire::IgmpGroupRecord g : *r) {
    Rec x{g.type(), g.group(), {}};
    for (std::size_t i = 0; i < g.num_sources(); ++i) x.sources.push_back(g.source(i));
    std::sort(x.sources.begin(), x.sources.end());
    out.push_back(x);
  }
  return out;
}

// (type, group) of a v1/v2 message.
std::pair<std::uint8_t, Ipv4Addr> v12_of(const Vec& frame, Ipv4Addr expect_dst) {
  const Igmp m = igmp_of(frame);
  CHECK(m.dst == expect_dst);
  REQUIRE(m.msg.size() == 8);
  const auto msg = wire::IgmpMessage::parse(Bytes{m.msg});
  REQUIRE(msg.ok());
  CHECK(msg->code() == 0);
  return {msg->type(), msg->group()};
}

Vec igmp_datagram(Ipv4Addr src, Ipv4Addr dst, const Vec& igmp) {
  wire::Ipv4Repr ip{src, dst, wire::ipproto::kIgmp, static_cast<std::uint16_t>(igmp.size()), 1, 0xc0, 0, false, true};
  Vec v(ip.buffer_len());
  ip.emit(MutBytes{v});
  std::memcpy(v.data() + ip.header_len(), igmp.data(), igmp.size());
  return v;
}

Vec v3_query(std::uint8_t code, Ipv4Addr group = {}, std::vector<Ipv4Addr> sources = {}, std::uint8_t qrv = 2,
             std::uint8_t qqic = 125) {
  const wire::IgmpV3QueryRepr q{code, group, false, qrv, qqic, sources};
  Vec v(q.buffer_len());
  q.emit(MutBytes{v});
  return v;
}

Vec v2_msg(wire::IgmpV2Repr r) {
  Vec v(8);
  r.emit(MutBytes{v});
  return v;
}

struct Fixture {
  rte_mempool* mp;
  unsigned avail_at_start;
  TimedSink sink;
  DeviceCaps caps;
  std::unique_ptr<Stack> stack;
  TestRng rng;
  std::unique_ptr<IgmpHost> igmp;
  TimeNs now = 1'000 * kNsPerSec;
  std::vector<std::vector<MacAddr>> mac_lists;

  explicit Fixture(IgmpConfig icfg = {}, std::uint64_t seed = 1) : mp(test::pool()), avail_at_start(rte_mempool_avail_count(mp)) {
    caps.mac = kOurMac;
    StackConfig cfg;
    cfg.mac = kOurMac;
    cfg.ip = Ipv4Cidr{kOurIp, 24};
    stack = std::make_unique<Stack>(cfg, mp, caps, sink, now);
    rng.state = seed;
    igmp = std::make_unique<IgmpHost>(*stack, icfg, &TestRng::next, &rng);
    igmp->set_mac_list_callback(
        [](std::span<const MacAddr> macs, void* ctx) {
          static_cast<Fixture*>(ctx)->mac_lists.emplace_back(macs.begin(), macs.end());
        },
        this);
  }
  ~Fixture() {
    sink.out.clear();
    igmp.reset();
    stack.reset();
  }

  // Fires every timer up to `t` at its own deadline, so emissions carry the
  // time they were due (plus the wheel's tick).
  void run_until(TimeNs t) {
    for (TimeNs d = stack->next_deadline(); d <= t; d = stack->next_deadline()) {
      now = std::max(now, d);
      stack->poll(now);
    }
    now = t;
    stack->poll(now);
  }
  void run_for(TimeNs dt) { run_until(now + dt); }

  void rx_igmp(Ipv4Addr src, Ipv4Addr dst, const Vec& igmp_msg) {
    stack->rx(packet_of(eth_frame(wire::multicast_mac(dst), kPeerMac, wire::ethertype::kIpv4,
                                  igmp_datagram(src, dst, igmp_msg)),
                        mp)
                  .release(),
              now);
  }
  std::uint64_t ctr(StackCounter c) const { return stack->counters().get(c); }
};

std::vector<MacAddr> macs(std::initializer_list<Ipv4Addr> groups) {
  std::vector<MacAddr> v{wire::multicast_mac(kAllSystems)};
  for (auto g : groups) v.push_back(wire::multicast_mac(g));
  std::sort(v.begin(), v.end(), [](const MacAddr& a, const MacAddr& b) { return a.b < b.b; });
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

// --- state-change reports (RFC 3376 §5.1) --------------------------------------

TEST_CASE("IGMPv3 join: TO_EX({}) at once, golden bytes, then one retransmission", "[igmp][v3][join]") {
  Fixture fx;
  const TimeNs t0 = fx.now;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].at == t0);
  CHECK(out[0].frame == kFrameJoinV3);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG, {}}});
  CHECK(fx.mac_lists.back() == macs({kG}));
  REQUIRE(fx.igmp->interface_state(kG).has_value());
  CHECK(fx.igmp->interface_state(kG)->mode == FilterMode::exclude);

  fx.run_for(30 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);  // Robustness Variable 2: one more, then silence
  CHECK(out[0].at > t0);
  CHECK(out[0].at <= t0 + kNsPerSec + kTick);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG, {}}});
  CHECK(igmp_of(out[0].frame).ident == 1);
  CHECK(fx.ctr(StackCounter::igmp_tx_report_v3) == 2);
  CHECK(fx.stack->next_deadline() == kNever);  // nothing left armed
  // A second socket joining changes nothing on the wire.
  REQUIRE(fx.igmp->join(2, kG, fx.now) == MembershipStatus::ok);
  CHECK(fx.sink.out.empty());
}

TEST_CASE("IGMPv3: Robustness Variable transmissions, each within the Unsolicited Report Interval", "[igmp][v3][timers]") {
  for (std::uint8_t rv : {1, 2, 3, 5}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      IgmpConfig cfg;
      cfg.robustness = rv;
      cfg.unsolicited_report_interval = 2 * kNsPerSec;
      Fixture fx(cfg, seed);
      REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
      fx.run_for(60 * kNsPerSec);
      const auto out = fx.sink.take();
      INFO("robustness " << int{rv} << " seed " << seed);
      REQUIRE(out.size() == rv);
      for (std::size_t i = 1; i < out.size(); ++i) {
        const TimeNs gap = out[i].at - out[i - 1].at;
        CHECK(gap > 0);
        CHECK(gap <= 2 * kNsPerSec + kTick);
      }
    }
  }
}

TEST_CASE("IGMPv3 leave: TO_IN({}) Robustness times, then the record is gone", "[igmp][v3][leave]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  const TimeNs t0 = fx.now;
  fx.igmp->leave(1, kG, fx.now);
  CHECK_FALSE(fx.igmp->interface_state(kG).has_value());
  CHECK(fx.mac_lists.back() == macs({}));
  CHECK(fx.igmp->group_records() == 1);  // kept while the leave is retransmitted
  CHECK_FALSE(fx.igmp->accepts(kG, kS1, wire::ipproto::kUdp));
  fx.run_for(10 * kNsPerSec);
  const auto out = fx.sink.take();
  REQUIRE(out.size() == 2);
  CHECK(out[0].at == t0);
  CHECK(out[1].at <= t0 + kNsPerSec + kTick);
  for (const auto& s : out) CHECK(records_of(s.frame) == std::vector<Rec>{{rec::kChangeToInclude, kG, {}}});
  CHECK(fx.igmp->group_records() == 0);
  // Leaving a group one never joined is silent.
  fx.igmp->leave(1, kG2, fx.now);
  CHECK(fx.sink.out.empty());
}

TEST_CASE("IGMPv3: a join during the leave's retransmissions turns it back into TO_EX", "[igmp][v3]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.igmp->leave(1, kG, fx.now);
  REQUIRE(fx.igmp->join(2, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2 + 1 + 2);  // join x2, leave, join x2: the pending TO_IN is not sent again
  CHECK(records_of(out[2].frame) == std::vector<Rec>{{rec::kChangeToInclude, kG, {}}});
  CHECK(records_of(out[3].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG, {}}});
  CHECK(records_of(out[4].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG, {}}});
  CHECK(fx.igmp->group_records() == 1);
}

TEST_CASE("IGMP: 224.0.0.1 is never reported", "[igmp]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kAllSystems, fx.now) == MembershipStatus::ok);
  fx.rx_igmp(kRouter, kAllSystems, v3_query(100));
  fx.run_for(30 * kNsPerSec);
  CHECK(fx.sink.out.empty());
  CHECK(fx.igmp->accepts(kAllSystems, kS1, wire::ipproto::kUdp));
  CHECK(fx.mac_lists.back() == macs({}));
  fx.igmp->leave(1, kAllSystems, fx.now);
  fx.run_for(30 * kNsPerSec);
  CHECK(fx.sink.out.empty());
  CHECK(fx.igmp->group_records() == 0);
}

TEST_CASE("IGMPv3 source filters: ALLOW/BLOCK per change, pending sources merged (§5.1)", "[igmp][v3][sources]") {
  Fixture fx;
  const Ipv4Addr first[] = {kS2, kS1};  // unsorted on purpose
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, first, fx.now) == MembershipStatus::ok);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].frame == kFrameSsmJoinV3);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kAllowNewSources, kSsm, {kS1, kS2}}});

  // Before the retransmission: {S1,S2} -> {S2,S3}. S2 still has one
  // retransmission due, S1 and S3 start over.
  const Ipv4Addr second[] = {kS2, kS3};
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, second, fx.now) == MembershipStatus::ok);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) ==
        std::vector<Rec>{{rec::kAllowNewSources, kSsm, {kS2, kS3}}, {rec::kBlockOldSources, kSsm, {kS1}}});
  fx.run_for(10 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) ==
        std::vector<Rec>{{rec::kAllowNewSources, kSsm, {kS3}}, {rec::kBlockOldSources, kSsm, {kS1}}});
  REQUIRE(fx.igmp->interface_state(kSsm).has_value());
  CHECK(fx.igmp->interface_state(kSsm)->mode == FilterMode::include);
  CHECK(std::vector<Ipv4Addr>(fx.igmp->interface_state(kSsm)->sources.begin(),
                              fx.igmp->interface_state(kSsm)->sources.end()) == std::vector<Ipv4Addr>{kS2, kS3});

  // A source that flips back before its retransmissions end is reported by
  // its last state only.
  const Ipv4Addr third[] = {kS2, kS3, kS4};
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, third, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, second, fx.now) == MembershipStatus::ok);
  out = fx.sink.take();
  REQUIRE(out.size() == 2);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kAllowNewSources, kSsm, {kS4}}});
  CHECK(records_of(out[1].frame) == std::vector<Rec>{{rec::kBlockOldSources, kSsm, {kS4}}});
  fx.run_for(10 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kBlockOldSources, kSsm, {kS4}}});

  // Leaving an INCLUDE group is a BLOCK of everything, not TO_IN({}).
  fx.igmp->leave(1, kSsm, fx.now);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kBlockOldSources, kSsm, {kS2, kS3}}});
}

TEST_CASE("IGMPv3: a filter-mode change is carried Robustness times, with later source changes", "[igmp][v3][sources]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);  // TO_EX({}), one more due
  const Ipv4Addr ex[] = {kS1};
  REQUIRE(fx.igmp->set_filter(1, kG, FilterMode::exclude, ex, fx.now) == MembershipStatus::ok);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2);
  CHECK(records_of(out[1].frame) ==
        std::vector<Rec>{{rec::kChangeToExclude, kG, {kS1}}, {rec::kBlockOldSources, kG, {kS1}}});
  fx.run_for(10 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);  // the mode record has had its two reports
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kBlockOldSources, kG, {kS1}}});

  // EXCLUDE -> INCLUDE: TO_IN with the new list, twice.
  const Ipv4Addr in[] = {kS2};
  REQUIRE(fx.igmp->set_filter(1, kG, FilterMode::include, in, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 2);
  for (const auto& s : out) CHECK(records_of(s.frame) == std::vector<Rec>{{rec::kChangeToInclude, kG, {kS2}}});
}

TEST_CASE("IGMPv3: changes to several groups share one report", "[igmp][v3]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->join(1, kG2, fx.now) == MembershipStatus::ok);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2);
  // The second join's report carries the first group's retransmission too.
  CHECK(records_of(out[1].frame) ==
        std::vector<Rec>{{rec::kChangeToExclude, kG, {}}, {rec::kChangeToExclude, kG2, {}}});
  fx.run_for(10 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG2, {}}});
}

// --- merging socket filters (RFC 3376 §3.2) -----------------------------------

TEST_CASE("IGMP: interface state is the §3.2 merge of the socket filters", "[igmp][merge]") {
  Fixture fx;
  auto state = [&](Ipv4Addr g) {
    const auto st = fx.igmp->interface_state(g);
    REQUIRE(st.has_value());
    return std::pair{st->mode, std::vector<Ipv4Addr>(st->sources.begin(), st->sources.end())};
  };
  const Ipv4Addr a[] = {kS1, kS2, kS3};
  const Ipv4Addr b[] = {kS2, kS3, kS4};
  const Ipv4Addr c[] = {kS2, kS5};
  const Ipv4Addr d[] = {kS5, kS1};
  REQUIRE(fx.igmp->set_filter(1, kG, FilterMode::exclude, a, fx.now) == MembershipStatus::ok);
  CHECK(state(kG) == std::pair{FilterMode::exclude, std::vector<Ipv4Addr>{kS1, kS2, kS3}});
  REQUIRE(fx.igmp->set_filter(2, kG, FilterMode::exclude, b, fx.now) == MembershipStatus::ok);
  CHECK(state(kG) == std::pair{FilterMode::exclude, std::vector<Ipv4Addr>{kS2, kS3}});  // intersection
  REQUIRE(fx.igmp->set_filter(3, kG, FilterMode::include, c, fx.now) == MembershipStatus::ok);
  CHECK(state(kG) == std::pair{FilterMode::exclude, std::vector<Ipv4Addr>{kS3}});  // minus the includes

  // Interface filter: EXCLUDE {S3}. Socket filters stay per socket.
  CHECK(fx.igmp->accepts(kG, kS1, wire::ipproto::kUdp));
  CHECK_FALSE(fx.igmp->accepts(kG, kS3, wire::ipproto::kUdp));
  CHECK(fx.igmp->accepts(kG, kS3, wire::ipproto::kIgmp));  // queries come from routers, not sources
  CHECK_FALSE(fx.igmp->socket_accepts(1, kG, kS1));
  CHECK(fx.igmp->socket_accepts(1, kG, kS4));
  CHECK(fx.igmp->socket_accepts(3, kG, kS2));
  CHECK_FALSE(fx.igmp->socket_accepts(3, kG, kS4));
  CHECK_FALSE(fx.igmp->socket_accepts(4, kG, kS4));

  fx.igmp->leave(1, kG, fx.now);
  CHECK(state(kG) == std::pair{FilterMode::exclude, std::vector<Ipv4Addr>{kS3, kS4}});
  fx.igmp->close_socket(2, fx.now);
  CHECK(state(kG) == std::pair{FilterMode::include, std::vector<Ipv4Addr>{kS2, kS5}});
  REQUIRE(fx.igmp->set_filter(4, kG, FilterMode::include, d, fx.now) == MembershipStatus::ok);
  CHECK(state(kG) == std::pair{FilterMode::include, std::vector<Ipv4Addr>{kS1, kS2, kS5}});  // union
  CHECK(fx.igmp->accepts(kG, kS1, wire::ipproto::kUdp));
  CHECK_FALSE(fx.igmp->accepts(kG, kS3, wire::ipproto::kUdp));
  fx.igmp->close_socket(3, fx.now);
  fx.igmp->close_socket(4, fx.now);
  CHECK_FALSE(fx.igmp->interface_state(kG).has_value());
  CHECK(fx.mac_lists.back() == macs({}));

  // The last change, INCLUDE{S1,S5} -> INCLUDE{}, blocks S1 and S5; S2,
  // blocked one change earlier, still has a retransmission due (§5.1).
  const auto out = fx.sink.take();
  REQUIRE(!out.empty());
  CHECK(records_of(out.back().frame) == std::vector<Rec>{{rec::kBlockOldSources, kG, {kS1, kS2, kS5}}});
}

TEST_CASE("IGMP: groups that share a MAC are listed once; the list follows membership", "[igmp][mac]") {
  Fixture fx;
  CHECK(fx.mac_lists.size() == 1);  // at registration
  CHECK(fx.mac_lists.back() == macs({}));
  const Ipv4Addr g_alias{224, 129, 2, 3};  // 01:00:5e:01:02:03 as well (RFC 1112 §6.4: 23 bits)
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->join(1, g_alias, fx.now) == MembershipStatus::ok);
  CHECK(fx.mac_lists.back() == macs({kG}));
  CHECK(fx.mac_lists.back().size() == 2);
  const std::size_t calls = fx.mac_lists.size();
  const Ipv4Addr ex[] = {kS1};
  REQUIRE(fx.igmp->set_filter(1, kG, FilterMode::exclude, ex, fx.now) == MembershipStatus::ok);
  CHECK(fx.mac_lists.size() == calls);  // a source change is not a membership change
  fx.igmp->leave(1, kG, fx.now);
  CHECK(fx.mac_lists.back() == macs({kG}));  // the alias still needs it
  fx.igmp->leave(1, g_alias, fx.now);
  CHECK(fx.mac_lists.back() == macs({}));
}

// --- queries (RFC 3376 §5.2) --------------------------------------------------------

TEST_CASE("IGMPv3 general query: one report of current state, within Max Resp Time", "[igmp][v3][query]") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Fixture fx({}, seed);
    REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
    const Ipv4Addr in[] = {kS1};
    REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, in, fx.now) == MembershipStatus::ok);
    REQUIRE(fx.igmp->join(1, kAllSystems, fx.now) == MembershipStatus::ok);
    fx.run_for(10 * kNsPerSec);
    fx.sink.take();
    const TimeNs t0 = fx.now;
    fx.rx_igmp(kRouter, kAllSystems, v3_query(50));  // 5 s
    CHECK(fx.sink.out.empty());
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    INFO("seed " << seed);
    REQUIRE(out.size() == 1);
    CHECK(out[0].at > t0);
    CHECK(out[0].at <= t0 + 5 * kNsPerSec + kTick);
    CHECK(records_of(out[0].frame) ==
          std::vector<Rec>{{rec::kModeIsInclude, kSsm, {kS1}}, {rec::kModeIsExclude, kG, {}}});
    CHECK(fx.ctr(StackCounter::igmp_rx_query_v3) == 1);
  }
}

TEST_CASE("IGMPv3 group-specific query: only that group, only if a member", "[igmp][v3][query]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->join(1, kG2, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  const TimeNs t0 = fx.now;
  fx.rx_igmp(kRouter, kG, v3_query(10, kG));                     // 1 s
  fx.rx_igmp(kRouter, Ipv4Addr{239, 9, 9, 9}, v3_query(10, Ipv4Addr{239, 9, 9, 9}));  // not joined: filtered by the stack
  fx.run_for(5 * kNsPerSec);
  const auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].at <= t0 + kNsPerSec + kTick);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsExclude, kG, {}}});
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 1);
}

TEST_CASE("IGMPv3 group-and-source-specific query answers for the queried sources", "[igmp][v3][query]") {
  Fixture fx;
  const Ipv4Addr incl[] = {kS1, kS2};
  const Ipv4Addr excl[] = {kS1};
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, incl, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->set_filter(1, kG, FilterMode::exclude, excl, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  // INCLUDE(A): IS_IN(A*Q).
  fx.rx_igmp(kRouter, kSsm, v3_query(10, kSsm, {kS2, kS3}));
  // EXCLUDE(A): IS_IN(Q-A).
  fx.rx_igmp(kRouter, kG, v3_query(10, kG, {kS1, kS2}));
  fx.run_for(5 * kNsPerSec);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 2);
  std::vector<std::vector<Rec>> got{records_of(out[0].frame), records_of(out[1].frame)};
  std::sort(got.begin(), got.end(), [](const auto& x, const auto& y) { return x[0].group < y[0].group; });
  CHECK(got[0] == std::vector<Rec>{{rec::kModeIsInclude, kSsm, {kS2}}});
  CHECK(got[1] == std::vector<Rec>{{rec::kModeIsInclude, kG, {kS2}}});
  // Nothing to say: no report at all.
  fx.rx_igmp(kRouter, kSsm, v3_query(10, kSsm, {kS3}));
  fx.rx_igmp(kRouter, kG, v3_query(10, kG, {kS1}));
  fx.run_for(5 * kNsPerSec);
  CHECK(fx.sink.out.empty());
}

TEST_CASE("IGMPv3 pending responses merge by the §5.2 rules", "[igmp][v3][query]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  const TimeNs t0 = fx.now;
  auto& script = fx.rng.script;

  SECTION("5: two source-specific queries: one answer for the union, at the earlier time") {
    script = {TestRng::delay(5 * kNsPerSec), TestRng::delay(8 * kNsPerSec)};
    fx.rx_igmp(kRouter, kG, v3_query(100, kG, {kS1}));
    fx.rx_igmp(kRouter, kG, v3_query(100, kG, {kS2}));
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at >= t0 + 5 * kNsPerSec);
    CHECK(out[0].at <= t0 + 5 * kNsPerSec + kTick);
    CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsInclude, kG, {kS1, kS2}}});
  }
  SECTION("4: source-specific then group-specific: one answer for the group") {
    script = {TestRng::delay(5 * kNsPerSec), TestRng::delay(2 * kNsPerSec)};
    fx.rx_igmp(kRouter, kG, v3_query(100, kG, {kS1}));
    fx.rx_igmp(kRouter, kG, v3_query(100, kG));
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 2 * kNsPerSec + kTick);
    CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsExclude, kG, {}}});
  }
  SECTION("4: group-specific then source-specific: still the whole group") {
    script = {TestRng::delay(5 * kNsPerSec), TestRng::delay(7 * kNsPerSec)};
    fx.rx_igmp(kRouter, kG, v3_query(100, kG));
    fx.rx_igmp(kRouter, kG, v3_query(100, kG, {kS1}));
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 5 * kNsPerSec + kTick);
    CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsExclude, kG, {}}});
  }
  SECTION("1: a general response due sooner covers a group query") {
    script = {TestRng::delay(2 * kNsPerSec), TestRng::delay(5 * kNsPerSec)};
    fx.rx_igmp(kRouter, kAllSystems, v3_query(100));
    fx.rx_igmp(kRouter, kG, v3_query(100, kG));
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 2 * kNsPerSec + kTick);
  }
  SECTION("1 does not apply when the group answer is due first") {
    script = {TestRng::delay(5 * kNsPerSec), TestRng::delay(2 * kNsPerSec)};
    fx.rx_igmp(kRouter, kAllSystems, v3_query(100));
    fx.rx_igmp(kRouter, kG, v3_query(100, kG));
    fx.run_for(20 * kNsPerSec);
    CHECK(fx.sink.take().size() == 2);
  }
  SECTION("2: a later general query moves the interface timer") {
    script = {TestRng::delay(8 * kNsPerSec), TestRng::delay(3 * kNsPerSec)};
    fx.rx_igmp(kRouter, kAllSystems, v3_query(100));
    fx.rx_igmp(kRouter, kAllSystems, v3_query(100));
    fx.run_for(20 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 3 * kNsPerSec + kTick);
  }
}

TEST_CASE("IGMPv3: the querier's QRV and QQIC set robustness and the older-querier timeout", "[igmp][v3][query]") {
  Fixture fx;
  CHECK(fx.igmp->robustness() == 2);
  CHECK(fx.igmp->older_querier_timeout() == (2 * 125 + 10) * kNsPerSec);
  fx.rx_igmp(kRouter, kAllSystems, v3_query(wire::igmp_encode_code(200), {}, {}, 3, 60));
  CHECK(fx.igmp->robustness() == 3);
  CHECK(fx.igmp->older_querier_timeout() == (3 * 60 + 20) * kNsPerSec);
  fx.run_for(30 * kNsPerSec);
  fx.sink.take();
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(30 * kNsPerSec);
  CHECK(fx.sink.take().size() == 3);
}

// --- compatibility modes (RFC 3376 §7.2.1, RFC 2236) ---------------------------------

TEST_CASE("IGMPv2 compatibility: v2 reports to the group, leave to 224.0.0.2", "[igmp][v2]") {
  Fixture fx;
  fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(100)));
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v2);
  CHECK(fx.ctr(StackCounter::igmp_compat_mode_change) == 1);
  CHECK(fx.ctr(StackCounter::igmp_rx_query_v2) == 1);

  SECTION("join: report at once, repeated within the v2 Unsolicited Report Interval; leave") {
    const TimeNs t0 = fx.now;
    REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].frame == kFrameReportV2);
    fx.run_for(30 * kNsPerSec);
    out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 10 * kNsPerSec + kTick);
    CHECK(v12_of(out[0].frame, kG) == std::pair{wire::igmp_type::kV2Report, kG});
    fx.igmp->leave(1, kG, fx.now);
    out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(v12_of(out[0].frame, Ipv4Addr(224, 0, 0, 2)) == std::pair{wire::igmp_type::kV2Leave, kG});
    CHECK(fx.ctr(StackCounter::igmp_tx_report_v2) == 2);
    CHECK(fx.ctr(StackCounter::igmp_tx_leave) == 1);
    CHECK(fx.ctr(StackCounter::igmp_tx_report_v3) == 0);
  }
  SECTION("leave right after join: golden leave, the repeat is cancelled") {
    REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
    fx.igmp->leave(1, kG, fx.now);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 2);
    CHECK(out[1].frame == kFrameLeaveV2);
    fx.run_for(30 * kNsPerSec);
    CHECK(fx.sink.out.empty());
    CHECK(fx.igmp->group_records() == 0);
  }
  SECTION("query response within Max Response Time; another member's report suppresses ours and the leave") {
    REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
    REQUIRE(fx.igmp->join(1, kG2, fx.now) == MembershipStatus::ok);
    fx.run_for(30 * kNsPerSec);
    fx.sink.take();
    const TimeNs t0 = fx.now;
    fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(30)));  // 3 s
    fx.rx_igmp(kOtherHost, kG2, v2_msg(wire::IgmpV2Repr::report_v2(kG2)));
    CHECK(fx.ctr(StackCounter::igmp_rx_report) == 1);
    fx.run_for(10 * kNsPerSec);
    const auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at <= t0 + 3 * kNsPerSec + kTick);
    CHECK(v12_of(out[0].frame, kG) == std::pair{wire::igmp_type::kV2Report, kG});
    // RFC 2236 §6: we were not the last to report kG2, so no leave.
    fx.igmp->leave(1, kG2, fx.now);
    CHECK(fx.sink.out.empty());
    fx.igmp->leave(1, kG, fx.now);
    CHECK(fx.sink.take().size() == 1);
  }
  SECTION("a running timer only moves earlier") {
    REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
    fx.run_for(30 * kNsPerSec);
    fx.sink.take();
    const TimeNs t0 = fx.now;
    fx.rng.script = {TestRng::delay(2 * kNsPerSec), TestRng::delay(kNsPerSec)};
    fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(100)));     // at +2 s
    fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(50)));      // 5 s > 2 s left: kept
    fx.run_for(10 * kNsPerSec);
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(out[0].at >= t0 + 2 * kNsPerSec);
    CHECK(out[0].at <= t0 + 2 * kNsPerSec + kTick);
  }
  SECTION("source filters are not reported in v2; membership is") {
    const Ipv4Addr in[] = {kS1};
    REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, in, fx.now) == MembershipStatus::ok);
    auto out = fx.sink.take();
    REQUIRE(out.size() == 1);
    CHECK(v12_of(out[0].frame, kSsm) == std::pair{wire::igmp_type::kV2Report, kSsm});
    const Ipv4Addr in2[] = {kS1, kS2};
    REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, in2, fx.now) == MembershipStatus::ok);
    fx.run_for(30 * kNsPerSec);
    CHECK(fx.sink.take().size() == 1);  // the unsolicited repeat only
  }
}

TEST_CASE("IGMP compatibility: back to v3 after the Older Version Querier Present Timeout", "[igmp][v2][timers]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  CHECK(fx.sink.take().size() == 1);  // v3 TO_EX; its retransmission is pending
  const TimeNs t0 = fx.now;
  fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(100)));
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v2);
  // §7.2.1: the mode change cancelled the v3 retransmission; only the v2
  // answer to the query follows.
  fx.run_for(20 * kNsPerSec);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(v12_of(out[0].frame, kG).first == wire::igmp_type::kV2Report);
  // 2 x 125 s + 10 s = 260 s.
  const TimeNs timeout = fx.igmp->older_querier_timeout();
  CHECK(timeout == 260 * kNsPerSec);
  fx.run_until(t0 + timeout - kNsPerSec);
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v2);
  fx.run_until(t0 + timeout + kTick);
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v3);
  CHECK(fx.ctr(StackCounter::igmp_compat_mode_change) == 2);
  fx.sink.take();
  REQUIRE(fx.igmp->join(1, kG2, fx.now) == MembershipStatus::ok);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kChangeToExclude, kG2, {}}});
}

TEST_CASE("IGMP compatibility: v2 group-specific queries do not start the v2 timer", "[igmp][v2]") {
  Fixture fx;
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  fx.rx_igmp(kRouter, kG, v2_msg(wire::IgmpV2Repr::query(10, kG)));
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v3);
  CHECK(fx.ctr(StackCounter::igmp_rx_query_v2) == 1);
  // Answered as a v3 group-specific query, with Max Resp Time 1 s.
  fx.run_for(5 * kNsPerSec);
  const auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsExclude, kG, {}}});
}

TEST_CASE("IGMPv1 compatibility: v1 reports, no leave; v1 outranks v2", "[igmp][v1]") {
  Fixture fx;
  const TimeNs t0 = fx.now;
  fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(0)));  // a v1 query
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v1);
  CHECK(fx.ctr(StackCounter::igmp_rx_query_v1) == 1);
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].frame == kFrameReportV1);
  fx.igmp->leave(1, kG, fx.now);
  fx.run_for(30 * kNsPerSec);
  CHECK(fx.sink.take().empty());
  CHECK(fx.ctr(StackCounter::igmp_tx_leave) == 0);
  CHECK(fx.ctr(StackCounter::igmp_tx_report_v1) == 1);

  // A v1 query answers within 10 s whatever its code field says.
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  fx.run_for(30 * kNsPerSec);
  fx.sink.take();
  const TimeNs t1 = fx.now;
  fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(0)));
  fx.run_for(30 * kNsPerSec);
  out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].at <= t1 + 10 * kNsPerSec + kTick);
  CHECK(v12_of(out[0].frame, kG).first == wire::igmp_type::kV1Report);

  // v2 general query while v1 is present: still v1; v1 times out first -> v2 -> v3.
  fx.rx_igmp(kRouter, kAllSystems, v2_msg(wire::IgmpV2Repr::query(100)));
  const TimeNs t_v2 = fx.now;
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v1);
  const TimeNs timeout = fx.igmp->older_querier_timeout();
  fx.run_until(t1 + timeout + kTick);
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v2);
  fx.run_until(t_v2 + timeout + kTick);
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v3);
  (void)t0;
}

// --- limits, input errors, integration ----------------------------------------

TEST_CASE("IGMP: fixed capacity refuses and counts, changing nothing", "[igmp][limits]") {
  IgmpConfig cfg;
  cfg.max_groups = 2;
  cfg.max_memberships = 3;
  cfg.max_sources = 2;
  Fixture fx(cfg);
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->join(1, kG2, fx.now) == MembershipStatus::ok);
  CHECK(fx.igmp->join(1, Ipv4Addr{239, 5, 5, 5}, fx.now) == MembershipStatus::table_full);
  CHECK(fx.ctr(StackCounter::igmp_drop_table_full) == 1);
  REQUIRE(fx.igmp->join(2, kG, fx.now) == MembershipStatus::ok);
  CHECK(fx.igmp->join(3, kG, fx.now) == MembershipStatus::table_full);  // memberships
  CHECK(fx.ctr(StackCounter::igmp_drop_table_full) == 2);
  CHECK(fx.igmp->join(1, Ipv4Addr{10, 1, 1, 1}, fx.now) == MembershipStatus::not_multicast);

  const Ipv4Addr three[] = {kS1, kS2, kS3};
  CHECK(fx.igmp->set_filter(1, kG, FilterMode::include, three, fx.now) == MembershipStatus::sources_full);
  CHECK(fx.ctr(StackCounter::igmp_drop_sources_full) == 1);
  // Two sockets' INCLUDE lists whose union is three sources.
  fx.igmp->close_socket(1, fx.now);
  fx.igmp->close_socket(2, fx.now);
  fx.run_for(10 * kNsPerSec);
  const Ipv4Addr ab[] = {kS1, kS2};
  const Ipv4Addr bc[] = {kS2, kS3};
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, ab, fx.now) == MembershipStatus::ok);
  fx.sink.take();
  CHECK(fx.igmp->set_filter(2, kSsm, FilterMode::include, bc, fx.now) == MembershipStatus::sources_full);
  CHECK(fx.ctr(StackCounter::igmp_drop_sources_full) == 2);
  CHECK(fx.sink.out.empty());
  CHECK(std::vector<Ipv4Addr>(fx.igmp->interface_state(kSsm)->sources.begin(),
                              fx.igmp->interface_state(kSsm)->sources.end()) == std::vector<Ipv4Addr>{kS1, kS2});
  CHECK_FALSE(fx.igmp->socket_accepts(2, kSsm, kS3));
  // Duplicates in a request count once.
  const Ipv4Addr dup[] = {kS1, kS1};
  CHECK(fx.igmp->set_filter(3, kSsm, FilterMode::include, dup, fx.now) == MembershipStatus::ok);
}

TEST_CASE("IGMP: a large report is split over packets at the MTU (RFC 3376 §4.2.16)", "[igmp][limits]") {
  IgmpConfig cfg;
  cfg.max_groups = 200;
  cfg.max_memberships = 200;
  Fixture fx(cfg);
  for (std::uint8_t i = 0; i < 200; ++i) REQUIRE(fx.igmp->join(1, Ipv4Addr{239, 2, 0, i}, fx.now) == MembershipStatus::ok);
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  fx.rx_igmp(kRouter, kAllSystems, v3_query(10));
  fx.run_for(5 * kNsPerSec);
  const auto out = fx.sink.take();
  // 8 bytes per record: 183 fit in 1500 - 24 - 8.
  REQUIRE(out.size() == 2);
  std::size_t total = 0;
  for (const auto& s : out) {
    CHECK(s.frame.size() <= 14 + 1500);
    total += records_of(s.frame).size();
  }
  CHECK(records_of(out[0].frame).size() == 183);
  CHECK(total == 200);
}

TEST_CASE("IGMP input errors are counted by reason", "[igmp][drop]") {
  Fixture fx;
  Vec bad = v2_msg(wire::IgmpV2Repr::query(100));
  bad[2] ^= 0xff;
  fx.rx_igmp(kRouter, kAllSystems, bad);
  fx.rx_igmp(kRouter, kAllSystems, Vec{0x11, 0x64, 0xee});
  // 10-byte query: RFC 3376 §7.1 says ignore (scapy: IGMP(type=0x11, mrcode=100)/Raw(b"\0\0")).
  fx.rx_igmp(kRouter, kAllSystems, Vec{0x11, 0x64, 0xee, 0x9b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  // A DVMRP message (type 0x13), checksum right.
  Vec dvmrp = v2_msg(wire::IgmpV2Repr{0x13, 0, {}});
  fx.rx_igmp(kRouter, kAllSystems, dvmrp);
  // A v3 report from another host to 224.0.0.1 (counted, ignored), and a leave.
  const wire::IgmpGroupRecordRepr r[] = {{rec::kChangeToExclude, kG, {}}};
  const wire::IgmpV3ReportRepr rep{r};
  Vec v3rep(rep.buffer_len());
  rep.emit(MutBytes{v3rep});
  fx.rx_igmp(kOtherHost, kAllSystems, v3rep);
  fx.rx_igmp(kOtherHost, kAllSystems, v2_msg(wire::IgmpV2Repr::leave(kG)));
  CHECK(fx.ctr(StackCounter::igmp_drop_bad_checksum) == 1);
  CHECK(fx.ctr(StackCounter::igmp_drop_truncated) == 1);
  CHECK(fx.ctr(StackCounter::igmp_drop_malformed) == 1);
  CHECK(fx.ctr(StackCounter::igmp_drop_unknown_type) == 1);
  CHECK(fx.ctr(StackCounter::igmp_rx_report) == 1);
  CHECK(fx.ctr(StackCounter::igmp_rx_leave) == 1);
  CHECK(fx.igmp->compat_mode() == IgmpCompatMode::v3);
  CHECK(fx.sink.out.empty());
  CHECK(rte_mempool_avail_count(fx.mp) == fx.avail_at_start);
}

TEST_CASE("IGMP + stack: multicast delivery follows the interface filter", "[igmp][stack]") {
  Fixture fx;
  struct Counting final : ProtocolHandler {
    void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs) override {
      got.emplace_back(ip.dst(), ip.src());
      Packet done = std::move(pkt);
    }
    std::vector<std::pair<Ipv4Addr, Ipv4Addr>> got;
  } udp;
  fx.stack->set_protocol_handler(wire::ipproto::kUdp, &udp);
  auto send = [&](Ipv4Addr src, Ipv4Addr dst) {
    fx.stack->rx(packet_of(eth_frame(wire::multicast_mac(dst), kPeerMac, wire::ethertype::kIpv4,
                                     ipv4_datagram(src, dst, wire::ipproto::kUdp, {1, 2, 3})),
                           fx.mp)
                     .release(),
                 fx.now);
  };
  const Ipv4Addr in[] = {kS1};
  REQUIRE(fx.igmp->set_filter(1, kSsm, FilterMode::include, in, fx.now) == MembershipStatus::ok);
  REQUIRE(fx.igmp->join(1, kG, fx.now) == MembershipStatus::ok);
  send(kS1, kSsm);       // included source
  send(kS2, kSsm);       // not included
  send(kS2, kG);         // any-source group
  send(kS2, kG2);        // not joined
  send(kS2, kAllSystems);
  CHECK(udp.got == std::vector<std::pair<Ipv4Addr, Ipv4Addr>>{{kSsm, kS1}, {kG, kS2}, {kAllSystems, kS2}});
  CHECK(fx.ctr(StackCounter::ipv4_drop_multicast_not_joined) == 2);
  // A group-and-source query reaches IGMP although the router is no listed source.
  fx.sink.take();
  fx.run_for(10 * kNsPerSec);
  fx.sink.take();
  fx.rx_igmp(kRouter, kSsm, v3_query(10, kSsm, {kS1}));
  fx.run_for(5 * kNsPerSec);
  const auto out = fx.sink.take();
  REQUIRE(out.size() == 1);
  CHECK(records_of(out[0].frame) == std::vector<Rec>{{rec::kModeIsInclude, kSsm, {kS1}}});
  fx.stack->set_protocol_handler(wire::ipproto::kUdp, nullptr);
}

TEST_CASE("Engine: the MAC list programs the NIC filter, falling back to all-multicast", "[igmp][engine]") {
  struct FakeDevice final : Device {
    DeviceCaps c;
    std::size_t capacity = 2;
    std::vector<MacAddr> programmed;
    bool allmulti = false;
    int allmulti_calls = 0;
    const DeviceCaps& caps() const override { return c; }
    std::uint16_t rx_burst(std::span<rte_mbuf*>, TimeNs) override { return 0; }
    std::uint16_t tx_burst(std::span<rte_mbuf*> p, TimeNs) override { return static_cast<std::uint16_t>(p.size()); }
    bool set_mc_addr_list(std::span<const MacAddr> macs) override {
      if (macs.size() > capacity) return false;
      programmed.assign(macs.begin(), macs.end());
      return true;
    }
    bool set_allmulticast(bool on) override {
      allmulti = on;
      ++allmulti_calls;
      return true;
    }
  } dev;
  dev.c.mac = kOurMac;
  dev.c.mc_filter = true;
  StackConfig cfg;
  cfg.mac = kOurMac;
  cfg.ip = Ipv4Cidr{kOurIp, 24};
  Engine engine(dev, cfg, test::pool(), 0);
  IgmpHost igmp(engine.stack(), IgmpConfig{});
  igmp.set_mac_list_callback(&Engine::on_mac_list, &engine);
  CHECK(dev.programmed == macs({}));
  REQUIRE(igmp.join(1, kG, 0) == MembershipStatus::ok);
  CHECK(dev.programmed == macs({kG}));
  CHECK_FALSE(dev.allmulti);
  REQUIRE(igmp.join(1, kG2, 0) == MembershipStatus::ok);  // three MACs: more than the NIC holds
  CHECK(dev.allmulti);
  CHECK(dev.programmed == macs({kG}));
  igmp.leave(1, kG2, 0);
  CHECK(dev.programmed == macs({kG}));
  CHECK_FALSE(dev.allmulti);  // switched off again: it was ours
  CHECK(dev.allmulti_calls == 2);
  CHECK(engine.mc_programmed() == 3);  // at the start, join kG, leave kG2
  CHECK(engine.mc_fallbacks() == 1);   // join kG2
  dev.c.mc_filter = false;  // a device without a filter table
  igmp.leave(1, kG, 0);
  CHECK(dev.allmulti);
  CHECK(engine.mc_fallbacks() == 2);
  CHECK(engine.mc_failures() == 0);
  engine.flush(0);
}

#if USTACK_COUNT_ALLOCS
TEST_CASE("IGMP allocates nothing after construction", "[igmp][alloc]") {
  struct FreeSink final : PacketSink {
    void emit(Packet&& p, TimeNs) override {
      Packet done = std::move(p);
      ++n;
    }
    std::size_t n = 0;
  } sink;
  DeviceCaps caps;
  caps.mac = kOurMac;
  StackConfig cfg;
  cfg.mac = kOurMac;
  cfg.ip = Ipv4Cidr{kOurIp, 24};
  TimeNs now = kNsPerSec;
  Stack stack(cfg, test::pool(), caps, sink, now);
  IgmpHost igmp(stack, IgmpConfig{});  // built-in generator
  // Frames to feed, built before counting.
  std::vector<std::vector<std::uint8_t>> frames;
  auto frame = [&](Ipv4Addr dst, const Vec& m) {
    frames.push_back(eth_frame(wire::multicast_mac(dst), kPeerMac, wire::ethertype::kIpv4, igmp_datagram(kRouter, dst, m)));
  };
  frame(kAllSystems, v3_query(100));
  frame(kG, v3_query(100, kG, {kS1, kS2}));
  frame(kAllSystems, v2_msg(wire::IgmpV2Repr::query(100)));
  frame(kG, v2_msg(wire::IgmpV2Repr::report_v2(kG)));
  std::vector<Packet> pkts;
  for (int round = 0; round < 3; ++round)
    for (const auto& f : frames) pkts.push_back(packet_of(f));
  const Ipv4Addr srcs[] = {kS1, kS2, kS3};

  // The counter does see allocations in this binary.
  const std::uint64_t probe0 = thread_alloc_count();
  auto* probe = new std::uint64_t(1);
  asm volatile("" : : "r"(probe) : "memory");  // keep the allocation from being elided
  delete probe;
  REQUIRE(thread_alloc_count() > probe0);

  const std::uint64_t c0 = thread_alloc_count();
  std::size_t next = 0;
  for (int round = 0; round < 3; ++round) {
    for (std::uint64_t s = 0; s < 20; ++s) {
      REQUIRE(igmp.join(s, Ipv4Addr{239, 3, 0, static_cast<std::uint8_t>(s)}, now) == MembershipStatus::ok);
      REQUIRE(igmp.set_filter(s, kG, FilterMode::include, std::span(srcs).first(1 + s % 3), now) ==
              MembershipStatus::ok);
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
      stack.rx(pkts[next++].release(), now);
      now += 2 * kNsPerSec;
      stack.poll(now);
    }
    for (std::uint64_t s = 0; s < 20; ++s) igmp.close_socket(s, now);
    for (int i = 0; i < 300; ++i) {
      now += kNsPerSec;
      stack.poll(now);
    }
  }
  const std::uint64_t allocs = thread_alloc_count() - c0;
  CHECK(allocs == 0);
  CHECK(sink.n > 0);
}
#endif
