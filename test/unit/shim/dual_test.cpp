// The same test bodies over Linux's own sockets (loopback) and over ustack
// handles (the shim on the in-memory pair): each body records what it
// observes (return values, errno, poll bits) into a trace, and the two traces
// must be equal. Byte counts that depend on buffer accounting (how much a
// send accepts before EAGAIN) are recorded as "some", not as numbers.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "test/unit/shim/world.hpp"

using namespace ustack;

namespace {

using Trace = std::vector<std::string>;

std::string bits(std::uint32_t m) {
  std::string s;
  auto add = [&](std::uint32_t b, const char* n) {
    if (m & b) s += (s.empty() ? "" : "|") + std::string(n);
  };
  add(EPOLLIN, "IN");
  add(EPOLLOUT, "OUT");
  add(EPOLLERR, "ERR");
  add(EPOLLHUP, "HUP");
  add(EPOLLRDHUP, "RDHUP");
  return s.empty() ? "0" : s;
}

std::string res(long r) {
  if (r >= 0) return std::to_string(r);
  return std::string("-1/") + strerrorname_np(errno);
}

constexpr std::uint32_t kMaskBits = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP;

// INADDR_ANY:port, for the UDP bodies' binds.
sockaddr_in any_addr(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  return a;
}

// --- adapters -----------------------------------------------------------------

struct KernelApi {
  // A port nothing listens on: the kernel picks a free one, we let it go.
  // (Other programs share this machine's loopback, so fixed ports collide.)
  static std::uint16_t free_port(int type) {
    const int fd = ::socket(AF_INET, type, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    socklen_t l = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  static std::uint16_t next_port() { return free_port(SOCK_STREAM); }
  static std::uint16_t next_udp_port() { return free_port(SOCK_DGRAM); }
  int socket(bool) { return ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); }
  int udp_socket(bool) { return ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0); }
  int bind_plain(int h, const sockaddr_in& a) { return ::bind(h, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  int ipopt(int h, int name, const void* v, socklen_t l) { return ::setsockopt(h, IPPROTO_IP, name, v, l); }
  int setopt(int h, int level, int name, const void* v, socklen_t l) { return ::setsockopt(h, level, name, v, l); }
  int getopt(int h, int level, int name, void* v, socklen_t* l) { return ::getsockopt(h, level, name, v, l); }
  // Each side's documented default for IP_MULTICAST_LOOP: on.
  static constexpr int kLoopDefault = 1;
  // A multicast sender on loopback: out through lo, looped back to our receivers.
  int mcast_sender(int h) {
    const int one = 1;
    const in_addr lo{htonl(INADDR_LOOPBACK)};
    return ::setsockopt(h, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo) |
           ::setsockopt(h, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
  }
  // The interface multicast calls name: loopback (it needs no route).
  in_addr local_if() { return in_addr{htonl(INADDR_LOOPBACK)}; }
  long sendto(int h, const void* b, std::size_t n, const sockaddr_in& to) {
    return ::sendto(h, b, n, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  long recvfrom(int h, void* b, std::size_t n, sockaddr_in& from) {
    socklen_t l = sizeof from;
    return ::recvfrom(h, b, n, 0, reinterpret_cast<sockaddr*>(&from), &l);
  }
  sockaddr_in server(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }
  int bind(int h, const sockaddr_in& a) {
    const int one = 1;
    ::setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    return ::bind(h, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  int listen(int h, int b) { return ::listen(h, b); }
  int accept(int h) { return ::accept4(h, nullptr, nullptr, SOCK_NONBLOCK); }
  int connect(int h, const sockaddr_in& a) { return ::connect(h, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  long send(int h, const void* b, std::size_t n) { return ::send(h, b, n, MSG_NOSIGNAL); }
  long recv(int h, void* b, std::size_t n) { return ::recv(h, b, n, 0); }
  int shutdown(int h, int how) { return ::shutdown(h, how); }
  int close(int h) { return ::close(h); }
  int so_error(int h) {
    int v = 0;
    socklen_t l = sizeof v;
    ::getsockopt(h, SOL_SOCKET, SO_ERROR, &v, &l);
    return v;
  }
  int set_buffers(int h, int bytes) {
    return ::setsockopt(h, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) |
           ::setsockopt(h, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  std::uint32_t events(int h) {
    pollfd p{h, POLLIN | POLLOUT | POLLRDHUP, 0};
    ::poll(&p, 1, 0);
    return static_cast<std::uint32_t>(p.revents) & kMaskBits;
  }
  // Waits until one of `interest` (or ERR/HUP) is reported; returns the bits.
  std::uint32_t wait(int h, std::uint32_t interest, int timeout_ms = 3000) {
    pollfd p{h, static_cast<short>(interest), 0};
    ::poll(&p, 1, timeout_ms);
    return events(h);
  }
};

struct UstackApi {
  shim::Thread& t;
  static std::uint16_t next_port() {
    static std::uint16_t p = 5000;
    return ++p;
  }
  static std::uint16_t next_udp_port() { return next_port(); }
  int socket(bool server_side) { return t.socket_on(server_side ? 1 : 0, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); }
  int udp_socket(bool server_side) { return t.socket_on(server_side ? 1 : 0, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0); }
  int bind_plain(int h, const sockaddr_in& a) { return t.bind(h, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  int ipopt(int h, int name, const void* v, socklen_t l) { return t.setsockopt(h, IPPROTO_IP, name, v, l); }
  int setopt(int h, int level, int name, const void* v, socklen_t l) { return t.setsockopt(h, level, name, v, l); }
  int getopt(int h, int level, int name, void* v, socklen_t* l) { return t.getsockopt(h, level, name, v, l); }
  // ustack's documented default (shim.hpp): off.
  static constexpr int kLoopDefault = 0;
  // The sender is on the other stack (udp_socket(false)): nothing to set.
  int mcast_sender(int) { return 0; }
  in_addr local_if() { return test::ShimWorld::addr(2, 0).sin_addr; }
  long sendto(int h, const void* b, std::size_t n, const sockaddr_in& to) {
    return t.sendto(h, b, n, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  long recvfrom(int h, void* b, std::size_t n, sockaddr_in& from) {
    socklen_t l = sizeof from;
    return t.recvfrom(h, b, n, 0, reinterpret_cast<sockaddr*>(&from), &l);
  }
  sockaddr_in server(std::uint16_t port) { return test::ShimWorld::addr(2, port); }
  int bind(int h, const sockaddr_in& a) { return t.bind(h, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  int listen(int h, int b) { return t.listen(h, b); }
  int accept(int h) { return t.accept(h, nullptr, nullptr, SOCK_NONBLOCK); }
  int connect(int h, const sockaddr_in& a) { return t.connect(h, reinterpret_cast<const sockaddr*>(&a), sizeof a); }
  long send(int h, const void* b, std::size_t n) { return t.send(h, b, n, MSG_NOSIGNAL); }
  long recv(int h, void* b, std::size_t n) { return t.recv(h, b, n, 0); }
  int shutdown(int h, int how) { return t.shutdown(h, how); }
  int close(int h) { return t.close(h); }
  int so_error(int h) {
    int v = 0;
    socklen_t l = sizeof v;
    t.getsockopt(h, SOL_SOCKET, SO_ERROR, &v, &l);
    return v;
  }
  int set_buffers(int h, int bytes) {
    return t.setsockopt(h, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) |
           t.setsockopt(h, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  std::uint32_t events(int h) {
    // Without consuming the one-shot EPOLLOUT report: peek through poll's view.
    return t.events(h) & kMaskBits;
  }
  std::uint32_t wait(int h, std::uint32_t interest, int timeout_ms = 3000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const std::uint32_t m = events(h);
      if (m & (interest | EPOLLERR | EPOLLHUP)) return m;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return m;
      test::fd_readable(t.eventfd(h), static_cast<int>(left.count()));
    }
  }
};

// --- bodies -------------------------------------------------------------------

// A listening socket and one connection through it; the connect's own
// observations go into the trace.
template <class Api>
struct Conn {
  int ls = -1, c = -1, s = -1;
};

template <class Api>
Conn<Api> open_pair(Api& api, Trace& tr, std::uint16_t port) {
  Conn<Api> k;
  k.ls = api.socket(true);
  const auto sa = api.server(port);
  tr.push_back("bind " + res(api.bind(k.ls, sa)));
  tr.push_back("listen " + res(api.listen(k.ls, 16)));
  k.c = api.socket(false);
  errno = 0;
  const int r = api.connect(k.c, sa);
  tr.push_back("connect " + std::string(r == 0 || errno == EINPROGRESS ? "0-or-EINPROGRESS" : res(r)));
  tr.push_back("listener " + bits(api.wait(k.ls, EPOLLIN)));
  k.s = api.accept(k.ls);
  tr.push_back(std::string("accept ") + (k.s >= 0 ? "ok" : res(k.s)));
  tr.push_back("client " + bits(api.wait(k.c, EPOLLOUT)));
  tr.push_back("so_error " + std::to_string(api.so_error(k.c)));
  return k;
}

template <class Api>
Trace body_echo_half_close(Api& api) {
  Trace tr;
  auto k = open_pair(api, tr, Api::next_port());
  char buf[64];
  errno = 0;
  tr.push_back("accept-again " + res(api.accept(k.ls)));
  tr.push_back("recv-empty " + res(api.recv(k.s, buf, sizeof buf)));
  tr.push_back("server-idle " + bits(api.events(k.s)));
  tr.push_back("send " + res(api.send(k.c, "hello", 5)));
  tr.push_back("server " + bits(api.wait(k.s, EPOLLIN)));
  const long n1 = api.recv(k.s, buf, sizeof buf);
  tr.push_back("recv " + res(n1) + " " + std::string(buf, 5));
  // Half-close: the server sees EOF and can still answer.
  tr.push_back("shutdown " + res(api.shutdown(k.c, SHUT_WR)));
  tr.push_back("server " + bits(api.wait(k.s, EPOLLRDHUP)));
  tr.push_back("recv-eof " + res(api.recv(k.s, buf, sizeof buf)));
  tr.push_back("send-after-shut " + res(api.send(k.c, "x", 1)));
  tr.push_back("answer " + res(api.send(k.s, "bye", 3)));
  tr.push_back("client " + bits(api.wait(k.c, EPOLLIN)));
  const long n2 = api.recv(k.c, buf, sizeof buf);
  tr.push_back("recv " + res(n2) + " " + std::string(buf, 3));
  tr.push_back("close-server " + res(api.close(k.s)));
  tr.push_back("client " + bits(api.wait(k.c, EPOLLRDHUP)));
  tr.push_back("recv-eof " + res(api.recv(k.c, buf, sizeof buf)));
  const std::string c1 = res(api.close(k.c));
  tr.push_back("close " + c1 + " " + res(api.close(k.ls)));
  return tr;
}

template <class Api>
Trace body_reset(Api& api) {
  Trace tr;
  auto k = open_pair(api, tr, Api::next_port());
  char buf[64];
  tr.push_back("send " + res(api.send(k.c, "unread", 6)));
  tr.push_back("server " + bits(api.wait(k.s, EPOLLIN)));
  // Closing with unread data sends RST (RFC 9293 §3.10.4, RFC 2525 §2.17).
  tr.push_back("close-unread " + res(api.close(k.s)));
  tr.push_back("client " + bits(api.wait(k.c, EPOLLERR)));
  tr.push_back("recv " + res(api.recv(k.c, buf, sizeof buf)));
  tr.push_back("recv-again " + res(api.recv(k.c, buf, sizeof buf)));
  tr.push_back("send " + res(api.send(k.c, "x", 1)));
  tr.push_back("so_error " + std::to_string(api.so_error(k.c)));
  const std::string c1 = res(api.close(k.c));
  tr.push_back("close " + c1 + " " + res(api.close(k.ls)));
  return tr;
}

template <class Api>
Trace body_refused(Api& api) {
  Trace tr;
  const int c = api.socket(false);
  errno = 0;
  const int r = api.connect(c, api.server(Api::next_port()));
  tr.push_back("connect " + std::string(r == -1 && errno == EINPROGRESS ? "EINPROGRESS" : res(r)));
  tr.push_back("client " + bits(api.wait(c, EPOLLOUT)));
  const int e = api.so_error(c);
  tr.push_back("so_error " + std::string(e ? strerrorname_np(e) : "0"));
  tr.push_back("so_error-again " + std::to_string(api.so_error(c)));
  char buf[8];
  tr.push_back("recv " + res(api.recv(c, buf, sizeof buf)));
  tr.push_back("send " + res(api.send(c, "x", 1)));
  tr.push_back("close " + res(api.close(c)));
  return tr;
}

template <class Api>
Trace body_addr_in_use(Api& api) {
  Trace tr;
  const auto port = Api::next_port();
  const int a = api.socket(true);
  const int b = api.socket(true);
  const std::string b1 = res(api.bind(a, api.server(port)));
  tr.push_back("first " + b1 + " " + res(api.listen(a, 4)));
  // Linux refuses at bind, ustack at listen: record whichever step failed.
  errno = 0;
  int r = api.bind(b, api.server(port));
  if (r == 0) r = api.listen(b, 4);
  tr.push_back("second " + res(r));
  const std::string c1 = res(api.close(a));
  tr.push_back("close " + c1 + " " + res(api.close(b)));
  return tr;
}

// Fills the connection until send says EAGAIN, then the peer reads and the
// writer is woken.
template <class Api>
Trace body_backpressure(Api& api) {
  Trace tr;
  const auto port = Api::next_port();
  Conn<Api> k;
  k.ls = api.socket(true);
  api.set_buffers(k.ls, 64 * 1024);
  api.bind(k.ls, api.server(port));
  api.listen(k.ls, 4);
  k.c = api.socket(false);
  api.set_buffers(k.c, 64 * 1024);
  api.connect(k.c, api.server(port));
  api.wait(k.ls, EPOLLIN);
  k.s = api.accept(k.ls);
  tr.push_back("client " + bits(api.wait(k.c, EPOLLOUT)));
  std::vector<std::uint8_t> chunk(16384);
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<std::uint8_t>(i * 7);
  std::size_t sent = 0;
  long r = 0;
  bool partial = false;
  for (int i = 0; i < 10000; ++i) {
    errno = 0;
    r = api.send(k.c, chunk.data(), chunk.size());
    if (r < 0) break;
    partial |= static_cast<std::size_t>(r) < chunk.size();
    sent += static_cast<std::size_t>(r);
    if (r == 0) break;
  }
  tr.push_back("filled " + std::string(sent > 0 ? "some" : "none") + " then " + res(r));
  (void)partial;
  // Read everything; the writer becomes writable again.
  std::vector<std::uint8_t> in(65536);
  std::size_t got = 0;
  bool intact = true;
  while (got < sent) {
    api.wait(k.s, EPOLLIN);
    const long n = api.recv(k.s, in.data(), in.size());
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) intact &= in[static_cast<std::size_t>(i)] == static_cast<std::uint8_t>(((got + static_cast<std::size_t>(i)) % chunk.size()) * 7);
    got += static_cast<std::size_t>(n);
  }
  tr.push_back("drained " + std::string(got == sent ? "all" : "short") + (intact ? " intact" : " corrupt"));
  tr.push_back("writer " + bits(api.wait(k.c, EPOLLOUT) & EPOLLOUT));
  tr.push_back("send-again " + res(api.send(k.c, "x", 1)));
  api.close(k.c);
  api.close(k.s);
  api.close(k.ls);
  return tr;
}

// UDP: bind conflicts, datagrams both ways with their senders, truncation,
// connected sends, EDESTADDRREQ, and an ICMP port unreachable reported to a
// connected socket as ECONNREFUSED.
template <class Api>
Trace body_udp(Api& api) {
  Trace tr;
  const std::uint16_t port = Api::next_udp_port();
  const std::uint16_t cport = Api::next_udp_port();
  const auto sa = api.server(port);
  const sockaddr_in any = any_addr(cport);
  const int s = api.udp_socket(true);
  tr.push_back("bind " + res(api.bind_plain(s, sa)));
  const int s2 = api.udp_socket(true);
  errno = 0;
  tr.push_back("bind-again " + res(api.bind_plain(s2, sa)));
  errno = 0;
  tr.push_back("send-unconnected " + res(api.send(s2, "x", 1)));
  char buf[64] = {};
  sockaddr_in from{};
  errno = 0;
  tr.push_back("recv-empty " + res(api.recvfrom(s, buf, sizeof buf, from)));
  tr.push_back("idle " + bits(api.events(s)));
  const int c = api.udp_socket(false);
  tr.push_back("bind-client " + res(api.bind_plain(c, any)));
  tr.push_back("sendto " + res(api.sendto(c, "ping", 4, sa)));
  tr.push_back("server " + bits(api.wait(s, EPOLLIN)));
  const long n = api.recvfrom(s, buf, sizeof buf, from);
  tr.push_back("recvfrom " + res(n) + " " + std::string(buf, 4) +
               (ntohs(from.sin_port) == cport ? " from-client" : " from-elsewhere"));
  tr.push_back("drained " + bits(api.events(s)));
  // Truncation: the rest of the datagram is gone.
  tr.push_back("sendto-long " + res(api.sendto(c, "hello world", 11, sa)));
  api.wait(s, EPOLLIN);
  const long n2 = api.recvfrom(s, buf, 5, from);
  tr.push_back("recv-short " + res(n2) + " " + std::string(buf, 5));
  errno = 0;
  tr.push_back("recv-rest " + res(api.recvfrom(s, buf, sizeof buf, from)));
  // The answer goes to the sender's address.
  tr.push_back("answer " + res(api.sendto(s, "pong", 4, from)));
  tr.push_back("client " + bits(api.wait(c, EPOLLIN)));
  const long n3 = api.recvfrom(c, buf, sizeof buf, from);
  tr.push_back("recv-answer " + res(n3) + " " + std::string(buf, 4));
  // Connected: send() without an address.
  tr.push_back("connect " + res(api.connect(c, sa)));
  tr.push_back("send-connected " + res(api.send(c, "xyz", 3)));
  api.wait(s, EPOLLIN);
  const long n4 = api.recv(s, buf, sizeof buf);
  tr.push_back("recv " + res(n4) + " " + std::string(buf, 3));
  // A connected socket hears of ICMP port unreachable.
  const int c2 = api.udp_socket(false);
  tr.push_back("connect-closed " + res(api.connect(c2, api.server(Api::next_udp_port()))));
  tr.push_back("send-to-closed " + res(api.send(c2, "?", 1)));
  tr.push_back("error " + bits(api.wait(c2, EPOLLERR)));
  errno = 0;
  tr.push_back("recv-refused " + res(api.recv(c2, buf, sizeof buf)));
  tr.push_back("after " + bits(api.events(c2)));
  for (int h : {c2, c, s2, s}) tr.push_back("close " + res(api.close(h)));
  return tr;
}

// UDP multicast membership: joins, leaves and source filters, one call at a
// time, with Linux's errno for each refusal (no datagrams: the kernel side is
// loopback).
template <class Api>
Trace body_membership(Api& api) {
  Trace tr;
  const in_addr g{htonl(0xef010203)};    // 239.1.2.3
  const in_addr uni{htonl(0x0a010101)};  // 10.1.1.1
  const in_addr s1{htonl(0x0a000001)};
  const in_addr s2{htonl(0x0a000002)};
  const int s = api.udp_socket(true);
  const sockaddr_in any = any_addr(Api::next_udp_port());
  tr.push_back("bind " + res(api.bind_plain(s, any)));
  auto call = [&](const char* what, int name, auto val, socklen_t len = sizeof(decltype(val))) {
    errno = 0;
    tr.push_back(std::string(what) + " " + res(api.ipopt(s, name, &val, len)));
  };
  const ip_mreq m{g, api.local_if()};
  ip_mreqn mn{};
  mn.imr_multiaddr = g;
  mn.imr_address = api.local_if();
  auto src = [&](in_addr grp, in_addr from) { return ip_mreq_source{grp, api.local_if(), from}; };
  call("join", IP_ADD_MEMBERSHIP, m);
  call("join-twice", IP_ADD_MEMBERSHIP, mn);
  call("join-unicast", IP_ADD_MEMBERSHIP, ip_mreq{uni, api.local_if()});
  call("join-short", IP_ADD_MEMBERSHIP, m, 4);
  call("drop", IP_DROP_MEMBERSHIP, mn);
  call("drop-again", IP_DROP_MEMBERSHIP, m);
  call("drop-unicast", IP_DROP_MEMBERSHIP, ip_mreq{uni, api.local_if()});
  call("drop-src-nojoin", IP_DROP_SOURCE_MEMBERSHIP, src(g, s1));
  call("block-nojoin", IP_BLOCK_SOURCE, src(g, s1));
  call("unblock-nojoin", IP_UNBLOCK_SOURCE, src(g, s1));
  call("add-src", IP_ADD_SOURCE_MEMBERSHIP, src(g, s1));
  call("add-src-again", IP_ADD_SOURCE_MEMBERSHIP, src(g, s1));
  call("add-src2", IP_ADD_SOURCE_MEMBERSHIP, src(g, s2));
  call("block-on-include", IP_BLOCK_SOURCE, src(g, s1));
  call("join-on-include", IP_ADD_MEMBERSHIP, m);
  call("drop-src", IP_DROP_SOURCE_MEMBERSHIP, src(g, s1));
  call("drop-src-again", IP_DROP_SOURCE_MEMBERSHIP, src(g, s1));
  call("drop-src-last", IP_DROP_SOURCE_MEMBERSHIP, src(g, s2));
  call("drop-after-last", IP_DROP_MEMBERSHIP, m);
  call("join", IP_ADD_MEMBERSHIP, m);
  call("add-src-on-any", IP_ADD_SOURCE_MEMBERSHIP, src(g, s1));
  call("block-on-include", IP_BLOCK_SOURCE, src(g, s1));
  call("drop", IP_DROP_MEMBERSHIP, m);
  call("join", IP_ADD_MEMBERSHIP, m);
  call("block", IP_BLOCK_SOURCE, src(g, s1));
  call("block-again", IP_BLOCK_SOURCE, src(g, s1));
  call("add-src-on-exclude", IP_ADD_SOURCE_MEMBERSHIP, src(g, s2));
  call("unblock-other", IP_UNBLOCK_SOURCE, src(g, s2));
  call("unblock", IP_UNBLOCK_SOURCE, src(g, s1));
  call("unblock-again", IP_UNBLOCK_SOURCE, src(g, s1));
  call("drop", IP_DROP_MEMBERSHIP, m);
  call("add-src-unicast", IP_ADD_SOURCE_MEMBERSHIP, src(uni, s1));
  call("add-src-short", IP_ADD_SOURCE_MEMBERSHIP, m);
  call("ttl", IP_MULTICAST_TTL, 8);
  call("ttl-default", IP_MULTICAST_TTL, -1);
  call("ttl-big", IP_MULTICAST_TTL, 256);
  call("ttl-byte", IP_MULTICAST_TTL, static_cast<unsigned char>(4), 1);
  call("loop", IP_MULTICAST_LOOP, 0);
  call("if", IP_MULTICAST_IF, api.local_if());
  call("if-any", IP_MULTICAST_IF, in_addr{0});
  call("if-other", IP_MULTICAST_IF, in_addr{htonl(0x0a090909)});
  // Closing a joined socket leaves its groups; a new socket joins afresh.
  call("join", IP_ADD_MEMBERSHIP, m);
  tr.push_back("close " + res(api.close(s)));
  const int s3 = api.udp_socket(true);
  errno = 0;
  tr.push_back("join-new " + res(api.ipopt(s3, IP_ADD_MEMBERSHIP, &m, sizeof m)));
  tr.push_back("close " + res(api.close(s3)));
  // Not on TCP.
  const int ts = api.socket(true);
  errno = 0;
  tr.push_back("join-tcp " + res(api.ipopt(ts, IP_ADD_MEMBERSHIP, &m, sizeof m)));
  tr.push_back("close " + res(api.close(ts)));
  return tr;
}

// getsockopt of the options setsockopt takes: defaults, what was set, and
// Linux's length rules (cut to the caller's length; TTL and LOOP as one byte
// when asked for less than an int). Loop's default is each side's own
// (documented in shim.hpp: ustack's is off, Linux's on).
template <class Api>
std::string get_int(Api& api, int h, int level, int name, socklen_t len = sizeof(int)) {
  unsigned char b[8];
  std::memset(b, 0xaa, sizeof b);
  socklen_t l = len;
  errno = 0;
  const int r = api.getopt(h, level, name, b, &l);
  if (r != 0) return res(r);
  std::string out = "len=" + std::to_string(l) + " [";
  for (std::size_t i = 0; i < 8; ++i) {
    char x[4];
    std::snprintf(x, sizeof x, "%02x", b[i]);
    out += (i ? " " : "") + std::string(x);
  }
  return out + "]";
}

template <class Api>
Trace body_getsockopt(Api& api) {
  Trace tr;
  const int s = api.udp_socket(true);
  auto get = [&](const char* what, int level, int name, socklen_t len = sizeof(int)) {
    tr.push_back(std::string(what) + " " + get_int(api, s, level, name, len));
  };
  auto set = [&](const char* what, int level, int name, auto v, socklen_t len = sizeof(decltype(v))) {
    errno = 0;
    tr.push_back(std::string(what) + " " + res(api.setopt(s, level, name, &v, len)));
  };
  get("ttl", IPPROTO_IP, IP_MULTICAST_TTL);
  get("ttl-byte", IPPROTO_IP, IP_MULTICAST_TTL, 1);
  get("ttl-2", IPPROTO_IP, IP_MULTICAST_TTL, 2);
  get("ttl-0", IPPROTO_IP, IP_MULTICAST_TTL, 0);
  get("ttl-8", IPPROTO_IP, IP_MULTICAST_TTL, 8);
  {
    int v = -1;
    socklen_t l = sizeof v;
    const int r = api.getopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &v, &l);
    tr.push_back("loop-default " + res(r) + (v == Api::kLoopDefault ? " documented" : " undocumented"));
  }
  get("if", IPPROTO_IP, IP_MULTICAST_IF);
  get("if-2", IPPROTO_IP, IP_MULTICAST_IF, 2);
  get("if-8", IPPROTO_IP, IP_MULTICAST_IF, 8);
  get("reuseaddr", SOL_SOCKET, SO_REUSEADDR);
  get("reuseaddr-2", SOL_SOCKET, SO_REUSEADDR, 2);
  get("reuseaddr-0", SOL_SOCKET, SO_REUSEADDR, 0);
  get("reuseport", SOL_SOCKET, SO_REUSEPORT);
  set("set-reuseaddr", SOL_SOCKET, SO_REUSEADDR, 1);
  get("reuseaddr", SOL_SOCKET, SO_REUSEADDR);
  get("reuseport", SOL_SOCKET, SO_REUSEPORT);
  set("set-ttl", IPPROTO_IP, IP_MULTICAST_TTL, 8);
  get("ttl", IPPROTO_IP, IP_MULTICAST_TTL);
  set("set-ttl-byte", IPPROTO_IP, IP_MULTICAST_TTL, static_cast<unsigned char>(200), 1);
  get("ttl-byte", IPPROTO_IP, IP_MULTICAST_TTL, 1);
  set("set-ttl-default", IPPROTO_IP, IP_MULTICAST_TTL, -1);
  get("ttl", IPPROTO_IP, IP_MULTICAST_TTL);
  set("set-loop", IPPROTO_IP, IP_MULTICAST_LOOP, 1);
  get("loop", IPPROTO_IP, IP_MULTICAST_LOOP);
  get("loop-byte", IPPROTO_IP, IP_MULTICAST_LOOP, 1);
  set("set-loop-0", IPPROTO_IP, IP_MULTICAST_LOOP, 0);
  get("loop", IPPROTO_IP, IP_MULTICAST_LOOP);
  set("set-loop-300", IPPROTO_IP, IP_MULTICAST_LOOP, 300);
  get("loop", IPPROTO_IP, IP_MULTICAST_LOOP);
  {
    set("set-if", IPPROTO_IP, IP_MULTICAST_IF, api.local_if());
    in_addr a{};
    socklen_t l = sizeof a;
    const int r = api.getopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a, &l);
    tr.push_back("if " + res(r) + " len=" + std::to_string(l) +
                 (a.s_addr == api.local_if().s_addr ? " the-address-set" : " another"));
  }
  set("set-if-other", IPPROTO_IP, IP_MULTICAST_IF, in_addr{htonl(0x0a090909)});  // refused: unchanged
  {
    in_addr a{};
    socklen_t l = sizeof a;
    api.getopt(s, IPPROTO_IP, IP_MULTICAST_IF, &a, &l);
    tr.push_back(std::string("if-after-refusal ") + (a.s_addr == api.local_if().s_addr ? "the-address-set" : "another"));
  }
  set("set-if-any", IPPROTO_IP, IP_MULTICAST_IF, in_addr{0});
  get("if", IPPROTO_IP, IP_MULTICAST_IF);
  // The socket is open on the lcore now (the multicast options opened it).
  set("clear-reuseaddr", SOL_SOCKET, SO_REUSEADDR, 0);
  get("reuseaddr", SOL_SOCKET, SO_REUSEADDR);
  set("set-reuseport", SOL_SOCKET, SO_REUSEPORT, 1);
  get("reuseaddr", SOL_SOCKET, SO_REUSEADDR);
  get("reuseport", SOL_SOCKET, SO_REUSEPORT);
  // Buffer sizes differ (Linux doubles them); only their presence is compared.
  for (int name : {SO_RCVBUF, SO_SNDBUF}) {
    int v = 0;
    socklen_t l = sizeof v;
    const int r = api.getopt(s, SOL_SOCKET, name, &v, &l);
    tr.push_back("buf " + res(r) + (v > 0 ? " some" : " none"));
  }
  // On a TCP socket Linux reports the multicast options' defaults too.
  const int ts = api.socket(true);
  tr.push_back("tcp-ttl " + get_int(api, ts, IPPROTO_IP, IP_MULTICAST_TTL));
  tr.push_back("tcp-if " + get_int(api, ts, IPPROTO_IP, IP_MULTICAST_IF));
  tr.push_back("tcp-reuseaddr " + get_int(api, ts, SOL_SOCKET, SO_REUSEADDR));
  tr.push_back("close " + res(api.close(ts)));
  tr.push_back("close " + res(api.close(s)));
  return tr;
}

// SO_REUSEADDR at any time, as Linux takes it: after a membership call
// (which opens ustack's socket on the lcore), and after bind; then two
// sockets share the group's port and both receive a datagram sent to it.
template <class Api>
Trace body_reuse_after_join(Api& api) {
  Trace tr;
  const in_addr g{htonl(0xef010204)};  // 239.1.2.4
  const std::uint16_t port = Api::next_udp_port();
  const sockaddr_in any = any_addr(port);
  const int one = 1;
  const ip_mreq m{g, api.local_if()};
  auto step = [&](const char* what, int r) { tr.push_back(std::string(what) + " " + res(r)); };
  const int s1 = api.udp_socket(true);
  errno = 0;
  step("join-1", api.ipopt(s1, IP_ADD_MEMBERSHIP, &m, sizeof m));
  step("reuse-1", api.setopt(s1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  step("bind-1", api.bind_plain(s1, any));
  const int s2 = api.udp_socket(true);
  step("reuse-2", api.setopt(s2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  step("bind-2", api.bind_plain(s2, any));
  step("join-2", api.ipopt(s2, IP_ADD_MEMBERSHIP, &m, sizeof m));
  // Without the option the port stays taken.
  const int s3 = api.udp_socket(true);
  errno = 0;
  step("bind-3", api.bind_plain(s3, any));
  // Sent to the group: each member gets its copy.
  const int c = api.udp_socket(false);
  step("sender", api.mcast_sender(c));
  sockaddr_in to = any;
  to.sin_addr = g;
  step("sendto", static_cast<int>(api.sendto(c, "grp", 3, to)));
  for (int h : {s1, s2}) {
    tr.push_back("member " + bits(api.wait(h, EPOLLIN)));
    char buf[16] = {};
    sockaddr_in from{};
    const long n = api.recvfrom(h, buf, sizeof buf, from);
    tr.push_back("recv " + res(n) + " " + std::string(buf, 3));
  }
  // After bind: the flag still counts for the binds that follow.
  const std::uint16_t port2 = Api::next_udp_port();
  const sockaddr_in any2 = any_addr(port2);
  const int s4 = api.udp_socket(true);
  step("bind-4", api.bind_plain(s4, any2));
  step("reuse-4-after-bind", api.setopt(s4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  const int s5 = api.udp_socket(true);
  step("reuse-5", api.setopt(s5, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  step("bind-5", api.bind_plain(s5, any2));
  for (int h : {c, s5, s4, s3, s2, s1}) step("close", api.close(h));
  return tr;
}

// Bad arguments to setsockopt / getsockopt: every errno as Linux's.
template <class Api>
Trace body_option_errors(Api& api) {
  Trace tr;
  const int u = api.udp_socket(true);
  const int t = api.socket(true);
  const int one = 1;
  const ip_mreq_source ms{in_addr{htonl(0xef010205)}, api.local_if(), in_addr{htonl(0x0a000001)}};
  unsigned char big[32] = {};
  std::memcpy(big, &ms, sizeof ms);
  for (int h : {u, t}) {
    const std::string k = h == u ? "udp " : "tcp ";
    auto set = [&](const char* what, int level, int name, const void* v, socklen_t len) {
      errno = 0;
      tr.push_back(k + "set " + what + " " + res(api.setopt(h, level, name, v, len)));
    };
    set("sol-short", SOL_SOCKET, SO_REUSEADDR, &one, 2);
    set("sol-null", SOL_SOCKET, SO_REUSEADDR, nullptr, sizeof one);
    set("sol-null-0", SOL_SOCKET, SO_REUSEADDR, nullptr, 0);
    set("sol-neg-len", SOL_SOCKET, SO_REUSEADDR, &one, static_cast<socklen_t>(-1));
    set("sol-unknown", SOL_SOCKET, 9999, &one, sizeof one);
    set("sol-unknown-short", SOL_SOCKET, 9999, &one, 2);
    set("sol-type", SOL_SOCKET, SO_TYPE, &one, sizeof one);
    set("sol-error", SOL_SOCKET, SO_ERROR, &one, sizeof one);
    const int zero = 0, neg = -5;
    set("rcvbuf-0", SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero);
    set("rcvbuf-neg", SOL_SOCKET, SO_RCVBUF, &neg, sizeof neg);
    set("rcvbuf-short", SOL_SOCKET, SO_RCVBUF, &one, 2);
    set("keepalive-null", SOL_SOCKET, SO_KEEPALIVE, nullptr, sizeof one);
    set("tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set("tcp-short", IPPROTO_TCP, TCP_NODELAY, &one, 2);
    set("tcp-null", IPPROTO_TCP, TCP_NODELAY, nullptr, sizeof one);
    set("tcp-unknown", IPPROTO_TCP, 9999, &one, sizeof one);
    set("tcp-unknown-short", IPPROTO_TCP, 9999, &one, 2);
    set("bad-level", 12345, 1, &one, sizeof one);
    set("bad-level-null", 12345, 1, nullptr, 0);
    set("ip-unknown", IPPROTO_IP, 9999, &one, sizeof one);
    set("ip-unknown-0", IPPROTO_IP, 9999, &one, 0);
    set("ttl-0", IPPROTO_IP, IP_MULTICAST_TTL, &one, 0);
    set("ttl-null", IPPROTO_IP, IP_MULTICAST_TTL, nullptr, sizeof one);
    set("ttl-null-1", IPPROTO_IP, IP_MULTICAST_TTL, nullptr, 1);
    const int m2 = -2, big_ttl = 300;
    set("ttl-neg", IPPROTO_IP, IP_MULTICAST_TTL, &m2, sizeof m2);
    set("ttl-300", IPPROTO_IP, IP_MULTICAST_TTL, &big_ttl, sizeof big_ttl);
    set("ttl-300-short", IPPROTO_IP, IP_MULTICAST_TTL, &big_ttl, 2);  // one byte read: 44
    set("loop-0", IPPROTO_IP, IP_MULTICAST_LOOP, &one, 0);
    set("loop-null", IPPROTO_IP, IP_MULTICAST_LOOP, nullptr, 2);
    set("loop", IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
    const in_addr lif = api.local_if();
    set("if-short", IPPROTO_IP, IP_MULTICAST_IF, &lif, 2);
    set("if-null", IPPROTO_IP, IP_MULTICAST_IF, nullptr, sizeof lif);
    set("join-null", IPPROTO_IP, IP_ADD_MEMBERSHIP, nullptr, sizeof(ip_mreq));
    set("join-0", IPPROTO_IP, IP_ADD_MEMBERSHIP, &ms, 0);
    if (h == u) {  // Linux takes source options on TCP sockets (ustack: ENOPROTOOPT)
      set("src-long", IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, big, 16);
      set("src-null", IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, nullptr, sizeof ms);
      set("src-null-short", IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, nullptr, 8);
    }
    auto get = [&](const char* what, int level, int name, void* v, socklen_t* len) {
      errno = 0;
      const int r = api.getopt(h, level, name, v, len);
      tr.push_back(k + "get " + what + " " + res(r) + (len ? " len=" + std::to_string(static_cast<int>(*len)) : ""));
    };
    int v = 0;
    socklen_t l = sizeof v;
    get("optlen-null", SOL_SOCKET, SO_TYPE, &v, nullptr);
    get("val-null", SOL_SOCKET, SO_TYPE, nullptr, &l);
    l = 0;
    get("val-null-0", SOL_SOCKET, SO_TYPE, nullptr, &l);
    l = static_cast<socklen_t>(-1);
    get("neg-len", SOL_SOCKET, SO_TYPE, &v, &l);
    l = sizeof v;
    get("sol-unknown", SOL_SOCKET, 9999, &v, &l);
    l = sizeof v;
    get("ip-unknown", IPPROTO_IP, 9999, &v, &l);
    l = sizeof v;
    get("bad-level", 12345, 1, &v, &l);
    l = sizeof v;
    get("tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, &v, &l);
    l = sizeof v;
    get("tcp-unknown", IPPROTO_TCP, 9999, &v, &l);
    l = 2;
    get("error-short", SOL_SOCKET, SO_ERROR, &v, &l);
    l = sizeof v;
    get("ttl-val-null", IPPROTO_IP, IP_MULTICAST_TTL, nullptr, &l);
    l = 1;
    get("ttl-val-null-1", IPPROTO_IP, IP_MULTICAST_TTL, nullptr, &l);
  }
  tr.push_back("close " + res(api.close(t)));
  tr.push_back("close " + res(api.close(u)));
  return tr;
}

template <class Body>
void compare(Body body) {
  KernelApi kapi;
  const Trace kernel = body(kapi);
  test::ShimWorld w;
  w.start();
  std::string err;
  auto t = shim::Thread::attach(w.hub, err);
  REQUIRE(t);
  UstackApi uapi{*t};
  const Trace ours = body(uapi);
  INFO("kernel trace / ustack trace");
  for (std::size_t i = 0; i < std::max(kernel.size(), ours.size()); ++i) {
    const std::string a = i < kernel.size() ? kernel[i] : "-";
    const std::string b = i < ours.size() ? ours[i] : "-";
    UNSCOPED_INFO((a == b ? "   " : "!! ") << a << "   |   " << b);
  }
  CHECK(kernel == ours);
}

}  // namespace

TEST_CASE("Same as Linux: echo, EAGAIN, half-close, EOF", "[shim][dual]") {
  compare([](auto& api) { return body_echo_half_close(api); });
}

TEST_CASE("Same as Linux: close with unread data resets the peer (ECONNRESET, then EOF, then EPIPE)", "[shim][dual]") {
  compare([](auto& api) { return body_reset(api); });
}

TEST_CASE("Same as Linux: connect to a closed port (EINPROGRESS, then ECONNREFUSED through SO_ERROR)", "[shim][dual]") {
  compare([](auto& api) { return body_refused(api); });
}

TEST_CASE("Same as Linux: a second listener on the port gets EADDRINUSE", "[shim][dual]") {
  compare([](auto& api) { return body_addr_in_use(api); });
}

TEST_CASE("Same as Linux: send until EAGAIN, the reader drains, the writer is woken", "[shim][dual]") {
  compare([](auto& api) { return body_backpressure(api); });
}

TEST_CASE("Same as Linux: UDP sendto/recvfrom, truncation, connect, EADDRINUSE, ECONNREFUSED", "[shim][dual][udp]") {
  compare([](auto& api) { return body_udp(api); });
}

TEST_CASE("Same as Linux: UDP multicast membership, source filters and their errno values", "[shim][dual][udp][mcast]") {
  compare([](auto& api) { return body_membership(api); });
}

TEST_CASE("Same as Linux: getsockopt of the multicast options, SO_REUSEADDR and the buffers", "[shim][dual][udp][sockopt]") {
  compare([](auto& api) { return body_getsockopt(api); });
}

TEST_CASE("Same as Linux: SO_REUSEADDR after a membership call and after bind; two members share the port",
          "[shim][dual][udp][mcast][sockopt]") {
  compare([](auto& api) { return body_reuse_after_join(api); });
}

TEST_CASE("Same as Linux: setsockopt and getsockopt errno for bad lengths, null pointers, unknown options and levels",
          "[shim][dual][sockopt]") {
  compare([](auto& api) { return body_option_errors(api); });
}
