// The thread half of the shim: handles, POSIX-like calls, readiness and the
// eventfd protocol (channel.hpp). Everything here runs on the one
// application thread that owns the ThreadState; it shares with the lcores
// only the rings and the SharedSlots.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <fcntl.h>

#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <span>
#include <vector>

#include "shim/hub.hpp"
#include "ustack/shim.hpp"

namespace ustack::shim {

namespace {

constexpr std::uint32_t kNone = 0xffffffffu;

int fail(int e) {
  errno = e;
  return -1;
}

void cpu_relax() { sched_yield(); }

}  // namespace

// A UDP datagram handed over by the lcore, waiting for recvfrom(): an mbuf,
// or (m null) at most kInlineBytes carried in its completion.
struct Dgram {
  rte_mbuf* m = nullptr;
  std::uint32_t addr = 0;
  std::uint16_t port = 0;
  std::uint16_t len = 0;  // inline
  std::array<std::uint8_t, kInlineBytes> bytes;
};

struct Handle {
  // udp: a SOCK_DGRAM socket (udp_open once the lcore has its UdpSocket).
  enum class Kind : std::uint8_t { free, fresh, listener, conn, closing, udp };
  Kind kind = Kind::free;
  bool nonblock = false;
  bool accepted_pending = false;  // announced by the lcore, not yet returned by accept()
  // A member of a listener or UDP socket spanning lcores: its primary's
  // handle (not usable by the user). Beside `kind`: every call's get()
  // reads both.
  int primary = -1;
  bool connecting = false, connected = false, eof = false, gone = false;
  bool rd_shut = false, wr_shut = false;
  bool out_interest = false;  // report EPOLLOUT once (after EAGAIN or connect)...
  bool out_ready = false;     // ...once a Connected or Writable completion says so
  bool result_ready = false;
  int result = 0;
  std::uint16_t result_port = 0;  // a UDP bind/connect result: the lcore socket's bound port
  int so_error = 0;
  int efd = -1;
  std::uint32_t bind_addr = 0;
  std::uint16_t bind_port = 0;
  std::uint32_t peer_addr = 0;
  std::uint16_t peer_port = 0;
  TcpConnOptions opt;
  // Received data: segments linked through rte_mbuf::next, each consumed
  // on its own (head fields of a chain are not kept up to date).
  rte_mbuf* rx_head = nullptr;
  rte_mbuf* rx_tail = nullptr;
  std::size_t rx_bytes = 0;  // both: the inline block's, then the mbufs'
  // data_inline bytes, a ring read before the mbufs: the lcore sends them
  // only when the chain is empty and they fit (channel.hpp).
  std::uint32_t rx_inline_head = 0, rx_inline_len = 0;
  std::array<std::uint8_t, kInlineRxBytes> rx_inline;
  std::uint64_t rx_consumed = 0;
  std::uint64_t tx_submitted = 0;
  std::uint64_t tx_acked_seen = 0;  // SharedSlot::tx_acked as last read (send())
  // Listener: accepted ids not yet returned by accept(), in order.
  std::uint32_t acc_head = kNone, acc_tail = kNone, acc_next = kNone;
  // Readiness protocol (channel.hpp).
  bool signaled = false;  // the eventfd is (or is about to be) non-zero
  bool armed = false;     // want holds armed_val
  std::uint64_t armed_val = 0;
  std::uint32_t claimed = 0;  // eventfd writes the lcore has claimed
  bool stale_arm = false;     // armed, and an event completion was processed since (recv held it)
  bool touched = false;
  int busy_poll_us = 0;       // SO_BUSY_POLL
  TcpConnOptions listen_opt;  // listener: the options its lcore was given at listen()
  // UDP: datagrams in arrival order (a ring sized at socket(), the lcore's
  // datagram credit keeps it from overflowing).
  bool udp_open = false;
  bool udp_connected = false;
  bool reuse = false;  // what the lcore's UdpSocket has: SO_REUSEADDR or SO_REUSEPORT
  // Options as last set, for getsockopt (Linux's defaults but for loop:
  // UdpSocket's multicast loopback is off until asked for).
  bool reuseaddr = false;
  bool reuseport = false;
  bool mc_loop = false;
  std::uint8_t mc_ttl = 1;
  std::uint32_t mc_if = 0;  // host order
  std::vector<Dgram> dq;
  std::uint32_t dq_head = 0, dq_count = 0;
  std::uint64_t rx_dgrams_consumed = 0;
  // A listener on a hub with several lcores (Thread::listen), or a bound UDP
  // socket there (udp_bind): the user's handle is the primary; each other
  // lcore has a hidden member listener or UDP socket in that lcore's channel,
  // with its own eventfd. `members[l]` is the id of lcore l's member (kNone
  // for the primary's own lcore; UDP: also for an lcore of another host);
  // `ep` the epoll fd over every eventfd (the primary's too), which is what
  // the user polls. A UDP handle has its `ep` from socket() on, so its fd
  // never changes.
  std::vector<std::uint32_t> members;
  int ep = -1;
  std::uint32_t next_accept = 0;  // the lcore accept() looks at first (round robin)
  std::uint32_t next_recv = 0;    // UDP: the lcore recvfrom() looks at first (round robin)
};

struct Link {
  ShimLcore* lc = nullptr;
  Channel* ch = nullptr;
  std::vector<Handle> h;             // 2N: [0,N) ours, [N,2N) accepted
  std::vector<std::uint32_t> free;   // our half
  std::vector<Command> pending;      // close/abort commands waiting for ring room
};

struct ThreadState {
  Hub* hub = nullptr;
  unsigned registered = LCORE_ID_ANY;  // the lcore id attach() registered this thread with
  int channel = -1;
  std::uint32_t per = 0;  // ids per channel (2N)
  // A handle is lcore << shift | id, the stride a power of two at least
  // `per`: the calls split it with a shift and a mask, not a division.
  std::uint32_t shift = 0, id_mask = 0;
  std::vector<Link> links;
  std::uint32_t nlinks = 0;  // links.size()
  std::vector<std::uint32_t> touched;
  std::vector<std::uint32_t> recheck;
  std::uint32_t next_lcore = 0;
  int hold = -1;      // pump() leaves this handle's settle to its caller (recv)
  bool held = false;  // ... and it was touched, so the caller must settle it
  // pump_into(): where data_inline for `hold` may go directly.
  std::uint8_t* direct = nullptr;
  std::size_t direct_room = 0, direct_got = 0;
  static constexpr std::size_t kDrainBatch = 64;

  // Every call's first step. (A negative hd is a huge lcore index.)
  Handle* get(int hd) {
    const auto u = static_cast<std::uint32_t>(hd);
    if ((u >> shift) >= nlinks || (u & id_mask) >= per) return nullptr;
    Handle& h = links[u >> shift].h[u & id_mask];
    if (h.kind == Handle::Kind::free || h.kind == Handle::Kind::closing || h.accepted_pending || h.primary >= 0)
      return nullptr;
    return &h;
  }
  Link& link_of(int hd) { return links[static_cast<std::uint32_t>(hd) >> shift]; }
  std::uint32_t id_of(int hd) const { return static_cast<std::uint32_t>(hd) & id_mask; }
  SharedSlot& shared(int hd) { return link_of(hd).ch->slots[id_of(hd)]; }
  int encode(std::uint32_t lcore, std::uint32_t id) const { return static_cast<int>(lcore << shift | id); }

