// ustack-bench udp and ustack-bench mcast: ustack's UDP on two stacks over
// the in-memory pair, on one core, beside the Linux kernel's UDP over
// loopback, in the same run.
//
// What is measured (ustack; kernel in brackets). Every datagram carries a
// 64-byte payload whose first four bytes are a sequence number; every
// receiver checks it, so a lost, duplicated or stale datagram stops the
// bench instead of flattering it.
//  - udp_oneway64: send_to() until the receiving socket's readable callback
//    runs on the other stack (the callback then takes the datagram without a
//    copy and checks it). [sendto() until recvfrom() returns it.]
//  - udp_rr64: a datagram to an echo socket that recv_from()s it (copy) and
//    send_to()s it back (copy), until the sender's callback has it.
//    [sendto, recvfrom, sendto, recvfrom.]
//  - udp_pps: bursts of 32 datagrams, one sender socket, one receiver
//    socket; datagrams per second with both stacks on this one lcore, and
//    each stack's own share (what its lcore would sustain alone).
//    [32 sendto()s, then 32 recvfrom()s.]
//  - mcast_fanout_N: one datagram to a group that N sockets on the receiving
//    stack joined (reuse, bound to the group and port, IgmpHost membership),
//    until the last of them has run its callback. [N sockets with
//    SO_REUSEADDR bound to the group and port and joined to it on
//    127.0.0.1 (lo), IP_MULTICAST_IF 127.0.0.1, IP_MULTICAST_LOOP on; sendto()
//    until the last of the N recvfrom()s returns.]
//  - udp_allocs / mcast_allocs: heap allocations on this thread per datagram
//    over every measured ustack phase (must be 0).
//
// The kernel runs in this thread too, with nonblocking sockets polled in a
// loop (busy polling: nothing sleeps). Over loopback sendto() runs the
// receiver's whole UDP input (and the multicast fan-out) in the sender's
// softirq before it returns, so a datagram is queued on the receiving
// socket(s) when sendto() returns: the kernel at its fastest, with no
// scheduler wake-up in the figure, as ustack's two stacks on one core have
// none. Loopback skips checksums; ustack computes them in software at both
// ends (the pair has no offloads).
//
// Time is the TSC around the real work; the stacks' `now` is the TSC too,
// read once per loop iteration as in the runtime. Rates in the table are
// taken at the median operation; whole-phase rates are in the JSON (*_wall).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <rte_cycles.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apps/bench/cases.hpp"
#include "apps/bench/clock.hpp"
#include "apps/bench/pair_stacks.hpp"
#include "apps/bench/kernel_socket.hpp"
#include "core/alloc_counter.hpp"
#include "drivers/mem_pair.hpp"
#include "igmp/igmp_host.hpp"
#include "src/runtime/engine.hpp"
#include "udp/udp_layer.hpp"

