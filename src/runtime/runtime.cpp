#include "runtime/runtime.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "drivers/fault.hpp"
#include "drivers/pcap_tee.hpp"
#include "runtime/arp_share.hpp"
#include "drivers/tx_batch.hpp"
#include "runtime/eal_args.hpp"
#include "runtime/engine.hpp"
#include "runtime/mcast_steer.hpp"
#include "runtime/tcp_steer.hpp"
#include "runtime/telemetry.hpp"
#include "services/tcp_services.hpp"
#include "services/udp_services.hpp"
#include "shim/hub.hpp"
#include "shim/lcore.hpp"

namespace ustack {

namespace {

// A capture flushed on every loop iteration would make a write() per
// iteration; this wrapper passes flush() through at most every 100 ms (and
// always at shutdown, which calls the tee directly).
class ThrottledFlush final : public Device {
 public:
  static constexpr TimeNs kPeriod = 100 * kNsPerMs;
  explicit ThrottledFlush(Device& inner) : inner_(inner) {}
  const DeviceCaps& caps() const override { return inner_.caps(); }
  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override { return inner_.rx_burst(pkts, now); }
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override { return inner_.tx_burst(pkts, now); }
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return inner_.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return inner_.set_allmulticast(on); }
  void flush(TimeNs now) override {
    if (now < next_) return;
    next_ = now + kPeriod;
    inner_.flush(now);
  }

