#include "shim/lcore.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

namespace ustack::shim {

namespace {

// Segments at least this long go to TCP without a copy; shorter ones are
// copied into TCP's send buffer, where they share mbufs (a stream of small
// messages would otherwise use one send-buffer slot each).
constexpr std::uint16_t kZeroCopyMin = 1024;

std::int32_t errno_of(TcpError e) {
  switch (e) {
    case TcpError::none: return 0;
    case TcpError::refused: return ECONNREFUSED;
    case TcpError::timed_out: return ETIMEDOUT;
    case TcpError::reset: return ECONNRESET;
    case TcpError::aborted: return ECONNABORTED;
  }
  return EIO;
}

std::int32_t errno_of(UdpStatus st) {
  switch (st) {
    case UdpStatus::ok: return 0;
    case UdpStatus::addr_in_use: return EADDRINUSE;
    case UdpStatus::bad_address: return EADDRNOTAVAIL;
    case UdpStatus::already_bound: return EINVAL;
    case UdpStatus::no_ports: return EAGAIN;  // Linux's answer when the ephemeral range is used up
    case UdpStatus::not_connected: return EDESTADDRREQ;
    case UdpStatus::too_big: return EMSGSIZE;
    case UdpStatus::no_mbuf: return ENOBUFS;
    default: return EIO;
  }
}

void append_chain(rte_mbuf*& head, rte_mbuf*& tail, rte_mbuf* m) {
  rte_mbuf* last = m;
  while (last->next) last = last->next;
  if (head) {
    tail->next = m;
    head->nb_segs = static_cast<std::uint16_t>(head->nb_segs + m->nb_segs);
    head->pkt_len += m->pkt_len;
  } else {
    head = m;
  }
  tail = last;
}

}  // namespace

ShimLcore::ShimLcore(tcp::TcpLayer& tcp, const LcoreConfig& cfg, UdpLayer* udp)
    : tcp_(tcp), udp_(udp), cfg_(cfg), pool_(tcp.stack().pool()) {
  if (udp_) udp_max_payload_ = udp_->max_payload();
  const std::uint32_t per = per_channel();
  while ((1u << shift_) < per) ++shift_;
  for (std::uint32_t i = 0; i < cfg_.max_threads; ++i) channels_.push_back(std::make_unique<Channel>(i, cfg_.channel));
  slots_.resize(static_cast<std::size_t>(cfg_.max_threads) << shift_);
  links_.resize(slots_.size());
  udp_ctx_.resize(slots_.size());
  for (std::uint32_t g = 0; g < udp_ctx_.size(); ++g) udp_ctx_[g] = UdpCtx{this, g};
  conn_slot_.assign(tcp.capacity(), kNone);
  listener_slot_.assign(tcp.config().max_listeners, kNone);
  free_head_.assign(cfg_.max_threads, kNone);
  for (std::uint32_t c = 0; c < cfg_.max_threads; ++c) {
    for (std::uint32_t id = per; id-- > cfg_.channel.handles;) {
      const std::uint32_t g = slot_index(c, id);
      links_[g].free_next = free_head_[c];
      free_head_[c] = g;
    }
  }
  deferred_.resize(cfg_.max_threads);
  fenced_.assign(cfg_.max_threads, 0);
  // Each handle has at most one waiter queued (SharedSlot::out_req).
  for (auto& d : deferred_) d.ids.resize(per);
}

ShimLcore::~ShimLcore() {
  for (auto& s : slots_) {
    if (s.rx_held) rte_pktmbuf_free(s.rx_held);
    if (s.tx_held) rte_pktmbuf_free(s.tx_held);
  }
  // Completions and commands still in flight carry mbufs.
  for (auto& ch : channels_) {
    Command c;
    while (ch->cmd.pop(c))
      if ((c.op == CmdOp::send || c.op == CmdOp::udp_send) && c.mbuf) rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(c.mbuf));
    Completion k;
    while (ch->cpl.pop(k))
      if ((k.op == CplOp::data || k.op == CplOp::dgram) && k.mbuf) rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(k.mbuf));
  }
}

// --- the loop ---------------------------------------------------------------

// An idle iteration costs a load or two per attached thread's channel
// (its waiter and command rings' next slots) and three list heads: the
// loop's wait for a command is part of every crossing.
void ShimLcore::poll(TimeNs now) {
  for (auto& chp : channels_) {
    Channel& ch = *chp;
    if (!ch.active.load(std::memory_order_acquire)) continue;
    // Waiters first: a thread queues one after its sends, so once a waiter
    // is seen, the sends before it are in the command ring. They are
    // answered only after the ring has been drained, so the credit the
    // thread will compute includes its own sends (otherwise it could be
    // woken to find no credit: a spurious wake-up).
    Deferred& d = deferred_[ch.index];
    std::uint32_t id;
    while (d.n < d.ids.size() && ch.waiters.pop(id)) d.ids[d.n++] = id;
    // A command that cannot run yet (no mbuf to hold a send's rest) stays
    // in the ring with those after it: the thread sees a full ring, not a
    // lost send. Commands run where they lie in the ring (no copy).
    const std::size_t most = cfg_.cmds_per_poll ? cfg_.cmds_per_poll : 1;
    std::size_t done = 0;
    bool stalled = false;
    for (const Command* c; done < most && (c = ch.cmd.front(done)) != nullptr; ++done) {
      if (!execute(ch, *c, now)) {
        stalled = true;
        break;
      }
    }
    if (done) {
      ch.cmd.advance(done);
      ctr_.commands += done;
    }
    if (stalled) ++ctr_.cmd_stalled;
    else if (done < most && d.n) take_waiters(ch, now);
  }
  if (tx_retry_head_ != kNone) retry_held(now);
  if (dirty_head_ != kNone) flush_dirty(now);
  if (starved_head_ != kNone) check_starved();
}