  static std::uint32_t wake_delay(int busy_poll_us) {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(busy_poll_us) * 1000, UINT32_MAX));
  }

  void touch(int hd) {
    Handle& h = links[static_cast<std::uint32_t>(hd) >> shift].h[static_cast<std::uint32_t>(hd) & id_mask];
    if (h.touched) return;
    h.touched = true;
    touched.push_back(static_cast<std::uint32_t>(hd));
  }

  // --- completions -------------------------------------------------------

  // Every call starts here, mostly to find the rings empty: that costs one
  // load per lcore (the next completion slot's sequence word).
  bool drain() {
    bool any = false;
    for (std::uint32_t l = 0; l < nlinks; ++l) {
      Link& k = links[l];
      if (!k.pending.empty()) flush_pending(k);
      if (k.ch->cpl.front(0) == nullptr) continue;
      drain_link(l, k);
      any = true;
    }
    return any;
  }

  // Each completion is handled where it lies in the ring, and the ring is
  // advanced once per batch. (Out of line: the empty case above stays a
  // few instructions with no registers to save.)
  [[gnu::noinline]] void drain_link(std::uint32_t l, Link& k) {
    for (;;) {
      std::size_t n = 0;
      for (const Completion* c; n < kDrainBatch && (c = k.ch->cpl.front(n)) != nullptr; ++n) dispatch(l, *c);
      k.ch->cpl.advance(n);
      if (n < kDrainBatch) return;
    }
  }

  void dispatch(std::uint32_t l, const Completion& c) {
    Link& k = links[l];
    if (c.id >= per) return;
    Handle& h = k.h[c.id];
    const int hd = encode(l, c.id);
    if (h.armed && c.op != CplOp::result && c.op != CplOp::released) h.stale_arm = true;
    switch (c.op) {
      case CplOp::result:
        h.result = c.value;
        h.result_port = c.port;
        h.result_ready = true;
        break;
      case CplOp::connected:
        if (h.kind == Handle::Kind::conn) {
          h.connecting = false;
          h.connected = true;
          h.out_ready = true;
          h.bind_addr = c.addr;  // the source address and port the lcore chose
          h.bind_port = c.port;
        }
        break;
      case CplOp::data: {
        auto* m = reinterpret_cast<rte_mbuf*>(c.mbuf);
        if (h.kind != Handle::Kind::conn) {
          rte_pktmbuf_free(m);
          break;
        }
        rte_mbuf* last = m;
        while (last->next) last = last->next;
        if (h.rx_tail) h.rx_tail->next = m; else h.rx_head = m;
        h.rx_tail = last;
        h.rx_bytes += static_cast<std::size_t>(c.value);
        break;
      }
      case CplOp::data_inline: {
        const auto n = std::min<std::size_t>(static_cast<std::size_t>(c.value), kInlineBytes);
        if (h.kind != Handle::Kind::conn) break;
        if (hd == hold && direct_room > direct_got && h.rx_bytes == 0) {
          // recv() is waiting for this handle and nothing is queued before
          // these bytes: they go from the ring's slot to its buffer (what
          // does not fit is queued as below).
          const std::size_t m = std::min(n, direct_room - direct_got);
          std::memcpy(direct + direct_got, c.data, m);
          direct_got += m;
          if (m < n) {
            inline_put(h, c.data + m, n - m);
            h.rx_bytes += n - m;
          }
          break;
        }
        if (!h.rx_head && h.rx_inline_len + n <= kInlineRxBytes) {
          inline_put(h, c.data, n);
          h.rx_bytes += n;
          break;
        }
        // Not reached (the lcore checks both); kept so that a broken
        // invariant costs an mbuf, not bytes of the stream.
        rte_mbuf* m = rte_pktmbuf_alloc(k.lc->pool());
        if (!m) {
          if (!h.so_error) h.so_error = ENOBUFS;
          break;
        }
        std::memcpy(rte_pktmbuf_append(m, static_cast<std::uint16_t>(n)), c.data, n);
        if (h.rx_tail) h.rx_tail->next = m; else h.rx_head = m;
        h.rx_tail = m;
        h.rx_bytes += n;
        break;
      }
      case CplOp::eof:
        h.eof = true;
        break;
      case CplOp::closed:
        h.gone = true;
        h.connecting = false;
        if (c.value) h.so_error = c.value;
        break;
      case CplOp::accepted: {
        const auto id = static_cast<std::uint32_t>(c.value);
        if (id >= per) break;
        Handle& a = k.h[id];
        a = Handle{};
        a.kind = Handle::Kind::conn;
        a.connected = true;
        a.peer_addr = c.addr;
        a.peer_port = c.port;
        // A fresh handle here is a listener whose listen() result has just
        // been drained (the lcore accepts only on a listener): keep it.
        if (h.kind != Handle::Kind::listener && h.kind != Handle::Kind::fresh) {  // closed meanwhile
          a.kind = Handle::Kind::free;
          push_ctl(k, Command{.id = id, .op = CmdOp::abort}, false);
          break;
        }
        a.accepted_pending = true;
        a.bind_addr = static_cast<std::uint32_t>(c.mbuf >> 16);
        a.bind_port = static_cast<std::uint16_t>(c.mbuf & 0xffff);
        // The listener's options as they are now, as Linux's accept()
        // inherits them (a member's from its primary, where setsockopt goes).
        // The lcore built the connection with those given at listen(): the
        // live ones set since then are sent after it.
        const Handle& src = h.primary >= 0 ? at(h.primary) : h;
        a.opt = src.opt;
        const auto fix = [&](OptId o, bool now_on, bool then_on) {
          if (now_on != then_on)
            push_ctl(k, Command{.id = id, .op = CmdOp::set_option, .opt = o, .value = now_on ? 1u : 0u}, false);
        };
        fix(OptId::nodelay, !src.opt.nagle, !h.listen_opt.nagle);
        fix(OptId::keepalive, src.opt.keepalive, h.listen_opt.keepalive);
        fix(OptId::delayed_ack, src.opt.delayed_ack, h.listen_opt.delayed_ack);
        a.nonblock = h.nonblock;
        a.busy_poll_us = h.busy_poll_us;  // inherited, as Linux's accept() does
        k.ch->slots[id].wake_delay_ns.store(wake_delay(h.busy_poll_us), std::memory_order_relaxed);
        if (h.acc_tail == kNone) h.acc_head = id; else k.h[h.acc_tail].acc_next = id;
        h.acc_tail = id;
        break;
      }
      case CplOp::writable:
        // Send space after EAGAIN (or command-ring room): report it if the
        // credit is really there.
        // Readiness changes only through completions (never through a fresh
        // look at tx_acked), so that each wake-up the lcore sends matches a
        // transition the thread has not seen yet.
        h.out_ready = true;
        break;
      case CplOp::dgram: {
        auto* m = reinterpret_cast<rte_mbuf*>(c.mbuf);
        if (h.kind != Handle::Kind::udp || h.dq_count == h.dq.size()) {
          rte_pktmbuf_free(m);
          break;
        }
        Dgram& d = h.dq[(h.dq_head + h.dq_count++) % h.dq.size()];
        d.m = m;
        d.addr = c.addr;
        d.port = c.port;
        break;
      }
      case CplOp::dgram_inline: {
        if (h.kind != Handle::Kind::udp || h.dq_count == h.dq.size()) break;
        Dgram& d = h.dq[(h.dq_head + h.dq_count++) % h.dq.size()];
        d.m = nullptr;
        d.addr = c.addr;
        d.port = c.port;
        d.len = static_cast<std::uint16_t>(std::min<std::size_t>(static_cast<std::size_t>(c.value), kInlineBytes));
        std::memcpy(d.bytes.data(), c.data, d.len);
        break;
      }
      case CplOp::error:
        if (h.kind == Handle::Kind::udp) h.so_error = c.value;
        break;
      case CplOp::released:
        if (h.kind == Handle::Kind::closing) {
          h = Handle{};
          k.free.push_back(c.id);
        }
        return;
    }
    touch(hd);
  }

  // pump(), leaving `hd`'s settle to the caller (recv): `held` says whether
  // it needs one (a completion touched it).
  void pump_holding(int hd) {
    hold = hd;
    held = false;
    pump();
    hold = -1;
  }
  // The same for recv() into `out`: stream bytes that arrive for `hd` while
  // none are queued go straight there (dispatch); returns how many.
  std::size_t pump_into(int hd, std::uint8_t* out, std::size_t len) {
    direct = out;
    direct_room = len;
    direct_got = 0;
    pump_holding(hd);
    direct_room = 0;
    return direct_got;
  }

  // Settles one handle that a call has just changed. Every other handle a
  // completion touched was settled by the pump that processed it; the
  // completions that came since are left for the next call (the lcore
  // fires for them as for any not consumed when the handle was armed).
  void settle_now(int hd) {
    settle(hd);
    if (!recheck.empty()) pump();
  }

  // Processes completions and settles every handle they touched, including
  // the re-checks that arming asks for (T3 in channel.hpp).
  void pump() {
    drain();
    if (touched.empty() && recheck.empty()) return;
    settle_touched();
  }
  [[gnu::noinline]] void settle_touched() {
    for (;;) {
      while (!touched.empty()) {
        const std::uint32_t hd = touched.back();
        touched.pop_back();
        Handle& h = links[hd >> shift].h[hd & id_mask];
        h.touched = false;
        if (static_cast<int>(hd) == hold) {
          held = true;
          continue;
        }
        settle(static_cast<int>(hd));
      }
      if (recheck.empty()) break;
      drain();
      for (std::uint32_t hd : recheck) touch(static_cast<int>(hd));
      recheck.clear();
    }
  }

  // --- readiness -----------------------------------------------------------

  bool credit_ok(int hd, Handle& h) {
    const std::uint64_t acked = shared(hd).tx_acked.load(std::memory_order_acquire);
    const std::uint64_t out = h.tx_submitted - acked;
    const std::uint64_t limit = h.opt.sndbuf;
    const std::uint64_t avail = out >= limit ? 0 : limit - out;
    return out == 0 || (avail > 0 && avail >= limit / 4);
  }

  // EPOLL* bits as Linux's tcp_poll would give them (`out` false: without
  // EPOLLOUT, which costs a read of the lcore's send count).
  std::uint32_t mask(int hd, Handle& h, bool out = true) {
    switch (h.kind) {
      case Handle::Kind::listener: return h.acc_head != kNone ? std::uint32_t{EPOLLIN} : 0u;
      case Handle::Kind::udp: {
        std::uint32_t m = h.dq_count ? std::uint32_t{EPOLLIN} : 0u;
        if (h.so_error) m |= EPOLLERR;
        if (out && link_of(hd).ch->cmd.has_room(1)) m |= EPOLLOUT;
        return m;
      }
      case Handle::Kind::fresh: return std::uint32_t{EPOLLOUT} | EPOLLHUP;
      case Handle::Kind::conn: break;
      default: return 0;
    }
    std::uint32_t m = 0;
    if (h.rx_bytes || h.eof || h.rd_shut || h.gone) m |= EPOLLIN;
    if (h.eof || h.rd_shut || h.gone) m |= EPOLLRDHUP;
    if (h.so_error) m |= EPOLLERR;
    if (h.gone || (h.eof && h.wr_shut)) m |= EPOLLHUP;
    if (out && !h.connecting &&
        (h.gone || h.wr_shut || h.so_error || (h.connected && credit_ok(hd, h) && link_of(hd).ch->cmd.has_room(1))))
      m |= EPOLLOUT;
    return m;
  }

  // "Writable again" / "connect done": asked for (EAGAIN, connect) and
  // answered by a completion. Not re-checked against the credit: every event
  // completion makes its handle ready (channel.hpp), or the lcore's wake-up
  // for it would be spurious.
  static bool out_report(const Handle& h) { return h.out_interest && h.out_ready; }

  // What makes the eventfd readable: everything but EPOLLOUT, which counts
  // only once asked for (after EAGAIN or a connect), and nothing for a
  // socket that was never connected.
  bool reportable(int hd, Handle& h) {
    if (h.kind == Handle::Kind::fresh) return false;
    return mask(hd, h, false) != 0 || out_report(h);
  }

  void wait_claimed(SharedSlot& sh, Handle& h) {
    while (static_cast<std::int32_t>(sh.fired.load(std::memory_order_acquire) - h.claimed) < 0) cpu_relax();
  }

  void settle(int hd) {
    Handle& h = links[static_cast<std::uint32_t>(hd) >> shift].h[static_cast<std::uint32_t>(hd) & id_mask];
    if (h.efd < 0 || (h.kind != Handle::Kind::conn && h.kind != Handle::Kind::listener &&
                      h.kind != Handle::Kind::udp))
      return;
    SharedSlot& sh = shared(hd);
    for (;;) {
      if (h.armed && sh.want.load(std::memory_order_acquire) == 0) {  // the lcore took the wake-up
        h.armed = false;
        h.stale_arm = false;
        h.signaled = true;
        ++h.claimed;
      }
      if (reportable(hd, h)) {
        if (h.signaled) return;
        if (h.armed) {
          std::uint64_t w = h.armed_val;
          h.armed = false;
          h.stale_arm = false;
          if (!sh.want.compare_exchange_strong(w, 0, std::memory_order_acq_rel)) {
            h.signaled = true;  // the lcore won: its write is coming
            ++h.claimed;
            return;
          }
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t r = ::write(h.efd, &one, sizeof one);
        h.signaled = true;
        return;
      }
      if (h.signaled) {  // T1
        wait_claimed(sh, h);
        std::uint64_t v;
        [[maybe_unused]] const ssize_t r = ::read(h.efd, &v, sizeof v);
        h.signaled = false;
      }
      const std::uint64_t pos = link_of(hd).ch->cpl.consumed() + 1;
      if (h.armed) {
        if (!h.stale_arm) return;
        // recv() held this handle (pump's `hold`) and consumed, within the
        // call, everything the completions since arming reported: the arm
        // moves past them, or a late L2 (SO_BUSY_POLL) would fire for them.
        // By CAS from the old value: failing, the lcore claimed the wake-up
        // and its write is coming (drained above, next round). No fence and
        // no re-check (T3): `want` was never 0 since the arm, so the lcore
        // skipped no completion, and one not consumed yet is at or past
        // `pos` - 1, which the new value still fires for (channel.hpp).
        h.stale_arm = false;
        std::uint64_t w = h.armed_val;
        if (!sh.want.compare_exchange_strong(w, pos, std::memory_order_acq_rel)) {
          h.armed = false;
          h.signaled = true;
          ++h.claimed;
          continue;
        }
        h.armed_val = pos;
        return;
      } else {
        // T2: armed as of the completions consumed so far.
        h.armed_val = pos;
        sh.want.store(h.armed_val, std::memory_order_seq_cst);
        h.armed = true;
      }
      link_of(hd).ch->order.fetch_add(1, std::memory_order_acq_rel);  // the fence
      recheck.push_back(static_cast<std::uint32_t>(hd));  // T3, in pump()
      return;
    }
  }

  // Takes the wake-up back before the eventfd is closed or reused, so no
  // lcore write can reach a closed (or reassigned) descriptor.
  void disarm(int hd, Handle& h) {
    SharedSlot& sh = shared(hd);
    if (h.armed) {
      if (sh.want.exchange(0, std::memory_order_acq_rel) == 0) ++h.claimed;
      h.armed = false;
      h.stale_arm = false;
    }
    wait_claimed(sh, h);
  }

  // --- commands --------------------------------------------------------------

  void flush_pending(Link& k) {
    std::size_t i = 0;
    while (i < k.pending.size() && k.ch->cmd.push(k.pending[i])) ++i;
    k.pending.erase(k.pending.begin(), k.pending.begin() + static_cast<std::ptrdiff_t>(i));
  }

  // A command carrying at most kInlineBytes (send_inline,
  // udp_send_inline), written straight into the ring's slot: the bytes are
  // copied once, from the caller's buffer to where the lcore reads them. The
  // caller has checked for room.
  static void push_inline(Link& k, std::uint32_t id, CmdOp op, std::uint32_t addr, std::uint16_t port, const void* bytes,
                          std::size_t len) {
    k.ch->cmd.emplace([&](Command& c) {
      c.id = id;
      c.op = op;
      c.port = port;
      c.addr = addr;
      c.value = static_cast<std::uint32_t>(len);
      c.opt = OptId::nodelay;
      c.mbuf = 0;
      if (len) std::memcpy(c.data, bytes, len);
    });
  }

  // Control commands never fail for a full ring: they wait for room
  // (`queue_if_full` false: the lcore drains the ring every iteration) or,
  // for close, queue and go out with the next call.
  void push_ctl(Link& k, const Command& c, bool wait) {
    flush_pending(k);
    if (k.pending.empty() && k.ch->cmd.push(c)) return;
    if (!wait) {
      k.pending.push_back(c);
      return;
    }
    while (!k.ch->cmd.push(c)) cpu_relax();
  }

  int call_sync(int hd, Handle& h, const Command& c) {
    h.result_ready = false;
    Link& k = link_of(hd);
    flush_pending(k);
    while (!k.pending.empty()) {
      cpu_relax();
      flush_pending(k);
    }
    push_ctl(k, c, true);
    while (!h.result_ready) {
      pump();
      if (!h.result_ready) cpu_relax();
    }
    return h.result;
  }

  // bind / connect of a UDP socket: synchronous (the lcore opens its
  // UdpSocket on first use). 0 or an errno.
  // `flags`: more value bits (udp_bind's "the port must be free", channel.hpp).
  int udp_call(int hd, Handle& h, CmdOp op, std::uint32_t addr, std::uint16_t port, std::uint32_t flags = 0) {
    if (!h.udp_open) {
      SharedSlot& sh = shared(hd);
      sh.rx_limit = h.opt.rcvbuf;
    }
    const int r = call_sync(hd, h, Command{.id = id_of(hd), .op = op, .port = port, .addr = addr,
                                           .value = (h.reuse ? 1u : 0u) | flags});
    // The socket exists on the lcore once any call reached it, even a failed bind.
    h.udp_open = true;
    touch(hd);
    pump();
    return r;
  }

  // A multicast option (synchronous; opens the lcore's UdpSocket like
  // udp_call). 0 or an errno.
  int udp_mcast(int hd, Handle& h, McastOp op, std::uint32_t group, std::uint32_t arg) {
    if (!h.udp_open) {
      SharedSlot& sh = shared(hd);
      sh.rx_limit = h.opt.rcvbuf;
    }
    const int r = call_sync(hd, h, Command{.id = id_of(hd), .op = CmdOp::udp_mcast, .port = static_cast<std::uint16_t>(op),
                                           .addr = group, .value = arg, .mbuf = h.reuse ? 1u : 0u});
    h.udp_open = true;
    touch(hd);
    pump();
    return r;
  }

  void request_out(int hd, Handle& h) {
    h.out_interest = true;
    h.out_ready = false;
    SharedSlot& sh = shared(hd);
    if (sh.out_req.exchange(1, std::memory_order_acq_rel) == 0) link_of(hd).ch->waiters.push(id_of(hd));
  }

  // Blocking calls wait on the handle's own eventfd.
  void wait_handle(int hd) {
    Handle* h = get(hd);
    if (!h || h->efd < 0) return;
    pollfd p{h->ep >= 0 ? h->ep : h->efd, POLLIN, 0};
    ::poll(&p, 1, 100);
    if (p.revents) cpu_relax();  // readable for another reason than the one waited for
    pump();
  }

  void free_dgrams(Handle& h) {
    for (; h.dq_count; --h.dq_count, h.dq_head = (h.dq_head + 1) % static_cast<std::uint32_t>(h.dq.size()))
      if (h.dq[h.dq_head].m) rte_pktmbuf_free(h.dq[h.dq_head].m);
  }

  void free_rx(Handle& h) {
    rte_mbuf* m = h.rx_head;
    while (m) {
      rte_mbuf* next = m->next;
      m->next = nullptr;
      rte_pktmbuf_free_seg(m);
      m = next;
    }
    h.rx_head = h.rx_tail = nullptr;
    h.rx_bytes = 0;
    h.rx_inline_head = h.rx_inline_len = 0;
  }

  // The inline ring: append, copy from the front, drop from the front.
  static void inline_put(Handle& h, const std::uint8_t* from, std::size_t n) {
    const std::size_t at = (h.rx_inline_head + h.rx_inline_len) % kInlineRxBytes;
    const std::size_t first = std::min(n, kInlineRxBytes - at);
    std::memcpy(h.rx_inline.data() + at, from, first);
    std::memcpy(h.rx_inline.data(), from + first, n - first);
    h.rx_inline_len += static_cast<std::uint32_t>(n);
  }
  static std::size_t inline_copy(const Handle& h, std::uint8_t* out, std::size_t len) {
    const std::size_t n = std::min<std::size_t>(h.rx_inline_len, len);
    const std::size_t first = std::min<std::size_t>(n, kInlineRxBytes - h.rx_inline_head);
    std::memcpy(out, h.rx_inline.data() + h.rx_inline_head, first);
    std::memcpy(out + first, h.rx_inline.data(), n - first);
    return n;
  }
  static void inline_drop(Handle& h, std::size_t n) {
    h.rx_inline_head = static_cast<std::uint32_t>((h.rx_inline_head + n) % kInlineRxBytes);
    h.rx_inline_len -= static_cast<std::uint32_t>(n);
  }

  void close_handle(int hd) {
    Link& k = link_of(hd);
    const std::uint32_t id = id_of(hd);
    Handle& h = k.h[id];
    // A listener spanning lcores: its members go first (closing an eventfd
    // takes it out of the epoll set), each as a listener of its own.
    for (std::uint32_t l = 0; l < h.members.size(); ++l)
      if (h.members[l] != kNone) close_handle(encode(l, h.members[l]));
    if (h.ep >= 0) ::close(h.ep);
    if (h.efd >= 0) {
      disarm(hd, h);
      ::close(h.efd);
      shared(hd).efd.store(-1, std::memory_order_relaxed);
      h.efd = -1;
    }
    if (h.kind == Handle::Kind::listener) {
      while (h.acc_head != kNone) {
        const std::uint32_t a = h.acc_head;
        h.acc_head = k.h[a].acc_next;
        free_rx(k.h[a]);
        k.h[a] = Handle{};
        push_ctl(k, Command{.id = a, .op = CmdOp::abort}, false);
      }
    }
    const bool unread = h.rx_bytes != 0;
    free_rx(h);
    free_dgrams(h);
    const bool on_lcore = h.kind != Handle::Kind::fresh && !(h.kind == Handle::Kind::udp && !h.udp_open);
    h = Handle{};
    if (!on_lcore) {
      k.free.push_back(id);
      return;
    }
    if (id < k.ch->handles) h.kind = Handle::Kind::closing;  // until Released
    push_ctl(k, Command{.id = id, .op = unread ? CmdOp::abort : CmdOp::close}, false);
  }

  // A new handle from our half of lcore `l`'s channel, with its own eventfd
  // and its shared slot reset: 0 and its id in `out`, `no_id` when the
  // channel has no free id, or the eventfd's errno.
  int new_handle(std::uint32_t l, Handle::Kind kind, const TcpConnOptions& opt, int busy_poll_us, int no_id,
                 std::uint32_t& out) {
    Link& k = links[l];
    if (k.free.empty()) return no_id;
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return errno;
    const std::uint32_t id = k.free.back();
    k.free.pop_back();
    Handle& h = k.h[id];
    h = Handle{};
    h.kind = kind;
    h.opt = opt;
    h.busy_poll_us = busy_poll_us;
    h.efd = efd;
    if (kind == Handle::Kind::udp) h.dq.resize(k.lc->config().udp_dgrams);  // control path: may allocate
    SharedSlot& sh = k.ch->slots[id];
    sh.efd.store(efd, std::memory_order_relaxed);
    sh.wake_delay_ns.store(wake_delay(busy_poll_us), std::memory_order_relaxed);
    sh.rx_consumed.store(0, std::memory_order_relaxed);
    sh.rx_dgrams_consumed.store(0, std::memory_order_relaxed);
    sh.out_req.store(0, std::memory_order_relaxed);
    out = id;
    return 0;
  }

  // Puts handle `hd`'s eventfd in epoll set `ep` (a spanning handle's): 0 or errno.
  static int watch(int ep, int efd, int hd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<std::uint32_t>(hd);
    return ::epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0 ? 0 : errno;
  }

  // Opens primary `hd`'s member listener on lcore `l` (listen(), control
  // path): an id from our half of that lcore's channel, an eventfd in the
  // primary's epoll set `ep`, and a synchronous listen there. 0 and the id in
  // `out`, or an errno with nothing left behind.
  int open_member(int hd, const Handle& p, std::uint32_t l, int ep, const Command& listen, std::uint32_t& out) {
    std::uint32_t id;
    // busy_poll_us: passed on to what it accepts.
    if (const int e = new_handle(l, Handle::Kind::fresh, p.opt, p.busy_poll_us, ENOBUFS, id)) return e;
    Handle& m = links[l].h[id];
    m.nonblock = true;
    m.listen_opt = p.opt;
    m.primary = hd;
    SharedSlot& sh = links[l].ch->slots[id];
    sh.opt = p.opt;
    sh.rx_limit = p.opt.rcvbuf;
    const int md = encode(l, id);
    int r = watch(ep, m.efd, md);
    if (r == 0) {
      Command c = listen;
      c.id = id;
      r = call_sync(md, m, c);
    }
    if (r) {
      close_handle(md);  // still fresh: nothing on the lcore, the id comes straight back
      return r;
    }
    m.kind = Handle::Kind::listener;
    out = id;
    return 0;
  }

  // --- UDP across lcores ------------------------------------------------------
  //
  // RSS steers each datagram to some lcore, and each lcore's UdpLayer owns
  // only its own sockets, so a bound UDP handle on a hub with several lcores
  // has a member UdpSocket on every other lcore of its host (spans_to), bound to the same
  // address and port: a datagram finds a socket wherever it lands instead of
  // an ICMP port unreachable. The members are opened the first time the
  // handle needs them (bind, the implicit bind of connect/sendto, a membership
  // call routed to another lcore) and live until close. Sends go out from the
  // primary's lcore; membership goes to the lcore with the IgmpHost.

  Handle& at(int hd) { return links[static_cast<std::uint32_t>(hd) >> shift].h[static_cast<std::uint32_t>(hd) & id_mask]; }

  // The handle lcore `l` has for primary `hd`: the primary itself, its
  // member, or -1 (none there).
  int on_lcore(int hd, const Handle& h, std::uint32_t l) const {
    if (l == (static_cast<std::uint32_t>(hd) >> shift)) return hd;
    if (l >= h.members.size() || h.members[l] == kNone) return -1;
    return encode(l, h.members[l]);
  }

  // Primary `hd`'s member on lcore `l`: an id from our half of that lcore's
  // channel and an eventfd in the primary's epoll set; nothing on the lcore
  // until its first call. 0 and the id in `out`, or an errno with nothing left.
  int open_udp_member(int hd, const Handle& p, std::uint32_t l, std::uint32_t& out) {
    std::uint32_t id;
    if (const int e = new_handle(l, Handle::Kind::udp, p.opt, p.busy_poll_us, ENOBUFS, id)) return e;
    Handle& m = links[l].h[id];
    m.nonblock = true;
    m.reuse = p.reuse;
    m.primary = hd;
    const int md = encode(l, id);
    if (const int e = watch(p.ep, m.efd, md)) {
      close_handle(md);  // not on the lcore yet: the id comes straight back
      return e;
    }
    out = id;
    return 0;
  }

  // Whether lcore `l` is another queue of handle `hd`'s host: it runs UDP
  // and serves the same address (every lcore of a Process does; a hub over
  // distinct stacks, as in the tests' two-host world, spans nothing).
  bool spans_to(int hd, std::uint32_t l) const {
    const auto own = static_cast<std::uint32_t>(hd) >> shift;
    return l != own && links[l].lc->has_udp() && links[l].lc->local_addr() == links[own].lc->local_addr();
  }

  // Whether handle `hd` has other lcores to span (a hub with one lcore, or
  // one over distinct hosts, has none: the handle works as on one lcore).
  bool spans(int hd) const {
    for (std::uint32_t l = 0; l < links.size(); ++l)
      if (spans_to(hd, l)) return true;
    return false;
  }

  // Gives UDP handle `hd` its members (once; a hub with one lcore has none).
  // 0, or an errno with nothing made.
  int span_udp(int hd) {
    Handle& h = at(hd);
    const auto n = static_cast<std::uint32_t>(links.size());
    if (!h.members.empty() || !spans(hd)) return 0;
    std::vector<std::uint32_t> members(n, kNone);  // control path
    int r = 0;
    for (std::uint32_t l = 0; l < n && r == 0; ++l)
      if (spans_to(hd, l)) r = open_udp_member(hd, h, l, members[l]);
    if (r) {
      for (std::uint32_t l = 0; l < n; ++l)
        if (members[l] != kNone) close_handle(encode(l, members[l]));
      return r;
    }
    h.members = std::move(members);
    // Armed now, so the first datagram on any lcore wakes the epoll fd.
    for (std::uint32_t l = 0; l < n; ++l)
      if (h.members[l] != kNone) touch(encode(l, h.members[l]));
    pump();
    return 0;
  }

  // Closes the members (a bind that failed on the call that made them).
  void unspan_udp(int hd) {
    Handle& h = at(hd);
    for (std::uint32_t l = 0; l < h.members.size(); ++l)
      if (h.members[l] != kNone) close_handle(encode(l, h.members[l]));
    h.members.clear();
    h.next_recv = 0;
  }

  // bind() of a UDP handle, on every lcore: the members first and the
  // primary last, all to the same address and port. For port 0 the first
  // lcore picks an ephemeral port and the others must have it free (bit 1);
  // taken on one, every bind of this round is undone and a new port drawn.
  // Any other failure undoes the binds this call made (and the members, if
  // this call opened them) and is returned: the socket stays unbound, as a
  // failed bind leaves it on Linux. 0 or an errno.
  int udp_bind(int hd, std::uint32_t addr, std::uint16_t port) {
    Handle& h = at(hd);
    const auto n = static_cast<std::uint32_t>(links.size());
    if (!spans(hd)) {
      const int r = udp_call(hd, h, CmdOp::udp_bind, addr, port);
      if (r == 0) {
        h.bind_addr = addr;
        h.bind_port = h.result_port;
      }
      return r;
    }
    const bool spanned = !h.members.empty();
    if (const int r = span_udp(hd)) return r;
    const auto own = static_cast<std::uint32_t>(hd) >> shift;
    const bool ephemeral = port == 0;
    constexpr int kEphemeralTries = 16;
    int r = 0;
    for (int attempt = 0; attempt < (ephemeral ? kEphemeralTries : 1); ++attempt) {
      std::uint16_t p = port;
      std::uint32_t i = 0;
      r = 0;
      for (; i < n && r == 0; ++i) {
        const int ld = on_lcore(hd, h, (own + 1 + i) % n);
        if (ld < 0) continue;
        Handle& lh = at(ld);
        if (ld != hd && !lh.udp_open) lh.opt = h.opt;  // SO_RCVBUF as set until now
        r = udp_call(ld, lh, CmdOp::udp_bind, addr, p, ephemeral && p != 0 ? 2u : 0u);
        if (r == 0 && p == 0) p = lh.result_port;
      }
      if (r == 0) {
        for (std::uint32_t l = 0; l < n; ++l)
          if (const int ld = on_lcore(hd, h, l); ld >= 0) {
            at(ld).bind_addr = addr;
            at(ld).bind_port = p;
          }
        return 0;
      }
      for (std::uint32_t j = 0; j + 1 < i; ++j)  // the ones bound before the failure
        if (const int ld = on_lcore(hd, h, (own + 1 + j) % n); ld >= 0) udp_call(ld, at(ld), CmdOp::udp_unbind, 0, 0);
      if (!ephemeral || r != EADDRINUSE) break;
    }
    if (!spanned) unspan_udp(hd);
    return ephemeral && r == EADDRINUSE ? EAGAIN : r;  // Linux's answer when no ephemeral port is left
  }

  // connect() of a UDP handle: bound on every lcore first (an ephemeral port
  // if need be), then every lcore's socket takes the peer as its source
  // filter, the primary first. 0 or an errno.
  int udp_connect(int hd, std::uint32_t addr, std::uint16_t port) {
    Handle& h = at(hd);
    if (!spans(hd)) return udp_call(hd, h, CmdOp::udp_connect, addr, port);
    if (addr == 0 || port == 0) return EADDRNOTAVAIL;  // the lcore's answer, before anything is bound
    if (h.bind_port == 0)
      if (const int r = udp_bind(hd, 0, 0)) return r;
    int r = udp_call(hd, h, CmdOp::udp_connect, addr, port);
    for (std::uint32_t l = 0; l < h.members.size() && r == 0; ++l)
      if (h.members[l] != kNone) {
        const int md = encode(l, h.members[l]);
        r = udp_call(md, at(md), CmdOp::udp_connect, addr, port);
      }
    return r;
  }

  // The handle (primary or member) whose oldest datagram recvfrom() takes
  // next: the lcores in turn, starting after the one taken from last, so no
  // lcore's datagrams wait behind another's; -1 when none has one.
  int udp_next(int hd, Handle& h, bool advance) {
    if (h.members.empty()) return h.dq_count ? hd : -1;
    const auto n = static_cast<std::uint32_t>(h.members.size());
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t l = (h.next_recv + i) % n;
      const int ld = on_lcore(hd, h, l);
      if (ld < 0 || at(ld).dq_count == 0) continue;
      if (advance) h.next_recv = (l + 1) % n;
      return ld;
    }
    return -1;
  }

  // The handle (primary or member) with a pending ICMP error, or -1.
  int udp_errored(int hd, Handle& h) {
    if (h.so_error) return hd;
    for (std::uint32_t l = 0; l < h.members.size(); ++l)
      if (h.members[l] != kNone && links[l].h[h.members[l]].so_error) return encode(l, h.members[l]);
    return -1;
  }

  // The lcore that takes handle `hd`'s membership calls: its own if that
  // has an IgmpHost, else the lcore of the same host that has one; its own
  // (which answers ENODEV) when none has.
  std::uint32_t igmp_lcore(int hd) const {
    const auto own = static_cast<std::uint32_t>(hd) >> shift;
    if (links[own].lc->has_igmp()) return own;
    for (std::uint32_t l = 0; l < links.size(); ++l)
      if (spans_to(hd, l) && links[l].lc->has_igmp()) return l;
    return own;
  }
};