 private:
  Device& inner_;
  TimeNs next_ = 0;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool contains_nocase(const std::string& s, std::string_view what) {
  auto it = std::search(s.begin(), s.end(), what.begin(), what.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  return it != s.end();
}

// One line for a failed rte_eal_init: what getopt said about a bad option if
// anything (it is the most specific), else the last line EAL logged.
std::string eal_error_line(const std::string& log, const std::string& err_text, int err) {
  std::string best;
  for (const auto& line : lines_of(err_text)) {
    if (contains_nocase(line, "unrecognized option") || contains_nocase(line, "invalid option") ||
        contains_nocase(line, "requires an argument")) {
      const auto colon = line.find(": ");
      best = colon == std::string::npos ? line : line.substr(colon + 2);
      break;
    }
  }
  if (best.empty()) {
    for (const auto& line : lines_of(log))
      if (line.find("Error - exiting") == std::string::npos) best = line;
  }
  std::string msg = "EAL initialisation failed (" + std::string(rte_strerror(err)) + ")";
  if (!best.empty()) msg += ": " + best;
  return msg;
}

// The first line of the EAL log that says a device failed to come up (the
// driver's own reason comes before the bus's summary).
std::string first_failure(const std::string& log) {
  for (const auto& line : lines_of(log))
    if (contains_nocase(line, "fail") || contains_nocase(line, "error") || contains_nocase(line, "no such"))
      return line;
  return {};
}

// Per-queue capture file: FILE, or FILE with "-qN" before the extension.
std::string capture_path(const std::string& base, std::uint16_t queue, std::uint16_t nb_queues) {
  if (nb_queues <= 1) return base;
  const std::size_t slash = base.rfind('/');
  std::size_t dot = base.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0 ||
      (slash != std::string::npos && dot == slash + 1))
    dot = base.size();
  return base.substr(0, dot) + "-q" + std::to_string(queue) + base.substr(dot);
}

sigset_t control_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}

void out_line(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string cpu_list_text(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

std::string bytes_text(std::uint64_t b) {
  if (b % (1u << 20) == 0 && b) return std::to_string(b >> 20) + "M";
  if (b % (1u << 10) == 0 && b) return std::to_string(b >> 10) + "K";
  return std::to_string(b);
}

services::ServiceKind service_kind(TcpServiceSpec::Kind k) {
  switch (k) {
    case TcpServiceSpec::Kind::echo: return services::ServiceKind::echo;
    case TcpServiceSpec::Kind::discard: return services::ServiceKind::discard;
    case TcpServiceSpec::Kind::source: break;
  }
  return services::ServiceKind::source;
}

// Each lcore's UDP: a socket per service plus a few spare, each with a
// queue of 64 datagrams. The services drain their queues in the readable
// callback, so the queues hold mbufs only within one delivery; the pool
// still counts them full (udp_mbufs()).
UdpConfig udp_config(const AppOptions& o) {
  UdpConfig c;
  c.max_sockets = static_cast<std::uint16_t>(o.udp_echo.size() + o.joins.size() + (o.mcast_send ? 1 : 0) + 4);
  c.rx_queue_datagrams = 64;
  return c;
}
unsigned udp_mbufs(const UdpConfig& c) { return unsigned{c.max_sockets} * c.rx_queue_datagrams; }

tcp::TcpConfig tcp_config(const TcpOptionsCli& o) {
  tcp::TcpConfig c;
  c.max_connections = o.max_conns;
  c.defaults.sndbuf = o.sndbuf;
  c.defaults.rcvbuf = o.rcvbuf;
  c.defaults.congestion = o.congestion;
  c.defaults.sack = o.sack;
  c.defaults.timestamps = o.timestamps;
  c.defaults.nagle = o.nagle;
  c.rtt.min_rto = static_cast<TimeNs>(o.min_rto_ms) * kNsPerMs;
  return c;
}

}  // namespace

// One lcore's world: its queue, optional capture, and the stack's engine.
struct alignas(RTE_CACHE_LINE_SIZE) LcoreState {
  const TscClock* clock = nullptr;
  const std::atomic<bool>* stop = nullptr;
  unsigned lcore_id = 0;
  std::uint16_t queue = 0;
  std::unique_ptr<EthdevQueue> q;
  std::unique_ptr<PcapTee> tee;
  std::unique_ptr<ArpShareDevice> share;
  std::unique_ptr<ThrottledFlush> throttle;
  std::unique_ptr<FaultInjector> fault;
  std::unique_ptr<TcpSteerDevice> steer;
  std::unique_ptr<McastSteerDevice> msteer;
  std::unique_ptr<Engine> engine;
  // The thread shim's lcore half: the engine's loop hook, built once TCP is.
  std::unique_ptr<shim::ShimLcore> shim;
  rte_mempool* pool = nullptr;
  // Services and clients on this lcore's TCP: after the engine, so that they
  // go first (a service takes its handler back from connections still open).
  std::vector<std::unique_ptr<services::TcpService>> services;
  std::vector<std::unique_ptr<services::TcpGet>> gets;  // queue 0 only
  std::vector<std::unique_ptr<services::UdpEcho>> udp_echo;
  std::vector<std::unique_ptr<services::McastJoin>> joins;  // queue 0 only (it owns IGMP)
  std::unique_ptr<services::McastSender> sender;            // queue 0 only
  PingSet* pings = nullptr;  // set on the lcore that sends pings
  std::atomic<bool> stopped{false};
  // Published by the lcore every iteration for the control thread.
  std::atomic<std::uint32_t> tcp_connections{0};
  std::atomic<std::uint32_t> tcp_time_wait{0};
};

unsigned Runtime::pool_size(unsigned rx_desc, unsigned tx_desc, unsigned nb_lcores, unsigned arp_entries,
                            unsigned arp_pending) {
  const unsigned need = rx_desc + tx_desc + Engine::kRxBurst * nb_lcores + TxBatch::kCapacity +
                        arp_entries * arp_pending + kMbufCache * nb_lcores + kMbufHeadroom;
  unsigned n = 1;
  while (n - 1 < need) n <<= 1;
  return n - 1;
}

Runtime::PoolPlan Runtime::plan_pool(unsigned base, std::uint32_t max_conns, std::uint32_t sndbuf,
                                     std::uint32_t rcvbuf, unsigned mss) {
  PoolPlan p;
  p.base = base;
  const std::uint64_t m = mss ? mss : 536;
  const std::uint64_t per_conn = (sndbuf + m - 1) / m + (rcvbuf + m - 1) / m;
  p.tcp_want = per_conn * max_conns;
  const std::uint64_t room = kPoolCap > base ? kPoolCap - base : 0;
  p.tcp = static_cast<unsigned>(std::min<std::uint64_t>(p.tcp_want, std::max<std::uint64_t>(room, per_conn)));
  unsigned n = 1;
  while (n - 1 < base + p.tcp) n <<= 1;
  p.total = n - 1;
  return p;
}

std::unique_ptr<Runtime> Runtime::create(const std::vector<std::string>& eal_args, const AppOptions& opts,
                                         std::string& err) {
  // Block the control signals before EAL starts any thread, so that every
  // thread inherits the mask and only the control thread's sigtimedwait sees them.
  // A shell starts background commands with SIGINT ignored, and an ignored
  // signal is discarded even while a thread waits for it: restore the
  // default disposition first (it never runs: the signals stay blocked).
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) signal(sig, SIG_DFL);
  // EAL pins this thread to the main lcore; remember where the process may
  // run so that the control thread does not compete with a poll loop.
  cpu_set_t process_cpus;
  CPU_ZERO(&process_cpus);
  const bool have_cpus = sched_getaffinity(0, sizeof process_cpus, &process_cpus) == 0;
  const sigset_t sigs = control_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // EAL keeps pointers into argv; this storage lives as long as the process.
  static std::vector<std::string> storage;
  static std::vector<char*> argv;
  storage = eal_args;
  argv.clear();
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  // Capture EAL's log during init: on failure it becomes the one-line error,
  // on success it is passed on to stdout where DPDK would have printed it.
  // What EAL prints straight to stderr (getopt's complaints, its FATAL
  // alert) is captured the same way, so that a failure is one line.
  char* logbuf = nullptr;
  std::size_t loglen = 0;
  std::FILE* mem = open_memstream(&logbuf, &loglen);
  if (mem) rte_openlog_stream(mem);
  std::fflush(stderr);
  std::FILE* errcap = std::tmpfile();
  const int saved_stderr = errcap ? dup(STDERR_FILENO) : -1;
  if (saved_stderr >= 0) dup2(fileno(errcap), STDERR_FILENO);

  const int rc = rte_eal_init(static_cast<int>(storage.size()), argv.data());
  const int eal_errno = rte_errno;

  std::string err_text;
  if (saved_stderr >= 0) {
    std::fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    std::rewind(errcap);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, errcap)) > 0) err_text.append(buf, n);
  }
  if (errcap) std::fclose(errcap);
  std::string log;
  if (mem) {
    rte_openlog_stream(nullptr);
    std::fclose(mem);
    if (logbuf) log.assign(logbuf, loglen);
    std::free(logbuf);
  }
  if (rc < 0) {
    err = eal_error_line(log, err_text, eal_errno);
    return nullptr;
  }
  std::fputs(log.c_str(), stdout);
  std::fflush(stdout);
  std::fputs(err_text.c_str(), stderr);

  std::unique_ptr<Runtime> rt(new Runtime());
  rt->eal_ready_ = true;
  rt->eal_log_ = std::move(log);
  // Every CPU a poll loop may run on (an lcore of --lcores may have several).
  {
    cpu_set_t polling;
    CPU_ZERO(&polling);
    unsigned lc;
    RTE_LCORE_FOREACH(lc) {
      const rte_cpuset_t set = rte_lcore_cpuset(lc);
      CPU_OR(&polling, &polling, &set);
    }
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &polling)) rt->polling_cpus_.push_back(c);
  }
  // Dedicated-core mode: application threads never share a CPU with a loop
  // that never yields (the shim's Hub checks each thread again at attach).
  std::vector<int> overlap;
  for (int c : opts.app_cpus)
    if (std::find(rt->polling_cpus_.begin(), rt->polling_cpus_.end(), c) != rt->polling_cpus_.end())
      overlap.push_back(c);
  if (!overlap.empty()) {
    err = "--app-cpus " + cpu_list_text(opts.app_cpus) + " overlaps the CPU(s) the lcores poll on (" +
          cpu_list_text(overlap) + ", from EAL's -l/--lcores): give application threads CPUs of their own";
    return nullptr;
  }
  if (have_cpus) {
    // The control thread runs on a CPU without a poll loop when there is one.
    cpu_set_t spare = process_cpus;
    for (int c : rt->polling_cpus_) CPU_CLR(c, &spare);
    rt->control_cpus_ = CPU_COUNT(&spare) > 0 ? spare : process_cpus;
    rt->have_control_cpus_ = true;
    if (opts.app_cpus.empty() && CPU_COUNT(&spare) > 0) {
      rt->app_cpus_ = spare;
      rt->have_app_cpus_ = true;
    }
  }
  if (!opts.app_cpus.empty()) {
    CPU_ZERO(&rt->app_cpus_);
    for (int c : opts.app_cpus) CPU_SET(c, &rt->app_cpus_);
    rt->have_app_cpus_ = true;
  }
  if (!rt->setup(opts, err)) return nullptr;  // the destructor cleans up
  return rt;
}

