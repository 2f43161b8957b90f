// The per-lcore UDP layer. See udp_layer.hpp for the RFCs and the model.
#include "udp/udp_layer.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace ustack {

using wire::kUdpHeaderLen;

namespace {
constexpr std::size_t kPorts = 65536;
constexpr Ipv4Addr kAllSystems{0xe0000001};  // 224.0.0.1: every host is a member (RFC 1112 §4)

UdpStatus from_membership(MembershipStatus m) {
  switch (m) {
    case MembershipStatus::ok: return UdpStatus::ok;
    case MembershipStatus::not_multicast: return UdpStatus::not_multicast;
    case MembershipStatus::table_full: return UdpStatus::table_full;
    case MembershipStatus::sources_full: break;
  }
  return UdpStatus::sources_full;
}
}  // namespace

const char* to_string(UdpStatus s) {
  switch (s) {
    case UdpStatus::ok: return "ok";
    case UdpStatus::closed: return "closed";
    case UdpStatus::already_bound: return "already bound";
    case UdpStatus::bad_address: return "bad address";
    case UdpStatus::addr_in_use: return "address in use";
    case UdpStatus::no_ports: return "no free ports";
    case UdpStatus::not_connected: return "not connected";
    case UdpStatus::too_big: return "too big";
    case UdpStatus::no_mbuf: return "no mbuf";
    case UdpStatus::no_headroom: return "no headroom";
    case UdpStatus::shared_mbuf: return "shared mbuf";
    case UdpStatus::not_contiguous: return "not contiguous";
    case UdpStatus::dropped: return "dropped";
    case UdpStatus::not_multicast: return "not a multicast group";
    case UdpStatus::no_igmp: return "no IGMP on this stack";
    case UdpStatus::table_full: return "membership table full";
    case UdpStatus::sources_full: return "too many sources";
  }
  return "?";
}

// --- UdpSocket: the application's handle; the work is done by the layer ----

UdpStatus UdpSocket::bind(Ipv4Addr addr, std::uint16_t port) { return layer_->bind(*this, addr, port); }

void UdpSocket::unbind() { layer_->unbind(*this); }

UdpStatus UdpSocket::connect(Ipv4Addr addr, std::uint16_t port) {
  if (!open_ || closing_) return UdpStatus::closed;
  if (addr.is_unspecified() || port == 0) return UdpStatus::bad_address;
  if (!is_bound()) {
    const UdpStatus st = layer_->bind(*this, Ipv4Addr{}, 0);
    if (st != UdpStatus::ok) return st;
  }
  remote_ = UdpEndpoint{addr, port};
  return UdpStatus::ok;
}

void UdpSocket::set_rx_limits(std::uint16_t datagrams, std::uint32_t bytes) {
  max_datagrams_ = std::min(datagrams, cap_);
  max_bytes_ = std::min(bytes, layer_->cfg_.rx_queue_bytes);
}

UdpStatus UdpSocket::send_to(Bytes data, Ipv4Addr dst, std::uint16_t port, TimeNs now) {
  return layer_->send_copy(*this, data, UdpEndpoint{dst, port}, now);
}

UdpStatus UdpSocket::send(Bytes data, TimeNs now) {
  if (!remote_) return open_ && !closing_ ? UdpStatus::not_connected : UdpStatus::closed;
  return layer_->send_copy(*this, data, *remote_, now);
}

UdpStatus UdpSocket::send_packet_to(Packet&& pkt, Ipv4Addr dst, std::uint16_t port, TimeNs now) {
  return layer_->send_zero_copy(*this, pkt, UdpEndpoint{dst, port}, now);
}

UdpStatus UdpSocket::send_packet(Packet&& pkt, TimeNs now) {
  if (!remote_) return open_ && !closing_ ? UdpStatus::not_connected : UdpStatus::closed;
  return layer_->send_zero_copy(*this, pkt, *remote_, now);
}

UdpSocket::RxSlot UdpSocket::pop() {
  const RxSlot e = ring_[head_];
  head_ = static_cast<std::uint16_t>(head_ + 1 == cap_ ? 0 : head_ + 1);
  --count_;
  bytes_ -= rte_pktmbuf_pkt_len(e.m);
  return e;
}

