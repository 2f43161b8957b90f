// ustack-bench shim: a 64-byte TCP round trip from an ordinary thread
// through the thread shim, beside the same round trip made on the lcore
// (callbacks, no crossing) and through the kernel's sockets over loopback
// between two threads, in the same run.
//
// Set-up: two stacks on the in-memory pair; the server is an on-lcore echo
// on stack b. A std::thread is the lcore (pinned to the EAL lcore's CPU,
// both stacks' loops with the shim as stack a's hook) and this thread,
// pinned to another CPU, is the application: send() 64 bytes, then wait for
// the 64 back, either spinning on recv() (busy poll) or in epoll_wait on the
// handle's eventfd. The on-lcore figure is the same round trip made by the
// lcore thread itself in callbacks on a second connection (ustack-bench
// tcp's rr64), in blocks between the shim's blocks. The kernel's figures are
// the same two loops over loopback, with the echo server on a second thread
// (blocking recv/send).
//
// Crossing cost: each shim round trip crosses twice (the send goes to the
// lcore, the reply comes back), so (shim p50 - on-lcore p50) / 2 is what one
// crossing adds, with the thread busy polling; taken per pair of adjacent
// blocks and the median kept (run_shim). Before each block the two threads
// also measure the machine's floor, a bare ring hop (HopRings), so the
// crossing can be read against it. Allocations: both the application
// thread's and the lcore thread's, per round trip (must be 0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
#include <vector>

#include "apps/bench/cases.hpp"
#include "apps/bench/clock.hpp"
#include "apps/bench/pair_stacks.hpp"
#include "apps/bench/pin.hpp"
#include "core/alloc_counter.hpp"
#include "drivers/mem_pair.hpp"
#include "shim/hub.hpp"
#include "shim/lcore.hpp"
#include "shim/spsc_ring.hpp"
#include "src/runtime/engine.hpp"
#include "tcp/tcp_layer.hpp"
#include "ustack/shim.hpp"

namespace ustack::bench {

namespace {

constexpr std::size_t kMsg = 64;
constexpr std::uint16_t kPort = 5101;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ustack-bench shim: %s\n", what.c_str());
  std::exit(1);
}

// On-lcore echo (stack b): what it reads goes straight back.
struct Echo final : tcp::TcpHandler {
  std::array<std::uint8_t, 4096> buf{};
  // When the request reached the server: splits a round trip into its
  // request and reply halves (read by the application thread after the
  // reply came back, so the store is ordered before it by the data's way).
  std::atomic<std::uint64_t> rx_tsc{0};
  void on_accept(tcp::TcpLayer&, TcpListenerId, TcpConnId, TimeNs) override {}
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    rx_tsc.store(rte_rdtsc(), std::memory_order_relaxed);
    for (std::size_t n; (n = t.read(c, buf, now)) != 0;) t.send(c, Bytes{buf}.first(n), now);
    if (t.peer_closed(c)) t.close(c, now);
  }
};

// The on-lcore client of the baseline.
struct RrClient final : tcp::TcpHandler {
  bool connected = false;
  std::uint64_t rx = 0, rx_tsc = 0;
  std::array<std::uint8_t, 4096> buf{};
  void on_connected(tcp::TcpLayer&, TcpConnId, TimeNs) override { connected = true; }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    for (std::size_t n; (n = t.read(c, buf, now)) != 0;) rx += n;
    rx_tsc = rte_rdtsc();
  }
};

struct World {
  Clock clk;
  MemPair wire{4096, pair_caps(1), pair_caps(2)};
  Engine a, b;
  tcp::TcpLayer ta, tb;
  Echo echo;
  explicit World(rte_mempool* pool)
      : a(wire.a(), pair_config(1), pool, clk.now()), b(wire.b(), pair_config(2), pool, clk.now()), ta(a.stack(), {}),
        tb(b.stack(), {}) {
    if (!tb.listen(kPort, 64, &echo)) die("listen failed");
  }
  // One clock read per iteration of both stacks, as the runtime's loop
  // reads it once per iteration.
  void step() {
    const TimeNs now = clk.now();
    a.run_once(now);
    b.run_once(now);
  }
  template <class Done>
  void run_until(Done&& done, const char* what) {
    const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
    while (!done()) {
      step();
      if (rte_rdtsc() > end) die(std::string("nothing for 2 s while waiting for ") + what);
    }
  }
};

