// The per-lcore host stack: Ethernet demux, ARP, IPv4 in/out, ICMP.
//
// Read with: RFC 826 (ARP), RFC 5227 §2.3 (announcements), RFC 791 (IPv4),
// RFC 1122 §3.2 (host requirements: which datagrams to accept, which ICMP
// errors never to send), RFC 792 (ICMP), RFC 1812 §4.3.2.8 (rate limiting).
//
// The receive path is run to completion: one frame goes in, is parsed in
// place, and either becomes a counted drop, is handed to an upper layer, or
// is turned around in place (ARP and echo replies reuse the request's mbuf,
// so answering costs no allocation).
#include "net/stack.hpp"

#include <algorithm>

#include "wire/arp.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace ustack {

using wire::ArpOp;
using wire::ArpPacket;
using wire::ArpRepr;
using wire::EthernetFrame;
using wire::EthernetRepr;
using wire::IcmpPacket;
using wire::Ipv4Packet;
using wire::Ipv4Repr;

namespace {
constexpr Ipv4Addr kAllSystems{224, 0, 0, 1};    // RFC 1112 §4: every host is a member
constexpr std::uint64_t kTokenUnit = kNsPerSec;  // one ICMP error costs one second of refill at 1/s
constexpr TimeNs kMaxRefillGap = 1000 * kNsPerSec;
}  // namespace

Stack::Stack(const StackConfig& cfg, rte_mempool* pool, const DeviceCaps& caps, PacketSink& out, TimeNs now)
    : cfg_(cfg),
      pool_(pool),
      caps_(caps),
      out_(out),
      timers_(100 * kNsPerUs, 4096, now),
      arp_(*this, cfg.arp),
      icmp_tokens_(std::uint64_t{cfg.icmp_error_burst} * kTokenUnit),
      icmp_last_refill_(now) {
  if (cfg_.mac.is_zero()) cfg_.mac = caps.mac;
}

void Stack::start(TimeNs now) {
  if (!cfg_.gratuitous_arp_on_start) return;
  // RFC 5227 §2.3 announcement: a request with sender = target = our address.
  send_arp(ArpOp::request, MacAddr::broadcast(), MacAddr{}, cfg_.ip.addr, now);
  ctr_.inc(StackCounter::arp_tx_gratuitous);
}

void Stack::rx(rte_mbuf* m, TimeNs now) {
  Packet pkt{m};
  ctr_.inc(StackCounter::eth_rx_packets);
  ctr_.inc(StackCounter::eth_rx_bytes, pkt.len());
  // Every PMD we configure delivers a standard-MTU frame in one segment. A
  // chained frame would need a gather copy to be parsed; it is refused.
  if (!pkt.contiguous()) {
    ctr_.inc(StackCounter::eth_drop_non_contiguous);
    return;
  }
  auto eth = EthernetFrame::parse(pkt.data());
  if (!eth) {
    ctr_.inc(StackCounter::eth_drop_truncated);
    return;
  }
  const MacAddr dst = eth->dst();
  if (dst != cfg_.mac && !dst.is_multicast()) {  // multicast includes broadcast
    ctr_.inc(StackCounter::eth_drop_not_for_us);
    return;
  }
  // 802.1Q: VID 0 is a priority tag, i.e. untagged for membership purposes.
  auto vid = eth->vlan_id();
  if (vid == std::uint16_t{0}) vid.reset();
  if (vid != cfg_.vlan) {
    ctr_.inc(StackCounter::eth_drop_vlan_mismatch);
    return;
  }
  switch (eth->ethertype()) {
    case wire::ethertype::kIpv4:
      ipv4_input(std::move(pkt), eth->header_len(), now);
      return;
    case wire::ethertype::kArp:
      arp_input(std::move(pkt), eth->payload(), now);
      return;
    default:
      ctr_.inc(StackCounter::eth_drop_unknown_ethertype);
      return;
  }
}

// --- ARP ------------------------------------------------------------------

