// RFC 9293 event processing. The order of checks in conn_input() follows
// §3.10.7.4 ("Otherwise"): sequence number, RST, SYN, ACK, URG, text, FIN,
// with RFC 7323's PAWS test first and RFC 5961's stricter RST/SYN/ACK rules
// in place of RFC 793's.
#include "tcp/tcp_layer.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

#include "wire/checksum.hpp"

namespace ustack::tcp {

using wire::TcpFlags;
using namespace wire::tcp_flag;

namespace {

// Below this a segment's payload is copied even when the device takes mbuf
// chains: one memcpy of a few hundred bytes costs less than the indirect
// mbufs (an allocation and two reference-count updates each).
constexpr std::uint32_t kChainMin = 512;

// The unfolded sum of a chain's bytes from `m` on, for the TCP checksum.
std::uint32_t chain_sum(const rte_mbuf* m) {
  std::uint32_t sum = 0;
  bool odd = false;  // the segment starts at an odd offset of the payload
  for (; m != nullptr; m = m->next) {
    const std::uint32_t s = wire::checksum_add(Bytes{rte_pktmbuf_mtod(m, const std::uint8_t*), m->data_len});
    sum += odd ? wire::checksum_at_odd_offset(s) : wire::checksum_reduce(s);
    odd ^= (m->data_len & 1) != 0;
  }
  return sum;
}

constexpr std::uint32_t kNone = 0xffffffffu;
// RFC 9293 §3.7.1: the MSS to assume when the peer sends none.
constexpr std::uint16_t kDefaultPeerMss = 536;
// RFC 7323 §5.5: a ts_recent idle for 24 days is no longer trusted.
constexpr TimeNs kPawsIdle = 24ull * 24 * 3600 * kNsPerSec;
// RFC 7323 §5.3 R1 tolerance, in timestamp ticks (see conn_input()).
constexpr std::int32_t kPawsWindow = 1;
constexpr std::uint32_t kTsOptionBytes = 12;  // NOP NOP kind len tsval tsecr
// Small segments are copied into the tail of the previous one in the receive
// queue: a stream of tiny segments then costs bytes, not one mbuf each.
constexpr std::uint32_t kCoalesceMax = 512;
constexpr TimeNs kOowInterval = 500 * kNsPerMs;

CcAlgorithm algo_of(TcpCongestion c) { return c == TcpCongestion::newreno ? CcAlgorithm::newreno : CcAlgorithm::cubic; }

std::uint8_t wscale_for(std::uint32_t rcvbuf) {
  std::uint8_t s = 0;
  while (s < wire::kTcpMaxWindowScale && (std::uint64_t{rcvbuf} >> s) > 0xffff) ++s;
  return s;
}

Secret secret_or_random(const std::optional<Secret>& s) {
  if (s) return *s;
  if (auto r = random_secret()) return *r;
  return Secret{};  // random_secret() fails only without a working OS RNG
}

}  // namespace

// A received segment, parsed: `pkt` holds just the payload (data() at its
// first byte) once ip_input() has trimmed the headers.
struct TcpLayer::Segment {
  FourTuple t;  // local = our address
  SeqNum seq;
  SeqNum ack;
  TcpFlags flags;
  std::uint16_t wnd = 0;  // unscaled
  std::uint32_t len = 0;  // payload bytes
  wire::TcpOptions opt;
  Packet pkt;
  bool syn_window = false;  // wnd came on a SYN: never scaled (RFC 7323 §2.2)
  std::uint32_t seg_len() const { return len + (flags.syn() ? 1 : 0) + (flags.fin() ? 1 : 0); }
};

struct TcpLayer::Listener {
  bool used = false;
  Ipv4Addr local;
  std::uint16_t port = 0;
  std::uint32_t backlog = 0;
  std::uint32_t pending = 0;  // connections in SYN-RECEIVED
  TcpHandler* handler = nullptr;
  void* user = nullptr;
  TcpConnOptions opt;
};

// One connection's TCB (RFC 9293 §3.3.1). Allocated with the layer, reused.
struct TcpLayer::Conn {
  Conn(TcpLayer& l, std::uint32_t idx, std::size_t snd_slots, std::size_t rcv_slots)
      : layer(&l),
        index(idx),
        snd(l.pool_, l.cfg_.defaults.sndbuf, snd_slots, SeqNum{}),
        ooo(l.cfg_.ooo_segments, SendBuffer::kMaxBytesLimit),
        rq(rcv_slots, nullptr),
        sb(1460, SeqNum{}) {
    rtx.set_callback(&TcpLayer::on_rtx_timer, this);
    delack.set_callback(&TcpLayer::on_delack_timer, this);
    keepalive.set_callback(&TcpLayer::on_keepalive_timer, this);
  }
  ~Conn() {
    for (std::size_t i = 0; i < rq_n; ++i) rte_pktmbuf_free(rq[(rq_head + i) % rq.size()]);
  }

  TcpLayer* layer;
  std::uint32_t index;
  std::uint32_t gen = 1;
  bool in_use = false;
  bool dead = false;      // finished while being processed; freed by the entry point
  bool detached = false;  // close()d or aborted: no more callbacks
  TcpState state = TcpState::closed;
  FourTuple t;
  TcpHandler* handler = nullptr;
  void* user = nullptr;
  TcpConnOptions opt;
  std::uint32_t listener = kNone;  // passive open not yet accepted
  bool passive = false;

  // Send sequence space (§3.3.1). snd_max is the highest sequence number
  // sent plus one; snd_nxt falls back to snd_una after an RTO (go-back-N).
  SeqNum iss, snd_una, snd_nxt, snd_max;
  SeqNum snd_wl1, snd_wl2;
  std::uint32_t snd_wnd = 0;
  std::uint32_t max_snd_wnd = 0;
  std::uint8_t snd_wscale = 0;
  bool fin_queued = false;  // FIN follows the buffered data (its sequence number is snd.end())

  // Receive sequence space.
  SeqNum irs, rcv_nxt, rcv_adv, last_ack_sent;
  std::uint8_t rcv_wscale = 0;
  bool fin_received = false;
  bool ooo_fin = false;  // a FIN arrived beyond a gap, at ooo_fin_seq
  SeqNum ooo_fin_seq;

  // Negotiated options.
  std::uint16_t peer_mss = kDefaultPeerMss;
  std::uint16_t mss = kDefaultPeerMss;  // payload of a full segment (options subtracted)
  bool ws_ok = false, ts_ok = false, sack_ok = false;
  std::uint32_t ts_recent = 0;
  TimeNs ts_recent_age = 0;
  std::uint32_t ts_offset = 0;

  SendBuffer snd;
  ReassemblyQueue ooo;
  // The receive queue: in-order payload mbufs waiting for the application.
  std::vector<rte_mbuf*> rq;
  std::size_t rq_head = 0, rq_n = 0;
  std::uint32_t rq_bytes = 0;

  RttEstimator rtt;
  CongestionControl cc;
  SackScoreboard sb;
  bool rto_recovery = false;  // go-back-N after an RTO until snd_nxt reaches snd_max
  bool rtt_timing = false;    // Karn: one segment timed at a time, never a retransmitted one
  SeqNum rtt_seq;
  TimeNs rtt_start = 0;

  Timer rtx, delack, keepalive;
  std::uint32_t rtx_count = 0;  // consecutive timeouts of the same data
  TimeNs first_rtx = 0;
  TimeNs connect_deadline = kNever;
  bool persist = false;
  bool syn_timed_out = false;
  std::uint32_t ka_probes = 0;
  TimeNs last_recv = 0, last_send = 0;
  TimeNs last_oow_ack = 0;

  bool ack_now = false;         // send an ACK at the end of this input
  std::uint32_t unacked_segs = 0;  // in-order segments received since our last ACK
  std::uint32_t quickack = 0;
  bool want_writable = false;

  TcpConnStats st;

  std::uint32_t next_free = kNone;
  std::uint32_t tw_prev = kNone, tw_next = kNone;

