// The thread shim's own guarantees: the eventfd's level and edge semantics,
// backpressure on full rings, receive credit, close with data in flight, a
// long randomised run with no lost or spurious wake-up, many connections on
// one epoll set, several threads at once.
#include <catch2/catch.hpp>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "test/unit/shim/conn.hpp"

using namespace ustack;
using shim::Thread;

namespace {

using test::attach;
using test::open_pair;
using test::Pair;
using test::wait_for;

// n connections through one listener.
std::vector<Pair> open_many(Thread& t, std::uint16_t port, int n, int bufs = 0) {
  std::vector<Pair> ps;
  const int ls = t.socket_on(1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (bufs) t.setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &bufs, sizeof bufs);
  const auto sa = test::ShimWorld::addr(2, port);
  REQUIRE(t.bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(t.listen(ls, 1024) == 0);
  for (int i = 0; i < n; ++i) {
    Pair p{ls, t.socket_on(0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), -1};
    REQUIRE(p.c >= 0);
    if (bufs) t.setsockopt(p.c, SOL_SOCKET, SO_RCVBUF, &bufs, sizeof bufs);
    REQUIRE(t.connect(p.c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
    REQUIRE(errno == EINPROGRESS);
    ps.push_back(p);
  }
  for (auto& p : ps) {
    while ((p.s = t.accept(ls, nullptr, nullptr, SOCK_NONBLOCK)) < 0) {
      REQUIRE(errno == EAGAIN);
      REQUIRE(wait_for(t, ls, EPOLLIN) & EPOLLIN);
    }
  }
  for (auto& p : ps) REQUIRE(wait_for(t, p.c, EPOLLOUT) & EPOLLOUT);
  return ps;
}

std::uint8_t pattern(std::uint64_t i) { return static_cast<std::uint8_t>((i * 131) ^ (i >> 8)); }

}  // namespace

TEST_CASE("Shim: the eventfd is readable exactly while the handle has something to report", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7001);
  const int efd = t->eventfd(p.s);
  REQUIRE(efd >= 0);
  CHECK_FALSE(test::fd_readable(efd, 50));  // connected, nothing to read: nothing to report
  // The client's "connect done" report was consumed by events(): not readable.
  CHECK_FALSE(test::fd_readable(t->eventfd(p.c), 0));

  REQUIRE(t->send(p.c, "abcdef", 6, 0) == 6);
  CHECK(test::fd_readable(efd, 2000));
  CHECK(test::fd_readable(efd, 0));  // level: stays readable while data waits
  char buf[16];
  REQUIRE(t->recv(p.s, buf, 4, 0) == 4);
  CHECK(test::fd_readable(efd, 0));  // two bytes left
  REQUIRE(t->recv(p.s, buf, sizeof buf, 0) == 2);
  CHECK_FALSE(test::fd_readable(efd, 0));  // drained the moment the last byte was read
  CHECK(t->recv(p.s, buf, sizeof buf, 0) == -1);
  CHECK(errno == EAGAIN);
  CHECK_FALSE(test::fd_readable(efd, 20));

  // EOF is a lasting report (recv keeps returning 0), as EPOLLIN is on Linux.
  REQUIRE(t->shutdown(p.c, SHUT_WR) == 0);
  CHECK(test::fd_readable(efd, 2000));
  CHECK(t->recv(p.s, buf, sizeof buf, 0) == 0);
  CHECK(test::fd_readable(efd, 0));
  CHECK((t->events(p.s) & (EPOLLIN | EPOLLRDHUP)) == (EPOLLIN | EPOLLRDHUP));
  t->close(p.s);
  t->close(p.c);
  t->close(p.ls);
}

// The Linux server's first move after listen() is epoll_wait: the listener's
// eventfd must fire for the first connection without any other call first.
TEST_CASE("Shim: a new listener's eventfd fires for its first connection with no call in between", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  const int ls = t->socket_on(1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 7009);
  REQUIRE(t->bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(t->listen(ls, 16) == 0);
  const int efd = t->eventfd(ls);
  std::atomic<bool> done{false};
  std::thread client([&] {
    std::string err;
    auto t2 = Thread::attach(w.hub, err);
    const int c = t2->socket_on(0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    t2->connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    wait_for(*t2, c, EPOLLOUT);
    while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    t2->close(c);
  });
  CHECK(test::fd_readable(efd, 5000));
  CHECK(t->accept(ls, nullptr, nullptr, SOCK_NONBLOCK) >= 0);
  done.store(true);
  client.join();
  t->close(ls);
}

TEST_CASE("Shim: edge-triggered epoll sees one edge per not-ready to ready transition", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7002);
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u32 = 1;
  REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(p.s), &ev) == 0);
  epoll_event out[4];
  CHECK(epoll_wait(ep, out, 4, 20) == 0);
  char buf[64];
  for (int round = 0; round < 20; ++round) {
    REQUIRE(t->send(p.c, "ping", 4, 0) == 4);
    REQUIRE(epoll_wait(ep, out, 4, 2000) == 1);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);  // one edge, not one per check
    std::size_t got = 0;
    for (;;) {  // the ET contract: read until EAGAIN
      const ssize_t n = t->recv(p.s, buf, sizeof buf, 0);
      if (n < 0) {
        CHECK(errno == EAGAIN);
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    CHECK(got == 4);
    CHECK(epoll_wait(ep, out, 4, 0) == 0);
  }
  ::close(ep);
  t->close(p.s);
  t->close(p.c);
  t->close(p.ls);
}

TEST_CASE("Shim: a full command ring is EAGAIN, and the writer is woken when the lcore drains it", "[shim]") {
  shim::LcoreConfig cfg;
  cfg.channel.cmd_ring = 8;
  test::ShimWorld w(cfg);
  auto t = attach(w);
  Pair p = open_pair(*t, 7003);
  w.pause();
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    if (t->send(p.c, "0123456789abcdef", 16, 0) != 16) {
      CHECK(errno == EAGAIN);
      break;
    }
    ++accepted;
  }
  CHECK(accepted == 8);  // the ring's capacity; the lcore took nothing
  const int efd = t->eventfd(p.c);
  CHECK_FALSE(test::fd_readable(efd, 20));
  w.paused.store(false);
  CHECK(test::fd_readable(efd, 2000));  // woken, not polled
  CHECK((t->events(p.c) & EPOLLOUT) != 0);
  CHECK_FALSE(test::fd_readable(efd, 0));  // the one-shot report is consumed
  CHECK(t->send(p.c, "x", 1, 0) == 1);
  // Every byte arrives, in order.
  std::string got;
  char buf[256];
  while (got.size() < 8 * 16 + 1) {
    REQUIRE(wait_for(*t, p.s, EPOLLIN) & EPOLLIN);
    const ssize_t n = t->recv(p.s, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<std::size_t>(n));
  }
  std::string expect;
  for (int i = 0; i < 8; ++i) expect += "0123456789abcdef";
  CHECK(got == expect + "x");
}

TEST_CASE("Shim: a tiny completion ring and receive credit lose nothing over many connections", "[shim]") {
  shim::LcoreConfig cfg;
  cfg.channel.cpl_ring = 8;
  test::ShimWorld w(cfg);
  auto t = attach(w);
  constexpr int kConns = 16;
  constexpr std::size_t kBytes = 200'000;
  const int rcv = 16 * 1024;  // small receive credit: TCP's window does the waiting
  std::vector<Pair> ps = open_many(*t, 7100, kConns, rcv);
  std::vector<std::size_t> sent(kConns), got(kConns);
  std::vector<std::uint8_t> chunk(8192), buf(4096);
  bool intact = true;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < end) {
    done = true;
    for (int i = 0; i < kConns; ++i) {
      if (sent[i] < kBytes) {
        const std::size_t n = std::min(chunk.size(), kBytes - sent[i]);
        for (std::size_t k = 0; k < n; ++k) chunk[k] = pattern(sent[i] + k);
        const ssize_t r = t->send(ps[i].c, chunk.data(), n, 0);
        if (r > 0) sent[i] += static_cast<std::size_t>(r);
        else REQUIRE(errno == EAGAIN);
      }
      const ssize_t r = t->recv(ps[i].s, buf.data(), buf.size(), 0);
      if (r > 0) {
        for (ssize_t k = 0; k < r; ++k) intact &= buf[static_cast<std::size_t>(k)] == pattern(got[i] + static_cast<std::size_t>(k));
        got[i] += static_cast<std::size_t>(r);
      }
      done &= got[i] == kBytes;
    }
  }
  CHECK(done);
  CHECK(intact);
  w.halt();  // the lcore's counters are its own: read them once it has stopped
  CHECK(w.lb.counters().cpl_ring_full > 0);  // the ring did fill, and nothing was lost
}