// --- Thread -------------------------------------------------------------------

std::unique_ptr<Thread> Thread::attach(Hub& hub, std::string& err) {
  const int ch = hub.claim(err);
  if (ch < 0) return nullptr;
  auto s = std::make_unique<ThreadState>();
  s->hub = &hub;
  // send() allocates its mbufs here: as an EAL thread (an lcore id of its
  // own) the thread gets the mempool's per-lcore cache instead of a ring
  // operation per mbuf. Best effort: without a free lcore id it works as
  // before.
  if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() == 0) s->registered = rte_lcore_id();
  s->channel = ch;
  s->links.resize(hub.lcore_count());
  s->nlinks = static_cast<std::uint32_t>(s->links.size());
  for (std::uint32_t l = 0; l < hub.lcore_count(); ++l) {
    Link& k = s->links[l];
    k.lc = &hub.lcore(l);
    k.ch = &k.lc->channel(static_cast<std::uint32_t>(ch));
    s->per = 2 * k.ch->handles;
    while ((1u << s->shift) < s->per) ++s->shift;
    s->id_mask = (1u << s->shift) - 1;
    k.h.resize(s->per);
    for (std::uint32_t id = k.ch->handles; id-- > 0;) k.free.push_back(id);
    k.pending.reserve(s->per);
  }
  s->touched.reserve(s->per * s->links.size());
  return std::unique_ptr<Thread>(new Thread(std::move(s)));
}

