// A UDP socket on a hub with several lcores for ONE address: datagrams
// steered to any lcore reach the one handle (no ICMP port unreachable from
// the lcore that is not the handle's), its fd wakes for either lcore (level
// and edge), a multicast join works whatever lcore the handle is on, close
// leaves nothing behind, and a bind failure on one lcore undoes the others.
//
// The fixture is what ustack::Process builds with two queues: two engines
// (lcores 0 and 1, both 10.1.0.1 with one MAC) over one side of the
// in-memory pair, behind a steering device that plays the NIC's RSS: a
// unicast UDP datagram goes to lcore (source port % 2), everything else
// (multicast, as McastSteerDevice does, ARP, ICMP) to lcore 0, which alone
// has an IgmpHost. The client is stack b (10.1.0.2) with its own one-lcore
// hub. One std::thread runs all three engines.
#include <catch2/catch.hpp>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "test/support/support.hpp"
#include "test/unit/shim/world.hpp"

using namespace ustack;
using test::fd_kind;
using test::open_fds;
using test::wait_until;
using shim::Thread;

namespace {

// Both lcores' devices read the one inner device and share out what it
// received (single-threaded: one thread runs every engine).
struct UdpSteer {
  Device& inner;
  std::deque<rte_mbuf*> q[2];
  // Unicast UDP per lcore: counted by the lcore thread, read by the test's.
  std::atomic<std::uint64_t> steered[2] = {0, 0};
  ~UdpSteer() {
    for (auto& d : q)
      for (rte_mbuf* m : d) rte_pktmbuf_free(m);
  }

  // Lcore (source port % 2) for unicast IPv4/UDP, lcore 0 for the rest.
  static unsigned lcore_of(const rte_mbuf* m) {
    const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
    const std::size_t len = rte_pktmbuf_data_len(m);
    if (len < 14 + 20 + 8 || p[12] != 0x08 || p[13] != 0x00) return 0;
    const std::uint8_t* ip = p + 14;
    if ((ip[16] >> 4) == 0xe || ip[9] != 17) return 0;  // multicast, or not UDP
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if (len < 14 + ihl + 8) return 0;
    return static_cast<unsigned>(((ip[ihl] << 8) | ip[ihl + 1]) % 2);
  }

  void pull(TimeNs now) {
    rte_mbuf* burst[32];
    std::uint16_t n;
    while ((n = inner.rx_burst(std::span<rte_mbuf*>(burst), now)) != 0)
      for (std::uint16_t i = 0; i < n; ++i) {
        const unsigned l = lcore_of(burst[i]);
        const auto* p = rte_pktmbuf_mtod(burst[i], const std::uint8_t*);
        if (rte_pktmbuf_data_len(burst[i]) > 34 && p[14 + 9] == 17 && (p[14 + 16] >> 4) != 0xe)
          steered[l].fetch_add(1, std::memory_order_relaxed);
        q[l].push_back(burst[i]);
      }
  }
};

class UdpSteerDevice final : public Device {
 public:
  UdpSteerDevice(UdpSteer& s, unsigned lcore) : s_(s), lcore_(lcore) {}
  const DeviceCaps& caps() const override { return s_.inner.caps(); }
  std::uint16_t rx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override {
    s_.pull(now);
    std::uint16_t n = 0;
    auto& q = s_.q[lcore_];
    while (n < pkts.size() && !q.empty()) {
      pkts[n++] = q.front();
      q.pop_front();
    }
    return n;
  }
  std::uint16_t tx_burst(std::span<rte_mbuf*> pkts, TimeNs now) override { return s_.inner.tx_burst(pkts, now); }
  bool set_mc_addr_list(std::span<const MacAddr> macs) override { return s_.inner.set_mc_addr_list(macs); }
  bool set_allmulticast(bool on) override { return s_.inner.set_allmulticast(on); }
  void flush(TimeNs now) override { s_.inner.flush(now); }

 private:
  UdpSteer& s_;
  unsigned lcore_;
};

struct UdpSpanWorld {
  static shim::LcoreConfig lcore_cfg(std::uint32_t handles) {
    shim::LcoreConfig c;
    c.max_threads = 2;
    c.channel.handles = handles;
    return c;
  }
  static UdpConfig udp_cfg() {
    UdpConfig c;
    c.max_sockets = 8;  // a leaked UdpSocket shows up within a few rounds
    return c;
  }