void Stack::arp_input(Packet&& pkt, Bytes payload, TimeNs now) {
  auto arp = ArpPacket::parse(payload);
  if (!arp) {
    switch (arp.error()) {
      case ParseError::truncated: ctr_.inc(StackCounter::arp_drop_truncated); break;
      case ParseError::unsupported: ctr_.inc(StackCounter::arp_drop_unsupported); break;
      default: ctr_.inc(StackCounter::arp_drop_malformed); break;
    }
    return;
  }
  const bool request = arp->op() == ArpOp::request;
  ctr_.inc(request ? StackCounter::arp_rx_request : StackCounter::arp_rx_reply);
  const MacAddr sha = arp->sender_mac();
  const Ipv4Addr spa = arp->sender_ip();
  const Ipv4Addr tpa = arp->target_ip();
  if (sha.is_multicast() || sha.is_zero() || sha == cfg_.mac) {
    ctr_.inc(StackCounter::arp_drop_malformed);
    return;
  }
  const bool for_us = tpa == cfg_.ip.addr;
  // RFC 826 merge: refresh an existing entry from any ARP; create one only
  // when the sender was talking to us. Probes (spa 0) teach nothing, and we
  // never learn addresses outside the connected subnet.
  if (!spa.is_unspecified() && cfg_.ip.contains(spa) && !is_local_broadcast(spa))
    arp_.update(spa, sha, for_us, now);
  if (!for_us) {
    ctr_.inc(StackCounter::arp_drop_not_for_us);
    return;
  }
  if (!request) return;
  // Answer in place: cut the frame down to the ARP payload and rewrite it.
  const std::size_t l2 = static_cast<std::size_t>(payload.data() - pkt.data().data());
  pkt.consume_front(l2);
  pkt.trim_back(pkt.len() - wire::kArpLen);  // drop link padding
  ArpRepr{ArpOp::reply, cfg_.mac, cfg_.ip.addr, sha, spa}.emit(pkt.data());
  ctr_.inc(StackCounter::arp_tx_reply);
  emit_frame(std::move(pkt), sha, wire::ethertype::kArp, now);
}

void Stack::send_arp(ArpOp op, const MacAddr& eth_dst, const MacAddr& tha, Ipv4Addr tpa, TimeNs now) {
  Packet pkt = Packet::alloc(pool_);
  if (!pkt) {
    ctr_.inc(StackCounter::mbuf_alloc_failed);
    return;
  }
  MutBytes body = pkt.append(wire::kArpLen);
  if (body.empty()) {
    ctr_.inc(StackCounter::tx_drop_no_headroom);
    return;
  }
  ArpRepr{op, cfg_.mac, cfg_.ip.addr, tha, tpa}.emit(body);
  ctr_.inc(op == ArpOp::request ? StackCounter::arp_tx_request : StackCounter::arp_tx_reply);
  emit_frame(std::move(pkt), eth_dst, wire::ethertype::kArp, now);
}

void Stack::emit_frame(Packet&& pkt, const MacAddr& dst_mac, std::uint16_t ethertype, TimeNs now) {
  // The tag straight from the configuration: an optional rebuilt on the
  // stack here was read back as one word before its two stores retired (a
  // store-forwarding stall on every frame sent, ~40% of this function).
  const EthernetRepr eth{dst_mac, cfg_.mac, ethertype, cfg_.vlan};
  MutBytes hdr = pkt.prepend(eth.header_len());
  if (hdr.empty()) {
    ctr_.inc(StackCounter::tx_drop_no_headroom);
    return;
  }
  eth.emit(hdr);
  pkt.get()->l2_len = static_cast<std::uint16_t>(eth.header_len()) & 0x7f;
  out_.emit(std::move(pkt), now);
}

// --- IPv4 -----------------------------------------------------------------