// Held sends TCP refused with nothing in flight: tried again on every
// iteration until TCP takes them (drain_tx lists them again if not), at
// most slots_per_poll handles per iteration.
void ShimLcore::retry_held(TimeNs now) {
  std::uint32_t retry = std::exchange(tx_retry_head_, kNone);
  for (std::uint32_t tries = cfg_.slots_per_poll; retry != kNone && tries; --tries) {
    const std::uint32_t g = retry;
    retry = std::exchange(links_[g].tx_retry_next, kNone);
    links_[g].in_tx_retry = false;
    const Slot& s = slots_[g];
    if (s.kind == Kind::conn && !s.tcp_gone && s.tx_held) {
      drain_tx(g, now);
      if (!s.tcp_gone) {
        publish_acked(g);
        check_writable(g);
      }
    }
  }
  while (retry != kNone) {  // not reached this time: first next time
    const std::uint32_t g = retry;
    retry = links_[g].tx_retry_next;
    links_[g].tx_retry_next = tx_retry_head_;
    tx_retry_head_ = g;
  }
}

// Handles with something to push, in the order they became dirty.
void ShimLcore::flush_dirty(TimeNs now) {
  std::uint32_t budget = cfg_.slots_per_poll;
  std::uint32_t retry_head = kNone, retry_tail = kNone;
  while (budget-- && dirty_head_ != kNone) {
    const std::uint32_t g = dirty_head_;
    dirty_head_ = links_[g].dirty_next;
    if (dirty_head_ == kNone) dirty_tail_ = kNone;
    links_[g].dirty_next = kNone;
    links_[g].in_dirty = false;
    if (!flush(g, now)) {
      ++ctr_.cpl_ring_full;
      links_[g].in_dirty = true;
      if (retry_tail == kNone) retry_head = g; else links_[retry_tail].dirty_next = g;
      retry_tail = g;
    }
  }
  if (retry_head != kNone) {  // full rings: retried next iteration, after the rest
    if (dirty_tail_ == kNone) dirty_head_ = retry_head; else links_[dirty_tail_].dirty_next = retry_head;
    dirty_tail_ = retry_tail;
  }
}

// Handles waiting for receive credit: dirty again once a quarter is back.
void ShimLcore::check_starved() {
  std::uint32_t checks = cfg_.starved_per_poll;
  std::uint32_t* link = &starved_head_;
  while (checks-- && *link != kNone) {
    const std::uint32_t g = *link;
    Slot& s = slots_[g];
    const bool back = s.kind == Kind::udp ? rx_room(g) : credit(g) * 4 >= s.rx_limit;
    if ((s.kind != Kind::conn && s.kind != Kind::udp) || s.tcp_gone || s.closing || back) {
      *link = links_[g].starved_next;
      links_[g].starved_next = kNone;
      links_[g].in_starved = false;
      mark_dirty(g);
    } else {
      link = &links_[g].starved_next;
    }
  }
}

void ShimLcore::after_flush(TimeNs now) {
  if (fire_head_ == kNone && now < late_due_) return;
  ++fence_epoch_;
  while (fire_head_ != kNone) {
    const std::uint32_t g = fire_head_;
    Links& l = links_[g];
    fire_head_ = l.fire_next;
    l.fire_next = kNone;
    l.in_fire = false;
    // SO_BUSY_POLL: the thread polls this handle and will most likely take
    // the completion before the delay is up; then L2 finds `want` re-armed
    // past it (or cleared) and there is no eventfd write, and no drain on the
    // thread either. Deferring L2 keeps the protocol: it still reads `want`
    // after this iteration's fence.
    const SharedSlot& sh = shared(g);
    const std::uint32_t delay = sh.wake_delay_ns.load(std::memory_order_relaxed);
    if (delay == 0) {
      fire(g);
      continue;
    }
    // Already waiting: it keeps its deadline (a sleeping thread is not woken
    // later and later by a stream), and `want` is not read here: the thread
    // writes that line on every receive, and reading it per message would
    // pull it over each time. The deadline decides below.
    if (l.in_late) continue;
    l.in_late = true;
    l.late_next = late_head_;
    late_head_ = g;
    l.late_at = now + delay;
    l.late_pos = l.fire_pos;
    late_due_ = std::min(late_due_, l.late_at);
  }
  if (now < late_due_) return;
  late_due_ = ~TimeNs{0};
  std::uint32_t* link = &late_head_;
  while (*link != kNone) {
    const std::uint32_t g = *link;
    Links& l = links_[g];
    if (l.late_at <= now) {
      // The thread took what this wait was for but not the newest
      // completion: it is polling, and the newest gets a delay of its own,
      // from now (so a wake-up is at most twice the delay late). A hint
      // only: fire() decides, after the fence.
      const SharedSlot& sh = shared(g);
      const std::uint64_t w = sh.want.load(std::memory_order_relaxed);
      if (w != 0 && l.late_pos + 1 < w && l.fire_pos + 1 >= w) {
        l.late_pos = l.fire_pos;
        l.late_at = now + sh.wake_delay_ns.load(std::memory_order_relaxed);
        late_due_ = std::min(late_due_, l.late_at);
        link = &l.late_next;
        continue;
      }
      *link = l.late_next;
      l.late_next = kNone;
      l.in_late = false;
      fire(g);
    } else {
      late_due_ = std::min(late_due_, l.late_at);
      link = &l.late_next;
    }
  }
}

