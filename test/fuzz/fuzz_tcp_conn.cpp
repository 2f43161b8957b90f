// libFuzzer target: the TCP connection state machine (src/tcp/tcp_layer.cpp),
// the read -> timeout -> write loop of one TcpLayer driven by a script.
//
// Each input is a fresh Stack + TcpLayer (every crash reproduces from its
// input alone) on virtual time. The harness plays the peer, as the unit tests
// in test/unit/tcp_state/ do: it brings connection 0 to a chosen state with
// crafted valid segments, then runs the script. The peer's view of each flow
// (our ISS, the next sequence number we expect, the highest we sent, our last
// TSval) is read back from what the stack emits, so fuzzed sequence and
// acknowledgment numbers are offsets from the values that matter and most
// segments land near the windows instead of being dropped out of hand.
//
//   byte 0  the state to reach first, low 4 bits mod 11 (see kTargets);
//           bit 4: the peer offers timestamps, bit 5: window scaling,
//           bit 6: SACK; bit 7: the application reads from inside
//           on_readable and closes at end of stream (re-entrant calls)
//   byte 1  bit 0: Nagle; bit 1: delayed ACKs off; bit 2: keepalive with
//           short timers; bit 3: SYN cookies off; bit 4: the application
//           sends from on_writable / on_accept; bits 5-7: quick-ack segments
//   then ops, an opcode byte each (low 4 bits the op; bits 5-7 the flow,
//   flows 0-3 connect to our listener, 4-7 are our active opens) and its
//   operands; a short last op is ignored:
//     0 segment  [flags][seq off 2][ack off 2][window][options][len]
//                seq = the flow's RCV.NXT-to-be + off (bit 4 of the opcode:
//                off << 12, far outside any window), ack = our highest
//                sequence number sent + off; options bits: 0 timestamps
//                (bits 1-2 move TSval back/forward), 3 a SACK block, 4 MSS,
//                5 window scale, 6 SACK-permitted; len payload bytes
//     1 raw      [len][len bytes]: a whole TCP header and payload, ports
//                forced to the flow's, checksum fixed (malformed options,
//                bad data offsets)
//     2 time     [e]: time advances by 2^(e mod 40) ns, timers fire at
//                their deadlines on the way
//     3 send     [n]: send n * 61 bytes      4 read [n]: read n * 97 bytes
//     5 shutdown 6 close 7 abort
//     8 options  [b]: set_nagle, set_delayed_ack, set_keepalive from bits 0-2
//     9 syn      [b]: a new SYN on the flow (b: ISS offset and options), or
//                for flows 4-7 connect()
//    10 listen   toggles the listener (unlisten resets handshakes in progress)
//
// Invariants, after every step:
//  - TcpLayer::check_invariants(): SND.UNA <= SND.NXT <= SND.MAX, send and
//    receive queues within their bounds, timers for data in flight, pool,
//    TIME-WAIT and backlog counts consistent;
//  - connection_count() <= capacity(); stats() of every live handle within
//    the configured buffers;
//  - every frame the stack emits parses as Ethernet/IPv4/TCP from us with a
//    valid checksum and options, at a time that never goes backwards;
//  - at the end, after the layer and the stack are destroyed, every mbuf is
//    back in the pool (no leak), and ASan/UBSan saw nothing.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "core/bytes.hpp"
#include "core/time.hpp"
#include "drivers/device.hpp"
#include "net/packet.hpp"
#include "net/stack.hpp"
#include "tcp/tcp_layer.hpp"
#include "ustack/stats.hpp"
#include "ustack/tcp.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace {

using namespace ustack;
using wire::TcpFlags;
using namespace wire::tcp_flag;

inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

rte_mempool* g_pool = nullptr;
unsigned g_pool_size = 0;
bool g_verbose = false;

constexpr MacAddr kOurMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr MacAddr kPeerMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr Ipv4Addr kOurIp(192, 0, 2, 1);
constexpr Ipv4Addr kPeerIp(192, 0, 2, 2);
constexpr std::uint16_t kListenPort = 80;
constexpr std::size_t kFlows = 8;
constexpr std::uint32_t kSndBuf = 16 * 1024;
constexpr std::uint32_t kRcvBuf = 16 * 1024;

