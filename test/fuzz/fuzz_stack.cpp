// libFuzzer target: the whole receive -> timeout -> transmit loop of one Stack.
//
// Each input is a fresh Stack (so every crash reproduces from its input
// alone) driven on virtual time:
//
//   byte 0        configuration bits (see Config below)
//   then records  [step][len_hi][len_lo][len bytes of frame]
//                 step bits 0..5: time advances by 2^(e-1) ns (0: not at all),
//                                 e = bits % 41, so time is monotonic;
//                 step bit 6:     before the frame, ping 192.0.2.<len_lo>
//                                 (on-link: ARP resolution and its queue);
//                 step bit 7:     before the frame, ping 198.51.100.<len_lo>
//                                 (off-link: via the gateway).
//                 A short last record takes what is left.
//
// After each frame the stack is polled (timers: ARP retries, expiry).
//
// Invariants:
//  - every frame the stack emits parses: Ethernet from our MAC (tagged with
//    our VLAN when configured), ARP of exactly 28 bytes, IPv4 from our address
//    with a valid header checksum (unless left to the NIC) and no padding,
//    ICMP with a valid checksum (echo replies are patched incrementally);
//  - every received frame is counted once in eth_rx_packets;
//  - an upper layer (UDP here) gets the frame with data() at the Ethernet
//    header and an IPv4 view that ends exactly at the frame's end; every
//    span handed up (datagrams, ICMP error quotes, echo reply data) is read
//    in full so ASan catches any overrun;
//  - no mbuf leaks: once the Stack is destroyed, the pool is full again.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/bytes.hpp"
#include "core/time.hpp"
#include "drivers/device.hpp"
#include "net/packet.hpp"
#include "net/stack.hpp"
#include "ustack/stats.hpp"
#include "wire/arp.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace {

using namespace ustack;

inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

rte_mempool* g_pool = nullptr;
unsigned g_pool_size = 0;
bool g_verbose = false;

constexpr MacAddr kOurMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr Ipv4Addr kOurIp(192, 0, 2, 1);
constexpr std::uint16_t kVid = 100;
constexpr std::size_t kMaxFrame = 1518;

// Configuration byte.
struct Config {
  bool vlan;            // bit 0: stack tags/accepts VID 100
  bool rx_ip_cksum;     // bit 1: NIC reports IPv4 checksum status...
  std::uint64_t rx_flags;  // bits 2-3: ...as NONE / BAD / GOOD / UNKNOWN
  bool tx_ip_cksum;     // bit 4: IPv4 checksum left to the NIC
  bool bcast_echo;      // bit 5: answer broadcast pings
  bool start;           // bit 6: gratuitous ARP on start
  bool chained;         // bit 7: deliver frames as two-segment chains

  explicit Config(std::uint8_t b)
      : vlan(b & 0x01),
        rx_ip_cksum(b & 0x02),
        rx_flags(flags_of((b >> 2) & 3)),
        tx_ip_cksum(b & 0x10),
        bcast_echo(b & 0x20),
        start(b & 0x40),
        chained(b & 0x80) {}

  static std::uint64_t flags_of(unsigned v) {
    switch (v) {
      case 1: return RTE_MBUF_F_RX_IP_CKSUM_BAD;
      case 2: return RTE_MBUF_F_RX_IP_CKSUM_GOOD;
      case 3: return RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
      default: return RTE_MBUF_F_RX_IP_CKSUM_NONE;
    }
  }
};

// Checks and frees everything the stack transmits.
class CheckingSink final : public PacketSink {
 public:
  explicit CheckingSink(const Config& cfg) : cfg_(cfg) {}

  void emit(Packet&& p, TimeNs now) override {
    require(static_cast<bool>(p));
    require(now >= last_now_);
    last_now_ = now;
    require(p.contiguous());
    check_frame(Bytes{p.data()});
    ++emitted_;
    p.reset();
  }
  std::size_t emitted() const { return emitted_; }