bool Stack::next_hop(Ipv4Addr dst, Ipv4Addr& hop) const {
  if (cfg_.ip.contains(dst)) {
    hop = dst;
    return true;
  }
  if (!cfg_.gateway) return false;
  hop = *cfg_.gateway;
  return true;
}

void Stack::ipv4_input(Packet&& pkt, std::size_t l3_off, TimeNs now) {
  const Bytes l3 = Bytes{pkt.data()}.subspan(l3_off);
  // Trust the NIC's verdict when it gives one; verify in software otherwise.
  const std::uint64_t ipf = pkt.get()->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
  if (caps_.rx_ipv4_cksum && ipf == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
    ctr_.inc(StackCounter::ipv4_drop_bad_checksum);
    return;
  }
  const bool verified = caps_.rx_ipv4_cksum && ipf == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
  auto ip = Ipv4Packet::parse(l3, !verified);
  if (!ip) {
    switch (ip.error()) {
      case ParseError::truncated: ctr_.inc(StackCounter::ipv4_drop_truncated); break;
      case ParseError::bad_version: ctr_.inc(StackCounter::ipv4_drop_bad_version); break;
      case ParseError::bad_header_len: ctr_.inc(StackCounter::ipv4_drop_bad_ihl); break;
      case ParseError::bad_checksum: ctr_.inc(StackCounter::ipv4_drop_bad_checksum); break;
      default: ctr_.inc(StackCounter::ipv4_drop_bad_length); break;
    }
    return;
  }
  ctr_.inc(StackCounter::ipv4_rx_packets);
  const Ipv4Addr src = ip->src();
  const Ipv4Addr dst = ip->dst();
  // RFC 1122 §3.2.1.3: a source that is broadcast or multicast is bogus.
  if (src.is_multicast() || is_local_broadcast(src) || src.is_loopback()) {
    ctr_.inc(StackCounter::ipv4_drop_bad_source);
    return;
  }
  const bool unicast_to_us = dst == cfg_.ip.addr;
  if (!unicast_to_us && !is_local_broadcast(dst) && !dst.is_multicast()) {
    ctr_.inc(StackCounter::ipv4_drop_not_for_us);
    return;
  }
  // A NIC programmed with a MAC list still passes groups that share a MAC
  // (32 groups map to each one) and everything in all-multicast mode: the
  // membership filter (IGMP's interface state) decides.
  if (dst.is_multicast() && mc_filter_ && dst != kAllSystems && !mc_filter_(dst, src, ip->protocol(), mc_filter_ctx_)) {
    ctr_.inc(StackCounter::ipv4_drop_multicast_not_joined);
    return;
  }
  // Fragments are dropped and counted, not reassembled: see docs/architecture.md.
  if (ip->is_fragment()) {
    ctr_.inc(StackCounter::ipv4_drop_fragment);
    return;
  }
  // Cut link-layer padding so upper layers see the datagram's exact length.
  const std::size_t frame_len = l3_off + ip->total_len();
  if (pkt.len() > frame_len) pkt.trim_back(pkt.len() - frame_len);

  const std::uint8_t proto = ip->protocol();
  if (proto == wire::ipproto::kIcmp) {
    icmp_input(std::move(pkt), *ip, l3_off, now);
    return;
  }
  if (ProtocolHandler* h = handlers_[proto]) {
    h->ip_input(std::move(pkt), *ip, now);
    return;
  }
  ctr_.inc(StackCounter::ipv4_drop_unknown_protocol);
  if (unicast_to_us) send_icmp_error(*ip, wire::icmp_type::kDestUnreachable, wire::icmp_unreach::kProtocol, now);
}