Figures figures(const Clock& clk, const std::vector<std::uint64_t>& cycles, std::uint64_t allocs) {
  Figures f;
  std::vector<std::uint64_t> ns(cycles.size());
  for (std::size_t i = 0; i < cycles.size(); ++i) ns[i] = static_cast<std::uint64_t>(clk.ns(cycles[i]));
  fill_latency(f, ns);
  f.ops_per_sec = f.p50_ns > 0 ? 1e9 / f.p50_ns : 0;
  // Per round trip (two data segments, and their ACKs piggybacked or not).
  f.allocs_per_pkt = cycles.empty() ? 0 : static_cast<double>(allocs) / static_cast<double>(2 * cycles.size());
  return f;
}

// --- on-lcore ---------------------------------------------------------------

// The baseline's client: one connection on stack a, its round trips made by
// whichever thread steps the stacks (this one to set it up, the lcore thread
// during the shim's runs, between the shim's blocks).
struct OnlcoreRr {
  World& w;
  RrClient client;
  TcpConnId c;
  std::array<std::uint8_t, kMsg> msg{};
  explicit OnlcoreRr(World& world) : w(world) {
    auto id = w.ta.connect(Ipv4Addr{10, 0, 0, 2}, kPort, &client, nullptr, w.clk.now());
    if (!id) die("connect failed");
    c = *id;
    w.ta.set_nagle(c, false, w.clk.now());
    w.run_until([&] { return client.connected; }, "the handshake");
    std::uint64_t request;
    for (int i = 0; i < 1000; ++i) rr(request);
  }
  // One round trip: cycles from the send to the reply's callback.
  // One round trip: cycles from the send to the reply's callback, and of
  // those, to the server's callback (`request`).
  std::uint64_t rr(std::uint64_t& request) {
    const std::uint64_t want = client.rx + kMsg;
    const std::uint64_t t0 = rte_rdtsc();
    w.ta.send(c, Bytes{msg}, w.clk.now());
    w.run_until([&] { return client.rx >= want; }, "a reply");
    request = w.echo.rx_tsc.load(std::memory_order_relaxed) - t0;
    return client.rx_tsc - t0;
  }
  void close() {
    w.ta.abort(c, w.clk.now());
    w.run_until([&] { return w.tb.connection_count() == 0; }, "the server to see the RST");
  }
};

// --- the floor: a ring hop -----------------------------------------------------

// A bare ping-pong between the application thread and the lcore thread over
// two SPSC rings of shim commands, both spinning and doing nothing else: the
// least one crossing can cost on this machine (the cache-line transfers
// between the two CPUs), whatever the shim does. The lcore thread echoes
// kHops when asked, between its loop's iterations, so the hop is taken
// before each block of round trips, in the same moments: this host's cost
// of moving a line between its CPUs swings 70-400 ns from one second to the
// next, and the shim's crossing with it.
constexpr int kHops = 300;

struct HopRings {
  SpscRing<shim::Command> req{64}, resp{64};
  std::atomic<std::uint64_t> asked{0}, done{0};
  std::uint64_t served = 0;  // the lcore thread's
  // On the lcore thread, each iteration: kHops echoes once asked.
  void serve() {
    if (asked.load(std::memory_order_acquire) == served) return;
    shim::Command c;
    for (int i = 0; i < kHops; ++i) {
      while (!req.pop(c)) {
      }
      while (!resp.push(c)) {
      }
    }
    done.store(++served, std::memory_order_release);
  }
  // On the application thread: half the p50 round trip, in cycles.
  double hop_cycles() {
    const std::uint64_t want = asked.fetch_add(1, std::memory_order_release) + 1;
    std::vector<std::uint64_t> cycles;
    cycles.reserve(kHops);
    shim::Command c{}, back{};
    for (int i = 0; i < kHops; ++i) {
      c.value = static_cast<std::uint32_t>(i);
      const std::uint64_t t0 = rte_rdtsc();
      while (!req.push(c)) {
      }
      while (!resp.pop(back)) {
      }
      cycles.push_back(rte_rdtsc() - t0);
    }
    while (done.load(std::memory_order_acquire) != want) {
    }
    std::sort(cycles.begin() + kHops / 10, cycles.end());  // the first tenth: warm-up
    return static_cast<double>(cycles[kHops / 10 + (kHops - kHops / 10) / 2]) / 2;
  }
};