  TimeNs now = kNsPerSec;
  MemPair wire;
  UdpSteer steer{wire.a()};
  UdpSteerDevice d0{steer, 0};
  UdpSteerDevice d1{steer, 1};
  Engine a0;
  Engine a1;
  Engine b;
  static tcp::TcpConfig tcp_cfg(std::uint8_t n) {
    tcp::TcpConfig c;
    c.max_connections = 8;  // no TCP here
    return test::TcpPair::tcp_config(n, c);
  }
  tcp::TcpLayer t0{a0.stack(), tcp_cfg(1)};
  tcp::TcpLayer t1{a1.stack(), tcp_cfg(1)};
  tcp::TcpLayer tb{b.stack(), tcp_cfg(2)};
  IgmpHost i0{a0.stack(), IgmpConfig{}};
  IgmpHost ib{b.stack(), IgmpConfig{}};
  UdpLayer u0;
  UdpLayer u1{a1.stack(), udp_cfg(), nullptr};  // as the runtime: only queue 0 has IGMP
  UdpLayer ub{b.stack(), UdpConfig{}, &ib};
  // The servers' channels small: a leaked id shows up within a few rounds.
  shim::ShimLcore l0{t0, lcore_cfg(16), &u0};
  shim::ShimLcore l1{t1, lcore_cfg(16), &u1};
  shim::ShimLcore lb{tb, lcore_cfg(64), &ub};
  shim::Hub server{std::vector<shim::ShimLcore*>{&l0, &l1}};
  shim::Hub client{std::vector<shim::ShimLcore*>{&lb}};
  std::atomic<bool> stop{false};
  std::function<void(TimeNs)> on_lcore;  // on-lcore code of a test
  std::thread lcore;

  // `igmp` false: no lcore of the server has an IgmpHost.
  explicit UdpSpanWorld(rte_mempool* mp = test::pool(), bool igmp = true)
      : wire(4096, test::TcpPair::caps(1), test::TcpPair::caps(2)),
        a0(d0, test::TcpPair::config(1), mp, now),
        a1(d1, test::TcpPair::config(1), mp, now),
        b(wire.b(), test::TcpPair::config(2), mp, now),
        u0(a0.stack(), udp_cfg(), igmp ? &i0 : nullptr) {
    a0.set_hook(&l0);
    a1.set_hook(&l1);
    b.set_hook(&lb);
    a0.stack().arp().update(Ipv4Addr{10, 1, 0, 2}, test::TcpPair::caps(2).mac, true, now);
    a1.stack().arp().update(Ipv4Addr{10, 1, 0, 2}, test::TcpPair::caps(2).mac, true, now);
    b.stack().arp().update(Ipv4Addr{10, 1, 0, 1}, test::TcpPair::caps(1).mac, true, now);
  }
  ~UdpSpanWorld() { halt(); }

  void start() { lcore = std::thread([this] { run(); }); }
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
      if (n == 0) std::this_thread::yield();
    }
  }
  // Datagrams an lcore answered with ICMP port unreachable.
  std::uint64_t unreachable() {
    return a0.stack().counters().get(StackCounter::udp_drop_no_socket) +
           a1.stack().counters().get(StackCounter::udp_drop_no_socket);
  }
};

std::unique_ptr<Thread> attach(shim::Hub& hub) {
  std::string err;
  auto t = Thread::attach(hub, err);
  REQUIRE(t);
  return t;
}

sockaddr_in addr(std::uint8_t host, std::uint16_t port) { return test::ShimWorld::addr(host, port); }
sockaddr_in group_addr(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(0xef010101u);  // 239.1.1.1
  return a;
}

