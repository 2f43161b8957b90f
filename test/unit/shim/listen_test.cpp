// A listener on a hub with several lcores for ONE address: connections whose
// SYN is steered to any lcore are accepted through the one handle, its fd
// wakes for either lcore (level and edge), close leaves nothing behind, and
// a failure on one lcore undoes the others.
//
// The fixture is what ustack::Process builds with two queues and software
// steering: two engines (lcores 0 and 1, both 10.1.0.1 with one MAC) behind
// TcpSteerDevice over one side of the in-memory pair, so each TCP segment
// goes to the lcore its symmetric Toeplitz hash names; the client is stack b
// (10.1.0.2) with its own one-lcore hub. One std::thread runs all three.
#include <catch2/catch.hpp>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/tcp_steer.hpp"
#include "test/unit/shim/world.hpp"

using namespace ustack;
using test::fd_kind;
using test::open_fds;
using test::wait_until;
using shim::Thread;

namespace {

struct SpanWorld {
  static shim::LcoreConfig lcore_cfg(std::uint32_t handles) {
    shim::LcoreConfig c;
    c.max_threads = 2;
    c.channel.handles = handles;
    return c;
  }
  static tcp::TcpConfig tcp_cfg(std::uint8_t n) {
    tcp::TcpConfig c;
    c.max_connections = 64;
    return test::TcpPair::tcp_config(n, c);
  }
  static bool init(TcpSteer& s) {
    std::string err;
    return s.init(2, SOCKET_ID_ANY, err);
  }

  TimeNs now = kNsPerSec;
  MemPair wire{4096, test::TcpPair::caps(1), test::TcpPair::caps(2)};
  TcpSteer steer;
  bool steer_ok = init(steer);
  TcpSteerDevice d0{wire.a(), steer, 0};
  TcpSteerDevice d1{wire.a(), steer, 1};
  Engine a0{d0, test::TcpPair::config(1), test::pool(), now};
  Engine a1{d1, test::TcpPair::config(1), test::pool(), now};
  Engine b{wire.b(), test::TcpPair::config(2), test::pool(), now};
  tcp::TcpLayer t0{a0.stack(), tcp_cfg(1)};
  tcp::TcpLayer t1{a1.stack(), tcp_cfg(1)};
  tcp::TcpLayer tb{b.stack(), tcp_cfg(2)};
  // The servers' channels small: a leaked id shows up within a few rounds.
  shim::ShimLcore l0{t0, lcore_cfg(16)};
  shim::ShimLcore l1{t1, lcore_cfg(16)};
  shim::ShimLcore lb{tb, lcore_cfg(64)};
  shim::Hub server{std::vector<shim::ShimLcore*>{&l0, &l1}};
  shim::Hub client{std::vector<shim::ShimLcore*>{&lb}};
  std::atomic<bool> stop{false};
  // The servers' TCP connections (all states), sampled on the lcore thread.
  std::atomic<std::uint32_t> server_conns{0};
  std::function<void(TimeNs)> on_lcore;  // on-lcore code of a test
  std::thread lcore;

  SpanWorld() {
    a0.set_hook(&l0);
    a1.set_hook(&l1);
    b.set_hook(&lb);
    // Both server lcores answer for one address with one MAC; ARP is not
    // what is tested, so every cache starts resolved.
    a0.stack().arp().update(Ipv4Addr{10, 1, 0, 2}, test::TcpPair::caps(2).mac, true, now);
    a1.stack().arp().update(Ipv4Addr{10, 1, 0, 2}, test::TcpPair::caps(2).mac, true, now);
    b.stack().arp().update(Ipv4Addr{10, 1, 0, 1}, test::TcpPair::caps(1).mac, true, now);
  }
  ~SpanWorld() { halt(); }

