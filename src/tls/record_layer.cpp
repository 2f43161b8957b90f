// See record_layer.hpp for the RFC sections.
#include "tls/record_layer.hpp"

#include <algorithm>

namespace ustack::tls {

namespace {
std::size_t idx(Level l) { return static_cast<std::size_t>(l); }
// A server that refuses 0-RTT skips at most this many undecryptable bytes
// (§4.2.10 bounds it by max_early_data_size, which a refusing server may not
// have configured; 2^16 covers any client we interoperate with).
constexpr std::size_t kMaxSkippedEarly = 1 << 16;
}  // namespace

RecordConnection::RecordConnection(const ClientConfig& cfg, Hooks hooks)
    : engine_(cfg, *this, std::move(hooks)), client_(true) {
  max_early_ = cfg.session ? cfg.session->max_early_data : 0;
}
RecordConnection::RecordConnection(const ServerConfig& cfg, Hooks hooks)
    : engine_(cfg, *this, std::move(hooks)), client_(false) {}

Status RecordConnection::start() { return after_engine(engine_.start()); }

Buf RecordConnection::take_output() {
  Buf o;
  o.swap(out_);
  return o;
}

Buf RecordConnection::take_app_data() {
  Buf o;
  o.swap(app_in_);
  return o;
}

void RecordConnection::on_secret(Level level, Direction dir, const Suite& suite, Bytes secret) {
  suite_ = &suite;
  if (dir == Direction::read) {
    rd_[idx(level)].init(suite, secret, false);
    if (level == Level::application) app_read_secret_ = Secret(secret);
  } else {
    wr_[idx(level)].init(suite, secret, true);
    if (level == Level::application) app_write_secret_ = Secret(secret);
  }
}

void RecordConnection::on_keylog(std::string_view label, Bytes client_random, Bytes secret) {
  if (!keylog_) return;
  static const char* d = "0123456789abcdef";
  std::string line(label);
  line.push_back(' ');
  for (auto b : client_random) {
    line.push_back(d[b >> 4]);
    line.push_back(d[b & 15]);
  }
  line.push_back(' ');
  for (auto b : secret) {
    line.push_back(d[b >> 4]);
    line.push_back(d[b & 15]);
  }
  keylog_(line);
  wipe(MutBytes(reinterpret_cast<std::uint8_t*>(line.data()), line.size()));
}

void RecordConnection::on_key_update(bool update_requested) {
  // The next record from the peer uses the next secret (§7.2).
  app_read_secret_ = next_traffic_secret(*suite_, app_read_secret_.bytes());
  rd_[idx(Level::application)].init(*suite_, app_read_secret_.bytes(), false);
  ++key_updates_received_;
  if (update_requested) key_update_owed_ = true;
}

Status RecordConnection::fail(Alert a, const char* why) {
  if (!failed_) {
    failed_ = true;
    why_ = why;
    alert_sent_ = a;
    send_alert(a);
  }
  return Status::fail(a, why);
}

void RecordConnection::send_alert(Alert a) {
  const std::uint8_t body[2] = {static_cast<std::uint8_t>(a == Alert::close_notify ? 1 : 2), static_cast<std::uint8_t>(a)};
  // Use the newest key the peer can already read: ours for application data
  // once we finished, else the handshake key once the peer has our
  // ServerHello (server) or we have its (client); else plaintext.
  Level l = Level::initial;
  if (engine_.handshake_complete() && wr_[idx(Level::application)].ready()) {
    l = Level::application;
  } else if (client_ && wr_[idx(Level::handshake)].ready()) {
    l = Level::handshake;
  } else if (!client_) {
    l = sent_level_;
  }
  if (l == Level::initial || !send_protected(l, ContentType::alert, body)) {
    send_plaintext(ContentType::alert, body, kTls12);
  }
}

void RecordConnection::send_plaintext(ContentType t, Bytes data, std::uint16_t version) {
  std::size_t off = 0;
  do {
    const std::size_t n = std::min(kMaxPlaintext, data.size() - off);
    emit_record_header(out_, t, version, n);
    out_.insert(out_.end(), data.begin() + static_cast<std::ptrdiff_t>(off),
                data.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
  } while (off < data.size());
}

bool RecordConnection::send_protected(Level level, ContentType t, Bytes data) {
  RecordProtector& w = wr_[idx(level)];
  if (!w.ready()) return false;
  std::size_t off = 0;
  do {
    const std::size_t n = std::min(kMaxPlaintext, data.size() - off);
    if (!w.seal(t, data.subspan(off, n), 0, out_)) return false;
    off += n;
  } while (off < data.size());
  if (idx(level) > idx(sent_level_)) sent_level_ = level;
  return true;
}

void RecordConnection::drain_engine() {
  for (std::size_t l = 0; l < kLevels; ++l) {
    const Buf b = engine_.take_output(static_cast<Level>(l));
    if (b.empty()) continue;
    if (l == idx(Level::initial)) {
      // The first ClientHello goes out as TLS 1.0 for old middleboxes (§5.1).
      send_plaintext(ContentType::handshake, b, client_ && !first_record_sent_ ? 0x0301 : kTls12);
      first_record_sent_ = true;
    } else if (!send_protected(static_cast<Level>(l), ContentType::handshake, b)) {
      (void)fail(Alert::internal_error, "no write key for handshake output");
      return;
    }
  }
}

Status RecordConnection::after_engine(Status st) {
  if (!st) return fail(st.alert, st.why);
  drain_engine();
  if (failed_) return Status::fail(*alert_sent_, why_);
  if (key_update_owed_) {
    key_update_owed_ = false;
    if (auto s = key_update(false); !s) return s;
  }
  if (engine_.handshake_complete() && !early_settled_) {
    early_settled_ = true;
    if (client_ && engine_.early_data_offered() && !engine_.early_data_accepted() && !early_sent_.empty()) {
      // Refused 0-RTT data is application data all the same: send it again (§4.2.10).
      early_sent_.insert(early_sent_.end(), pending_app_.begin(), pending_app_.end());
      pending_app_.swap(early_sent_);
    }
    wipe(early_sent_);
    early_sent_.clear();
    flush_pending_app();
  }
  return Status::success();
}

void RecordConnection::flush_pending_app() {
  if (pending_app_.empty()) return;
  Buf p;
  p.swap(pending_app_);
  (void)write(p);
  wipe(p);
}

Status RecordConnection::write(Bytes data) {
  // Failed for good, with the alert that ended it: the one we sent, or the
  // one the peer sent (fuzz_tls found the second reported as internal_error).
  if (failed_) return Status::fail(alert_sent_ ? *alert_sent_ : alert_received_.value_or(Alert::internal_error), why_);
  if (closed_) return Status::fail(Alert::internal_error, "write after close");
  if (engine_.handshake_complete()) {
    std::size_t off = 0;
    while (off < data.size()) {
      const std::size_t n = std::min(kMaxPlaintext, data.size() - off);
      if (!send_protected(Level::application, ContentType::application_data, data.subspan(off, n))) {
        return fail(Alert::internal_error, "sealing failed");
      }
      off += n;
      if (wr_[idx(Level::application)].seq() >= auto_update_after_) {
        if (auto s = key_update(false); !s) return s;
      }
    }
    return Status::success();
  }
  if (client_ && engine_.early_data_offered() && wr_[idx(Level::early)].ready() && !early_settled_ &&
      early_bytes_ < max_early_) {
    const std::size_t n = std::min<std::size_t>(data.size(), max_early_ - early_bytes_);
    if (!send_protected(Level::early, ContentType::application_data, data.first(n))) {
      return fail(Alert::internal_error, "sealing failed");
    }
    early_sent_.insert(early_sent_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    early_bytes_ += n;
    data = data.subspan(n);
  }
  pending_app_.insert(pending_app_.end(), data.begin(), data.end());
  return Status::success();
}

Status RecordConnection::key_update(bool request_peer_update) {
  if (!engine_.handshake_complete() || failed_ || closed_) {
    return Status::fail(Alert::internal_error, "KeyUpdate before the handshake completed");
  }
  const Buf m = engine_.make_key_update(request_peer_update);
  if (!send_protected(Level::application, ContentType::handshake, m)) return fail(Alert::internal_error, "sealing failed");
  return rotate_write_key();
}

Status RecordConnection::rotate_write_key() {
  app_write_secret_ = next_traffic_secret(*suite_, app_write_secret_.bytes());
  if (!wr_[idx(Level::application)].init(*suite_, app_write_secret_.bytes(), true)) {
    return fail(Alert::internal_error, "key update failed");
  }
  ++key_updates_sent_;
  return Status::success();
}

void RecordConnection::close() {
  if (closed_ || failed_) return;
  closed_ = true;
  send_alert(Alert::close_notify);
}

Status RecordConnection::feed(Bytes data) {
  // Failed for good, with the alert that ended it: the one we sent, or the
  // one the peer sent (fuzz_tls found the second reported as internal_error).
  if (failed_) return Status::fail(alert_sent_ ? *alert_sent_ : alert_received_.value_or(Alert::internal_error), why_);
  in_.insert(in_.end(), data.begin(), data.end());
  std::size_t off = 0;
  Status st = Status::success();
  while (in_.size() - off >= kRecordHeaderLen && !peer_closed_) {
    auto h = parse_record_header(Bytes(in_).subspan(off));
    if (!h) {
      st = fail(Alert::record_overflow, "record longer than 2^14 + 256");
      break;
    }
    if (in_.size() - off < kRecordHeaderLen + h->length) break;
    const Bytes rec(in_.data() + off, kRecordHeaderLen + h->length);
    off += rec.size();
    st = handle_record(*h, rec);
    if (!st) break;
  }
  if (!st || peer_closed_) {
    in_.clear();
  } else {
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(off));
  }
  return st;
}

Status RecordConnection::handle_alert(Bytes body) {
  if (body.size() != 2) return fail(Alert::decode_error, "malformed alert");
  const auto a = static_cast<Alert>(body[1]);
  if (a == Alert::close_notify) {
    peer_closed_ = true;
    return Status::success();
  }
  if (a == Alert::user_canceled) return Status::success();  // a close_notify follows (§6.1)
  // Every other alert is fatal in TLS 1.3 whatever its level byte says (§6).
  failed_ = true;
  alert_received_ = a;
  why_ = "peer sent a fatal alert";
  return Status::fail(a, why_);
}

Status RecordConnection::handle_record(const RecordHeader& h, Bytes rec) {
  const Bytes body = rec.subspan(kRecordHeaderLen);
  if (h.type == ContentType::change_cipher_spec) {
    // Appendix D.4: a peer in compatibility mode sends one; it carries nothing.
    if (body.size() == 1 && body[0] == 1 && !engine_.handshake_complete()) return Status::success();
    return fail(Alert::unexpected_message, "unexpected change_cipher_spec");
  }
  // A peer that failed before it had keys alerts in plaintext; honour it.
  if (h.type == ContentType::alert) return handle_alert(body);
  const bool skip_early = !client_ && engine_.early_data_offered() && !engine_.early_data_accepted() && !early_skip_done_;
  const Level lvl = engine_.read_level();
  if (!rd_[idx(lvl)].ready()) {
    if (body.size() > kMaxPlaintext) return fail(Alert::record_overflow, "plaintext record above 2^14");
    if (h.type == ContentType::handshake) {
      if (body.empty()) return fail(Alert::unexpected_message, "empty handshake record");
      return after_engine(engine_.receive(lvl, body));
    }
    if (h.type == ContentType::application_data && skip_early) {  // 0-RTT records after HelloRetryRequest
      skipped_early_ += body.size();
      if (skipped_early_ > kMaxSkippedEarly) return fail(Alert::unexpected_message, "too much refused early data");
      return Status::success();
    }
    return fail(Alert::unexpected_message, "unexpected record before keys");
  }
  if (h.type != ContentType::application_data) return fail(Alert::unexpected_message, "plaintext record after keys");
  ContentType t = ContentType::invalid;
  Buf plain;
  const Status st = rd_[idx(lvl)].open(rec, t, plain);
  if (!st) {
    if (skip_early && lvl == Level::handshake && st.alert == Alert::bad_record_mac) {
      skipped_early_ += body.size();
      if (skipped_early_ > kMaxSkippedEarly) return fail(Alert::unexpected_message, "too much refused early data");
      return Status::success();
    }
    return fail(st.alert, st.why);
  }
  if (lvl == Level::handshake) early_skip_done_ = true;
  switch (t) {
    case ContentType::handshake:
      if (plain.empty()) return fail(Alert::unexpected_message, "empty handshake record");
      return after_engine(engine_.receive(lvl, plain));
    case ContentType::application_data:
      if (lvl == Level::early && !client_) {
        early_bytes_ += plain.size();
        if (early_bytes_ > engine_.max_early_data()) return fail(Alert::unexpected_message, "early data above the limit");
      } else if (lvl != Level::application) {
        return fail(Alert::unexpected_message, "application data during the handshake");
      }
      app_in_.insert(app_in_.end(), plain.begin(), plain.end());
      return Status::success();
    case ContentType::alert:
      return handle_alert(plain);
    default:
      return fail(Alert::unexpected_message, "unknown content type");
  }
}

}  // namespace ustack::tls