enum class Target : std::uint8_t {
  closed, listen, syn_sent, syn_received, established, fin_wait_1, fin_wait_2, close_wait, closing, last_ack, time_wait,
};
constexpr std::size_t kTargets = 11;

tcp::Secret secret_of(std::uint8_t v) {
  tcp::Secret s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(v + i);
  return s;
}

// The peer's knowledge of one flow.
struct Flow {
  std::uint16_t local_port = 0;   // ours
  std::uint16_t remote_port = 0;  // the peer's
  SeqNum p_iss{0x40000000u};
  SeqNum rcv_nxt;      // what we acknowledged last (the peer sends from here)
  SeqNum snd_max;      // our highest sequence number sent, plus one
  bool seen = false;   // we sent something on it
  bool ts = false;     // the peer puts timestamps on its segments
  std::uint32_t tsval = 1000;
  std::uint32_t our_tsval = 0;
  TcpConnId conn;      // the application's handle, when it has one
};

struct Harness;

// Checks every frame the stack emits and feeds the peer's view.
class PeerSink final : public PacketSink {
 public:
  explicit PeerSink(Harness& h) : h_(h) {}
  void emit(Packet&& p, TimeNs now) override;
  std::size_t emitted = 0;

 private:
  Harness& h_;
  TimeNs last_ = 0;
};

class App final : public tcp::TcpHandler {
 public:
  explicit App(Harness& h) : h_(h) {}
  void on_accept(tcp::TcpLayer& t, TcpListenerId, TcpConnId c, TimeNs now) override;
  void on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_writable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_closed(tcp::TcpLayer& t, TcpConnId c, TcpError err, TimeNs now) override;

  bool read_in_callback = false;
  bool send_in_callback = false;

 private:
  Harness& h_;
};

struct Harness {
  std::uint8_t setup0, setup1;
  TimeNs now = 1000 * kNsPerSec;
  PeerSink sink{*this};
  App app{*this};
  std::array<Flow, kFlows> flows{};
  std::size_t current = 0;  // the flow whose segment is being injected
  std::unique_ptr<Stack> stack;
  std::unique_ptr<tcp::TcpLayer> tcp;
  std::optional<TcpListenerId> listener;
  TcpConnOptions opt;
  std::array<std::uint8_t, 2048> buf{};

  Harness(std::uint8_t s0, std::uint8_t s1) : setup0(s0), setup1(s1) {
    for (std::size_t i = 0; i < kFlows; ++i) {
      flows[i].local_port = i < 4 ? kListenPort : static_cast<std::uint16_t>(2000 + i);
      flows[i].remote_port = static_cast<std::uint16_t>(i < 4 ? 40000 + i : 5000 + i);
      flows[i].p_iss = SeqNum{0x40000000u + static_cast<std::uint32_t>(i) * 0x01000000u};
    }
    StackConfig sc;
    sc.mac = kOurMac;
    sc.ip = Ipv4Cidr{kOurIp, 24};
    sc.gratuitous_arp_on_start = false;
    sc.arp.reachable_ns = 100ull * 365 * 24 * 3600 * kNsPerSec;
    DeviceCaps caps;
    caps.mac = kOurMac;
    stack = std::make_unique<Stack>(sc, g_pool, caps, sink, now);
    stack->arp().update(kPeerIp, kPeerMac, true, now);

    tcp::TcpConfig cfg;
    cfg.max_connections = 4;
    cfg.max_listeners = 2;
    cfg.ooo_segments = 8;
    cfg.quickack_segments = (s1 >> 5) & 7;
    cfg.syn_cookies = !(s1 & 0x08);
    cfg.defaults.sndbuf = kSndBuf;
    cfg.defaults.rcvbuf = kRcvBuf;
    cfg.defaults.nagle = s1 & 0x01;
    cfg.defaults.delayed_ack = !(s1 & 0x02);
    if (s1 & 0x04) {
      cfg.defaults.keepalive = true;
      cfg.defaults.keepalive_idle_ns = 2 * kNsPerSec;
      cfg.defaults.keepalive_interval_ns = 500 * kNsPerMs;
      cfg.defaults.keepalive_probes = 2;
    }
    cfg.defaults.user_timeout_ns = 30 * kNsPerSec;
    cfg.isn_secret = secret_of(1);
    cfg.cookie_secret = secret_of(2);
    cfg.table_secret = secret_of(3);
    opt = cfg.defaults;
    tcp = std::make_unique<tcp::TcpLayer>(*stack, cfg);
    app.read_in_callback = s0 & 0x80;
    app.send_in_callback = s1 & 0x10;
  }