  SeqNum data_end() const { return snd.end(); }
  bool fin_acked() const { return fin_queued && snd_una == snd.end() + 1; }
  std::size_t rq_free() const { return rq.size() - rq_n; }
};

SeqNum TcpLayer::c_snd_max(const Conn& c) { return c.snd_max; }

// --- construction ------------------------------------------------------------

TcpLayer::TcpLayer(Stack& stack, const TcpConfig& cfg)
    : stack_(stack),
      cfg_(cfg),
      pool_(stack.pool()),
      flows_(FlowTableConfig{cfg.max_connections, cfg.max_listeners}, secret_or_random(cfg.table_secret)),
      isn_(secret_or_random(cfg.isn_secret)),
      cookies_(secret_or_random(cfg.cookie_secret)),
      listeners_(cfg.max_listeners),
      free_head_(kNone),
      tw_head_(kNone),
      tw_tail_(kNone) {
  // A loss in a full window leaves up to a window of segments beyond the
  // hole; a queue that cannot hold them drops the rest of the window, and
  // the sender must send it all again (seen against Linux: a third of a
  // lossy transfer's segments dropped as tcp_drop_ooo_full, 30x slower).
  cfg_.ooo_segments = std::max(cfg_.ooo_segments, cfg_.defaults.rcvbuf / 1024);
  const Secret ts = secret_or_random(std::nullopt);
  ts_secret_ = load_be32(Bytes{ts}, 0);
  port_hint_ = static_cast<std::uint16_t>(cfg_.ephemeral.first +
                                          load_be16(Bytes{ts}, 4) % (std::uint32_t{cfg_.ephemeral.last} - cfg_.ephemeral.first + 1));
  // Ring sizes: the send ring holds mbufs filled to their data room by
  // write_copy(), the receive ring one slot per received segment (small ones
  // coalesced). Both leave room for buffers set larger per connection.
  const std::size_t snd_slots = cfg_.defaults.sndbuf / 1024 + 16;
  const std::size_t rcv_slots = cfg_.defaults.rcvbuf / 512 + cfg_.ooo_segments + 16;
  conns_.reserve(cfg_.max_connections);
  for (std::uint32_t i = 0; i < cfg_.max_connections; ++i)
    conns_.push_back(std::make_unique<Conn>(*this, i, snd_slots, rcv_slots));
  for (std::uint32_t i = cfg_.max_connections; i-- > 0;) {
    conns_[i]->next_free = free_head_;
    free_head_ = i;
  }
  stack_.set_protocol_handler(wire::ipproto::kTcp, this);
}

TcpLayer::~TcpLayer() { stack_.set_protocol_handler(wire::ipproto::kTcp, nullptr); }

std::size_t TcpLayer::bytes_per_connection() const {
  if (conns_.empty()) return 0;
  const Conn& c = *conns_[0];
  // Five heap blocks per slot (the Conn and four arrays); glibc adds about
  // 16 bytes to each (chunk header, rounding).
  constexpr std::size_t kMallocOverhead = 5 * 16;
  return sizeof(Conn) + sizeof(conns_[0]) + c.rq.capacity() * sizeof(rte_mbuf*) + c.snd.ring_bytes() +
         c.ooo.slot_bytes() + c.sb.capacity() * sizeof(SackBlock) + kMallocOverhead +
         flows_.connection_bytes() / cfg_.max_connections;
}

const char* TcpLayer::check_invariants() const {
  std::uint32_t used = 0, tw = 0;
  for (const auto& cp : conns_) {
    const Conn& c = *cp;
    if (!c.in_use) {
      if (c.state != TcpState::closed || c.rq_n || c.snd.buffered() || !c.ooo.empty()) return "free slot holds state";
      if (c.rtx.armed() || c.delack.armed() || c.keepalive.armed()) return "timer armed on a free slot";
      continue;
    }
    if (c.detached && c.handler) return "detached connection keeps its handler";
    ++used;
    if (c.dead) return "dead connection outlived its entry point";
    if (c.state == TcpState::closed || c.state == TcpState::listen) return "connection in use in CLOSED or LISTEN";
    if (flows_.find(c.t) != std::optional<std::uint32_t>{c.index}) return "connection not in the flow table";
    if (c.state == TcpState::time_wait) ++tw;
    if (!(c.snd_una <= c.snd_nxt)) return "SND.UNA > SND.NXT";
    if (!(c.snd_nxt <= c.snd_max)) return "SND.NXT > SND.MAX";
    const bool synced = c.state != TcpState::syn_sent && c.state != TcpState::syn_received;
    if (synced && c.state != TcpState::time_wait) {
      if (c.snd_max > c.snd.end() + (c.fin_queued ? 1u : 0u)) return "SND.MAX beyond the data and FIN";
      if (c.snd.snd_una() != c.snd_una && !(c.fin_acked() && c.snd.snd_una() + 1 == c.snd_una))
        return "send buffer does not start at SND.UNA";
    }
    if (c.snd.buffered() > c.snd.max_bytes() || c.snd.buffered() > c.opt.sndbuf) return "send buffer over its bound";
    if (c.rq_n > c.rq.size()) return "receive ring overflow";
    std::uint64_t queued = 0;
    for (std::size_t i = 0; i < c.rq_n; ++i) {
      const rte_mbuf* m = c.rq[(c.rq_head + i) % c.rq.size()];
      if (!m) return "null mbuf in the receive queue";
      queued += rte_pktmbuf_pkt_len(m);
    }
    if (queued != c.rq_bytes) return "receive queue byte count";
    const std::uint64_t offered = c.rcv_adv > c.rcv_nxt ? static_cast<std::uint32_t>(c.rcv_adv - c.rcv_nxt) : 0;
    if (c.rq_bytes + offered > c.opt.rcvbuf) return "receive queue plus offered window over rcvbuf";
    if (c.ooo.bytes() > offered || c.ooo.segments() > c.ooo.max_segments()) return "out-of-order data beyond the window";
    if (c.snd_una != c.snd_max && c.state != TcpState::time_wait && !c.rtx.armed())
      return "data in flight without a retransmission timer";
  }
  if (used != used_ || used_ > cfg_.max_connections) return "connection count";
  if (tw != tw_count_) return "TIME-WAIT count";
  std::uint32_t listed = 0;
  for (std::uint32_t i = tw_head_; i != kNone; i = conns_[i]->tw_next) {
    if (conns_[i]->state != TcpState::time_wait || ++listed > tw_count_) return "TIME-WAIT list";
  }
  if (listed != tw_count_) return "TIME-WAIT list length";
  for (std::uint32_t li = 0; li < listeners_.size(); ++li) {
    std::uint32_t pending = 0;
    for (const auto& cp : conns_)
      if (cp->in_use && cp->listener == li) {
        if (cp->state != TcpState::syn_received) return "listener's pending connection not in SYN-RECEIVED";
        ++pending;
      }
    if (pending != listeners_[li].pending) return "listener backlog count";
    if (listeners_[li].used && pending > listeners_[li].backlog) return "listener over its backlog";
  }
  return nullptr;
}

// --- pool --------------------------------------------------------------------

TcpLayer::Conn* TcpLayer::alloc_conn(TimeNs now) {
  (void)now;
  if (free_head_ == kNone && tw_head_ != kNone) {
    // Out of slots: recycle the oldest TIME-WAIT connection, as Linux does
    // when its time-wait bucket limit is reached. Its 4-tuple loses the
    // protection TIME-WAIT gives against old duplicates, which RFC 6528 ISNs
    // (and timestamps, when negotiated) make unlikely to matter.
    count(StackCounter::tcp_time_wait_recycled);
    free_conn(*conns_[tw_head_]);
  }
  if (free_head_ == kNone) return nullptr;
  Conn& c = *conns_[free_head_];
  free_head_ = c.next_free;
  c.next_free = kNone;
  c.in_use = true;
  ++used_;
  return &c;
}

void TcpLayer::init_conn(Conn& c, const FourTuple& t, const TcpConnOptions& opt, TimeNs now) {
  c.dead = c.detached = false;
  c.state = TcpState::closed;
  c.t = t;
  c.opt = opt;
  c.listener = kNone;
  c.passive = false;
  c.iss = SeqNum{isn_.next(t, now)};
  c.snd_una = c.snd_nxt = c.snd_max = c.iss;
  c.snd_wl1 = c.snd_wl2 = SeqNum{};
  c.snd_wnd = c.max_snd_wnd = 0;
  c.snd_wscale = 0;
  c.fin_queued = false;
  c.irs = c.rcv_nxt = c.rcv_adv = c.last_ack_sent = SeqNum{};
  c.rcv_wscale = opt.window_scaling ? wscale_for(opt.rcvbuf) : 0;
  c.fin_received = c.ooo_fin = false;
  c.peer_mss = kDefaultPeerMss;
  c.mss = kDefaultPeerMss;
  c.ws_ok = c.ts_ok = c.sack_ok = false;
  c.ts_recent = 0;
  c.ts_recent_age = now;
  c.ts_offset = ts_offset_for(t);
  c.snd.reset(c.iss + 1);
  c.ooo.clear();
  c.rtt = RttEstimator(cfg_.rtt);
  c.cc = CongestionControl(algo_of(opt.congestion), CcConfig{});
  c.sb.reset(kDefaultPeerMss, c.iss + 1);
  c.rto_recovery = c.rtt_timing = false;
  c.rtx_count = 0;
  c.first_rtx = 0;
  c.connect_deadline = kNever;
  c.persist = c.syn_timed_out = false;
  c.ka_probes = 0;
  c.last_recv = c.last_send = now;
  c.last_oow_ack = 0;
  c.ack_now = false;
  c.unacked_segs = 0;
  c.quickack = cfg_.quickack_segments;
  c.want_writable = false;
  c.st = TcpConnStats{};
}

void TcpLayer::free_conn(Conn& c) {
  if (!c.in_use) return;
  auto& w = stack_.timers();
  w.cancel(c.rtx);
  w.cancel(c.delack);
  w.cancel(c.keepalive);
  // On the TIME-WAIT list: asked of the links, not of the state, which
  // finish() has already set to CLOSED when a RST ends a TIME-WAIT.
  if (c.tw_prev != kNone || c.tw_next != kNone || tw_head_ == c.index) {
    if (c.tw_prev != kNone) conns_[c.tw_prev]->tw_next = c.tw_next; else tw_head_ = c.tw_next;
    if (c.tw_next != kNone) conns_[c.tw_next]->tw_prev = c.tw_prev; else tw_tail_ = c.tw_prev;
    c.tw_prev = c.tw_next = kNone;
    --tw_count_;
  }
  if (c.listener != kNone) {
    Listener& l = listeners_[c.listener];
    if (l.pending) --l.pending;
    c.listener = kNone;
  }
  flows_.erase(c.t);
  c.snd.clear();
  c.ooo.clear();
  for (std::size_t i = 0; i < c.rq_n; ++i) {
    auto& m = c.rq[(c.rq_head + i) % c.rq.size()];
    rte_pktmbuf_free(m);
    m = nullptr;
  }
  c.rq_head = c.rq_n = 0;
  c.rq_bytes = 0;
  c.state = TcpState::closed;
  c.in_use = false;
  c.dead = false;
  c.handler = nullptr;
  c.user = nullptr;
  ++c.gen;
  c.next_free = free_head_;
  free_head_ = c.index;
  --used_;
}

TcpLayer::Conn* TcpLayer::conn_of(TcpConnId id) const {
  if (id.index >= conns_.size()) return nullptr;
  Conn* c = conns_[id.index].get();
  if (!c->in_use || c->gen != id.gen || c->detached || c->dead) return nullptr;
  return c;
}

TcpConnId TcpLayer::id_of(const Conn& c) const { return TcpConnId{c.index, c.gen}; }

void TcpLayer::set_state(Conn& c, TcpState s) {
  c.state = s;
  c.st.state = s;
}

std::uint32_t TcpLayer::ts_offset_for(const FourTuple& t) const {
  return isn_.next(FourTuple{t.remote, t.local, t.remote_port, t.local_port}, 0) ^ ts_secret_;
}

std::uint32_t TcpLayer::ts_now(const Conn& c, TimeNs now) const {
  // RFC 7323 §5.4: a clock between 1 ms and 1 s per tick; 1 ms, offset per
  // connection (§7.1) so the value says nothing about our uptime.
  return static_cast<std::uint32_t>(now / kNsPerMs) + c.ts_offset;
}

// --- application API ---------------------------------------------------------

std::optional<TcpListenerId> TcpLayer::listen(Ipv4Addr local, std::uint16_t port, std::uint32_t backlog,
                                              TcpHandler* h, void* user, const TcpConnOptions& opt) {
  if (port == 0) return std::nullopt;
  std::uint32_t i = 0;
  while (i < listeners_.size() && listeners_[i].used) ++i;
  if (i == listeners_.size()) return std::nullopt;
  if (flows_.add_listener(local, port, i) != InsertResult::ok) return std::nullopt;
  Listener& l = listeners_[i];
  l = Listener{true, local, port, backlog ? backlog : 1, 0, h, user, opt};
  return TcpListenerId{i};
}

void TcpLayer::unlisten(TcpListenerId id, TimeNs now) {
  if (id.index >= listeners_.size() || !listeners_[id.index].used) return;
  Listener& l = listeners_[id.index];
  flows_.remove_listener(l.local, l.port);
  for (auto& cp : conns_) {
    Conn& c = *cp;
    if (c.in_use && c.listener == id.index && c.state == TcpState::syn_received) {
      send_rst(c, now);
      free_conn(c);
    }
  }
  l = Listener{};
}

std::optional<TcpConnId> TcpLayer::connect(Ipv4Addr remote, std::uint16_t port, TcpHandler* h, void* user,
                                           const TcpConnOptions& opt, TimeNs now, std::uint16_t local_port) {
  const Ipv4Addr local = stack_.config().ip.addr;
  if (port == 0 || remote.is_unspecified() || remote.is_multicast()) return std::nullopt;
  auto usable = [&](std::uint16_t p) { return !flows_.find(FourTuple{local, remote, p, port}); };
  if (local_port == 0) {
    std::optional<std::uint16_t> p;
    if (cfg_.rss_known)
      p = pick_source_port(local, remote, port, cfg_.queue, cfg_.reta, cfg_.rss_key, cfg_.ephemeral, port_hint_, usable);
    else
      p = pick_source_port(local, remote, port, 0, {}, cfg_.rss_key, cfg_.ephemeral, port_hint_, usable);
    if (!p) {
      count(StackCounter::tcp_drop_table_full);
      return std::nullopt;
    }
    local_port = *p;
    port_hint_ = static_cast<std::uint16_t>(local_port + 1);
  } else if (!usable(local_port)) {
    return std::nullopt;
  }
  Conn* cp = alloc_conn(now);
  if (!cp) {
    count(StackCounter::tcp_drop_table_full);
    return std::nullopt;
  }
  Conn& c = *cp;
  const FourTuple t{local, remote, local_port, port};
  init_conn(c, t, opt, now);
  c.handler = h;
  c.user = user;
  if (flows_.insert(t, c.index) != InsertResult::ok) {
    free_conn(c);
    count(StackCounter::tcp_drop_table_full);
    return std::nullopt;
  }
  set_state(c, TcpState::syn_sent);
  if (opt.connect_timeout_ns) c.connect_deadline = now + opt.connect_timeout_ns;
  count(StackCounter::tcp_active_opens);
  c.rtt_timing = true;
  c.rtt_seq = c.iss + 1;
  c.rtt_start = now;
  send_segment(c, c.iss, 0, kSyn, now);
  return id_of(c);
}

std::size_t TcpLayer::send(TcpConnId id, Bytes data, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c || c->fin_queued) return 0;
  switch (c->state) {
    case TcpState::syn_sent:
    case TcpState::syn_received:
    case TcpState::established:
    case TcpState::close_wait: break;
    default: return 0;
  }
  const std::size_t room = send_room(*c);
  const std::size_t n = c->snd.write_copy(data.first(std::min(room, data.size())));
  if (n < data.size()) c->want_writable = true;
  if (n) output(*c, now);
  return n;
}