std::optional<UdpRecvInfo> UdpSocket::recv_from(MutBytes buf) {
  if (count_ == 0) return std::nullopt;
  const RxSlot e = pop();
  const Packet pkt{e.m};
  const MutBytes d = pkt.data();  // received datagrams are contiguous (the stack refuses chains)
  UdpRecvInfo info;
  info.datagram_len = d.size();
  info.len = std::min(d.size(), buf.size());
  info.from = e.from;
  info.to = e.to;
  if (info.len != 0) std::memcpy(buf.data(), d.data(), info.len);
  return info;
}

std::optional<UdpRxDatagram> UdpSocket::recv() {
  if (count_ == 0) return std::nullopt;
  const RxSlot e = pop();
  return UdpRxDatagram{Packet{e.m}, e.from, e.to};
}

void UdpSocket::drain() {
  while (count_ != 0) rte_pktmbuf_free(pop().m);
}

void UdpSocket::close(TimeNs now) {
  if (layer_) layer_->close(*this, now);
}

void UdpSocket::close() {
  if (layer_) layer_->close(*this, layer_->latest_time());
}

UdpStatus UdpSocket::join(Ipv4Addr group, TimeNs now) { return layer_->set_filter(*this, group, FilterMode::exclude, {}, now); }

UdpStatus UdpSocket::leave(Ipv4Addr group, TimeNs now) { return layer_->set_filter(*this, group, FilterMode::include, {}, now); }

UdpStatus UdpSocket::set_source_filter(Ipv4Addr group, FilterMode mode, std::span<const Ipv4Addr> sources, TimeNs now) {
  return layer_->set_filter(*this, group, mode, sources, now);
}

UdpStatus UdpSocket::set_multicast_if(Ipv4Addr addr) {
  if (!open_ || closing_) return UdpStatus::closed;
  if (!addr.is_unspecified() && addr != layer_->stack_.config().ip.addr) return UdpStatus::bad_address;
  return UdpStatus::ok;
}

std::optional<IgmpHost::InterfaceState> UdpSocket::source_filter(Ipv4Addr group) const {
  if (!open_ || closing_ || !layer_->igmp_) return std::nullopt;
  return layer_->igmp_->socket_filter(igmp_id(), group);
}

bool UdpSocket::has_igmp() const { return layer_ && layer_->igmp_; }

bool UdpSocket::accepts(Ipv4Addr dst, Ipv4Addr src) const {
  if (!local_.addr.is_unspecified() && local_.addr != dst) return false;
  if (dst.is_multicast() && dst != kAllSystems && layer_->igmp_) return layer_->igmp_->socket_accepts(igmp_id(), dst, src);
  return true;
}

// --- UdpLayer: construction, socket pool, ports ---------------------------

UdpLayer::UdpLayer(Stack& stack, const UdpConfig& cfg, IgmpHost* igmp)
    : stack_(stack), igmp_(igmp), cfg_(cfg), rng_(cfg.port_seed | 1) {
  // Start-up only: a bad configuration is a programming error, not data.
  if (cfg_.max_sockets == 0 || cfg_.max_sockets >= kNone || cfg_.rx_queue_datagrams == 0 ||
      cfg_.ephemeral_first == 0 || cfg_.ephemeral_first > cfg_.ephemeral_last)
    throw std::invalid_argument("UdpConfig: need 1..65534 sockets, a queue, and a non-empty ephemeral range");
  const std::size_t n = cfg_.max_sockets;
  const std::size_t q = cfg_.rx_queue_datagrams;
  sockets_ = std::make_unique<UdpSocket[]>(n);
  slots_ = std::make_unique<UdpSocket::RxSlot[]>(n * q);
  port_head_ = std::make_unique<std::uint16_t[]>(kPorts);
  std::fill_n(port_head_.get(), kPorts, kNone);
  for (std::size_t i = n; i-- > 0;) {
    UdpSocket& s = sockets_[i];
    s.layer_ = this;
    s.index_ = static_cast<std::uint16_t>(i);
    s.ring_ = &slots_[i * q];
    s.cap_ = cfg_.rx_queue_datagrams;
    s.next_ = free_head_;
    free_head_ = s.index_;
  }
  stack_.set_protocol_handler(wire::ipproto::kUdp, this);
}