Thread::Thread(std::unique_ptr<ThreadState> s) : s_(std::move(s)) {}

Thread::~Thread() {
  ThreadState& s = *s_;
  s.pump();
  for (std::uint32_t l = 0; l < s.links.size(); ++l)
    for (std::uint32_t id = 0; id < s.per; ++id) {
      Handle& h = s.links[l].h[id];
      if (h.kind == Handle::Kind::fresh || h.kind == Handle::Kind::conn || h.kind == Handle::Kind::listener ||
          h.kind == Handle::Kind::udp)
        if (!h.accepted_pending && h.primary < 0) s.close_handle(s.encode(l, id));  // members: with their primary
    }
  // Queued closes go out as the lcores drain the rings. If the lcores have
  // stopped (no progress for a second), give up: the process is ending.
  for (auto& k : s.links) {
    auto last = std::chrono::steady_clock::now();
    while (!k.pending.empty() && std::chrono::steady_clock::now() - last < std::chrono::seconds(1)) {
      const std::size_t before = k.pending.size();
      cpu_relax();
      s.flush_pending(k);
      s.drain();
      if (k.pending.size() != before) last = std::chrono::steady_clock::now();
    }
  }
  s.drain();  // frees data still in flight to us
  // Only from the thread that registered (unregister acts on the caller).
  if (s.registered != LCORE_ID_ANY && rte_lcore_id() == s.registered) rte_thread_unregister();
}

