// ustack-bench tcp: ustack's TCP on two stacks over the in-memory pair, on
// one core, beside the Linux kernel's TCP over loopback, in the same run.
//
// What is measured (ustack; kernel in brackets):
//  - handshake: connect() until both ends know the connection is
//    established: the later of on_connected (client) and on_accept (server).
//    [connect() until accept() returns.] Cleanup (abort: RST) is untimed;
//    both sides abort, so neither accumulates TIME-WAIT.
//  - rr64: a 64-byte request, echoed by the server, until the whole reply is
//    read by the client. Nagle off on both. [TCP_NODELAY.]
//  - bulk: one connection, the client writes N MiB through send() (copying,
//    as write() does), the server read()s it out (copying, as read() does);
//    time until the last byte is read. [send()/recv() on nonblocking
//    sockets, both in this thread.]
//  - cps: one connection's whole life: connect, a 64-byte request and its
//    reply, the client closes first (it keeps TIME-WAIT), the server closes
//    on EOF; until the server's socket is gone. [socket() .. both close()s.]
//  - idle_conn_memory: bytes that exist per connection. ustack preallocates
//    every connection slot with its rings (TcpLayer::bytes_per_connection());
//    an idle connection holds no mbufs (measured). [Growth of the kernel's
//    slab caches per socket with N idle established connections open, from
//    /proc/slabinfo.]
//  - allocs: heap allocations on this thread over every measured ustack
//    phase, per packet (must be 0).
//
// The kernel runs in this one thread too, with blocking sockets (bulk:
// nonblocking). Over loopback a send() runs the receiver's whole TCP input
// in the sender's softirq before it returns, so one thread measures the
// kernel's protocol cost without any scheduler wake-up in the figure: the
// kernel at its fastest, as ustack's two stacks stepping on one core are.
// Loopback's MTU is 64 KiB and it skips checksums; ustack's wire is
// Ethernet's 1500 bytes with software checksums, as on a NIC without
// offloads. Both stacks run on the same core, so bulk Gbit/s is "one lcore
// running both ends", not a link rate.
//
// Time is the TSC around the real work (the stacks' `now` is the TSC too,
// as in the runtime). Rates in the table are taken at the median operation
// (bulk: the median 256 KiB chunk), so that a core shared with other work
// costs the tails, not the headline; the whole-run rates are in the JSON
// (*_wall) and in the notes.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rte_cycles.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "apps/bench/cases.hpp"
#include "apps/bench/clock.hpp"
#include "apps/bench/pair_stacks.hpp"
#include "apps/bench/kernel_socket.hpp"
#include "core/alloc_counter.hpp"
#include "drivers/mem_pair.hpp"
#include "src/runtime/engine.hpp"
#include "tcp/tcp_layer.hpp"

namespace ustack::bench {

namespace {

constexpr std::size_t kMsg = 64;
constexpr std::uint16_t kPort = 5001;

// Bulk throughput is the median over chunks of this size: on shared cores a
// chunk the scheduler interrupted is an outlier, not a lower average.
constexpr std::uint64_t kChunk = 256 * 1024;

double median_chunk_gbps(const Clock& clk, std::uint64_t start, const std::vector<std::uint64_t>& marks) {
  std::vector<double> ns;
  ns.reserve(marks.size());
  for (std::size_t i = 0; i < marks.size(); ++i) ns.push_back(clk.ns(marks[i] - (i ? marks[i - 1] : start)));
  if (ns.empty()) return 0;
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(ns.size() / 2), ns.end());
  const double med = ns[ns.size() / 2];
  return med > 0 ? static_cast<double>(kChunk) * 8.0 / med : 0;
}

// --- ustack ------------------------------------------------------------------

// The server: echoes what it reads (or only counts it), closes on EOF.
struct Server final : tcp::TcpHandler {
  bool echo = true;
  std::uint64_t accepts = 0, accept_tsc = 0, closes = 0, rx = 0;
  TcpConnId conn;
  // Bulk: the TSC each time rx crosses a multiple of kChunk (reserved beforehand).
  std::vector<std::uint64_t>* marks = nullptr;
  std::uint64_t next_mark = 0;
  std::array<std::uint8_t, 64 * 1024> buf{};