UdpLayer::~UdpLayer() {
  stack_.set_protocol_handler(wire::ipproto::kUdp, nullptr);
  for (std::size_t i = 0; i < cfg_.max_sockets; ++i) sockets_[i].drain();
}

UdpSocket* UdpLayer::open() {
  if (free_head_ == kNone) return nullptr;
  UdpSocket& s = sock(free_head_);
  free_head_ = s.next_;
  s.next_ = kNone;
  s.open_ = true;
  ++s.generation_;
  s.max_datagrams_ = s.cap_;
  s.max_bytes_ = cfg_.rx_queue_bytes;
  ++open_count_;
  return &s;
}

std::size_t UdpLayer::max_payload() const {
  const std::size_t mtu = stack_.caps().mtu;
  const std::size_t hdrs = wire::kIpv4MinHeaderLen + kUdpHeaderLen;
  return mtu > hdrs ? std::min(mtu - hdrs, wire::kUdpMaxPayloadLen) : 0;
}

bool UdpLayer::port_conflict(const UdpSocket& s, Ipv4Addr addr, std::uint16_t port) const {
  for (std::uint16_t i = port_head_[port]; i != kNone; i = sockets_[i].next_) {
    const UdpSocket& o = sockets_[i];
    if (o.closing_) continue;
    // A wildcard overlaps every address; two specific ones only themselves.
    const bool overlap = o.local_.addr.is_unspecified() || addr.is_unspecified() || o.local_.addr == addr;
    if (overlap && !(o.reuse_ && s.reuse_)) return true;
  }
  return false;
}

// RFC 6056 §3.3.1 (Algorithm 1): a random starting point, then the next free
// port. A fresh draw per bind keeps ports unpredictable to an off-path
// attacker without a per-destination table. "Free" means no socket at all
// holds the port, so an ephemeral port is never shared through reuse.
std::optional<std::uint16_t> UdpLayer::pick_ephemeral() {
  // xorshift64*: not cryptographic, but seeded by the caller and cheap.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  const std::uint64_t r = rng_ * 0x2545f4914f6cdd1dULL;
  const std::uint32_t range = std::uint32_t{cfg_.ephemeral_last} - cfg_.ephemeral_first + 1;
  std::uint32_t off = static_cast<std::uint32_t>((r >> 32) % range);
  for (std::uint32_t k = 0; k < range; ++k) {
    const auto port = static_cast<std::uint16_t>(cfg_.ephemeral_first + off);
    if (port_head_[port] == kNone) return port;
    off = off + 1 == range ? 0 : off + 1;
  }
  return std::nullopt;
}

UdpStatus UdpLayer::bind(UdpSocket& s, Ipv4Addr addr, std::uint16_t port) {
  if (!s.open_ || s.closing_) return UdpStatus::closed;
  if (s.is_bound()) return UdpStatus::already_bound;
  if (!addr.is_unspecified() && addr != stack_.config().ip.addr && !stack_.is_local_broadcast(addr) &&
      !addr.is_multicast())
    return UdpStatus::bad_address;
  if (port == 0) {
    const auto p = pick_ephemeral();
    if (!p) return UdpStatus::no_ports;
    port = *p;
  } else if (port_conflict(s, addr, port)) {
    return UdpStatus::addr_in_use;
  }
  s.local_ = UdpEndpoint{addr, port};
  // Newest first: among equally specific unicast matches the latest bind wins.
  s.next_ = port_head_[port];
  port_head_[port] = s.index_;
  return UdpStatus::ok;
}

void UdpLayer::unbind(UdpSocket& s) {
  if (!s.open_ || s.closing_ || !s.is_bound() || delivering_ != 0) return;
  unlink(s);
  s.local_ = {};
  s.remote_.reset();
}

void UdpLayer::unlink(UdpSocket& s) {
  std::uint16_t* link = &port_head_[s.local_.port];
  while (*link != kNone && *link != s.index_) link = &sockets_[*link].next_;
  if (*link == s.index_) *link = s.next_;
  s.next_ = kNone;
}