void ShimLcore::fire(std::uint32_t g) {
  const Links& l = links_[g];
  Channel& ch = chan_of(g);
  // L1 in channel.hpp: completions pushed before `want` is read, once per
  // channel per after_flush pass.
  if (fenced_[ch.index] != fence_epoch_) {
    fenced_[ch.index] = fence_epoch_;
    ch.order.fetch_add(1, std::memory_order_acq_rel);
  }
  SharedSlot& sh = shared(g);
  std::uint64_t w = sh.want.load(std::memory_order_relaxed);
  // L2: only for a completion the thread had not consumed when it armed.
  if (w != 0 && l.fire_pos + 1 >= w &&
      sh.want.compare_exchange_strong(w, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) {
    const int fd = sh.efd.load(std::memory_order_relaxed);
    const std::uint64_t one = 1;
    // Cannot fail short of a bad fd: the counter cannot overflow, since
    // only the CAS winner writes and the thread drains before re-arming.
    [[maybe_unused]] const ssize_t r = ::write(fd, &one, sizeof one);
    sh.fired.fetch_add(1, std::memory_order_release);
    ++ctr_.eventfd_writes;
  }
}

// --- commands ---------------------------------------------------------------

bool ShimLcore::execute(Channel& ch, const Command& c, TimeNs now) {
  if (c.id >= per_channel()) {
    if ((c.op == CmdOp::send || c.op == CmdOp::udp_send) && c.mbuf) rte_pktmbuf_free(reinterpret_cast<rte_mbuf*>(c.mbuf));
    return true;
  }
  const std::uint32_t g = slot_index(ch.index, c.id);
  Slot& s = slots_[g];
  SharedSlot& sh = ch.slots[c.id];
  switch (c.op) {
    case CmdOp::listen: {
      auto l = tcp_.listen(Ipv4Addr{c.addr}, c.port, c.value, this, nullptr, sh.opt);
      s.result_pending = true;
      s.rx_limit = sh.rx_limit;
      if (l) {
        s.kind = Kind::listener;
        s.listener = *l;
        listener_slot_[l->index] = g;
        s.result = 0;
      } else {
        s.result = EADDRINUSE;
      }
      mark_dirty(g);
      break;
    }
    case CmdOp::connect: {
      s.kind = Kind::conn;
      s.rx_limit = sh.rx_limit;
      auto id = tcp_.connect(Ipv4Addr{c.addr}, c.port, this, nullptr, sh.opt, now);
      if (id) {
        s.conn = *id;
        conn_slot_[id->index] = g;
      } else {
        s.tcp_gone = true;
        s.closed_pending = true;
        s.closed_errno = EADDRNOTAVAIL;
        mark_dirty(g);
      }
      break;
    }
    case CmdOp::send: {
      auto* m = reinterpret_cast<rte_mbuf*>(c.mbuf);
      if (s.kind != Kind::conn || s.tcp_gone || s.closing) {
        rte_pktmbuf_free(m);
        break;
      }
      append_chain(s.tx_held, s.tx_held_tail, m);
      drain_tx(g, now);
      publish_acked(g);
      break;
    }
    case CmdOp::send_inline: {
      if (s.kind != Kind::conn || s.tcp_gone || s.closing) break;
      const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(c.value, kInlineBytes));
      std::uint32_t off = s.tx_inline_done;  // taken by an earlier try of this command
      // Earlier sends held here go first, and get another try now, as a
      // send command gives them: on_writable comes only with an ACK, and
      // none may be coming (TCP had nothing in flight when it refused them).
      if (s.tx_held) drain_tx(g, now);
      if (!s.tx_held) {
        const std::size_t n = tcp_.send(s.conn, Bytes{c.data + off, len - off}, now);
        s.tx_accepted += n;
        off += static_cast<std::uint32_t>(n);
      }
      if (off < len) {  // TCP is full, or earlier sends wait for it: the rest waits behind them
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (!m) {
          s.tx_inline_done = off;
          publish_acked(g);
          return false;
        }
        m->data_off = 0;
        std::memcpy(rte_pktmbuf_mtod(m, std::uint8_t*), c.data + off, len - off);
        m->data_len = static_cast<std::uint16_t>(len - off);
        m->pkt_len = len - off;
        append_chain(s.tx_held, s.tx_held_tail, m);
      }
      s.tx_inline_done = 0;
      publish_acked(g);
      break;
    }
    case CmdOp::shutdown:
      if (s.kind == Kind::conn && !s.tcp_gone) {
        if (s.tx_held) s.shut_wr_pending = true;
        else tcp_.shutdown(s.conn, now);
      }
      break;
    case CmdOp::close:
    case CmdOp::abort:
      s.closing = true;
      s.abort_on_close = c.op == CmdOp::abort;
      // A UDP socket lets its port go at once, as close(2) does: a bind the
      // thread sends next (even in this batch) finds the port free.
      if (s.kind == Kind::udp) {
        s.udp->close();  // frees what it still queues
        s.udp = nullptr;
        s.kind = Kind::idle;
      }
      mark_dirty(g);
      break;
    case CmdOp::udp_bind:
    case CmdOp::udp_connect: {
      s.result_pending = true;
      mark_dirty(g);
      if (!udp_ || (s.kind != Kind::idle && s.kind != Kind::udp)) {
        s.result = udp_ ? EINVAL : EPROTONOSUPPORT;
        break;
      }
      if (!open_udp(g, sh, (c.value & 1) != 0)) {
        s.result = ENOBUFS;
        break;
      }
      UdpStatus st;
      if (c.op == CmdOp::udp_connect) {
        st = s.udp->connect(Ipv4Addr{c.addr}, c.port);
      } else if (c.value & 2) {
        // An ephemeral port another lcore picked: free here too, even of
        // sockets that would share it (UdpLayer::bind's own pick never shares).
        s.udp->set_reuse(false);
        st = s.udp->bind(Ipv4Addr{c.addr}, c.port);
        s.udp->set_reuse((c.value & 1) != 0);
      } else {
        st = s.udp->bind(Ipv4Addr{c.addr}, c.port);
      }
      s.result = errno_of(st);
      s.result_port = s.udp->local().port;
      break;
    }
    case CmdOp::udp_unbind:
      s.result_pending = true;
      mark_dirty(g);
      s.result = 0;
      s.result_port = 0;
      if (s.kind == Kind::udp) s.udp->unbind();
      break;
    case CmdOp::udp_mcast:
      s.result_pending = true;
      mark_dirty(g);
      if (!udp_ || (s.kind != Kind::idle && s.kind != Kind::udp)) {
        s.result = udp_ ? EINVAL : EPROTONOSUPPORT;
        break;
      }
      if (!open_udp(g, sh, (c.mbuf & 1) != 0)) {
        s.result = ENOBUFS;
        break;
      }
      s.result = membership(*s.udp, static_cast<McastOp>(c.port), Ipv4Addr{c.addr}, Ipv4Addr{c.value}, now);
      break;
    case CmdOp::udp_send: {
      Packet p(reinterpret_cast<rte_mbuf*>(c.mbuf));
      if (s.kind != Kind::udp || s.closing) break;  // p frees the datagram
      // Not consumed (too big, not connected...): p frees it. UDP reports
      // no late send errors; the socket's counters have them.
      if (c.addr == 0 && c.port == 0) s.udp->send_packet(std::move(p), now);
      else s.udp->send_packet_to(std::move(p), Ipv4Addr{c.addr}, c.port, now);
      break;
    }
    case CmdOp::udp_send_inline: {
      if (s.kind != Kind::udp || s.closing) break;
      const Bytes data{c.data, std::min<std::size_t>(c.value, kInlineBytes)};
      // As udp_send: what UDP refuses (no mbuf, not connected...) is on the
      // socket's counters; UDP reports no late send errors.
      if (c.addr == 0 && c.port == 0) s.udp->send(data, now);
      else s.udp->send_to(data, Ipv4Addr{c.addr}, c.port, now);
      break;
    }
    case CmdOp::set_option:
      if (s.kind == Kind::conn && !s.tcp_gone) {
        switch (c.opt) {
          case OptId::nodelay: tcp_.set_nagle(s.conn, c.value == 0, now); break;
          case OptId::keepalive: tcp_.set_keepalive(s.conn, c.value != 0, now); break;
          case OptId::delayed_ack: tcp_.set_delayed_ack(s.conn, c.value != 0); break;
        }
      }
      break;
  }
  return true;
}