  void on_accept(tcp::TcpLayer&, TcpListenerId, TcpConnId c, TimeNs) override {
    accept_tsc = rte_rdtsc();
    conn = c;
    ++accepts;
  }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    for (;;) {
      const std::size_t n = t.read(c, buf, now);
      if (n == 0) break;
      rx += n;
      if (echo) t.send(c, Bytes{buf}.first(n), now);
      if (marks && rx >= next_mark) {
        marks->push_back(rte_rdtsc());
        next_mark += kChunk;
      }
    }
    if (t.peer_closed(c)) {
      t.close(c, now);
      ++closes;
    }
  }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError, TimeNs) override { ++closes; }
};

// The client: optionally sends a request as soon as it is connected and
// closes once `close_after` reply bytes arrived; pumps bulk data.
struct Client final : tcp::TcpHandler {
  TcpConnId conn;
  bool connected = false;
  std::uint64_t connected_tsc = 0, rx = 0, rx_tsc = 0, closed_events = 0;
  bool request_on_connect = false;
  std::uint64_t close_after = 0;  // 0: never
  std::uint64_t to_send = 0, sent = 0;
  std::array<std::uint8_t, kMsg> msg{};
  std::array<std::uint8_t, 64 * 1024> buf{};

  void on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    connected_tsc = rte_rdtsc();
    conn = c;
    connected = true;
    if (request_on_connect) t.send(c, Bytes{msg}, now);
    pump(t, now);
  }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    for (;;) {
      const std::size_t n = t.read(c, buf, now);
      if (n == 0) break;
      rx += n;
    }
    rx_tsc = rte_rdtsc();
    if (close_after && rx >= close_after) {
      close_after = 0;
      t.close(c, now);
    }
  }
  void on_writable(tcp::TcpLayer& t, TcpConnId, TimeNs now) override { pump(t, now); }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError, TimeNs) override { ++closed_events; }
  void pump(tcp::TcpLayer& t, TimeNs now) {
    while (sent < to_send) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to_send - sent));
      const std::size_t n = t.send(conn, Bytes{buf}.first(want), now);
      sent += n;
      if (n < want) return;
    }
  }
};

// Two stacks with a TcpLayer each on the in-memory pair, stepped on this
// thread with the TSC-derived `now`, as the runtime's loop does.
struct Rig {
  Clock clk;
  MemPair wire;
  Engine a, b;
  tcp::TcpLayer ta, tb;
  Server server;
  Client client;

  Rig(rte_mempool* pool, const tcp::TcpConfig& cfg)
      : wire(4096, pair_caps(1), pair_caps(2)),
        a(wire.a(), pair_config(1), pool, clk.now()),
        b(wire.b(), pair_config(2), pool, clk.now()),
        ta(a.stack(), cfg),
        tb(b.stack(), cfg) {}

  Ipv4Addr ip_b() const { return Ipv4Addr{10, 0, 0, 2}; }
  void step() {
    a.run_once(clk.now());
    b.run_once(clk.now());
  }
  // A stall (no packet moved for 2 s of wall time) is a bug: nothing is
  // lost on this wire. Say so and stop.
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
        std::fprintf(stderr, "ustack-bench tcp: no packet for 2 s while waiting for %s\n", what);
        dump_counters();
        std::exit(1);
      }
    }
  }
  void dump_counters() {
    std::fprintf(stderr, "counters (client, server):\n");
    for (std::size_t i = 0; i < kStackCounterCount; ++i) {
      const auto va = a.stack().counters().get(i), vb = b.stack().counters().get(i);
      if (va || vb)
        std::fprintf(stderr, "  %-36.*s %12llu %12llu\n", static_cast<int>(kStackCounterNames[i].size()),
                     kStackCounterNames[i].data(), static_cast<unsigned long long>(va), static_cast<unsigned long long>(vb));
    }
    std::fprintf(stderr, "  connections %u %u, time-wait %u %u\n", ta.connection_count(), tb.connection_count(),
                 ta.time_wait_count(), tb.time_wait_count());
  }
  std::uint64_t packets() {
    return a.stack().counters().get(StackCounter::eth_tx_packets) + b.stack().counters().get(StackCounter::eth_tx_packets);
  }
  TcpConnId connect() {
    auto c = ta.connect(ip_b(), kPort, &client, nullptr, clk.now());
    if (!c) {
      std::fprintf(stderr, "ustack-bench tcp: connect() refused (no slot or port)\n");
      std::exit(1);
    }
    return *c;
  }
  // Opens a connection and returns once both ends are established.
  TcpConnId open() {
    client.connected = false;
    const std::uint64_t accepts = server.accepts;
    const TcpConnId c = connect();
    run_until([&] { return client.connected && server.accepts == accepts + 1; }, "a handshake");
    return c;
  }
  // Aborts both ends (RST), leaving no TIME-WAIT behind.
  void abort_both(TcpConnId c) {
    ta.abort(c, clk.now());
    run_until([&] { return tb.connection_count() == 0; }, "the server to see the RST");
  }
};

