// ustack-bench shim, UDP half: a 64-byte datagram one way through the
// thread shim, in each direction, beside the same datagram sent on the
// lcore (callbacks, no crossing) and between two threads through the
// kernel's sockets over loopback, in the same run.
//
// Set-up as the TCP half (shim.cpp): two stacks with a UdpLayer each on the
// in-memory pair; a std::thread is the lcore (pinned to the EAL lcore's CPU,
// both stacks' loops, the shim as stack a's hook), this thread, pinned to
// the other CPUs, the application, with one SOCK_DGRAM handle on stack a.
// Stack b has an on-lcore socket. One datagram is in flight at a time; each
// carries a sequence number its receiver checks, so a lost, duplicated or
// stale datagram stops the bench instead of flattering it.
//  - shim_udp_tx64: the thread sendto()s to b's socket; from just before
//    sendto() until b's readable callback runs on the lcore.
//  - shim_udp_rx64: the lcore send_to()s from b's socket to the handle, with
//    the TSC read just before send_to() in the payload; until the thread's
//    busy-polled non-blocking recvfrom() returns it. The lcore sends the
//    next only once the thread has taken this one.
//  - shim_udp_rx64_busy_poll: the same with SO_BUSY_POLL on the handle.
//  - onlcore_udp_oneway64: a -> b with this thread stepping both stacks
//    (ustack-bench udp's udp_oneway64), and b -> a for the rx direction;
//    taken before and after the shim's runs, the faster kept (as shim.cpp's
//    baseline). The shim's cost per crossing is shim p50 - on-lcore p50 of
//    the same direction: the on-lcore datagram takes the same path through
//    both stacks in the same loop order (a's iteration, then b's), so the
//    difference is the rings, the thread's calls and the lcore's wait.
// Kernel: sendto() on one thread until a non-blocking recvfrom() busy-polled
// on another returns the datagram, over 127.0.0.1, the sender on the CPU
// where the shim's sender was (tx: the application's CPUs; rx: the lcore's).
//
// Start and end are TSC reads on different CPUs. The TSC is invariant and
// synchronised across CPUs here (constant_tsc, nonstop_tsc); a datagram that
// arrives before it was sent would mean it is not, and stops the bench.
// Allocations: the application thread's and the lcore thread's, per datagram
// (must be 0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "apps/bench/cases.hpp"
#include "apps/bench/clock.hpp"
#include "apps/bench/kernel_socket.hpp"
#include "apps/bench/pair_stacks.hpp"
#include "apps/bench/pin.hpp"
#include "core/alloc_counter.hpp"
#include "core/bytes.hpp"
#include "drivers/mem_pair.hpp"
#include "shim/hub.hpp"
#include "shim/lcore.hpp"
#include "src/runtime/engine.hpp"
#include "tcp/tcp_layer.hpp"
#include "udp/udp_layer.hpp"
#include "ustack/shim.hpp"

namespace ustack::bench {

namespace {

constexpr std::size_t kMsg = 64;
constexpr std::size_t kStampAt = 8;      // payload offset of the sender's TSC (after the sequence number)
constexpr std::uint16_t kPortShim = 5201;  // the shim handle, stack a
constexpr std::uint16_t kPortA = 5202;     // stack a's on-lcore socket
constexpr std::uint16_t kPortB = 5203;     // stack b's on-lcore socket
constexpr int kWarmUp = 1000;
constexpr int kBusyPollUs = 50;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ustack-bench shim (udp): %s\n", what.c_str());
  std::exit(1);
}

// The span from a TSC read on one CPU to one on another.
std::uint64_t span(std::uint64_t from, std::uint64_t to) {
  if (to < from) die("a datagram arrived before it was sent: the two CPUs' TSCs disagree, no one-way figure");
  return to - from;
}

Figures figures(const Clock& clk, const std::vector<std::uint64_t>& cycles, std::uint64_t allocs) {
  Figures f;
  std::vector<std::uint64_t> ns(cycles.size());
  for (std::size_t i = 0; i < cycles.size(); ++i) ns[i] = static_cast<std::uint64_t>(clk.ns(cycles[i]));
  fill_latency(f, ns);
  f.allocs_per_pkt = cycles.empty() ? 0 : static_cast<double>(allocs) / static_cast<double>(cycles.size());
  return f;
}

void put_msg(std::array<std::uint8_t, kMsg>& msg, std::uint32_t seq, std::uint64_t tsc) {
  store_be32(MutBytes{msg}, 0, seq);
  store_be64(MutBytes{msg}, kStampAt, tsc);
}

// An on-lcore receiving socket's callback: reads the TSC on entry, takes
// the datagram without a copy, and publishes its number and the TSC for
// the sender, which may be another thread (the shim's application).
struct Catch {
  std::uint32_t last = 0;  // the receiver's own: the previous datagram's number
  std::atomic<std::uint64_t> tsc{0};
  std::atomic<std::uint32_t> seen{0};
  std::atomic<std::uint32_t> wrong{0};  // out of sequence or of the wrong length

