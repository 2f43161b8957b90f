// The thread API: POSIX-like sockets for ordinary threads, over the stacks
// that run on ustack's lcores.
//
// A thread attaches once (Thread::attach) and gets its own command and
// completion rings to every lcore, so threads never share a ring or a lock.
// A handle belongs to the thread that created (or accepted) it; calling it
// from another thread is undefined.
//
// Calls return what their POSIX namesakes return and set errno with Linux's
// values: -1/EAGAIN when a non-blocking call cannot proceed, EINPROGRESS from
// connect(), ECONNREFUSED / ECONNRESET / ETIMEDOUT / EPIPE / EADDRINUSE...
// Differences from Linux are listed in docs/api.md; the main ones:
//   - EADDRINUSE comes from listen(), not bind() (the port is claimed on the
//     lcore when listening starts);
//   - connect() reports a local failure (no source port, no connection slot)
//     through SO_ERROR after EINPROGRESS, like a refused connection;
//   - no SIGPIPE: send() on a closed connection returns EPIPE.
//
// Every handle has an eventfd (eventfd(h)) that is readable exactly when the
// handle has something to report: data or EOF to read, a connection to
// accept, an error or hang-up, a finished connect, or send space after a
// send that failed with EAGAIN. Put it in your own epoll set, level- or
// edge-triggered (one edge per not-ready -> ready transition, so read or
// accept until EAGAIN as with Linux's EPOLLET), then call events(h) for the
// EPOLL* bits, or use Poller, which does both.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ustack::shim {

class Hub;
struct ThreadState;

// getsockopt level for ustack's own options.
inline constexpr int SOL_USTACK = 0x7573;
// Which lcore's stack the socket lives on (get only; choose with socket_on).
inline constexpr int USTACK_SO_LCORE = 1;

class Thread {
 public:
  // Attaches the calling thread: claims one channel on every lcore. nullptr
  // and `err` set when every channel is taken.
  static std::unique_ptr<Thread> attach(Hub& hub, std::string& err);
  // Closes every handle still open (connections get a FIN, or a RST when
  // data was left unread, as close() does).
  ~Thread();
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  // AF_INET, SOCK_STREAM or SOCK_DGRAM (optionally | SOCK_NONBLOCK), protocol
  // 0, IPPROTO_TCP or IPPROTO_UDP (SOCK_DGRAM: EPROTONOSUPPORT when the
  // lcore runs no UDP).
  // The socket lives on the lcores in turn (round robin).
  int socket(int domain, int type, int protocol);
  // The socket lives on lcore `lcore` (an index into the stack's lcores):
  // its connect, or a UDP socket's sends. A TCP listener, and a bound UDP
  // socket, span every lcore whichever lcore the handle is on (see listen,
  // bind).
  int socket_on(unsigned lcore, int domain, int type, int protocol);
  // UDP on a hub with several lcores: binds the port on every lcore of the
  // host (RSS may steer a datagram to any), the same port on each (port 0:
  // an ephemeral port free on all; so for connect's and sendto's implicit
  // bind). Fails as a whole (EADDRINUSE if the port is taken on any lcore),
  // leaving the socket unbound. close() closes every lcore's socket.
  int bind(int h, const sockaddr* addr, socklen_t len);
  // Listens on every lcore of the hub (each lcore's TCP owns only the
  // connections RSS steers to it, so any lcore may see a SYN): one listener
  // per lcore, `backlog` each, behind this one handle. Fails as a whole
  // (EADDRINUSE if the port is taken on any lcore), leaving the socket as
  // it was. Unbound or bound to port 0: an ephemeral port (32768-60999, as
  // Linux's autobind) free on every lcore, EAGAIN if 16 draws find none;
  // getsockname() tells which. close() closes every lcore's listener and
  // resets the connections not yet accepted.
  int listen(int h, int backlog);
  // accept4: flags may hold SOCK_NONBLOCK. Takes from the lcores in turn;
  // the connection lives on the lcore that accepted it (USTACK_SO_LCORE).
  int accept(int h, sockaddr* addr, socklen_t* len, int flags = 0);
  int connect(int h, const sockaddr* addr, socklen_t len);
  // flags: MSG_DONTWAIT, MSG_NOSIGNAL (always implied).
  ssize_t send(int h, const void* buf, std::size_t len, int flags);
  // flags: MSG_DONTWAIT, MSG_PEEK.
  ssize_t recv(int h, void* buf, std::size_t len, int flags);
  // UDP: one datagram per call; `to` null on a connected socket. EMSGSIZE
  // above the path MTU (ustack never fragments); EAGAIN when the command
  // ring is full. On a TCP handle, send() (EISCONN with `to`).
  ssize_t sendto(int h, const void* buf, std::size_t len, int flags, const sockaddr* to, socklen_t tolen);
  // UDP: the oldest datagram and its sender (on several lcores: from the
  // lcores in turn, each lcore's in arrival order); longer than `len`: truncated
  // (MSG_TRUNC: returns the datagram's length). flags: MSG_DONTWAIT,
  // MSG_PEEK, MSG_TRUNC. On a TCP handle, recv() and the peer's address.
  ssize_t recvfrom(int h, void* buf, std::size_t len, int flags, sockaddr* from, socklen_t* fromlen);
  int shutdown(int h, int how);
  int close(int h);
  // SOL_SOCKET: SO_BUSY_POLL (µs, set and get; accepted connections inherit
  // it): the thread promises to poll this handle (recv() in a loop), so the
  // lcore's eventfd wake-up for it waits that long for the thread to take
  // the data itself — a polling thread then pays no eventfd syscall at all;
  // a thread asleep in epoll_wait is woken that much later. Without it, a
  // recv() that takes data arriving within the same call still makes no
  // eventfd write of its own, but the lcore wakes an armed handle at once.
  // SO_ERROR (get, clears), SO_KEEPALIVE, SO_SNDBUF, SO_RCVBUF
  // (as given, not doubled; at least 2048; set before connect/bind),
  // SO_TYPE (get), SO_REUSEADDR/SO_REUSEPORT (UDP: several sockets on one
  // port when all set either; any time, as on Linux: a bound socket's flag
  // counts for later binds; TCP: accepted, no effect); IPPROTO_TCP (TCP
  // handles): TCP_NODELAY, TCP_QUICKACK (set); SOL_USTACK: USTACK_SO_LCORE
  // (get). IPPROTO_IP on UDP handles, set: IP_ADD_MEMBERSHIP,
  // IP_DROP_MEMBERSHIP (ip_mreq / ip_mreqn), IP_ADD_SOURCE_MEMBERSHIP,
  // IP_DROP_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE, IP_UNBLOCK_SOURCE
  // (ip_mreq_source); set and get: IP_MULTICAST_TTL (default 1),
  // IP_MULTICAST_LOOP (default 0: ustack does not loop a socket's multicast
  // back unless asked; Linux's default is 1), IP_MULTICAST_IF (in_addr,
  // default INADDR_ANY). Membership is applied on the lcore that owns IGMP
  // (queue 0's in ustack::Process), whichever lcore the handle is on, and
  // the group's datagrams are read through the handle; ENODEV when no lcore
  // of the host has IGMP. TTL, loop and interface apply to the handle's
  // own lcore, which sends.
  // Lengths and errno as Linux: set: a length short of the option EINVAL, a
  // null value EFAULT, an unknown option or level ENOPROTOOPT; get: the
  // value cut to *len (TTL and LOOP as one byte when *len < sizeof(int)), a
  // negative *len EINVAL, null pointers EFAULT, an unknown option
  // ENOPROTOOPT, an unknown level EOPNOTSUPP.
  int setsockopt(int h, int level, int name, const void* val, socklen_t len);
  int getsockopt(int h, int level, int name, void* val, socklen_t* len);
  // The local address: as bound (0.0.0.0:0 before bind); for a connection,
  // the address and port it uses (connect() picks the port once connected).
  int getsockname(int h, sockaddr* addr, socklen_t* len);
  int getpeername(int h, sockaddr* addr, socklen_t* len);
  // O_NONBLOCK through fcntl's flags: fcntl(h, F_SETFL, O_NONBLOCK).
  int set_nonblocking(int h, bool on);