// What a measured phase did: wall time, packets, heap allocations, and how
// many operations (handshakes, round trips, cycles; bytes for bulk).
struct Measured {
  double elapsed_ns = 0;
  std::uint64_t pkts = 0, allocs = 0, ops = 0;
};

// Rates. The whole phase's wall-clock rate is what a quiet machine shows; on
// shared cores it mostly measures the scheduler (a preempted operation
// counts milliseconds). So the table's rates are taken at the median: one
// over the median operation (latency cases) or the median chunk (bulk),
// given here as `ops_per_sec`; pps follows at the phase's packets per
// operation. The whole-phase rates are kept as *_wall.
void fill_rates(Figures& f, const Measured& m, double ops_per_sec) {
  const double per_op = m.ops ? static_cast<double>(m.pkts) / static_cast<double>(m.ops) : 0;
  f.ops_per_sec = ops_per_sec;
  f.pps = ops_per_sec * per_op;
  f.ns_per_pkt = f.pps > 0 ? 1e9 / f.pps : 0;
  f.ops_per_sec_wall = m.elapsed_ns > 0 ? static_cast<double>(m.ops) / (m.elapsed_ns / 1e9) : 0;
  f.pps_wall = m.elapsed_ns > 0 ? static_cast<double>(m.pkts) / (m.elapsed_ns / 1e9) : 0;
  f.allocs_per_pkt = m.pkts ? static_cast<double>(m.allocs) / static_cast<double>(m.pkts) : 0;
}

// Latency figures from per-operation cycles; returns the rate at the median.
double fill_samples(Figures& f, const Clock& clk, const std::vector<std::uint64_t>& cycles) {
  std::vector<std::uint64_t> ns(cycles.size());
  for (std::size_t i = 0; i < cycles.size(); ++i) ns[i] = static_cast<std::uint64_t>(clk.ns(cycles[i]));
  fill_latency(f, ns);
  return f.p50_ns > 0 ? 1e9 / f.p50_ns : 0;
}

// Accounting across a measured ustack phase.
struct Phase {
  Rig& rig;
  std::uint64_t allocs0 = thread_alloc_count();
  std::uint64_t pkts0 = rig.packets();
  std::uint64_t start = rte_rdtsc();
  Measured m;
  explicit Phase(Rig& r) : rig(r) {}
  void end(std::uint64_t ops) {
    m.elapsed_ns = rig.clk.ns(rte_rdtsc() - start);
    m.allocs = thread_alloc_count() - allocs0;
    m.pkts = rig.packets() - pkts0;
    m.ops = ops;
  }
};

// The same for a kernel phase: packets from loopback's counter.
std::uint64_t lo_tx_packets();
struct KernelPhase {
  const Clock& clk;
  std::uint64_t pkts0 = lo_tx_packets();
  std::uint64_t allocs0 = thread_alloc_count();
  std::uint64_t start = rte_rdtsc();
  Measured m;
  explicit KernelPhase(const Clock& c) : clk(c) {}
  void end(std::uint64_t ops) {
    m.elapsed_ns = clk.ns(rte_rdtsc() - start);
    m.allocs = thread_alloc_count() - allocs0;  // this process's only (the kernel's are not counted)
    m.pkts = lo_tx_packets() - pkts0;           // the whole machine's loopback
    m.ops = ops;
  }
};

struct Totals {
  std::uint64_t allocs = 0, pkts = 0;
  void add(const Phase& p) {
    allocs += p.m.allocs;
    pkts += p.m.pkts;
  }
};