bool Stack::ip_output(Packet&& pkt, Ipv4Addr dst, std::uint8_t proto, TimeNs now, const Ipv4TxOptions& opt) {
  const bool broadcast = is_local_broadcast(dst);
  Ipv4Addr hop;  // unicast only
  if (!broadcast && !dst.is_multicast() && !next_hop(dst, hop)) {
    ctr_.inc(StackCounter::ipv4_drop_no_route);
    return false;
  }
  Ipv4Repr ip{cfg_.ip.addr, dst, proto, static_cast<std::uint16_t>(pkt.len()), cfg_.ttl, opt.tos, ip_ident_++, true,
              opt.router_alert};
  if (opt.ttl) ip.ttl = *opt.ttl;
  else if (dst.is_multicast()) ip.ttl = 1;  // RFC 1112 §6.1 default
  MutBytes hdr = pkt.prepend(ip.header_len());
  if (hdr.empty()) {
    ctr_.inc(StackCounter::tx_drop_no_headroom);
    return false;
  }
  ip.emit(hdr, !caps_.tx_ipv4_cksum);
  if (caps_.tx_ipv4_cksum) {
    pkt.get()->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    pkt.get()->l3_len = static_cast<std::uint16_t>(ip.header_len()) & 0x1ff;
  }
  ctr_.inc(StackCounter::ipv4_tx_packets);
  if (broadcast) {
    emit_frame(std::move(pkt), MacAddr::broadcast(), wire::ethertype::kIpv4, now);
    return true;
  }
  if (dst.is_multicast()) {
    emit_frame(std::move(pkt), wire::multicast_mac(dst), wire::ethertype::kIpv4, now);
    return true;
  }
  if (const MacAddr* mac = arp_.lookup(hop, now)) {
    emit_frame(std::move(pkt), *mac, wire::ethertype::kIpv4, now);
    return true;
  }
  return arp_.enqueue(hop, std::move(pkt), now);
}

// --- ICMP -----------------------------------------------------------------

void Stack::icmp_input(Packet&& pkt, const Ipv4Packet& ip, std::size_t l3_off, TimeNs now) {
  auto icmp = IcmpPacket::parse(ip.payload());
  if (!icmp) {
    ctr_.inc(icmp.error() == ParseError::bad_checksum ? StackCounter::icmp_drop_bad_checksum
                                                      : StackCounter::icmp_drop_truncated);
    return;
  }
  switch (icmp->type()) {
    case wire::icmp_type::kEchoRequest: {
      ctr_.inc(StackCounter::icmp_rx_echo_request);
      // RFC 1122 §3.2.1.3: 0.0.0.0 is never a destination, so it gets no reply.
      if (ip.src().is_unspecified()) {
        ctr_.inc(StackCounter::ipv4_drop_bad_source);
        return;
      }
      if (ip.dst() != cfg_.ip.addr && !cfg_.reply_to_broadcast_echo) {
        ctr_.inc(StackCounter::icmp_drop_broadcast_echo);
        return;
      }
      // Turn the request around in place: keep the ICMP message, change its
      // type, patch the checksum incrementally (RFC 1624), and let
      // ip_output() write fresh IPv4 and Ethernet headers in front of it
      // (the request's IP options are not echoed).
      const Ipv4Addr peer = ip.src();
      const std::uint8_t tos = ip.tos();
      pkt.consume_front(l3_off + ip.header_len());
      MutBytes msg = pkt.data();
      const std::uint16_t old_word = load_be16(msg, IcmpPacket::kTypeOff);
      const std::uint16_t new_word = static_cast<std::uint16_t>(wire::icmp_type::kEchoReply << 8 | icmp->code());
      store8(msg, IcmpPacket::kTypeOff, wire::icmp_type::kEchoReply);
      store_be16(msg, IcmpPacket::kChecksumOff,
                 wire::checksum_update16(load_be16(msg, IcmpPacket::kChecksumOff), old_word, new_word));
      pkt.get()->ol_flags = 0;  // received flags must not leak into TX offload requests
      if (ip_output(std::move(pkt), peer, wire::ipproto::kIcmp, now, tos))
        ctr_.inc(StackCounter::icmp_tx_echo_reply);
      return;
    }
    case wire::icmp_type::kEchoReply:
      ctr_.inc(StackCounter::icmp_rx_echo_reply);
      if (echo_fn_) echo_fn_(EchoReply{ip.src(), icmp->echo_ident(), icmp->echo_seq(), icmp->body()}, now, echo_ctx_);
      return;
    default:
      break;
  }
  if (icmp->is_error()) {
    ctr_.inc(StackCounter::icmp_rx_error);
    // Hand the quote to the protocol that sent the offending datagram.
    const Bytes quoted = icmp->body();
    auto inner = quoted.size() >= wire::kIpv4MinHeaderLen ? quoted[Ipv4Packet::kProtoOff] : 0;
    if (quoted.size() >= wire::kIpv4MinHeaderLen && handlers_[inner])
      handlers_[inner]->icmp_error(icmp->type(), icmp->code(), quoted, now);
    return;
  }
  ctr_.inc(StackCounter::icmp_drop_unknown_type);
}