  void start() {
    REQUIRE(steer_ok);
    lcore = std::thread([this] { run(); });
  }
  void halt() {
    stop.store(true);
    if (lcore.joinable()) lcore.join();
  }
  void run() {
    const auto t0c = std::chrono::steady_clock::now();
    const TimeNs base = now;
    while (!stop.load(std::memory_order_relaxed)) {
      const auto el = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0c);
      const TimeNs t = base + static_cast<TimeNs>(el.count());
      if (t > now) now = t;
      if (on_lcore) on_lcore(now);
      const auto n = a0.run_once(now) + a1.run_once(now) + b.run_once(now);
      server_conns.store(t0.connection_count() + t1.connection_count(), std::memory_order_relaxed);
      if (n == 0) std::this_thread::yield();
    }
  }
};

std::unique_ptr<Thread> attach(shim::Hub& hub) {
  std::string err;
  auto t = Thread::attach(hub, err);
  REQUIRE(t);
  return t;
}

using test::wait_for;

sockaddr_in server_addr(std::uint16_t port) { return test::ShimWorld::addr(1, port); }

int listener(Thread& t, std::uint16_t port, int on_lcore = -1) {
  const int ls = on_lcore < 0 ? t.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
                              : t.socket_on(static_cast<unsigned>(on_lcore), AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(ls >= 0);
  const auto sa = server_addr(port);
  REQUIRE(t.bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  return ls;
}

int connect_to(Thread& c, std::uint16_t port) {
  const int h = c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(h >= 0);
  const auto sa = server_addr(port);
  REQUIRE(c.connect(h, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
  REQUIRE(errno == EINPROGRESS);
  return h;
}

int lcore_of(Thread& t, int h) {
  int v = -1;
  socklen_t len = sizeof v;
  REQUIRE(t.getsockopt(h, shim::SOL_USTACK, shim::USTACK_SO_LCORE, &v, &len) == 0);
  return v;
}

}  // namespace

TEST_CASE("Shim: a listener on two lcores accepts connections steered to either, and data flows on each",
          "[shim][listen]") {
  SpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int ls = listener(*ts, 7000);
  REQUIRE(ts->listen(ls, 64) == 0);
  REQUIRE(fd_kind(ts->eventfd(ls)) == "anon_inode:[eventpoll]");
  // Options set after listen() reach what every lcore accepts, as on Linux.
  const int zero = 0, one = 1;
  REQUIRE(ts->setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero) == 0);
  REQUIRE(ts->setsockopt(ls, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0);

  constexpr int kConns = 16;
  std::vector<int> cs;
  for (int i = 0; i < kConns; ++i) cs.push_back(connect_to(*tc, 7000));

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, ts->eventfd(ls), &ev) == 0);
  std::vector<int> ss;
  int on[2] = {0, 0};
  while (ss.size() < kConns) {
    epoll_event out{};
    REQUIRE(::epoll_wait(ep, &out, 1, 5000) == 1);
    REQUIRE((ts->events(ls) & EPOLLIN) != 0);
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int s;
    while ((s = ts->accept(ls, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK)) >= 0) {
      CHECK(ntohl(peer.sin_addr.s_addr) == ((10u << 24) | (1u << 16) | 2u));
      const int l = lcore_of(*ts, s);
      REQUIRE((l == 0 || l == 1));
      ++on[l];
      int v = -1;
      socklen_t vl = sizeof v;
      REQUIRE(ts->getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0);
      CHECK(v == 0);
      REQUIRE(ts->getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, &vl) == 0);
      CHECK(v == 1);
      ss.push_back(s);
      len = sizeof peer;
    }
    REQUIRE(errno == EAGAIN);
  }
  REQUIRE(ss.size() == kConns);
  // Both lcores took some: without the member listener one of them would
  // have answered its share with RST.
  CHECK(on[0] > 0);
  CHECK(on[1] > 0);
  CHECK(w.d0.steered_out() + w.d1.steered_out() > 0);
  // Nothing left to accept: the fd is not readable.
  epoll_event out{};
  CHECK(::epoll_wait(ep, &out, 1, 20) == 0);
  CHECK(ts->events(ls) == 0);
  ::close(ep);

  // Each client sends its number; each server echoes what it got.
  for (int i = 0; i < kConns; ++i) {
    REQUIRE(wait_for(*tc, cs[i], EPOLLOUT) & EPOLLOUT);
    const std::string msg = "client " + std::to_string(i);
    REQUIRE(tc->send(cs[i], msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
  }
  for (int s : ss) {
    REQUIRE(wait_for(*ts, s, EPOLLIN) & EPOLLIN);
    char buf[64];
    const ssize_t n = ts->recv(s, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    REQUIRE(ts->send(s, buf, static_cast<std::size_t>(n), 0) == n);
  }
  for (int i = 0; i < kConns; ++i) {
    REQUIRE(wait_for(*tc, cs[i], EPOLLIN) & EPOLLIN);
    char buf[64];
    const ssize_t n = tc->recv(cs[i], buf, sizeof buf, 0);
    CHECK(std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0)) == "client " + std::to_string(i));
  }
  for (int c : cs) tc->close(c);
  for (int s : ss) ts->close(s);
  REQUIRE(ts->close(ls) == 0);
}

TEST_CASE("Shim: a two-lcore listener's fd wakes for a connection on either lcore, and only then",
          "[shim][listen]") {
  const bool edge = GENERATE(false, true);
  CAPTURE(edge);
  SpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int ls = listener(*ts, 7100);
  REQUIRE(ts->listen(ls, 64) == 0);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | (edge ? EPOLLET : 0u);
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, ts->eventfd(ls), &ev) == 0);
  epoll_event out{};
  REQUIRE(::epoll_wait(ep, &out, 1, 20) == 0);

  int on[2] = {0, 0};
  std::vector<int> keep;
  for (int i = 0; i < 12 || on[0] == 0 || on[1] == 0; ++i) {
    REQUIRE(i < 40);
    keep.push_back(connect_to(*tc, 7100));
    // One wake-up, with no call on the server thread in between.
    REQUIRE(::epoll_wait(ep, &out, 1, 5000) == 1);
    // Level-triggered: still readable until accepted. Edge: no second edge.
    CHECK(::epoll_wait(ep, &out, 1, 0) == (edge ? 0 : 1));
    const int s = ts->accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
    REQUIRE(s >= 0);
    ++on[lcore_of(*ts, s)];
    keep.push_back(s);
    REQUIRE(ts->accept(ls, nullptr, nullptr, 0) == -1);
    REQUIRE(errno == EAGAIN);
    // Accepted: not readable, and no late wake-up.
    CHECK(::epoll_wait(ep, &out, 1, 20) == 0);
  }
  CHECK(on[0] > 0);
  CHECK(on[1] > 0);
  ::close(ep);
}