bool ShimLcore::open_udp(std::uint32_t g, SharedSlot& sh, bool reuse) {
  Slot& s = slots_[g];
  if (s.kind == Kind::udp) return true;
  UdpSocket* u = udp_->open();
  if (!u) return false;
  s.kind = Kind::udp;
  s.udp = u;
  s.rx_limit = sh.rx_limit;
  u->set_reuse(reuse);
  u->on_readable(&ShimLcore::on_udp_readable, &udp_ctx_[g]);
  u->on_error(&ShimLcore::on_udp_error, &udp_ctx_[g]);
  return true;
}

// The IP_*_MEMBERSHIP and *_SOURCE options with Linux's rules and errno
// values (net/ipv4/igmp.c ip_mc_join_group / ip_mc_leave_group /
// ip_mc_source): the socket's filter is read back from the IgmpHost, edited
// by one source, and set again whole. Membership lives in the lcore's
// IgmpHost: a layer without one (every lcore but queue 0's in the runtime)
// answers ENODEV, as Linux does when no interface takes the group.
std::int32_t ShimLcore::membership(UdpSocket& u, McastOp op, Ipv4Addr group, Ipv4Addr src, TimeNs now) {
  if (op == McastOp::ttl) {
    u.set_multicast_ttl(static_cast<std::uint8_t>(src.v));
    return 0;
  }
  if (op == McastOp::loop) {
    u.set_multicast_loop(src.v != 0);
    return 0;
  }
  if (op == McastOp::ifaddr) return u.set_multicast_if(src) == UdpStatus::ok ? 0 : EADDRNOTAVAIL;
  if (op == McastOp::reuse) {
    // UdpLayer reads both sockets' flags when a later bind looks for a
    // conflict, so this takes effect bound or not, as Linux's sk_reuse does.
    u.set_reuse(src.v != 0);
    return 0;
  }
  if (!group.is_multicast()) return op == McastOp::leave ? EADDRNOTAVAIL : EINVAL;
  if (!u.has_igmp()) return ENODEV;
  const auto cur = u.source_filter(group);
  const auto status = [](UdpStatus st) -> std::int32_t {
    switch (st) {
      case UdpStatus::ok: return 0;
      case UdpStatus::table_full: return ENOBUFS;
      case UdpStatus::sources_full: return ENOBUFS;
      case UdpStatus::not_multicast: return EINVAL;
      case UdpStatus::no_igmp: return ENODEV;
      default: return errno_of(st);
    }
  };
  if (op == McastOp::join) return cur ? EADDRINUSE : status(u.join(group, now));
  if (op == McastOp::leave) return cur ? status(u.leave(group, now)) : EADDRNOTAVAIL;
  const bool add = op == McastOp::join_source || op == McastOp::block_source;
  const FilterMode mode =
      op == McastOp::join_source || op == McastOp::leave_source ? FilterMode::include : FilterMode::exclude;
  if (!cur) {
    // Only IP_ADD_SOURCE_MEMBERSHIP joins; the others need a prior join.
    if (op != McastOp::join_source) return EINVAL;
    const Ipv4Addr one[1] = {src};
    return status(u.set_source_filter(group, FilterMode::include, one, now));
  }
  // A filter with sources keeps its mode; an empty one may switch (Linux).
  if (!cur->sources.empty() && cur->mode != mode) return EINVAL;
  std::size_t n = 0;
  bool found = false;
  for (const Ipv4Addr a : cur->sources) {
    if (a == src) {
      found = true;
      if (add) return EADDRNOTAVAIL;  // already in the list
      continue;                       // removed
    }
    if (n == mcast_scratch_.size()) return ENOBUFS;
    mcast_scratch_[n++] = a;
  }
  if (!add && !found) return EADDRNOTAVAIL;
  if (add) {
    if (n == mcast_scratch_.size()) return ENOBUFS;
    mcast_scratch_[n++] = src;
  }
  // INCLUDE with its last source dropped is a leave, as the IgmpHost takes it.
  return status(u.set_source_filter(group, mode, std::span<const Ipv4Addr>(mcast_scratch_.data(), n), now));
}