  static void on_readable(UdpSocket& s, TimeNs, void* ctx) {
    const std::uint64_t t = rte_rdtsc();
    auto* self = static_cast<Catch*>(ctx);
    const auto d = s.recv();
    if (!d) return;
    const std::uint32_t seq = d->pkt.len() == kMsg ? load_be32(Bytes{d->pkt.data()}, 0) : 0;
    if (seq == 0 || seq != self->last + 1) self->wrong.fetch_add(1, std::memory_order_relaxed);
    self->last = seq;
    self->tsc.store(t, std::memory_order_relaxed);
    self->seen.store(seq, std::memory_order_release);
  }
  // Has datagram `seq` arrived (or a wrong one)?
  bool has(std::uint32_t seq) const {
    return seen.load(std::memory_order_acquire) == seq || wrong.load(std::memory_order_relaxed) != 0;
  }
};

struct World {
  Clock clk;
  MemPair wire{4096, pair_caps(1), pair_caps(2)};
  Engine a, b;
  tcp::TcpLayer ta;  // the shim's lcore half is built on stack a's TCP; unused here
  UdpLayer ua, ub;
  UdpSocket* on_a;  // receives b -> a on the lcore, sends a -> b
  UdpSocket* on_b;  // receives a -> b (from on_a or the shim), sends b -> a (to on_a or the shim)
  Catch at_a, at_b;
  std::uint32_t seq_a = 0, seq_b = 0;  // the last number sent to on_a, to on_b