int Thread::socket(int domain, int type, int protocol) {
  ThreadState& s = *s_;
  return socket_on(s.next_lcore++ % static_cast<std::uint32_t>(s.links.size()), domain, type, protocol);
}

int Thread::socket_on(unsigned lcore, int domain, int type, int protocol) {
  ThreadState& s = *s_;
  if (domain != AF_INET) return fail(EAFNOSUPPORT);
  const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  const bool dgram = base == SOCK_DGRAM;
  if (base == SOCK_STREAM) {
    if (protocol != 0 && protocol != IPPROTO_TCP) return fail(EPROTONOSUPPORT);
  } else if (dgram) {
    if (protocol != 0 && protocol != IPPROTO_UDP) return fail(EPROTONOSUPPORT);
  } else {
    return fail(EPROTONOSUPPORT);
  }
  if (lcore >= s.links.size()) return fail(EINVAL);
  const std::uint32_t l = lcore;
  Link& k = s.links[l];
  if (dgram && !k.lc->has_udp()) return fail(EPROTONOSUPPORT);
  s.pump();
  std::uint32_t id;
  if (const int e = s.new_handle(l, dgram ? Handle::Kind::udp : Handle::Kind::fresh, k.lc->tcp_defaults(), 0, EMFILE, id))
    return fail(e);
  Handle& h = k.h[id];
  h.nonblock = (type & SOCK_NONBLOCK) != 0;
  if (dgram && s.spans(s.encode(l, id))) {
    // Its members' eventfds join this epoll fd once it is bound (span_udp);
    // made now so that eventfd(h) is the same fd for the handle's life.
    h.ep = ::epoll_create1(EPOLL_CLOEXEC);
    const int e = h.ep < 0 ? errno : ThreadState::watch(h.ep, h.efd, s.encode(l, id));
    if (e) {
      s.close_handle(s.encode(l, id));
      return fail(e);
    }
  }
  return s.encode(l, id);
}

int Thread::bind(int hd, const sockaddr* addr, socklen_t len) {
  Handle* h = s_->get(hd);
  if (!h) return fail(EBADF);
  if (!addr || len < sizeof(sockaddr_in) || addr->sa_family != AF_INET) return fail(EINVAL);
  if (h->kind == Handle::Kind::udp) {
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    const int r = s_->udp_bind(hd, ntohl(in.sin_addr.s_addr), ntohs(in.sin_port));
    return r ? fail(r) : 0;
  }
  if (h->kind != Handle::Kind::fresh) return fail(EINVAL);
  sockaddr_in in;
  std::memcpy(&in, addr, sizeof in);
  h->bind_addr = ntohl(in.sin_addr.s_addr);
  h->bind_port = ntohs(in.sin_port);
  return 0;
}

// On a hub with several lcores the listener spans them all (each lcore's
// TCP owns only the connections RSS steers to it): members are opened on the
// other lcores first and the primary's own lcore last, so a failure anywhere
// (EADDRINUSE on one lcore) closes the members already made and leaves the
// socket as it was.
int Thread::listen(int hd, int backlog) {
  ThreadState& s = *s_;
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (h->kind == Handle::Kind::listener) return 0;
  if (h->kind != Handle::Kind::fresh) return fail(EINVAL);
  const auto own = static_cast<std::uint32_t>(hd) >> s.shift;
  const auto n = static_cast<std::uint32_t>(s.links.size());
  std::vector<std::uint32_t> members;  // control path: listen() may allocate
  int ep = -1;
  // One try on `port`: every lcore listens, or none does (0 or an errno).
  auto attempt = [&](std::uint16_t port) {
    const Command cmd{.id = s.id_of(hd),
                      .op = CmdOp::listen,
                      .port = port,
                      .addr = h->bind_addr,
                      .value = static_cast<std::uint32_t>(backlog > 0 ? backlog : 1)};
    int r = 0;
    if (n > 1) {
      ep = ::epoll_create1(EPOLL_CLOEXEC);
      if (ep < 0) return errno;
      r = ThreadState::watch(ep, h->efd, hd);
      members.assign(n, kNone);
      for (std::uint32_t l = 0; l < n && r == 0; ++l)
        if (l != own) r = s.open_member(hd, *h, l, ep, cmd, members[l]);
    }
    if (r == 0) {
      SharedSlot& sh = s.shared(hd);
      sh.opt = h->opt;
      sh.rx_limit = h->opt.rcvbuf;
      r = s.call_sync(hd, *h, cmd);
    }
    if (r) {
      for (std::uint32_t l = 0; l < members.size(); ++l)
        if (members[l] != kNone) s.close_handle(s.encode(l, members[l]));
      members.clear();
      if (ep >= 0) ::close(ep);
      ep = -1;
    }
    return r;
  };
  int r;
  if (h->bind_port != 0) {
    r = attempt(h->bind_port);
  } else {
    // Unbound (or bound to port 0): an ephemeral port, as Linux's autobind,
    // from its default range; one free on every lcore.
    r = EADDRINUSE;
    for (int i = 0; i < 16 && r == EADDRINUSE; ++i) {
      const auto port = static_cast<std::uint16_t>(32768 + rte_rand() % (61000 - 32768));
      r = attempt(port);
      if (r == 0) h->bind_port = port;
    }
    if (r == EADDRINUSE) r = EAGAIN;  // Linux's answer when no ephemeral port is left
  }
  if (r) return fail(r);
  h->kind = Handle::Kind::listener;
  h->listen_opt = h->opt;
  h->ep = ep;
  h->members = std::move(members);
  // Settle it now that it is a listener (the result's settle saw a fresh
  // socket): arms the wake-up, so a thread that goes straight to
  // epoll_wait is woken by the first connection. The members too.
  s.touch(hd);
  for (std::uint32_t l = 0; l < h->members.size(); ++l)
    if (h->members[l] != kNone) s.touch(s.encode(l, h->members[l]));
  s.pump();
  return 0;
}

// A listener spanning lcores takes from its lcores in turn, starting after
// the one it last took from, so no lcore's queue waits behind another's.
int Thread::accept(int hd, sockaddr* addr, socklen_t* len, int flags) {
  ThreadState& s = *s_;
  for (;;) {
    s.pump();
    Handle* h = s.get(hd);
    if (!h) return fail(EBADF);
    if (h->kind != Handle::Kind::listener) return fail(EINVAL);
    int from = h->acc_head != kNone ? hd : -1;
    if (!h->members.empty()) {
      const auto n = static_cast<std::uint32_t>(h->members.size());
      const auto own = static_cast<std::uint32_t>(hd) >> s.shift;
      from = -1;
      for (std::uint32_t i = 0; i < n && from < 0; ++i) {
        const std::uint32_t l = (h->next_accept + i) % n;
        const int ld = l == own ? hd : s.encode(l, h->members[l]);
        if (s.links[l].h[s.id_of(ld)].acc_head != kNone) {
          from = ld;
          h->next_accept = (l + 1) % n;
        }
      }
    }
    if (from < 0) {
      if (h->nonblock) return fail(EAGAIN);
      s.wait_handle(hd);
      continue;
    }
    Link& k = s.link_of(from);
    Handle& lh = k.h[s.id_of(from)];
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return -1;  // EMFILE: stays queued, as Linux leaves it
    const std::uint32_t id = lh.acc_head;
    Handle& a = k.h[id];
    lh.acc_head = a.acc_next;
    if (lh.acc_head == kNone) lh.acc_tail = kNone;
    a.acc_next = kNone;
    a.accepted_pending = false;
    a.efd = efd;
    a.nonblock = (flags & SOCK_NONBLOCK) != 0;
    const int ad = s.encode((static_cast<std::uint32_t>(from) >> s.shift), id);
    s.shared(ad).efd.store(efd, std::memory_order_relaxed);
    if (addr && len) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_port = htons(a.peer_port);
      in.sin_addr.s_addr = htonl(a.peer_addr);
      std::memcpy(addr, &in, std::min<std::size_t>(*len, sizeof in));
      *len = sizeof in;
    }
    s.touch(ad);
    s.touch(from);
    s.pump();
    return ad;
  }
}

