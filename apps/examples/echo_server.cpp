// An epoll echo server, written as for Linux sockets. What differs from the
// kernel version is marked "ustack:": the socket calls go through a shim
// Thread, epoll watches each handle's eventfd, and the EPOLL* bits come from
// t->events(h) rather than from epoll_event::events.
//
//   ustack-echo-server [EAL args] -- --ip A.B.C.D/N [ustack options] -- PORT
//
// Serves until SIGINT/SIGTERM, then prints what it served and exits 0.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "ustack/process.hpp"
#include "ustack/shim.hpp"

namespace {

struct Conn {
  std::vector<char> pending;  // echoed bytes the peer's window has no room for yet
};

int serve(ustack::shim::Hub& hub, const std::atomic<bool>& stop, int port) {
  std::string err;
  auto t = ustack::shim::Thread::attach(hub, err);  // ustack: once per thread
  if (!t) {
    std::fprintf(stderr, "echo-server: %s\n", err.c_str());
    return 1;
  }
  const int lfd = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  t->setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (t->bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || t->listen(lfd, 128) < 0) {
    std::fprintf(stderr, "echo-server: listen on %d: %s\n", port, std::strerror(errno));
    return 1;
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(lfd), &ev);  // ustack: the handle's eventfd
  std::printf("echo-server: listening on port %d\n", port);
  std::fflush(stdout);

  std::unordered_map<int, Conn> conns;
  std::uint64_t accepted = 0, bytes = 0;
  char buf[16384];
  auto drop = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, t->eventfd(fd), nullptr);
    t->close(fd);
    conns.erase(fd);
  };
  epoll_event evs[64];
  while (!stop.load()) {
    const int n = epoll_wait(ep, evs, 64, 100);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int c = t->accept(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;  // EAGAIN: accepted them all
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(c), &cev);
          conns[c];
          ++accepted;
        }
        continue;
      }
      const std::uint32_t e = t->events(fd);  // ustack: the EPOLL* bits
      Conn& cn = conns[fd];
      // Sends until done or EAGAIN (after which EPOLLOUT is reported).
      auto flush = [&] {
        while (!cn.pending.empty()) {
          const ssize_t w = t->send(fd, cn.pending.data(), cn.pending.size(), 0);
          if (w <= 0) return w == 0 || errno == EAGAIN;
          cn.pending.erase(cn.pending.begin(), cn.pending.begin() + w);
        }
        return true;
      };
      bool closed = (e & (EPOLLERR | EPOLLHUP)) && !(e & EPOLLIN);
      if (!closed) closed = !flush();
      // Read only while everything read so far is echoed: a client that
      // does not read its echo is slowed down, not buffered for.
      while (!closed && cn.pending.empty()) {
        const ssize_t r = t->recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) closed = true;
        if (r <= 0) break;
        bytes += static_cast<std::uint64_t>(r);
        cn.pending.assign(buf, buf + r);
        closed = !flush();
      }
      if (closed) drop(fd);
    }
  }
  while (!conns.empty()) drop(conns.begin()->first);
  t->close(lfd);
  close(ep);
  std::printf("echo-server: %llu connections, %llu bytes echoed\n", static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string err;
  int status = 0;
  auto p = ustack::Process::create(argc, argv, err, status);  // ustack: EAL, port, lcores
  if (!p) {
    if (!err.empty()) std::fprintf(stderr, "echo-server: %s\n", err.c_str());
    return status;
  }
  const auto& args = p->app_args();
  const int port = args.size() == 1 ? std::atoi(args[0].c_str()) : 0;
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "echo-server: usage: %s [EAL args] -- --ip A.B.C.D/N -- PORT\n", argv[0]);
    return 2;
  }
  return p->run([port](ustack::shim::Hub& hub, const std::atomic<bool>& stop) { return serve(hub, stop, port); });
}
