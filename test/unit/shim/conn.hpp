// Helpers the shim's TCP tests share: attaching a thread to a ShimWorld and
// opening one connection through it with the buffer sizes asked for.
#pragma once

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/epoll.h>

#include <memory>
#include <string>

#include "test/unit/shim/world.hpp"

namespace ustack::test {

// Starts the world's lcore on first use and attaches the calling thread.
inline std::unique_ptr<shim::Thread> attach(ShimWorld& w) {
  if (!w.lcore.joinable()) w.start();
  std::string err;
  auto t = shim::Thread::attach(w.hub, err);
  REQUIRE(t);
  return t;
}

struct Pair {
  int ls, c, s;
};

// Buffer sizes are taken when the connection is made: the client's before
// connect, the accepted side's from its listener before listen (0: the
// default).
struct Bufs {
  int c_sndbuf = 0;
  int c_rcvbuf = 0;
  int s_sndbuf = 0;
  int s_rcvbuf = 0;
};

inline void set_buf(shim::Thread& t, int h, int name, int v) {
  if (v) REQUIRE(t.setsockopt(h, SOL_SOCKET, name, &v, sizeof v) == 0);
}

// c on lcore 0 (stack a), the listener and s on lcore 1 (stack b).
inline Pair open_pair(shim::Thread& t, std::uint16_t port, const Bufs& b = {}) {
  Pair p{};
  p.ls = t.socket_on(1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  set_buf(t, p.ls, SO_SNDBUF, b.s_sndbuf);
  set_buf(t, p.ls, SO_RCVBUF, b.s_rcvbuf);
  const auto sa = ShimWorld::addr(2, port);
  REQUIRE(t.bind(p.ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(t.listen(p.ls, 64) == 0);
  p.c = t.socket_on(0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  set_buf(t, p.c, SO_SNDBUF, b.c_sndbuf);
  set_buf(t, p.c, SO_RCVBUF, b.c_rcvbuf);
  REQUIRE(t.connect(p.c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
  REQUIRE(errno == EINPROGRESS);
  REQUIRE(wait_for(t, p.ls, EPOLLIN) & EPOLLIN);
  p.s = t.accept(p.ls, nullptr, nullptr, SOCK_NONBLOCK);
  REQUIRE(p.s >= 0);
  REQUIRE(wait_for(t, p.c, EPOLLOUT) & EPOLLOUT);
  return p;
}

}  // namespace ustack::test