TEST_CASE("Shim: close with data in flight delivers it, then EOF", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7004);
  constexpr std::size_t kBytes = 1'000'000;
  std::vector<std::uint8_t> data(kBytes);
  for (std::size_t i = 0; i < kBytes; ++i) data[i] = pattern(i);
  std::size_t sent = 0;
  std::size_t got = 0;
  bool intact = true;
  std::vector<std::uint8_t> buf(65536);
  bool closed = false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    REQUIRE(std::chrono::steady_clock::now() < end);
    if (sent < kBytes) {
      const ssize_t r = t->send(p.c, data.data() + sent, kBytes - sent, 0);
      if (r > 0) sent += static_cast<std::size_t>(r);
    } else if (!closed) {
      REQUIRE(t->close(p.c) == 0);  // most of it is still in the rings and TCP's buffer
      closed = true;
    }
    const ssize_t n = t->recv(p.s, buf.data(), buf.size(), 0);
    if (n == 0) break;
    if (n > 0) {
      for (ssize_t k = 0; k < n; ++k) intact &= buf[static_cast<std::size_t>(k)] == pattern(got + static_cast<std::size_t>(k));
      got += static_cast<std::size_t>(n);
    } else {
      REQUIRE(errno == EAGAIN);
      if (closed) test::fd_readable(t->eventfd(p.s), 100);
    }
  }
  CHECK(got == kBytes);
  CHECK(intact);
}