std::vector<CaseResult> run_ustack(const TcpOptions& opt, rte_mempool* pool) {
  auto rig = std::make_unique<Rig>(pool, tcp::TcpConfig{});
  Rig& r = *rig;
  if (!r.tb.listen(kPort, 1024, &r.server)) {
    std::fprintf(stderr, "ustack-bench tcp: listen failed\n");
    std::exit(1);
  }
  Totals total;
  std::vector<CaseResult> out;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(opt.iterations);

  // Warm-up: ARP on both sides, every code path once, caches.
  for (int i = 0; i < 200; ++i) r.abort_both(r.open());

  // Handshake.
  if (want(opt.only, "handshake")) {
    cycles.clear();
    Phase ph(r);
    for (std::uint64_t i = 0; i < opt.iterations; ++i) {
      r.client.connected = false;
      const std::uint64_t accepts = r.server.accepts;
      const std::uint64_t t0 = rte_rdtsc();
      const TcpConnId c = r.connect();
      r.run_until([&] { return r.client.connected && r.server.accepts == accepts + 1; }, "a handshake");
      cycles.push_back(std::max(r.client.connected_tsc, r.server.accept_tsc) - t0);
      r.abort_both(c);
    }
    ph.end(opt.iterations);
    total.add(ph);
    CaseResult c;
    c.name = "tcp_handshake";
    c.what = "connect() until both ends are established (client on_connected, server on_accept)";
    c.shown = show::kLatency | show::kAllocs;
    fill_rates(c.ustack, ph.m, fill_samples(c.ustack, r.clk, cycles));
    c.note = "ustack: two stacks on the in-memory pair, one thread; kernel: connect() until accept() returns, "
             "127.0.0.1, blocking sockets, one thread. Untimed cleanup: RST (no TIME-WAIT) on both";
    out.push_back(std::move(c));
  }

  // 64-byte request/response on one connection.
  if (want(opt.only, "rr64")) {
    const TcpConnId conn = r.open();
    std::array<std::uint8_t, kMsg> msg{};
    for (int i = 0; i < 1000; ++i) {  // warm-up: past the quick-ACK phase, delayed ACKs in play
      const std::uint64_t want = r.client.rx + kMsg;
      r.ta.send(conn, Bytes{msg}, r.clk.now());
      r.run_until([&] { return r.client.rx >= want; }, "a reply");
    }
    cycles.clear();
    Phase ph(r);
    for (std::uint64_t i = 0; i < opt.iterations; ++i) {
      const std::uint64_t want = r.client.rx + kMsg;
      const std::uint64_t t0 = rte_rdtsc();
      r.ta.send(conn, Bytes{msg}, r.clk.now());
      r.run_until([&] { return r.client.rx >= want; }, "a reply");
      cycles.push_back(r.client.rx_tsc - t0);
    }
    ph.end(opt.iterations);
    total.add(ph);
    r.abort_both(conn);
    CaseResult c;
    c.name = "tcp_rr64";
    c.what = "64-byte request, 64-byte reply, one connection, one in flight (Nagle off / TCP_NODELAY)";
    c.shown = show::kLatency | show::kOps | show::kPps | show::kAllocs;
    c.ops_unit = "rt/s";
    fill_rates(c.ustack, ph.m, fill_samples(c.ustack, r.clk, cycles));
    c.note = "kernel: send()/recv() on blocking sockets, client and server in this thread (loopback runs the "
             "peer's input inside send(): no wake-ups in the figure)";
    out.push_back(std::move(c));
  }

  // Bulk transfer, client to server.
  if (want(opt.only, "bulk")) {
    r.server.echo = false;
    const TcpConnId conn = r.open();
    // Warm-up: out of slow start, the send ring and the pool primed.
    r.client.to_send = r.client.sent + 8 * 1024 * 1024;
    std::uint64_t want = r.server.rx + 8 * 1024 * 1024;
    r.client.pump(r.ta, r.clk.now());
    r.run_until([&] { return r.server.rx >= want; }, "bulk warm-up data");
    std::vector<std::uint64_t> marks;
    marks.reserve(opt.bulk_bytes / kChunk + 2);
    r.server.marks = &marks;
    r.server.next_mark = r.server.rx + kChunk;
    Phase ph(r);
    r.client.to_send = r.client.sent + opt.bulk_bytes;
    want = r.server.rx + opt.bulk_bytes;
    r.client.pump(r.ta, r.clk.now());
    r.run_until([&] { return r.server.rx >= want; }, "bulk data");
    ph.end(opt.bulk_bytes);
    r.server.marks = nullptr;
    total.add(ph);
    if (std::getenv("USTACK_BENCH_DEBUG")) {
      if (auto st = r.ta.stats(conn))
        std::fprintf(stderr, "bulk: cwnd %u ssthresh %u snd_wnd %u rto %llu rtx %llu timeouts %llu segs_out %llu\n", st->cwnd,
                     st->ssthresh, st->snd_wnd, static_cast<unsigned long long>(st->rto_ns),
                     static_cast<unsigned long long>(st->retransmits), static_cast<unsigned long long>(st->timeouts),
                     static_cast<unsigned long long>(st->segs_out));
      r.dump_counters();
    }
    r.abort_both(conn);
    r.server.echo = true;
    CaseResult c;
    c.name = "tcp_bulk";
    c.what = fmt("%.0f MiB client -> server, one connection; BOTH stacks on ONE core (not a link rate)",
                 static_cast<double>(opt.bulk_bytes) / (1024.0 * 1024.0));
    c.shown = show::kGbps | show::kPps | show::kAllocs;
    fill_rates(c.ustack, ph.m, median_chunk_gbps(r.clk, ph.start, marks) * 1e9 / 8.0);
    c.ustack.gbps = c.ustack.ops_per_sec * 8.0 / 1e9;
    c.ustack.gbps_wall = c.ustack.ops_per_sec_wall * 8.0 / 1e9;
    c.ustack.samples = marks.size();
    c.note = fmt("Gbit/s: median over 256 KiB chunks (whole run: ustack %.2f", c.ustack.gbps_wall) +
             " Gbit/s, kernel @KW Gbit/s). send()/read() copy on both sides. ustack: MSS 1448 on a 1500-byte wire, "
             "software checksums; kernel: loopback MTU 65536 (64 KiB segments), no checksums, nonblocking sockets "
             "in this thread";
    out.push_back(std::move(c));
  }

  // Connections per second: open, one request/response, close.
  if (want(opt.only, "cps")) {
    r.client.request_on_connect = true;
    auto cycle = [&] {
      r.client.connected = false;
      r.client.close_after = r.client.rx + kMsg;
      const std::uint64_t closes = r.server.closes;
      r.connect();
      // Done when the server has closed on EOF and both its connection and
      // the client's (now in TIME-WAIT, which outlives the run) are settled.
      r.run_until([&] { return r.server.closes == closes + 1 && r.tb.connection_count() == 0 &&
                               r.ta.connection_count() == r.ta.time_wait_count(); },
                  "a connection cycle");
    };
    // Warm-up: fill the client's pool with TIME-WAIT connections, so the
    // measured cycles include recycling the oldest (the steady state of a
    // busy client).
    for (std::uint32_t i = 0; i < r.ta.capacity() + 100; ++i) cycle();
    cycles.clear();
    Phase ph(r);
    for (std::uint64_t i = 0; i < opt.iterations; ++i) {
      const std::uint64_t t0 = rte_rdtsc();
      cycle();
      cycles.push_back(rte_rdtsc() - t0);
    }
    ph.end(opt.iterations);
    total.add(ph);
    r.client.request_on_connect = false;
    CaseResult c;
    c.name = "tcp_cps";
    c.what = "connect, 64-byte request/reply, client closes first (TIME-WAIT), server closes on EOF; latency per cycle";
    c.shown = show::kLatency | show::kOps | show::kPps | show::kAllocs;
    c.ops_unit = "conn/s";
    fill_rates(c.ustack, ph.m, fill_samples(c.ustack, r.clk, cycles));
    c.note = fmt("ustack: the client's %.0f slots are all in TIME-WAIT; each connect recycles the oldest. "
                 "kernel: socket() .. both close()s, blocking, one thread; tcp_tw_reuse governs its TIME-WAIT ports",
                 r.ta.capacity());
    out.push_back(std::move(c));
  }

  // Memory per idle connection.
  if (want(opt.only, "memory")) {
    // N connections, each after one request/response, then idle. (The
    // client's slots are TIME-WAIT from the cps case: opening recycles them.)
    const unsigned before = rte_mempool_in_use_count(pool);
    std::vector<TcpConnId> open;
    open.reserve(opt.idle_conns);
    std::array<std::uint8_t, kMsg> msg{};
    for (std::uint32_t i = 0; i < opt.idle_conns; ++i) {
      const TcpConnId c = r.open();
      const std::uint64_t want = r.client.rx + kMsg;
      r.ta.send(c, Bytes{msg}, r.clk.now());
      r.run_until([&] { return r.client.rx >= want; }, "a reply");
      open.push_back(c);
    }
    // Let every delayed ACK go out: step past 40 ms.
    const TimeNs until = r.clk.now() + 50 * kNsPerMs;
    r.run_until([&] { return r.clk.now() > until; }, "delayed ACKs");
    const unsigned during = rte_mempool_in_use_count(pool);
    for (const TcpConnId c : open) r.ta.abort(c, r.clk.now());
    r.run_until([&] { return r.tb.connection_count() == 0; }, "the server to see the RSTs");
    CaseResult c;
    c.name = "tcp_idle_conn_memory";
    c.what = fmt("bytes per idle established connection (per endpoint), %.0f connections open", opt.idle_conns);
    c.shown = show::kBytesPerConn;
    c.ustack.samples = opt.idle_conns;
    c.ustack.bytes_per_conn = static_cast<double>(r.ta.bytes_per_connection());
    const double mbufs = (static_cast<double>(during) - static_cast<double>(before)) / (2.0 * opt.idle_conns);
    c.note = fmt("ustack: TcpLayer::bytes_per_connection(): the TCB, its rings and its flow-table share, "
                 "preallocated for every slot (capacity %.0f) whether open or not; ",
                 r.ta.capacity()) +
             fmt("mbufs held per idle connection, measured: %.2f. kernel: slab growth per socket from /proc/slabinfo", mbufs);
    out.push_back(std::move(c));
  }

  // Steady-state allocations, every phase above.
  out.push_back(allocs_case("tcp_allocs",
                            "heap allocations on the lcore thread per packet, over every measured ustack phase above",
                            total.allocs, total.pkts, "packets"));
  return out;
}