namespace ustack::bench {

namespace {

constexpr std::size_t kMsg = 64;
constexpr std::uint16_t kPort = 5002;     // ustack's echo / sink port (its own address space)
constexpr std::uint32_t kBurst = 32;      // udp_pps: datagrams per burst (one rx_burst)
constexpr std::uint16_t kMaxFanout = 100;  // sockets the receiving stack holds for mcast

[[noreturn]] void fail(const char* bench, const std::string& what) {
  std::fprintf(stderr, "ustack-bench %s: %s\n", bench, what.c_str());
  std::exit(1);
}

// Latency figures from per-operation cycles; returns one over the median.
double fill_samples(Figures& f, const Clock& clk, const std::vector<std::uint64_t>& cycles) {
  std::vector<std::uint64_t> ns(cycles.size());
  for (std::size_t i = 0; i < cycles.size(); ++i) ns[i] = static_cast<std::uint64_t>(clk.ns(cycles[i]));
  fill_latency(f, ns);
  return f.p50_ns > 0 ? 1e9 / f.p50_ns : 0;
}

double median_ns(const Clock& clk, std::vector<std::uint64_t> cycles) {
  if (cycles.empty()) return 0;
  const auto mid = cycles.begin() + static_cast<std::ptrdiff_t>(cycles.size() / 2);
  std::nth_element(cycles.begin(), mid, cycles.end());
  return clk.ns(*mid);
}

// Rates from the median operation (`ops_per_sec`) at `per_op` datagrams per
// operation; whole-phase rates as *_wall.
struct Measured {
  double elapsed_ns = 0;
  std::uint64_t ops = 0, datagrams = 0, allocs = 0;
};
void fill_rates(Figures& f, const Measured& m, double ops_per_sec, double per_op) {
  f.ops_per_sec = ops_per_sec;
  f.pps = ops_per_sec * per_op;
  f.ns_per_pkt = f.pps > 0 ? 1e9 / f.pps : 0;
  f.ops_per_sec_wall = m.elapsed_ns > 0 ? static_cast<double>(m.ops) / (m.elapsed_ns / 1e9) : 0;
  f.pps_wall = m.elapsed_ns > 0 ? static_cast<double>(m.datagrams) / (m.elapsed_ns / 1e9) : 0;
  f.allocs_per_pkt = m.datagrams ? static_cast<double>(m.allocs) / static_cast<double>(m.datagrams) : 0;
}

// Wall time and heap allocations of one measured phase.
struct Phase {
  const Clock& clk;
  std::uint64_t allocs0 = thread_alloc_count();
  std::uint64_t start = rte_rdtsc();
  Measured m;
  explicit Phase(const Clock& c) : clk(c) {}
  void end(std::uint64_t ops, std::uint64_t datagrams) {
    m.elapsed_ns = clk.ns(rte_rdtsc() - start);
    m.allocs = thread_alloc_count() - allocs0;
    m.ops = ops;
    m.datagrams = datagrams;
  }
};

// Runs `op` (which returns its own cycles) `n` times as one phase of
// `per_op` datagrams an operation; `cycles` gets each operation's cycles.
template <class Op>
Measured time_ops(const Clock& clk, std::vector<std::uint64_t>& cycles, std::uint64_t n, std::uint64_t per_op, Op&& op) {
  cycles.clear();
  Phase ph(clk);
  for (std::uint64_t i = 0; i < n; ++i) cycles.push_back(op());
  ph.end(n, n * per_op);
  return ph.m;
}

struct Totals {
  std::uint64_t allocs = 0, datagrams = 0;
  void add(const Measured& m) {
    allocs += m.allocs;
    datagrams += m.datagrams;
  }
};

void put_seq(std::array<std::uint8_t, kMsg>& msg, std::uint32_t seq) { store_be32(MutBytes{msg}, 0, seq); }

// --- ustack ------------------------------------------------------------------

// What the receiving sockets saw. Shared by every socket of a fan-out: the
// last callback's TSC is when the datagram reached its last receiver.
struct Sink {
  std::uint64_t delivered = 0, last_tsc = 0, bad = 0;
  // The TSC is read on entry to the callback that brings `delivered` to
  // this count (the last receiver of the datagram in flight), not in every
  // callback: under this VM a TSC read costs more than a delivery.
  std::uint64_t stamp_at = 0;
  std::uint32_t expect = 0;  // sequence number of the datagram in flight
  // udp_rr64: echo what arrives back to its sender (copying both ways).
  bool echo = false;
  // udp_pps: several datagrams in flight, numbered consecutively.
  bool advance = false;
  std::array<std::uint8_t, 2048> buf{};

  static void on_readable(UdpSocket& s, TimeNs now, void* ctx) {
    auto* self = static_cast<Sink*>(ctx);
    if (self->delivered + 1 == self->stamp_at) self->last_tsc = rte_rdtsc();
    if (self->echo) {
      const auto info = s.recv_from(MutBytes{self->buf});
      if (!info || info->len != kMsg || load_be32(Bytes{self->buf}, 0) != self->expect) ++self->bad;
      if (info && s.send_to(Bytes{self->buf}.first(info->len), info->from.addr, info->from.port, now) != UdpStatus::ok)
        ++self->bad;
      ++self->delivered;
      return;
    }
    // Zero copy: the application reads the payload where it landed.
    const auto d = s.recv();
    if (!d || d->pkt.len() != kMsg || load_be32(Bytes{d->pkt.data()}, 0) != self->expect) ++self->bad;
    else if (self->advance) ++self->expect;
    ++self->delivered;
  }
};

// Two stacks with a UdpLayer each on the in-memory pair, stepped on this
// thread with the TSC-derived `now`, as the runtime's loop does. The
// receiving stack (b) has an IgmpHost for the multicast cases.
struct Rig {
  const char* bench;
  Clock clk;
  MemPair wire;
  Engine a, b;
  UdpLayer ua, ub;
  IgmpHost igmp_b;