TEST_CASE("Shim: closing a two-lcore listener resets what it had not accepted and leaves nothing behind",
          "[shim][listen]") {
  SpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  // More rounds than the channel has ids (16 per half) or TCP listener slots
  // (16): a leaked member, accepted id or listener would fail a later round.
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    const int ls = listener(*ts, 7200);
    REQUIRE(ts->listen(ls, 64) == 0);
    std::vector<int> cs;
    for (int i = 0; i < 5; ++i) cs.push_back(connect_to(*tc, 7200));
    for (int c : cs) REQUIRE(wait_for(*tc, c, EPOLLOUT) & EPOLLOUT);
    REQUIRE(wait_for(*ts, ls, EPOLLIN) & EPOLLIN);
    const int s = ts->accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
    REQUIRE(s >= 0);
    // The others are queued, announced or not, on either lcore.
    REQUIRE(ts->close(ls) == 0);
    REQUIRE(ts->accept(ls, nullptr, nullptr, 0) == -1);
    REQUIRE(errno == EBADF);
    // The accepted one still works; every other client is reset.
    const char ping[] = "ping";
    REQUIRE(ts->send(s, ping, 4, 0) == 4);
    int reset = 0, served = 0;
    for (int c : cs) {
      const std::uint32_t m = wait_for(*tc, c, EPOLLIN | EPOLLERR | EPOLLHUP);
      char buf[8];
      if (m & EPOLLERR) {
        int e = 0;
        socklen_t len = sizeof e;
        REQUIRE(tc->getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &len) == 0);
        CHECK(e == ECONNRESET);
        ++reset;
      } else {
        REQUIRE(tc->recv(c, buf, sizeof buf, 0) == 4);
        ++served;
      }
      tc->close(c);
    }
    CHECK(served == 1);
    CHECK(reset == 4);
    // The server closes after the client's FIN, so it does not linger in
    // TIME-WAIT.
    REQUIRE(wait_for(*ts, s, EPOLLRDHUP) & EPOLLRDHUP);
    ts->close(s);
    // Every server connection ends (the reset ones at once, the served one
    // after both FINs): none is left held by a closed listener.
    REQUIRE(wait_until([&] { return w.server_conns.load() == 0; }));
  }
  w.halt();
  CHECK(w.l0.counters().accept_no_slot == 0);
  CHECK(w.l1.counters().accept_no_slot == 0);
}