// Many connections, one epoll set on their eventfds, random message sizes
// and pauses; every wake-up must name a handle with something to report (no
// spurious wake-up) and the run must never stall with data outstanding (no
// lost wake-up: the test only reads or writes when epoll says so).
TEST_CASE("Shim: randomised run on one epoll set: no lost and no spurious wake-up", "[shim]") {
  // Enough mbufs for every connection's credits: an empty pool is ENOBUFS.
  test::ScopedPool mp(16383);
  tcp::TcpConfig tcfg = test::ShimWorld::tcp_cfg(64);
  tcfg.defaults.sndbuf = 64 * 1024;
  tcfg.defaults.rcvbuf = 64 * 1024;
  test::ShimWorld w({}, tcfg, mp.mp);
  auto t = attach(w);
  constexpr int kConns = 24;
  constexpr std::size_t kPerConn = 300'000;
  std::vector<Pair> ps = open_many(*t, 7200, kConns);
  // Also with SO_BUSY_POLL on every other reader: their wake-ups come late
  // (the lcore waits for the thread) and recv() re-arms past what it took.
  const int busy_poll = GENERATE(0, 300);
  for (int i = 0; i < kConns; i += 2) REQUIRE(t->setsockopt(ps[i].s, SOL_SOCKET, SO_BUSY_POLL, &busy_poll, sizeof busy_poll) == 0);
  const int ep = epoll_create1(0);
  // Level-triggered on the readers, edge-triggered on the writers.
  for (int i = 0; i < kConns; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(2 * i);
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(ps[i].s), &ev) == 0);
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u32 = static_cast<std::uint32_t>(2 * i + 1);
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(ps[i].c), &ev) == 0);
  }
  std::mt19937_64 rng(42);
  std::vector<std::size_t> sent(kConns), got(kConns);
  std::vector<bool> blocked(kConns, true);  // the writer waits for a wake-up before its first send
  std::vector<std::uint8_t> buf(20000);
  // Prime every writer: the first sends happen without waiting.
  for (int i = 0; i < kConns; ++i) blocked[i] = false;
  std::uint64_t wakeups = 0, spurious = 0, spurious_out = 0, stalls = 0;
  bool intact = true;
  auto total_got = [&] {
    std::size_t s = 0;
    for (auto g : got) s += g;
    return s;
  };
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (total_got() < kPerConn * kConns && std::chrono::steady_clock::now() < end) {
    // Writers that are not blocked send a random amount until EAGAIN or a random stop.
    for (int i = 0; i < kConns; ++i) {
      while (!blocked[i] && sent[i] < kPerConn && rng() % 4 != 0) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 9000, kPerConn - sent[i]);
        for (std::size_t k = 0; k < n; ++k) buf[k] = pattern(sent[i] + k);
        const ssize_t r = t->send(ps[i].c, buf.data(), n, 0);
        if (r < 0) {
          REQUIRE(errno == EAGAIN);
          blocked[i] = true;  // only the eventfd may unblock it
        } else {
          sent[i] += static_cast<std::size_t>(r);
        }
      }
    }
    // A writer that is not blocked (the random stop above left it idle) needs
    // no report to go on: do not sleep on its account.
    bool can_send = false;
    for (int i = 0; i < kConns; ++i) can_send |= sent[i] < kPerConn && !blocked[i];
    epoll_event evs[64];
    const int n = epoll_wait(ep, evs, 64, can_send ? 0 : 2000);
    if (n == 0) {
      if (can_send) continue;
      // Nothing reported for 2 s while a reader has data owed to it or a
      // blocked writer waits for send space: a lost wake-up.
      bool owed = false;
      for (int i = 0; i < kConns; ++i) owed |= got[i] < sent[i] || (blocked[i] && sent[i] < kPerConn);
      stalls += owed;
      if (owed) break;
      continue;
    }
    for (int e = 0; e < n; ++e) {
      ++wakeups;
      const int i = static_cast<int>(evs[e].data.u32 / 2);
      const bool writer = evs[e].data.u32 % 2;
      const int h = writer ? ps[i].c : ps[i].s;
      const std::uint32_t m = t->events(h);
      if (writer) {
        if (!(m & EPOLLOUT)) ++spurious_out;
        blocked[i] = false;
      } else {
        if (!(m & EPOLLIN)) {
          ++spurious;
          continue;
        }
        // Read a random amount (level-triggered: the rest comes next round).
        const std::size_t want = 1 + rng() % buf.size();
        const ssize_t r = t->recv(h, buf.data(), want, 0);
        REQUIRE(r > 0);
        for (ssize_t k = 0; k < r; ++k) intact &= buf[static_cast<std::size_t>(k)] == pattern(got[i] + static_cast<std::size_t>(k));
        got[i] += static_cast<std::size_t>(r);
      }
    }
  }
  ::close(ep);
  w.halt();  // the lcore's counters are its own: read them once it has stopped
  INFO("wake-ups " << wakeups << ", eventfd writes by the lcores " << w.la.counters().eventfd_writes + w.lb.counters().eventfd_writes);
  CHECK(total_got() == kPerConn * kConns);
  CHECK(intact);
  CHECK(spurious == 0);
  CHECK(spurious_out == 0);
  CHECK(stalls == 0);
}