  ~Harness() {
    tcp.reset();
    stack.reset();
  }

  Flow& flow() { return flows[current]; }

  // --- invariants ---------------------------------------------------------------
  void check() {
    const char* why = tcp->check_invariants();
    if (why && g_verbose) std::fprintf(stderr, "invariant broken: %s\n", why);
    require(why == nullptr);
    require(tcp->connection_count() <= tcp->capacity());
    for (const Flow& f : flows) {
      if (const auto st = tcp->stats(f.conn)) {
        require(st->unacked <= kSndBuf);
        require(st->unread <= kRcvBuf);
        require(st->state != TcpState::closed && st->state != TcpState::listen);
        require(st->mss > 0);
      }
    }
  }

  // --- time -----------------------------------------------------------------------
  void advance(TimeNs dt) {
    const TimeNs end = now + dt;
    // Timers fire at their deadlines (the first few dozen; the rest, late,
    // at `end`, as after a long poll-loop stall).
    for (int i = 0; i < 64; ++i) {
      const TimeNs next = stack->next_deadline();
      if (next == kNever || next > end) break;
      if (next > now) now = next;
      stack->poll(now);
      check();
    }
    now = end;
    stack->poll(now);
    check();
  }

  // --- the peer's segments ---------------------------------------------------------
  void inject(std::vector<std::uint8_t>& seg) {
    if (seg.size() >= wire::kTcpMinHeaderLen) {
      seg[wire::TcpSegment::kChecksumOff] = seg[wire::TcpSegment::kChecksumOff + 1] = 0;
      const std::uint16_t c = wire::checksum_fold(wire::checksum_add(
          Bytes{seg}, wire::pseudo_header_sum(kPeerIp, kOurIp, wire::ipproto::kTcp, static_cast<std::uint16_t>(seg.size()))));
      seg[wire::TcpSegment::kChecksumOff] = static_cast<std::uint8_t>(c >> 8);
      seg[wire::TcpSegment::kChecksumOff + 1] = static_cast<std::uint8_t>(c);
    }
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    require(m != nullptr);
    wire::EthernetRepr e{kOurMac, kPeerMac, wire::ethertype::kIpv4, std::nullopt};
    wire::Ipv4Repr ip{kPeerIp, kOurIp, wire::ipproto::kTcp, static_cast<std::uint16_t>(seg.size()), 64, 0, 7, true};
    const std::size_t total = e.header_len() + ip.buffer_len();
    auto* d = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m, static_cast<std::uint16_t>(total)));
    require(d != nullptr);
    MutBytes frame{d, total};
    e.emit(frame.first(e.header_len()));
    ip.emit(frame.subspan(e.header_len(), ip.buffer_len()));
    if (!seg.empty()) std::memcpy(d + e.header_len() + ip.header_len(), seg.data(), seg.size());
    stack->rx(m, now);
    check();
  }

  wire::TcpRepr repr(TcpFlags f, SeqNum seq, SeqNum ack, std::uint16_t wnd = 65535) {
    const Flow& fl = flow();
    wire::TcpRepr r;
    r.src_port = fl.remote_port;
    r.dst_port = fl.local_port;
    r.seq = seq;
    r.ack = f.ack() ? ack : SeqNum{};
    r.flags = f;
    r.window = wnd;
    if (fl.ts) r.options.timestamps = wire::TcpTimestamps{fl.tsval, f.ack() ? fl.our_tsval : 0};
    return r;
  }

  void send_repr(const wire::TcpRepr& r, std::size_t payload_len) {
    std::vector<std::uint8_t> seg(r.header_len() + payload_len);
    for (std::size_t i = 0; i < payload_len; ++i) seg[r.header_len() + i] = static_cast<std::uint8_t>(i * 7 + 1);
    r.emit(MutBytes{seg}.first(r.header_len()), kPeerIp, kOurIp, Bytes{seg}.subspan(r.header_len()), true);
    ++flow().tsval;
    inject(seg);
  }

  // A SYN on the current flow, with the options of setup byte 0.
  void syn(std::uint32_t iss_off = 0, std::optional<std::uint8_t> opts = std::nullopt) {
    Flow& f = flow();
    const std::uint8_t o = opts ? *opts : setup0;
    f.p_iss += iss_off;
    f.ts = false;
    wire::TcpRepr r = repr(kSyn, f.p_iss, SeqNum{});
    r.options.mss = 1460;
    if (o & 0x10) r.options.timestamps = wire::TcpTimestamps{f.tsval, 0};
    if (o & 0x20) r.options.wscale = 7;
    r.options.sack_permitted = o & 0x40;
    f.rcv_nxt = f.p_iss + 1;
    f.seen = false;
    send_repr(r, 0);
    f.ts = (o & 0x10) != 0;
  }
  // The in-order ACK (with data or FIN) of the current flow.
  void ack(TcpFlags extra = TcpFlags{}, std::size_t len = 0) {
    Flow& f = flow();
    send_repr(repr(kAck | extra, f.rcv_nxt, f.snd_max), len);
  }

  // --- bringing flow 0 (or 4) to the target state --------------------------------
  void reach(Target t) {
    if (t == Target::closed) return;
    if (t == Target::syn_sent) {
      current = 4;
      connect();
      require(tcp->state(flow().conn) == TcpState::syn_sent);
      return;
    }
    do_listen();
    if (t == Target::listen) return;
    current = 0;
    syn();
    require(flow().seen);
    if (t == Target::syn_received) return;
    ack();
    Flow& f = flow();
    require(tcp->state(f.conn) == TcpState::established);
    switch (t) {
      case Target::established: break;
      case Target::fin_wait_1: tcp->shutdown(f.conn, now); break;
      case Target::fin_wait_2:
        tcp->shutdown(f.conn, now);
        ack();
        require(tcp->state(f.conn) == TcpState::fin_wait_2);
        break;
      case Target::close_wait:
        ack(kFin);
        require(tcp->state(f.conn) == TcpState::close_wait || app.read_in_callback);
        break;
      case Target::closing: {
        tcp->shutdown(f.conn, now);
        // A FIN that does not acknowledge ours.
        send_repr(repr(kAck | kFin, f.rcv_nxt, f.snd_max - 1), 0);
        // (An application closing at end of stream has no handle left.)
        require(tcp->state(f.conn) == TcpState::closing || app.read_in_callback);
        break;
      }
      case Target::last_ack:
        ack(kFin);
        tcp->shutdown(f.conn, now);
        break;
      case Target::time_wait:
        tcp->shutdown(f.conn, now);
        ack();
        ack(kFin);
        require(tcp->time_wait_count() == 1);
        break;
      default: break;
    }
    check();
  }

  void do_listen() {
    listener = tcp->listen(Ipv4Addr{}, kListenPort, 2, &app, nullptr, opt);
    require(listener.has_value());
  }
  void connect() {
    Flow& f = flow();
    f.seen = false;
    f.ts = false;
    if (auto c = tcp->connect(kPeerIp, f.remote_port, &app, nullptr, opt, now, f.local_port)) f.conn = *c;
    check();
  }

  // --- the script ----------------------------------------------------------------------
  void run(const std::uint8_t* data, std::size_t size) {
    std::size_t pos = 0;
    auto take = [&](std::size_t n) -> const std::uint8_t* {
      if (size - pos < n) return nullptr;
      const std::uint8_t* p = data + pos;
      pos += n;
      return p;
    };
    while (pos < size) {
      const std::uint8_t opcode = data[pos++];
      current = opcode >> 5;
      Flow& f = flow();
      switch (opcode & 0x0f) {
        case 0: {
          const std::uint8_t* a = take(9);
          if (!a) return;
          const TcpFlags flags{a[0]};
          const auto seq_off = static_cast<std::int16_t>(a[1] << 8 | a[2]);
          const auto ack_off = static_cast<std::int16_t>(a[3] << 8 | a[4]);
          const int shift = (opcode & 0x10) ? 12 : 0;
          const SeqNum seq = f.rcv_nxt + static_cast<std::uint32_t>(static_cast<std::int32_t>(seq_off) * (1 << shift));
          const SeqNum ackn = f.snd_max + static_cast<std::uint32_t>(static_cast<std::int32_t>(ack_off));
          wire::TcpRepr r = repr(flags, seq, ackn, static_cast<std::uint16_t>(a[5] * 257u));
          const std::uint8_t o = a[6];
          r.options = wire::TcpOptions{};
          if (o & 0x01) {
            std::uint32_t tsval = f.tsval;
            if (o & 0x02) tsval -= 100000;  // an old one: PAWS
            if (o & 0x04) tsval += 1u << 30;
            r.options.timestamps = wire::TcpTimestamps{tsval, f.our_tsval};
          }
          if (o & 0x08) {
            r.options.sack_count = 1;
            r.options.sack_blocks[0] = wire::SackBlock{f.snd_max - (a[7] * 64u + 64u), f.snd_max - a[7] * 16u};
          }
          if (o & 0x10) r.options.mss = static_cast<std::uint16_t>(a[7] * 8u);
          if (o & 0x20) r.options.wscale = static_cast<std::uint8_t>(a[7] & 0x0f);
          r.options.sack_permitted = o & 0x40;
          send_repr(r, a[8] * 6u);  // up to 1530 bytes: also beyond the MSS
          break;
        }
        case 1: {
          const std::uint8_t* n = take(1);
          if (!n) return;
          const std::uint8_t* b = take(*n);
          if (!b) return;
          std::vector<std::uint8_t> seg(b, b + *n);
          if (seg.size() >= 4) {
            seg[0] = static_cast<std::uint8_t>(f.remote_port >> 8);
            seg[1] = static_cast<std::uint8_t>(f.remote_port);
            seg[2] = static_cast<std::uint8_t>(f.local_port >> 8);
            seg[3] = static_cast<std::uint8_t>(f.local_port);
          }
          inject(seg);
          break;
        }
        case 2: {
          const std::uint8_t* e = take(1);
          if (!e) return;
          const unsigned x = *e % 40u;
          advance(x ? TimeNs{1} << x : 0);
          break;
        }
        case 3: {
          const std::uint8_t* n = take(1);
          if (!n) return;
          const std::size_t len = std::min<std::size_t>(*n * 61u, buf.size());
          for (std::size_t i = 0; i < len; ++i) buf[i] = static_cast<std::uint8_t>(i);
          (void)tcp->send(f.conn, Bytes{buf}.first(len), now);
          check();
          break;
        }
        case 4: {
          const std::uint8_t* n = take(1);
          if (!n) return;
          if (*n == 0) {
            Packet p = tcp->read_zero_copy(f.conn, now);
          } else {
            (void)tcp->read(f.conn, MutBytes{buf}.first(std::min<std::size_t>(*n * 97u, buf.size())), now);
          }
          (void)tcp->peer_closed(f.conn);
          check();
          break;
        }
        case 5: tcp->shutdown(f.conn, now); check(); break;
        case 6: tcp->close(f.conn, now); check(); break;
        case 7: tcp->abort(f.conn, now); check(); break;
        case 8: {
          const std::uint8_t* b = take(1);
          if (!b) return;
          tcp->set_nagle(f.conn, *b & 1, now);
          tcp->set_delayed_ack(f.conn, *b & 2);
          tcp->set_keepalive(f.conn, *b & 4, now);
          check();
          break;
        }
        case 9: {
          const std::uint8_t* b = take(1);
          if (!b) return;
          if (current < 4) syn(static_cast<std::uint32_t>(*b) << 20, *b);
          else connect();
          break;
        }
        case 10:
          if (listener) {
            tcp->unlisten(*listener, now);
            listener.reset();
          } else {
            listener = tcp->listen(Ipv4Addr{}, kListenPort, 2, &app, nullptr, opt);
          }
          check();
          break;
        default: break;
      }
    }
  }
};

