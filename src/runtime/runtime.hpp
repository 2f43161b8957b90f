// The dedicated-core runtime: EAL bootstrap, port and queue setup, one poll
// loop per lcore, a control thread for signals and stats, telemetry, and a
// clean shutdown.
//
//   main thread:  create(): block signals, rte_eal_init, mempools, port, one
//                 Engine per queue  ->  run(): launch workers, run queue 0's
//                 loop on the main lcore, wait, shut down
//   worker lcore: the same loop on its own queue
//   control:      std::thread: sigtimedwait for SIGINT/SIGTERM (stop),
//                 SIGUSR1 (stats line); periodic stats; --duration; prints
//                 --ping results
//   telemetry:    DPDK's thread calls /ustack/stats, which sums the counters
//
// Each loop iteration reads the TSC once, converts it to ns since start and
// calls Engine::run_once(now). Nothing in the loop allocates, locks or makes
// a syscall (a --pcap-out capture writes through stdio and is flushed at most
// every 100 ms). The loops share nothing but the stop flag and, for --ping,
// the reply slots (atomics).
#pragma once

#include <sched.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "drivers/ethdev.hpp"
#include "runtime/options.hpp"
#include "runtime/ping.hpp"
#include "runtime/stats.hpp"
#include "runtime/tsc_clock.hpp"

namespace ustack {

struct LcoreState;
class Engine;
class ArpShare;
class TcpSteer;
class McastSteer;
namespace shim {
class Hub;
}

class Runtime {
 public:
  // run()'s exit status when a --tcp-get failed (1 and 2 are the process's
  // runtime and usage errors).
  static constexpr int kExitTcpGetFailed = 3;

  // Mbufs per queue's pool:
  //   rx_desc + tx_desc                     (filled RX ring, TX ring in flight)
  //   + kRxBurst * nb_lcores                (one RX burst per lcore, in case frees cross lcores)
  //   + TxBatch::kCapacity                  (one iteration's output)
  //   + arp.entries * arp.pending_per_entry (packets waiting for ARP)
  //   + kMbufCache * nb_lcores              (per-lcore mempool caches)
  //   + kMbufHeadroom                       (ping, ICMP errors, slack)
  //   = the base, rounded up to 2^k - 1 (the mempool ring's best size);
  // then TCP's buffers: every connection may hold sndbuf + rcvbuf bytes of
  // payload in mbufs, one MSS per mbuf in the worst case (received segments
  // queue as they came; the echo service sends them back as they are):
  //   tcp_want = max_conns x (ceil(sndbuf / mss) + ceil(rcvbuf / mss))
  // Buffers are overcommitted, as the kernel's tcp_mem does: TCP gets
  // min(tcp_want, kPoolCap - base), so that the pool stays at kPoolCap
  // mbufs (about 77 MiB of 2 KiB mbufs per queue), but never less than one
  // connection's worth. The total is rounded up to 2^k - 1 again. Running
  // short shows as tcp_tx_drop_no_mbuf and rx_nombuf, never as a crash.
  static constexpr unsigned kMbufCache = 256;
  static constexpr unsigned kMbufHeadroom = 256;
  static constexpr unsigned kPoolCap = 32767;
  static unsigned pool_size(unsigned rx_desc, unsigned tx_desc, unsigned nb_lcores, unsigned arp_entries,
                            unsigned arp_pending);
  struct PoolPlan {
    unsigned base = 0;           // pool_size() without TCP
    std::uint64_t tcp_want = 0;  // what every connection's full buffers would take
    unsigned tcp = 0;            // what TCP gets
    unsigned total = 0;
  };
  static PoolPlan plan_pool(unsigned base, std::uint32_t max_conns, std::uint32_t sndbuf, std::uint32_t rcvbuf,
                            unsigned mss);