bool TcpLayer::send_zero_copy(TcpConnId id, Packet& p, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c || c->fin_queued || !p) return false;
  if (c->state != TcpState::established && c->state != TcpState::close_wait && c->state != TcpState::syn_sent &&
      c->state != TcpState::syn_received)
    return false;
  if (c->snd.buffered() + p.len() > c->opt.sndbuf || !c->snd.write_zero_copy(p)) {
    c->want_writable = true;
    return false;
  }
  output(*c, now);
  return true;
}

std::size_t TcpLayer::send_space(TcpConnId id) const {
  const Conn* c = conn_of(id);
  if (!c || c->fin_queued) return 0;
  return send_room(*c);
}

std::size_t TcpLayer::send_queued(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c ? c->snd.buffered() : 0;
}

void TcpLayer::want_writable(TcpConnId id) {
  if (Conn* c = conn_of(id)) c->want_writable = true;
}

std::size_t TcpLayer::read(TcpConnId id, MutBytes out, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c) return 0;
  std::size_t done = 0;
  while (done < out.size() && c->rq_n) {
    rte_mbuf*& m = c->rq[c->rq_head];
    const std::size_t take = std::min<std::size_t>(out.size() - done, rte_pktmbuf_data_len(m));
    std::memcpy(out.data() + done, rte_pktmbuf_mtod(m, const std::uint8_t*), take);
    done += take;
    if (take == rte_pktmbuf_data_len(m)) {
      rte_pktmbuf_free(m);
      m = nullptr;
      c->rq_head = (c->rq_head + 1) % c->rq.size();
      --c->rq_n;
    } else {
      rte_pktmbuf_adj(m, static_cast<std::uint16_t>(take));
    }
  }
  c->rq_bytes -= static_cast<std::uint32_t>(done);
  if (done) maybe_window_update(*c, now);
  return done;
}

Packet TcpLayer::read_zero_copy(TcpConnId id, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c || !c->rq_n) return Packet{};
  rte_mbuf* m = std::exchange(c->rq[c->rq_head], nullptr);
  c->rq_head = (c->rq_head + 1) % c->rq.size();
  --c->rq_n;
  c->rq_bytes -= rte_pktmbuf_pkt_len(m);
  maybe_window_update(*c, now);
  return Packet{m};
}

std::size_t TcpLayer::readable(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c ? c->rq_bytes : 0;
}

bool TcpLayer::peer_closed(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c && c->fin_received && c->rq_n == 0;
}

bool TcpLayer::fin_received(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c && c->fin_received;
}

std::optional<FourTuple> TcpLayer::tuple(TcpConnId id) const {
  const Conn* c = conn_of(id);
  if (!c) return std::nullopt;
  return c->t;
}

void TcpLayer::shutdown(TcpConnId id, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c || c->fin_queued) return;
  queue_fin(*c);
  // Before the handshake completes the FIN waits for it.
  if (c->state == TcpState::fin_wait_1 || c->state == TcpState::last_ack) output(*c, now);
}

void TcpLayer::queue_fin(Conn& c) {
  switch (c.state) {
    case TcpState::syn_sent:
    case TcpState::syn_received: c.fin_queued = true; break;  // sent once established
    case TcpState::established:
      c.fin_queued = true;
      set_state(c, TcpState::fin_wait_1);
      break;
    case TcpState::close_wait:
      c.fin_queued = true;
      set_state(c, TcpState::last_ack);
      break;
    default: break;
  }
}

void TcpLayer::close(TcpConnId id, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c) return;
  if (c->state == TcpState::syn_sent) {
    release(*c);
    return;
  }
  if (c->rq_n) {
    // RFC 9293 §3.10.4 / RFC 2525 §2.17: closing with unread data resets, so
    // the peer learns its data was not consumed.
    abort(id, now);
    return;
  }
  c->detached = true;
  c->handler = nullptr;
  if (!c->fin_queued) queue_fin(*c);
  if (c->state == TcpState::fin_wait_2) stack_.timers().arm(c->rtx, now + cfg_.fin_wait_2_timeout);
  output(*c, now);
}

void TcpLayer::abort(TcpConnId id, TimeNs now) {
  Conn* c = conn_of(id);
  if (!c) return;
  c->detached = true;
  if (c->state != TcpState::syn_sent) send_rst(*c, now);
  count(StackCounter::tcp_conn_reset);
  finish(*c, TcpError::aborted, now);
}

void TcpLayer::set_handler(TcpConnId id, TcpHandler* h, void* user) {
  if (Conn* c = conn_of(id)) {
    c->handler = h;
    c->user = user;
  }
}

void* TcpLayer::user(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c ? c->user : nullptr;
}

TcpState TcpLayer::state(TcpConnId id) const {
  const Conn* c = conn_of(id);
  return c ? c->state : TcpState::closed;
}

std::optional<TcpConnStats> TcpLayer::stats(TcpConnId id) const {
  const Conn* c = conn_of(id);
  if (!c) return std::nullopt;
  TcpConnStats s = c->st;
  s.state = c->state;
  s.srtt_ns = c->rtt.srtt();
  s.rttvar_ns = c->rtt.rttvar();
  s.rto_ns = c->rtt.rto();
  s.cwnd = c->cc.cwnd();
  s.ssthresh = c->cc.ssthresh();
  s.snd_wnd = c->snd_wnd;
  s.rcv_wnd = rcv_window(*c);
  s.mss = c->mss;
  s.snd_wscale = c->snd_wscale;
  s.rcv_wscale = c->rcv_wscale;
  s.sack = c->sack_ok;
  s.timestamps = c->ts_ok;
  s.unread = c->rq_bytes;
  s.unacked = static_cast<std::uint32_t>(c->snd.buffered());
  return s;
}

void TcpLayer::set_nagle(TcpConnId id, bool on, TimeNs now) {
  if (Conn* c = conn_of(id)) {
    c->opt.nagle = on;
    if (!on) output(*c, now);
  }
}

void TcpLayer::set_delayed_ack(TcpConnId id, bool on) {
  if (Conn* c = conn_of(id)) c->opt.delayed_ack = on;
}

void TcpLayer::set_keepalive(TcpConnId id, bool on, TimeNs now) {
  if (Conn* c = conn_of(id)) {
    c->opt.keepalive = on;
    if (on) arm_keepalive(*c, now);
    else stack_.timers().cancel(c->keepalive);
  }
}

void TcpLayer::set_congestion(TcpConnId id, TcpCongestion cc) {
  if (Conn* c = conn_of(id)) {
    c->opt.congestion = cc;
    c->cc = CongestionControl(algo_of(cc), CcConfig{c->mss});
  }
}

// --- input -------------------------------------------------------------------