bool Runtime::setup(const AppOptions& opts, std::string& err) {
  opts_ = opts;
  clock_.start();
  {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const TimeNs wall = static_cast<TimeNs>(ts.tv_sec) * kNsPerSec + static_cast<TimeNs>(ts.tv_nsec);
    wall_offset_ns_ = wall - clock_.now();
  }

  // One queue per lcore: the main lcore takes queue 0, workers the rest in order.
  std::vector<unsigned> lcore_ids;
  lcore_ids.push_back(rte_get_main_lcore());
  unsigned id;
  RTE_LCORE_FOREACH_WORKER(id) { lcore_ids.push_back(id); }
  const auto nq = static_cast<std::uint16_t>(lcore_ids.size());

  if (!rte_eth_dev_is_valid_port(opts.port)) {
    const unsigned n = rte_eth_dev_count_avail();
    const std::string why = first_failure(eal_log_);
    err = "no DPDK port " + std::to_string(opts.port) + " (" + std::to_string(n) + " available" +
          (why.empty() ? "; name a device with --vdev=net_af_packet0,iface=IF before '--', or bind a NIC to vfio-pci"
                       : "; " + why) +
          ")";
    return false;
  }

  StackConfig sc;
  const UdpConfig ucfg = udp_config(opts);
  const unsigned base_mbufs =
      pool_size(opts.rx_desc, opts.tx_desc, nq, sc.arp.entries, sc.arp.pending_per_entry) + udp_mbufs(ucfg);
  // The MSS with timestamps at the configured (or the usual) MTU: the
  // smallest payload a full segment carries, so the most mbufs per buffer.
  const unsigned mss = opts.mtu.value_or(1500) > 52 ? opts.mtu.value_or(1500) - 52u : 536u;
  const PoolPlan plan = plan_pool(base_mbufs, opts.tcp.max_conns, opts.tcp.sndbuf, opts.tcp.rcvbuf, mss);
  const unsigned n_mbufs = plan.total;
  out_line("mempool: " + std::to_string(n_mbufs) + " mbufs per queue (" + std::to_string(base_mbufs) +
           " for rings, bursts, ARP, caches and UDP queues; " + std::to_string(n_mbufs - base_mbufs) + " for TCP buffers of " +
           std::to_string(opts.tcp.max_conns) + " connections x (" + bytes_text(opts.tcp.sndbuf) + " + " +
           bytes_text(opts.tcp.rcvbuf) + "), which would take " + std::to_string(plan.tcp_want) +
           (plan.tcp < plan.tcp_want ? ": overcommitted)" : ")"));
  int sock = rte_eth_dev_socket_id(opts.port);
  if (sock < 0) sock = SOCKET_ID_ANY;
  for (std::uint16_t q = 0; q < nq; ++q) {
    char name[RTE_MEMPOOL_NAMESIZE];
    std::snprintf(name, sizeof name, "ustack_p%u_q%u", opts.port, q);
    rte_mempool* mp = rte_pktmbuf_pool_create(name, n_mbufs, kMbufCache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, sock);
    if (!mp) {
      err = std::string("mempool ") + name + " (" + std::to_string(n_mbufs) +
            " mbufs): " + rte_strerror(rte_errno) + " (more memory: -m MB, or hugepages)";
      return false;
    }
    pools_.push_back(mp);
  }

  EthdevConfig ec;
  ec.port_id = opts.port;
  ec.pools = pools_;
  ec.rx_desc = opts.rx_desc;
  ec.tx_desc = opts.tx_desc;
  ec.mtu = opts.mtu;
  ec.promiscuous = opts.promiscuous;
  port_ = EthdevPort::open(ec, err);
  if (!port_) return false;

  sc.mac = opts.mac ? *opts.mac : port_->caps().mac;
  if (sc.mac.is_zero() || sc.mac.is_multicast()) {
    // Some PMDs (net_ring) report no usable address. Take a locally
    // administered one derived from our IP, so it is stable across runs.
    const std::uint32_t a = opts.ip.addr.v;
    sc.mac = MacAddr{{0x02, 0x00, static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                      static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)}};
    out_line("port " + std::to_string(opts.port) + " reports no usable MAC; using " + sc.mac.to_string() +
             " (set one with --mac)");
    if (!port_->accept_mac(sc.mac)) {
      err = "port " + std::to_string(opts.port) + ": reports no MAC and cannot receive for " + sc.mac.to_string() +
            "; give --mac";
      return false;
    }
  }
  sc.ip = opts.ip;
  sc.gateway = opts.gateway;
  sc.vlan = opts.vlan;
  if (opts.mac && !port_->accept_mac(*opts.mac)) {
    err = "port " + std::to_string(opts.port) + ": cannot receive for MAC " + opts.mac->to_string() +
          " (no MAC filter and no promiscuous mode)";
    return false;
  }

  if (!opts.pings.empty()) pings_ = std::make_unique<PingSet>(opts.pings);
  if (nq > 1) {
    arp_share_ = std::make_unique<ArpShare>();
    if (!arp_share_->init(nq, sock, err)) return false;
    // Multicast to queue 0, whose lcore owns IGMP and the joined sockets (mcast_steer.hpp).
    mcast_steer_ = std::make_unique<McastSteer>();
    if (!mcast_steer_->init("ustack_mcast_q0", sock, err)) return false;
  }

  // Start before the lcores are built: RSS is programmed and read back at
  // start, and each lcore's engine gets its own copy of the result.
  if (!port_->start(err)) return false;
  out_line(port_->describe());
  for (const auto& line : rss_report(opts.port, port_->rss())) out_line(line);
  if (nq > 1 && !port_->rss().known()) {
    // Segments of one connection may reach any queue: move each to the lcore
    // that owns it, and give every lcore's TCP that model (tcp_steer.hpp).
    tcp_steer_ = std::make_unique<TcpSteer>();
    if (!tcp_steer_->init(nq, sock, err)) return false;
    out_line("port " + std::to_string(opts.port) + ": tcp steered in software over " + std::to_string(nq) +
             " queues (symmetric Toeplitz key, " + std::to_string(TcpSteer::kRetaSize) +
             "-entry table, rings between lcores)");
  }
  // A real NIC may take a few seconds to bring the link up; wait up to 3 s.
  LinkStatus link = port_->link();
  for (int i = 0; i < 30 && !link.up; ++i) {
    timespec ts{0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
    link = port_->link();
  }
  out_line("port " + std::to_string(opts.port) + ": link " + link.to_string());

  const TimeNs now = clock_.now();
  for (std::uint16_t q = 0; q < nq; ++q) {
    auto st = std::make_unique<LcoreState>();
    st->clock = &clock_;
    st->stop = &loops_stop_;
    st->lcore_id = lcore_ids[q];
    st->queue = q;
    st->q = std::make_unique<EthdevQueue>(*port_, q);
    Device* dev = st->q.get();
    if (!opts.pcap_out.empty()) {
      const std::string path = capture_path(opts.pcap_out, q, nq);
      st->tee = PcapTee::open(*dev, path, wall_offset_ns_, err);
      if (!st->tee) return false;
      dev = st->tee.get();
    }
    if (st->tee) {
      // Only the capture's flush is throttled: the fault injector above it
      // must release held and delayed packets every iteration.
      st->throttle = std::make_unique<ThrottledFlush>(*dev);
      dev = st->throttle.get();
    }
    if (opts.faults.any()) {
      // Above the capture, so the capture shows the wire: what the kernel
      // sent (also what we then drop) and what reached it.
      FaultConfig fc;
      fc.drop = opts.faults.drop;
      fc.duplicate = opts.faults.duplicate;
      fc.reorder = opts.faults.reorder;
      fc.corrupt = opts.faults.corrupt;
      st->fault = std::make_unique<FaultInjector>(*dev, opts.faults.seed + q, fc, fc);
      dev = st->fault.get();
    }
    if (tcp_steer_) {
      st->steer = std::make_unique<TcpSteerDevice>(*dev, *tcp_steer_, q);
      dev = st->steer.get();
    }
    if (mcast_steer_) {
      st->msteer = std::make_unique<McastSteerDevice>(*dev, *mcast_steer_, q == 0);
      dev = st->msteer.get();
    }
    if (arp_share_) {
      st->share = std::make_unique<ArpShareDevice>(*dev, *arp_share_, q, pools_[q]);
      dev = st->share.get();
    }
    // One announcement per host, not one per lcore.
    StackConfig lc = sc;
    lc.gratuitous_arp_on_start = sc.gratuitous_arp_on_start && q == 0;
    // Each lcore owns its copy of the steering state (nothing shared between
    // lcores), with its own queue.
    RssInfo rss = tcp_steer_ ? tcp_steer_->info(q) : port_->rss();
    rss.queue = q;
    st->engine = std::make_unique<Engine>(*dev, lc, pools_[q], now, std::move(rss));
    st->pool = pools_[q];
    tcp::TcpLayer& tcp = st->engine->enable_tcp(tcp_config(opts.tcp));
    // UDP on every lcore; IGMP (and with it the port's multicast filter) on queue 0 only.
    const IgmpConfig icfg;
    UdpLayer& udp = st->engine->enable_udp(ucfg, q == 0 ? &icfg : nullptr);
    // The shim's lcore half, with this lcore's TCP and UDP: a bound
    // SOCK_DGRAM handle spans every lcore, and its membership calls go to
    // queue 0's IgmpHost whichever lcore the handle is on (docs/api.md).
    if (opts.shim_threads > 0) {
      shim::LcoreConfig shc;
      shc.max_threads = opts.shim_threads;
      st->shim = std::make_unique<shim::ShimLcore>(tcp, shc, &udp);
      st->engine->set_hook(st->shim.get());
    }
    for (const auto& sv : opts.services) {
      auto svc = std::make_unique<services::TcpService>(tcp, service_kind(sv.kind), sv.port, sv.bytes);
      if (!svc->listening()) {
        err = "cannot listen on TCP port " + std::to_string(sv.port);
        return false;
      }
      st->services.push_back(std::move(svc));
    }
    for (std::uint16_t port : opts.udp_echo) {
      auto e = std::make_unique<services::UdpEcho>(udp, port);
      if (!e->ok()) {
        err = "cannot bind UDP port " + std::to_string(port);
        return false;
      }
      st->udp_echo.push_back(std::move(e));
    }
    if (q == 0) {
      for (const auto& j : opts.joins) {
        auto m = std::make_unique<services::McastJoin>(udp, j.group, j.port, j.source);
        if (!m->ok()) {
          err = "--join " + j.group.to_string() + ":" + std::to_string(j.port) + ": cannot bind UDP port " +
                std::to_string(j.port);
          return false;
        }
        st->joins.push_back(std::move(m));
      }
      if (const auto& m = opts.mcast_send) {
        const std::size_t room = rte_pktmbuf_data_room_size(pools_[q]) - RTE_PKTMBUF_HEADROOM;
        const std::size_t max = std::min(udp.max_payload(), room - 8);
        if (m->size > max) {
          err = "--size " + std::to_string(m->size) + ": more than one datagram carries here (at most " +
                std::to_string(max) + " bytes at MTU " + std::to_string(st->engine->stack().caps().mtu) + ")";
          return false;
        }
        st->sender = std::make_unique<services::McastSender>(udp, m->group, m->port, m->rate, m->size, m->ttl, m->loop,
                                                             static_cast<TimeNs>(wall_offset_ns_));
        if (!st->sender->ok()) {
          err = "--mcast-send " + m->group.to_string() + ":" + std::to_string(m->port) + ": cannot open a UDP socket";
          return false;
        }
      }
      for (const auto& g : opts.gets)
        st->gets.push_back(std::make_unique<services::TcpGet>(
            g.dst, g.port, g.bytes, static_cast<TimeNs>(opts.get_timeout_s * 1e9)));
    }
    if (pings_) {
      st->engine->stack().on_echo_reply(&PingSet::on_reply, pings_.get());
      if (q == 0) st->pings = pings_.get();
    }
    lcores_.push_back(std::move(st));
  }
  if (opts.shim_threads > 0) {
    std::vector<shim::ShimLcore*> shims;
    for (auto& st : lcores_) shims.push_back(st->shim.get());
    hub_ = std::make_unique<shim::Hub>(std::move(shims), polling_cpus_);
  }
  return true;
}