int Thread::connect(int hd, const sockaddr* addr, socklen_t len) {
  ThreadState& s = *s_;
  s.pump();
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (!addr || len < sizeof(sockaddr_in) || addr->sa_family != AF_INET) return fail(EINVAL);
  if (h->kind == Handle::Kind::udp) {
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof in);
    const int r = s.udp_connect(hd, ntohl(in.sin_addr.s_addr), ntohs(in.sin_port));
    if (r) return fail(r);
    h->udp_connected = true;
    h->peer_addr = ntohl(in.sin_addr.s_addr);
    h->peer_port = ntohs(in.sin_port);
    return 0;
  }
  if (h->kind == Handle::Kind::listener) return fail(EISCONN);
  if (h->kind == Handle::Kind::conn) {
    if (h->connecting) return fail(EALREADY);
    if (h->so_error) return fail(std::exchange(h->so_error, 0));
    return fail(EISCONN);
  }
  sockaddr_in in;
  std::memcpy(&in, addr, sizeof in);
  SharedSlot& sh = s.shared(hd);
  sh.opt = h->opt;
  sh.rx_limit = h->opt.rcvbuf;
  s.push_ctl(s.link_of(hd), Command{.id = s.id_of(hd),
                                    .op = CmdOp::connect,
                                    .port = ntohs(in.sin_port),
                                    .addr = ntohl(in.sin_addr.s_addr)},
             true);
  h->kind = Handle::Kind::conn;
  h->connecting = true;
  h->out_interest = true;
  h->out_ready = false;
  h->peer_addr = ntohl(in.sin_addr.s_addr);
  h->peer_port = ntohs(in.sin_port);
  s.touch(hd);
  s.pump();
  if (h->nonblock) return fail(EINPROGRESS);
  while (h->connecting) s.wait_handle(hd);
  if (h->so_error) return fail(std::exchange(h->so_error, 0));
  return 0;
}

ssize_t Thread::send(int hd, const void* buf, std::size_t len, int flags) {
  ThreadState& s = *s_;
  if (Handle* u = s.get(hd); u && u->kind == Handle::Kind::udp) return sendto(hd, buf, len, flags, nullptr, 0);
  std::size_t done = 0;
  for (;;) {
    s.pump();
    Handle* h = s.get(hd);
    if (!h) return fail(EBADF);
    if (h->kind != Handle::Kind::conn) return fail(EPIPE);
    if (h->so_error) return fail(std::exchange(h->so_error, 0));
    if (h->gone || h->wr_shut) return done ? static_cast<ssize_t>(done) : fail(EPIPE);
    const bool nonblock = h->nonblock || (flags & MSG_DONTWAIT);
    Link& k = s.link_of(hd);
    std::size_t avail = 0;
    if (!h->connecting) {
      // The lcore's count is re-read only when the last reading does not
      // cover this call: it only grows, so the credit seen is never more
      // than the real one, and a sender with room does not pull the line
      // the lcore writes on every send (SharedSlot).
      const auto credit = [&] {
        const std::uint64_t out = h->tx_submitted - h->tx_acked_seen;
        return out >= h->opt.sndbuf ? std::size_t{0} : static_cast<std::size_t>(h->opt.sndbuf - out);
      };
      avail = credit();
      if (avail < len - done) {
        h->tx_acked_seen = s.shared(hd).tx_acked.load(std::memory_order_acquire);
        avail = credit();
      }
    }
    if (len == done) return static_cast<ssize_t>(done);
    if (avail == 0 || !k.ch->cmd.has_room(1)) {
      s.request_out(hd, *h);
      s.touch(hd);
      s.pump();
      if (nonblock) return done ? static_cast<ssize_t>(done) : fail(EAGAIN);
      s.wait_handle(hd);
      continue;
    }
    const std::size_t want = std::min(avail, len - done);
    const auto* from = static_cast<const std::uint8_t*>(buf) + done;
    std::size_t filled = 0;
    if (want <= kInlineBytes) {
      // Small: the bytes ride in the command (no mbuf crosses).
      s.push_inline(k, s.id_of(hd), CmdOp::send_inline, 0, 0, from, want);
      filled = want;
    } else {
      // Fill mbufs from the pool (thread-safe) and hand the chain over.
      rte_mbuf* head = nullptr;
      rte_mbuf* tail = nullptr;
      while (filled < want) {
        rte_mbuf* m = rte_pktmbuf_alloc(k.lc->pool());
        if (!m) break;
        m->data_off = 0;  // TCP copies headers elsewhere: the whole room is payload
        const std::size_t n = std::min<std::size_t>(m->buf_len, want - filled);
        std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), from + filled, n);
        m->data_len = static_cast<std::uint16_t>(n);
        m->pkt_len = static_cast<std::uint32_t>(n);
        if (tail) {
          tail->next = m;
          head->nb_segs = static_cast<std::uint16_t>(head->nb_segs + 1);
          head->pkt_len += static_cast<std::uint32_t>(n);
        } else {
          head = m;
        }
        tail = m;
        filled += n;
      }
      if (!head) return done ? static_cast<ssize_t>(done) : fail(ENOBUFS);
      k.ch->cmd.push(Command{.id = s.id_of(hd), .op = CmdOp::send, .mbuf = reinterpret_cast<std::uint64_t>(head)});
    }
    h->tx_submitted += filled;
    if (h->out_ready) h->out_interest = false;  // a report is consumed; a request still waits for its answer
    done += filled;
    s.touch(hd);
    s.pump();
    if (nonblock || done == len) return static_cast<ssize_t>(done);
  }
}

ssize_t Thread::recv(int hd, void* buf, std::size_t len, int flags) {
  ThreadState& s = *s_;
  if (Handle* u = s.get(hd); u && u->kind == Handle::Kind::udp) return recvfrom(hd, buf, len, flags, nullptr, nullptr);
  auto* out = static_cast<std::uint8_t*>(buf);
  for (;;) {
    // This handle's readiness is settled after the copy below (every path
    // out settles it): data that arrives and is consumed within this call
    // never makes its eventfd readable, so a busy-polling thread pays no
    // eventfd write and drain per message (with SO_BUSY_POLL the lcore's
    // wake-up waits for it too). Small data arriving while none is queued
    // is copied from the ring's slot straight into `buf` (`direct` bytes).
    const std::size_t direct = s.pump_into(hd, out, (flags & MSG_PEEK) ? 0 : len);  // a peek takes nothing
    Handle* h = s.get(hd);
    if (!h) return fail(EBADF);
    if (h->kind != Handle::Kind::conn) {
      s.touch(hd);
      s.pump();
      return fail(ENOTCONN);
    }
    if (direct || h->rx_bytes) {
      std::size_t done = direct;
      if (flags & MSG_PEEK) {
        done = ThreadState::inline_copy(*h, out, len);
        for (rte_mbuf* m = h->rx_head; m && done < len; m = m->next) {
          const std::size_t n = std::min<std::size_t>(m->data_len, len - done);
          std::memcpy(out + done, rte_pktmbuf_mtod(m, const std::uint8_t*), n);
          done += n;
        }
        s.touch(hd);
        s.pump();
        return static_cast<ssize_t>(done);
      }
      if (h->rx_inline_len) {
        const std::size_t n = ThreadState::inline_copy(*h, out + done, len - done);
        ThreadState::inline_drop(*h, n);
        done += n;
      }
      while (done < len && h->rx_head) {
        rte_mbuf* m = h->rx_head;
        const std::size_t n = std::min<std::size_t>(m->data_len, len - done);
        std::memcpy(out + done, rte_pktmbuf_mtod(m, const std::uint8_t*), n);
        done += n;
        if (n == m->data_len) {
          h->rx_head = m->next;
          if (!h->rx_head) h->rx_tail = nullptr;
          m->next = nullptr;
          rte_pktmbuf_free_seg(m);
        } else {
          m->data_off = static_cast<std::uint16_t>(m->data_off + n);
          m->data_len = static_cast<std::uint16_t>(m->data_len - n);
        }
      }
      h->rx_bytes -= done - direct;
      h->rx_consumed += done;
      s.shared(hd).rx_consumed.store(h->rx_consumed, std::memory_order_release);
      s.settle_now(hd);
      return static_cast<ssize_t>(done);
    }
    if (h->so_error) {
      const int e = std::exchange(h->so_error, 0);
      s.touch(hd);
      s.pump();
      return fail(e);
    }
    if (s.held) {  // untouched, it is as its last settle left it: armed
      s.touch(hd);
      s.pump();
      if (h->rx_bytes || h->so_error) continue;  // arrived meanwhile
    }
    if (h->eof || h->rd_shut || h->gone) return 0;
    if (h->nonblock || (flags & MSG_DONTWAIT)) return fail(EAGAIN);
    s.wait_handle(hd);
  }
}

int Thread::shutdown(int hd, int how) {
  ThreadState& s = *s_;
  s.pump();
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return fail(EINVAL);
  if (h->kind != Handle::Kind::conn || h->connecting) return fail(ENOTCONN);
  if (how != SHUT_WR) h->rd_shut = true;
  if (how != SHUT_RD && !h->wr_shut) {
    h->wr_shut = true;
    if (!h->gone) s.push_ctl(s.link_of(hd), Command{.id = s.id_of(hd), .op = CmdOp::shutdown}, true);
  }
  s.touch(hd);
  s.pump();
  return 0;
}

int Thread::close(int hd) {
  ThreadState& s = *s_;
  s.pump();
  if (!s.get(hd)) return fail(EBADF);
  s.close_handle(hd);
  return 0;
}