TEST_CASE("Shim: a listen that fails on one lcore undoes the others and leaves the socket as it was",
          "[shim][listen]") {
  const int primary = GENERATE(0, 1);  // 1: lcore 0's member is made, then the primary fails
  CAPTURE(primary);
  SpanWorld w;
  // Something on lcore 1 already listens on the port.
  auto taken = w.t1.listen(Ipv4Addr{10, 1, 0, 1}, 7300, 16, &w.l1, nullptr, w.t1.config().defaults);
  REQUIRE(taken);
  std::atomic<bool> release{false}, released{false};
  w.on_lcore = [&](TimeNs now) {
    if (release.load() && !released.load()) {
      w.t1.unlisten(*taken, now);
      released.store(true);
    }
  };
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int ls = listener(*ts, 7300, primary);
  const std::size_t fds = open_fds();
  REQUIRE(ts->listen(ls, 64) == -1);
  REQUIRE(errno == EADDRINUSE);
  // No member eventfd or epoll fd left open; the handle is still a fresh socket.
  CHECK(open_fds() == fds);
  CHECK(fd_kind(ts->eventfd(ls)) == "anon_inode:[eventfd]");
  REQUIRE(ts->listen(ls, 64) == -1);
  REQUIRE(errno == EADDRINUSE);
  REQUIRE(ts->accept(ls, nullptr, nullptr, 0) == -1);
  REQUIRE(errno == EINVAL);

  // Once lcore 1 lets the port go, the same socket listens on both: lcore
  // 0's listener from the failed attempts is gone.
  release.store(true);
  REQUIRE(wait_until([&] { return released.load(); }));
  REQUIRE(ts->listen(ls, 64) == 0);
  int on[2] = {0, 0};
  for (int i = 0; i < 40 && (on[0] == 0 || on[1] == 0); ++i) {
    const int c = connect_to(*tc, 7300);
    REQUIRE(wait_for(*ts, ls, EPOLLIN) & EPOLLIN);
    const int s = ts->accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
    REQUIRE(s >= 0);
    ++on[lcore_of(*ts, s)];
    ts->close(s);
    tc->close(c);
  }
  CHECK(on[0] > 0);
  CHECK(on[1] > 0);
  REQUIRE(ts->close(ls) == 0);
}

TEST_CASE("Shim: a listener on a one-lcore hub is one eventfd, as before", "[shim][listen]") {
  SpanWorld w;
  w.start();
  auto tc = attach(w.client);
  const int ls = tc->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 7400);
  REQUIRE(tc->bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  const int efd = tc->eventfd(ls);
  const std::size_t fds = open_fds();
  REQUIRE(tc->listen(ls, 16) == 0);
  CHECK(open_fds() == fds);
  CHECK(tc->eventfd(ls) == efd);
  CHECK(fd_kind(efd) == "anon_inode:[eventfd]");
  REQUIRE(tc->close(ls) == 0);
}