TimeNs UdpLayer::latest_time() const {
  const TimeNs t = stack_.timers().now();
  return igmp_ ? std::max(t, igmp_->last_time()) : t;
}

UdpStatus UdpLayer::set_filter(UdpSocket& s, Ipv4Addr group, FilterMode mode, std::span<const Ipv4Addr> sources,
                               TimeNs now) {
  if (!s.open_ || s.closing_) return UdpStatus::closed;
  if (!group.is_multicast()) return UdpStatus::not_multicast;
  if (!igmp_) return UdpStatus::no_igmp;
  return from_membership(igmp_->set_filter(s.igmp_id(), group, mode, sources, now));
}

void UdpLayer::close(UdpSocket& s, TimeNs now) {
  if (!s.open_ || s.closing_) return;
  // Leave at once, even when the release waits for a delivery to finish:
  // the state-change report goes out now, and the socket takes nothing more.
  if (igmp_) igmp_->close_socket(s.igmp_id(), now);
  if (delivering_ != 0) {
    // A callback closed it while we walk a port list: take it out of
    // delivery now, out of the lists when the walk is over.
    s.closing_ = true;
    ++pending_closes_;
    return;
  }
  release(s);
}

void UdpLayer::release(UdpSocket& s) {
  s.drain();
  if (s.is_bound()) unlink(s);
  s.open_ = false;
  s.closing_ = false;
  s.reuse_ = false;
  s.mc_loop_ = false;
  s.mc_ttl_ = 1;
  s.local_ = {};
  s.remote_.reset();
  s.error_.reset();
  s.head_ = 0;
  s.readable_fn_ = nullptr;
  s.readable_ctx_ = nullptr;
  s.error_fn_ = nullptr;
  s.error_ctx_ = nullptr;
  s.stats_ = {};
  s.next_ = free_head_;
  free_head_ = s.index_;
  --open_count_;
}

void UdpLayer::release_closed() {
  if (pending_closes_ == 0) return;
  for (std::size_t i = 0; i < cfg_.max_sockets && pending_closes_ != 0; ++i) {
    if (sockets_[i].closing_) {
      release(sockets_[i]);
      --pending_closes_;
    }
  }
}

// --- Output -----------------------------------------------------------------

UdpStatus UdpLayer::send_copy(UdpSocket& s, Bytes data, UdpEndpoint dst, TimeNs now) {
  if (!s.open_ || s.closing_) return UdpStatus::closed;
  if (dst.addr.is_unspecified() || dst.port == 0) return UdpStatus::bad_address;
  if (data.size() > max_payload()) return UdpStatus::too_big;
  if (!s.is_bound()) {
    const UdpStatus st = bind(s, Ipv4Addr{}, 0);
    if (st != UdpStatus::ok) return st;
  }
  Packet pkt = Packet::alloc(stack_.pool());
  if (!pkt) {
    stack_.counters().inc(StackCounter::mbuf_alloc_failed);
    return UdpStatus::no_mbuf;
  }
  const MutBytes buf = pkt.append(kUdpHeaderLen + data.size());
  if (buf.empty()) return UdpStatus::too_big;  // the pool's data room is smaller than the MTU
  if (!data.empty()) std::memcpy(buf.data() + kUdpHeaderLen, data.data(), data.size());
  return output(s, std::move(pkt), dst, now);
}