// Argument checks in the order Linux makes them (net/core/sock.c
// sk_setsockopt, net/ipv4/ip_sockglue.c do_ip_setsockopt, tcp.c
// do_tcp_setsockopt), so each bad call fails with the same errno: a length
// too short for the level's int is EINVAL before a null pointer is EFAULT,
// an unknown option is ENOPROTOOPT, and so is an unknown level.
int Thread::setsockopt(int hd, int level, int name, const void* val, socklen_t len) {
  ThreadState& s = *s_;
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (static_cast<int>(len) < 0) return fail(EINVAL);
  const bool udp = h->kind == Handle::Kind::udp;
  int v = 0;
  // SOL_SOCKET and IPPROTO_TCP options are an int: checked and read first.
  auto read_int = [&]() -> int {
    if (len < sizeof(int)) return EINVAL;
    if (!val) return EFAULT;
    std::memcpy(&v, val, sizeof v);
    return 0;
  };
  // The lcore gets the option's resulting state (set_option in lcore.cpp:
  // nodelay 1 = Nagle off, keepalive 1 = on, delayed_ack 1 = on), not the
  // raw value: TCP_QUICKACK 1 means delayed ACKs off.
  auto live_opt = [&](OptId id) {
    const bool on = id == OptId::nodelay ? !h->opt.nagle : id == OptId::keepalive ? h->opt.keepalive : h->opt.delayed_ack;
    if (h->kind == Handle::Kind::conn && !h->gone)
      s.push_ctl(s.link_of(hd), Command{.id = s.id_of(hd), .op = CmdOp::set_option, .opt = id,
                                        .value = on ? 1u : 0u}, true);
  };
  if (level == IPPROTO_TCP) {
    if (udp) return fail(ENOPROTOOPT);  // not a TCP socket: IP's handler refuses the level
    if (const int e = read_int()) return fail(e);
    if (name == TCP_NODELAY) {
      h->opt.nagle = v == 0;
      live_opt(OptId::nodelay);
      return 0;
    }
    if (name == TCP_QUICKACK) {
      h->opt.delayed_ack = v == 0;
      live_opt(OptId::delayed_ack);
      return 0;
    }
    return fail(ENOPROTOOPT);
  }
  if (level == SOL_SOCKET) {
    if (const int e = read_int()) return fail(e);
    if (name == SO_BUSY_POLL) {
      // The thread polls this handle: the lcore's eventfd wake-up waits up
      // to v µs for it to take the data itself (channel.hpp, "Busy polling").
      if (v < 0) return fail(EINVAL);
      h->busy_poll_us = v;
      s.shared(hd).wake_delay_ns.store(ThreadState::wake_delay(v), std::memory_order_relaxed);
      for (std::uint32_t l = 0; l < h->members.size(); ++l)  // a UDP socket's (or listener's) other lcores
        if (h->members[l] != kNone) {
          const int md = s.encode(l, h->members[l]);
          s.at(md).busy_poll_us = v;
          s.shared(md).wake_delay_ns.store(ThreadState::wake_delay(v), std::memory_order_relaxed);
        }
      return 0;
    }
    if (name == SO_KEEPALIVE) {
      h->opt.keepalive = v != 0;
      live_opt(OptId::keepalive);
      return 0;
    }
    if (name == SO_SNDBUF || name == SO_RCVBUF) {
      // Buffers are sized when the connection is made (TCP's rings are
      // preallocated): like Linux, later changes are accepted, but here they
      // do not resize an open connection. Linux accepts any value and clamps
      // it; so do we, to a small floor (a zero credit would stall).
      constexpr int kMinBuf = 2048;
      v = std::max(v, kMinBuf);
      // TCP's send ring is sized for its default buffer: larger values are capped there.
      const auto& d = s.link_of(hd).lc->tcp_defaults();
      if (h->kind == Handle::Kind::fresh || (udp && !h->udp_open)) {
        if (name == SO_SNDBUF) h->opt.sndbuf = std::min(static_cast<std::uint32_t>(v), d.sndbuf);
        else h->opt.rcvbuf = static_cast<std::uint32_t>(v);
      }
      return 0;
    }
    if (name == SO_REUSEADDR || name == SO_REUSEPORT) {
      bool addr = h->reuseaddr, port = h->reuseport;
      (name == SO_REUSEADDR ? addr : port) = v != 0;
      const bool reuse = addr || port;
      // A UDP socket the lcore has opened (a membership call does, before
      // bind) is told at once; UdpLayer reads the flag at every bind, so it
      // also works after bind, for the binds that follow (as on Linux).
      if (udp && h->udp_open && reuse != h->reuse) {
        if (const int r = s.udp_mcast(hd, *h, McastOp::reuse, 0, reuse ? 1u : 0u)) return fail(r);
      }
      // Every lcore's socket has the flag: another socket binding the port
      // on any lcore checks it there.
      for (std::uint32_t l = 0; l < h->members.size(); ++l)
        if (h->members[l] != kNone) {
          const int md = s.encode(l, h->members[l]);
          Handle& mh = s.at(md);
          if (mh.udp_open && reuse != mh.reuse)
            if (const int r = s.udp_mcast(md, mh, McastOp::reuse, 0, reuse ? 1u : 0u)) return fail(r);
          mh.reuse = reuse;
        }
      h->reuseaddr = addr;
      h->reuseport = port;
      h->reuse = reuse;
      return 0;
    }
    return fail(ENOPROTOOPT);
  }
  if (level != IPPROTO_IP) return fail(ENOPROTOOPT);
  // IP_MULTICAST_TTL / _LOOP are an int or a single byte, read before any other check.
  const bool byte_opt = name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP;
  if (byte_opt && len >= 1) {
    if (!val) return fail(EFAULT);
    v = len >= sizeof(int) ? (std::memcpy(&v, val, sizeof v), v) : *static_cast<const unsigned char*>(val);
  }
  // Multicast: the option is parsed here and applied by the owning lcore
  // (synchronously, with Linux's errno values). Single interface: the
  // interface fields are not checked, except IP_MULTICAST_IF's address.
  std::uint32_t group = 0, arg = 0;
  McastOp op;
  switch (name) {
    case IP_ADD_MEMBERSHIP:
    case IP_DROP_MEMBERSHIP: {
      if (!udp) return fail(EPROTO);  // Linux refuses membership on a connection-oriented socket
      if (len < sizeof(ip_mreq)) return fail(EINVAL);  // ip_mreq or ip_mreqn (same prefix)
      if (!val) return fail(EFAULT);
      ip_mreq m;
      std::memcpy(&m, val, sizeof m);
      group = ntohl(m.imr_multiaddr.s_addr);
      op = name == IP_ADD_MEMBERSHIP ? McastOp::join : McastOp::leave;
      break;
    }
    case IP_ADD_SOURCE_MEMBERSHIP:
    case IP_DROP_SOURCE_MEMBERSHIP:
    case IP_BLOCK_SOURCE:
    case IP_UNBLOCK_SOURCE: {
      if (!udp) return fail(ENOPROTOOPT);
      if (len != sizeof(ip_mreq_source)) return fail(EINVAL);  // exactly, as Linux
      if (!val) return fail(EFAULT);
      ip_mreq_source m;
      std::memcpy(&m, val, sizeof m);
      group = ntohl(m.imr_multiaddr.s_addr);
      arg = ntohl(m.imr_sourceaddr.s_addr);
      op = name == IP_ADD_SOURCE_MEMBERSHIP    ? McastOp::join_source
           : name == IP_DROP_SOURCE_MEMBERSHIP ? McastOp::leave_source
           : name == IP_BLOCK_SOURCE           ? McastOp::block_source
                                               : McastOp::unblock_source;
      break;
    }
    case IP_MULTICAST_TTL:
      // -1 is the default TTL (1). Linux refuses it on a stream socket.
      if (!udp || len < 1) return fail(EINVAL);
      if (v == -1) v = 1;
      if (v < 0 || v > 255) return fail(EINVAL);
      arg = static_cast<std::uint32_t>(v);
      op = McastOp::ttl;
      break;
    case IP_MULTICAST_LOOP:
      if (len < 1) return fail(EINVAL);
      if (!udp) {  // accepted on TCP, as Linux does, and meaningless there
        h->mc_loop = v != 0;
        return 0;
      }
      arg = v != 0 ? 1u : 0u;
      op = McastOp::loop;
      break;
    case IP_MULTICAST_IF: {
      // ip_mreqn / ip_mreq: the address is imr_address (second field of
      // ip_mreqn) or imr_interface; a bare in_addr is the address itself.
      if (!udp || len < sizeof(in_addr)) return fail(EINVAL);
      if (!val) return fail(EFAULT);
      in_addr a{};
      if (len >= sizeof(ip_mreqn)) {
        ip_mreqn m;
        std::memcpy(&m, val, sizeof m);
        a = m.imr_address;
      } else if (len >= sizeof(ip_mreq)) {
        ip_mreq m;
        std::memcpy(&m, val, sizeof m);
        a = m.imr_interface;
      } else {
        std::memcpy(&a, val, sizeof a);
      }
      arg = ntohl(a.s_addr);
      op = McastOp::ifaddr;
      break;
    }
    default: return fail(ENOPROTOOPT);
  }
  // Membership lives in the IgmpHost, on one lcore (queue 0's in the
  // runtime, where every multicast frame is steered): the call goes to the
  // handle's socket there, a member opened for it if need be, whose
  // datagrams recvfrom() takes with the others. No lcore with an IgmpHost:
  // the own lcore answers (ENODEV). Send options stay with the primary.
  int target = hd;
  if (op != McastOp::ttl && op != McastOp::loop && op != McastOp::ifaddr) {
    const std::uint32_t il = s.igmp_lcore(hd);
    if (il != (static_cast<std::uint32_t>(hd) >> s.shift)) {
      if (const int e = s.span_udp(hd)) return fail(e);
      if (const int md = s.on_lcore(hd, *h, il); md >= 0) target = md;
    }
  }
  const int r = s.udp_mcast(target, s.at(target), op, group, arg);
  if (r != 0) return fail(r);
  if (op == McastOp::ttl) h->mc_ttl = static_cast<std::uint8_t>(arg);
  if (op == McastOp::loop) h->mc_loop = arg != 0;
  if (op == McastOp::ifaddr) h->mc_if = arg;
  return 0;
}

// As Linux: the value is cut to the caller's length (never EINVAL for a short
// one; IP_MULTICAST_TTL / _LOOP give one byte then), a negative length is
// EINVAL, a null pointer EFAULT (a null value only if bytes are to be copied);
// an unknown option ENOPROTOOPT, an unknown level (or TCP's on a UDP socket)
// EOPNOTSUPP.
int Thread::getsockopt(int hd, int level, int name, void* val, socklen_t* len) {
  ThreadState& s = *s_;
  s.pump();
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (!len) return fail(EFAULT);
  const int want = static_cast<int>(*len);
  const bool udp = h->kind == Handle::Kind::udp;
  int v = 0;
  bool byte_ok = false;  // may be returned as one byte
  if (level == SOL_SOCKET) {
    if (want < 0) return fail(EINVAL);
    switch (name) {
      case SO_ERROR: {
        const int ed = udp ? s.udp_errored(hd, *h) : hd;  // UDP: any lcore's ICMP error
        if (ed >= 0) v = std::exchange(s.at(ed).so_error, 0);
        if (ed >= 0 && ed != hd) s.touch(ed);
        s.touch(hd);
        s.pump();
        break;
      }
      case SO_TYPE: v = udp ? SOCK_DGRAM : SOCK_STREAM; break;
      case SO_SNDBUF: v = static_cast<int>(h->opt.sndbuf); break;
      case SO_RCVBUF: v = static_cast<int>(h->opt.rcvbuf); break;
      case SO_KEEPALIVE: v = h->opt.keepalive; break;
      case SO_BUSY_POLL: v = h->busy_poll_us; break;
      case SO_REUSEADDR: v = h->reuseaddr; break;
      case SO_REUSEPORT: v = h->reuseport; break;
      default: return fail(ENOPROTOOPT);
    }
  } else if (level == IPPROTO_TCP && !udp) {
    if (want < 0) return fail(EINVAL);
    if (name != TCP_NODELAY) return fail(ENOPROTOOPT);
    v = !h->opt.nagle;
  } else if (level == IPPROTO_IP) {
    if (want < 0) return fail(EINVAL);
    switch (name) {
      case IP_MULTICAST_TTL: v = h->mc_ttl; byte_ok = true; break;
      case IP_MULTICAST_LOOP: v = h->mc_loop; byte_ok = true; break;
      case IP_MULTICAST_IF: v = static_cast<int>(htonl(h->mc_if)); break;  // an in_addr
      default: return fail(ENOPROTOOPT);
    }
  } else if (level == SOL_USTACK) {
    if (want < 0) return fail(EINVAL);
    if (name != USTACK_SO_LCORE) return fail(ENOPROTOOPT);
    v = static_cast<int>((static_cast<std::uint32_t>(hd) >> s.shift));
  } else {
    return fail(EOPNOTSUPP);
  }
  if (byte_ok && want > 0 && want < static_cast<int>(sizeof v) && v >= 0 && v <= 255) {
    if (!val) return fail(EFAULT);
    *static_cast<unsigned char*>(val) = static_cast<unsigned char>(v);
    *len = 1;
    return 0;
  }
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(want), sizeof v);
  if (n > 0 && !val) return fail(EFAULT);
  if (n > 0) std::memcpy(val, &v, n);
  *len = static_cast<socklen_t>(n);
  return 0;
}