Engine& Runtime::engine(std::uint16_t queue) { return *lcores_.at(queue)->engine; }

Runtime::~Runtime() {
  teardown();
  if (eal_ready_) rte_eal_cleanup();
}

void Runtime::teardown() {
  telemetry_detach(this);
  if (control_.joinable()) {
    stop_.store(true);
    control_.join();
  }
  // Engines first (they hold mbufs waiting for ARP and may still flush into
  // the queue), then captures, then the port, then the pools.
  if (app_.joinable()) app_.join();  // only when run() failed to start the loops
  hub_.reset();
  const TimeNs now = eal_ready_ ? clock_.now() : 0;
  for (auto& st : lcores_) {
    st->services.clear();
    st->gets.clear();
    st->udp_echo.clear();
    st->joins.clear();
    st->sender.reset();
    st->engine.reset();
    st->msteer.reset();
    st->shim.reset();
    st->share.reset();
    st->steer.reset();
    st->fault.reset();
    if (st->tee) st->tee->flush(now);
    st->throttle.reset();
    st->tee.reset();
    st->q.reset();
  }
  lcores_.clear();
  if (port_) port_->close();
  port_.reset();
  arp_share_.reset();
  tcp_steer_.reset();
  mcast_steer_.reset();
  for (rte_mempool* mp : pools_) rte_mempool_free(mp);
  pools_.clear();
}