// --- through the shim ---------------------------------------------------------

// Each mode's round trips are taken in blocks, and before each block the
// lcore thread makes a block of on-lcore round trips: the two figures of a
// pair are taken a few milliseconds apart, so a shared machine's slow
// spells (the loop's cost here swings 2x between runs) hit both alike. The
// crossing is the median over pairs of (shim p50 - on-lcore p50) / 2.
constexpr int kBlocks = 10;

struct ModeResult {
  Figures shim;
  double crossing_ns = 0;  // median over blocks
  // The same split by direction: what the shim adds from the send() call to
  // the server's callback (thread -> lcore), and from there until recv()
  // returns the reply (lcore -> thread); medians over blocks of p50s.
  double to_lcore_ns = 0, to_thread_ns = 0;
  double loop_ns = 0;      // the lcore's iteration (both stacks) during the shim's blocks
  // The bare ring hop (HopRings) taken before each block, median; and
  // the median over blocks of (crossing - hop): what the shim adds beyond
  // the machine's cost of moving a message's lines, in the same moments.
  double hop_ns = 0, own_ns = 0;
};

struct ShimResult {
  ModeResult busy, busy_poll, epoll;
  Figures onlcore;  // every block of every mode
};

double p50_of(std::vector<std::uint64_t> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return static_cast<double>(v[v.size() / 2]);
}