bool Stack::icmp_error_allowed(TimeNs now) {
  const std::uint64_t cap = std::uint64_t{cfg_.icmp_error_burst} * kTokenUnit;
  const TimeNs gap = std::min<TimeNs>(now - icmp_last_refill_, kMaxRefillGap);
  icmp_last_refill_ = now;
  icmp_tokens_ = std::min(cap, icmp_tokens_ + gap * cfg_.icmp_errors_per_sec);
  if (icmp_tokens_ < kTokenUnit) return false;
  icmp_tokens_ -= kTokenUnit;
  return true;
}

void Stack::send_icmp_error(const Ipv4Packet& ip, std::uint8_t type, std::uint8_t code, TimeNs now) {
  // RFC 1122 §3.2.2: never about an ICMP error, a datagram to a broadcast or
  // multicast address, a non-initial fragment, or a source that does not
  // name a single host.
  const Ipv4Addr src = ip.src();
  if (is_local_broadcast(ip.dst()) || ip.dst().is_multicast()) return;
  if (src.is_unspecified() || src.is_multicast() || is_local_broadcast(src)) return;
  if (ip.frag_offset() != 0) return;
  if (ip.protocol() == wire::ipproto::kIcmp) {
    const Bytes p = ip.payload();
    if (p.empty()) return;
    const std::uint8_t t = p[0];
    if (t != wire::icmp_type::kEchoRequest && t != wire::icmp_type::kEchoReply) return;
  }
  if (!icmp_error_allowed(now)) {
    ctr_.inc(StackCounter::icmp_error_rate_limited);
    return;
  }
  Packet pkt = Packet::alloc(pool_);
  if (!pkt) {
    ctr_.inc(StackCounter::mbuf_alloc_failed);
    return;
  }
  const wire::IcmpErrorRepr err{type, code, 0, wire::IcmpErrorRepr::quote_of(ip.bytes(), ip.header_len())};
  MutBytes body = pkt.append(err.buffer_len());
  if (body.empty()) {
    ctr_.inc(StackCounter::tx_drop_no_headroom);
    return;
  }
  err.emit(body);
  if (ip_output(std::move(pkt), src, wire::ipproto::kIcmp, now)) ctr_.inc(StackCounter::icmp_tx_error);
}

bool Stack::send_echo_request(Ipv4Addr dst, std::uint16_t ident, std::uint16_t seq, Bytes data, TimeNs now) {
  Packet pkt = Packet::alloc(pool_);
  if (!pkt) {
    ctr_.inc(StackCounter::mbuf_alloc_failed);
    return false;
  }
  const wire::IcmpEchoRepr echo{true, ident, seq, data};
  MutBytes body = pkt.append(echo.buffer_len());
  if (body.empty()) {
    ctr_.inc(StackCounter::tx_drop_no_headroom);
    return false;
  }
  echo.emit(body);
  if (!ip_output(std::move(pkt), dst, wire::ipproto::kIcmp, now)) return false;
  ctr_.inc(StackCounter::icmp_tx_echo_request);
  return true;
}

}  // namespace ustack