  explicit World(rte_mempool* pool)
      : a(wire.a(), pair_config(1), pool, clk.now()),
        b(wire.b(), pair_config(2), pool, clk.now()),
        ta(a.stack(), {}),
        ua(a.stack(), {}),
        ub(b.stack(), {}),
        on_a(open(ua, kPortA, at_a)),
        on_b(open(ub, kPortB, at_b)) {}
  static UdpSocket* open(UdpLayer& l, std::uint16_t port, Catch& c) {
    UdpSocket* s = l.open();
    if (!s || s->bind(Ipv4Addr{}, port) != UdpStatus::ok) die("cannot open an on-lcore UDP socket");
    s->on_readable(&Catch::on_readable, &c);
    return s;
  }
  void step() {
    a.run_once(clk.now());
    b.run_once(clk.now());
  }
  // Nothing is lost on this wire: 2 s without the datagram is a bug.
  void run_until(const Catch& c, std::uint32_t seq) {
    const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
    for (std::uint32_t n = 1; !c.has(seq); ++n) {
      step();
      if ((n & 63) == 0 && rte_rdtsc() > end) die("on-lcore: no datagram for 2 s");
    }
    if (c.wrong.load(std::memory_order_relaxed))
      die("on-lcore: a datagram arrived out of sequence or of the wrong length");
  }
};

constexpr Ipv4Addr kIpA{10, 0, 0, 1}, kIpB{10, 0, 0, 2};

// --- on-lcore -------------------------------------------------------------------

struct OnLcore {
  Figures ab, ba;  // a -> b, b -> a
};

OnLcore run_onlcore(World& w, std::uint64_t iterations) {
  std::array<std::uint8_t, kMsg> msg{};
  auto one = [&](UdpSocket* from, Catch& to, std::uint32_t& seq, Ipv4Addr ip, std::uint16_t port) {
    put_msg(msg, ++seq, 0);
    const std::uint64_t t0 = rte_rdtsc();
    if (from->send_to(Bytes{msg}, ip, port, w.clk.now()) != UdpStatus::ok) die("on-lcore send_to refused");
    w.run_until(to, seq);
    return to.tsc.load(std::memory_order_relaxed) - t0;
  };
  auto ab = [&] { return one(w.on_a, w.at_b, w.seq_b, kIpB, kPortB); };
  auto ba = [&] { return one(w.on_b, w.at_a, w.seq_a, kIpA, kPortA); };
  for (int i = 0; i < kWarmUp; ++i) {  // ARP both ways, caches, branch predictors
    ab();
    ba();
  }
  OnLcore r;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(iterations);
  for (bool forward : {true, false}) {
    cycles.clear();
    const std::uint64_t allocs0 = thread_alloc_count();
    for (std::uint64_t i = 0; i < iterations; ++i) cycles.push_back(forward ? ab() : ba());
    (forward ? r.ab : r.ba) = figures(w.clk, cycles, thread_alloc_count() - allocs0);
  }
  return r;
}

// --- through the shim -------------------------------------------------------------

struct ShimResult {
  Figures tx, rx, rx_busy_poll;
  double rx_wakes = 0, rx_busy_poll_wakes = 0;  // eventfd writes per datagram
  double loop_ns = 0;                           // the lcore's iteration (both stacks), during rx
};

ShimResult run_shim(World& w, std::uint64_t iterations, unsigned lcore_cpu) {
  shim::LcoreConfig cfg;
  cfg.max_threads = 1;
  shim::ShimLcore la(w.ta, cfg, &w.ua);
  w.a.set_hook(&la);
  shim::Hub hub({&la}, {static_cast<int>(lcore_cpu)});
  std::atomic<bool> stop{false};
  // The rx direction's hand-off: the thread asks for datagram `rx_want`
  // once it has the one before; the lcore sends it at its next iteration.
  std::atomic<std::uint32_t> rx_want{0};
  std::atomic<bool> rx_refused{false};
  std::atomic<std::uint64_t> lcore_allocs{0}, lcore_iterations{0}, lcore_wakes{0};
  std::thread lcore([&] {
    pin(lcore_cpu);
    // An EAL thread, as the runtime's lcores are: the mempool's per-lcore cache.
    const bool eal = rte_thread_register() == 0;
    std::array<std::uint8_t, kMsg> msg{};
    std::uint32_t sent = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (const std::uint32_t want = rx_want.load(std::memory_order_acquire); want != sent) {
        sent = want;
        put_msg(msg, want, rte_rdtsc());
        if (w.on_b->send_to(Bytes{msg}, kIpA, kPortShim, w.clk.now()) != UdpStatus::ok) rx_refused.store(true);
      }
      w.step();
      lcore_allocs.store(thread_alloc_count(), std::memory_order_relaxed);
      lcore_wakes.store(la.counters().eventfd_writes, std::memory_order_relaxed);
      lcore_iterations.store(lcore_iterations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    if (eal) rte_thread_unregister();
  });
  auto fail = [&](const std::string& what) {
    stop.store(true);
    lcore.join();
    die("shim: " + what);
  };

  std::string err;
  auto t = shim::Thread::attach(hub, err);
  if (!t) fail("attach: " + err);
  const int h = t->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (h < 0) fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(kPortShim);
  if (t->bind(h, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0)
    fail(std::string("bind: ") + std::strerror(errno));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kPortB);
  to.sin_addr.s_addr = htonl(kIpB.v);

  std::array<std::uint8_t, kMsg> msg{};
  auto send_one = [&]() -> std::uint64_t {
    put_msg(msg, ++w.seq_b, 0);
    const std::uint64_t t0 = rte_rdtsc();
    if (t->sendto(h, msg.data(), kMsg, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) !=
        static_cast<ssize_t>(kMsg))
      fail(std::string("sendto: ") + std::strerror(errno));
    const std::uint64_t end = t0 + 2 * rte_get_tsc_hz();
    for (std::uint32_t n = 1; !w.at_b.has(w.seq_b); ++n)
      if ((n & 255) == 0 && rte_rdtsc() > end) fail("tx: no datagram at the receiver for 2 s");
    if (w.at_b.wrong.load(std::memory_order_relaxed))
      fail("tx: a datagram arrived out of sequence or of the wrong length");
    return span(t0, w.at_b.tsc.load(std::memory_order_relaxed));
  };
  std::uint32_t rx_seq = 0;
  std::array<std::uint8_t, 2048> in{};
  auto take_one = [&]() -> std::uint64_t {
    rx_want.store(++rx_seq, std::memory_order_release);
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
    auto* fp = reinterpret_cast<sockaddr*>(&from);
    ssize_t n;
    for (std::uint32_t spins = 1; (n = t->recvfrom(h, in.data(), in.size(), 0, fp, &fl)) < 0; ++spins) {
      if (errno != EAGAIN) fail(std::string("recvfrom: ") + std::strerror(errno));
      if ((spins & 255) == 0 && rte_rdtsc() > end)
        fail(rx_refused.load() ? "rx: the lcore's send_to was refused" : "rx: no datagram for 2 s");
    }
    const std::uint64_t t1 = rte_rdtsc();
    if (n != static_cast<ssize_t>(kMsg) || load_be32(Bytes{in}, 0) != rx_seq || from.sin_port != htons(kPortB) ||
        from.sin_addr.s_addr != htonl(kIpB.v))
      fail("rx: a datagram arrived out of sequence, of the wrong length or from the wrong sender");
    return span(load_be64(Bytes{in}, kStampAt), t1);
  };

  ShimResult r;
  enum class Mode { tx, rx, rx_busy_poll };
  std::vector<std::uint64_t> cycles;
  cycles.reserve(iterations);
  for (Mode mode : {Mode::tx, Mode::rx, Mode::rx_busy_poll}) {
    const int us = mode == Mode::rx_busy_poll ? kBusyPollUs : 0;
    if (t->setsockopt(h, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof us) != 0) fail("SO_BUSY_POLL refused");
    auto one = [&] { return mode == Mode::tx ? send_one() : take_one(); };
    for (int i = 0; i < kWarmUp; ++i) one();
    cycles.clear();
    const std::uint64_t a0 = thread_alloc_count(), l0 = lcore_allocs.load(), e0 = lcore_wakes.load();
    const std::uint64_t i0 = lcore_iterations.load(), c0 = rte_rdtsc();
    for (std::uint64_t i = 0; i < iterations; ++i) cycles.push_back(one());
    const std::uint64_t allocs = (thread_alloc_count() - a0) + (lcore_allocs.load() - l0);
    const double wakes = static_cast<double>(lcore_wakes.load() - e0) / static_cast<double>(iterations);
    const std::uint64_t loops = lcore_iterations.load() - i0;
    const Figures f = figures(w.clk, cycles, allocs);
    if (mode == Mode::tx) {
      r.tx = f;
    } else if (mode == Mode::rx) {
      r.rx = f;
      r.rx_wakes = wakes;
      r.loop_ns = loops ? w.clk.ns(rte_rdtsc() - c0) / static_cast<double>(loops) : 0;
    } else {
      r.rx_busy_poll = f;
      r.rx_busy_poll_wakes = wakes;
    }
  }
  t->close(h);
  t.reset();
  // Let the lcore see the close through before it stops.
  const std::uint64_t end = rte_rdtsc() + rte_get_tsc_hz() / 10;
  while (rte_rdtsc() < end) std::this_thread::yield();
  stop.store(true);
  lcore.join();
  w.a.set_hook(nullptr);
  if (w.at_b.wrong.load()) die("shim: tx: a datagram arrived out of sequence or twice at the end of the run");
  return r;
}

// --- the kernel ---------------------------------------------------------------------

// sendto() on one thread, recvfrom() busy-polled (non-blocking) on another,
// over 127.0.0.1; the sender sends the next only once the receiver has the
// one before. `sender_on_lcore_cpu`: the sender on a thread pinned to the
// lcore's CPU and the receiver here (the rx direction), else the reverse.
Figures kernel_oneway(const Clock& clk, std::uint64_t iterations, unsigned lcore_cpu, bool sender_on_lcore_cpu) {
  sockaddr_in ra{};
  ra.sin_family = AF_INET;
  ra.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Fd rx(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)), tx(::socket(AF_INET, SOCK_DGRAM, 0));
  socklen_t len = sizeof ra;
  if (!rx || !tx) throw KernelError{errno_text("socket")};
  if (::bind(rx.get(), reinterpret_cast<const sockaddr*>(&ra), sizeof ra) != 0) throw KernelError{errno_text("bind")};
  if (::getsockname(rx.get(), reinterpret_cast<sockaddr*>(&ra), &len) != 0)
    throw KernelError{errno_text("getsockname")};

  const std::uint64_t total = iterations + kWarmUp;
  std::atomic<std::uint64_t> taken{0};
  std::atomic<bool> abort{false};
  std::vector<std::uint64_t> cycles;
  cycles.reserve(iterations);
  std::string send_err, recv_err;
  auto sender = [&] {
    std::array<std::uint8_t, kMsg> msg{};
    for (std::uint64_t seq = 1; seq <= total; ++seq) {
      const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
      for (std::uint32_t n = 1; taken.load(std::memory_order_acquire) != seq - 1; ++n) {
        if (abort.load(std::memory_order_relaxed)) return;
        if ((n & 255) == 0 && rte_rdtsc() > end) {
          send_err = "the receiver took nothing for 2 s";
          abort.store(true);
          return;
        }
      }
      put_msg(msg, static_cast<std::uint32_t>(seq), rte_rdtsc());
      if (::sendto(tx.get(), msg.data(), kMsg, 0, reinterpret_cast<const sockaddr*>(&ra), sizeof ra) !=
          static_cast<ssize_t>(kMsg)) {
        send_err = errno_text("sendto");
        abort.store(true);
        return;
      }
    }
  };
  auto receiver = [&] {
    std::array<std::uint8_t, 2048> buf{};
    for (std::uint64_t seq = 1; seq <= total; ++seq) {
      const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
      ssize_t n;
      for (std::uint32_t spins = 1; (n = ::recvfrom(rx.get(), buf.data(), buf.size(), 0, nullptr, nullptr)) < 0;
           ++spins) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          recv_err = errno_text("recvfrom");
          abort.store(true);
          return;
        }
        if (abort.load(std::memory_order_relaxed)) return;
        if ((spins & 255) == 0 && rte_rdtsc() > end) {
          recv_err = "no datagram for 2 s (lost)";
          abort.store(true);
          return;
        }
      }
      const std::uint64_t t1 = rte_rdtsc();
      if (n != static_cast<ssize_t>(kMsg) || load_be32(Bytes{buf}, 0) != static_cast<std::uint32_t>(seq)) {
        recv_err = "a datagram arrived out of sequence or of the wrong length";
        abort.store(true);
        return;
      }
      if (seq > static_cast<std::uint64_t>(kWarmUp)) cycles.push_back(span(load_be64(Bytes{buf}, kStampAt), t1));
      taken.store(seq, std::memory_order_release);
    }
  };
  std::thread other([&] {
    if (!pin(lcore_cpu)) {
      (sender_on_lcore_cpu ? send_err : recv_err) = "cannot pin to the lcore's CPU";
      abort.store(true);
      return;
    }
    sender_on_lcore_cpu ? sender() : receiver();
  });
  sender_on_lcore_cpu ? receiver() : sender();
  other.join();
  if (!send_err.empty() || !recv_err.empty()) throw KernelError{!recv_err.empty() ? recv_err : send_err};
  return figures(clk, cycles, 0);
}

}  // namespace

