// An epoll echo client, written as for Linux sockets (the differences are
// marked "ustack:"): connects, then COUNT times sends SIZE bytes and waits
// for them to come back, checking every byte; prints the round-trip times.
//
//   ustack-echo-client [EAL args] -- --ip A.B.C.D/N [ustack options] -- IP PORT [COUNT [SIZE]]
//
// Exit status 0 when every echo came back intact, 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ustack/process.hpp"
#include "ustack/shim.hpp"

namespace {

struct Args {
  sockaddr_in dst{};
  long count = 1000;
  std::size_t size = 64;
};

// Waits for the handle's readiness; false on timeout or when stopping.
bool wait_ready(int ep, const std::atomic<bool>& stop, int timeout_ms) {
  epoll_event ev;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!stop.load() && std::chrono::steady_clock::now() < end)
    if (epoll_wait(ep, &ev, 1, 100) == 1) return true;
  return false;
}

int run(ustack::shim::Hub& hub, const std::atomic<bool>& stop, const Args& a) {
  std::string err;
  auto t = ustack::shim::Thread::attach(hub, err);  // ustack: once per thread
  if (!t) {
    std::fprintf(stderr, "echo-client: %s\n", err.c_str());
    return 1;
  }
  const int fd = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  t->setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(fd), &ev);  // ustack: the handle's eventfd

  if (t->connect(fd, reinterpret_cast<const sockaddr*>(&a.dst), sizeof a.dst) < 0 && errno != EINPROGRESS) {
    std::fprintf(stderr, "echo-client: connect: %s\n", std::strerror(errno));
    return 1;
  }
  while (!(t->events(fd) & (EPOLLOUT | EPOLLERR))) {  // ustack: the EPOLL* bits
    if (!wait_ready(ep, stop, 10000)) {
      std::fprintf(stderr, "echo-client: connect: timed out\n");
      return 1;
    }
  }
  int so_error = 0;
  socklen_t len = sizeof so_error;
  t->getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
  if (so_error) {
    std::fprintf(stderr, "echo-client: connect: %s\n", std::strerror(so_error));
    return 1;
  }

  std::vector<char> out(a.size), in(a.size);
  std::vector<double> rtt_us;
  rtt_us.reserve(static_cast<std::size_t>(a.count));
  for (long i = 0; i < a.count && !stop.load(); ++i) {
    for (std::size_t k = 0; k < a.size; ++k) out[k] = static_cast<char>((i * 31 + static_cast<long>(k)) & 0xff);
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t sent = 0, got = 0;
    while (got < a.size) {
      if (sent < a.size) {
        const ssize_t w = t->send(fd, out.data() + sent, a.size - sent, 0);
        if (w > 0) sent += static_cast<std::size_t>(w);
        else if (errno != EAGAIN) break;
      }
      const ssize_t r = t->recv(fd, in.data() + got, a.size - got, 0);
      if (r > 0) {
        got += static_cast<std::size_t>(r);
        continue;
      }
      if (r == 0 || errno != EAGAIN) break;
      if (!wait_ready(ep, stop, 10000)) break;
    }
    if (got < a.size || std::memcmp(in.data(), out.data(), a.size) != 0) {
      std::fprintf(stderr, "echo-client: round trip %ld: %s\n", i,
                   got < a.size ? "no full echo (closed, error or timeout)" : "echo differs from what was sent");
      return 1;
    }
    rtt_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  t->close(fd);
  close(ep);
  if (rtt_us.size() != static_cast<std::size_t>(a.count)) return 1;
  std::sort(rtt_us.begin(), rtt_us.end());
  std::printf("echo-client: %ld round trips of %zu bytes ok: rtt p50 %.1f us, p99 %.1f us\n", a.count, a.size,
              rtt_us[rtt_us.size() / 2], rtt_us[rtt_us.size() * 99 / 100]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string err;
  int status = 0;
  auto p = ustack::Process::create(argc, argv, err, status);  // ustack: EAL, port, lcores
  if (!p) {
    if (!err.empty()) std::fprintf(stderr, "echo-client: %s\n", err.c_str());
    return status;
  }
  const auto& v = p->app_args();
  Args a;
  a.dst.sin_family = AF_INET;
  const int port = v.size() >= 2 ? std::atoi(v[1].c_str()) : 0;
  if (v.size() >= 3) a.count = std::atol(v[2].c_str());
  if (v.size() >= 4) a.size = static_cast<std::size_t>(std::atol(v[3].c_str()));
  if (v.size() < 2 || v.size() > 4 || inet_pton(AF_INET, v[0].c_str(), &a.dst.sin_addr) != 1 || port <= 0 ||
      port > 65535 || a.count <= 0 || a.size == 0 || a.size > (1u << 20)) {
    std::fprintf(stderr, "echo-client: usage: %s [EAL args] -- --ip A.B.C.D/N -- IP PORT [COUNT [SIZE]]\n",
                 argv[0]);
    return 2;
  }
  a.dst.sin_port = htons(static_cast<std::uint16_t>(port));
  return p->run([&a](ustack::shim::Hub& hub, const std::atomic<bool>& stop) { return run(hub, stop, a); });
}