int bound_udp(Thread& t, int on_lcore, std::uint32_t host, std::uint16_t port, bool reuse = false) {
  const int s = on_lcore < 0 ? t.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
                             : t.socket_on(static_cast<unsigned>(on_lcore), AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(s >= 0);
  if (reuse) {
    const int one = 1;
    REQUIRE(t.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(host);
  REQUIRE(t.bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  return s;
}

void send_to(Thread& t, int s, const std::string& msg, const sockaddr_in& to) {
  REQUIRE(t.sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
          static_cast<ssize_t>(msg.size()));
}

struct Got {
  std::string msg;
  std::uint16_t port;
};

// Every datagram that arrives within `timeout_ms` of the last one, until `want` have.
std::vector<Got> receive(Thread& t, int s, std::size_t want, int timeout_ms = 3000) {
  std::vector<Got> out;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < want && std::chrono::steady_clock::now() < end) {
    char buf[256];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const ssize_t n = t.recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n >= 0) {
      out.push_back(Got{std::string(buf, static_cast<std::size_t>(n)), ntohs(from.sin_port)});
      continue;
    }
    REQUIRE(errno == EAGAIN);
    test::fd_readable(t.eventfd(s), 10);
  }
  return out;
}


constexpr std::uint32_t kServer = (10u << 24) | (1u << 16) | 1u;

}  // namespace

TEST_CASE("Shim: a UDP socket on two lcores receives datagrams steered to either, in order per sender",
          "[shim][udpspan]") {
  const int primary = GENERATE(0, 1);
  const bool wildcard = GENERATE(false, true);
  CAPTURE(primary, wildcard);
  UdpSpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int s = bound_udp(*ts, primary, wildcard ? 0 : kServer, 9000);
  CHECK(fd_kind(ts->eventfd(s)) == "anon_inode:[eventpoll]");

  // Four senders, two per lcore, five datagrams each, interleaved.
  constexpr int kSenders = 4, kEach = 5;
  std::vector<int> cs;
  for (int i = 0; i < kSenders; ++i) cs.push_back(bound_udp(*tc, -1, 0, static_cast<std::uint16_t>(20000 + i)));
  for (int k = 0; k < kEach; ++k)
    for (int i = 0; i < kSenders; ++i) send_to(*tc, cs[i], std::to_string(k), addr(1, 9000));

  const auto got = receive(*ts, s, kSenders * kEach);
  REQUIRE(got.size() == kSenders * kEach);
  std::map<std::uint16_t, std::vector<std::string>> by;
  for (const auto& g : got) by[g.port].push_back(g.msg);
  REQUIRE(by.size() == kSenders);
  for (const auto& [port, msgs] : by) {
    CAPTURE(port);
    CHECK(msgs == std::vector<std::string>{"0", "1", "2", "3", "4"});
  }
  // Both lcores had their share, and neither answered port unreachable.
  CHECK(w.steer.steered[0] >= kEach * 2);
  CHECK(w.steer.steered[1] >= kEach * 2);
  CHECK(w.unreachable() == 0);
  char buf[8];
  CHECK(ts->recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr) == -1);
  CHECK(errno == EAGAIN);
  CHECK(ts->events(s) == EPOLLOUT);

  // connect() filters on every lcore: only the peer's datagrams, whichever
  // lcore they land on; the server's reply leaves from its port.
  const auto peer = addr(2, 20001);
  REQUIRE(ts->connect(s, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) == 0);
  for (int i = 0; i < kSenders; ++i) send_to(*tc, cs[i], "to connected " + std::to_string(i), addr(1, 9000));
  const auto only = receive(*ts, s, 2, 300);
  REQUIRE(only.size() == 1);
  CHECK(only[0].port == 20001);
  CHECK(only[0].msg == "to connected 1");
  REQUIRE(ts->send(s, "reply", 5, 0) == 5);
  const auto reply = receive(*tc, cs[1], 1);
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].port == 9000);
  for (int c : cs) tc->close(c);
  REQUIRE(ts->close(s) == 0);
}

TEST_CASE("Shim: a two-lcore UDP socket's fd wakes for a datagram on either lcore, and only then",
          "[shim][udpspan]") {
  const bool edge = GENERATE(false, true);
  CAPTURE(edge);
  UdpSpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int s = ts->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(s >= 0);
  // In the epoll set before bind: the fd does not change when the members come.
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | (edge ? EPOLLET : 0u);
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, ts->eventfd(s), &ev) == 0);
  const auto sa = addr(1, 9100);
  REQUIRE(ts->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  epoll_event out{};
  REQUIRE(::epoll_wait(ep, &out, 1, 20) == 0);

  const int even = bound_udp(*tc, -1, 0, 21000), odd = bound_udp(*tc, -1, 0, 21001);
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    const int c = i % 2 ? odd : even;
    send_to(*tc, c, "x" + std::to_string(i), addr(1, 9100));
    // One wake-up, with no call on the server thread in between.
    REQUIRE(::epoll_wait(ep, &out, 1, 5000) == 1);
    // Level-triggered: still readable until read. Edge: no second edge.
    CHECK(::epoll_wait(ep, &out, 1, 0) == (edge ? 0 : 1));
    CHECK((ts->events(s) & EPOLLIN) != 0);
    char buf[16];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    REQUIRE(ts->recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len) ==
            static_cast<ssize_t>(("x" + std::to_string(i)).size()));
    CHECK(ntohs(from.sin_port) == (i % 2 ? 21001 : 21000));
    REQUIRE(ts->recvfrom(s, buf, sizeof buf, 0, nullptr, nullptr) == -1);
    REQUIRE(errno == EAGAIN);
    // Read: not readable, and no late wake-up.
    CHECK(::epoll_wait(ep, &out, 1, 20) == 0);
  }
  CHECK(w.steer.steered[0] >= 6);
  CHECK(w.steer.steered[1] >= 6);
  CHECK(w.unreachable() == 0);
  ::close(ep);
}