ShimResult run_shim(World& w, std::uint64_t iterations, unsigned lcore_cpu) {
  OnlcoreRr onl(w);
  const std::uint64_t block = std::max<std::uint64_t>(iterations / kBlocks, 100);
  std::vector<std::uint64_t> onl_cycles, onl_request;  // the lcore thread's, read by this one once a block is done
  onl_cycles.reserve(3 * kBlocks * block);
  onl_request.reserve(3 * kBlocks * block);
  std::atomic<std::uint64_t> onl_asked{0}, onl_done{0};
  std::uint64_t onl_allocs = 0;  // the lcore thread's during its on-lcore blocks (read after join)

  shim::LcoreConfig cfg;
  cfg.max_threads = 1;
  shim::ShimLcore la(w.ta, cfg);
  w.a.set_hook(&la);
  shim::Hub hub({&la}, {static_cast<int>(lcore_cpu)});
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> lcore_allocs{0};
  std::atomic<std::uint64_t> lcore_iterations{0};
  HopRings hops;
  std::thread lcore([&] {
    pin(lcore_cpu);
    // An lcore as the runtime's are: an EAL thread, with the mempool's
    // per-lcore cache (not a ring operation per mbuf).
    const bool eal = rte_thread_register() == 0;
    std::uint64_t done = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (onl_asked.load(std::memory_order_acquire) != done) {
        const std::uint64_t a0 = thread_alloc_count();
        for (std::uint64_t i = 0; i < block; ++i) {
          std::uint64_t request;
          onl_cycles.push_back(onl.rr(request));
          onl_request.push_back(request);
        }
        onl_allocs += thread_alloc_count() - a0;
        onl_done.store(++done, std::memory_order_release);
      }
      hops.serve();
      w.step();
      lcore_allocs.store(thread_alloc_count(), std::memory_order_relaxed);
      lcore_iterations.store(lcore_iterations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    if (eal) rte_thread_unregister();
  });
  if (!pin_except(lcore_cpu)) die("cannot pin the application thread off the lcore's CPU");

  std::string err;
  auto t = shim::Thread::attach(hub, err);
  if (!t) die("attach: " + err);
  const int h = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  t->setsockopt(h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kPort);
  to.sin_addr.s_addr = htonl((10u << 24) | 2u);
  if (t->connect(h, reinterpret_cast<const sockaddr*>(&to), sizeof to) != -1 || errno != EINPROGRESS)
    die("shim connect");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = h;
  epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(h), &ev);
  const std::uint64_t deadline = rte_rdtsc() + 5 * rte_get_tsc_hz();
  while (!(t->events(h) & EPOLLOUT)) {
    epoll_wait(ep, &ev, 1, 10);
    if (rte_rdtsc() > deadline) die("shim connect: no answer in 5 s");
  }

  std::array<std::uint8_t, kMsg> msg{}, in{};
  auto rr = [&](bool busy) {
    if (t->send(h, msg.data(), kMsg, 0) != static_cast<ssize_t>(kMsg)) die("shim send");
    std::size_t got = 0;
    // The clock is looked at every 256 polls: the kernel's loop below does
    // not read it at all, and a TSC read costs a fifth of an empty poll.
    const std::uint64_t end = rte_rdtsc() + 2 * rte_get_tsc_hz();
    for (std::uint32_t polls = 1; got < kMsg; ++polls) {
      const ssize_t n = t->recv(h, in.data() + got, kMsg - got, 0);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
      } else if (n == 0 || errno != EAGAIN) {
        die("shim recv");
      } else if (!busy) {
        epoll_wait(ep, &ev, 1, 100);
      } else if ((polls & 255) == 0 && rte_rdtsc() > end) {
        die("shim: no reply in 2 s");
      }
    }
  };
  auto onlcore_block = [&] {
    const std::uint64_t want = onl_asked.fetch_add(1, std::memory_order_release) + 1;
    const std::uint64_t end = rte_rdtsc() + 10 * rte_get_tsc_hz();
    while (onl_done.load(std::memory_order_acquire) != want)
      if (rte_rdtsc() > end) die("the lcore's on-lcore round trips: none in 10 s");
  };
  ShimResult r;
  enum class Mode { busy, busy_poll, epoll };
  for (Mode mode : {Mode::busy, Mode::busy_poll, Mode::epoll}) {
    const bool busy = mode != Mode::epoll;
    // SO_BUSY_POLL (50 µs) in the busy_poll run only: the lcore's wake-up
    // waits for the polling thread, which takes the reply itself.
    const int us = mode == Mode::busy_poll ? 50 : 0;
    t->setsockopt(h, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof us);
    for (int i = 0; i < 1000; ++i) rr(busy);
    std::vector<std::uint64_t> cycles, blk, blk_req, blk_rep, onl_rep;
    cycles.reserve(kBlocks * block);
    blk.reserve(block);
    blk_req.reserve(block);
    blk_rep.reserve(block);
    onl_rep.reserve(block);
    std::vector<double> crossings, to_lcore, to_thread, hop, own;
    std::uint64_t loops = 0, loop_cycles = 0;
    std::uint64_t allocs = 0;  // both threads', during the shim's round trips only
    for (int b = 0; b < kBlocks; ++b) {
      const std::size_t onl0 = onl_cycles.size();
      onlcore_block();
      const auto ns_p50 = [&](const std::vector<std::uint64_t>& v) { return w.clk.ns(static_cast<std::uint64_t>(p50_of(v))); };
      const double onl_p50 = ns_p50({onl_cycles.begin() + static_cast<std::ptrdiff_t>(onl0), onl_cycles.end()});
      const double onl_req_p50 = ns_p50({onl_request.begin() + static_cast<std::ptrdiff_t>(onl0), onl_request.end()});
      onl_rep.clear();
      for (std::size_t i = onl0; i < onl_cycles.size(); ++i) onl_rep.push_back(onl_cycles[i] - onl_request[i]);
      hop.push_back(w.clk.ns(static_cast<std::uint64_t>(hops.hop_cycles())));
      blk.clear();
      blk_req.clear();
      blk_rep.clear();
      const std::uint64_t i0 = lcore_iterations.load(), c0 = rte_rdtsc();
      const std::uint64_t a0 = thread_alloc_count(), l0 = lcore_allocs.load();
      for (std::uint64_t i = 0; i < block; ++i) {
        const std::uint64_t t0 = rte_rdtsc();
        rr(busy);
        const std::uint64_t t1 = rte_rdtsc();
        const std::uint64_t request = w.echo.rx_tsc.load(std::memory_order_relaxed) - t0;
        blk.push_back(t1 - t0);
        blk_req.push_back(request);
        blk_rep.push_back(t1 - t0 - request);
      }
      allocs += (thread_alloc_count() - a0) + (lcore_allocs.load() - l0);
      loops += lcore_iterations.load() - i0;
      loop_cycles += rte_rdtsc() - c0;
      cycles.insert(cycles.end(), blk.begin(), blk.end());
      crossings.push_back((ns_p50(blk) - onl_p50) / 2);
      own.push_back(crossings.back() - hop.back());
      to_lcore.push_back(ns_p50(blk_req) - onl_req_p50);
      to_thread.push_back(ns_p50(blk_rep) - ns_p50(onl_rep));
    }
    ModeResult& m = mode == Mode::busy ? r.busy : mode == Mode::busy_poll ? r.busy_poll : r.epoll;
    // Both threads' allocations over the shim's round trips (the bench's own
    // bookkeeping between blocks allocates, and is not counted).
    m.shim = figures(w.clk, cycles, allocs);
    const auto median = [](std::vector<double>& v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    m.crossing_ns = median(crossings);
    m.to_lcore_ns = median(to_lcore);
    m.to_thread_ns = median(to_thread);
    m.hop_ns = median(hop);
    m.own_ns = median(own);
    m.loop_ns = loops ? w.clk.ns(loop_cycles) / static_cast<double>(loops) : 0;
  }
  t->close(h);
  close(ep);
  t.reset();
  // Let the lcore see the close through before it stops.
  const std::uint64_t end = rte_rdtsc() + rte_get_tsc_hz() / 10;
  while (rte_rdtsc() < end) std::this_thread::yield();
  stop.store(true);
  lcore.join();
  w.a.set_hook(nullptr);
  r.onlcore = figures(w.clk, onl_cycles, onl_allocs);
  onl.close();
  return r;
}