UdpStatus UdpLayer::send_zero_copy(UdpSocket& s, Packet& pkt, UdpEndpoint dst, TimeNs now) {
  if (!s.open_ || s.closing_) return UdpStatus::closed;
  if (dst.addr.is_unspecified() || dst.port == 0) return UdpStatus::bad_address;
  if (!pkt) return UdpStatus::no_mbuf;
  rte_mbuf* m = pkt.get();
  if (!pkt.contiguous()) return UdpStatus::not_contiguous;
  // Headers are written into the headroom in place. If the buffer is shared
  // (a multicast clone, or a direct mbuf that clones still point into), that
  // would scribble over bytes another holder may be transmitting.
  if (RTE_MBUF_CLONED(m) || rte_mbuf_refcnt_read(m) != 1 ||
      (RTE_MBUF_HAS_EXTBUF(m) && rte_mbuf_ext_refcnt_read(m->shinfo) != 1))
    return UdpStatus::shared_mbuf;
  if (pkt.len() > max_payload()) return UdpStatus::too_big;
  if (rte_pktmbuf_headroom(m) < Stack::kHeaderRoom + kUdpHeaderLen) return UdpStatus::no_headroom;
  if (!s.is_bound()) {
    const UdpStatus st = bind(s, Ipv4Addr{}, 0);
    if (st != UdpStatus::ok) return st;
  }
  pkt.prepend(kUdpHeaderLen);  // cannot fail: headroom checked
  // A received packet sent back must not carry its RX flags into TX offload
  // requests; keep only the flag that says the buffer is external.
  m->ol_flags &= RTE_MBUF_F_EXTERNAL;
  return output(s, std::move(pkt), dst, now);
}

// `pkt.data()` is the UDP header (not yet written) followed by the payload.
UdpStatus UdpLayer::output(UdpSocket& s, Packet&& pkt, UdpEndpoint dst, TimeNs now) {
  const MutBytes d = pkt.data();
  const std::size_t payload_len = d.size() - kUdpHeaderLen;
  // The pseudo-header's source is the address ip_output() will write.
  const bool offload = stack_.caps().tx_udp_cksum;
  wire::UdpRepr{s.local_.port, dst.port}.emit(d, stack_.config().ip.addr, dst.addr,
                                               Bytes{d}.subspan(kUdpHeaderLen), !offload);
  if (offload) {
    // DPDK's L4 checksum offload contract: the pseudo-header sum in the field
    // (emit() put it there), TX_IPV4 and the header lengths. l2_len is set
    // by the stack when it frames the packet, l3_len here because ip_output()
    // only sets it when the IP checksum is offloaded too.
    rte_mbuf* m = pkt.get();
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
    m->l3_len = wire::kIpv4MinHeaderLen;
    m->l4_len = kUdpHeaderLen;
  }
  Ipv4TxOptions opt;
  Packet loop;
  if (dst.addr.is_multicast()) {
    opt.ttl = s.mc_ttl_;
    // Loopback: an indirect clone of the datagram (UDP header and payload,
    // which framing below does not touch: it writes into the headroom in
    // front of them), delivered once the original is on its way.
    if (s.mc_loop_) {
      loop = Packet{rte_pktmbuf_clone(pkt.get(), stack_.pool())};
      if (!loop) stack_.counters().inc(StackCounter::udp_drop_no_mbuf);
    }
  }
  const UdpEndpoint from{stack_.config().ip.addr, s.local_.port};
  if (!stack_.ip_output(std::move(pkt), dst.addr, wire::ipproto::kUdp, now, opt)) {
    ++s.stats_.tx_dropped;
    return UdpStatus::dropped;
  }
  ++s.stats_.tx_datagrams;
  s.stats_.tx_bytes += payload_len;
  stack_.counters().inc(StackCounter::udp_tx_datagrams);
  if (loop) {
    loop.consume_front(kUdpHeaderLen);
    ++s.stats_.tx_looped;
    stack_.counters().inc(StackCounter::udp_tx_multicast_loop);
    // As if received: the interface filter first (as ip_input's stack did),
    // then every member socket on the port (the sender too, if it joined).
    ++delivering_;
    if (!igmp_ || dst.addr == kAllSystems || igmp_->accepts(dst.addr, from.addr, wire::ipproto::kUdp))
      deliver_multi(std::move(loop), from, dst.addr, dst.port, now);
    else
      stack_.counters().inc(StackCounter::ipv4_drop_multicast_not_joined);
    --delivering_;
    if (delivering_ == 0) release_closed();
  }
  return UdpStatus::ok;
}

// --- Input ------------------------------------------------------------------