void ShimLcore::take_waiters(Channel& ch, TimeNs) {
  Deferred& d = deferred_[ch.index];
  for (std::size_t i = 0; i < d.n; ++i) {
    const std::uint32_t id = d.ids[i];
    if (id >= per_channel()) continue;
    const std::uint32_t g = slot_index(ch.index, id);
    ch.slots[id].out_req.store(0, std::memory_order_relaxed);
    Slot& s = slots_[g];
    s.want_out = true;
    check_writable(g);
  }
  d.n = 0;
}

// Fires kWantOut when the thread, reading tx_acked, will find send credit
// (the same rule as TCP's on_writable: a quarter of the buffer free, or the
// buffer empty); otherwise asks TCP for on_writable.
void ShimLcore::check_writable(std::uint32_t g) {
  Slot& s = slots_[g];
  if (!s.want_out) return;
  if (s.kind != Kind::conn || s.tcp_gone || s.closing) {
    s.want_out = false;
    s.writable_pending = true;
    mark_dirty(g);
    return;
  }
  // Still connecting: the Connected completion is the wake-up.
  if (tcp_.state(s.conn) == TcpState::syn_sent) return;
  publish_acked(g);
  const std::size_t queued = tcp_.send_queued(s.conn);
  const std::size_t limit = shared(g).opt.sndbuf;
  if (!s.tx_held && (queued == 0 || (limit > queued && limit - queued >= limit / 4))) {
    s.want_out = false;
    s.writable_pending = true;
    mark_dirty(g);
  } else {
    tcp_.want_writable(s.conn);
  }
}

void ShimLcore::drain_tx(std::uint32_t g, TimeNs now) {
  Slot& s = slots_[g];
  while (s.tx_held) {
    rte_mbuf* m = s.tx_held;
    rte_mbuf* next = m->next;
    m->next = nullptr;
    m->nb_segs = 1;
    m->pkt_len = m->data_len;
    const std::uint16_t len = m->data_len;
    bool taken = len == 0;
    if (taken) {
      rte_pktmbuf_free_seg(m);
    } else if (len >= kZeroCopyMin) {
      Packet p(m);
      taken = tcp_.send_zero_copy(s.conn, p, now);
      m = p.release();
    }
    if (!taken && len) {
      const std::size_t n = tcp_.send(s.conn, Bytes{rte_pktmbuf_mtod(m, const std::uint8_t*), len}, now);
      s.tx_accepted += n;
      if (n < len) {  // TCP is full: on_writable comes when it drains
        rte_pktmbuf_adj(m, static_cast<std::uint16_t>(n));
        m->next = next;
        s.tx_held = m;
        if (!next) s.tx_held_tail = m;
        // ... unless TCP holds nothing: then it refused for want of an mbuf,
        // and with nothing in flight no ACK will come: poll() tries again.
        if (tcp_.send_queued(s.conn) == 0 && !links_[g].in_tx_retry) {
          links_[g].in_tx_retry = true;
          links_[g].tx_retry_next = tx_retry_head_;
          tx_retry_head_ = g;
        }
        return;
      }
      rte_pktmbuf_free_seg(m);
    } else {
      s.tx_accepted += len;
    }
    s.tx_held = next;
  }
  s.tx_held_tail = nullptr;
  if (s.shut_wr_pending) {
    s.shut_wr_pending = false;
    tcp_.shutdown(s.conn, now);
  }
  if (s.closing) mark_dirty(g);
}

void ShimLcore::publish_acked(std::uint32_t g) {
  Slot& s = slots_[g];
  if (s.kind != Kind::conn || s.tcp_gone) return;
  const std::size_t queued = tcp_.send_queued(s.conn);
  const std::uint64_t acked = s.tx_accepted - queued;
  SharedSlot& sh = shared(g);
  sh.tx_acked.store(acked, std::memory_order_release);
  // While TCP holds more than a quarter of the credit, have TCP report the
  // ACKs that free room (a quarter of the buffer, or all of it: on_writable
  // publishes again), or the thread would see its credit come back only
  // after an EAGAIN that Linux would not give. Below that the thread has
  // three quarters at least (EPOLLOUT's threshold), and a stream of small
  // messages costs no callback per ACK.
  if (queued * 4 > std::size_t{sh.opt.sndbuf}) tcp_.want_writable(s.conn);
}

// data_inline's condition (channel.hpp): no mbuf data unconsumed, and what
// is unconsumed plus `len` fits the thread's ring; re-reads the thread's
// count only if the cached one says no (it only lags).
bool ShimLcore::inline_ok(std::uint32_t g, std::size_t len) {
  Slot& s = slots_[g];
  const auto fits = [&] { return s.rx_seen >= s.rx_mbuf_end && s.rx_delivered - s.rx_seen + len <= kInlineRxBytes; };
  if (fits()) return true;
  s.rx_seen = shared(g).rx_consumed.load(std::memory_order_acquire);
  return fits();
}