int Runtime::lcore_entry(void* arg) {
  auto& st = *static_cast<LcoreState*>(arg);
  Engine& engine = *st.engine;
  Stack& stack = engine.stack();
  PingSet* pings = st.pings;
  const TscClock& clock = *st.clock;
  const std::atomic<bool>& stop = *st.stop;

  tcp::TcpLayer* tcp = engine.tcp();
  const bool gets = !st.gets.empty();

  TimeNs now = clock.now();
  engine.start(now);
  if (tcp)
    for (auto& g : st.gets) g->start(*tcp, now);
  // Joins report at once (and then again, RFC 3376's robustness); the
  // publisher's first slot is now.
  for (auto& j : st.joins) {
    const UdpStatus js = j->start(now);
    if (js != UdpStatus::ok) j->set_failed(js);
  }
  services::McastSender* sender = st.sender.get();
  if (sender) sender->start(now);
  // The loop: one TSC read per iteration; everything below is sans-IO except
  // the bursts. Pings (and client deadlines) run before run_once so that its
  // flush carries what they send. TCP runs inside run_once: Stack::rx hands
  // it segments, Stack::poll fires its timers.
  while (!stop.load(std::memory_order_relaxed)) {
    now = clock.now();
    if (pings) pings->poll(stack, now);
    if (gets && tcp)
      for (auto& g : st.gets) g->poll(*tcp, now);
    if (sender) sender->poll(now);
    engine.run_once(now);
    if (tcp) {
      st.tcp_connections.store(tcp->connection_count(), std::memory_order_relaxed);
      st.tcp_time_wait.store(tcp->time_wait_count(), std::memory_order_relaxed);
    }
  }
  // Leave the groups before the last flush, so the state-change reports
  // (TO_IN {}) reach the network: the routers stop forwarding at once.
  now = clock.now();
  for (auto& j : st.joins) j->stop(now);
  engine.flush(now);
  st.stopped.store(true, std::memory_order_release);
  return 0;
}