// The fast path: parse (checksum unless the NIC vouched for it), move data()
// to the payload once, then find the socket(s). A unicast datagram touches
// one port list; nothing is copied; only multi-socket delivery allocates
// (indirect mbufs, from the mempool).
void UdpLayer::ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) {
  StackCounters& ctr = stack_.counters();
  // GOOD: the NIC verified it. NONE: the data is known intact but the field
  // was never filled in (virtio). BAD is re-checked in software: a NIC may
  // flag a zero ("no checksum") field that RFC 768 lets us accept.
  const std::uint64_t l4f = pkt.get()->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
  const bool verified =
      stack_.caps().rx_l4_cksum && (l4f == RTE_MBUF_F_RX_L4_CKSUM_GOOD || l4f == RTE_MBUF_F_RX_L4_CKSUM_NONE);
  const auto udp = wire::UdpDatagram::parse(ip.payload(), ip.src(), ip.dst(), !verified);
  if (!udp) {
    switch (udp.error()) {
      case ParseError::truncated: ctr.inc(StackCounter::udp_drop_truncated); break;
      case ParseError::bad_checksum: ctr.inc(StackCounter::udp_drop_bad_checksum); break;
      default: ctr.inc(StackCounter::udp_drop_bad_length); break;
    }
    return;
  }
  ctr.inc(StackCounter::udp_rx_datagrams);
  const UdpEndpoint from{ip.src(), udp->src_port()};
  const Ipv4Addr to = ip.dst();
  const std::uint16_t port = udp->dst_port();
  // data() to the payload; cut whatever the IP payload carried after the UDP
  // length. The views stay valid: the bytes do not move.
  const Bytes payload = udp->payload();
  pkt.consume_front(static_cast<std::size_t>(payload.data() - pkt.data().data()));
  if (pkt.len() > payload.size()) pkt.trim_back(pkt.len() - payload.size());

  ++delivering_;
  // The stack hands us only datagrams to our address, a local broadcast
  // address or a multicast group.
  if (to == stack_.config().ip.addr)
    deliver_unicast(std::move(pkt), from, to, ip, port, now);
  else
    deliver_multi(std::move(pkt), from, to, port, now);
  --delivering_;
  if (delivering_ == 0) release_closed();
}

bool UdpLayer::matches(const UdpSocket& s, UdpEndpoint from, Ipv4Addr to) const {
  if (s.closing_ || !s.accepts(to, from.addr)) return false;
  return !s.remote_ || *s.remote_ == from;
}

// One socket: the most specific match (connected beats unconnected, a
// specific local address beats the wildcard; ties go to the latest bind).
// Nobody: ICMP port unreachable (RFC 1122 §4.1.3.1), rate limited by the stack.
void UdpLayer::deliver_unicast(Packet&& pkt, UdpEndpoint from, Ipv4Addr to, const wire::Ipv4Packet& ip,
                               std::uint16_t port, TimeNs now) {
  UdpSocket* best = nullptr;
  int best_score = -1;
  for (std::uint16_t i = port_head_[port]; i != kNone; i = sockets_[i].next_) {
    UdpSocket& s = sockets_[i];
    if (!matches(s, from, to)) continue;
    const int score = (s.remote_ ? 2 : 0) + (s.local_.addr.is_unspecified() ? 0 : 1);
    if (score > best_score) {
      best = &s;
      best_score = score;
    }
  }
  if (!best) {
    stack_.counters().inc(StackCounter::udp_drop_no_socket);
    stack_.send_icmp_error(ip, wire::icmp_type::kDestUnreachable, wire::icmp_unreach::kPort, now);
    return;
  }
  enqueue(*best, std::move(pkt), from, to, now);
}

// Every socket on the port that accepts the destination gets the datagram
// (the sockets convention for multicast and broadcast). Each but the last
// gets an indirect clone, so the payload exists once however many sockets
// read it. A full queue is skipped before cloning, so it costs no mbuf. No
// ICMP error: RFC 1122 §3.2.2 forbids them about broadcasts and multicasts.
void UdpLayer::deliver_multi(Packet&& pkt, UdpEndpoint from, Ipv4Addr to, std::uint16_t port, TimeNs now) {
  StackCounters& ctr = stack_.counters();
  const std::size_t len = pkt.len();
  UdpSocket* prev = nullptr;
  bool any = false;
  for (std::uint16_t i = port_head_[port]; i != kNone; i = sockets_[i].next_) {
    UdpSocket& s = sockets_[i];
    if (!matches(s, from, to)) continue;
    any = true;
    if (!s.has_room(len)) {
      ++s.stats_.rx_drop_queue_full;
      ctr.inc(StackCounter::udp_drop_queue_full);
      continue;
    }
    if (prev) {
      rte_mbuf* c = rte_pktmbuf_clone(pkt.get(), stack_.pool());
      if (c) {
        enqueue(*prev, Packet{c}, from, to, now);
      } else {
        ++prev->stats_.rx_drop_no_mbuf;
        ctr.inc(StackCounter::udp_drop_no_mbuf);
      }
    }
    prev = &s;
  }
  if (prev) {
    enqueue(*prev, std::move(pkt), from, to, now);
  } else if (!any) {
    ctr.inc(StackCounter::udp_drop_no_socket_multi);
  }
}