// The thread's consumed count is re-read only once what the last reading
// leaves is under half the limit: the credit seen is never more than the
// real one (the count only grows), and while a thread keeps up, its line is
// not pulled over here on every delivery (see SharedSlot).
std::uint64_t ShimLcore::credit(std::uint32_t g) {
  Slot& s = slots_[g];
  std::uint64_t out = s.rx_delivered - s.rx_seen;
  if (out * 2 >= s.rx_limit) {
    s.rx_seen = shared(g).rx_consumed.load(std::memory_order_acquire);
    out = s.rx_delivered - s.rx_seen;
  }
  return out >= s.rx_limit ? 0 : s.rx_limit - out;
}

// --- lists ------------------------------------------------------------------

void ShimLcore::mark_dirty(std::uint32_t g) {
  Links& l = links_[g];
  if (l.in_dirty) return;
  l.in_dirty = true;
  l.dirty_next = kNone;
  if (dirty_tail_ == kNone) dirty_head_ = g; else links_[dirty_tail_].dirty_next = g;
  dirty_tail_ = g;
}

void ShimLcore::mark_fire(std::uint32_t g, std::uint64_t pos) {
  Links& l = links_[g];
  l.fire_pos = pos;
  if (l.in_fire) return;
  l.in_fire = true;
  l.fire_next = fire_head_;
  fire_head_ = g;
}

// Pushes one completion, written by fill() into its slot, and lists an
// event completion for its wake-up (mark_fire).
template <class Fill>
bool ShimLcore::emit_with(std::uint32_t g, CplOp op, Fill&& fill) {
  Channel& ch = chan_of(g);
  const std::uint64_t pos = ch.cpl.next_position();
  if (!ch.cpl.emplace(fill)) return false;
  ++ctr_.completions;
  if (op != CplOp::result && op != CplOp::released) mark_fire(g, pos);
  return true;
}

bool ShimLcore::emit(std::uint32_t g, const Completion& c) {
  return emit_with(g, c.op, [&](Completion& slot) { slot = c; });
}

// A completion carrying a packet of at most kInlineBytes in its own bytes
// (data_inline, dgram_inline), built in the ring's slot: the bytes are
// copied once, from the mbuf to where the thread reads them.
bool ShimLcore::emit_inline(std::uint32_t g, CplOp op, const Packet& p, std::uint32_t addr, std::uint16_t port) {
  const std::uint32_t id = id_of(g);
  return emit_with(g, op, [&](Completion& c) {
    c.id = id;
    c.op = op;
    c.port = port;
    c.addr = addr;
    c.value = static_cast<std::int32_t>(p.len());
    c.mbuf = 0;
    const void* src = rte_pktmbuf_read(p.get(), 0, p.len(), c.data);
    if (src != c.data) std::memcpy(c.data, src, p.len());
  });
}

void ShimLcore::reset(std::uint32_t g) {
  Slot& s = slots_[g];
  if (s.rx_held) rte_pktmbuf_free(s.rx_held);
  if (s.tx_held) rte_pktmbuf_free(s.tx_held);
  s = Slot{};
  if (id_of(g) >= cfg_.channel.handles) {
    reset_shared(g);
    links_[g].free_next = free_head_[chan_index(g)];
    free_head_[chan_index(g)] = g;
  }
}

// Before the id goes back to its allocator: the thread has closed the handle
// and does not touch the slot until a Released or Accepted for this id tells
// it otherwise, and the ring orders these stores before that completion.
void ShimLcore::reset_shared(std::uint32_t g) {
  SharedSlot& sh = shared(g);
  sh.tx_acked.store(0, std::memory_order_relaxed);
  sh.fired.store(0, std::memory_order_relaxed);
  sh.want.store(0, std::memory_order_relaxed);
  sh.efd.store(-1, std::memory_order_relaxed);
  sh.wake_delay_ns.store(0, std::memory_order_relaxed);
  if (id_of(g) >= cfg_.channel.handles) sh.rx_consumed.store(0, std::memory_order_relaxed);
}

// --- pushing completions ----------------------------------------------------

// Hands what TCP has queued for a connection's handle to the thread, within
// its receive credit (none left: the handle waits in the starved list);
// false when the completion ring is full.
bool ShimLcore::deliver(std::uint32_t g, TimeNs now) {
  Slot& s = slots_[g];
  Channel& ch = chan_of(g);
  const std::uint32_t id = id_of(g);
  for (;;) {
    if (credit(g) == 0) {
      if (tcp_.readable(s.conn) && !links_[g].in_starved) {
        links_[g].in_starved = true;
        links_[g].starved_next = starved_head_;
        starved_head_ = g;
      }
      return true;
    }
    if (!ch.cpl.has_room(1)) return false;
    Packet p = tcp_.read_zero_copy(s.conn, now);
    if (!p) return true;
    const auto bytes = static_cast<std::int32_t>(p.len());
    if (p.len() <= kInlineBytes && inline_ok(g, p.len())) {
      // Small, and it fits the thread's ring: the bytes go in the slot and
      // the mbuf back to this lcore's cache (the thread touches neither).
      emit_inline(g, CplOp::data_inline, p);
    } else {
      emit(g, Completion{.id = id, .op = CplOp::data, .value = bytes, .mbuf = reinterpret_cast<std::uint64_t>(p.release())});
      s.rx_mbuf_end = s.rx_delivered + static_cast<std::uint64_t>(bytes);
    }
    s.rx_delivered += static_cast<std::uint64_t>(bytes);
  }
}

