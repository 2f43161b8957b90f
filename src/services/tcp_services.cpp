#include "services/tcp_services.hpp"

#include <algorithm>

#include "services/pattern.hpp"

namespace ustack::services {

const char* to_string(ServiceKind k) {
  switch (k) {
    case ServiceKind::echo: return "echo";
    case ServiceKind::discard: return "discard";
    case ServiceKind::source: return "source";
  }
  return "?";
}

const char* to_string(TcpGet::Outcome o) {
  switch (o) {
    case TcpGet::Outcome::running: return "running";
    case TcpGet::Outcome::ok: return "ok";
    case TcpGet::Outcome::no_connection: return "no connection slot or source port";
    case TcpGet::Outcome::refused: return "refused";
    case TcpGet::Outcome::reset: return "reset";
    case TcpGet::Outcome::timed_out: return "timed out";
    case TcpGet::Outcome::short_count: return "short";
    case TcpGet::Outcome::long_count: return "more bytes than expected";
    case TcpGet::Outcome::mismatch: return "pattern mismatch";
  }
  return "?";
}

// --- services ------------------------------------------------------------------

TcpService::TcpService(tcp::TcpLayer& tcp, ServiceKind kind, std::uint16_t port, std::uint64_t source_bytes)
    : tcp_(tcp), kind_(kind), port_(port), source_bytes_(source_bytes), slots_(tcp.capacity()) {
  Pattern::init();
  // A backlog as deep as the connection pool: handshakes beyond it get SYN
  // cookies, which lose window scaling without timestamps.
  listener_ = tcp.listen(Ipv4Addr{}, port, tcp.capacity(), this, nullptr, tcp.config().defaults);
}

TcpService::~TcpService() {
  // The layer may outlive us only in tests; connections still open keep a
  // handler pointer to us, so take it back.
  for (auto& s : slots_)
    if (s.in_use) tcp_.set_handler(s.id, nullptr, nullptr);
}

TcpService::Slot* TcpService::slot_of(TcpConnId c) {
  if (c.index >= slots_.size()) return nullptr;
  Slot& s = slots_[c.index];
  return s.in_use && s.id == c ? &s : nullptr;
}

void TcpService::on_accept(tcp::TcpLayer& t, TcpListenerId, TcpConnId c, TimeNs now) {
  if (c.index >= slots_.size()) {
    t.abort(c, now);  // cannot happen: slots_ has one entry per connection slot
    return;
  }
  Slot& s = slots_[c.index];
  s.in_use = true;
  s.id = c;
  s.pending.reset();
  s.sent = 0;
  ctr_.connections.add();
  ctr_.active.add();
  if (kind_ == ServiceKind::source) source(t, s, now);
}

void TcpService::on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  Slot* s = slot_of(c);
  if (!s) return;
  switch (kind_) {
    case ServiceKind::echo: echo(t, *s, now); break;
    case ServiceKind::discard:
      drain(t, *s, now);
      if (t.peer_closed(c)) finish(t, *s, now);
      break;
    case ServiceKind::source:
      // Still sending (all sent means closed already): what the client says
      // is read and dropped, so that the close that follows is not a reset.
      drain(t, *s, now);
      break;
  }
}

void TcpService::on_writable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  Slot* s = slot_of(c);
  if (!s) return;
  if (kind_ == ServiceKind::echo) echo(t, *s, now);
  else if (kind_ == ServiceKind::source) source(t, *s, now);
}

void TcpService::on_closed(tcp::TcpLayer&, TcpConnId c, TcpError err, TimeNs) {
  Slot* s = slot_of(c);
  if (!s) return;
  s->pending.reset();
  s->in_use = false;
  ctr_.active.sub();
  (err == TcpError::none ? ctr_.completed : ctr_.failed).add();
}

// Echo, zero-copy: the received mbuf goes back out as it is. One mbuf at a
// time is taken from the receive queue; while the send buffer cannot take
// it, nothing more is read, so the receive queue fills, the advertised
// window closes, and the peer waits. on_writable brings us back here.
void TcpService::echo(tcp::TcpLayer& t, Slot& s, TimeNs now) {
  for (;;) {
    if (s.pending && !flush_pending(t, s, now)) return;
    Packet p = t.read_zero_copy(s.id, now);
    if (!p) break;
    ctr_.bytes_in.add(p.len());
    s.pending = std::move(p);
  }
  if (t.peer_closed(s.id)) finish(t, s, now);
}

