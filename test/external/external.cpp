// An application of the installed libustack.a: a dedicated-core process
// (ustack/process.hpp) whose application thread uses the thread shim
// (ustack/shim.hpp). Each call crosses to the lcore's TCP and back, so the
// checks below see the stack's own answers. Prints "external: ok" and exits
// 0, or names the first check that failed and exits 1.
//
//   ustack-external [EAL args] -- --ip A.B.C.D/N
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <ustack/process.hpp>
#include <ustack/shim.hpp>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "external: FAILED: %s (errno %d: %s)\n", what, errno, std::strerror(errno));
    ++failures;
  }
}

sockaddr_in addr(const char* ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

int app(ustack::shim::Hub& hub, const std::atomic<bool>&) {
  using ustack::shim::Thread;
  std::string err;
  auto t = Thread::attach(hub, err);
  check(t != nullptr, ("attach: " + err).c_str());
  if (!t) return 1;

  const sockaddr_in any = addr("0.0.0.0", 7007);
  const int l = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  check(l >= 0, "socket");
  check(t->bind(l, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0, "bind");
  check(t->listen(l, 16) == 0, "listen (answered by the lcore)");
  int lcore = -1;
  socklen_t len = sizeof lcore;
  check(t->getsockopt(l, ustack::shim::SOL_USTACK, ustack::shim::USTACK_SO_LCORE, &lcore, &len) == 0 && lcore == 0,
        "USTACK_SO_LCORE is 0");

  // The port is the lcore's TCP's: a second listener is refused there.
  const int l2 = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  t->bind(l2, reinterpret_cast<const sockaddr*>(&any), sizeof any);
  errno = 0;
  check(t->listen(l2, 16) == -1 && errno == EADDRINUSE, "second listen: EADDRINUSE");

  errno = 0;
  check(t->accept(l, nullptr, nullptr, SOCK_NONBLOCK) == -1 && errno == EAGAIN, "accept: EAGAIN");
  pollfd p{t->eventfd(l), POLLIN, 0};
  check(::poll(&p, 1, 50) == 0, "listener eventfd not readable with nothing to accept");

  // Nobody answers on the null device: connect is in progress, not writable.
  const sockaddr_in peer = addr("10.77.0.2", 80);
  const int c = t->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  errno = 0;
  check(t->connect(c, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) == -1 && errno == EINPROGRESS,
        "connect: EINPROGRESS");
  pollfd q{t->eventfd(c), POLLIN, 0};
  check(::poll(&q, 1, 50) == 0, "connecting handle's eventfd not readable");
  errno = 0;
  check(t->send(c, "x", 1, 0) == -1 && errno == EAGAIN, "send while connecting: EAGAIN");

  for (int h : {c, l2, l}) check(t->close(h) == 0, "close");
  errno = 0;
  check(t->close(l) == -1 && errno == EBADF, "second close: EBADF");

  // A thread that may run on a polling CPU is refused.
  cpu_set_t polling;
  CPU_ZERO(&polling);
  CPU_SET(0, &polling);  // EAL's -l 0 (run.sh)
  std::string refused;
  std::thread bad([&] {
    if (pthread_setaffinity_np(pthread_self(), sizeof polling, &polling) != 0) return;
    std::string e;
    if (!Thread::attach(hub, e)) refused = e;
  });
  bad.join();
  check(refused.find("polling") != std::string::npos, ("thread on the polling CPU refused: " + refused).c_str());

  t.reset();
  if (failures == 0) std::printf("external: ok\n");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string err;
  int status = 0;
  auto p = ustack::Process::create(argc, argv, err, status);
  if (!p) {
    if (!err.empty()) std::fprintf(stderr, "external: %s\n", err.c_str());
    return status ? status : 1;
  }
  return p->run(app);
}