 private:
  void check_frame(Bytes frame) const {
    const auto eth = wire::EthernetFrame::parse(frame);
    require(eth.ok());
    require(eth->src() == kOurMac);
    require(eth->vlan_id() == (cfg_.vlan ? std::optional<std::uint16_t>{kVid} : std::nullopt));
    switch (eth->ethertype()) {
      case wire::ethertype::kArp: {
        require(eth->payload().size() == wire::kArpLen);
        const auto arp = wire::ArpPacket::parse(eth->payload());
        require(arp.ok());
        require(arp->sender_mac() == kOurMac);
        require(arp->sender_ip() == kOurIp);
        return;
      }
      case wire::ethertype::kIpv4: {
        const auto ip = wire::Ipv4Packet::parse(eth->payload(), /*verify_checksum=*/!cfg_.tx_ip_cksum);
        require(ip.ok());
        require(ip->src() == kOurIp);
        require(ip->total_len() == eth->payload().size());
        if (cfg_.tx_ip_cksum) require(ip->checksum() == 0);
        if (ip->protocol() == wire::ipproto::kIcmp) {
          const auto icmp = wire::IcmpPacket::parse(ip->payload());
          require(icmp.ok());
          const std::uint8_t t = icmp->type();
          require(t == wire::icmp_type::kEchoReply || t == wire::icmp_type::kEchoRequest || icmp->is_error());
        }
        return;
      }
      default:
        require(false);  // the stack sends nothing else
    }
  }

  const Config& cfg_;
  TimeNs last_now_ = 0;
  std::size_t emitted_ = 0;
};

// Touches every byte it is handed, so ASan sees any view that overruns its
// packet; checks the delivery contract of ProtocolHandler.
std::uint32_t touch(Bytes b) {
  std::uint32_t x = 0;
  for (const std::uint8_t c : b) x = x * 31 + c;
  return x;
}

class CheckingHandler final : public ProtocolHandler {
 public:
  void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs /*now*/) override {
    require(static_cast<bool>(pkt) && pkt.contiguous());
    const Bytes frame{pkt.data()};
    // data() is still at the Ethernet header; the IPv4 view lies inside it
    // and ends where the frame ends (link padding cut off).
    require(ip.bytes().data() > frame.data());
    require(ip.bytes().data() + ip.bytes().size() == frame.data() + frame.size());
    require(ip.protocol() == wire::ipproto::kUdp);
    require(!ip.is_fragment());
    sink_ ^= touch(frame) ^ touch(ip.payload());
    Packet taken = std::move(pkt);  // owned here now; freed on return
  }
  void icmp_error(std::uint8_t /*type*/, std::uint8_t /*code*/, Bytes quoted, TimeNs /*now*/) override {
    require(quoted.size() >= wire::kIpv4MinHeaderLen);
    require(quoted[wire::Ipv4Packet::kProtoOff] == wire::ipproto::kUdp);
    sink_ ^= touch(quoted);
  }

 private:
  std::uint32_t sink_ = 0;
};

void on_echo_reply(const EchoReply& r, TimeNs /*now*/, void* ctx) {
  *static_cast<std::uint32_t*>(ctx) ^= touch(r.data) ^ r.ident ^ r.seq ^ r.from.v;
}