bool TcpService::flush_pending(tcp::TcpLayer& t, Slot& s, TimeNs now) {
  const std::size_t len = s.pending.len();
  if (t.send_zero_copy(s.id, s.pending, now)) {
    ctr_.bytes_out.add(len);
    return true;
  }
  // Not all of it fits: copy the part that does (a send buffer smaller than
  // a segment would otherwise never take it). Received mbufs are single
  // segments (the stack drops chained frames), so data() is all of it.
  const std::size_t n = t.send(s.id, Bytes{s.pending.data()}, now);
  if (n) {
    ctr_.bytes_out.add(n);
    s.pending.consume_front(n);
  }
  if (s.pending.len() == 0) {
    s.pending.reset();
    return true;
  }
  return false;
}

void TcpService::drain(tcp::TcpLayer& t, Slot& s, TimeNs now) {
  while (Packet p = t.read_zero_copy(s.id, now)) ctr_.bytes_in.add(p.len());
}

void TcpService::source(tcp::TcpLayer& t, Slot& s, TimeNs now) {
  while (s.sent < source_bytes_) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kPatternMaxChunk, source_bytes_ - s.sent));
    const std::size_t n = t.send(s.id, Pattern::chunk(s.sent, want), now);
    s.sent += n;
    ctr_.bytes_out.add(n);
    if (n < want) return;  // the send buffer is full: on_writable resumes
  }
  drain(t, s, now);
  finish(t, s, now);
}

void TcpService::finish(tcp::TcpLayer& t, Slot& s, TimeNs now) {
  // close(): FIN after what is queued; the handle ends here (no on_closed).
  s.in_use = false;
  s.pending.reset();
  ctr_.active.sub();
  ctr_.completed.add();
  t.close(s.id, now);
}

// --- client ----------------------------------------------------------------------

TcpGet::TcpGet(Ipv4Addr dst, std::uint16_t port, std::optional<std::uint64_t> expect, TimeNs timeout)
    : dst_(dst), port_(port), expect_(expect), timeout_(timeout) {
  Pattern::init();
}

void TcpGet::start(tcp::TcpLayer& t, TimeNs now) {
  start_ = now;
  deadline_ = now + timeout_;
  TcpConnOptions o = t.config().defaults;
  o.connect_timeout_ns = timeout_;
  conn_ = t.connect(dst_, port_, this, nullptr, o, now);
  if (!conn_) end(Outcome::no_connection, now);
}

void TcpGet::poll(tcp::TcpLayer& t, TimeNs now) {
  if (now < deadline_ || done()) return;
  if (conn_) t.abort(*conn_, now);  // no on_closed follows an abort we asked for
  conn_.reset();
  end(Outcome::timed_out, now);
}

void TcpGet::on_connected(tcp::TcpLayer&, TcpConnId, TimeNs now) { res_.connect_time = now - start_; }

void TcpGet::on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
  while (Packet p = t.read_zero_copy(c, now)) {
    const std::span<const std::uint8_t> data{p.data()};
    const std::size_t bad = Pattern::mismatch(res_.bytes, data);
    if (bad != data.size()) {
      res_.mismatch_at = res_.bytes + bad;
      res_.bytes += data.size();
      t.abort(c, now);
      conn_.reset();
      end(Outcome::mismatch, now);
      return;
    }
    res_.bytes += data.size();
    progress_.add(data.size());
    if (expect_ && res_.bytes > *expect_) {
      t.abort(c, now);
      conn_.reset();
      end(Outcome::long_count, now);
      return;
    }
  }
  if (t.peer_closed(c)) {
    if (auto st = t.stats(c)) res_.conn = *st;
    t.close(c, now);
    conn_.reset();
    end(expect_ && res_.bytes != *expect_ ? Outcome::short_count : Outcome::ok, now);
  }
}

void TcpGet::on_closed(tcp::TcpLayer&, TcpConnId, TcpError err, TimeNs now) {
  conn_.reset();
  switch (err) {
    case TcpError::refused: end(Outcome::refused, now); break;
    case TcpError::timed_out: end(Outcome::timed_out, now); break;
    case TcpError::reset:
    case TcpError::aborted: end(Outcome::reset, now); break;
    case TcpError::none:
      end(expect_ && res_.bytes != *expect_ ? Outcome::short_count : Outcome::ok, now);
      break;
  }
}

void TcpGet::end(Outcome o, TimeNs now) {
  if (done()) return;
  res_.outcome = o;
  res_.elapsed = now - start_;
  done_.store(true, std::memory_order_release);
}

}  // namespace ustack::services