TEST_CASE("Shim: a multicast receiver whose socket is on lcore 1 joins through lcore 0 and leaves",
          "[shim][udpspan][mcast]") {
  const bool join_first = GENERATE(false, true);  // membership before bind opens lcore 0's socket first
  CAPTURE(join_first);
  UdpSpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int s = ts->socket_on(1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(s >= 0);
  const int one = 1;
  REQUIRE(ts->setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
  ip_mreq mr{};
  mr.imr_multiaddr.s_addr = htonl(0xef010101u);
  sockaddr_in wild = addr(0, 9200);
  wild.sin_addr.s_addr = 0;
  if (join_first) REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0);
  REQUIRE(ts->bind(s, reinterpret_cast<const sockaddr*>(&wild), sizeof wild) == 0);
  if (!join_first) REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0);
  REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == -1);
  CHECK(errno == EADDRINUSE);  // lcore 0's filter is the one edited

  // The group's datagrams, from several source ports: all go to lcore 0.
  std::vector<int> cs;
  for (int i = 0; i < 4; ++i) cs.push_back(bound_udp(*tc, -1, 0, static_cast<std::uint16_t>(22000 + i)));
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 4; ++i) send_to(*tc, cs[i], "m" + std::to_string(k), group_addr(9200));
  const auto got = receive(*ts, s, 12);
  CHECK(got.size() == 12);
  // A unicast datagram to the port still reaches the handle from lcore 1.
  send_to(*tc, cs[1], "u", addr(1, 9200));
  const auto uni = receive(*ts, s, 1);
  REQUIRE(uni.size() == 1);
  CHECK(uni[0].msg == "u");

  REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr) == 0);
  REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr) == -1);
  CHECK(errno == EADDRNOTAVAIL);
  for (int i = 0; i < 4; ++i) send_to(*tc, cs[i], "after leave", group_addr(9200));
  CHECK(receive(*ts, s, 1, 200).empty());
  for (int c : cs) tc->close(c);
  REQUIRE(ts->close(s) == 0);
}

TEST_CASE("Shim: membership with no IgmpHost on any lcore is still ENODEV", "[shim][udpspan][mcast]") {
  UdpSpanWorld w(test::pool(), false);
  w.start();
  auto ts = attach(w.server);
  const int s = bound_udp(*ts, 1, 0, 9300);
  ip_mreq mr{};
  mr.imr_multiaddr.s_addr = htonl(0xef010101u);
  REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == -1);
  CHECK(errno == ENODEV);
  REQUIRE(ts->close(s) == 0);
}

TEST_CASE("Shim: closing a two-lcore UDP socket frees every lcore's socket, id and mbuf",
          "[shim][udpspan]") {
  test::ScopedPool mp(4095);
  const unsigned before = mp.avail();
  {
    UdpSpanWorld w(mp.mp);
    w.start();
    auto ts = attach(w.server);
    auto tc = attach(w.client);
    const int even = bound_udp(*tc, -1, 0, 23000), odd = bound_udp(*tc, -1, 0, 23001);
    const std::size_t fds = open_fds();
    // More rounds than the channels have ids (16) or the layers UdpSockets
    // (8): a leaked member fails a later round, and so does a port still
    // held (each round binds the same one right after the close).
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      const int s = bound_udp(*ts, round % 2, kServer, 9400);
      ip_mreq mr{};
      mr.imr_multiaddr.s_addr = htonl(0xef010101u);
      REQUIRE(ts->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0);
      for (int k = 0; k < 3; ++k) {
        send_to(*tc, even, "e", addr(1, 9400));
        send_to(*tc, odd, "o", addr(1, 9400));
      }
      // Read one; the rest stays queued on both lcores' handles.
      REQUIRE(receive(*ts, s, 1).size() == 1);
      REQUIRE(wait_until([&] { return w.steer.steered[0] + w.steer.steered[1] >= 6u * (round + 1); }));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      REQUIRE(ts->close(s) == 0);
      CHECK(open_fds() == fds);
    }
    CHECK(w.unreachable() == 0);
    tc->close(even);
    tc->close(odd);
    ts.reset();
    tc.reset();
    w.halt();
  }
  CHECK(mp.avail() == before);
}