bool ShimLcore::flush(std::uint32_t g, TimeNs now) {
  Slot& s = slots_[g];
  const std::uint32_t id = id_of(g);
  if (s.closing) {
    if (s.kind == Kind::conn && !s.tcp_gone) {
      if (s.tx_held && !s.abort_on_close) return true;  // drain_tx re-marks when TCP took it all
      conn_slot_[s.conn.index] = kNone;
      if (s.abort_on_close) tcp_.abort(s.conn, now);
      else tcp_.close(s.conn, now);  // TCP resets if it still holds unread data
      s.tcp_gone = true;
    }
    if (s.kind == Kind::udp) {
      s.udp->close();  // frees what it still queues
      s.udp = nullptr;
      s.kind = Kind::idle;
    }
    if (s.kind == Kind::listener) {
      tcp_.unlisten(s.listener, now);
      listener_slot_[s.listener.index] = kNone;
      s.kind = Kind::idle;
      // Accepted but never announced: the thread does not know them.
      while (s.acc_head != kNone) {
        const std::uint32_t a = s.acc_head;
        s.acc_head = slots_[a].acc_next;
        if (!slots_[a].tcp_gone) {
          conn_slot_[slots_[a].conn.index] = kNone;
          tcp_.abort(slots_[a].conn, now);
        }
        reset(a);
      }
    }
    if (id < cfg_.channel.handles) {
      reset_shared(g);
      if (!emit(g, Completion{.id = id, .op = CplOp::released})) return false;
    }
    reset(g);
    return true;
  }
  if (s.result_pending) {
    if (!emit(g, Completion{.id = id, .op = CplOp::result, .port = s.result_port, .value = s.result})) return false;
    s.result_pending = false;
  }
  if (s.kind == Kind::idle) return true;
  if (s.kind == Kind::udp) {
    bool ok = true;
    flush_udp(g, ok);
    return ok;
  }
  if (s.kind == Kind::listener) {
    while (s.acc_head != kNone) {
      const std::uint32_t a = s.acc_head;
      Slot& as = slots_[a];
      const auto t = tcp_.tuple(as.conn);
      const std::uint64_t local = t ? (std::uint64_t{t->local.v} << 16) | t->local_port : 0;
      if (!emit(g, Completion{.id = id,
                              .op = CplOp::accepted,
                              .port = as.peer_port,
                              .addr = as.peer_addr,
                              .value = static_cast<std::int32_t>(id_of(a)),
                              .mbuf = local}))
        return false;
      s.acc_head = as.acc_next;
      if (s.acc_head == kNone) s.acc_tail = kNone;
      as.acc_next = kNone;
      as.announced = true;
      mark_dirty(a);
    }
    return true;
  }
  if (!s.announced) return true;  // its listener announces it first
  if (s.connected_pending) {
    const auto t = tcp_.tuple(s.conn);
    if (!emit(g, Completion{.id = id, .op = CplOp::connected, .port = t ? t->local_port : std::uint16_t{0},
                            .addr = t ? t->local.v : 0}))
      return false;
    s.connected_pending = false;
    s.want_out = false;  // the completion wakes a writer too
  }
  if (!s.tcp_gone && !deliver(g, now)) return false;
  if (s.rx_held) {
    const auto bytes = static_cast<std::int32_t>(s.rx_held->pkt_len);
    if (!emit(g, Completion{.id = id, .op = CplOp::data, .value = bytes, .mbuf = reinterpret_cast<std::uint64_t>(s.rx_held)}))
      return false;
    s.rx_delivered += static_cast<std::uint64_t>(bytes);
    s.rx_mbuf_end = s.rx_delivered;
    s.rx_held = s.rx_held_tail = nullptr;
  }
  if (s.fin && !s.eof_sent) {
    if (!emit(g, Completion{.id = id, .op = CplOp::eof})) return false;
    s.eof_sent = true;
  }
  if (s.closed_pending) {
    if (!emit(g, Completion{.id = id, .op = CplOp::closed, .value = s.closed_errno})) return false;
    s.closed_pending = false;
    s.writable_pending = false;  // the Closed completion wakes a writer too
  }
  if (s.writable_pending) {
    if (!emit(g, Completion{.id = id, .op = CplOp::writable})) return false;
    s.writable_pending = false;
  }
  return true;
}

// --- UDP ------------------------------------------------------------------------

bool ShimLcore::rx_room(std::uint32_t g) {
  Slot& s = slots_[g];
  std::uint64_t dg = s.rx_dgrams - s.rx_dgrams_seen;  // as credit(): re-read when half is used
  if (dg * 2 >= cfg_.udp_dgrams) {
    s.rx_dgrams_seen = shared(g).rx_dgrams_consumed.load(std::memory_order_acquire);
    dg = s.rx_dgrams - s.rx_dgrams_seen;
  }
  return dg < cfg_.udp_dgrams && credit(g) > 0;
}

