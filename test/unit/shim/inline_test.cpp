// The shim's inline paths (3415eb8): small sends inside the command slot
// (send_inline), held in an lcore mbuf when TCP cannot take them whole, left
// in the command ring when there is no mbuf either (cmd_stalled); small
// received segments inside the completion (data_inline); and the two sides'
// cached credit counters (tx_acked on the thread, rx_consumed and
// rx_dgrams_consumed on the lcore). Every stream here carries a position
// pattern, so a lost, duplicated or reordered byte is seen where it happens.
#include <catch2/catch.hpp>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test/unit/shim/conn.hpp"

using namespace ustack;
using shim::Thread;

namespace {

using test::attach;
using test::Bufs;
using test::open_pair;
using test::Pair;
using test::wait_for;

// Nothing more than was sent is waiting on s: recv() has no byte for it.
void check_nothing_more(Thread& t, int s) {
  std::uint8_t x;
  CHECK(t.recv(s, &x, 1, 0) == -1);
  CHECK(errno == EAGAIN);
}

// Byte i of every stream: position-dependent with a long period, so a
// dropped, repeated or swapped run of bytes does not match.
std::uint8_t pattern(std::uint64_t i) { return static_cast<std::uint8_t>((i * 131) ^ (i >> 8) ^ (i >> 16)); }

// Sends n bytes of the pattern from stream offset `off` (one call).
ssize_t send_pat(Thread& t, int h, std::uint64_t off, std::size_t n, int flags = 0) {
  std::vector<std::uint8_t> b(n);
  for (std::size_t k = 0; k < n; ++k) b[k] = pattern(off + k);
  return t.send(h, b.data(), n, flags);
}

// The receiving end of a pattern stream.
struct Rx {
  std::uint64_t got = 0;
  std::uint64_t first_bad = ~std::uint64_t{0};  // stream offset of the first wrong byte
  bool intact() const { return first_bad == ~std::uint64_t{0}; }
  void take(const std::uint8_t* p, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k)
      if (p[k] != pattern(got + k) && intact()) first_bad = got + k;
    got += n;
  }
  // True when `p` (n bytes peeked) is what comes next, without taking it.
  bool peek_ok(const std::uint8_t* p, std::size_t n) const {
    for (std::size_t k = 0; k < n; ++k)
      if (p[k] != pattern(got + k)) return false;
    return true;
  }
  // Reads once (at most `max`); returns recv's result.
  ssize_t read(Thread& t, int h, std::size_t max) {
    std::vector<std::uint8_t> b(max);
    const ssize_t r = t.recv(h, b.data(), max, 0);
    if (r > 0) take(b.data(), static_cast<std::size_t>(r));
    return r;
  }
};

// A deterministic size generator (no <random>: the same sizes on every run
// and every standard library).
struct Sizes {
  std::uint64_t s;
  explicit Sizes(std::uint64_t seed) : s(seed) {}
  std::uint64_t next(std::uint64_t n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (s >> 33) % n;
  }
  std::size_t small() { return 1 + next(shim::kInlineBytes); }  // 1..96: send_inline
  // Small sends mixed with sends that go as mbufs: 1024..1100 bytes (one
  // mbuf, zero-copy into TCP, a send-ring slot each), 97..1023 (one mbuf,
  // copied) and 2000..5000 (a chain of two or three).
  std::size_t mixed() {
    const auto r = next(10);
    if (r < 5) return small();
    if (r < 7) return 1024 + next(77);
    if (r < 9) return 97 + next(1023 - 97 + 1);
    return 2000 + next(3001);
  }
};

// The lcore's counters are its own: read them while it is parked.
[[maybe_unused]] shim::LcoreCounters counters(test::ShimWorld& w, shim::ShimLcore& lc) {
  w.pause();
  const shim::LcoreCounters c = lc.counters();
  w.paused.store(false, std::memory_order_release);
  return c;
}

// Takes every mbuf the pool has left (it has no per-lcore cache: the
// test pools are made with none), so the lcore's next allocation fails.
std::vector<rte_mbuf*> exhaust(rte_mempool* mp) {
  std::vector<rte_mbuf*> v;
  while (rte_mbuf* m = rte_pktmbuf_alloc(mp)) v.push_back(m);
  return v;
}

// With the lcore parked: the mempool's own hand-over between threads is
// not one ThreadSanitizer can see, the park's handshake is.
void give_back(test::ShimWorld& w, std::vector<rte_mbuf*>& v) {
  w.pause();
  for (rte_mbuf* m : v) rte_pktmbuf_free(m);
  v.clear();
  w.paused.store(false, std::memory_order_release);
}

// exhaust() while the lcore runs, for the same reason parked.
void take_more(test::ShimWorld& w, rte_mempool* mp, std::vector<rte_mbuf*>& hoard) {
  w.pause();
  for (rte_mbuf* m : exhaust(mp)) hoard.push_back(m);
  w.paused.store(false, std::memory_order_release);
}