rte_mbuf* frame_mbuf(Bytes frame, const Config& cfg) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  require(m != nullptr);
  const std::size_t first = cfg.chained && frame.size() >= 2 ? frame.size() / 2 : frame.size();
  if (first > 0) {
    char* d = rte_pktmbuf_append(m, static_cast<std::uint16_t>(first));
    require(d != nullptr);
    std::memcpy(d, frame.data(), first);
  }
  if (first < frame.size()) {
    rte_mbuf* tail = rte_pktmbuf_alloc(g_pool);
    require(tail != nullptr);
    char* d = rte_pktmbuf_append(tail, static_cast<std::uint16_t>(frame.size() - first));
    require(d != nullptr);
    std::memcpy(d, frame.data() + first, frame.size() - first);
    require(rte_pktmbuf_chain(m, tail) == 0);
  }
  if (cfg.rx_ip_cksum) m->ol_flags |= cfg.rx_flags;
  return m;
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return;
  const Config cfg(data[0]);
  std::size_t pos = 1;

  StackConfig sc;
  sc.mac = kOurMac;
  sc.ip = Ipv4Cidr{kOurIp, 24};
  sc.gateway = Ipv4Addr(192, 0, 2, 254);
  if (cfg.vlan) sc.vlan = kVid;
  // Small and fast so short inputs reach table-full, queue overflow,
  // retry exhaustion, staleness and the ICMP rate limit.
  sc.arp.entries = 8;
  sc.arp.pending_per_entry = 2;
  sc.arp.max_retries = 2;
  sc.arp.retry_ns = kNsPerMs;
  sc.arp.reachable_ns = 50 * kNsPerMs;
  sc.icmp_errors_per_sec = 10;
  sc.icmp_error_burst = 3;
  sc.reply_to_broadcast_echo = cfg.bcast_echo;
  sc.gratuitous_arp_on_start = cfg.start;

  DeviceCaps caps;
  caps.mac = kOurMac;
  caps.rx_ipv4_cksum = cfg.rx_ip_cksum;
  caps.tx_ipv4_cksum = cfg.tx_ip_cksum;

  CheckingSink sink(cfg);
  CheckingHandler udp;  // TCP (6) stays unhandled: protocol-unreachable path
  std::uint32_t echo_seen = 0;
  TimeNs now = kNsPerSec;
  std::uint64_t frames = 0;
  {
    Stack stack(sc, g_pool, caps, sink, now);
    stack.set_protocol_handler(wire::ipproto::kUdp, &udp);
    stack.on_echo_reply(&on_echo_reply, &echo_seen);
    stack.start(now);
    while (pos + 3 <= size) {
      const std::uint8_t step = data[pos];
      const std::size_t want = std::size_t{data[pos + 1]} << 8 | data[pos + 2];
      const std::uint8_t host = data[pos + 2];
      pos += 3;
      const std::size_t len = std::min({want, size - pos, kMaxFrame});
      const unsigned e = (step & 0x3fu) % 41u;
      if (e != 0) now += TimeNs{1} << (e - 1);
      stack.poll(now);
      const std::uint8_t ping_data[] = {'f', 'u', 'z', 'z'};
      if (step & 0x40) stack.send_echo_request(Ipv4Addr(192, 0, 2, host), 1, host, Bytes{ping_data}, now);
      if (step & 0x80) stack.send_echo_request(Ipv4Addr(198, 51, 100, host), 2, host, Bytes{ping_data}, now);
      stack.rx(frame_mbuf(Bytes{data + pos, len}, cfg), now);
      ++frames;
      pos += len;
      stack.poll(now);
      require(stack.counters().get(StackCounter::eth_rx_packets) == frames);
    }
    // Everything due has fired (next_deadline() is O(wheel slots): once per input).
    require(stack.next_deadline() == kNever || stack.next_deadline() > now);
    // Let every timer run out: retries give up, entries go stale and expire.
    // Each poll moves an entry one state on (a timer re-armed from its
    // callback is due after that poll's `now`).
    for (int i = 0; i < 5; ++i) {
      now += 1000 * kNsPerSec;
      stack.poll(now);
    }
    require(stack.arp().size() == 0);
    if (g_verbose) {  // USTACK_FUZZ_VERBOSE=1: what a seed exercises
      std::fprintf(stderr, "frames %llu emitted %zu:", static_cast<unsigned long long>(frames), sink.emitted());
      for (std::size_t i = 0; i < kStackCounterCount; ++i)
        if (const auto v = stack.counters().get(i))
          std::fprintf(stderr, " %s=%llu", kStackCounterNames[i].data(), static_cast<unsigned long long>(v));
      std::fprintf(stderr, "\n");
    }
  }
  // The stack owned nothing past its lifetime; the sink freed what it got.
  require(rte_mempool_avail_count(g_pool) == g_pool_size);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  char prog[] = "fuzz_stack";
  char a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "256", a5[] = "--no-shconf",
       a6[] = "--no-telemetry", a7[] = "-l", a8[] = "0", a9[] = "--log-level=*:error";
  char* eal_argv[] = {prog, a1, a2, a3, a4, a5, a6, a7, a8, a9, nullptr};
  if (rte_eal_init(9, eal_argv) < 0) {
    std::fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
    std::abort();  // start-up only
  }
  g_verbose = std::getenv("USTACK_FUZZ_VERBOSE") != nullptr;
  // No per-lcore cache, so the available count is exact for the leak check.
  g_pool_size = 1023;
  g_pool = rte_pktmbuf_pool_create("fuzz_pool", g_pool_size, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!g_pool) {
    std::fprintf(stderr, "mempool: %s\n", rte_strerror(rte_errno));
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size);
  return 0;
}