  static UdpConfig udp_config() {
    UdpConfig c;
    c.max_sockets = kMaxFanout + 8;
    return c;
  }
  Rig(const char* name, rte_mempool* pool)
      : bench(name),
        wire(4096, pair_caps(1), pair_caps(2)),
        a(wire.a(), pair_config(1), pool, clk.now()),
        b(wire.b(), pair_config(2), pool, clk.now()),
        ua(a.stack(), udp_config()),
        ub(b.stack(), udp_config()),
        igmp_b(b.stack(), IgmpConfig{}) {}

  Ipv4Addr ip_a() const { return Ipv4Addr{10, 0, 0, 1}; }
  Ipv4Addr ip_b() const { return Ipv4Addr{10, 0, 0, 2}; }
  void step() {
    a.run_once(clk.now());
    b.run_once(clk.now());
  }
  std::uint64_t packets() {
    return a.stack().counters().get(StackCounter::eth_tx_packets) + b.stack().counters().get(StackCounter::eth_tx_packets);
  }
  // Nothing is lost on this wire: a stall (no packet moved for 2 s) is a bug.
  template <class Done>
  void run_until(Done&& done, const char* what) {
    std::uint64_t last = rte_rdtsc(), last_pkts = packets();
    std::uint32_t n = 0;
    while (!done()) {
      step();
      if ((++n & 1023) != 0) continue;
      const std::uint64_t t = rte_rdtsc(), p = packets();
      if (p != last_pkts) {
        last = t;
        last_pkts = p;
      } else if (t - last > 2 * rte_get_tsc_hz()) {
        dump_counters();
        fail(bench, std::string("no packet for 2 s while waiting for ") + what);
      }
    }
  }
  void dump_counters() {
    std::fprintf(stderr, "counters (sender, receiver):\n");
    for (std::size_t i = 0; i < kStackCounterCount; ++i) {
      const auto va = a.stack().counters().get(i), vb = b.stack().counters().get(i);
      if (va || vb)
        std::fprintf(stderr, "  %-36.*s %12llu %12llu\n", static_cast<int>(kStackCounterNames[i].size()),
                     kStackCounterNames[i].data(), static_cast<unsigned long long>(va), static_cast<unsigned long long>(vb));
    }
  }
  UdpSocket& open(UdpLayer& l, Ipv4Addr addr, std::uint16_t port, bool reuse) {
    UdpSocket* s = l.open();
    if (!s) fail(bench, "no free UDP socket");
    s->set_reuse(reuse);
    if (s->bind(addr, port) != UdpStatus::ok) fail(bench, "UDP bind failed");
    return *s;
  }
  void check(const Sink& sink, const char* what) {
    if (sink.bad) fail(bench, std::string(what) + ": a datagram arrived wrong (length, sequence or echo)");
  }
};

std::vector<CaseResult> run_udp_ustack(const UdpOptions& opt, rte_mempool* pool) {
  auto rig = std::make_unique<Rig>("udp", pool);
  Rig& r = *rig;
  UdpSocket& tx = r.open(r.ua, Ipv4Addr{}, 0, false);
  UdpSocket& rx = r.open(r.ub, Ipv4Addr{}, kPort, false);
  Sink at_b, at_a;
  rx.on_readable(&Sink::on_readable, &at_b);
  tx.on_readable(&Sink::on_readable, &at_a);
  std::array<std::uint8_t, kMsg> msg{};
  std::uint32_t seq = 0;
  std::vector<CaseResult> out;
  std::vector<std::uint64_t> cycles, cycles_tx, cycles_rx;
  cycles.reserve(opt.iterations);
  Totals total;

  // One datagram a -> b; returns send call to b's callback, in cycles.
  auto one_way = [&]() -> std::uint64_t {
    put_seq(msg, at_b.expect = ++seq);
    const std::uint64_t want = at_b.stamp_at = at_b.delivered + 1;
    const std::uint64_t t0 = rte_rdtsc();
    if (tx.send_to(Bytes{msg}, r.ip_b(), kPort, r.clk.now()) != UdpStatus::ok) fail("udp", "send_to refused");
    r.run_until([&] { return at_b.delivered >= want; }, "a datagram");
    return at_b.last_tsc - t0;
  };
  for (int i = 0; i < 2000; ++i) one_way();  // warm-up: ARP, caches, branch predictors
  r.check(at_b, "warm-up");

  if (want(opt.only, "oneway")) {
    const Measured m = time_ops(r.clk, cycles, opt.iterations, 1, one_way);
    total.add(m);
    r.check(at_b, "udp_oneway64");
    CaseResult c;
    c.name = "udp_oneway64";
    c.what = "64-byte datagram, send call until the receiver's callback (kernel: sendto until recvfrom returns)";
    c.shown = show::kLatency | show::kAllocs;
    fill_rates(c.ustack, m, fill_samples(c.ustack, r.clk, cycles), 1);
    c.note = "ustack: send_to() (copy into an mbuf) .. sender's loop flushes .. receiver's loop: rx_burst, "
             "Ethernet, IPv4, UDP (software checksums both ends), socket queue, callback; two stacks on the "
             "in-memory pair, one thread. kernel: 127.0.0.1, nonblocking sockets busy-polled in this thread";
    out.push_back(std::move(c));
  }

  if (want(opt.only, "rr64")) {
    at_b.echo = true;
    auto rr = [&]() -> std::uint64_t {
      put_seq(msg, at_a.expect = at_b.expect = ++seq);
      const std::uint64_t want = at_a.stamp_at = at_a.delivered + 1;
      const std::uint64_t t0 = rte_rdtsc();
      if (tx.send_to(Bytes{msg}, r.ip_b(), kPort, r.clk.now()) != UdpStatus::ok) fail("udp", "send_to refused");
      r.run_until([&] { return at_a.delivered >= want; }, "an echo");
      return at_a.last_tsc - t0;
    };
    for (int i = 0; i < 1000; ++i) rr();
    const Measured m = time_ops(r.clk, cycles, opt.iterations, 2, rr);
    total.add(m);
    at_b.echo = false;
    r.check(at_a, "udp_rr64");
    r.check(at_b, "udp_rr64");
    CaseResult c;
    c.name = "udp_rr64";
    c.what = "64-byte datagram to an echo socket and back, one in flight";
    c.shown = show::kLatency | show::kOps | show::kPps | show::kAllocs;
    c.ops_unit = "rt/s";
    fill_rates(c.ustack, m, fill_samples(c.ustack, r.clk, cycles), 2);
    c.note = "ustack: the echo socket recv_from()s (copy) and send_to()s (copy) in its callback; the sender's "
             "callback ends the round trip. kernel: sendto, recvfrom, sendto, recvfrom on 127.0.0.1, this thread";
    out.push_back(std::move(c));
  }

  if (want(opt.only, "pps")) {
    const std::uint64_t bursts = std::max<std::uint64_t>(opt.iterations / kBurst, 1);
    cycles.clear();
    cycles_tx.clear();
    cycles_rx.clear();
    cycles_tx.reserve(bursts);
    cycles_rx.reserve(bursts);
    auto burst = [&](bool record) {
      // Each datagram of the burst carries its own number; the sink checks them in order.
      const std::uint32_t first = seq + 1;
      at_b.expect = first;
      const std::uint64_t want = at_b.delivered + kBurst;
      const std::uint64_t t0 = rte_rdtsc();
      const TimeNs now = r.clk.now();
      for (std::uint32_t j = 0; j < kBurst; ++j) {
        put_seq(msg, ++seq);
        if (tx.send_to(Bytes{msg}, r.ip_b(), kPort, now) != UdpStatus::ok) fail("udp", "send_to refused");
      }
      r.a.run_once(r.clk.now());  // the sender's loop: flush
      const std::uint64_t t1 = rte_rdtsc();
      // The receiver's loop, one iteration per rx_burst; the callback
      // advances `expect` as each datagram passes its check.
      while (at_b.delivered < want) {
        const std::uint64_t before = at_b.delivered;
        r.b.run_once(r.clk.now());
        if (at_b.delivered == before) fail("udp", "udp_pps: a burst did not arrive whole");
      }
      const std::uint64_t t2 = rte_rdtsc();
      if (record) {
        cycles_tx.push_back(t1 - t0);
        cycles_rx.push_back(t2 - t1);
        cycles.push_back(t2 - t0);
      }
    };
    at_b.echo = false;
    at_b.advance = true;
    at_b.stamp_at = 0;  // timed per burst from outside
    for (int i = 0; i < 200; ++i) burst(false);
    Phase ph(r.clk);
    for (std::uint64_t i = 0; i < bursts; ++i) burst(true);
    ph.end(bursts, bursts * kBurst);
    total.add(ph.m);
    at_b.advance = false;
    r.check(at_b, "udp_pps");
    CaseResult c;
    c.name = "udp_pps";
    c.what = "bursts of 32 64-byte datagrams, one sender socket, one receiver socket; BOTH stacks on ONE lcore";
    c.shown = show::kPps | show::kAllocs;
    std::vector<std::uint64_t> all = cycles;
    fill_samples(c.ustack, r.clk, all);  // latency per burst of 32, in the JSON
    const double med = median_ns(r.clk, cycles);
    fill_rates(c.ustack, ph.m, med > 0 ? 1e9 / med : 0, kBurst);
    const double tx_ns = median_ns(r.clk, cycles_tx) / kBurst, rx_ns = median_ns(r.clk, cycles_rx) / kBurst;
    c.note = fmt("datagrams per second at the median burst (whole run: ustack %.0f", c.ustack.pps_wall) +
             " dgram/s, kernel @KW dgram/s). Each stack's own share, median: sender " + fmt("%.1f ns/dgram", tx_ns) +
             fmt(" (%.1f M dgram/s on its own lcore), ", tx_ns > 0 ? 1e3 / tx_ns : 0) +
             fmt("receiver %.1f ns/dgram", rx_ns) + fmt(" (%.1f M dgram/s on its own lcore). ", rx_ns > 0 ? 1e3 / rx_ns : 0) +
             "ustack: send_to() copies into an mbuf, the receiver takes each datagram without a copy; kernel: 32 "
             "sendto()s then 32 recvfrom()s, one socket pair, this thread (sendto runs the receiver's input too)";
    out.push_back(std::move(c));
  }

  out.push_back(allocs_case("udp_allocs",
                            "heap allocations on the lcore thread per datagram, over every measured ustack phase above",
                            total.allocs, total.datagrams, "datagrams"));
  return out;
}


std::vector<CaseResult> run_mcast_ustack(const UdpOptions& opt, rte_mempool* pool) {
  auto rig = std::make_unique<Rig>("mcast", pool);
  Rig& r = *rig;
  UdpSocket& tx = r.open(r.ua, Ipv4Addr{}, 0, false);
  const Ipv4Addr group{239, 255, 0, 1};
  std::array<std::uint8_t, kMsg> msg{};
  std::uint32_t seq = 0;
  std::vector<CaseResult> out;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(opt.iterations);
  Totals total;
  std::vector<UdpSocket*> members;
  members.reserve(kMaxFanout);

  for (const std::uint32_t n : opt.fanout) {
    // N receivers sharing the group's port, each joined (IgmpHost: the
    // stack's membership filter passes the group; each join sends reports,
    // which the sending stack drops as an unhandled protocol).
    const auto port = static_cast<std::uint16_t>(6000 + n);
    Sink sink;
    members.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
      UdpSocket& s = r.open(r.ub, group, port, true);
      if (r.igmp_b.join(reinterpret_cast<SocketId>(&s), group, r.clk.now()) != MembershipStatus::ok)
        fail("mcast", "IGMP join refused");
      s.on_readable(&Sink::on_readable, &sink);
      members.push_back(&s);
    }
    auto fan_out = [&]() -> std::uint64_t {
      put_seq(msg, sink.expect = ++seq);
      const std::uint64_t want = sink.stamp_at = sink.delivered + n;
      const std::uint64_t t0 = rte_rdtsc();
      if (tx.send_to(Bytes{msg}, group, port, r.clk.now()) != UdpStatus::ok) fail("mcast", "send_to refused");
      r.run_until([&] { return sink.delivered >= want; }, "a multicast datagram at every member");
      return sink.last_tsc - t0;
    };
    for (int i = 0; i < 1000; ++i) fan_out();
    r.check(sink, "warm-up");
    const Measured m = time_ops(r.clk, cycles, opt.iterations, n, fan_out);
    total.add(m);
    r.check(sink, "mcast fan-out");
    if (sink.delivered != (opt.iterations + 1000) * n) fail("mcast", "a member got a datagram twice");
    for (UdpSocket* s : members) {
      r.igmp_b.close_socket(reinterpret_cast<SocketId>(s), r.clk.now());
      s->close();
    }
    CaseResult c;
    c.name = "mcast_fanout_" + std::to_string(n);
    c.what = fmt("64-byte datagram to a group joined by %.0f socket", n) + (n == 1 ? "" : "s") +
             ", send call until the last member's callback";
    c.shown = show::kLatency | show::kPps | show::kAllocs;
    // pps: copies delivered per second at the median datagram.
    fill_rates(c.ustack, m, fill_samples(c.ustack, r.clk, cycles), n);
    if (n == opt.fanout.front())
      c.note = "pps and ns/pkt count delivered copies (N per datagram). ustack: N sockets with reuse bound to "
               "239.255.0.1:port on the receiving stack, each joined through its IgmpHost; all but the last get "
               "an indirect mbuf (no payload copy); every callback takes its copy without a copy and checks it. "
               "kernel: N sockets, SO_REUSEADDR, bound to the group and port, IP_ADD_MEMBERSHIP on 127.0.0.1 (lo), "
               "sender IP_MULTICAST_IF 127.0.0.1 and IP_MULTICAST_LOOP; sendto() until the Nth recvfrom() returns";
    out.push_back(std::move(c));
  }