std::vector<CaseResult> bench_shim_udp(const ShimOptions& opt, rte_mempool* pool, unsigned lcore_cpu) {
  // This thread is the application, off the lcore's CPU, for the whole of
  // this half (and given back its affinity at the end).
  cpu_set_t saved;
  CPU_ZERO(&saved);
  const bool restore = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
  if (!pin_except(lcore_cpu)) die("cannot pin the application thread off the lcore's CPU");
  auto w = std::make_unique<World>(pool);
  const OnLcore before = run_onlcore(*w, opt.iterations);
  const ShimResult shim = run_shim(*w, opt.iterations, lcore_cpu);
  const OnLcore after = run_onlcore(*w, opt.iterations);
  // Each direction's faster baseline: a slow one would flatter the crossing.
  const Figures on_ab = after.ab.p50_ns < before.ab.p50_ns ? after.ab : before.ab;
  const Figures on_ba = after.ba.p50_ns < before.ba.p50_ns ? after.ba : before.ba;
  std::optional<Figures> k_tx, k_rx;
  std::string kernel_error;
  try {
    k_tx = kernel_oneway(w->clk, opt.kernel_iterations, lcore_cpu, false);
    k_rx = kernel_oneway(w->clk, opt.kernel_iterations, lcore_cpu, true);
  } catch (const KernelError& e) {
    kernel_error = "kernel UDP over loopback failed: " + e.what;
  }
  if (restore) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);

  const unsigned shown = show::kLatency | show::kAllocs;
  auto make = [&](const char* name, std::string what, const Figures& u, const std::optional<Figures>& k) {
    CaseResult c;
    c.name = name;
    c.what = std::move(what);
    c.ustack = u;
    c.shown = shown;
    if (k) c.kernel = *k;
    else c.kernel_note = kernel_error;
    if (u.allocs_per_pkt > 0) c.goal = "allocations per datagram must be 0: MISSED";
    return c;
  };
  std::vector<CaseResult> out;
  CaseResult tx = make("shim_udp_tx64",
                       "64-byte datagram from a thread through the shim: sendto() until the receiver's callback on "
                       "the lcore [kernel: sendto() on one thread until a busy-polled recvfrom() on the other CPU "
                       "returns it, 127.0.0.1]",
                       shim.tx, k_tx);
  tx.note = fmt("thread crossing (thread -> lcore): %.0f ns", shim.tx.p50_ns - on_ab.p50_ns) +
            fmt(" (shim p50 - on-lcore a->b p50 %.0f ns); allocs/pkt: the application thread's and the lcore "
                "thread's, per datagram",
                on_ab.p50_ns);
  CaseResult rx = make("shim_udp_rx64",
                       "64-byte datagram from an on-lcore socket to a thread through the shim: send_to() on the lcore "
                       "until the thread's busy-polled recvfrom() returns it [kernel: as shim_udp_tx64, the sender on "
                       "the lcore's CPU]",
                       shim.rx, k_rx);
  rx.note = fmt("thread crossing (lcore -> thread): %.0f ns", shim.rx.p50_ns - on_ba.p50_ns) +
            fmt(" (shim p50 - on-lcore b->a p50 %.0f ns)", on_ba.p50_ns) +
            fmt(", with %.2f eventfd writes per datagram on the lcore (and their drains on the thread)",
                shim.rx_wakes) +
            fmt("; the lcore's loop: %.0f ns per iteration (both stacks)", shim.loop_ns);
  CaseResult bp = make("shim_udp_rx64_busy_poll",
                       "the same with SO_BUSY_POLL 50 us on the handle: the lcore's eventfd wake-up waits for the "
                       "polling thread [kernel: as shim_udp_rx64]",
                       shim.rx_busy_poll, k_rx);
  bp.note = fmt("thread crossing (lcore -> thread): %.0f ns", shim.rx_busy_poll.p50_ns - on_ba.p50_ns) +
            fmt(" (shim p50 - on-lcore b->a p50 %.0f ns)", on_ba.p50_ns) +
            fmt(", %.2f eventfd writes per datagram", shim.rx_busy_poll_wakes);
  // Its allocations: both directions', per datagram.
  Figures on_fig = on_ab;
  on_fig.allocs_per_pkt = (on_ab.allocs_per_pkt + on_ba.allocs_per_pkt) / 2;
  CaseResult on = make("onlcore_udp_oneway64",
                       "the same datagram a -> b in callbacks on the lcore, one thread stepping both stacks: send_to() "
                       "until the receiver's callback (no crossing) [kernel: as shim_udp_tx64]",
                       on_fig, k_tx);
  on.note = fmt("b -> a (the rx cases' baseline): p50 %.0f ns", on_ba.p50_ns) +
            fmt(", p99 %.0f ns; each direction the faster of a run before and one after the shim's", on_ba.p99_ns);
  out.push_back(std::move(tx));
  out.push_back(std::move(rx));
  out.push_back(std::move(bp));
  out.push_back(std::move(on));
  return out;
}

}  // namespace ustack::bench
