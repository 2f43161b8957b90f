// A multicast receiver, written as for Linux sockets: one thread opens a UDP
// socket, binds the group's port, joins the group with setsockopt
// (IP_ADD_MEMBERSHIP, or IP_ADD_SOURCE_MEMBERSHIP for a source-specific
// join) and reads datagrams with epoll. What differs from the kernel
// version is marked "ustack:".
//
//   ustack-mcast-receiver [EAL args] -- --ip A.B.C.D/N [ustack options] -- GROUP PORT [SOURCE]
//
// Receives until SIGINT/SIGTERM (the group's datagrams, and unicast ones to
// the port), then leaves the group, prints how many datagrams and bytes it
// received and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ustack/process.hpp"
#include "ustack/shim.hpp"

namespace {

struct Args {
  in_addr group{};
  int port = 0;
  in_addr source{};  // 0: any source
};

int receive(ustack::shim::Hub& hub, const std::atomic<bool>& stop, const Args& a) {
  std::string err;
  auto t = ustack::shim::Thread::attach(hub, err);  // ustack: once per thread
  if (!t) {
    std::fprintf(stderr, "mcast-receiver: %s\n", err.c_str());
    return 1;
  }
  // ustack: with several lcores the bound socket spans them all (unicast to
  // the port is read whichever queue RSS picks) and the join goes to the
  // lcore with the IgmpHost, whichever lcore socket() picked.
  const int fd = t->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    std::fprintf(stderr, "mcast-receiver: socket: %s\n", std::strerror(errno));
    return 1;
  }
  int one = 1;
  t->setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(a.port));
  if (t->bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    std::fprintf(stderr, "mcast-receiver: bind to port %d: %s\n", a.port, std::strerror(errno));
    return 1;
  }
  int r;
  if (a.source.s_addr != 0) {
    const ip_mreq_source m{a.group, {htonl(INADDR_ANY)}, a.source};
    r = t->setsockopt(fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof m);
  } else {
    const ip_mreq m{a.group, {htonl(INADDR_ANY)}};
    r = t->setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
  }
  char gs[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.group, gs, sizeof gs);
  if (r < 0) {
    std::fprintf(stderr, "mcast-receiver: join %s: %s\n", gs, std::strerror(errno));
    return 1;
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, t->eventfd(fd), &ev);  // ustack: the handle's eventfd
  std::printf("mcast-receiver: joined %s port %d\n", gs, a.port);
  std::fflush(stdout);

  std::uint64_t datagrams = 0, bytes = 0;
  char buf[2048];
  epoll_event evs[8];
  while (!stop.load()) {
    const int n = epoll_wait(ep, evs, 8, 100);
    for (int i = 0; i < n; ++i) {
      for (;;) {  // drain: the eventfd stays readable while datagrams wait
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        const ssize_t got = t->recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (got < 0) break;  // EAGAIN: read them all
        ++datagrams;
        bytes += static_cast<std::uint64_t>(got);
      }
    }
  }
  if (a.source.s_addr != 0) {
    const ip_mreq_source m{a.group, {htonl(INADDR_ANY)}, a.source};
    t->setsockopt(fd, IPPROTO_IP, IP_DROP_SOURCE_MEMBERSHIP, &m, sizeof m);
  } else {
    const ip_mreq m{a.group, {htonl(INADDR_ANY)}};
    t->setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m);
  }
  t->close(fd);
  close(ep);
  std::printf("mcast-receiver: %llu datagrams, %llu bytes\n", static_cast<unsigned long long>(datagrams),
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
    if (!err.empty()) std::fprintf(stderr, "mcast-receiver: %s\n", err.c_str());
    return status;
  }
  const auto& args = p->app_args();
  Args a;
  const bool shape = args.size() == 2 || args.size() == 3;
  if (!shape) {
    std::fprintf(stderr, "mcast-receiver: usage: %s [EAL args] -- --ip A.B.C.D/N -- GROUP PORT [SOURCE]\n", argv[0]);
    return 2;
  }
  if (inet_pton(AF_INET, args[0].c_str(), &a.group) != 1 || (ntohl(a.group.s_addr) >> 28) != 0xe) {
    std::fprintf(stderr, "mcast-receiver: GROUP '%s' is not a multicast address (224.0.0.0/4)\n", args[0].c_str());
    return 2;
  }
  char* end = nullptr;
  const long port = std::strtol(args[1].c_str(), &end, 10);
  if (!end || *end || port <= 0 || port > 65535) {
    std::fprintf(stderr, "mcast-receiver: PORT '%s' is not a port (1-65535)\n", args[1].c_str());
    return 2;
  }
  a.port = static_cast<int>(port);
  if (args.size() == 3 && inet_pton(AF_INET, args[2].c_str(), &a.source) != 1) {
    std::fprintf(stderr, "mcast-receiver: SOURCE '%s' is not an IPv4 address\n", args[2].c_str());
    return 2;
  }
  return p->run([&a](ustack::shim::Hub& hub, const std::atomic<bool>& stop) { return receive(hub, stop, a); });
}
