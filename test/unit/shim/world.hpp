// Two TCP/UDP stacks on the in-memory pair, each with its shim, driven by a real
// std::thread (the "lcore") on a steady clock; the test's threads use the
// thread API against them. Lcore 0 is stack a (10.1.0.1), lcore 1 is stack
// b (10.1.0.2).
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "shim/hub.hpp"
#include "shim/lcore.hpp"
#include "test/unit/tcp_conn/harness.hpp"
#include "igmp/igmp_host.hpp"
#include "udp/udp_layer.hpp"
#include "ustack/shim.hpp"

namespace ustack::test {

struct ShimWorld {
  TcpPair pair;
  // Each stack has an IgmpHost, so its UDP sockets can join groups.
  IgmpHost ia;
  IgmpHost ib;
  UdpLayer ua;
  UdpLayer ub;
  shim::ShimLcore la;
  shim::ShimLcore lb;
  shim::Hub hub;
  std::atomic<bool> stop{false};
  std::atomic<bool> paused{false};
  std::atomic<bool> parked{false};
  std::atomic<std::uint64_t> iterations{0};
  // Runs on the lcore thread before each iteration (on-lcore code in a test).
  std::function<void(TimeNs)> on_lcore;
  std::thread lcore;

  static tcp::TcpConfig tcp_cfg(std::uint32_t conns) {
    tcp::TcpConfig c;
    c.max_connections = conns;
    return c;
  }

  // `shim_on_a` false: stack a is left to on-lcore code (on_lcore), and the
  // hub has one lcore, b. `igmp` false: the UDP layers have no IgmpHost (as
  // the runtime's lcores other than queue 0's).
  explicit ShimWorld(const shim::LcoreConfig& cfg = {}, const tcp::TcpConfig& tcfg = tcp_cfg(256),
                     rte_mempool* mp = nullptr, bool shim_on_a = true, bool igmp = true)
      : pair(tcfg, 1, {}, {}, mp),
        ia(pair.a.stack(), IgmpConfig{}),
        ib(pair.b.stack(), IgmpConfig{}),
        ua(pair.a.stack(), UdpConfig{}, igmp ? &ia : nullptr),
        ub(pair.b.stack(), UdpConfig{}, igmp ? &ib : nullptr),
        la(pair.ta, cfg, &ua),
        lb(pair.tb, cfg, &ub),
        hub(shim_on_a ? std::vector<shim::ShimLcore*>{&la, &lb} : std::vector<shim::ShimLcore*>{&lb}) {
    if (shim_on_a) pair.a.set_hook(&la);
    pair.b.set_hook(&lb);
  }
  // Starts the lcore thread (after on_lcore is set, if any).
  void start() { lcore = std::thread([this] { run(); }); }
  ~ShimWorld() { halt(); }

  void halt() {
    stop.store(true);
    if (lcore.joinable()) lcore.join();
  }

  void run() {
    const auto t0 = std::chrono::steady_clock::now();
    const TimeNs base = pair.now;
    while (!stop.load(std::memory_order_relaxed)) {
      if (paused.load(std::memory_order_acquire)) {
        parked.store(true, std::memory_order_release);
        std::this_thread::yield();
        continue;
      }
      parked.store(false, std::memory_order_relaxed);
      const auto el = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
      const TimeNs now = base + static_cast<TimeNs>(el.count());
      if (now > pair.now) pair.now = now;
      if (on_lcore) on_lcore(pair.now);
      const auto n = pair.a.run_once(pair.now) + pair.b.run_once(pair.now);
      iterations.fetch_add(1, std::memory_order_release);
      // Two cores shared with the application threads and other builds.
      if (n == 0) std::this_thread::yield();
    }
  }

  // Stops the lcore between two iterations (resume: paused = false).
  void pause() {
    paused.store(true, std::memory_order_release);
    while (!parked.load(std::memory_order_acquire)) std::this_thread::yield();
  }

  // Waits for the lcore to finish at least two whole iterations.
  void settle_lcore() {
    const auto i = iterations.load(std::memory_order_acquire);
    while (iterations.load(std::memory_order_acquire) < i + 2) std::this_thread::yield();
  }

  static sockaddr_in addr(std::uint8_t host, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl((10u << 24) | (1u << 16) | host);
    return a;
  }
};

// What kind of file a descriptor is ("anon_inode:[eventfd]", "anon_inode:[eventpoll]").
inline std::string fd_kind(int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
}

// How many descriptors this process has open.
inline std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Polls `done` every millisecond; false if it is still false after the timeout.
inline bool wait_until(const std::function<bool()>& done, int timeout_ms = 5000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Polls one fd for readability (0: not readable within the timeout).
inline bool fd_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// Waits (on the handle's eventfd) until events(h) has one of `bits`; what
// events(h) last gave.
inline std::uint32_t wait_for(shim::Thread& t, int h, std::uint32_t bits, int timeout_ms = 5000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const std::uint32_t m = t.events(h);
    if (m & bits) return m;
    if (std::chrono::steady_clock::now() > end) return m;
    fd_readable(t.eventfd(h), 10);
  }
}

}  // namespace ustack::test