  // The handle's eventfd (owned by the handle: closed by close()), -1 and
  // EBADF for a bad handle. A listener or a UDP socket on a hub with several
  // lcores gives an epoll fd over its lcores' eventfds instead (a UDP
  // socket from socket() on): pollable like an eventfd, readable exactly
  // while some lcore has a connection to accept, or a datagram or error.
  int eventfd(int h);
  // The handle's readiness as EPOLLIN / EPOLLOUT / EPOLLERR / EPOLLHUP /
  // EPOLLRDHUP bits, as Linux's poll would report them. Reporting EPOLLOUT
  // consumes the one-shot "connect done" / "writable again" report, so a
  // level-triggered eventfd does not stay readable for it.
  std::uint32_t events(int h);

  // Processes completions without making a call (a thread that only waits
  // on its epoll set need not call it: the eventfds do the waking).
  void poll();

  ThreadState& state() { return *s_; }

 private:
  explicit Thread(std::unique_ptr<ThreadState> s);
  std::unique_ptr<ThreadState> s_;
};

// epoll over handles: epoll_wait on their eventfds, answered in ustack's
// terms (the handle, its EPOLL* bits, your data).
struct PollEvent {
  int handle;
  std::uint32_t events;
  std::uint32_t data;
};

class Poller {
 public:
  explicit Poller(Thread& t);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  // `edge`: EPOLLET on the eventfd (one report per readiness transition).
  int add(int h, std::uint32_t data, bool edge = false);
  int del(int h);
  // Waits up to timeout_ms (-1: forever) and returns how many events were
  // filled, or -1 with errno (EINTR).
  int wait(PollEvent* out, int max, int timeout_ms);
  int fd() const { return epfd_; }

 private:
  Thread& t_;
  int epfd_;
};

}  // namespace ustack::shim