// Datagrams go over as the UdpSocket's own mbufs, each with its sender,
// while the thread has datagram and byte credit; the rest waits in the
// socket's bounded queue (where overflow is the socket's counted drop, as
// in a kernel socket buffer).
void ShimLcore::flush_udp(std::uint32_t g, bool& ok) {
  Slot& s = slots_[g];
  Channel& ch = chan_of(g);
  const std::uint32_t id = id_of(g);
  while (s.udp->rx_queued()) {
    if (!rx_room(g)) {
      if (!links_[g].in_starved) {
        links_[g].in_starved = true;
        links_[g].starved_next = starved_head_;
        starved_head_ = g;
      }
      break;
    }
    if (!ch.cpl.has_room(1)) {
      ok = false;
      return;
    }
    auto d = s.udp->recv();
    if (!d) break;
    const auto bytes = static_cast<std::int32_t>(d->pkt.len());
    if (d->pkt.len() <= kInlineBytes) {
      // Small: copied into the slot, the mbuf freed here (as data_inline).
      emit_inline(g, CplOp::dgram_inline, d->pkt, d->from.addr.v, d->from.port);
    } else {
      emit(g, Completion{.id = id,
                         .op = CplOp::dgram,
                         .port = d->from.port,
                         .addr = d->from.addr.v,
                         .value = bytes,
                         .mbuf = reinterpret_cast<std::uint64_t>(d->pkt.release())});
    }
    s.rx_delivered += static_cast<std::uint64_t>(bytes);
    ++s.rx_dgrams;
  }
  if (s.udp_errno) {
    if (!emit(g, Completion{.id = id, .op = CplOp::error, .value = s.udp_errno})) {
      ok = false;
      return;
    }
    s.udp_errno = 0;
  }
  if (s.writable_pending) {
    if (!emit(g, Completion{.id = id, .op = CplOp::writable})) {
      ok = false;
      return;
    }
    s.writable_pending = false;
  }
}

void ShimLcore::on_udp_readable(UdpSocket&, TimeNs, void* ctx) {
  auto* c = static_cast<UdpCtx*>(ctx);
  c->self->mark_dirty(c->g);
}

// RFC 1122 §4.1.3.3: ICMP errors go to the application. As Linux does
// without IP_RECVERR, only a connected socket hears of them (as its
// pending error: the next call fails with it).
void ShimLcore::on_udp_error(UdpSocket& s, const UdpIcmpError& e, TimeNs, void* ctx) {
  auto* c = static_cast<UdpCtx*>(ctx);
  if (!s.is_connected() || e.type != 3) return;
  c->self->slots_[c->g].udp_errno = e.code == 3 ? ECONNREFUSED : EHOSTUNREACH;
  c->self->mark_dirty(c->g);
}

// --- TCP's callbacks ----------------------------------------------------------

std::uint32_t ShimLcore::slot_of_conn(TcpConnId c) const {
  return c.index < conn_slot_.size() ? conn_slot_[c.index] : kNone;
}

void ShimLcore::on_accept(tcp::TcpLayer&, TcpListenerId l, TcpConnId c, TimeNs now) {
  const std::uint32_t lg = l.index < listener_slot_.size() ? listener_slot_[l.index] : kNone;
  const std::uint32_t ch = lg == kNone ? 0 : chan_index(lg);
  const std::uint32_t a = lg == kNone ? kNone : free_head_[ch];
  if (a == kNone) {
    ++ctr_.accept_no_slot;
    tcp_.abort(c, now);
    return;
  }
  free_head_[ch] = links_[a].free_next;
  links_[a].free_next = kNone;
  Slot& s = slots_[a];
  s = Slot{};
  s.kind = Kind::conn;
  s.conn = c;
  s.announced = false;
  s.rx_limit = slots_[lg].rx_limit;
  if (auto t = tcp_.tuple(c)) {
    s.peer_addr = t->remote.v;
    s.peer_port = t->remote_port;
  }
  conn_slot_[c.index] = a;
  // The accepted connection's send credit is the listener's.
  shared(a).opt = shared(lg).opt;
  Slot& ls = slots_[lg];
  if (ls.acc_tail == kNone) ls.acc_head = a; else slots_[ls.acc_tail].acc_next = a;
  ls.acc_tail = a;
  mark_dirty(lg);
}

void ShimLcore::on_connected(tcp::TcpLayer&, TcpConnId c, TimeNs) {
  const std::uint32_t g = slot_of_conn(c);
  if (g == kNone) return;
  slots_[g].connected_pending = true;
  mark_dirty(g);
}

void ShimLcore::on_readable(tcp::TcpLayer&, TcpConnId c, TimeNs now) {
  const std::uint32_t g = slot_of_conn(c);
  if (g == kNone) return;
  Slot& s = slots_[g];
  if (!s.fin && tcp_.fin_received(c)) {
    // The connection may end before this iteration's flush (FIN-WAIT-2 ->
    // TIME-WAIT reports on_closed at once, and its queue is then out of
    // reach): take what is queued now. No more can come, so this is bounded
    // by the receive window.
    s.fin = true;
    while (Packet p = tcp_.read_zero_copy(c, now)) append_chain(s.rx_held, s.rx_held_tail, p.release());
  }
  // Data for a handle with nothing else to report goes to the thread now,
  // from inside TCP's callback as an on-lcore reader takes it, rather than
  // at the hook's flush after the rest of the burst and the timers. With
  // something pending (it is dirty) the flush keeps the order.
  if (!s.fin && !links_[g].in_dirty && s.kind == Kind::conn && s.announced && !s.closing && deliver(g, now)) return;
  mark_dirty(g);
}

void ShimLcore::on_writable(tcp::TcpLayer&, TcpConnId c, TimeNs now) {
  const std::uint32_t g = slot_of_conn(c);
  if (g == kNone) return;
  Slot& s = slots_[g];
  drain_tx(g, now);
  if (s.tcp_gone) return;
  publish_acked(g);
  check_writable(g);
}

void ShimLcore::on_closed(tcp::TcpLayer&, TcpConnId c, TcpError err, TimeNs) {
  const std::uint32_t g = slot_of_conn(c);
  if (g == kNone) return;
  conn_slot_[c.index] = kNone;
  Slot& s = slots_[g];
  s.tcp_gone = true;
  if (s.tx_held) {
    rte_pktmbuf_free(s.tx_held);
    s.tx_held = s.tx_held_tail = nullptr;
  }
  s.closed_pending = true;
  s.closed_errno = errno_of(err);
  mark_dirty(g);
}

}  // namespace ustack::shim