int Runtime::run(AppMain app) {
  if (app && !hub_) {
    std::fprintf(stderr, "ustack: an application needs the thread shim: --shim-threads must be at least 1\n");
    return 1;
  }
  if (app && !have_app_cpus_) {
    std::fprintf(stderr, "ustack: no CPU left for application threads: the lcores poll on every CPU of the process "
                         "(%s); give EAL fewer lcores or name --app-cpus\n",
                 cpu_list_text(polling_cpus_).c_str());
    return 1;
  }
  telemetry_attach(this);
  out_line("ready: " + opts_.ip.to_string() + " mac " + lcores_[0]->engine->stack().config().mac.to_string() +
           (opts_.gateway ? " gw " + opts_.gateway->to_string() : std::string()) + ", " +
           std::to_string(lcores_.size()) + " lcore(s)");

  for (auto& st : lcores_) {
    if (st->queue == 0) continue;
    const int rc = rte_eal_remote_launch(&Runtime::lcore_entry, st.get(), st->lcore_id);
    if (rc != 0) {
      std::fprintf(stderr, "ustack: cannot launch lcore %u: %s\n", st->lcore_id, rte_strerror(-rc));
      stop_.store(true);
      loops_stop_.store(true);
      rte_eal_mp_wait_lcore();
      return 1;
    }
  }
  if (app) {
    // Threads the application starts inherit this thread's affinity, and
    // so stay off the polling CPUs.
    app_ = std::thread([this, app = std::move(app)] {
      const int rc = pthread_setaffinity_np(pthread_self(), sizeof app_cpus_, &app_cpus_);
      if (rc != 0) {
        std::fprintf(stderr, "ustack: cannot pin the application to its CPUs: %s\n", std::strerror(rc));
        app_status_.store(1);
      } else {
        app_status_.store(app(*hub_, stop_));
      }
      stop_.store(true);
    });
  }
  control_ = std::thread([this] {
    if (have_control_cpus_) pthread_setaffinity_np(pthread_self(), sizeof control_cpus_, &control_cpus_);
    control_loop();
    // The loops serve the application until it has returned (its calls
    // cross to them), then stop.
    if (app_.joinable()) app_.join();
    loops_stop_.store(true);
  });

  lcore_entry(lcores_[0].get());  // queue 0 on the main lcore
  rte_eal_mp_wait_lcore();
  stop_.store(true);
  control_.join();
  telemetry_detach(this);

  drain_pings(true);
  drain_gets(true);
  std::vector<LcoreSnapshot> snap = snapshot(true);
  const PortSnapshot port = port_snapshot();
  const std::vector<GetSnapshot> gets = get_snapshot();
  const double up = uptime_s();
  out_line(stats_line(up, snap, port));

  teardown();

  int status = gets_failed_ ? kExitTcpGetFailed : 0;
  if (app_status_.load() != 0) status = app_status_.load();
  if (!opts_.stats_json.empty()) {
    std::string err;
    if (!write_file(opts_.stats_json, stats_json(up, snap, port, gets), err)) {
      std::fprintf(stderr, "ustack: --stats-json: %s\n", err.c_str());
      status = 1;
    }
  }
  out_line("stopped");
  return status;
}

void Runtime::control_loop() {
  const sigset_t sigs = control_signals();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(opts_.stats_interval_s);
  auto next_stats = start + std::chrono::duration_cast<Clock::duration>(interval);
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts_.duration_s));

  while (!stop_.load()) {
    timespec ts{0, 50 * 1000 * 1000};
    siginfo_t info;
    const int sig = sigtimedwait(&sigs, &info, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      out_line(std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
      stop_.store(true);
      break;
    }
    if (sig == SIGUSR1) print_stats();
    drain_pings(false);
    log_multicast_once();
    if (!opts_.gets.empty() && drain_gets(false)) {
      out_line("tcp-get finished, stopping");
      stop_.store(true);
      break;
    }
    const auto t = Clock::now();
    if (opts_.stats_interval_s > 0 && t >= next_stats) {
      print_stats();
      next_stats += std::chrono::duration_cast<Clock::duration>(interval);
      if (next_stats < t) next_stats = t + std::chrono::duration_cast<Clock::duration>(interval);
    }
    if (opts_.duration_s > 0 && t >= end) {
      out_line("duration reached, stopping");
      stop_.store(true);
      break;
    }
  }
}

