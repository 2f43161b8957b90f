// UDP services on an lcore. See udp_services.hpp.
#include "services/udp_services.hpp"

#include <algorithm>

#include "services/pattern.hpp"

namespace ustack::services {

namespace {

UdpSocket* open_bound(UdpLayer& udp, std::uint16_t port) {
  UdpSocket* s = udp.open();
  if (!s) return nullptr;
  s->set_reuse(true);
  if (s->bind(Ipv4Addr{}, port) != UdpStatus::ok) {
    s->close();
    return nullptr;
  }
  return s;
}

}  // namespace

// --- echo -------------------------------------------------------------------

UdpEcho::UdpEcho(UdpLayer& udp, std::uint16_t port) : port_(port), sock_(open_bound(udp, port)) {
  if (sock_) sock_->on_readable(&UdpEcho::on_readable, this);
}

UdpEcho::~UdpEcho() {
  if (sock_) sock_->close();
}

void UdpEcho::on_readable(UdpSocket& s, TimeNs now, void* ctx) {
  auto& self = *static_cast<UdpEcho*>(ctx);
  while (auto d = s.recv()) {
    const std::size_t len = d->pkt.len();
    self.ctr_.datagrams_in.add();
    self.ctr_.bytes_in.add(len);
    // The mbuf goes back out as it is; a shared one (a clone: the datagram
    // also went to another socket) is copied instead.
    UdpStatus st = s.send_packet_to(std::move(d->pkt), d->from.addr, d->from.port, now);
    if (st != UdpStatus::ok && st != UdpStatus::dropped && d->pkt)
      st = s.send_to(Bytes{d->pkt.data()}, d->from.addr, d->from.port, now);
    if (st == UdpStatus::ok) {
      self.ctr_.datagrams_out.add();
      self.ctr_.bytes_out.add(len);
    } else {
      self.ctr_.send_failed.add();
    }
  }
  self.queue_drops_.store_max(s.stats().rx_drop_queue_full);
}

// --- join -------------------------------------------------------------------

McastJoin::McastJoin(UdpLayer& udp, Ipv4Addr group, std::uint16_t port, std::optional<Ipv4Addr> source)
    : group_(group), port_(port), source_(source), sock_(open_bound(udp, port)) {
  if (sock_) sock_->on_readable(&McastJoin::on_readable, this);
}

McastJoin::~McastJoin() {
  if (sock_) sock_->close();
}

UdpStatus McastJoin::start(TimeNs now) {
  if (!sock_) return UdpStatus::closed;
  if (!source_) return sock_->join(group_, now);
  const Ipv4Addr src[] = {*source_};
  return sock_->set_source_filter(group_, FilterMode::include, src, now);
}

void McastJoin::stop(TimeNs now) {
  if (!sock_) return;
  sock_->close(now);
  sock_ = nullptr;
}

void McastJoin::on_readable(UdpSocket& s, TimeNs /*now*/, void* ctx) {
  auto& self = *static_cast<McastJoin*>(ctx);
  while (auto d = s.recv()) {
    const Bytes payload = d->pkt.data();
    self.ctr_.datagrams_in.add();
    self.ctr_.bytes_in.add(payload.size());
    const auto h = FeedHeader::parse(payload);
    if (!h) {
      self.ctr_.not_feed.add();
      continue;
    }
    const std::uint64_t missing = self.feed_.missing(), events = self.feed_.gap_events(), late = self.feed_.late();
    self.feed_.on_seq(h->seq);
    self.ctr_.feed.add();
    if (self.feed_.missing() != missing) self.ctr_.missing.add(self.feed_.missing() - missing);
    if (self.feed_.gap_events() != events) self.ctr_.gap_events.add();
    if (self.feed_.late() != late) self.ctr_.late.add();
  }
  self.queue_drops_.store_max(s.stats().rx_drop_queue_full);
}

// --- send -------------------------------------------------------------------

McastSender::McastSender(UdpLayer& udp, Ipv4Addr group, std::uint16_t port, std::uint32_t rate, std::uint16_t size,
                         std::uint8_t ttl, bool loop, TimeNs wall_offset_ns)
    : group_(group), port_(port), rate_(std::max<std::uint32_t>(rate, 1)), size_(size), wall_offset_(wall_offset_ns) {
  if (size_ < kFeedHeaderLen || size_ > udp.max_payload() || size_ > buf_.size()) return;
  sock_ = udp.open();
  if (!sock_) return;
  if (sock_->connect(group_, port_) != UdpStatus::ok) {
    sock_->close();
    sock_ = nullptr;
    return;
  }
  sock_->set_multicast_ttl(ttl);
  sock_->set_multicast_loop(loop);
  // The pattern after the header never changes; only the header is rewritten.
  const auto pat = Pattern::chunk(0, size_);
  std::copy(pat.begin(), pat.end(), buf_.begin());
}

McastSender::~McastSender() {
  if (sock_) sock_->close();
}

void McastSender::start(TimeNs now) {
  started_ = true;
  start_ = now;
  slot_ = 0;
}

void McastSender::poll(TimeNs now) {
  if (!sock_ || !started_ || now < slot_time(slot_)) return;
  const MutBytes buf{buf_.data(), size_};
  unsigned n = 0;
  while (n < kMaxBurst && now >= slot_time(slot_)) {
    FeedHeader{seq_, now + wall_offset_}.emit(buf);
    const UdpStatus st = sock_->send(Bytes{buf}, now);
    ++slot_;
    ++n;
    if (st == UdpStatus::ok) {
      ++seq_;
      ctr_.datagrams_out.add();
      ctr_.bytes_out.add(size_);
    } else {
      // Not sent (no mbuf): the slot passes, the sequence does not, so the
      // receivers see no gap for a datagram that never left.
      ctr_.send_failed.add();
    }
  }
  // Still behind after a full burst: skip to now rather than catch up.
  if (now >= slot_time(slot_) && now - slot_time(slot_) > kNsPerSec / 10) {
    const TimeNs behind = now - start_;
    slot_ = (behind / kNsPerSec) * rate_ + (behind % kNsPerSec) * rate_ / kNsPerSec;
  }
}

}  // namespace ustack::services