void TcpLayer::ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) {
  count(StackCounter::tcp_rx_segments);
  if (ip.dst() != stack_.config().ip.addr) {
    count(StackCounter::tcp_drop_non_unicast);  // RFC 9293 §3.9.2.1 / RFC 1122 §4.2.3.10
    return;
  }
  const bool hw_ok = stack_.caps().rx_l4_cksum &&
                     (pkt.get()->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
  if (stack_.caps().rx_l4_cksum &&
      (pkt.get()->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
    count(StackCounter::tcp_drop_bad_checksum);
    return;
  }
  auto seg = wire::TcpSegment::parse(ip.payload(), ip.src(), ip.dst(), !hw_ok);
  if (!seg) {
    switch (seg.error()) {
      case ParseError::bad_checksum: count(StackCounter::tcp_drop_bad_checksum); break;
      case ParseError::bad_header_len: count(StackCounter::tcp_drop_bad_header_len); break;
      default: count(StackCounter::tcp_drop_truncated); break;
    }
    return;
  }
  auto opts = wire::TcpOptions::parse(seg->options());
  if (!opts) {
    // Malformed options: drop, never RST (a blind attacker could provoke it).
    count(StackCounter::tcp_drop_bad_options);
    return;
  }
  Segment s;
  s.t = FourTuple{ip.dst(), ip.src(), seg->dst_port(), seg->src_port()};
  s.seq = seg->seq();
  s.ack = seg->ack();
  s.flags = seg->flags();
  s.wnd = seg->window();
  s.len = static_cast<std::uint32_t>(seg->payload().size());
  s.opt = *opts;
  const std::size_t off = static_cast<std::size_t>(seg->payload().data() - pkt.data().data());
  pkt.consume_front(off);
  s.pkt = std::move(pkt);

  if (auto idx = flows_.find(s.t)) {
    Conn& c = *conns_[*idx];
    if (c.state == TcpState::time_wait && s.flags.syn() && !s.flags.ack() && !s.flags.rst() &&
        time_wait_reusable(c, s)) {
      count(StackCounter::tcp_time_wait_reused);
      free_conn(c);
    } else {
      ++c.st.segs_in;
      c.last_recv = now;
      c.ka_probes = 0;
      busy_ = &c;
      if (c.state == TcpState::syn_sent)
        syn_sent_input(c, s, now);
      else
        conn_input(c, s, now);
      busy_ = nullptr;
      if (c.dead) free_conn(c);
      return;
    }
  }
  if (auto l = flows_.find_listener(s.t.local, s.t.local_port)) {
    listen_input(listeners_[*l], s, now);
    return;
  }
  count(StackCounter::tcp_drop_no_socket);
  if (!s.flags.rst()) send_rst_for(s, now);
}

// RFC 6191 §2: a SYN may reopen a 4-tuple in TIME-WAIT when its timestamp
// is newer than the last one seen, or (without timestamps, RFC 9293
// §3.6.1's rule) when its sequence number is above the old RCV.NXT.
bool TcpLayer::time_wait_reusable(const Conn& c, const Segment& s) const {
  if (c.ts_ok && s.opt.timestamps) return static_cast<std::int32_t>(s.opt.timestamps->tsval - c.ts_recent) > 0;
  return s.seq > c.rcv_nxt;
}

void TcpLayer::negotiate(Conn& c, const wire::TcpOptions& o, bool syn_has_ts) {
  c.peer_mss = o.mss ? std::max<std::uint16_t>(*o.mss, 64) : kDefaultPeerMss;
  c.ws_ok = c.opt.window_scaling && o.wscale.has_value();
  c.snd_wscale = c.ws_ok ? *o.wscale : 0;
  if (!c.ws_ok) c.rcv_wscale = 0;
  c.sack_ok = c.opt.sack && o.sack_permitted;
  c.ts_ok = c.opt.timestamps && syn_has_ts;
  if (c.ts_ok) c.ts_recent = o.timestamps->tsval;
  // RFC 6691: the MSS counts payload only; options on every segment (the
  // timestamps) come out of it. Clamped to what our own MTU carries.
  const std::uint32_t mtu_mss = stack_.caps().mtu - 40u;
  std::uint32_t m = std::min<std::uint32_t>(c.peer_mss, mtu_mss);
  if (c.ts_ok) m -= kTsOptionBytes;
  c.mss = static_cast<std::uint16_t>(m);
  c.cc = CongestionControl(algo_of(c.opt.congestion), CcConfig{c.mss});
  c.sb.reset(c.mss, c.iss + 1);
}

void TcpLayer::listen_input(Listener& l, Segment& s, TimeNs now) {
  if (s.flags.rst()) return;  // §3.10.7.2: an incoming RST is ignored
  if (s.flags.ack()) {
    if (!s.flags.syn() && cfg_.syn_cookies) {
      // Maybe the handshake's last ACK for a SYN we answered with a cookie.
      const std::uint32_t client_isn = (s.seq - 1).raw();
      if (auto mss = cookies_.check(s.t, client_isn, (s.ack - 1).raw(), now)) {
        Conn* cp = alloc_conn(now);
        if (!cp || flows_.insert(s.t, cp->index) != InsertResult::ok) {
          if (cp) free_conn(*cp);
          count(StackCounter::tcp_drop_table_full);
          return;
        }
        Conn& c = *cp;
        init_conn(c, s.t, l.opt, now);
        c.handler = l.handler;
        c.user = l.user;
        c.passive = true;
        c.iss = s.ack - 1;
        c.snd_una = c.snd_nxt = c.snd_max = s.ack;
        c.snd.reset(s.ack);
        c.irs = SeqNum{client_isn};
        c.rcv_nxt = c.rcv_adv = s.seq;
        wire::TcpOptions o;
        o.mss = *mss;
        // The options ride in the TSecr only if it echoes a TSval of ours:
        // one our clock stamped within the cookie's lifetime. A client that
        // sends timestamps it did not offer in its SYN (RFC 7323 §3.2
        // forbids it) echoes garbage: no options from it, no timestamps.
        bool ts = false;
        if (s.opt.timestamps) {
          const std::uint32_t age = static_cast<std::uint32_t>(now / kNsPerMs) + c.ts_offset - s.opt.timestamps->tsecr;
          constexpr std::uint32_t kMaxCookieAgeMs =
              static_cast<std::uint32_t>((SynCookies::kMaxAge + 1) * SynCookies::kPeriodNs / kNsPerMs) +
              (2u << SynCookies::kTsOptionBits);
          ts = age <= kMaxCookieAgeMs;
        }
        if (ts) {
          const CookieOptions co = SynCookies::decode_options(s.opt.timestamps->tsecr);
          o.wscale = co.wscale;
          o.sack_permitted = co.sack_permitted;
          o.timestamps = s.opt.timestamps;
        }
        negotiate(c, o, ts);
        // The cookie SYN-ACK offered our default shift; without timestamps
        // the client's was not remembered, so no scaling either way.
        c.sb.reset(c.mss, s.ack);
        c.snd_wnd = std::uint32_t{s.wnd} << c.snd_wscale;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = s.seq;
        c.snd_wl2 = s.ack;
        set_state(c, TcpState::established);
        count(StackCounter::tcp_syncookies_accepted);
        count(StackCounter::tcp_passive_opens);
        count(StackCounter::tcp_established);
        ++c.st.segs_in;
        c.rcv_adv = c.rcv_nxt + std::min<std::uint32_t>(l.opt.rcvbuf, 0xffff);
        // As on every other path into a callback, the connection is busy: an
        // abort() or close() from on_accept marks it dead instead of freeing
        // it under us (and handing its slot to a connect() made there too).
        busy_ = &c;
        if (l.handler) l.handler->on_accept(*this, TcpListenerId{static_cast<std::uint32_t>(&l - listeners_.data())}, id_of(c), now);
        busy_ = nullptr;
        if (c.dead) {
          free_conn(c);
          return;
        }
        if (s.len || s.flags.fin()) {
          // Data on the completing ACK: process it as a normal segment.
          Segment copy;
          copy.t = s.t;
          copy.seq = s.seq;
          copy.ack = s.ack;
          copy.flags = s.flags;
          copy.wnd = s.wnd;
          copy.len = s.len;
          copy.opt = s.opt;
          copy.pkt = std::move(s.pkt);
          busy_ = &c;
          conn_input(c, copy, now);
          busy_ = nullptr;
        }
        if (c.dead) free_conn(c);
        return;
      }
      count(StackCounter::tcp_syncookies_failed);
    }
    count(StackCounter::tcp_drop_no_socket);
    send_rst_for(s, now);
    return;
  }
  if (!s.flags.syn()) return;
  if (l.pending >= l.backlog) {
    if (cfg_.syn_cookies) {
      send_synack_cookie(s, l, now);
    } else {
      count(StackCounter::tcp_drop_listen_overflow);
    }
    return;
  }
  Conn* cp = alloc_conn(now);
  if (!cp) {
    if (cfg_.syn_cookies) send_synack_cookie(s, l, now);
    else count(StackCounter::tcp_drop_table_full);
    return;
  }
  Conn& c = *cp;
  init_conn(c, s.t, l.opt, now);
  if (flows_.insert(s.t, c.index) != InsertResult::ok) {
    free_conn(c);
    count(StackCounter::tcp_drop_table_full);
    return;
  }
  c.handler = l.handler;
  c.user = l.user;
  c.passive = true;
  c.listener = static_cast<std::uint32_t>(&l - listeners_.data());
  ++l.pending;
  c.irs = s.seq;
  c.rcv_nxt = s.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  negotiate(c, s.opt, s.opt.timestamps.has_value());
  if (c.ts_ok) c.ts_recent_age = now;
  c.snd_wnd = s.wnd;  // a SYN's window is never scaled (RFC 7323 §2.2)
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.seq;
  c.snd_wl2 = c.iss;
  set_state(c, TcpState::syn_received);
  ++c.st.segs_in;
  c.rtt_timing = true;
  c.rtt_seq = c.iss + 1;
  c.rtt_start = now;
  send_segment(c, c.iss, 0, kSyn | kAck, now);
}

void TcpLayer::syn_sent_input(Conn& c, const Segment& s, TimeNs now) {
  // §3.10.7.3, first: the ACK.
  if (s.flags.ack() && (s.ack <= c.iss || s.ack > c.snd_max)) {
    count(StackCounter::tcp_drop_bad_ack);
    if (!s.flags.rst()) send_rst_for(s, now);
    return;
  }
  if (s.flags.rst()) {
    // RFC 5961 §3.2 for SYN-SENT: only a RST acknowledging our SYN counts.
    if (!s.flags.ack()) {
      count(StackCounter::tcp_drop_rst_out_of_window);
      return;
    }
    count(StackCounter::tcp_conn_refused);
    finish(c, TcpError::refused, now);
    return;
  }
  if (!s.flags.syn()) return;
  c.irs = s.seq;
  c.rcv_nxt = s.seq + 1;
  c.rcv_adv = c.rcv_nxt;
  negotiate(c, s.opt, s.opt.timestamps.has_value());
  if (c.ts_ok) c.ts_recent_age = now;
  if (s.flags.ack()) {
    complete_handshake(c, s, s.wnd, now);  // a SYN's window is never scaled (RFC 7323 §2.2)
    c.ack_now = true;
    if (c.handler && !c.detached) c.handler->on_connected(*this, id_of(c), now);
    if (c.dead) return;
    output(c, now);  // data queued before the handshake, and the ACK
    return;
  }
  // Simultaneous open (§3.5 figure 7): SYN-RECEIVED, SYN-ACK with our ISS.
  c.snd_wnd = s.wnd;
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.seq;
  set_state(c, TcpState::syn_received);
  c.rtt_timing = false;
  send_segment(c, c.iss, 0, kSyn | kAck, now, true);
}

void TcpLayer::conn_input(Conn& c, Segment& s, TimeNs now) {
  if (c.state == TcpState::syn_received && s.flags.syn() && s.seq == c.irs && (!s.flags.ack() || !c.passive)) {
    // SYN-RECEIVED and a retransmission of the SYN: our SYN-ACK was lost.
    if (!s.flags.ack()) {
      send_segment(c, c.iss, 0, kSyn | kAck, now, true);
      return;
    }
    // Simultaneous open (§3.5 figure 7, line 6): the peer's SYN-ACK repeats
    // the SYN we took already and acknowledges ours. Go on with its ACK (and
    // any data) from RCV.NXT instead of challenging the SYN, as Linux's
    // tcp_validate_incoming() lets this one pass; an unacceptable ACK is
    // then reset by process_ack().
    s.flags = TcpFlags{static_cast<std::uint8_t>(s.flags.bits & ~TcpFlags::kSyn)};
    s.seq += 1;
    s.syn_window = true;
  }
  // RFC 7323 §5.3 PAWS: an older timestamp than the last in-window one is
  // an old duplicate. RSTs are exempt (R1 says so: their TSval may be stale).
  // One tick of slack, as Linux allows (TCP_PAWS_WINDOW): two segments the
  // network swapped (a veth does, when the sender's softirqs run on two
  // CPUs) may carry timestamps one tick apart, and the older is no old
  // duplicate; a duplicate from an earlier incarnation is far older.
  if (c.ts_ok && s.opt.timestamps && !s.flags.rst()) {
    const std::uint32_t tsval = s.opt.timestamps->tsval;
    if (static_cast<std::int32_t>(tsval - c.ts_recent) < -kPawsWindow) {
      if (now - c.ts_recent_age < kPawsIdle) {
        count(StackCounter::tcp_drop_paws);
        send_dup_ack(c, s, now);
        return;
      }
      c.ts_recent = tsval;  // §5.5: idle for 24 days, the old value is meaningless
      c.ts_recent_age = now;
    }
  }
  // §3.10.7.4 first: is any of the segment inside the window we offered?
  const std::uint32_t rwnd = c.rcv_adv > c.rcv_nxt ? static_cast<std::uint32_t>(c.rcv_adv - c.rcv_nxt) : 0;
  const std::uint32_t seg_len = s.seg_len();
  bool acceptable;
  if (seg_len == 0)
    acceptable = rwnd == 0 ? s.seq == c.rcv_nxt : (s.seq == c.rcv_nxt || seq_in_window(s.seq, c.rcv_nxt, rwnd));
  else
    acceptable = rwnd != 0 && (seq_in_window(s.seq, c.rcv_nxt, rwnd) ||
                               seq_in_window(s.seq + (seg_len - 1), c.rcv_nxt, rwnd));
  // A zero-window probe or a segment just below RCV.NXT (keepalive) must
  // still be answered with an ACK: that is what the unacceptable path does.
  if (!acceptable) {
    if (s.flags.rst()) {
      count(StackCounter::tcp_drop_rst_out_of_window);
      return;
    }
    // TIME-WAIT: the peer's FIN again (our ACK of it was lost). §3.10.7.4
    // says acknowledge it and restart the 2 MSL timeout; one below RCV.NXT,
    // it never passes the test above, so it is recognised here.
    if (c.state == TcpState::time_wait && s.flags.fin() && s.seq + (s.len + 1) == c.rcv_nxt)
      stack_.timers().arm(c.rtx, now + 2 * cfg_.msl);
    count(StackCounter::tcp_drop_out_of_window);
    send_dup_ack(c, s, now);
    return;
  }
  // second: RST (RFC 5961 §3.2): exactly RCV.NXT resets, anything else in
  // the window gets a challenge ACK.
  if (s.flags.rst()) {
    if (s.seq != c.rcv_nxt) {
      send_challenge_ack(c, now);
      return;
    }
    if (c.state == TcpState::syn_received && c.passive) {
      // §3.10.7.4: back to LISTEN, i.e. forget the half-open connection.
      release(c);
      return;
    }
    count(StackCounter::tcp_conn_reset);
    const bool orderly = c.state == TcpState::closing || c.state == TcpState::last_ack || c.state == TcpState::time_wait;
    finish(c, orderly ? TcpError::none : TcpError::reset, now);
    return;
  }
  // fourth: SYN in a synchronized state (RFC 5961 §4): challenge ACK.
  if (s.flags.syn()) {
    count(StackCounter::tcp_drop_syn_in_window);
    send_challenge_ack(c, now);
    return;
  }
  // fifth: ACK.
  if (!s.flags.ack()) {
    count(StackCounter::tcp_drop_no_ack);
    return;
  }
  if (!process_ack(c, s, now) || c.dead) return;

  // RFC 7323 §4.3: remember the timestamp of a segment covering the last
  // ACK we sent (so a delayed ACK still echoes the earliest unacked one).
  // Never backwards: PAWS let a segment one tick older through.
  if (c.ts_ok && s.opt.timestamps && s.seq <= c.last_ack_sent &&
      static_cast<std::int32_t>(s.opt.timestamps->tsval - c.ts_recent) >= 0) {
    c.ts_recent = s.opt.timestamps->tsval;
    c.ts_recent_age = now;
  }

  // Trim what we already have and what lies beyond the window.
  if (s.seq < c.rcv_nxt) {
    const std::uint32_t dup = static_cast<std::uint32_t>(c.rcv_nxt - s.seq);
    if (dup >= s.len) {
      // All data old; a FIN at rcv_nxt - 1 is a retransmitted FIN.
      const bool fin_new = s.flags.fin() && s.seq + s.len == c.rcv_nxt && !c.fin_received;
      if (s.len || s.flags.fin()) c.ack_now = true;  // duplicate data: ACK at once (RFC 5681 §4.2)
      s.len = 0;
      s.seq = c.rcv_nxt;
      if (!fin_new) s.flags = TcpFlags{static_cast<std::uint8_t>(s.flags.bits & ~TcpFlags::kFin)};
    } else {
      s.pkt.consume_front(dup);
      s.len -= dup;
      s.seq = c.rcv_nxt;
    }
  }
  const std::uint32_t room = c.rcv_adv > s.seq ? static_cast<std::uint32_t>(c.rcv_adv - s.seq) : 0;
  if (s.len > room) {
    s.pkt.trim_back(s.len - room);
    s.len = room;
    s.flags = TcpFlags{static_cast<std::uint8_t>(s.flags.bits & ~TcpFlags::kFin)};
  }

  // seventh: text.
  if (s.len) {
    switch (c.state) {
      case TcpState::established:
      case TcpState::fin_wait_1:
      case TcpState::fin_wait_2:
        if (c.detached) {
          // Data for a connection the application closed: nobody will read
          // it. Linux answers with a RST; so do we (RFC 9293 §3.10.7.4 text).
          count(StackCounter::tcp_drop_after_close);
          send_rst(c, now);
          finish(c, TcpError::aborted, now);
          return;
        }
        process_data(c, s, now);
        if (c.dead) return;
        break;
      default: break;  // CLOSE-WAIT and later: the peer's FIN came already
    }
  }
  // eighth: FIN.
  if (s.flags.fin()) {
    if (s.seq + s.len == c.rcv_nxt && !c.fin_received) {
      process_fin(c, now);
      if (c.dead) return;
    } else if (!c.fin_received && s.seq + s.len > c.rcv_nxt) {
      c.ooo_fin = true;
      c.ooo_fin_seq = s.seq + s.len;
      c.ack_now = true;
    }
  }
  output(c, now);
}

// §3.10.7.4 fifth, with RFC 5961 §5's acceptable range and RFC 5681/6582/6675
// loss detection. Returns false when the segment is to be dropped.
void TcpLayer::complete_handshake(Conn& c, const Segment& s, std::uint32_t snd_wnd, TimeNs now) {
  c.snd_una = s.ack;
  if (c.snd_nxt < c.snd_una) c.snd_nxt = c.snd_una;
  if (c.rtt_timing && s.ack >= c.rtt_seq) {
    c.rtt.on_rtt_sample(now - c.rtt_start);
    c.rtt_timing = false;
  }
  if (c.syn_timed_out) c.rtt.on_handshake_done_after_syn_timeout();
  stack_.timers().cancel(c.rtx);
  c.rtx_count = 0;
  c.snd_wnd = snd_wnd;
  c.max_snd_wnd = c.snd_wnd;
  c.snd_wl1 = s.seq;
  c.snd_wl2 = s.ack;
  set_state(c, c.fin_queued ? TcpState::fin_wait_1 : TcpState::established);
  count(StackCounter::tcp_established);
  arm_keepalive(c, now);
}

bool TcpLayer::process_ack(Conn& c, const Segment& s, TimeNs now) {
  if (c.state == TcpState::syn_received) {
    // §3.10.7.4: SND.UNA < SEG.ACK =< SND.NXT completes the handshake; any
    // other ACK is answered by <SEQ=SEG.ACK><CTL=RST>. RFC 5961 §5.2's
    // ACK-and-drop is for synchronized states: nothing is synchronized yet.
    if (!(s.ack > c.snd_una && s.ack <= c.snd_max)) {
      count(StackCounter::tcp_drop_bad_ack);
      send_rst_for(s, now);
      return false;
    }
    complete_handshake(c, s, s.syn_window ? s.wnd : std::uint32_t{s.wnd} << c.snd_wscale, now);
    if (c.passive) {
      count(StackCounter::tcp_passive_opens);
      std::uint32_t lid = c.listener;
      if (lid != kNone) {
        Listener& l = listeners_[lid];
        if (l.pending) --l.pending;
        c.listener = kNone;
        if (l.handler && !c.detached) l.handler->on_accept(*this, TcpListenerId{lid}, id_of(c), now);
      }
    } else if (c.handler && !c.detached) {
      c.handler->on_connected(*this, id_of(c), now);  // simultaneous open
    }
    if (c.dead) return false;
    return true;
  }

  if (s.ack > c.snd_max) {
    // Acknowledges something never sent: ACK and drop (RFC 5961 §5.2).
    count(StackCounter::tcp_drop_bad_ack);
    send_ack(c, now);
    return false;
  }
  const std::uint32_t win = std::max<std::uint32_t>(c.max_snd_wnd, 1);
  if (s.ack < c.snd_una - win) {
    // Too old even for a slow ACK: a blind injection attempt (RFC 5961 §5.2).
    count(StackCounter::tcp_drop_bad_ack);
    send_challenge_ack(c, now);
    return false;
  }

  const SeqNum old_una = c.snd_una;
  // Window update (§3.10.7.4: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK),
  // and, as Linux does (tcp_may_update_window), whenever the ACK advances
  // SND.UNA: the window is relative to the ACK that carries it, so a
  // retransmission from the peer (an older SEG.SEQ) that acknowledges new
  // data must bring its window along; else the right edge, SND.UNA +
  // SND.WND, moves past anything the peer offered and we send beyond it.
  const std::uint32_t new_wnd = std::uint32_t{s.wnd} << c.snd_wscale;
  const bool window_changed = new_wnd != c.snd_wnd;
  if (c.snd_wl1 < s.seq || (c.snd_wl1 == s.seq && c.snd_wl2 <= s.ack) || s.ack > c.snd_una) {
    c.snd_wnd = new_wnd;
    c.max_snd_wnd = std::max(c.max_snd_wnd, new_wnd);
    c.snd_wl1 = s.seq;
    c.snd_wl2 = s.ack;
    if (c.persist && c.snd_wnd) {
      c.persist = false;
      stack_.timers().cancel(c.rtx);
      c.rtt.reset_backoff();
    }
  }

  // The SACK scoreboard sees every ACK in the data phase.
  SackScoreboard::AckResult sr{};
  std::array<SackBlock, wire::kTcpMaxSackBlocks> blocks{};
  std::size_t nblocks = 0;
  if (c.sack_ok) {
    for (const auto& b : s.opt.sacks()) blocks[nblocks++] = SackBlock{b.left, b.right};
    const SeqNum data_ack = std::min(s.ack, c.sb.snd_nxt());
    sr = c.sb.on_ack(data_ack, std::span<const SackBlock>(blocks.data(), nblocks));
  }

  if (s.ack > c.snd_una) {
    const std::uint32_t acked = static_cast<std::uint32_t>(s.ack - c.snd_una);
    const SeqNum data_ack = std::min(s.ack, c.data_end());
    c.snd.ack(data_ack);
    c.st.bytes_out += static_cast<std::uint32_t>(data_ack - std::max(old_una, c.iss + 1));
    c.snd_una = s.ack;
    if (c.snd_nxt < c.snd_una) c.snd_nxt = c.snd_una;
    if (c.rto_recovery && c.snd_nxt >= c.snd_max) c.rto_recovery = false;
    if (c.rtt_timing && s.ack >= c.rtt_seq) {
      c.rtt.on_rtt_sample(now - c.rtt_start);
      c.rtt_timing = false;
    }
    c.rtx_count = 0;
    c.first_rtx = 0;
    const std::uint32_t flight = static_cast<std::uint32_t>(c.snd_max - c.snd_una);
    const AckAction a = c.cc.on_ack(AckEvent{now, s.ack, acked, flight, c.rtt.srtt()});
    if (!c.sack_ok && (a == AckAction::partial_ack || a == AckAction::first_partial_ack)) {
      retransmit_una(c, now);  // RFC 6582 §3.2 step 3
    }
    // Timer (RFC 6298 (5.2)/(5.3)).
    if (c.snd_una == c.snd_max) {
      if (!c.persist) stack_.timers().cancel(c.rtx);
    } else if (!c.persist) {
      arm_rtx(c, now);
    }
    // State changes that wait for our FIN to be acknowledged.
    if (c.fin_acked()) {
      switch (c.state) {
        case TcpState::fin_wait_1:
          set_state(c, TcpState::fin_wait_2);
          if (c.detached) stack_.timers().arm(c.rtx, now + cfg_.fin_wait_2_timeout);
          break;
        case TcpState::closing:
          enter_time_wait(c, now);
          return false;
        case TcpState::last_ack:
          count(StackCounter::tcp_conn_closed);
          finish(c, TcpError::none, now);
          return false;
        default: break;
      }
    }
    notify_writable(c, now);
    if (c.dead) return false;
  } else if (s.ack == c.snd_una && s.len == 0 && !s.flags.fin() && c.snd_max != c.snd_una &&
             (!window_changed || sr.dup_ack)) {
    // RFC 5681 §2 duplicate ACK (or RFC 6675's: one carrying new SACK info).
    ++c.st.dup_acks_in;
    const std::uint32_t flight = static_cast<std::uint32_t>(c.snd_max - c.snd_una);
    if (c.sack_ok) {
      bool enter = sr.enter_recovery;
      const DupAckAction a = c.cc.on_dup_ack(DupAckEvent{now, s.ack, c.snd_max, flight});
      if (a == DupAckAction::fast_retransmit) enter = true;
      if (enter && !c.sb.in_recovery() && !c.rto_recovery) {
        // The scoreboard can detect loss (IsLost) before the third duplicate;
        // bring the congestion controller into recovery with it, so the
        // window is reduced exactly once per loss event.
        for (int i = 0; i < 3 && !c.cc.in_recovery(); ++i)
          c.cc.on_dup_ack(DupAckEvent{now, s.ack, c.snd_max, flight});
        const auto rs = c.sb.enter_recovery();
        ++c.st.fast_retransmits;
        // The scoreboard counts the whole segment as retransmitted; when
        // SACK blocks of our own leave less room in one, the rest goes too
        // (else it would wait for the RTO).
        SeqNum seq = rs.retransmit.seq;
        std::uint32_t left = rs.retransmit.kind != TxSegment::Kind::none ? rs.retransmit.len : 0;
        while (left) {
          std::uint32_t sent = 0;
          if (!send_segment(c, seq, left, kAck, now, true, &sent) || sent == 0) break;
          seq += sent;
          left -= sent;
        }
        arm_rtx(c, now);
      }
    } else {
      const DupAckAction a = c.cc.on_dup_ack(DupAckEvent{now, s.ack, c.snd_max, flight});
      if (a == DupAckAction::fast_retransmit) {
        ++c.st.fast_retransmits;
        retransmit_una(c, now);
        arm_rtx(c, now);
      }
    }
  }
  return true;
}

void TcpLayer::process_data(Conn& c, Segment& s, TimeNs now) {
  if (s.seq == c.rcv_nxt) {
    // In order. Into the receive queue; coalesce a small segment into the
    // tail mbuf when it has room, so tiny segments do not pin an mbuf each.
    rte_mbuf* m = s.pkt.get();
    bool queued = false;
    if (c.rq_n && s.len <= kCoalesceMax) {
      rte_mbuf* last = c.rq[(c.rq_head + c.rq_n - 1) % c.rq.size()];
      if (RTE_MBUF_DIRECT(last) && rte_mbuf_refcnt_read(last) == 1 && last->nb_segs == 1 &&
          rte_pktmbuf_tailroom(last) >= s.len) {
        std::memcpy(rte_pktmbuf_append(last, static_cast<std::uint16_t>(s.len)),
                    rte_pktmbuf_mtod(m, const void*), s.len);
        s.pkt.reset();
        queued = true;
      }
    }
    if (!queued) {
      if (!c.rq_free()) {
        count(StackCounter::tcp_drop_rcvq_full);  // not ACKed: the peer resends
        return;
      }
      c.rq[(c.rq_head + c.rq_n) % c.rq.size()] = s.pkt.release();
      ++c.rq_n;
    }
    c.rq_bytes += s.len;
    c.rcv_nxt += s.len;
    c.st.bytes_in += s.len;
    const bool filled_gap = drain_ooo(c) > 0;
    if (c.ooo_fin && c.rcv_nxt == c.ooo_fin_seq) {
      c.ooo_fin = false;
      process_fin(c, now);
      if (c.dead) return;
    }
    // RFC 5681 §4.2: ACK at once when a gap is filled (the sender is in
    // recovery) and during quick-ack; otherwise every second full segment,
    // or when the delayed-ACK timer fires.
    ++c.unacked_segs;
    schedule_ack(c, now, filled_gap || !c.ooo.empty());
    notify_readable(c, now);
    return;
  }
  // Beyond RCV.NXT: hold it and ACK at once (a duplicate ACK, with SACK
  // blocks, tells the sender about the hole).
  ++c.st.ooo_segs_in;
  const auto r = c.ooo.insert(c.rcv_nxt, s.seq, std::move(s.pkt));
  if (r == ReassemblyQueue::Insert::full) count(StackCounter::tcp_drop_ooo_full);
  c.ack_now = true;
}

std::size_t TcpLayer::drain_ooo(Conn& c) {
  if (c.ooo.empty() || c.rq_free() < c.ooo.segments()) return 0;
  const std::size_t n = c.ooo.drain(c.rcv_nxt, [&](Packet&& p) {
    const std::uint32_t len = static_cast<std::uint32_t>(p.len());
    c.rq[(c.rq_head + c.rq_n) % c.rq.size()] = p.release();
    ++c.rq_n;
    c.rq_bytes += len;
  });
  c.st.bytes_in += n;
  return n;
}

void TcpLayer::process_fin(Conn& c, TimeNs now) {
  c.rcv_nxt += 1;
  c.fin_received = true;
  c.ack_now = true;
  bool time_wait = false;
  switch (c.state) {
    case TcpState::syn_received:
    case TcpState::established: set_state(c, TcpState::close_wait); break;
    case TcpState::fin_wait_1:
      if (c.fin_acked()) time_wait = true;
      else set_state(c, TcpState::closing);  // simultaneous close
      break;
    case TcpState::fin_wait_2: time_wait = true; break;
    default: break;
  }
  // The application hears about the end of the stream before the end of
  // the connection (on_closed comes with TIME-WAIT).
  notify_readable(c, now);
  if (c.dead || !time_wait) return;
  send_ack(c, now);
  enter_time_wait(c, now);
}

void TcpLayer::schedule_ack(Conn& c, TimeNs now, bool immediate) {
  if (immediate || !c.opt.delayed_ack || c.quickack || c.unacked_segs >= 2) {
    if (c.quickack) --c.quickack;
    c.ack_now = true;
    return;
  }
  if (!c.delack.armed()) stack_.timers().arm(c.delack, now + c.opt.delayed_ack_ns);
}

// --- output ------------------------------------------------------------------

std::uint32_t TcpLayer::rcv_window(const Conn& c) const {
  const std::uint32_t used = c.rq_bytes;
  std::uint32_t w = c.opt.rcvbuf > used ? c.opt.rcvbuf - used : 0;
  const std::uint32_t cap = 0xffffu << c.rcv_wscale;
  return std::min(w, cap);
}

std::uint16_t TcpLayer::window_field(Conn& c, bool syn) {
  std::uint32_t w = rcv_window(c);
  if (syn) {
    // A SYN's window is never scaled (RFC 7323 §2.2).
    const std::uint32_t field = std::min<std::uint32_t>(w, 0xffff);
    c.rcv_adv = c.rcv_nxt + field;
    return static_cast<std::uint16_t>(field);
  }
  // RFC 9293 §3.8.6.2.2 receiver SWS avoidance: move the right edge only by
  // at least min(buffer/2, MSS); never move it left (RFC 7323 §2.4).
  const SeqNum edge = c.rcv_nxt + w;
  if (c.rcv_adv > c.rcv_nxt || c.rcv_adv == c.rcv_nxt) {
    if (edge <= c.rcv_adv) {
      w = static_cast<std::uint32_t>(c.rcv_adv - c.rcv_nxt);
    } else if (static_cast<std::uint32_t>(edge - c.rcv_adv) < std::min<std::uint32_t>(c.opt.rcvbuf / 2, c.mss)) {
      w = static_cast<std::uint32_t>(c.rcv_adv - c.rcv_nxt);
    }
  }
  // RFC 7323 §2.3: SEG.WND = RCV.WND >> Rcv.Wind.Shift, rounded down. The
  // edge the peer computes may then fall short of rcv_adv by less than one
  // unit (the retraction of §2.4); data up to rcv_adv is still accepted, as
  // the acceptability test uses rcv_adv, which never moves left. Rounding up
  // instead pushed rcv_adv up to 2^shift - 1 bytes past the buffer on every
  // ACK, so a peer sending a few bytes per ACK never saw the window close.
  std::uint32_t field = w >> c.rcv_wscale;
  if (field > 0xffff) field = 0xffff;
  const SeqNum adv = c.rcv_nxt + (field << c.rcv_wscale);
  if (adv > c.rcv_adv) c.rcv_adv = adv;
  return static_cast<std::uint16_t>(field);
}

void TcpLayer::maybe_window_update(Conn& c, TimeNs now) {
  if (c.state != TcpState::established && c.state != TcpState::fin_wait_1 && c.state != TcpState::fin_wait_2)
    return;
  // Out-of-order data held back because the receive queue was full. (A FIN
  // held with it waits for the peer's retransmission: process_fin() calls
  // back into the application, which is inside read() here.)
  if (drain_ooo(c)) c.ack_now = true;
  const SeqNum edge = c.rcv_nxt + rcv_window(c);
  const std::uint32_t grow = edge > c.rcv_adv ? static_cast<std::uint32_t>(edge - c.rcv_adv) : 0;
  const bool update = grow >= std::min<std::uint32_t>(c.opt.rcvbuf / 2, 2u * c.mss);
  if (&c == busy_) {
    // The application reads from inside a callback of this connection's
    // input (an echo server in on_readable): the segment being processed
    // ends with output(), which sends the ACK, on whatever data the
    // application sends back if it does. A pure ACK here would go first
    // and be one packet too many.
    if (update) c.ack_now = true;
    return;
  }
  if (c.ack_now || update) send_ack(c, now);
}

std::uint32_t TcpLayer::segment_room(const Conn& c) const {
  // The header send_segment() will build for a data segment: timestamps on
  // every segment, SACK blocks while our out-of-order queue holds data.
  wire::TcpRepr r;
  if (c.ts_ok) r.options.timestamps = wire::TcpTimestamps{0, 0};
  if (c.sack_ok && !c.ooo.empty()) {
    std::array<SackBlock, wire::kTcpMaxSackBlocks> b{};
    r.options.sack_count = static_cast<std::uint8_t>(c.ooo.sack_blocks(b));
  }
  const std::uint32_t room = stack_.caps().mtu - 20u - static_cast<std::uint32_t>(r.header_len());
  return std::min<std::uint32_t>(c.mss, room);
}

void TcpLayer::retransmit_una(Conn& c, TimeNs now) {
  if (c.snd_una == c.snd_max) return;
  const SeqNum end = c.data_end();
  if (c.snd_una < end) {
    const std::uint32_t len = std::min<std::uint32_t>(segment_room(c), static_cast<std::uint32_t>(end - c.snd_una));
    const bool fin = c.fin_queued && c.snd_una + len == end && c.snd_max > end;
    send_segment(c, c.snd_una, len, fin ? (kAck | kFin) : (kAck | kPsh), now, true);
  } else if (c.fin_queued) {
    send_segment(c, end, 0, kAck | kFin, now, true);
  }
}

void TcpLayer::output(Conn& c, TimeNs now) {
  switch (c.state) {
    case TcpState::established:
    case TcpState::close_wait:
    case TcpState::fin_wait_1:
    case TcpState::closing:
    case TcpState::last_ack: break;
    default:
      if (c.ack_now && c.state != TcpState::syn_sent && c.state != TcpState::closed) send_ack(c, now);
      return;
  }
  const SeqNum end = c.data_end();
  // RFC 5681 §4.1: restart from IW after an idle period longer than the RTO.
  if (c.snd_una == c.snd_max && c.snd_nxt < end) c.cc.on_idle_restart(now, c.last_send, c.rtt.rto());
  const bool sack_recovery = c.sack_ok && c.sb.in_recovery() && !c.rto_recovery;
  // During recovery the window is ssthresh (RFC 6675 §5 step 4.2); NewReno
  // keeps its inflated cwnd (RFC 6582) since it counts flight, not pipe.
  std::uint32_t cwnd = sack_recovery ? c.cc.ssthresh() : c.cc.cwnd();
  // RFC 3042 limited transmit: one more segment per duplicate ACK, two at most.
  if (!c.cc.in_recovery() && c.cc.window().dup_acks() > 0 && c.cc.window().dup_acks() < kDupAckThreshold)
    cwnd += c.cc.window().dup_acks() * c.mss;
  // Payload per segment: the MSS, less the SACK blocks a segment carries
  // while our own receive side has a hole (else every full segment would
  // leave a 12-28 byte remainder to go out alone).
  const std::uint32_t smss = segment_room(c);
  int budget = 64;  // segments per call: bounds the time one connection holds the lcore
  while (budget-- > 0) {
    if (sack_recovery) {
      const std::uint32_t pipe = c.sb.pipe();
      if (pipe + c.mss > cwnd && pipe >= cwnd) break;
      if (cwnd - std::min(cwnd, pipe) < c.mss && pipe != 0) break;
      const SeqNum wnd_end = c.snd_una + c.snd_wnd;
      std::uint32_t sendable = 0;
      if (c.snd_nxt < end && c.snd_nxt < wnd_end)
        sendable = static_cast<std::uint32_t>(std::min(end, wnd_end) - c.snd_nxt);
      const TxSegment seg = c.sb.next_seg(sendable);
      if (seg.kind == TxSegment::Kind::none) break;
      const std::uint32_t len = std::min<std::uint32_t>(seg.len, smss);
      if (seg.kind == TxSegment::Kind::new_data) {
        bool fin = c.fin_queued && c.snd_nxt + len == end;
        std::uint32_t sent = 0;
        if (!send_segment(c, c.snd_nxt, len, fin ? (kAck | kFin) : (kAck | kPsh), now, false, &sent)) break;
        fin = fin && sent == len;
        c.sb.on_transmit(TxSegment{seg.kind, seg.seq, sent + (fin ? 1u : 0u), seg.rule});
        c.snd_nxt += sent + (fin ? 1 : 0);
        if (c.snd_nxt > c.snd_max) c.snd_max = c.snd_nxt;
      } else {
        std::uint32_t sent = 0;
        if (!send_segment(c, seg.seq, len, kAck, now, true, &sent)) break;
        c.sb.on_transmit(TxSegment{seg.kind, seg.seq, sent, seg.rule});
      }
      continue;
    }
    const std::uint32_t flight = static_cast<std::uint32_t>(c.snd_nxt - c.snd_una);
    if (c.snd_nxt > end) break;  // FIN sent (and not to be resent)
    const std::uint32_t unsent = static_cast<std::uint32_t>(end - c.snd_nxt);
    const bool fin_pending = c.fin_queued && c.snd_nxt == end;
    if (unsent == 0 && !fin_pending) break;
    const SeqNum wnd_end = c.snd_una + c.snd_wnd;
    const std::uint32_t wnd_room = wnd_end > c.snd_nxt ? static_cast<std::uint32_t>(wnd_end - c.snd_nxt) : 0;
    const std::uint32_t cwnd_room = cwnd > flight ? cwnd - flight : 0;
    std::uint32_t len = std::min({unsent, smss, wnd_room, cwnd_room});
    if (unsent && len == 0) {
      // Zero window with nothing in flight: the persist timer probes it
      // (RFC 9293 §3.8.6.1). cwnd-limited: the next ACK clocks more out.
      if (wnd_room == 0 && c.snd_una == c.snd_max && !c.rtx.armed()) {
        c.persist = true;
        arm_rtx(c, now);
      }
      break;
    }
    if (len < unsent && len < smss) {
      // Sender SWS avoidance (§3.8.6.2.1): a partial segment only if it is
      // at least half the largest window the peer offered, or nothing is in
      // flight to clock out the rest.
      if (len < c.max_snd_wnd / 2 && flight) break;
    }
    if (len && len < smss && c.opt.nagle && flight && !c.fin_queued) break;  // RFC 896
    bool fin = c.fin_queued && c.snd_nxt + len == end;
    const bool retransmit = c.snd_nxt < c.snd_max;
    TcpFlags f = kAck;
    if (len) f = f | kPsh;
    if (fin) f = f | kFin;
    std::uint32_t sent = 0;
    if (!send_segment(c, c.snd_nxt, len, f, now, retransmit, &sent)) break;
    fin = fin && sent == len;
    const std::uint32_t used = sent + (fin ? 1 : 0);
    const SeqNum prev_max = c.snd_max;
    c.snd_nxt += used;
    if (c.snd_nxt > c.snd_max) c.snd_max = c.snd_nxt;
    if (c.sack_ok) {
      if (c.snd_max > prev_max) c.sb.on_send_new(static_cast<std::uint32_t>(c.snd_max - prev_max));
      if (retransmit) c.sb.on_retransmit(c.snd_nxt - used, static_cast<std::uint32_t>(std::min(c.snd_nxt, prev_max) - (c.snd_nxt - used)));
    }
    if (c.rto_recovery && c.snd_nxt >= c.snd_max) c.rto_recovery = false;
    if (fin) break;
  }
  if (c.ack_now) send_ack(c, now);
}

bool TcpLayer::send_segment(Conn& c, SeqNum seq, std::uint32_t len, TcpFlags flags, TimeNs now, bool retransmit,
                            std::uint32_t* sent) {
  wire::TcpRepr r;
  r.src_port = c.t.local_port;
  r.dst_port = c.t.remote_port;
  r.seq = seq;
  r.flags = flags;
  const bool syn = flags.syn();
  if (flags.ack()) r.ack = c.rcv_nxt;
  if (syn) {
    r.options.mss = static_cast<std::uint16_t>(stack_.caps().mtu - 40u);
    const bool synack = flags.ack();
    if (synack ? c.ws_ok : c.opt.window_scaling) r.options.wscale = c.rcv_wscale;
    r.options.sack_permitted = synack ? c.sack_ok : c.opt.sack;
    if (synack ? c.ts_ok : c.opt.timestamps)
      r.options.timestamps = wire::TcpTimestamps{ts_now(c, now), synack ? c.ts_recent : 0};
  } else {
    if (c.ts_ok) r.options.timestamps = wire::TcpTimestamps{ts_now(c, now), c.ts_recent};
    if (c.sack_ok && !c.ooo.empty()) {
      std::array<SackBlock, wire::kTcpMaxSackBlocks> b{};
      const std::size_t n = c.ooo.sack_blocks(b);
      for (std::size_t i = 0; i < n; ++i) r.options.sack_blocks[i] = wire::SackBlock{b[i].left, b[i].right};
      r.options.sack_count = static_cast<std::uint8_t>(n);
    }
  }
  r.window = window_field(c, syn);
  const std::size_t hl = r.header_len();
  // Options on this segment come out of its payload (RFC 6691).
  const std::size_t max_payload = stack_.caps().mtu - 20u - hl;
  if (len > max_payload) {
    len = static_cast<std::uint32_t>(max_payload);
    if (flags.fin()) flags = TcpFlags{static_cast<std::uint8_t>(flags.bits & ~TcpFlags::kFin)}, r.flags = flags;
  }
  // Payload as indirect mbufs into the send buffer when the device takes
  // chains; copied when it cannot, and for small segments, where one memcpy
  // costs less than the extra mbufs and reference counts.
  const bool chained = len >= kChainMin && stack_.caps().tx_multi_seg;
  Packet p = !len ? Packet::alloc(pool_) : chained ? c.snd.segment(seq, len, pool_) : c.snd.segment_copy(seq, len, pool_);
  if (!p) {
    count(StackCounter::tcp_tx_drop_no_mbuf);
    // Nothing left: make sure a timer brings us back (the RTO covers data).
    if (!c.rtx.armed() && (len || syn || flags.fin())) arm_rtx(c, now);
    return false;
  }
  if (len && p.len() < len) {
    len = static_cast<std::uint32_t>(p.len());
    flags = TcpFlags{static_cast<std::uint8_t>(flags.bits & ~TcpFlags::kFin)};
    r.flags = flags;
  }
  if (sent) *sent = len;
  MutBytes hdr = p.prepend(hl);
  if (hdr.empty()) {
    count(StackCounter::tcp_tx_drop_no_mbuf);
    return false;
  }
  const bool offload = stack_.caps().tx_tcp_cksum;
  if (chained) {
    r.emit_split(hdr, c.t.local, c.t.remote, static_cast<std::uint16_t>(len),
                 offload ? std::nullopt : std::optional<std::uint32_t>{chain_sum(p.get()->next)});
  } else {
    r.emit(hdr, c.t.local, c.t.remote, Bytes{p.data()}.subspan(hl), !offload);
  }
  if (offload) {
    rte_mbuf* m = p.get();
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
    m->l3_len = 20;
    m->l4_len = static_cast<std::uint16_t>(hl) & 0xff;
  }
  stack_.ip_output(std::move(p), c.t.remote, wire::ipproto::kTcp, now);

  count(StackCounter::tcp_tx_segments);
  if (chained) count(StackCounter::tcp_tx_zero_copy);
  ++c.st.segs_out;
  const std::uint32_t seg_len = len + (syn ? 1 : 0) + (flags.fin() ? 1 : 0);
  if (retransmit || seq < c.snd_max) {
    if (seg_len) {
      count(StackCounter::tcp_tx_retransmits);
      ++c.st.retransmits;
      if (c.rtt_timing && c.rtt_seq > seq) c.rtt_timing = false;  // Karn
    }
  } else if (seg_len && !c.rtt_timing && len) {
    c.rtt_timing = true;
    c.rtt_seq = seq + seg_len;
    c.rtt_start = now;
  }
  if (syn && seq + 1 > c.snd_max) c.snd_max = seq + 1, c.snd_nxt = c.snd_max;
  if (seg_len && !c.rtx.armed()) arm_rtx(c, now);
  if (flags.ack()) {
    c.ack_now = false;
    c.unacked_segs = 0;
    c.last_ack_sent = c.rcv_nxt;
    stack_.timers().cancel(c.delack);
  }
  if (seg_len) c.last_send = now;
  return true;
}

void TcpLayer::send_dup_ack(Conn& c, const Segment& s, TimeNs now) {
  if (s.len == 0 && !s.flags.syn() && !s.flags.fin()) {
    if (c.last_oow_ack && now - c.last_oow_ack < kOowInterval) {
      count(StackCounter::tcp_oow_ack_limited);
      return;
    }
    c.last_oow_ack = now;
  }
  send_ack(c, now);
}

void TcpLayer::send_challenge_ack(Conn& c, TimeNs now) {
  // RFC 5961 §7: a budget per second for the whole lcore, so challenge
  // ACKs cannot be turned into a reflector. (A shared budget is itself a
  // side channel, CVE-2016-5696; Linux randomises it. Here it is per lcore,
  // which narrows what one probe can count, but does not remove it.)
  if (now - challenge_epoch_ >= kNsPerSec) {
    challenge_epoch_ = now;
    challenge_budget_ = cfg_.challenge_acks_per_sec;
  }
  if (challenge_budget_ == 0) {
    count(StackCounter::tcp_challenge_ack_limited);
    return;
  }
  --challenge_budget_;
  count(StackCounter::tcp_tx_challenge_ack);
  send_ack(c, now);
}

void TcpLayer::send_rst(Conn& c, TimeNs now) {
  if (c.state == TcpState::closed || c.state == TcpState::syn_sent) return;
  wire::TcpRepr r;
  r.src_port = c.t.local_port;
  r.dst_port = c.t.remote_port;
  r.seq = c.snd_max;
  r.ack = c.rcv_nxt;
  r.flags = kRst | kAck;
  if (emit_bare(c.t, r, now)) count(StackCounter::tcp_tx_rst);
}

void TcpLayer::send_rst_for(const Segment& s, TimeNs now) {
  // §3.10.7.1: <SEQ=SEG.ACK><CTL=RST> if the segment had an ACK, else
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  wire::TcpRepr r;
  r.src_port = s.t.local_port;
  r.dst_port = s.t.remote_port;
  if (s.flags.ack()) {
    r.seq = s.ack;
    r.flags = kRst;
  } else {
    r.seq = SeqNum{0};
    r.ack = s.seq + s.seg_len();
    r.flags = kRst | kAck;
  }
  if (emit_bare(s.t, r, now)) count(StackCounter::tcp_tx_rst);
}

void TcpLayer::send_synack_cookie(const Segment& s, const Listener& l, TimeNs now) {
  const std::uint16_t peer_mss = s.opt.mss ? *s.opt.mss : kDefaultPeerMss;
  const std::uint16_t mss = std::min<std::uint16_t>(peer_mss, static_cast<std::uint16_t>(stack_.caps().mtu - 40u));
  const std::uint32_t isn = cookies_.make(s.t, s.seq.raw(), mss, now);
  wire::TcpRepr r;
  r.src_port = s.t.local_port;
  r.dst_port = s.t.remote_port;
  r.seq = SeqNum{isn};
  r.ack = s.seq + 1;
  r.flags = kSyn | kAck;
  r.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(l.opt.rcvbuf, 0xffff));
  r.options.mss = static_cast<std::uint16_t>(stack_.caps().mtu - 40u);
  // Window scale and SACK survive only inside the timestamp (RFC 4987 §3.6,
  // Linux's scheme): without timestamps they are not offered.
  if (s.opt.timestamps && l.opt.timestamps) {
    CookieOptions co;
    if (s.opt.wscale && l.opt.window_scaling) co.wscale = *s.opt.wscale;
    co.sack_permitted = s.opt.sack_permitted && l.opt.sack;
    const std::uint32_t tsval =
        SynCookies::encode_options(static_cast<std::uint32_t>(now / kNsPerMs) + ts_offset_for(s.t), co);
    r.options.timestamps = wire::TcpTimestamps{tsval, s.opt.timestamps->tsval};
    if (co.wscale) r.options.wscale = l.opt.window_scaling ? wscale_for(l.opt.rcvbuf) : 0;
    r.options.sack_permitted = co.sack_permitted;
  }
  if (emit_bare(s.t, r, now)) count(StackCounter::tcp_syncookies_sent);
}

bool TcpLayer::emit_bare(const FourTuple& t, const wire::TcpRepr& r, TimeNs now) {
  Packet p = Packet::alloc(pool_);
  if (!p) {
    count(StackCounter::tcp_tx_drop_no_mbuf);
    return false;
  }
  r.emit(p.prepend(r.header_len()), t.local, t.remote, {}, true);
  stack_.ip_output(std::move(p), t.remote, wire::ipproto::kTcp, now);
  return true;
}

// --- timers ------------------------------------------------------------------

void TcpLayer::arm_rtx(Conn& c, TimeNs now) { stack_.timers().arm(c.rtx, now + c.rtt.rto()); }

void TcpLayer::arm_keepalive(Conn& c, TimeNs now) {
  if (c.opt.keepalive) stack_.timers().arm(c.keepalive, now + c.opt.keepalive_idle_ns);
}

void TcpLayer::on_rtx_timer(Timer&, TimeNs now, void* ctx) {
  Conn& c = *static_cast<Conn*>(ctx);
  TcpLayer& l = *c.layer;
  l.busy_ = &c;
  l.rtx_timeout(c, now);
  l.busy_ = nullptr;
  if (c.dead) l.free_conn(c);
}

void TcpLayer::on_delack_timer(Timer&, TimeNs now, void* ctx) {
  Conn& c = *static_cast<Conn*>(ctx);
  if (c.state == TcpState::closed || c.state == TcpState::syn_sent) return;
  c.layer->send_ack(c, now);
}

void TcpLayer::on_keepalive_timer(Timer&, TimeNs now, void* ctx) {
  Conn& c = *static_cast<Conn*>(ctx);
  TcpLayer& l = *c.layer;
  if (!c.opt.keepalive) return;
  if (c.state != TcpState::established && c.state != TcpState::close_wait) return;
  const TimeNs idle_until = c.last_recv + c.opt.keepalive_idle_ns;
  if (now < idle_until && c.ka_probes == 0) {
    l.stack_.timers().arm(c.keepalive, idle_until);  // traffic since: wait again
    return;
  }
  if (c.snd.buffered() || c.snd_una != c.snd_max) {
    // Data (or our FIN) in flight: the retransmission timer watches the
    // peer; a probe would only add to the queue (Linux does the same).
    c.ka_probes = 0;
    l.stack_.timers().arm(c.keepalive, now + c.opt.keepalive_idle_ns);
    return;
  }
  if (c.ka_probes >= c.opt.keepalive_probes) {
    // As Linux does: a RST, in case the peer is alive but its answers are
    // lost, so it does not keep a connection we have given up on.
    l.send_rst(c, now);
    l.count(StackCounter::tcp_conn_timed_out);
    l.finish(c, TcpError::timed_out, now);
    return;
  }
  // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1, no data; the peer answers
  // with an ACK because the sequence number is outside its window.
  ++c.ka_probes;
  l.send_segment(c, c.snd_una - 1, 0, kAck, now);
  l.stack_.timers().arm(c.keepalive, now + c.opt.keepalive_interval_ns);
}

void TcpLayer::rtx_timeout(Conn& c, TimeNs now) {
  switch (c.state) {
    case TcpState::time_wait:
      free_conn(c);  // 2 MSL over; the application heard about the end already
      return;
    case TcpState::fin_wait_2:
      // Orphaned FIN-WAIT-2 (close() was called): give up waiting for the FIN.
      if (c.detached) {
        count(StackCounter::tcp_conn_closed);
        finish(c, TcpError::none, now);
      }
      return;
    case TcpState::syn_sent:
    case TcpState::syn_received: {
      const std::uint32_t limit = c.state == TcpState::syn_sent ? cfg_.syn_retries : cfg_.synack_retries;
      if (c.rtx_count >= limit || now >= c.connect_deadline) {
        count(StackCounter::tcp_conn_timed_out);
        if (c.state == TcpState::syn_received && c.passive) {
          free_conn(c);
          return;
        }
        finish(c, TcpError::timed_out, now);
        return;
      }
      ++c.rtx_count;
      ++c.st.timeouts;
      c.syn_timed_out = true;
      c.rtt.backoff();
      c.rtt_timing = false;
      send_segment(c, c.iss, 0, c.state == TcpState::syn_sent ? kSyn : (kSyn | kAck), now, true);
      TimeNs next = now + c.rtt.rto();
      if (c.connect_deadline < next) next = c.connect_deadline;
      stack_.timers().arm(c.rtx, next);
      return;
    }
    default: break;
  }
  if (c.persist) {
    // Zero-window probe (RFC 9293 §3.8.6.1): like Linux, a segment one below
    // SND.UNA with no data, which the peer must answer with its window.
    // Probing continues (backing off) as long as the peer answers.
    if (c.snd_wnd != 0 || c.snd_una != c.snd_max) {
      c.persist = false;
      output(c, now);
      return;
    }
    send_segment(c, c.snd_una - 1, 0, kAck, now);
    c.rtt.backoff();
    arm_rtx(c, now);
    return;
  }
  if (c.snd_una == c.snd_max) return;  // nothing outstanding (raced with an ACK)
  if (c.first_rtx == 0) c.first_rtx = now;
  if (now - c.first_rtx >= c.opt.user_timeout_ns) {
    // RFC 9293 §3.8.3 R2: the peer is gone.
    count(StackCounter::tcp_conn_timed_out);
    send_rst(c, now);
    finish(c, TcpError::timed_out, now);
    return;
  }
  ++c.rtx_count;
  ++c.st.timeouts;
  c.rtt.backoff();
  const std::uint32_t flight = static_cast<std::uint32_t>(c.snd_max - c.snd_una);
  c.cc.on_rto(RtoEvent{now, c.snd_max, flight});
  if (c.sack_ok) c.sb.on_rto();
  // Go back N (RFC 5681 §3.1 / RFC 6298 (5.4)): resend from SND.UNA with
  // cwnd = 1 MSS, clocking out the rest from cwnd as ACKs return.
  c.rto_recovery = true;
  c.snd_nxt = c.snd_una;
  c.rtt_timing = false;
  stack_.timers().cancel(c.rtx);
  output(c, now);
  if (!c.rtx.armed()) arm_rtx(c, now);
}

void TcpLayer::enter_time_wait(Conn& c, TimeNs now) {
  set_state(c, TcpState::time_wait);
  auto& w = stack_.timers();
  w.cancel(c.delack);
  w.cancel(c.keepalive);
  w.arm(c.rtx, now + 2 * cfg_.msl);
  c.snd.clear();
  c.ooo.clear();
  c.persist = false;
  c.tw_prev = tw_tail_;
  c.tw_next = kNone;
  if (tw_tail_ != kNone) conns_[tw_tail_]->tw_next = c.index; else tw_head_ = c.index;
  tw_tail_ = c.index;
  ++tw_count_;
  count(StackCounter::tcp_conn_closed);
  report_closed(c, TcpError::none, now);
}

// --- ending and notifications ----------------------------------------------------

void TcpLayer::report_closed(Conn& c, TcpError err, TimeNs now) {
  if (c.detached) return;
  c.detached = true;
  TcpHandler* h = c.handler;
  c.handler = nullptr;
  if (h) h->on_closed(*this, id_of(c), err, now);
}

void TcpLayer::finish(Conn& c, TcpError err, TimeNs now) {
  set_state(c, TcpState::closed);
  report_closed(c, err, now);
  release(c);
}

void TcpLayer::release(Conn& c) {
  // The connection an input or timer is processing is freed by that entry
  // point when it unwinds (it still reads `c`); any other at once.
  if (&c == busy_)
    c.dead = true;
  else
    free_conn(c);
}

void TcpLayer::notify_readable(Conn& c, TimeNs now) {
  if (c.detached || !c.handler) return;
  c.handler->on_readable(*this, id_of(c), now);
}

std::size_t TcpLayer::send_room(const Conn& c) {
  return c.opt.sndbuf > c.snd.buffered() ? c.opt.sndbuf - c.snd.buffered() : 0;
}

void TcpLayer::notify_writable(Conn& c, TimeNs now) {
  if (!c.want_writable || c.detached || !c.handler) return;
  const std::size_t room = send_room(c);
  if (room < c.opt.sndbuf / 4 && c.snd.buffered()) return;
  c.want_writable = false;
  c.handler->on_writable(*this, id_of(c), now);
}

}  // namespace ustack::tcp