// Once each: the port would not take the exact multicast list (all-multicast
// instead, the stack's filter drops what nobody joined), and joins refused.
void Runtime::log_multicast_once() {
  if (lcores_.empty() || !lcores_[0]->engine) return;
  const Engine& e = *lcores_[0]->engine;
  if (!mc_fallback_logged_ && e.mc_fallbacks() != 0) {
    mc_fallback_logged_ = true;
    out_line("port " + std::to_string(opts_.port) + ": multicast filter: the port refused the exact group list; " +
             (e.mc_failures() == 0 ? "all-multicast on instead (unjoined groups are dropped in software)"
                                   : "all-multicast refused too (only groups the port passes anyway arrive)"));
  }
  if (!join_failures_logged_) {
    for (const auto& j : lcores_[0]->joins) {
      if (const auto f = j->failure()) {
        join_failures_logged_ = true;
        out_line("join " + j->group().to_string() + ":" + std::to_string(j->port()) + ": refused: " + to_string(*f));
      }
    }
  }
}

void Runtime::print_stats() { out_line(stats_line(uptime_s(), snapshot(false), port_snapshot())); }

void Runtime::drain_pings(bool final) {
  if (!pings_) return;
  for (auto& s : pings_->sessions()) {
    s->drain([&](std::uint16_t seq, TimeNs rtt) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "ping %s: seq=%u bytes=%zu rtt=%.3f ms", s->dst().to_string().c_str(), seq,
                    PingSession::kPayload + 8, static_cast<double>(rtt) / 1e6);
      out_line(buf);
    });
    if (!s->summary_printed && (s->finished() || final)) {
      s->summary_printed = true;
      out_line(s->summary());
    }
  }
}

bool Runtime::drain_gets(bool final) {
  if (lcores_.empty()) return true;
  const auto& gets = lcores_[0]->gets;
  gets_printed_.resize(gets.size(), false);
  bool all = true;
  for (std::size_t i = 0; i < gets.size(); ++i) {
    const services::TcpGet& g = *gets[i];
    const std::string who = "tcp-get " + g.dst().to_string() + ":" + std::to_string(g.port());
    if (!g.done()) {
      all = false;
      if (final && !gets_printed_[i]) {
        gets_printed_[i] = true;
        gets_failed_ = true;
        out_line(who + ": FAILED (stopped before the end), " + std::to_string(g.bytes_so_far()) + " bytes so far");
      }
      continue;
    }
    if (gets_printed_[i]) continue;
    gets_printed_[i] = true;
    const auto& r = g.result();
    const double secs = static_cast<double>(r.elapsed) / 1e9;
    char buf[320];
    if (r.outcome == services::TcpGet::Outcome::ok) {
      std::snprintf(buf, sizeof buf,
                    ": ok, %llu bytes in %.3f s (%.1f Mbit/s), pattern ok; connect %.3f ms, mss %u, wscale %u/%u, "
                    "sack %s, timestamps %s, retransmits %llu",
                    static_cast<unsigned long long>(r.bytes), secs,
                    secs > 0 ? static_cast<double>(r.bytes) * 8 / secs / 1e6 : 0.0,
                    static_cast<double>(r.connect_time) / 1e6, r.conn.mss, r.conn.snd_wscale, r.conn.rcv_wscale,
                    r.conn.sack ? "on" : "off", r.conn.timestamps ? "on" : "off",
                    static_cast<unsigned long long>(r.conn.retransmits));
    } else {
      gets_failed_ = true;
      std::string why = to_string(r.outcome);
      if (r.outcome == services::TcpGet::Outcome::mismatch)
        why += " at byte " + std::to_string(r.mismatch_at);
      if (g.expected() && (r.outcome == services::TcpGet::Outcome::short_count ||
                           r.outcome == services::TcpGet::Outcome::long_count))
        why += ": expected " + std::to_string(*g.expected());
      std::snprintf(buf, sizeof buf, ": FAILED (%s) after %.3f s, %llu bytes", why.c_str(), secs,
                    static_cast<unsigned long long>(r.bytes));
    }
    out_line(who + buf);
  }
  return all;
}

std::vector<GetSnapshot> Runtime::get_snapshot() const {
  std::vector<GetSnapshot> v;
  if (lcores_.empty()) return v;
  for (const auto& gp : lcores_[0]->gets) {
    const services::TcpGet& g = *gp;
    GetSnapshot s;
    s.target = g.dst().to_string() + ":" + std::to_string(g.port());
    s.expected = g.expected();
    if (!g.done()) {
      s.outcome = "running";
      s.bytes = g.bytes_so_far();
    } else {
      const auto& r = g.result();
      s.outcome = to_string(r.outcome);
      s.ok = r.outcome == services::TcpGet::Outcome::ok;
      s.bytes = r.bytes;
      if (r.outcome == services::TcpGet::Outcome::mismatch) s.mismatch_at = r.mismatch_at;
      s.elapsed_s = static_cast<double>(r.elapsed) / 1e9;
      s.connect_s = static_cast<double>(r.connect_time) / 1e9;
      s.retransmits = r.conn.retransmits;
      s.sack = r.conn.sack;
      s.timestamps = r.conn.timestamps;
      s.snd_wscale = r.conn.snd_wscale;
      s.rcv_wscale = r.conn.rcv_wscale;
      s.mss = r.conn.mss;
    }
    v.push_back(s);
  }
  return v;
}