// --- kernel ------------------------------------------------------------------

void set_int(int fd, int level, int opt, int v) { ::setsockopt(fd, level, opt, &v, sizeof v); }

void linger0(int fd) {
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

bool send_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

bool recv_all(int fd, std::uint8_t* p, std::size_t n) {
  while (n) {
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

// Loopback's transmitted packets: every packet of the kernel's cases (and any
// other loopback traffic on the machine). Read without touching the heap.
std::uint64_t lo_tx_packets() {
  const int fd = ::open("/sys/class/net/lo/statistics/tx_packets", O_RDONLY);
  if (fd < 0) return 0;
  char buf[32] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::strtoull(buf, nullptr, 10) : 0;
}

class KernelTcp {
 public:
  KernelTcp() {
    listener_ = Fd(::socket(AF_INET, SOCK_STREAM, 0));
    if (!listener_) throw KernelError{errno_text("socket")};
    set_int(listener_.get(), SOL_SOCKET, SO_REUSEADDR, 1);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;  // any free port: other benchmarks may share the machine
    if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
      throw KernelError{errno_text("bind")};
    if (::listen(listener_.get(), 4096) != 0) throw KernelError{errno_text("listen")};
    socklen_t len = sizeof a;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    addr_ = a;
  }

  Fd socket() const {
    Fd c(::socket(AF_INET, SOCK_STREAM, 0));
    if (!c) throw KernelError{errno_text("socket")};
    set_int(c.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    return c;
  }
  void connect(const Fd& c) const {
    if (::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0)
      throw KernelError{errno_text("connect")};
  }
  Fd accept() const {
    Fd s(::accept4(listener_.get(), nullptr, nullptr, 0));
    if (!s) throw KernelError{errno_text("accept")};
    set_int(s.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    return s;
  }
  static void abort(Fd& c, Fd& s) {
    linger0(c.get());
    c.reset();
    s.reset();
  }

 private:
  Fd listener_;
  sockaddr_in addr_{};
};

// Bytes in the kernel's slab caches (active objects x object size), per cache.
std::map<std::string, double> slab_bytes(std::string& err) {
  std::map<std::string, double> out;
  std::ifstream f("/proc/slabinfo");
  if (!f) {
    err = "/proc/slabinfo not readable (needs root)";
    return out;
  }
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("slabinfo", 0) == 0) continue;
    std::istringstream in(line);
    std::string name;
    double active = 0, num = 0, size = 0;
    if (in >> name >> active >> num >> size) out[name] += active * size;
  }
  if (out.empty()) err = "/proc/slabinfo: no caches listed";
  return out;
}

void run_kernel(const TcpOptions& opt, std::vector<CaseResult>& cases) {
  auto find = [&](const char* name) -> CaseResult* {
    for (auto& c : cases)
      if (c.name == name) return &c;
    return nullptr;
  };
  KernelTcp k;  // throws KernelError
  const Clock clk;
  std::vector<std::uint64_t> cycles;
  cycles.reserve(opt.kernel_iterations);

  for (int i = 0; i < 200; ++i) {  // warm-up
    Fd c = k.socket();
    k.connect(c);
    Fd s = k.accept();
    KernelTcp::abort(c, s);
  }

  if (CaseResult* cr = find("tcp_handshake")) {
    cycles.clear();
    KernelPhase ph(clk);
    for (std::uint64_t i = 0; i < opt.kernel_iterations; ++i) {
      Fd c = k.socket();
      const std::uint64_t t0 = rte_rdtsc();
      k.connect(c);
      Fd s = k.accept();
      cycles.push_back(rte_rdtsc() - t0);
      KernelTcp::abort(c, s);
    }
    ph.end(opt.kernel_iterations);
    Figures f;
    fill_rates(f, ph.m, fill_samples(f, clk, cycles));
    cr->kernel = f;
  }

  if (CaseResult* cr = find("tcp_rr64")) {
    Fd c = k.socket();
    k.connect(c);
    Fd s = k.accept();
    std::array<std::uint8_t, kMsg> req{}, srv{}, rsp{};
    auto rr = [&] {
      if (!send_all(c.get(), req.data(), kMsg) || !recv_all(s.get(), srv.data(), kMsg) ||
          !send_all(s.get(), srv.data(), kMsg) || !recv_all(c.get(), rsp.data(), kMsg))
        throw KernelError{errno_text("request/response")};
    };
    for (int i = 0; i < 1000; ++i) rr();
    cycles.clear();
    KernelPhase ph(clk);
    for (std::uint64_t i = 0; i < opt.kernel_iterations; ++i) {
      const std::uint64_t t0 = rte_rdtsc();
      rr();
      cycles.push_back(rte_rdtsc() - t0);
    }
    ph.end(opt.kernel_iterations);
    Figures f;
    fill_rates(f, ph.m, fill_samples(f, clk, cycles));
    cr->kernel = f;
    KernelTcp::abort(c, s);
  }

  if (CaseResult* cr = find("tcp_bulk")) {
    Fd c = k.socket();
    k.connect(c);
    Fd s = k.accept();
    ::fcntl(c.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(s.get(), F_SETFL, O_NONBLOCK);
    std::vector<std::uint8_t> tx(64 * 1024), rx(64 * 1024);
    std::vector<std::uint64_t> marks;
    marks.reserve(opt.bulk_bytes / kChunk + 2);
    std::vector<std::uint64_t>* mk = nullptr;
    auto transfer = [&](std::uint64_t bytes) {
      std::uint64_t sent = 0, got = 0, next_mark = kChunk;
      while (got < bytes) {
        bool progress = false;
        while (sent < bytes) {
          const ssize_t n = ::send(c.get(), tx.data(),
                                   static_cast<std::size_t>(std::min<std::uint64_t>(tx.size(), bytes - sent)), MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<std::uint64_t>(n);
          progress = true;
        }
        for (;;) {
          const ssize_t n = ::recv(s.get(), rx.data(), rx.size(), 0);
          if (n <= 0) break;
          got += static_cast<std::uint64_t>(n);
          progress = true;
          if (mk && got >= next_mark) {
            mk->push_back(rte_rdtsc());
            next_mark += kChunk;
          }
        }
        if (!progress) {
          pollfd p[2] = {{c.get(), POLLOUT, 0}, {s.get(), POLLIN, 0}};
          ::poll(p, 2, 10);
        }
      }
    };
    transfer(8 * 1024 * 1024);
    mk = &marks;
    KernelPhase ph(clk);
    transfer(opt.bulk_bytes);
    ph.end(opt.bulk_bytes);
    Figures f;
    fill_rates(f, ph.m, median_chunk_gbps(clk, ph.start, marks) * 1e9 / 8.0);
    f.gbps = f.ops_per_sec * 8.0 / 1e9;
    f.gbps_wall = f.ops_per_sec_wall * 8.0 / 1e9;
    f.samples = marks.size();
    cr->kernel = f;
    const auto at = cr->note.find("@KW");
    if (at != std::string::npos) cr->note.replace(at, 3, fmt("%.2f", f.gbps_wall));
    KernelTcp::abort(c, s);
  }

  if (CaseResult* cr = find("tcp_cps")) {
    cycles.clear();
    std::array<std::uint8_t, kMsg> req{}, srv{}, rsp{};
    std::string stopped;
    KernelPhase ph(clk);
    std::uint64_t done = 0;
    for (; done < opt.kernel_iterations; ++done) {
      const std::uint64_t t0 = rte_rdtsc();
      Fd c = k.socket();
      try {
        k.connect(c);
      } catch (const KernelError& e) {
        stopped = e.what;  // EADDRNOTAVAIL: every local port in TIME-WAIT
        break;
      }
      Fd s = k.accept();
      if (!send_all(c.get(), req.data(), kMsg) || !recv_all(s.get(), srv.data(), kMsg) ||
          !send_all(s.get(), srv.data(), kMsg) || !recv_all(c.get(), rsp.data(), kMsg))
        throw KernelError{errno_text("request/response")};
      c.reset();  // the client closes first: FIN, TIME-WAIT on its side
      std::uint8_t eof = 0;
      if (::recv(s.get(), &eof, 1, 0) != 0) throw KernelError{"expected EOF"};
      s.reset();
      cycles.push_back(rte_rdtsc() - t0);
    }
    ph.end(done);
    if (done == 0) {
      cr->kernel_note = stopped;
    } else {
      Figures f;
      fill_rates(f, ph.m, fill_samples(f, clk, cycles));
      cr->kernel = f;
      if (!stopped.empty()) cr->note += "; kernel stopped after " + std::to_string(done) + " cycles: " + stopped;
    }
  }

  if (CaseResult* cr = find("tcp_idle_conn_memory")) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const rlim_t need = 2 * opt.idle_conns + 64;
    if (rl.rlim_cur < need && rl.rlim_max >= need) {
      rl.rlim_cur = need;
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::string err;
    const auto before = slab_bytes(err);
    if (!err.empty()) {
      cr->kernel_note = err;
    } else {
      std::vector<Fd> fds;
      fds.reserve(2 * opt.idle_conns);
      std::array<std::uint8_t, kMsg> req{}, srv{}, rsp{};
      for (std::uint32_t i = 0; i < opt.idle_conns; ++i) {
        Fd c = k.socket();
        k.connect(c);
        Fd s = k.accept();
        if (!send_all(c.get(), req.data(), kMsg) || !recv_all(s.get(), srv.data(), kMsg) ||
            !send_all(s.get(), srv.data(), kMsg) || !recv_all(c.get(), rsp.data(), kMsg))
          throw KernelError{errno_text("request/response")};
        fds.push_back(std::move(c));
        fds.push_back(std::move(s));
      }
      const auto during = slab_bytes(err);
      double sum = 0;
      std::vector<std::pair<double, std::string>> by_cache;
      for (const auto& [name, bytes] : during) {
        const auto it = before.find(name);
        const double d = bytes - (it == before.end() ? 0 : it->second);
        sum += d;
        by_cache.emplace_back(d, name);
      }
      std::sort(by_cache.rbegin(), by_cache.rend());
      const double per = sum / static_cast<double>(fds.size());
      Figures f;
      f.samples = fds.size();
      f.bytes_per_conn = per;
      cr->kernel = f;
      std::string top;
      for (std::size_t i = 0; i < std::min<std::size_t>(4, by_cache.size()); ++i)
        top += (i ? ", " : "") + by_cache[i].second + fmt(" %.0f", by_cache[i].first / static_cast<double>(fds.size()));
      cr->note += " (largest per socket: " + top + "; other processes' slab use is noise)";
      for (std::size_t i = 0; i + 1 < fds.size(); i += 2) linger0(fds[i].get());
    }
  }
}

std::string goal_text(const char* goal, bool met) { return std::string(goal) + (met ? ": met" : ": MISSED"); }

}  // namespace

std::vector<CaseResult> bench_tcp(const TcpOptions& opt, rte_mempool* pool) {
  auto cases = run_ustack(opt, pool);
  try {
    run_kernel(opt, cases);
  } catch (const KernelError& e) {
    for (auto& c : cases)
      if (!c.kernel && c.kernel_note.empty()) c.kernel_note = "kernel TCP over loopback failed: " + e.what;
  }
  for (auto& c : cases) {
    if (const auto at = c.note.find("@KW"); at != std::string::npos) c.note.replace(at, 3, "n/a");
    if (c.name == "tcp_handshake") {
      const double p99_us = c.ustack.p99_ns / 1000.0;
      c.goal = goal_text(fmt("p99 < 10 us (aim < 3 us); this run %.2f us", p99_us).c_str(), p99_us < 10.0) +
               (p99_us < 3.0 ? ", aim met" : ", aim missed");
    } else if (c.name == "tcp_rr64" && c.kernel) {
      const double r = c.ustack.p50_ns > 0 ? c.kernel->p50_ns / c.ustack.p50_ns : 0;
      c.goal = goal_text(fmt("round trip >= 5x faster than the kernel's loopback (p50); this run %.1fx", r).c_str(), r >= 5.0);
    } else if (c.name != "tcp_allocs" && c.ustack.allocs_per_pkt > 0) {
      c.goal = "allocations per packet must be 0: MISSED";
    }
  }
  return cases;
}

}  // namespace ustack::bench