void PeerSink::emit(Packet&& p, TimeNs now) {
  require(static_cast<bool>(p) && p.contiguous());
  require(now >= last_);
  last_ = now;
  ++emitted;
  const Bytes frame{p.data()};
  const auto eth = wire::EthernetFrame::parse(frame);
  require(eth.ok());
  require(eth->src() == kOurMac && eth->dst() == kPeerMac);
  require(eth->ethertype() == wire::ethertype::kIpv4);
  const auto ip = wire::Ipv4Packet::parse(eth->payload());
  require(ip.ok());
  require(ip->src() == kOurIp && ip->dst() == kPeerIp);
  require(ip->protocol() == wire::ipproto::kTcp);
  const auto seg = wire::TcpSegment::parse(ip->payload(), ip->src(), ip->dst(), true);
  require(seg.ok());
  const auto opts = wire::TcpOptions::parse(seg->options());
  require(opts.ok());
  require(seg->payload().size() <= 1460);
  const TcpFlags f = seg->flags();
  for (Flow& fl : h_.flows) {
    if (fl.local_port != seg->src_port() || fl.remote_port != seg->dst_port()) continue;
    if (f.rst()) break;
    const SeqNum end = seg->seq() + static_cast<std::uint32_t>(seg->seg_len());
    if (f.syn()) {
      fl.snd_max = end;
    } else if (!fl.seen || end > fl.snd_max) {
      fl.snd_max = end;
    }
    if (f.ack()) fl.rcv_nxt = seg->ack();
    if (opts->timestamps) fl.our_tsval = opts->timestamps->tsval;
    fl.seen = true;
    break;
  }
  p.reset();
}