TEST_CASE("Shim: a UDP bind that fails on one lcore undoes the others and leaves the socket unbound",
          "[shim][udpspan]") {
  const int primary = GENERATE(0, 1);  // 1: lcore 0's member is bound, then the primary fails
  CAPTURE(primary);
  UdpSpanWorld w;
  // Something on lcore 1 already holds the port.
  UdpSocket* taken = w.u1.open();
  REQUIRE(taken);
  REQUIRE(taken->bind(Ipv4Addr{}, 9500) == UdpStatus::ok);
  std::atomic<bool> release{false}, released{false}, probe{false};
  std::atomic<int> probe_st{-1};
  w.on_lcore = [&](TimeNs now) {
    // Another socket on lcore 0 binding the port alone (no reuse).
    if (probe.load() && probe_st.load() == -1) {
      UdpSocket* p = w.u0.open();
      probe_st.store(p ? static_cast<int>(p->bind(Ipv4Addr{}, 9500)) : -2);
      if (p) p->close(now);
    }
    if (release.load() && !released.load()) {
      taken->close(now);
      released.store(true);
    }
  };
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int s = ts->socket_on(static_cast<unsigned>(primary), AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(s >= 0);
  const int fd = ts->eventfd(s);
  const std::size_t fds = open_fds();
  const auto sa = addr(1, 9500);
  REQUIRE(ts->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == -1);
  REQUIRE(errno == EADDRINUSE);
  CHECK(open_fds() == fds);  // the members' eventfds are gone
  CHECK(ts->eventfd(s) == fd);
  // Lcore 0 let the port go again: another socket takes it there alone.
  probe.store(true);
  REQUIRE(wait_until([&] { return probe_st.load() != -1; }));
  CHECK(probe_st.load() == static_cast<int>(UdpStatus::ok));
  const int c = bound_udp(*tc, -1, 0, 24000);
  // Once lcore 1 lets the port go, the same socket binds on both.
  release.store(true);
  REQUIRE(wait_until([&] { return released.load(); }));
  REQUIRE(ts->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  const int c2 = bound_udp(*tc, -1, 0, 24001);
  send_to(*tc, c, "even", sa);
  send_to(*tc, c2, "odd", sa);
  CHECK(receive(*ts, s, 2).size() == 2);
  CHECK(w.unreachable() == 0);
  REQUIRE(ts->close(s) == 0);
}

TEST_CASE("Shim: an unbound UDP socket's sendto binds one ephemeral port on every lcore",
          "[shim][udpspan]") {
  UdpSpanWorld w;
  w.start();
  auto ts = attach(w.server);
  auto tc = attach(w.client);
  const int srv = bound_udp(*tc, -1, 0, 25000);
  const int s = ts->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  send_to(*ts, s, "hello", addr(2, 25000));
  const auto got = receive(*tc, srv, 1);
  REQUIRE(got.size() == 1);
  const std::uint16_t port = got[0].port;
  CHECK(port >= 49152);
  // The peer answers from ports that land on either lcore: all arrive.
  std::vector<int> cs;
  for (int i = 0; i < 4; ++i) cs.push_back(bound_udp(*tc, -1, 0, static_cast<std::uint16_t>(25001 + i)));
  for (int c : cs) send_to(*tc, c, "back", addr(1, port));
  CHECK(receive(*ts, s, 4).size() == 4);
  CHECK(w.unreachable() == 0);
}

TEST_CASE("Shim: a UDP socket on a one-lcore hub is one eventfd, as before", "[shim][udpspan]") {
  UdpSpanWorld w;
  w.start();
  auto tc = attach(w.client);
  const int s = tc->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(s >= 0);
  const int efd = tc->eventfd(s);
  CHECK(fd_kind(efd) == "anon_inode:[eventfd]");
  const std::size_t fds = open_fds();
  const auto sa = addr(2, 9600);
  REQUIRE(tc->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  ip_mreq mr{};
  mr.imr_multiaddr.s_addr = htonl(0xef010101u);
  REQUIRE(tc->setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0);
  CHECK(open_fds() == fds);
  CHECK(tc->eventfd(s) == efd);
  REQUIRE(tc->close(s) == 0);
}