// One round trip c -> s -> c, both sides busy-polling recv(); true when the
// eventfds stayed unreadable throughout (checked after each recv).
bool busy_round_trip(Thread& t, const Pair& p, std::uint8_t tag) {
  bool quiet = true;
  std::uint8_t b = tag;
  REQUIRE(t.send(p.c, &b, 1, 0) == 1);
  for (const int h : {p.s, p.c}) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    ssize_t r;
    while ((r = t.recv(h, &b, 1, 0)) < 0) {
      REQUIRE(errno == EAGAIN);
      quiet &= !test::fd_readable(t.eventfd(h), 0);
      REQUIRE(std::chrono::steady_clock::now() < end);
    }
    REQUIRE(r == 1);
    REQUIRE(b == tag);
    quiet &= !test::fd_readable(t.eventfd(h), 0);
    if (h == p.s) REQUIRE(t.send(p.s, &b, 1, 0) == 1);
  }
  return quiet;
}

TEST_CASE("Shim: SO_BUSY_POLL: a thread that polls recv() takes data with no eventfd write", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7010);
  int v = -1;
  CHECK(t->setsockopt(p.c, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) == -1);
  CHECK(errno == EINVAL);
  auto writes = [&] {  // the lcore's counters are its own: read them while it is parked
    w.pause();
    const std::uint64_t n = w.la.counters().eventfd_writes + w.lb.counters().eventfd_writes;
    w.paused.store(false, std::memory_order_release);
    return n;
  };
  constexpr int kTrips = 200;
  // Without the option the lcore wakes each armed handle (the control: this
  // is what the option removes).
  std::uint64_t before = writes();
  for (int i = 0; i < kTrips; ++i) busy_round_trip(*t, p, static_cast<std::uint8_t>(i));
  CHECK(writes() - before >= kTrips);

  // With it (a second: far longer than the thread ever takes), no eventfd
  // is written by anyone, and none is ever readable: recv() takes each
  // message within the call that sees it.
  v = 1'000'000;
  REQUIRE(t->setsockopt(p.c, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) == 0);
  REQUIRE(t->setsockopt(p.s, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) == 0);
  int got = 0;
  socklen_t len = sizeof got;
  REQUIRE(t->getsockopt(p.s, SOL_SOCKET, SO_BUSY_POLL, &got, &len) == 0);
  CHECK(got == v);
  before = writes();
  bool quiet = true;
  for (int i = 0; i < kTrips; ++i) quiet &= busy_round_trip(*t, p, static_cast<std::uint8_t>(i));
  CHECK(quiet);
  CHECK(writes() - before == 0);

  // A thread asleep on the eventfd is still woken, once the delay is up.
  v = 50'000;  // 50 ms
  REQUIRE(t->setsockopt(p.s, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) == 0);
  std::uint8_t b = 7;
  CHECK(t->recv(p.s, &b, 1, 0) == -1);  // settles and arms the handle
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(t->send(p.c, &b, 1, 0) == 1);
  REQUIRE(test::fd_readable(t->eventfd(p.s), 5000));
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= std::chrono::milliseconds(40));
  CHECK(t->events(p.s) & EPOLLIN);
  CHECK(t->recv(p.s, &b, 1, 0) == 1);
  CHECK(!test::fd_readable(t->eventfd(p.s), 0));

  // Accepted connections inherit the listener's value, as on Linux.
  REQUIRE(t->setsockopt(p.ls, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) == 0);
  const int c2 = t->socket_on(0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 7010);
  REQUIRE(t->connect(c2, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
  REQUIRE(wait_for(*t, p.ls, EPOLLIN, 5000) & EPOLLIN);
  const int s2 = t->accept(p.ls, nullptr, nullptr, SOCK_NONBLOCK);
  REQUIRE(s2 >= 0);
  got = 0;
  REQUIRE(t->getsockopt(s2, SOL_SOCKET, SO_BUSY_POLL, &got, &len) == 0);
  CHECK(got == v);
}

TEST_CASE("Shim: getsockname gives the bound address, and a connection's own end", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  const int fresh = t->socket(AF_INET, SOCK_STREAM, 0);
  auto name = [&](int h) {
    sockaddr_in in{};
    socklen_t len = sizeof in;
    REQUIRE(t->getsockname(h, reinterpret_cast<sockaddr*>(&in), &len) == 0);
    CHECK(len == sizeof in);
    CHECK(in.sin_family == AF_INET);
    return std::pair{ntohl(in.sin_addr.s_addr), ntohs(in.sin_port)};
  };
  CHECK(name(fresh) == std::pair{0u, std::uint16_t{0}});  // as Linux: 0.0.0.0:0 before bind
  Pair p = open_pair(*t, 7011);
  const std::uint32_t a = ntohl(test::ShimWorld::addr(1, 0).sin_addr.s_addr);
  const std::uint32_t b = ntohl(test::ShimWorld::addr(2, 0).sin_addr.s_addr);
  CHECK(name(p.ls) == std::pair{b, std::uint16_t{7011}});
  CHECK(name(p.s) == std::pair{b, std::uint16_t{7011}});
  // The client's end: stack a's address and the port the lcore picked,
  // which is what the server sees as its peer.
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  REQUIRE(t->getpeername(p.s, reinterpret_cast<sockaddr*>(&peer), &len) == 0);
  const auto c = name(p.c);
  CHECK(c.first == a);
  CHECK(c.second != 0);
  CHECK(c.second == ntohs(peer.sin_port));
  sockaddr_in in{};
  len = sizeof in;
  CHECK(t->getsockname(12345, reinterpret_cast<sockaddr*>(&in), &len) == -1);
  CHECK(errno == EBADF);
  CHECK(t->getsockname(p.c, nullptr, &len) == -1);
  CHECK(errno == EFAULT);
}

TEST_CASE("Shim: listen on an unbound socket takes an ephemeral port, as Linux's autobind", "[shim]") {
  test::ShimWorld w;
  auto t = attach(w);
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    const int ls = t->socket_on(1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (i == 2) {  // bound to port 0: the same
      const auto any = test::ShimWorld::addr(2, 0);
      REQUIRE(t->bind(ls, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0);
    }
    REQUIRE(t->listen(ls, 8) == 0);
    sockaddr_in in{};
    socklen_t len = sizeof in;
    REQUIRE(t->getsockname(ls, reinterpret_cast<sockaddr*>(&in), &len) == 0);
    const std::uint16_t port = ntohs(in.sin_port);
    CHECK(port >= 32768);
    CHECK(port < 61000);
    ports.push_back(port);
    // Reachable there.
    const int c = t->socket_on(0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const auto sa = test::ShimWorld::addr(2, port);
    REQUIRE(t->connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
    REQUIRE(errno == EINPROGRESS);
    REQUIRE(wait_for(*t, ls, EPOLLIN) & EPOLLIN);
    CHECK(t->accept(ls, nullptr, nullptr, SOCK_NONBLOCK) >= 0);
  }
  CHECK(ports[0] != ports[1]);  // three listeners at once: three ports
  CHECK(ports[1] != ports[2]);
  CHECK(ports[0] != ports[2]);
}

TEST_CASE("Shim: TCP_QUICKACK on a live connection switches its delayed ACKs", "[shim]") {
  tcp::TcpConfig tcfg = test::ShimWorld::tcp_cfg(16);
  tcfg.defaults.delayed_ack_ns = 2'000'000'000;  // 2 s: a delayed ACK cannot pass for a quick one
  test::ShimWorld w({}, tcfg);
  auto t = attach(w);
  Pair p = open_pair(*t, 7012);
  std::uint8_t b = 0;
  auto one_byte = [&] {  // c -> s, read by s
    REQUIRE(t->send(p.c, &b, 1, 0) == 1);
    REQUIRE(wait_for(*t, p.s, EPOLLIN) & EPOLLIN);
    REQUIRE(t->recv(p.s, &b, 1, 0) == 1);
  };
  // Past the connection's quick-ACK start (quickack_segments).
  for (std::uint32_t i = 0; i < tcfg.quickack_segments + 4; ++i) one_byte();
  auto segs_from_b = [&] {  // the lcore's counters are its own: read them while it is parked
    w.pause();
    const std::uint64_t n = w.pair.b.stack().counters().get(StackCounter::tcp_tx_segments);
    w.paused.store(false, std::memory_order_release);
    return n;
  };
  // What s's stack sends after a lone segment, within `ms`.
  auto acks_within = [&](int ms) {
    const std::uint64_t before = segs_from_b();
    one_byte();
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    std::uint64_t n = 0;
    while ((n = segs_from_b() - before) == 0 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return n;
  };
  // Delayed ACKs on (the default): nothing for the lone segment yet.
  CHECK(acks_within(50) == 0);
  const int one = 1, zero = 0;
  REQUIRE(t->setsockopt(p.s, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0);
  one_byte();  // the delayed ACK still pending goes with this one's
  CHECK(acks_within(1000) >= 1);  // quick: ACKed at once
  REQUIRE(t->setsockopt(p.s, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero) == 0);
  one_byte();
  CHECK(acks_within(50) == 0);  // delayed again
}

TEST_CASE("Shim: several threads, each with its own handles, at once", "[shim]") {
  test::ShimWorld w;
  w.start();
  constexpr int kThreads = 3;
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int n = 0; n < kThreads; ++n) {
    ts.emplace_back([&, n] {
      std::string err;
      auto t = Thread::attach(w.hub, err);
      if (!t) return;
      const std::uint16_t port = static_cast<std::uint16_t>(7300 + n);
      // No Catch macros here: they are not thread-safe.
      const int ls = t->socket_on(1, AF_INET, SOCK_STREAM, 0);
      const auto sa = test::ShimWorld::addr(2, port);
      if (t->bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) || t->listen(ls, 4)) return;
      const int c = t->socket_on(0, AF_INET, SOCK_STREAM, 0);  // blocking calls this time
      if (t->connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return;
      const int s = t->accept(ls, nullptr, nullptr, 0);
      if (s < 0) return;
      char msg[512], back[512];
      for (int round = 0; round < 500; ++round) {
        for (std::size_t k = 0; k < sizeof msg; ++k) msg[k] = static_cast<char>(round + n + k);
        if (t->send(c, msg, sizeof msg, 0) != static_cast<ssize_t>(sizeof msg)) return;
        std::size_t got = 0;
        while (got < sizeof msg) {
          const ssize_t r = t->recv(s, back + got, sizeof back - got, 0);
          if (r <= 0) return;
          got += static_cast<std::size_t>(r);
        }
        if (t->send(s, back, got, 0) != static_cast<ssize_t>(got)) return;
        got = 0;
        while (got < sizeof msg) {
          const ssize_t r = t->recv(c, back + got, sizeof back - got, 0);
          if (r <= 0) return;
          got += static_cast<std::size_t>(r);
        }
        if (std::memcmp(msg, back, sizeof msg) != 0) return;
      }
      t->close(c);
      t->close(s);
      t->close(ls);
      ok.fetch_add(1);
    });
  }
  for (auto& th : ts) th.join();
  CHECK(ok.load() == kThreads);
}

TEST_CASE("Shim: every mbuf comes back once the connections are closed", "[shim]") {
  test::ScopedPool mp(8191);
  const unsigned before = mp.avail();
  {
    test::ShimWorld w({}, test::ShimWorld::tcp_cfg(64), mp.mp);
    auto t = attach(w);
    Pair p = open_pair(*t, 7005);
    std::vector<std::uint8_t> data(300'000, 7), buf(65536);
    std::size_t sent = 0, got = 0;
    while (got < data.size()) {
      if (sent < data.size()) {
        const ssize_t r = t->send(p.c, data.data() + sent, data.size() - sent, 0);
        if (r > 0) sent += static_cast<std::size_t>(r);
      }
      const ssize_t r = t->recv(p.s, buf.data(), buf.size(), 0);
      if (r > 0) got += static_cast<std::size_t>(r);
    }
    // Leave some data unread on the other direction and close everything.
    REQUIRE(t->send(p.s, "tail", 4, 0) == 4);
    REQUIRE(wait_for(*t, p.c, EPOLLIN) & EPOLLIN);
    t->close(p.c);  // unread: RST
    t->close(p.s);
    t->close(p.ls);
    w.settle_lcore();
    w.halt();
  }
  CHECK(mp.avail() == before);
}

namespace {

// 10,000 clients written against the on-lcore API (stack a's lcore runs
// them), so the test stays under the process's descriptor limit: only the
// serving side uses eventfds.
struct LcoreClients final : tcp::TcpHandler {
  tcp::TcpLayer& tcp;
  Ipv4Addr dst;
  std::uint16_t port;
  std::uint32_t n;
  std::vector<TcpConnId> conns;
  std::vector<std::uint8_t> answered_flag;
  std::uint32_t opened = 0;
  std::atomic<std::uint32_t> connected{0}, answered{0}, bad{0}, failed{0};
  std::atomic<bool> open{false};  // connect once the listener is up
  std::atomic<bool> go{false};    // send the requests
  std::uint32_t next_send = 0;

  LcoreClients(tcp::TcpLayer& t, Ipv4Addr d, std::uint16_t p, std::uint32_t count)
      : tcp(t), dst(d), port(p), n(count), answered_flag(count) {
    conns.reserve(count);
  }
  static void payload(std::uint32_t i, std::uint8_t* out) {
    for (std::uint32_t k = 0; k < 64; ++k) out[k] = static_cast<std::uint8_t>(i * 31 + k);
  }
  void step(TimeNs now) {
    if (!open.load(std::memory_order_acquire)) return;
    // Paced: at most 256 handshakes and 512 requests outstanding.
    while (opened < n && opened - connected.load(std::memory_order_relaxed) - failed.load() < 256) {
      auto c = tcp.connect(dst, port, this, reinterpret_cast<void*>(static_cast<std::uintptr_t>(opened)), now);
      if (!c) {
        failed.fetch_add(1);
        ++opened;
        continue;
      }
      conns.push_back(*c);
      ++opened;
    }
    if (!go.load(std::memory_order_acquire)) return;
    while (next_send < conns.size() && next_send - answered.load(std::memory_order_relaxed) < 512) {
      std::uint8_t msg[64];
      payload(next_send, msg);
      if (tcp.send(conns[next_send], Bytes{msg, 64}, now) != 64) bad.fetch_add(1);
      ++next_send;
    }
  }
  void on_connected(tcp::TcpLayer&, TcpConnId, TimeNs) override { connected.fetch_add(1, std::memory_order_relaxed); }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    const auto i = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(t.user(c)));
    if (t.readable(c) < 64) return;
    std::uint8_t got[64], want[64];
    t.read(c, MutBytes{got, 64}, now);
    payload(i, want);
    if (std::memcmp(got, want, 64) != 0 || answered_flag[i]) bad.fetch_add(1);
    answered_flag[i] = 1;
    answered.fetch_add(1, std::memory_order_relaxed);
  }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError e, TimeNs) override {
    if (e != TcpError::none) failed.fetch_add(1);
  }
};

}  // namespace

TEST_CASE("Shim: 10,000 connections served by one thread with one epoll set", "[shim][scale]") {
  constexpr std::uint32_t kConns = 10'000;
  test::ScopedPool mp(32767);
  tcp::TcpConfig tcfg = test::ShimWorld::tcp_cfg(kConns + 64);
  tcfg.defaults.sndbuf = 16 * 1024;
  tcfg.defaults.rcvbuf = 16 * 1024;
  tcfg.ooo_segments = 8;
  shim::LcoreConfig cfg;
  cfg.max_threads = 1;
  cfg.channel.handles = 16384;
  cfg.channel.cpl_ring = 16384;
  test::ShimWorld w(cfg, tcfg, mp.mp, /*shim_on_a=*/false);
  LcoreClients clients(w.pair.ta, w.pair.ip_b(), 9000, kConns);
  w.on_lcore = [&](TimeNs now) { clients.step(now); };
  w.start();
  std::string err;
  auto t = Thread::attach(w.hub, err);
  REQUIRE(t);
  const int ls = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 9000);
  REQUIRE(t->bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(t->listen(ls, 1024) == 0);
  clients.open.store(true, std::memory_order_release);

  shim::Poller poller(*t);
  REQUIRE(poller.add(ls, 0xffffffffu) == 0);
  std::vector<int> served;
  served.reserve(kConns);
  std::uint64_t echoed = 0, spurious = 0;
  std::vector<shim::PollEvent> evs(256);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while ((served.size() < kConns || echoed < kConns) && std::chrono::steady_clock::now() < end) {
    if (served.size() == kConns) clients.go.store(true, std::memory_order_release);
    const int n = poller.wait(evs.data(), static_cast<int>(evs.size()), 1000);
    for (int i = 0; i < n; ++i) {
      const auto& e = evs[static_cast<std::size_t>(i)];
      if (e.data == 0xffffffffu) {
        for (;;) {
          const int s = t->accept(ls, nullptr, nullptr, SOCK_NONBLOCK);
          if (s < 0) break;
          REQUIRE(poller.add(s, static_cast<std::uint32_t>(served.size())) == 0);
          served.push_back(s);
        }
        continue;
      }
      char buf[128];
      const ssize_t r = t->recv(e.handle, buf, sizeof buf, 0);
      if (r <= 0) {
        ++spurious;
        continue;
      }
      REQUIRE(t->send(e.handle, buf, static_cast<std::size_t>(r), 0) == r);
      echoed += static_cast<std::uint64_t>(r) / 64;
    }
  }
  // Poller.wait drops reports it cannot confirm; none should need dropping
  // and none of the confirmed ones should find nothing to read.
  CHECK(served.size() == kConns);
  CHECK(echoed == kConns);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (clients.answered.load() < kConns && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(clients.answered.load() == kConns);
  CHECK(clients.bad.load() == 0);
  CHECK(clients.failed.load() == 0);
  CHECK(spurious == 0);
  for (int s : served) t->close(s);
  t->close(ls);
  t.reset();  // waits for the lcore to take every close
  w.halt();
}

TEST_CASE("Shim: a thread that may run on a polling lcore's CPU is refused, with the CPUs named", "[shim]") {
  test::ShimWorld w;  // lcore thread not started: attach does not need it
  cpu_set_t mine;
  CPU_ZERO(&mine);
  REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof mine, &mine) == 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mine)) cpus.push_back(c);
  REQUIRE_FALSE(cpus.empty());
  {
    shim::Hub hub({&w.la}, {cpus.front()});
    std::string err;
    CHECK(Thread::attach(hub, err) == nullptr);
    CHECK(err.find("polling lcore CPU(s) " + std::to_string(cpus.front())) != std::string::npos);
  }
  if (cpus.size() >= 2) {
    // Pinned away from the polling CPU: accepted.
    bool attached = false;
    std::thread th([&] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[1], &one);
      pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      shim::Hub hub({&w.la}, {cpus[0]});
      std::string err;
      attached = Thread::attach(hub, err) != nullptr;
    });
    th.join();
    CHECK(attached);
  }
}