// Reads everything on s until `want` bytes came (or the timeout): the bytes
// go through `rx`, which checks them.
bool read_all(Thread& t, int s, Rx& rx, std::uint64_t want, std::size_t chunk = 4096, int timeout_ms = 5000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (rx.got < want) {
    const ssize_t r = rx.read(t, s, chunk);
    if (r > 0) continue;
    if (r == 0) return false;
    if (errno != EAGAIN) return false;
    if (std::chrono::steady_clock::now() > end) return false;
    test::fd_readable(t.eventfd(s), 10);
  }
  return true;
}

}  // namespace

// A send the lcore holds because TCP could not take it (here: the pool was
// empty when the lcore ran it) while TCP had nothing in flight: no ACK will
// come to call on_writable. What follows it must not leave it stranded: a
// small send (send_inline, which queues behind it), nothing at all, or a
// close (which waits for held sends to go first). Two connections at once,
// with an lcore that takes one handle per iteration from each of its lists.
TEST_CASE("Shim inline: a send held with nothing in flight is not stranded", "[shim][inline]") {
  const int after = GENERATE(0, 1, 2);  // 0: nothing, 1: a small send, 2: close
  INFO("after the held send: " << (after == 0 ? "nothing" : after == 1 ? "a small send" : "close"));
  test::ScopedPool mp(2047);
  shim::LcoreConfig cfg;
  cfg.slots_per_poll = 1;
  test::ShimWorld w(cfg, test::ShimWorld::tcp_cfg(16), mp.mp);
  auto t = attach(w);
  Pair p[2] = {open_pair(*t, static_cast<std::uint16_t>(7380 + 2 * after)),
               open_pair(*t, static_cast<std::uint16_t>(7381 + 2 * after))};
  Rx rx[2];
  std::uint64_t sent[2] = {0, 0};
  // Some traffic first, all of it delivered and acknowledged.
  for (int i = 0; i < 2; ++i) {
    REQUIRE(send_pat(*t, p[i].c, sent[i], 50) == 50);
    sent[i] += 50;
    REQUIRE(read_all(*t, p[i].s, rx[i], sent[i]));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the delayed ACKs, if any
  // A 200-byte send (an mbuf the thread fills) reaches the lcore when the
  // pool is empty: TCP cannot copy it, the lcore holds it.
  w.pause();
  for (int i = 0; i < 2; ++i) {
    REQUIRE(send_pat(*t, p[i].c, sent[i], 200) == 200);
    sent[i] += 200;
  }
  auto hoard = exhaust(mp.mp);
  w.paused.store(false, std::memory_order_release);
  REQUIRE(test::wait_until([&] { return w.la.channel(0).cmd.empty(); }));
  w.settle_lcore();
  give_back(w, hoard);
  for (int i = 0; i < 2; ++i) {
    if (after == 1) {
      REQUIRE(send_pat(*t, p[i].c, sent[i], 10) == 10);
      sent[i] += 10;
    }
    if (after == 2) REQUIRE(t->close(p[i].c) == 0);
  }
  for (int i = 0; i < 2; ++i) {
    INFO("connection " << i);
    CHECK(read_all(*t, p[i].s, rx[i], sent[i], 4096, 3000));
    INFO("sent " << sent[i] << ", received " << rx[i].got << ", first bad byte at " << rx[i].first_bad);
    CHECK(rx[i].got == sent[i]);
    CHECK(rx[i].intact());
    if (after == 2) {
      std::uint8_t x;
      CHECK(wait_for(*t, p[i].s, EPOLLRDHUP, 3000) & EPOLLRDHUP);
      CHECK(t->recv(p[i].s, &x, 1, 0) == 0);  // then the FIN
    }
  }
}

// Item 2: many small sends (send_inline) and larger ones (mbufs) while the
// peer does not read, so that credit runs out (EAGAIN) and, with TCP's send
// ring sized for 64 KiB, TCP's ring fills before the credit does (a 1 KiB
// zero-copy send and a small copied one take a ring slot each): the lcore
// then holds sends, small ones in mbufs of its own, behind the earlier
// ones. Once the peer reads, the writer is woken (EPOLLOUT) and the whole
// stream arrives exactly.
TEST_CASE("Shim inline: small and large sends under backpressure arrive exactly, EAGAIN then EPOLLOUT",
          "[shim][inline]") {
  const int variant = GENERATE(0, 1);
  tcp::TcpConfig tcfg = test::ShimWorld::tcp_cfg(16);
  tcfg.defaults.sndbuf = 64 * 1024;  // TCP's send ring: 64 + 16 slots
  test::ShimWorld w({}, tcfg);
  auto t = attach(w);
  Bufs b;
  b.s_rcvbuf = 2048;  // the reader's credit and window: the writer's fill first
  if (variant == 1) b.c_sndbuf = 16 * 1024;  // a small send credit (TCP's ring does not fill)
  INFO("variant " << variant);
  Pair p = open_pair(*t, static_cast<std::uint16_t>(7400 + variant), b);
  Sizes sz(7 + static_cast<std::uint64_t>(variant));
  constexpr std::uint64_t kTotal = 400'000;
  std::uint64_t sent = 0;
  // Phase 1, the peer does not read: a 1 KiB send then a small one, so that
  // each takes a slot of TCP's send ring (a zero-copy mbuf, then a fresh
  // mbuf to copy into): 80 slots hold about 43 KiB, less than the 64 KiB
  // credit of variant 0.
  int turn = 0;
  auto fill = [&] {
    for (int i = 0; i < 100'000; ++i) {
      const std::size_t n = ++turn % 2 ? 1024 + sz.next(77) : sz.small();
      const ssize_t r = send_pat(*t, p.c, sent, n);
      if (r < 0) {
        REQUIRE(errno == EAGAIN);
        return true;
      }
      sent += static_cast<std::uint64_t>(r);
    }
    return false;
  };
  // An EAGAIN asks the lcore for a wake-up, and the lcore then publishes
  // the send count it has (ACKs may have come since the thread last read
  // it): the next send may find credit again. Until the peer's window is
  // closed and TCP's buffer (or ring) is full: then a send is refused
  // outright however long the thread waits, and no wake-up comes.
  int rounds = 0;
  for (;;) {
    const std::uint64_t before = sent;
    REQUIRE(fill());
    if (sent == before) break;
    // The peer's last (delayed) ACKs, and the lcore's answer to the EAGAIN.
    test::fd_readable(t->eventfd(p.c), 60);
    w.settle_lcore();
    REQUIRE(++rounds < 200);
  }
  const std::uint64_t stuck_at = sent;
  CHECK(sent >= 16 * 1024);
  CHECK((t->events(p.c) & EPOLLOUT) == 0);
  {
    // Small and large sends alike are refused (no partial send either).
    ssize_t r = send_pat(*t, p.c, sent, 1);
    CHECK(r == -1);
    CHECK(errno == EAGAIN);
    if (r > 0) sent += static_cast<std::uint64_t>(r);
    r = send_pat(*t, p.c, sent, 3000);
    CHECK(r == -1);
    CHECK(errno == EAGAIN);
    if (r > 0) sent += static_cast<std::uint64_t>(r);
  }
  CHECK_FALSE(test::fd_readable(t->eventfd(p.c), 50));
  // Phase 2: the peer reads everything; the writer goes on when woken.
  Rx rx;
  bool can_send = false;
  int woken = 0, stalls = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (rx.got < kTotal && std::chrono::steady_clock::now() < end) {
    while (can_send && sent < kTotal) {
      const std::size_t n = std::min<std::uint64_t>(sz.mixed(), kTotal - sent);
      const ssize_t r = send_pat(*t, p.c, sent, n);
      if (r < 0) {
        REQUIRE(errno == EAGAIN);
        can_send = false;
      } else {
        sent += static_cast<std::uint64_t>(r);
      }
    }
    const ssize_t r = rx.read(*t, p.s, 1 + sz.next(3000));
    if (r > 0) continue;
    REQUIRE(r < 0);
    REQUIRE(errno == EAGAIN);
    if (!can_send && sent < kTotal && test::fd_readable(t->eventfd(p.c), 0)) {
      const std::uint32_t m = t->events(p.c);
      CHECK((m & EPOLLOUT) != 0);  // woken for send space, not spuriously
      can_send = true;
      ++woken;
      continue;
    }
    // Nothing to read and nothing to send: something must arrive.
    pollfd fds[2] = {{t->eventfd(p.s), POLLIN, 0}, {t->eventfd(p.c), POLLIN, 0}};
    if (::poll(fds, 2, 2000) == 0) {
      ++stalls;
      break;
    }
  }
  INFO("sent " << sent << ", received " << rx.got << ", first bad byte at " << rx.first_bad);
  CHECK(stalls == 0);
  CHECK(woken > 0);
  CHECK(rx.got > stuck_at);
  CHECK(sent == kTotal);
  CHECK(rx.got == kTotal);
  CHECK(rx.intact());
  check_nothing_more(*t, p.s);
}

// Item 3: no mbuf for the rest of a small send that TCP cannot take whole.
// The peer's window is closed (it does not read) and TCP's last buffer mbuf
// has some room; the pool is then emptied by the test, and small sends
// queued behind that room find TCP unable to take them (it takes what fits
// in the last mbuf, then finds no mbuf) and the lcore no mbuf to hold the
// rest: the send stays at the head of the command ring (cmd_stalled) with
// the commands after it, the thread gets EAGAIN on the full ring, and
// nothing is lost or sent twice once the mbufs come back.
TEST_CASE("Shim inline: with no mbuf to hold a send's rest, it stays in the command ring", "[shim][inline]") {
  test::ScopedPool mp(4095);
  shim::LcoreConfig cfg;
  cfg.channel.cmd_ring = 64;
  test::ShimWorld w(cfg, test::ShimWorld::tcp_cfg(16), mp.mp);
  auto t = attach(w);
  Bufs b;
  b.s_rcvbuf = 2048;
  Pair p = open_pair(*t, 7420, b);
  Sizes sz(3);
  std::uint64_t sent = 0;
  // One small send of the next size; a size refused (EAGAIN) is tried again
  // next time, so the stream's message boundaries, and with them where the
  // stalled send is cut, are the same on every run.
  std::size_t pending = 0;
  auto push_one = [&] {
    if (!pending) pending = sz.small();
    const ssize_t r = send_pat(*t, p.c, sent, pending);
    if (r < 0) {
      REQUIRE(errno == EAGAIN);
      return false;
    }
    sent += static_cast<std::uint64_t>(r);
    pending -= static_cast<std::size_t>(r);
    return true;
  };
  // Fills until the ring (64 commands) or the credit says EAGAIN.
  auto push_small = [&] {
    for (int i = 0; i < 10'000; ++i)
      if (!push_one()) return;
    FAIL("no EAGAIN");
  };
  // Phase A: about 12 KB of small sends; the peer takes a few KB and closes
  // its window, the rest waits in TCP's send buffer (copied sends share
  // 2 KiB mbufs: the last one is partly free).
  while (sent < 12'000)
    if (!push_one()) REQUIRE(wait_for(*t, p.c, EPOLLOUT) & EPOLLOUT);
  REQUIRE(test::wait_until([&] { return w.la.channel(0).cmd.empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the peer's ACKs, delayed ones too
  REQUIRE(wait_for(*t, p.s, EPOLLIN) & EPOLLIN);  // the reader has data it does not read yet
  const std::uint64_t stalled0 = counters(w, w.la).cmd_stalled;
  CHECK(stalled0 == 0);

  // Phase B: the lcore parked, the pool emptied, the command ring filled
  // with small sends (64 of them: more than any last mbuf's free room).
  w.pause();
  auto hoard = exhaust(mp.mp);
  REQUIRE(!hoard.empty());
  const std::uint64_t before_b = sent;
  push_small();
  CHECK(sent - before_b > 2200);  // more than a 2 KiB mbuf's room
  w.paused.store(false, std::memory_order_release);

  // Phase C: the lcore runs what fits, then stalls on the first send it
  // cannot hold, and keeps retrying it. (Should a late ACK free an mbuf of
  // TCP's meanwhile, the test takes that one too.)
  REQUIRE(test::wait_until(
      [&] {
        take_more(w, mp.mp, hoard);
        return counters(w, w.la).cmd_stalled > stalled0;
      },
      3000));
  // The ring refills behind the stalled send, and then stays full: EAGAIN.
  push_small();
  const std::uint64_t at_stall = sent;
  const std::uint64_t stalled1 = counters(w, w.la).cmd_stalled;
  // Retried on every iteration, and still stalled.
  REQUIRE(test::wait_until([&] { return counters(w, w.la).cmd_stalled > stalled1 + 10; }, 3000));
  {
    const ssize_t r = send_pat(*t, p.c, sent, 1);
    CHECK(r == -1);
    CHECK(errno == EAGAIN);
    if (r > 0) sent += static_cast<std::uint64_t>(r);
  }
  CHECK(sent == at_stall);
  CHECK_FALSE(test::fd_readable(t->eventfd(p.c), 20));  // no send space while stalled
  CHECK_FALSE(w.la.channel(0).cmd.empty());

  // Phase D: the mbufs come back; the stalled send runs, the ring drains,
  // and the writer is woken for the room.
  give_back(w, hoard);
  REQUIRE(test::wait_until([&] { return w.la.channel(0).cmd.empty(); }, 3000));
  CHECK(wait_for(*t, p.c, EPOLLOUT) & EPOLLOUT);

  // Phase E: the reader takes everything, while the writer adds a tail.
  Rx rx;
  const std::uint64_t total = sent + 5000;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rx.got < total && std::chrono::steady_clock::now() < end) {
    if (sent < total) {
      const ssize_t r = send_pat(*t, p.c, sent, std::min<std::uint64_t>(sz.small(), total - sent));
      if (r > 0) sent += static_cast<std::uint64_t>(r);
      else REQUIRE(errno == EAGAIN);
    }
    const ssize_t r = rx.read(*t, p.s, 1500);
    if (r < 0) {
      REQUIRE(errno == EAGAIN);
      if (sent == total) test::fd_readable(t->eventfd(p.s), 10);
    }
  }
  INFO("sent " << sent << ", received " << rx.got << ", first bad byte at " << rx.first_bad);
  CHECK(sent == total);
  CHECK(rx.got == total);
  CHECK(rx.intact());
  check_nothing_more(*t, p.s);
}

namespace {

// Waits until s has at least n bytes queued for the thread (MSG_PEEK), and
// checks them against what the stream should carry next.
void wait_queued(Thread& t, int s, const Rx& rx, std::size_t n) {
  std::vector<std::uint8_t> b(n + 1);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const ssize_t r = t.recv(s, b.data(), b.size(), MSG_PEEK);
    if (r >= 0 && static_cast<std::size_t>(r) >= n) {
      REQUIRE(static_cast<std::size_t>(r) == n);  // no more than was sent
      REQUIRE(rx.peek_ok(b.data(), n));
      return;
    }
    REQUIRE((r > 0 || errno == EAGAIN));
    REQUIRE(std::chrono::steady_clock::now() < end);
    test::fd_readable(t.eventfd(s), 5);
  }
}

// MSG_PEEK of up to `max` bytes: must be exactly what comes next.
std::size_t peek_check(Thread& t, int s, const Rx& rx, std::size_t max) {
  std::vector<std::uint8_t> b(max);
  const ssize_t r = t.recv(s, b.data(), max, MSG_PEEK);
  if (r < 0) {
    REQUIRE(errno == EAGAIN);
    return 0;
  }
  CHECK(rx.peek_ok(b.data(), static_cast<std::size_t>(r)));
  return static_cast<std::size_t>(r);
}

}  // namespace

// Item 4: a segment of at most 96 bytes that reaches a thread which has
// consumed everything before it crosses inside the completion (data_inline)
// and waits in the handle's inline block; later data waits behind it as
// mbufs. Reads smaller than the block, MSG_PEEK across the block and the
// mbufs after it, and reads crossing from one to the other are byte-exact.
TEST_CASE("Shim inline: received small segments, partial reads and MSG_PEEK across the inline block",
          "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7440);
  Rx rx;
  std::uint64_t sent = 0;
  auto send_n = [&](std::size_t n) {
    REQUIRE(send_pat(*t, p.c, sent, n) == static_cast<ssize_t>(n));
    sent += n;
  };

  SECTION("one segment at a time, read in pieces smaller than the segment") {
    for (const std::size_t n : {1u, 2u, 7u, 50u, 95u, 96u, 97u, 200u}) {
      for (const std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{13}, n}) {
        INFO("segment " << n << ", reads of " << piece);
        send_n(n);
        wait_queued(*t, p.s, rx, n);
        std::size_t left = n;
        while (left) {
          // What is left peeks whole, then a piece is read.
          CHECK(peek_check(*t, p.s, rx, 1000) == left);
          const ssize_t r = rx.read(*t, p.s, piece);
          REQUIRE(r == static_cast<ssize_t>(std::min(piece, left)));
          left -= static_cast<std::size_t>(r);
          if (left) CHECK(test::fd_readable(t->eventfd(p.s), 0));  // still readable while bytes are left
        }
        check_nothing_more(*t, p.s);
        CHECK_FALSE(test::fd_readable(t->eventfd(p.s), 0));
      }
    }
  }

  SECTION("an inline block, then small and large segments behind it as mbufs") {
    for (int round = 0; round < 20; ++round) {
      INFO("round " << round);
      // The thread has consumed everything: this one goes inline.
      const std::size_t first = 1 + static_cast<std::size_t>(round * 37) % 96;
      send_n(first);
      wait_queued(*t, p.s, rx, first);
      // Behind the unread block: a small segment (an mbuf now: the block is
      // not consumed) and a large one.
      const std::size_t second = 1 + static_cast<std::size_t>(round * 53) % 96;
      const std::size_t third = 97 + static_cast<std::size_t>(round * 211) % 1900;
      send_n(second);
      wait_queued(*t, p.s, rx, first + second);
      send_n(third);
      const std::size_t all = first + second + third;
      wait_queued(*t, p.s, rx, all);
      // A peek across all three, and shorter ones ending inside each.
      CHECK(peek_check(*t, p.s, rx, all + 100) == all);
      CHECK(peek_check(*t, p.s, rx, first) == first);
      CHECK(peek_check(*t, p.s, rx, first + 1) == first + 1);
      CHECK(peek_check(*t, p.s, rx, first + second + 1) == first + second + 1);
      // Read part of the block, peek again from inside it across the rest.
      const std::size_t a = (first + 1) / 2;
      REQUIRE(rx.read(*t, p.s, a) == static_cast<ssize_t>(a));
      CHECK(peek_check(*t, p.s, rx, all) == all - a);
      // One read from inside the block into the mbufs.
      const std::size_t b = first - a + second / 2 + 1;
      REQUIRE(rx.read(*t, p.s, b) == static_cast<ssize_t>(b));
      CHECK(peek_check(*t, p.s, rx, all) == all - a - b);
      // The rest in one go.
      REQUIRE(rx.read(*t, p.s, all) == static_cast<ssize_t>(all - a - b));
      check_nothing_more(*t, p.s);
    }
  }

  SECTION("small and large segments interleaved with random reads and peeks") {
    Sizes sz(11);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (int i = 0; i < 3000 && std::chrono::steady_clock::now() < end; ++i) {
      const auto r = sz.next(8);
      const std::size_t n = r < 5 ? sz.small() : (r < 7 ? 97 + sz.next(1500) : 1500 + sz.next(6000));
      send_n(n);
      // Often wait for the reader to catch up (so the next small segment
      // goes inline), sometimes let segments pile up.
      const bool catch_up = sz.next(3) != 0;
      while (rx.got < sent) {
        if (sz.next(4) == 0) peek_check(*t, p.s, rx, 1 + sz.next(300));
        const ssize_t k = rx.read(*t, p.s, 1 + sz.next(200));
        if (k < 0) {
          REQUIRE(errno == EAGAIN);
          if (!catch_up) break;
          test::fd_readable(t->eventfd(p.s), 5);
        }
      }
    }
    REQUIRE(read_all(*t, p.s, rx, sent, 333));
  }
  INFO("sent " << sent << ", received " << rx.got << ", first bad byte at " << rx.first_bad);
  CHECK(rx.got == sent);
  CHECK(rx.intact());
}

// A reader polling recv() (no epoll, no peek first) is inside the call when
// a small segment's completion arrives: with nothing queued before them its
// bytes go from the ring's slot straight into the caller's buffer, all of
// them or, for a smaller buffer, the first part (the rest is queued for the
// next call). Several segments arriving in one drain, buffers smaller and
// larger than them, and a segment arriving behind a queued rest keep the
// stream byte-exact, and once everything is read the eventfd is not
// readable.
TEST_CASE("Shim inline: a reader polling recv takes small segments straight from the ring, whole or in part",
          "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  Pair p = open_pair(*t, 7445);
  const int one = 1;
  REQUIRE(t->setsockopt(p.c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
  Rx rx;
  std::uint64_t sent = 0;
  Sizes sz(29);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int rounds = 0;
  for (; rounds < 1000 && std::chrono::steady_clock::now() < end; ++rounds) {
    const std::size_t pieces[] = {1, 3, 13, 40, 64, 95, 96, 97, 200, 500};
    const auto poll_end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    const auto read_some = [&](std::uint64_t until, std::size_t piece) {
      while (rx.got < until) {
        const ssize_t r = rx.read(*t, p.s, piece ? piece : pieces[sz.next(std::size(pieces))]);
        if (r == 0 || (r < 0 && errno != EAGAIN)) FAIL("recv: " << r << " " << strerror(errno));
        if (r < 0 && std::chrono::steady_clock::now() > poll_end) FAIL("nothing for 5 s");
      }
    };
    const auto send_one = [&](std::size_t n) {
      REQUIRE(send_pat(*t, p.c, sent, n) == static_cast<ssize_t>(n));
      sent += n;
    };
    if (rounds % 2 == 0) {
      // One to four segments back to back (no Nagle: one segment each),
      // then reads of random sizes polled while they arrive.
      for (auto k = 1 + sz.next(4); k; --k) send_one(sz.small());
    } else {
      // A segment read in part as it arrives (its rest is queued), then
      // another whose completion waits in the ring until the next call:
      // it must queue behind that rest, not go first.
      const std::size_t n = 2 + sz.next(shim::kInlineBytes - 1);
      send_one(n);
      read_some(rx.got + 1, 1 + sz.next(n - 1));
      send_one(sz.small());
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    read_some(sent, 0);
    REQUIRE(rx.got == sent);  // no more than was sent
    REQUIRE(rx.intact());
    check_nothing_more(*t, p.s);
    CHECK_FALSE(test::fd_readable(t->eventfd(p.s), 0));
  }
  INFO("rounds " << rounds << ", sent " << sent << ", first bad byte at " << rx.first_bad);
  CHECK(rounds > 100);
  CHECK(rx.intact());
}

namespace {

// What the peer (c) sees after s, holding `n` unread bytes of which it read
// `read_first`, does `how`: a short transcript, the same for an inline
// block as for mbufs.
std::string close_transcript(Thread& t, Pair& p, std::size_t n, std::size_t read_first, const std::string& how) {
  std::string out;
  Rx rx;
  REQUIRE(send_pat(t, p.c, 0, n) == static_cast<ssize_t>(n));
  wait_queued(t, p.s, rx, n);
  if (read_first) REQUIRE(rx.read(t, p.s, read_first) == static_cast<ssize_t>(read_first));
  std::uint8_t buf[1024];
  if (how == "close") {
    REQUIRE(t.close(p.s) == 0);
  } else if (how == "shut_wr") {
    REQUIRE(t.shutdown(p.s, SHUT_WR) == 0);
  } else if (how == "shut_rd") {
    REQUIRE(t.shutdown(p.s, SHUT_RD) == 0);
    // The bytes already here are still read, then EOF (as Linux).
    REQUIRE(read_all(t, p.s, rx, n, 7));
    out += "s:data-intact=" + std::to_string(rx.intact()) + ";";
    out += "s:recv=" + std::to_string(t.recv(p.s, buf, sizeof buf, 0)) + ";";
    REQUIRE(t.close(p.s) == 0);  // everything read: an orderly close
  }
  // The peer's view: an error (reset) or EOF.
  const std::uint32_t m = wait_for(t, p.c, EPOLLERR | EPOLLHUP | EPOLLRDHUP);
  out += "c:err=" + std::to_string((m & EPOLLERR) != 0) + ";";
  const ssize_t r = t.recv(p.c, buf, sizeof buf, 0);
  out += "c:recv=" + std::to_string(r) + (r < 0 ? "/" + std::string(strerror(errno)) : "") + ";";
  if (how == "shut_wr") {
    // Half-closed: s still reads its bytes, whole, then closes cleanly.
    REQUIRE(read_all(t, p.s, rx, n, 5));
    out += "s:data-intact=" + std::to_string(rx.intact()) + ";";
    REQUIRE(t.close(p.s) == 0);
    const ssize_t r2 = t.recv(p.c, buf, sizeof buf, 0);
    out += "c:recv-after-close=" + std::to_string(r2) + ";";
  }
  t.close(p.c);
  return out;
}

}  // namespace

// Item 4, close: a handle closed with unread bytes resets the connection
// (Linux), whether they wait in the inline block (a small segment) or in
// mbufs, and whether part of them was read; an orderly close or shutdown
// with the bytes read is the same for both too.
TEST_CASE("Shim inline: close and shutdown with unread inline data behave as with mbuf data", "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  std::uint16_t port = 7460;
  struct Case {
    std::string how;
    std::size_t read_first;  // of 20 (inline) or of 500 (mbufs)
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"close", 0, "c:err=1;c:recv=-1/Connection reset by peer;"},
      {"close", 5, "c:err=1;c:recv=-1/Connection reset by peer;"},
      {"close", 20, "c:err=0;c:recv=0;"},  // inline: all read (mbufs: 480 left)
      {"shut_wr", 0, "c:err=0;c:recv=0;s:data-intact=1;c:recv-after-close=0;"},
      {"shut_rd", 3, "s:data-intact=1;s:recv=0;c:err=0;c:recv=0;"},
  };
  for (const Case& k : cases) {
    std::string got[2];
    const std::size_t sizes[2] = {20, 500};
    for (int i = 0; i < 2; ++i) {
      Pair p = open_pair(*t, port++);
      got[i] = close_transcript(*t, p, sizes[i], k.read_first, k.how);
      t->close(p.ls);
    }
    INFO(k.how << " after reading " << k.read_first);
    CHECK(got[0] == k.expect);  // inline block
    if (k.read_first < 20) CHECK(got[1] == got[0]);  // mbufs: the same
    else CHECK(got[1] == "c:err=1;c:recv=-1/Connection reset by peer;");  // 480 unread
  }
}

// Item 5, receive side: the lcore reads the thread's consumed count only
// when its cached copy says the credit is short. A thread that reads slowly
// with a small SO_RCVBUF (2 KiB of credit) still gets every byte, small
// segments crossing inline whenever it has caught up, and the lcore goes
// back to delivering each time the thread has read (a stall would leave the
// reader with nothing while bytes are owed).
TEST_CASE("Shim inline: a slow reader with a small receive credit gets everything, without stalls", "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  Bufs b;
  b.s_rcvbuf = 2048;
  Pair p = open_pair(*t, 7480, b);
  Sizes sz(5);
  constexpr std::uint64_t kTotal = 150'000;
  std::uint64_t sent = 0;
  Rx rx;
  int stalls = 0, waits = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (rx.got < kTotal && std::chrono::steady_clock::now() < end) {
    // A burst of sends, mostly small, until EAGAIN or a random stop.
    while (sent < kTotal && sz.next(4) != 0) {
      const std::size_t n = std::min<std::uint64_t>(sz.next(5) ? sz.small() : 97 + sz.next(3000), kTotal - sent);
      const ssize_t r = send_pat(*t, p.c, sent, n);
      if (r < 0) {
        REQUIRE(errno == EAGAIN);
        break;
      }
      sent += static_cast<std::uint64_t>(r);
    }
    // Slow reads: a few small pieces, now and then a pause.
    for (int i = 0; i < 3; ++i) {
      const ssize_t r = rx.read(*t, p.s, 1 + sz.next(64));
      if (r > 0) continue;
      REQUIRE(errno == EAGAIN);
      if (rx.got < sent) {
        // Bytes are owed to the reader: the lcore must deliver them.
        ++waits;
        if (!test::fd_readable(t->eventfd(p.s), 2000)) ++stalls;
      }
      break;
    }
    if (sz.next(50) == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (stalls) break;
  }
  INFO("sent " << sent << ", received " << rx.got << ", waits " << waits << ", first bad byte at " << rx.first_bad);
  CHECK(stalls == 0);
  CHECK(sent == kTotal);
  CHECK(rx.got == kTotal);
  CHECK(rx.intact());
}

// Item 5, UDP: the datagram credit (LcoreConfig::udp_dgrams) is cached the
// same way; a reader that takes datagrams one at a time, slowly, gets each
// burst whole and in order.
TEST_CASE("Shim inline: a slow UDP reader with a small datagram credit gets every datagram", "[shim][inline][udp]") {
  shim::LcoreConfig cfg;
  cfg.udp_dgrams = 4;
  test::ShimWorld w(cfg);
  auto t = attach(w);
  const int s = t->socket_on(1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const auto sa = test::ShimWorld::addr(2, 9140);
  REQUIRE(t->bind(s, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  const int c = t->socket_on(0, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(t->connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  // One datagram first: ARP holds only a few packets while it resolves.
  const std::uint32_t warm = 0xffffffffu;
  REQUIRE(t->send(c, &warm, sizeof warm, 0) == 4);
  REQUIRE(test::fd_readable(t->eventfd(s), 3000));
  std::uint32_t v = 0;
  REQUIRE(t->recv(s, &v, sizeof v, 0) == 4);
  constexpr int kBursts = 12, kPerBurst = 40;  // a burst fits the socket's queue (64) + the credit
  std::uint32_t next = 0, expect = 0;
  bool ordered = true;
  int stalls = 0;
  for (int burst = 0; burst < kBursts && !stalls; ++burst) {
    for (int i = 0; i < kPerBurst; ++i, ++next)
      while (t->send(c, &next, sizeof next, 0) < 0) {
        REQUIRE(errno == EAGAIN);
        t->poll();
      }
    while (expect < next) {
      const ssize_t n = t->recv(s, &v, sizeof v, 0);
      if (n < 0) {
        REQUIRE(errno == EAGAIN);
        if (!test::fd_readable(t->eventfd(s), 2000)) ++stalls;
        if (stalls) break;
        continue;
      }
      REQUIRE(n == 4);
      ordered &= v == expect;
      ++expect;
      if (expect % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  }
  CHECK(stalls == 0);
  CHECK(expect == static_cast<std::uint32_t>(kBursts * kPerBurst));
  CHECK(ordered);
  t->close(c);
  t->close(s);
}

// Item 5, send side: the thread reads the lcore's count of bytes that left
// TCP's buffer only when its cached copy does not cover a send. With a 2 KiB
// SO_SNDBUF the credit is used up by one send: the next is refused (EAGAIN),
// and once the peer has read and acknowledged, the writer hears of it
// (EPOLLOUT) and sends again, round after round, as one mbuf send or as
// inline pieces; a send may be partial when only part is acknowledged.
TEST_CASE("Shim inline: a small send credit recovers once the peer acknowledges", "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  Bufs b;
  b.c_sndbuf = 2048;
  b.s_rcvbuf = 2048;
  Pair p = open_pair(*t, 7490, b);
  int sndbuf = 0;
  socklen_t sl = sizeof sndbuf;
  REQUIRE(t->getsockopt(p.c, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) == 0);
  REQUIRE(sndbuf == 2048);
  Rx rx;
  std::uint64_t sent = 0;
  Sizes sz(9);
  int eagains = 0, wakeups = 0;
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    // 2 KiB: in calls of the whole rest (one mbuf send each) or in inline
    // pieces; on EAGAIN, wait for the wake-up.
    const std::uint64_t goal = sent + 2048;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (sent < goal) {
      REQUIRE(std::chrono::steady_clock::now() < end);
      const std::size_t n = round % 2 ? std::min<std::uint64_t>(sz.small(), goal - sent) : goal - sent;
      const ssize_t r = send_pat(*t, p.c, sent, n);
      if (r < 0) {
        REQUIRE(errno == EAGAIN);
        ++eagains;
        REQUIRE(wait_for(*t, p.c, EPOLLOUT, 3000) & EPOLLOUT);
        ++wakeups;
        continue;
      }
      REQUIRE(r > 0);
      sent += static_cast<std::uint64_t>(r);
    }
    // The credit is most likely used up now: refused. (Not always: the
    // peer's TCP acknowledges what its application has not read yet, and
    // the lcore reports those ACKs while the credit is short, so a send
    // racing them may be taken, in part or whole.)
    {
      const ssize_t r = send_pat(*t, p.c, sent, 2048);
      if (r < 0) {
        CHECK(errno == EAGAIN);
        ++eagains;
      } else {
        sent += static_cast<std::uint64_t>(r);
      }
    }
    // The peer reads it all; its ACKs return the credit.
    REQUIRE(read_all(*t, p.s, rx, sent));
  }
  INFO("EAGAIN " << eagains << ", woken " << wakeups);
  CHECK(rx.got == sent);
  CHECK(rx.intact());
  CHECK(sent >= 40 * 2048);
  CHECK(eagains > 0);
}

// Send credit after ACKs without an EAGAIN first (Linux's behaviour): a send
// that takes the whole SO_SNDBUF, the peer reads and acknowledges it all,
// and then, with no refused send in between, the writer sees EPOLLOUT and a
// send of the whole buffer goes through (at least three quarters of it). (The lcore used to publish the acknowledged count
// only with a send, on_writable after a refusal, or an EAGAIN's answer.)
TEST_CASE("Shim inline: send credit comes back with the ACKs, before any EAGAIN", "[shim][inline]") {
  test::ShimWorld w;
  auto t = attach(w);
  Bufs b;
  b.c_sndbuf = 2048;
  Pair p = open_pair(*t, 7496, b);
  Rx rx;
  std::uint64_t sent = 0;
  for (int round = 0; round < 5; ++round) {
    INFO("round " << round);
    // Everything sent so far is acknowledged (the peer read it, and the
    // delayed ACK's 40 ms are past): the thread sees at least three
    // quarters of the credit (the lcore has TCP report ACKs while more than
    // a quarter is out).
    const ssize_t r = send_pat(*t, p.c, sent, 2048);
    REQUIRE(r >= 1536);
    sent += static_cast<std::uint64_t>(r);
    REQUIRE(read_all(*t, p.s, rx, sent));
    // Only the peer's ACKs can bring the credit back (nothing is sent
    // meanwhile): the writer hears of it without having been refused.
    CHECK((wait_for(*t, p.c, EPOLLOUT, 3000) & EPOLLOUT) != 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(rx.got == sent);
  CHECK(rx.intact());
  t->close(p.c);
  t->close(p.s);
  t->close(p.ls);
}