  out.push_back(allocs_case("mcast_allocs",
                            "heap allocations on the lcore thread per delivered datagram, over every fan-out above",
                            total.allocs, total.datagrams, "deliveries"));
  return out;
}

// --- kernel ------------------------------------------------------------------

sockaddr_in inet(const char* ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// A nonblocking UDP socket bound to `at` (port 0: any free port).
Fd udp_socket(sockaddr_in& at, bool reuse) {
  Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  if (s.get() < 0) throw KernelError{errno_text("socket")};
  const int one = 1;
  if (reuse && ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    throw KernelError{errno_text("SO_REUSEADDR")};
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) throw KernelError{errno_text("bind")};
  socklen_t len = sizeof at;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&at), &len);
  return s;
}

void send_dgram(int fd, const std::array<std::uint8_t, kMsg>& msg, const sockaddr_in& to) {
  if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) !=
      static_cast<ssize_t>(msg.size()))
    throw KernelError{errno_text("sendto")};
}

// Busy-polls a nonblocking socket for one datagram of kMsg bytes numbered
// `seq`. Over loopback it is normally queued before sendto() returned; after
// a second without one, the datagram is lost and the case cannot go on.
void recv_dgram(int fd, std::uint32_t seq, sockaddr_in* from = nullptr) {
  std::array<std::uint8_t, 2048> buf{};
  sockaddr_in src{};
  socklen_t len = sizeof src;
  for (std::uint32_t spins = 0;; ++spins) {
    const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&src), &len);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) != kMsg || load_be32(Bytes{buf}, 0) != seq)
        throw KernelError{"a datagram arrived wrong (length or sequence)"};
      if (from) *from = src;
      return;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw KernelError{errno_text("recvfrom")};
    if (spins > 100'000) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) throw KernelError{"no datagram within 1 s (lost)"};
      spins = 0;
    }
  }
}