  // Blocks SIGINT/SIGTERM/SIGUSR1 in this thread (so every thread EAL
  // creates inherits the mask), initialises EAL with `eal_args` (argv[0]
  // first, defaults already applied), then sets up mempools, the port, its
  // queues and one Engine per lcore. On failure returns nullptr and sets
  // `err` to one line.
  static std::unique_ptr<Runtime> create(const std::vector<std::string>& eal_args, const AppOptions& opts,
                                         std::string& err);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The application, in dedicated-core mode: runs on a thread of its own,
  // pinned to the application CPUs (--app-cpus), while the lcores poll; the
  // threads it starts inherit that affinity and attach to `hub` (the thread
  // shim: one ShimLcore per polling lcore). It must return once `stop` is
  // set (SIGINT/SIGTERM, --duration), after destroying its shim Threads; its
  // return value becomes run()'s exit status when non-zero.
  using AppMain = std::function<int(shim::Hub& hub, const std::atomic<bool>& stop)>;

  // Runs every loop (and `app`, if any) until SIGINT/SIGTERM, --duration or
  // `app` returns, then shuts down: the application is waited for, loops
  // exit, pending TX is flushed, the port is stopped and closed, captures
  // are flushed, --stats-json is written. Returns the exit status.
  int run(AppMain app = {});

  // The thread shim over every lcore (nullptr with --shim-threads 0).
  shim::Hub* hub() { return hub_.get(); }

  // For an app that embeds the runtime (ustack-tls): the engine of `queue`
  // (0 <= queue < queue_count()), to set its LoopHook and use its TcpLayer
  // before run(); and a stop request that any thread may make, the lcore's
  // own hook included (run() then shuts down as after SIGINT).
  Engine& engine(std::uint16_t queue);
  std::size_t queue_count() const { return lcores_.size(); }
  void request_stop() { stop_.store(true); }

  // For telemetry: the counters summed over lcores (relaxed loads).
  void sum_counters(std::array<std::uint64_t, kStackCounterCount>& out) const;
  // For telemetry: the gauges of every lcore (connections, TIME-WAIT, free mbufs).
  std::vector<LcoreSnapshot> gauges() const { return snapshot(false); }

 private:
  Runtime() = default;
  bool setup(const AppOptions& opts, std::string& err);
  void control_loop();
  void print_stats();
  void log_multicast_once();
  void drain_pings(bool final);
  // Prints finished --tcp-get results; true when every one has finished.
  bool drain_gets(bool final);
  std::vector<LcoreSnapshot> snapshot(bool stopped) const;
  std::vector<GetSnapshot> get_snapshot() const;
  PortSnapshot port_snapshot() const;
  double uptime_s() const;
  void teardown();

  static int lcore_entry(void* arg);

  AppOptions opts_;
  TscClock clock_;
  TimeNs wall_offset_ns_ = 0;
  std::unique_ptr<EthdevPort> port_;
  std::vector<rte_mempool*> pools_;
  std::vector<std::unique_ptr<LcoreState>> lcores_;  // index = queue
  std::unique_ptr<PingSet> pings_;
  std::atomic<bool> stop_{false};        // the process is stopping (the application sees it)
  std::atomic<bool> loops_stop_{false};  // the loops stop: once the application has returned
  std::thread control_;
  std::thread app_;
  std::atomic<int> app_status_{0};
  std::unique_ptr<shim::Hub> hub_;
  std::vector<int> polling_cpus_;  // every CPU an lcore may poll on
  cpu_set_t app_cpus_{};           // where the application's threads run
  bool have_app_cpus_ = false;
  std::unique_ptr<ArpShare> arp_share_;  // only with more than one queue
  std::unique_ptr<TcpSteer> tcp_steer_;  // only with more than one queue and RSS unknown
  std::unique_ptr<McastSteer> mcast_steer_;  // only with more than one queue
  bool mc_fallback_logged_ = false;
  bool join_failures_logged_ = false;
  cpu_set_t control_cpus_{};
  bool have_control_cpus_ = false;
  bool eal_ready_ = false;
  std::string eal_log_;  // what EAL logged during init
  std::vector<bool> gets_printed_;  // per --tcp-get: result printed
  bool gets_failed_ = false;
};

}  // namespace ustack