// --- the kernel -------------------------------------------------------------------

struct KernelResult {
  Figures busy, epoll;
  std::string error;
};

KernelResult run_kernel(std::uint64_t iterations) {
  KernelResult r;
  const Clock clk;
  const int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l < 0 || ::bind(l, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 4) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    r.error = std::string("listen: ") + std::strerror(errno);
    if (l >= 0) ::close(l);
    return r;
  }
  std::thread server([l] {
    const int s = ::accept(l, nullptr, nullptr);
    if (s < 0) return;
    const int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::array<std::uint8_t, 4096> buf{};
    for (ssize_t n; (n = ::recv(s, buf.data(), buf.size(), 0)) > 0;)
      if (::send(s, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
    ::close(s);
  });
  const int c = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(c, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(l);
    server.join();
    return r;
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
  std::array<std::uint8_t, kMsg> msg{}, in{};
  auto rr = [&](bool busy) {
    if (::send(c, msg.data(), kMsg, MSG_NOSIGNAL) != static_cast<ssize_t>(kMsg)) return false;
    std::size_t got = 0;
    while (got < kMsg) {
      const ssize_t n = ::recv(c, in.data() + got, kMsg - got, MSG_DONTWAIT);
      if (n > 0) got += static_cast<std::size_t>(n);
      else if (n == 0 || errno != EAGAIN) return false;
      else if (!busy) epoll_wait(ep, &ev, 1, 100);
    }
    return true;
  };
  for (bool busy : {true, false}) {
    for (int i = 0; i < 1000; ++i)
      if (!rr(busy)) r.error = "round trip failed";
    std::vector<std::uint64_t> cycles;
    cycles.reserve(iterations);
    for (std::uint64_t i = 0; i < iterations && r.error.empty(); ++i) {
      const std::uint64_t t0 = rte_rdtsc();
      if (!rr(busy)) r.error = std::string("round trip: ") + std::strerror(errno);
      cycles.push_back(rte_rdtsc() - t0);
    }
    (busy ? r.busy : r.epoll) = figures(clk, cycles, 0);
  }
  ::close(c);
  ::close(ep);
  server.join();
  ::close(l);
  return r;
}

}  // namespace

std::vector<CaseResult> bench_shim(const ShimOptions& opt, rte_mempool* pool) {
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 2) die("needs two CPUs (the lcore and the application thread)");
  const unsigned lcore_cpu = static_cast<unsigned>(sched_getcpu() >= 0 ? sched_getcpu() : 0);
  auto w = std::make_unique<World>(pool);
  const ShimResult shim = run_shim(*w, opt.iterations, lcore_cpu);
  const Figures& onlcore = shim.onlcore;
  const KernelResult kernel = run_kernel(opt.kernel_iterations);

  std::vector<CaseResult> out;
  const unsigned shown = show::kLatency | show::kOps | show::kAllocs;
  CaseResult busy;
  busy.name = "shim_rr64";
  busy.what = "64-byte round trip from a thread through the shim, busy-polling recv() [kernel: two threads, "
              "loopback, the client busy-polling recv()]";
  busy.ustack = shim.busy.shim;
  busy.shown = shown;
  busy.ops_unit = "rt/s";
  CaseResult bp;
  bp.name = "shim_rr64_busy_poll";
  bp.what = "the same with SO_BUSY_POLL 50 us on the handle: the lcore's eventfd wake-up waits for the polling "
            "thread [kernel: as shim_rr64]";
  bp.ustack = shim.busy_poll.shim;
  bp.shown = shown;
  bp.ops_unit = "rt/s";
  CaseResult ep;
  ep.name = "shim_rr64_epoll";
  ep.what = "the same, waiting in epoll_wait on the handle's eventfd [kernel: epoll_wait on the socket]";
  ep.ustack = shim.epoll.shim;
  ep.shown = shown;
  ep.ops_unit = "rt/s";
  CaseResult on;
  on.name = "onlcore_rr64";
  on.what = "the same round trip made in callbacks on the lcore thread (no crossing), in blocks between the shim's "
            "[kernel: as shim_rr64]";
  on.ustack = onlcore;
  on.shown = shown;
  on.ops_unit = "rt/s";
  if (kernel.error.empty()) {
    busy.kernel = kernel.busy;
    bp.kernel = kernel.busy;
    ep.kernel = kernel.epoll;
    on.kernel = kernel.busy;
  } else {
    busy.kernel_note = bp.kernel_note = ep.kernel_note = on.kernel_note = kernel.error;
  }
  // The crossing: what the shim adds to the on-lcore round trip, per
  // direction. Without SO_BUSY_POLL each reply costs an eventfd write on the
  // lcore and a drain on the thread (two syscalls); with it, neither.
  const double crossing = shim.busy.crossing_ns;
  const double crossing_bp = shim.busy_poll.crossing_ns;
  busy.note = fmt("thread crossing: %.0f ns each way", crossing) + " (median over " + std::to_string(kBlocks) +
              " block pairs of (shim p50 - on-lcore p50) / 2; two crossings per round trip), with the eventfd write "
              "and drain per reply";
  bp.note = fmt("thread crossing: %.0f ns each way, no eventfd syscall", crossing_bp) +
            fmt(" (by direction: thread -> lcore %.0f ns,", shim.busy_poll.to_lcore_ns) +
            fmt(" lcore -> thread %.0f ns)", shim.busy_poll.to_thread_ns) +
            fmt("; the lcore's loop: %.0f ns per iteration (both stacks; a command waits half of one on average)",
                shim.busy_poll.loop_ns) +
            fmt("; a bare ring hop between the two CPUs, before each block: %.0f ns", shim.busy_poll.hop_ns) +
            fmt(", and the crossing less the hop: %.0f ns (medians over the blocks)", shim.busy_poll.own_ns);
  bp.goal = fmt("crossing under 200 ns (%.0f ns)", crossing_bp) + (crossing_bp < 200 ? ": met" : ": MISSED");
  if (kernel.error.empty() && shim.busy.shim.p50_ns > 0 && shim.busy_poll.shim.p50_ns > 0) {
    const double x = kernel.busy.p50_ns / shim.busy.shim.p50_ns;
    const double xb = kernel.busy.p50_ns / shim.busy_poll.shim.p50_ns;
    busy.goal = fmt("shim round trip at least 3x faster than the kernel's (%.1fx)", x) + (x >= 3 ? ": met" : ": MISSED");
    bp.goal += fmt("; shim round trip at least 3x faster than the kernel's (%.1fx)", xb) + (xb >= 3 ? ": met" : ": MISSED");
  }
  ep.note = "includes the eventfd write on the lcore and the epoll_wait wake-up on the thread";
  out.push_back(std::move(busy));
  out.push_back(std::move(bp));
  out.push_back(std::move(ep));
  out.push_back(std::move(on));
  for (auto& c : bench_shim_udp(opt, pool, lcore_cpu)) out.push_back(std::move(c));
  return out;
}

}  // namespace ustack::bench