// The address bound (0.0.0.0:0 before bind; UDP: the port the lcore chose
// for port 0), or a connection's own end.
int Thread::getsockname(int hd, sockaddr* addr, socklen_t* len) {
  ThreadState& s = *s_;
  s.pump();
  Handle* h = s.get(hd);
  if (!h) return fail(EBADF);
  if (!addr || !len) return fail(EFAULT);
  if (static_cast<int>(*len) < 0) return fail(EINVAL);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(h->bind_port);
  in.sin_addr.s_addr = htonl(h->bind_addr);
  std::memcpy(addr, &in, std::min<std::size_t>(*len, sizeof in));
  *len = sizeof in;
  return 0;
}

int Thread::getpeername(int hd, sockaddr* addr, socklen_t* len) {
  Handle* h = s_->get(hd);
  if (!h) return fail(EBADF);
  if (h->kind != Handle::Kind::conn || h->connecting || h->gone) return fail(ENOTCONN);
  if (!addr || !len) return fail(EINVAL);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(h->peer_port);
  in.sin_addr.s_addr = htonl(h->peer_addr);
  std::memcpy(addr, &in, std::min<std::size_t>(*len, sizeof in));
  *len = sizeof in;
  return 0;
}

// UDP: one datagram per call, zero-copy from here to the wire (the lcore
// prepends the headers in the mbuf's headroom). The only backpressure is
// the command ring: full, it is EAGAIN and EPOLLOUT once drained.
ssize_t Thread::sendto(int hd, const void* buf, std::size_t len, int flags, const sockaddr* to, socklen_t tolen) {
  ThreadState& s = *s_;
  for (;;) {
    s.pump();
    Handle* h = s.get(hd);
    if (!h) return fail(EBADF);
    if (h->kind != Handle::Kind::udp) {
      if (to) return fail(EISCONN);
      return send(hd, buf, len, flags);
    }
    std::uint32_t addr = 0;
    std::uint16_t port = 0;
    if (to) {
      if (tolen < sizeof(sockaddr_in) || to->sa_family != AF_INET) return fail(EINVAL);
      sockaddr_in in;
      std::memcpy(&in, to, sizeof in);
      addr = ntohl(in.sin_addr.s_addr);
      port = ntohs(in.sin_port);
      if (addr == 0 && port == 0) return fail(EINVAL);
    } else if (!h->udp_connected) {
      return fail(EDESTADDRREQ);
    }
    if (const int ed = s.udp_errored(hd, *h); ed >= 0) {
      const int e = std::exchange(s.at(ed).so_error, 0);
      s.touch(ed);
      s.pump();
      return fail(e);
    }
    Link& k = s.link_of(hd);  // sends go out from the primary's lcore
    if (len > k.lc->udp_max_payload()) return fail(EMSGSIZE);
    // An ephemeral port first, as Linux's autobind; on several lcores the
    // same port on each (an unbound socket may be open there already, for
    // a membership call).
    // (!udp_open implies an unbound socket; spans() is looked at only then.)
    if (h->bind_port == 0 && (!h->udp_open || s.spans(hd))) {
      const int r = s.udp_bind(hd, 0, 0);
      if (r) return fail(r);
      h = s.get(hd);
    }
    if (!k.ch->cmd.has_room(1)) {
      s.request_out(hd, *h);
      s.touch(hd);
      s.pump();
      if (h->nonblock || (flags & MSG_DONTWAIT)) return fail(EAGAIN);
      s.wait_handle(hd);
      continue;
    }
    if (len <= kInlineBytes) {
      // Small: the bytes ride in the command; the lcore's UDP copies them
      // into an mbuf of its own (no mbuf crosses).
      s.push_inline(k, s.id_of(hd), CmdOp::udp_send_inline, addr, port, buf, len);
    } else {
      rte_mbuf* m = rte_pktmbuf_alloc(k.lc->pool());
      if (!m) return fail(ENOBUFS);
      if (len > rte_pktmbuf_tailroom(m)) {
        rte_pktmbuf_free(m);
        return fail(EMSGSIZE);
      }
      std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), buf, len);
      m->data_len = static_cast<std::uint16_t>(len);
      m->pkt_len = static_cast<std::uint32_t>(len);
      k.ch->cmd.push(Command{.id = s.id_of(hd), .op = CmdOp::udp_send, .port = port, .addr = addr,
                             .mbuf = reinterpret_cast<std::uint64_t>(m)});
    }
    if (h->out_ready) h->out_interest = false;
    s.touch(hd);
    s.pump();
    return static_cast<ssize_t>(len);
  }
}

// UDP: the oldest datagram; a longer one than `len` is truncated and the
// rest discarded (MSG_TRUNC in flags: the datagram's length is returned).
ssize_t Thread::recvfrom(int hd, void* buf, std::size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
  ThreadState& s = *s_;
  for (;;) {
    s.pump_holding(hd);  // settled on the way out, as in recv()
    Handle* h = s.get(hd);
    if (!h) return fail(EBADF);
    if (h->kind != Handle::Kind::udp) {
      if (s.held) s.touch(hd);  // recv() holds and settles it
      const ssize_t r = recv(hd, buf, len, flags);
      if (r >= 0 && from && fromlen) getpeername(hd, from, fromlen);
      return r;
    }
    // On several lcores: from the primary and its members in turn.
    if (const int from_hd = s.udp_next(hd, *h, !(flags & MSG_PEEK)); from_hd >= 0) {
      Handle& src = s.at(from_hd);
      const Dgram& d = src.dq[src.dq_head];
      const std::size_t dlen = d.m ? d.m->pkt_len : d.len;
      const std::size_t n = std::min(len, dlen);
      if (n && d.m) {
        const void* p = rte_pktmbuf_read(d.m, 0, static_cast<std::uint32_t>(n), buf);
        if (p != buf) std::memcpy(buf, p, n);
      } else if (n) {
        std::memcpy(buf, d.bytes.data(), n);
      }
      if (from && fromlen) {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(d.port);
        in.sin_addr.s_addr = htonl(d.addr);
        std::memcpy(from, &in, std::min<std::size_t>(*fromlen, sizeof in));
        *fromlen = sizeof in;
      }
      if (!(flags & MSG_PEEK)) {
        if (d.m) rte_pktmbuf_free(d.m);
        src.dq_head = (src.dq_head + 1) % static_cast<std::uint32_t>(src.dq.size());
        --src.dq_count;
        src.rx_consumed += dlen;
        ++src.rx_dgrams_consumed;
        SharedSlot& sh = s.shared(from_hd);
        sh.rx_consumed.store(src.rx_consumed, std::memory_order_release);
        sh.rx_dgrams_consumed.store(src.rx_dgrams_consumed, std::memory_order_release);
      }
      if (from_hd != hd) s.touch(from_hd);
      s.touch(hd);
      s.pump();
      return static_cast<ssize_t>((flags & MSG_TRUNC) ? dlen : n);
    }
    if (const int ed = s.udp_errored(hd, *h); ed >= 0) {
      const int e = std::exchange(s.at(ed).so_error, 0);
      if (ed != hd) s.touch(ed);
      s.touch(hd);
      s.pump();
      return fail(e);
    }
    if (s.held) {  // untouched, it is as its last settle left it: armed
      s.touch(hd);
      s.pump();
    }
    if (s.udp_next(hd, *h, false) >= 0 || s.udp_errored(hd, *h) >= 0) continue;  // arrived meanwhile
    if (h->nonblock || (flags & MSG_DONTWAIT)) return fail(EAGAIN);
    s.wait_handle(hd);
  }
}

int Thread::set_nonblocking(int hd, bool on) {
  Handle* h = s_->get(hd);
  if (!h) return fail(EBADF);
  h->nonblock = on;
  return 0;
}

int Thread::eventfd(int hd) {
  Handle* h = s_->get(hd);
  if (!h) return fail(EBADF);
  return h->ep >= 0 ? h->ep : h->efd;
}

std::uint32_t Thread::events(int hd) {
  ThreadState& s = *s_;
  s.pump();
  Handle* h = s.get(hd);
  if (!h) return POLLNVAL;
  std::uint32_t m = s.mask(hd, *h);
  for (std::uint32_t l = 0; l < h->members.size(); ++l) {  // a listener or UDP socket spanning lcores
    if (h->members[l] == kNone) continue;
    const Handle& mh = s.links[l].h[h->members[l]];
    if (mh.acc_head != kNone || mh.dq_count) m |= EPOLLIN;
    if (mh.so_error) m |= EPOLLERR;
  }
  if (ThreadState::out_report(*h)) {
    m |= EPOLLOUT;
    h->out_interest = false;
    s.touch(hd);
    s.pump();
  }
  return m;
}

void Thread::poll() { s_->pump(); }

// --- Poller -------------------------------------------------------------------

Poller::Poller(Thread& t) : t_(t), epfd_(::epoll_create1(EPOLL_CLOEXEC)) {}
Poller::~Poller() {
  if (epfd_ >= 0) ::close(epfd_);
}

int Poller::add(int h, std::uint32_t data, bool edge) {
  const int fd = t_.eventfd(h);
  if (fd < 0) return -1;
  epoll_event ev{};
  ev.events = EPOLLIN | (edge ? EPOLLET : 0u);
  // The handle in the low half, the caller's data in the high half.
  ev.data.u64 = (static_cast<std::uint64_t>(data) << 32) | static_cast<std::uint32_t>(h);
  return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

int Poller::del(int h) {
  const int fd = t_.eventfd(h);
  if (fd < 0) return -1;
  return ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

int Poller::wait(PollEvent* out, int max, int timeout_ms) {
  t_.poll();
  constexpr int kBatch = 64;
  epoll_event evs[kBatch];
  const int n = ::epoll_wait(epfd_, evs, std::min(max, kBatch), timeout_ms);
  if (n <= 0) return n;
  int k = 0;
  for (int i = 0; i < n; ++i) {
    const int h = static_cast<int>(evs[i].data.u64 & 0xffffffffu);
    const std::uint32_t e = t_.events(h);
    if (!e) continue;
    out[k++] = PollEvent{h, e, static_cast<std::uint32_t>(evs[i].data.u64 >> 32)};
  }
  return k;
}

}  // namespace ustack::shim