void UdpLayer::enqueue(UdpSocket& s, Packet&& pkt, UdpEndpoint from, Ipv4Addr to, TimeNs now) {
  StackCounters& ctr = stack_.counters();
  if (s.closing_) {  // closed by an earlier socket's callback during this delivery
    ctr.inc(StackCounter::udp_drop_no_socket_multi);
    return;
  }
  const std::size_t len = pkt.len();
  if (!s.has_room(len)) {
    ++s.stats_.rx_drop_queue_full;
    ctr.inc(StackCounter::udp_drop_queue_full);
    return;
  }
  const std::size_t tail = (std::size_t{s.head_} + s.count_) % s.cap_;
  s.ring_[tail] = UdpSocket::RxSlot{pkt.release(), from, to};
  ++s.count_;
  s.bytes_ += static_cast<std::uint32_t>(len);
  ++s.stats_.rx_datagrams;
  s.stats_.rx_bytes += len;
  ctr.inc(StackCounter::udp_rx_delivered);
  if (s.readable_fn_) s.readable_fn_(s, now, s.readable_ctx_);
}

// An ICMP error quoting a datagram we sent: our IP header (the stack checked
// that 20 bytes are there) and at least the 8 bytes of our UDP header (RFC
// 792). The 4-tuple in the quote picks the socket, as for input with the
// roles swapped; a connected socket only hears about its own peer. RFC 1122
// §4.1.3.3 says UDP passes every ICMP error up, so unconnected sockets get
// them too (Linux does that only with IP_RECVERR); the error names the peer.
void UdpLayer::icmp_error(std::uint8_t type, std::uint8_t code, Bytes quoted, TimeNs now) {
  StackCounters& ctr = stack_.counters();
  const std::size_t ihl = quoted.empty() ? 0 : static_cast<std::size_t>(quoted[0] & 0x0f) * 4;
  if (ihl < wire::kIpv4MinHeaderLen || quoted.size() < ihl + kUdpHeaderLen) {
    ctr.inc(StackCounter::udp_drop_icmp_truncated);
    return;
  }
  const Ipv4Addr src{load_be32(quoted, wire::Ipv4Packet::kSrcOff)};
  const UdpEndpoint remote{Ipv4Addr{load_be32(quoted, wire::Ipv4Packet::kDstOff)},
                           load_be16(quoted, ihl + wire::UdpDatagram::kDstPortOff)};
  const std::uint16_t port = load_be16(quoted, ihl + wire::UdpDatagram::kSrcPortOff);
  UdpSocket* best = nullptr;
  if (src == stack_.config().ip.addr) {
    for (std::uint16_t i = port_head_[port]; i != kNone; i = sockets_[i].next_) {
      UdpSocket& s = sockets_[i];
      if (s.closing_ || (s.remote_ && *s.remote_ != remote)) continue;
      if (!best || (s.remote_ && !best->remote_)) best = &s;
    }
  }
  if (!best) {
    ctr.inc(StackCounter::udp_drop_icmp_no_socket);
    return;
  }
  ctr.inc(StackCounter::udp_rx_icmp_error);
  const UdpIcmpError err{type, code, remote};
  best->error_ = err;
  ++best->stats_.icmp_errors;
  if (best->error_fn_) {
    ++delivering_;
    best->error_fn_(*best, err, now, best->error_ctx_);
    --delivering_;
    if (delivering_ == 0) release_closed();
  }
}

}  // namespace ustack