void App::on_accept(tcp::TcpLayer& t, TcpListenerId, TcpConnId c, TimeNs now) {
  h_.flow().conn = c;
  if (send_in_callback) (void)t.send(c, Bytes{h_.buf}.first(100), now);
}
void App::on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  if (send_in_callback) (void)t.send(c, Bytes{h_.buf}.first(100), now);
}
void App::on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  if (!read_in_callback) return;
  std::array<std::uint8_t, 1500> b;
  while (t.read(c, b, now) != 0) {}
  if (t.peer_closed(c)) t.close(c, now);
}
void App::on_writable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  if (send_in_callback) (void)t.send(c, Bytes{h_.buf}.first(1000), now);
}
void App::on_closed(tcp::TcpLayer& t, TcpConnId c, TcpError, TimeNs now) {
  // The handle is dead: every call on it must be refused harmlessly.
  require(!t.stats(c).has_value());
  require(t.send(c, Bytes{h_.buf}.first(10), now) == 0);
  t.close(c, now);
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  {
    Harness h(data[0], data[1]);
    h.reach(static_cast<Target>((data[0] & 0x0f) % kTargets));
    h.run(data + 2, size - 2);
    // Let every timer run out, late: retransmissions give up, TIME-WAIT ends.
    for (int i = 0; i < 8; ++i) {
      h.now += 500 * kNsPerSec;
      h.stack->poll(h.now);
      h.check();
    }
    if (g_verbose) {  // USTACK_FUZZ_VERBOSE=1: what a seed exercises
      std::fprintf(stderr, "emitted %zu, connections %u:", h.sink.emitted, h.tcp->connection_count());
      for (std::size_t i = 0; i < kStackCounterCount; ++i)
        if (const auto v = h.stack->counters().get(i); v && kStackCounterNames[i].starts_with("tcp"))
          std::fprintf(stderr, " %s=%llu", kStackCounterNames[i].data(), static_cast<unsigned long long>(v));
      std::fprintf(stderr, "\n");
    }
  }
  // The layer and the stack own nothing past their lifetime.
  require(rte_mempool_avail_count(g_pool) == g_pool_size);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  char prog[] = "fuzz_tcp_conn";
  char a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "256", a5[] = "--no-shconf",
       a6[] = "--no-telemetry", a7[] = "-l", a8[] = "0", a9[] = "--log-level=*:error";
  char* eal_argv[] = {prog, a1, a2, a3, a4, a5, a6, a7, a8, a9, nullptr};
  if (rte_eal_init(9, eal_argv) < 0) {
    std::fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
    std::abort();  // start-up only
  }
  g_verbose = std::getenv("USTACK_FUZZ_VERBOSE") != nullptr;
  // No per-lcore cache, so the available count is exact for the leak check.
  g_pool_size = 2047;
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