// More datagrams than the thread's datagram credit: the rest waits in the
// UdpSocket's queue and follows as the thread reads, in order, none lost,
// and the eventfd is readable exactly while datagrams wait.
TEST_CASE("Shim: UDP datagrams beyond the thread's credit wait on the lcore and arrive in order", "[shim][udp]") {
  shim::LcoreConfig cfg;
  cfg.udp_dgrams = 16;
  test::ShimWorld w(cfg);
  auto t = attach(w);
  const int s = t->socket_on(1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 9100);
  REQUIRE(t->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  const int c = t->socket_on(0, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(t->connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  const int efd = t->eventfd(s);
  CHECK_FALSE(test::fd_readable(efd, 20));
  // One datagram first: ARP holds only a few packets while it resolves.
  const std::uint32_t warm = 0xffffffffu;
  REQUIRE(t->send(c, &warm, sizeof warm, 0) == 4);
  REQUIRE(test::fd_readable(efd, 3000));
  std::uint32_t first = 0;
  REQUIRE(t->recv(s, &first, sizeof first, 0) == 4);
  CHECK(first == warm);
  constexpr int kCount = 60;  // < the socket's queue (64) + the credit (16)
  for (int i = 0; i < kCount; ++i) {
    const std::uint32_t v = static_cast<std::uint32_t>(i);
    while (t->send(c, &v, sizeof v, 0) < 0) {
      REQUIRE(errno == EAGAIN);
      t->poll();
    }
  }
  int got = 0;
  bool ordered = true;
  while (got < kCount) {
    if (!test::fd_readable(efd, 3000)) break;
    std::uint32_t v = 0;
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    const ssize_t n = t->recvfrom(s, &v, sizeof v, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    if (n < 0) {
      CHECK(errno == EAGAIN);  // readable again only once more arrived
      continue;
    }
    CHECK(n == 4);
    CHECK(from.sin_addr.s_addr == test::ShimWorld::addr(1, 0).sin_addr.s_addr);
    ordered &= v == static_cast<std::uint32_t>(got);
    ++got;
  }
  CHECK(got == kCount);
  CHECK(ordered);
  CHECK_FALSE(test::fd_readable(efd, 50));
  std::uint32_t v;
  CHECK(t->recv(s, &v, sizeof v, 0) == -1);
  CHECK(errno == EAGAIN);
  t->close(c);
  t->close(s);
}

// A thread joins a group with setsockopt and receives what the other stack
// sends to it; blocked, the sender's datagrams stop; unblocked they come
// again; after IP_DROP_MEMBERSHIP none arrives. A unicast marker sent after
// each silent phase proves the datagrams before it were dropped, not late.
TEST_CASE("Shim: a thread joins a group, receives the other stack's datagrams, leaves and receives no more",
          "[shim][udp][mcast]") {
  test::ShimWorld w;
  auto t = attach(w);
  const int s = t->socket_on(1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(9200);
  REQUIRE(t->bind(s, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0);
  const ip_mreqn m{{htonl(0xef070809)}, {0}, 0};  // 239.7.8.9
  REQUIRE(t->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
  const int c = t->socket_on(0, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in grp{};
  grp.sin_family = AF_INET;
  grp.sin_port = htons(9200);
  grp.sin_addr = m.imr_multiaddr;
  const auto unicast = test::ShimWorld::addr(2, 9200);
  const int efd = t->eventfd(s);
  // Sends `n` datagrams numbered from `first` to the group, then one marker
  // (0xffffffff) to our unicast address; returns the numbers received
  // before the marker.
  auto phase = [&](std::uint32_t first, int n) {
    for (int i = 0; i < n; ++i) {
      const std::uint32_t v = first + static_cast<std::uint32_t>(i);
      while (t->sendto(c, &v, sizeof v, 0, reinterpret_cast<const sockaddr*>(&grp), sizeof grp) < 0) {
        REQUIRE(errno == EAGAIN);
        t->poll();
      }
    }
    const std::uint32_t marker = 0xffffffffu;
    while (t->sendto(c, &marker, sizeof marker, 0, reinterpret_cast<const sockaddr*>(&unicast), sizeof unicast) < 0) {
      REQUIRE(errno == EAGAIN);
      t->poll();
    }
    std::vector<std::uint32_t> got;
    for (;;) {
      if (!test::fd_readable(efd, 3000)) {
        FAIL("the marker did not arrive");
        break;
      }
      std::uint32_t v = 0;
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      const ssize_t r = t->recvfrom(s, &v, sizeof v, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (r < 0) {
        REQUIRE(errno == EAGAIN);
        continue;
      }
      CHECK(from.sin_addr.s_addr == test::ShimWorld::addr(1, 0).sin_addr.s_addr);
      if (v == marker) break;
      got.push_back(v);
    }
    return got;
  };
  // Joined: every datagram (a few at a time: ARP for the marker holds few).
  std::vector<std::uint32_t> all;
  for (std::uint32_t k = 0; k < 4; ++k) {
    const auto g = phase(k * 5, 5);
    all.insert(all.end(), g.begin(), g.end());
  }
  CHECK(all.size() == 20);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i);
  // Blocking the sender's address filters it out; unblocking lets it in.
  const ip_mreq_source b{m.imr_multiaddr, {0}, test::ShimWorld::addr(1, 0).sin_addr};
  REQUIRE(t->setsockopt(s, IPPROTO_IP, IP_BLOCK_SOURCE, &b, sizeof b) == 0);
  CHECK(phase(100, 5).empty());
  REQUIRE(t->setsockopt(s, IPPROTO_IP, IP_UNBLOCK_SOURCE, &b, sizeof b) == 0);
  CHECK(phase(200, 3) == std::vector<std::uint32_t>{200, 201, 202});
  // Left: nothing more, and leaving twice is EADDRNOTAVAIL.
  REQUIRE(t->setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == 0);
  CHECK(phase(300, 5).empty());
  CHECK(t->setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == -1);
  CHECK(errno == EADDRNOTAVAIL);
  w.pause();  // the IgmpHost is the lcore's
  CHECK_FALSE(w.ib.interface_state(Ipv4Addr{0xef070809}));
  w.paused.store(false, std::memory_order_release);
  t->close(c);
  t->close(s);
}

// An lcore whose UdpLayer has no IgmpHost (the runtime's lcores but queue
// 0's) refuses membership clearly, and its UDP sockets still work.
TEST_CASE("Shim: a membership call on an lcore without an IgmpHost is ENODEV", "[shim][udp][mcast]") {
  test::ShimWorld w({}, test::ShimWorld::tcp_cfg(256), nullptr, true, false);
  auto t = attach(w);
  const int s = t->socket_on(1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const ip_mreq m{{htonl(0xef070809)}, {0}};
  CHECK(t->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == -1);
  CHECK(errno == ENODEV);
  const ip_mreq_source ms{{htonl(0xef070809)}, {0}, {htonl(0x0a010001)}};
  CHECK(t->setsockopt(s, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &ms, sizeof ms) == -1);
  CHECK(errno == ENODEV);
  // Not multicast is still EINVAL, as it would be anywhere.
  const ip_mreq u{{htonl(0x0a010101)}, {0}};
  CHECK(t->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &u, sizeof u) == -1);
  CHECK(errno == EINVAL);
  const auto sa = test::ShimWorld::addr(2, 9300);
  CHECK(t->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  t->close(s);
}