std::vector<LcoreSnapshot> Runtime::snapshot(bool stopped) const {
  std::vector<LcoreSnapshot> v;
  for (const auto& st : lcores_) {
    LcoreSnapshot s;
    s.lcore_id = st->lcore_id;
    s.queue = st->queue;
    const bool done = stopped && st->stopped.load(std::memory_order_acquire);
    if (st->engine) {
      s.read(st->engine->stack().counters());
      // The ARP table is the lcore's own; read it only once the lcore is done.
      if (done) s.arp_entries = st->engine->stack().arp().size();
      if (const tcp::TcpLayer* t = st->engine->tcp()) {
        s.tcp_capacity = t->capacity();
        s.tcp_connections = done ? t->connection_count() : st->tcp_connections.load(std::memory_order_relaxed);
        s.tcp_time_wait = done ? t->time_wait_count() : st->tcp_time_wait.load(std::memory_order_relaxed);
      }
    }
    if (st->pool) {
      // Counts the lcore caches too (racy reads of their lengths while the
      // lcores run: a debugging count, exact once they stopped).
      s.mbuf_available = rte_mempool_avail_count(st->pool);
      s.mbuf_pool_size = st->pool->size;
    }
    for (const auto& svc : st->services) {
      ServiceSnapshot sv;
      sv.kind = to_string(svc->kind());
      sv.port = svc->port();
      sv.source_bytes = svc->source_bytes();
      const auto& c = svc->counters();
      sv.connections = c.connections.get();
      sv.active = c.active.get();
      sv.completed = c.completed.get();
      sv.failed = c.failed.get();
      sv.bytes_in = c.bytes_in.get();
      sv.bytes_out = c.bytes_out.get();
      s.services.push_back(sv);
    }
    auto udp_counts = [](UdpServiceSnapshot& u, const services::UdpServiceCounters& c) {
      u.datagrams_in = c.datagrams_in.get();
      u.bytes_in = c.bytes_in.get();
      u.datagrams_out = c.datagrams_out.get();
      u.bytes_out = c.bytes_out.get();
      u.send_failed = c.send_failed.get();
      u.feed = c.feed.get();
      u.missing = c.missing.get();
      u.gap_events = c.gap_events.get();
      u.late = c.late.get();
      u.not_feed = c.not_feed.get();
    };
    for (const auto& e : st->udp_echo) {
      UdpServiceSnapshot u;
      u.kind = "udp-echo";
      u.target = std::to_string(e->port());
      udp_counts(u, e->counters());
      u.queue_drops = e->queue_drops();
      s.udp_services.push_back(u);
    }
    for (const auto& jn : st->joins) {
      UdpServiceSnapshot u;
      u.kind = "join";
      u.target = jn->group().to_string() + ":" + std::to_string(jn->port()) +
                 (jn->source() ? "@" + jn->source()->to_string() : std::string());
      udp_counts(u, jn->counters());
      u.queue_drops = jn->queue_drops();
      if (const auto f = jn->failure()) u.status = std::string("join refused: ") + to_string(*f);
      s.udp_services.push_back(u);
    }
    if (const auto& snd = st->sender) {
      UdpServiceSnapshot u;
      u.kind = "mcast-send";
      u.target = snd->group().to_string() + ":" + std::to_string(snd->port());
      udp_counts(u, snd->counters());
      u.rate = snd->rate();
      u.size = snd->size();
      s.udp_services.push_back(u);
    }
    if (st->engine && st->engine->igmp()) {
      s.igmp_owner = true;
      s.mc_filter_programmed = st->engine->mc_programmed();
      s.mc_filter_fallbacks = st->engine->mc_fallbacks();
    }
    if (st->msteer) {
      s.mcast_steered_out = st->msteer->steered_out();
      s.mcast_steered_in = st->msteer->steered_in();
      s.mcast_steer_dropped = st->msteer->dropped();
    }
    if (st->fault && done) {
      s.fault_rx = st->fault->rx_counters();
      s.fault_tx = st->fault->tx_counters();
    }
    if (st->share) {
      s.arp_shared = st->share->shared();
      s.arp_share_dropped = st->share->dropped();
    }
    if (st->steer) {
      s.tcp_steered_out = st->steer->steered_out();
      s.tcp_steered_in = st->steer->steered_in();
      s.tcp_steer_dropped = st->steer->dropped();
    }
    v.push_back(s);
  }
  return v;
}

PortSnapshot Runtime::port_snapshot() const {
  PortSnapshot p;
  p.port_id = opts_.port;
  if (!port_) return p;
  p.driver = port_->driver_name();
  p.mac = port_->caps().mac.to_string();
  p.mtu = port_->caps().mtu;
  p.queues = port_->nb_queues();
  p.link = port_->link().to_string();
  p.stats = port_->stats();
  p.rss = port_->rss();
  return p;
}

double Runtime::uptime_s() const { return static_cast<double>(clock_.now()) / 1e9; }

void Runtime::sum_counters(std::array<std::uint64_t, kStackCounterCount>& out) const {
  out.fill(0);
  for (const auto& st : lcores_) {
    if (!st->engine) continue;
    const StackCounters& c = st->engine->stack().counters();
    for (std::size_t i = 0; i < kStackCounterCount; ++i) out[i] += c.get(i);
  }
}

}  // namespace ustack