CaseResult* find(std::vector<CaseResult>& cases, std::string_view name) {
  for (auto& c : cases)
    if (c.name == name) return &c;
  return nullptr;
}

void run_udp_kernel(const UdpOptions& opt, std::vector<CaseResult>& cases) {
  const Clock clk;
  sockaddr_in ca = inet("127.0.0.1", 0), sa = inet("127.0.0.1", 0);
  Fd c = udp_socket(ca, false), s = udp_socket(sa, false);
  std::array<std::uint8_t, kMsg> msg{};
  std::uint32_t seq = 0;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(opt.kernel_iterations);
  auto one_way = [&]() -> std::uint64_t {
    put_seq(msg, ++seq);
    const std::uint64_t t0 = rte_rdtsc();
    send_dgram(c.get(), msg, sa);
    recv_dgram(s.get(), seq);
    return rte_rdtsc() - t0;
  };
  for (int i = 0; i < 2000; ++i) one_way();

  if (CaseResult* cr = find(cases, "udp_oneway64")) {
    const Measured m = time_ops(clk, cycles, opt.kernel_iterations, 1, one_way);
    Figures f;
    fill_rates(f, m, fill_samples(f, clk, cycles), 1);
    cr->kernel = f;
  }

  if (CaseResult* cr = find(cases, "udp_rr64")) {
    auto rr = [&]() -> std::uint64_t {
      put_seq(msg, ++seq);
      sockaddr_in from{};
      const std::uint64_t t0 = rte_rdtsc();
      send_dgram(c.get(), msg, sa);
      recv_dgram(s.get(), seq, &from);
      send_dgram(s.get(), msg, from);  // the payload received is the one sent: checked above
      recv_dgram(c.get(), seq);
      return rte_rdtsc() - t0;
    };
    for (int i = 0; i < 1000; ++i) rr();
    const Measured m = time_ops(clk, cycles, opt.kernel_iterations, 2, rr);
    Figures f;
    fill_rates(f, m, fill_samples(f, clk, cycles), 2);
    cr->kernel = f;
  }

  if (CaseResult* cr = find(cases, "udp_pps")) {
    const std::uint64_t bursts = std::max<std::uint64_t>(opt.kernel_iterations / kBurst, 1);
    auto burst = [&]() -> std::uint64_t {
      const std::uint32_t first = seq + 1;
      const std::uint64_t t0 = rte_rdtsc();
      for (std::uint32_t j = 0; j < kBurst; ++j) {
        put_seq(msg, ++seq);
        send_dgram(c.get(), msg, sa);
      }
      for (std::uint32_t j = 0; j < kBurst; ++j) recv_dgram(s.get(), first + j);
      return rte_rdtsc() - t0;
    };
    for (int i = 0; i < 200; ++i) burst();
    cycles.reserve(bursts);
    const Measured m = time_ops(clk, cycles, bursts, kBurst, burst);
    Figures f;
    std::vector<std::uint64_t> all = cycles;
    fill_samples(f, clk, all);
    const double med = median_ns(clk, cycles);
    fill_rates(f, m, med > 0 ? 1e9 / med : 0, kBurst);
    cr->kernel = f;
    if (const auto at = cr->note.find("@KW"); at != std::string::npos) cr->note.replace(at, 3, fmt("%.0f", f.pps_wall));
  }
}

// The kernel's multicast over loopback: receivers joined on 127.0.0.1 (lo),
// the sender's outgoing interface set to lo with loopback on. lo is not
// marked MULTICAST, but IP_MULTICAST_IF to it delivers one copy to every
// joined socket (checked below: every member receives each number once).
void run_mcast_kernel(const UdpOptions& opt, std::vector<CaseResult>& cases) {
  const Clock clk;
  // A group of our own (239/8: administratively scoped), so that two runs
  // at once on this machine do not hear each other.
  const unsigned pid = static_cast<unsigned>(::getpid());
  char gname[32];
  std::snprintf(gname, sizeof gname, "239.255.%u.%u", (pid >> 8) & 0xff, pid & 0xff);
  sockaddr_in txa = inet("127.0.0.1", 0);
  Fd tx = udp_socket(txa, false);
  const in_addr lo = inet("127.0.0.1", 0).sin_addr;
  if (::setsockopt(tx.get(), IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo) != 0)
    throw KernelError{errno_text("IP_MULTICAST_IF")};
  const unsigned char loop = 1;
  if (::setsockopt(tx.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0)
    throw KernelError{errno_text("IP_MULTICAST_LOOP")};
  std::array<std::uint8_t, kMsg> msg{};
  std::uint32_t seq = 0;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(opt.kernel_iterations);

  for (const std::uint32_t n : opt.fanout) {
    CaseResult* cr = find(cases, "mcast_fanout_" + std::to_string(n));
    if (!cr) continue;
    try {
      std::vector<Fd> members;
      sockaddr_in ga = inet(gname, 0);
      ip_mreq mreq{};
      mreq.imr_multiaddr = ga.sin_addr;
      mreq.imr_interface = lo;
      for (std::uint32_t i = 0; i < n; ++i) {
        members.push_back(udp_socket(ga, true));  // the first picks the port, the rest share it
        if (::setsockopt(members.back().get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
          throw KernelError{errno_text("IP_ADD_MEMBERSHIP")};
      }
      auto fan_out = [&]() -> std::uint64_t {
        put_seq(msg, ++seq);
        const std::uint64_t t0 = rte_rdtsc();
        send_dgram(tx.get(), msg, ga);
        for (const Fd& m : members) recv_dgram(m.get(), seq);
        return rte_rdtsc() - t0;
      };
      for (int i = 0; i < 200; ++i) fan_out();
      const Measured m = time_ops(clk, cycles, opt.kernel_iterations, n, fan_out);
      // No member may hold a second copy of anything.
      for (const Fd& member : members) {
        std::uint8_t b = 0;
        if (::recv(member.get(), &b, 1, 0) >= 0) throw KernelError{"a member received a datagram twice"};
      }
      Figures f;
      fill_rates(f, m, fill_samples(f, clk, cycles), n);
      cr->kernel = f;
    } catch (const KernelError& e) {
      cr->kernel_note = std::string("kernel multicast over lo (group ") + gname + "): " + e.what;
    }
  }
}

std::string goal_text(const std::string& goal, bool met) { return goal + (met ? ": met" : ": MISSED"); }

void finish(std::vector<CaseResult>& cases) {
  for (auto& c : cases) {
    if (const auto at = c.note.find("@KW"); at != std::string::npos) c.note.replace(at, 3, "n/a");
    if (c.name == "udp_oneway64") {
      const double p99_us = c.ustack.p99_ns / 1000.0;
      c.goal = goal_text(fmt("one-way p99 < 1 us on the in-memory pair; this run %.2f us", p99_us), p99_us < 1.0);
    } else if (c.name != "udp_allocs" && c.name != "mcast_allocs" && c.ustack.allocs_per_pkt > 0) {
      c.goal = "allocations per datagram must be 0: MISSED";
    }
  }
}

}  // namespace

std::vector<CaseResult> bench_udp(const UdpOptions& opt, rte_mempool* pool) {
  auto cases = run_udp_ustack(opt, pool);
  try {
    run_udp_kernel(opt, cases);
  } catch (const KernelError& e) {
    for (auto& c : cases)
      if (!c.kernel && c.kernel_note.empty()) c.kernel_note = "kernel UDP over loopback failed: " + e.what;
  }
  finish(cases);
  return cases;
}

std::vector<CaseResult> bench_mcast(const UdpOptions& opt, rte_mempool* pool) {
  auto cases = run_mcast_ustack(opt, pool);
  try {
    run_mcast_kernel(opt, cases);
  } catch (const KernelError& e) {
    for (auto& c : cases)
      if (!c.kernel && c.kernel_note.empty()) c.kernel_note = "kernel multicast over loopback failed: " + e.what;
  }
  finish(cases);
  return cases;
}

}  // namespace ustack::bench
