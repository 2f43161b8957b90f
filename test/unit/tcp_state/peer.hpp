// The state-machine test fixture: ONE Stack + TcpLayer on a virtual clock,
// and the test playing the remote host by hand. The peer's segments are
// built with the wire reprs (TcpRepr, Ipv4Repr, EthernetRepr) and injected
// with Stack::rx(); whatever the stack emits is collected, with the time it
// left, and parsed back into TcpRepr + payload.
//
// The peer's side of the sequence space is tracked here (p_nxt: the next
// sequence number the peer sends, i.e. our RCV.NXT once we took everything;
// l_nxt: the next sequence number the peer expects from us), so tests read as
// the exchanges in RFC 9293's figures. Helpers that bring a connection to a
// state (establish_passive(), to_fin_wait_1(), ...) assert every segment on
// the way, so each fixture starts from a state it has checked.
//
// Time only moves through advance(): it jumps from timer deadline to timer
// deadline, polling at each, so a timer fires at exactly its deadline and the
// emission times the tests compare are exact.
#pragma once

#include <catch2/catch.hpp>

#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tcp/tcp_layer.hpp"
#include "test/support/support.hpp"
#include "test/unit/net/frames.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"
#include "wire/tcp.hpp"

namespace ustack::test {

using wire::TcpFlags;
using namespace wire::tcp_flag;

inline constexpr std::uint16_t kLocalPort = 80;   // our listener
inline constexpr std::uint16_t kPeerPort = 40000;
inline constexpr std::uint16_t kPeerWnd = 65535;

inline tcp::Secret secret_of(std::uint8_t v) {
  tcp::Secret s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(v + i);
  return s;
}

// The layer's configuration for these tests: pinned secrets, and quick-ack
// off so the delayed-ACK rules are visible from the first segment (the
// quick-ack test turns it back on).
inline tcp::TcpConfig state_config() {
  tcp::TcpConfig c;
  c.max_connections = 8;
  c.max_listeners = 4;
  c.quickack_segments = 0;
  c.isn_secret = secret_of(0x10);
  c.cookie_secret = secret_of(0x20);
  c.table_secret = secret_of(0x30);
  c.defaults.sndbuf = 64 * 1024;
  c.defaults.rcvbuf = 64 * 1024;
  return c;
}

// A segment the stack sent, parsed back.
struct Out {
  wire::TcpRepr h;
  std::vector<std::uint8_t> data;
  TimeNs at = 0;

  SeqNum seq() const { return h.seq; }
  SeqNum ack() const { return h.ack; }
  std::uint32_t seg_len() const {
    return static_cast<std::uint32_t>(data.size()) + (h.flags.syn() ? 1 : 0) + (h.flags.fin() ? 1 : 0);
  }
  bool flags_are(TcpFlags f) const { return h.flags == f; }
};

inline std::string flag_str(TcpFlags f) {
  std::string s;
  if (f.syn()) s += "S";
  if (f.fin()) s += "F";
  if (f.rst()) s += "R";
  if (f.psh()) s += "P";
  if (f.ack()) s += "A";
  return s.empty() ? "." : s;
}

inline std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "[" << flag_str(o.h.flags) << " seq=" << o.h.seq.raw() << " ack=" << o.h.ack.raw()
            << " win=" << o.h.window << " len=" << o.data.size() << " at=" << o.at << "]";
}

// Application callbacks, recorded.
struct Recorder final : tcp::TcpHandler {
  int accepts = 0, connects = 0, readables = 0, writables = 0, closes = 0;
  TcpConnId conn;
  TcpError err = TcpError::none;
  bool auto_read = true;  // read everything on on_readable
  std::vector<std::uint8_t> got;
  bool eof = false;

  void on_accept(tcp::TcpLayer&, TcpListenerId, TcpConnId c, TimeNs) override {
    ++accepts;
    conn = c;
  }
  void on_connected(tcp::TcpLayer&, TcpConnId c, TimeNs) override {
    ++connects;
    conn = c;
  }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    ++readables;
    if (auto_read) drain(t, c, now);
    if (t.peer_closed(c)) eof = true;
  }
  void on_writable(tcp::TcpLayer&, TcpConnId, TimeNs) override { ++writables; }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError e, TimeNs) override {
    ++closes;
    err = e;
  }
  void drain(tcp::TcpLayer& t, TcpConnId c, TimeNs now) {
    std::uint8_t buf[2048];
    while (std::size_t n = t.read(c, MutBytes{buf}, now)) got.insert(got.end(), buf, buf + n);
  }
};

struct PeerSyn {
  std::optional<std::uint16_t> mss = 1460;
  std::optional<std::uint8_t> wscale;
  bool sack = false;
  bool ts = false;
};

class CaptureSink final : public PacketSink {
 public:
  void emit(Packet&& p, TimeNs now) override {
    frames.push_back(bytes_of(p));
    times.push_back(now);
  }
  std::vector<std::vector<std::uint8_t>> frames;
  std::vector<TimeNs> times;
};

class Peer {
 public:
  explicit Peer(const tcp::TcpConfig& cfg = state_config(), std::uint16_t mtu = 1500)
      : pool_(1024), start_avail_(pool_.avail()) {
    caps_.mac = kOurMac;
    caps_.mtu = mtu;
    StackConfig sc;
    sc.mac = kOurMac;
    sc.ip = Ipv4Cidr{kOurIp, 24};
    sc.gratuitous_arp_on_start = false;
    sc.arp.reachable_ns = 100ull * 365 * 24 * 3600 * kNsPerSec;  // no re-resolution during long virtual waits
    stack_ = std::make_unique<Stack>(sc, pool_.mp, caps_, sink_, now);
    tcp = std::make_unique<tcp::TcpLayer>(*stack_, cfg);
    stack_->arp().update(kPeerIp, kPeerMac, true, now);
  }
  ~Peer() {
    tcp.reset();
    stack_.reset();
    // Every mbuf is back once the layer and the stack are gone.
    if (!std::uncaught_exceptions()) CHECK(pool_.avail() == start_avail_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  std::unique_ptr<tcp::TcpLayer> tcp;
  Recorder app;
  TimeNs now = 1000 * kNsPerSec;

  // The peer's view of the sequence spaces.
  SeqNum p_iss{0x10000000u};  // the peer's ISS
  SeqNum p_nxt;               // next sequence number the peer sends
  SeqNum l_iss;               // our ISS, from our SYN or SYN-ACK
  SeqNum l_nxt;               // next sequence number the peer expects from us
  std::uint16_t p_wnd = kPeerWnd;
  std::uint16_t p_port = kPeerPort;
  std::uint16_t l_port = kLocalPort;
  // Timestamps on the peer's segments (when negotiated): the peer's clock,
  // and the last TSval we sent, which the peer echoes.
  bool p_ts = false;
  std::uint32_t p_tsval = 5000;
  std::uint32_t l_tsval = 0;
  std::optional<TcpListenerId> listener;
  TcpConnId conn;

  Stack& stack() { return *stack_; }
  std::uint64_t ctr(StackCounter c) const { return stack_->counters().get(c); }
  unsigned pool_avail() const { return pool_.avail(); }
  std::optional<TcpConnStats> stats() const { return tcp->stats(conn); }
  TcpState state() const { return tcp->state(conn); }

  // --- time ------------------------------------------------------------------
  // Moves the clock forward by dt, stopping at every timer deadline on the
  // way so each fires at its exact time.
  void advance(TimeNs dt) { advance_to(now + dt); }
  void advance_to(TimeNs end) {
    for (;;) {
      const TimeNs next = stack_->next_deadline();
      if (next == kNever || next > end) break;
      if (next > now) now = next;
      stack_->poll(now);
    }
    now = end;
    stack_->poll(now);
    check_invariants();
  }
  void check_invariants() const {
    const char* why = tcp->check_invariants();
    INFO("invariant: " << (why ? why : ""));
    CHECK(why == nullptr);
  }

  // --- what the stack sent -----------------------------------------------------
  // Every TCP segment emitted since the last call, in order. Frames that are
  // not TCP/IPv4 to the peer fail the test (no ARP is expected: the peer's
  // MAC is pre-resolved).
  std::vector<Out> out() {
    std::vector<Out> r;
    for (std::size_t i = 0; i < sink_.frames.size(); ++i) {
      const auto& f = sink_.frames[i];
      auto eth = wire::EthernetFrame::parse(f);
      REQUIRE(eth.ok());
      REQUIRE(eth->ethertype() == wire::ethertype::kIpv4);
      CHECK(eth->dst() == kPeerMac);
      auto ip = wire::Ipv4Packet::parse(eth->payload());
      REQUIRE(ip.ok());
      REQUIRE(ip->protocol() == wire::ipproto::kTcp);
      CHECK(ip->src() == kOurIp);
      CHECK(ip->dst() == kPeerIp);
      auto seg = wire::TcpSegment::parse(ip->payload(), ip->src(), ip->dst(), true);
      REQUIRE(seg.ok());  // checksum verified
      auto opt = wire::TcpOptions::parse(seg->options());
      REQUIRE(opt.ok());
      Out o;
      o.h = wire::TcpRepr::from(*seg, *opt);
      o.data.assign(seg->payload().begin(), seg->payload().end());
      o.at = sink_.times[i];
      if (o.h.options.timestamps) l_tsval = o.h.options.timestamps->tsval;
      r.push_back(std::move(o));
    }
    sink_.frames.clear();
    sink_.times.clear();
    return r;
  }
  // Exactly one segment was sent: it.
  Out one() {
    auto o = out();
    INFO(describe(o));
    REQUIRE(o.size() == 1);
    return o[0];
  }
  void none() {
    auto o = out();
    INFO(describe(o));
    CHECK(o.empty());
  }
  static std::string describe(const std::vector<Out>& v) {
    std::ostringstream s;
    s << v.size() << " segment(s):";
    for (const auto& o : v) s << " " << o;
    return s.str();
  }

  // --- what the peer sends -----------------------------------------------------
  wire::TcpRepr repr(TcpFlags f, SeqNum seq, SeqNum ack = SeqNum{}) const {
    wire::TcpRepr r;
    r.src_port = p_port;
    r.dst_port = l_port;
    r.seq = seq;
    r.ack = f.ack() ? ack : SeqNum{};
    r.flags = f;
    r.window = p_wnd;
    if (p_ts) r.options.timestamps = wire::TcpTimestamps{p_tsval, f.ack() ? l_tsval : 0};
    return r;
  }
  // The TCP segment's bytes (checksum computed).
  static std::vector<std::uint8_t> tcp_bytes(const wire::TcpRepr& r, Bytes payload) {
    std::vector<std::uint8_t> v(r.header_len() + payload.size());
    r.emit(MutBytes{v}.first(r.header_len()), kPeerIp, kOurIp, payload, true);
    if (!payload.empty()) std::memcpy(v.data() + r.header_len(), payload.data(), payload.size());
    return v;
  }
  // Recomputes the checksum of a segment the test edited by hand.
  static void fix_checksum(std::vector<std::uint8_t>& seg) {
    seg[wire::TcpSegment::kChecksumOff] = seg[wire::TcpSegment::kChecksumOff + 1] = 0;
    const std::uint16_t c = wire::checksum_fold(wire::checksum_add(
        Bytes{seg}, wire::pseudo_header_sum(kPeerIp, kOurIp, wire::ipproto::kTcp, static_cast<std::uint16_t>(seg.size()))));
    seg[wire::TcpSegment::kChecksumOff] = static_cast<std::uint8_t>(c >> 8);
    seg[wire::TcpSegment::kChecksumOff + 1] = static_cast<std::uint8_t>(c);
  }
  // The segment with an MSS option whose length byte says 3: a malformed
  // option list (TcpOptions::parse refuses it), checksum still valid.
  static std::vector<std::uint8_t> with_bad_option(wire::TcpRepr r, Bytes payload = {}) {
    r.options = wire::TcpOptions{};
    r.options.mss = 1460;
    auto v = tcp_bytes(r, payload);
    REQUIRE(v[wire::TcpSegment::kOptionsOff] == wire::tcp_opt::kMss);
    v[wire::TcpSegment::kOptionsOff + 1] = 3;
    fix_checksum(v);
    return v;
  }
  void inject_tcp(const std::vector<std::uint8_t>& seg) {
    const auto frame = eth_frame(kOurMac, kPeerMac, wire::ethertype::kIpv4,
                                 ipv4_datagram(kPeerIp, kOurIp, wire::ipproto::kTcp, seg));
    stack_->rx(packet_of(frame, pool_.mp).release(), now);
    check_invariants();
  }
  void inject(const wire::TcpRepr& r, Bytes payload = {}) { inject_tcp(tcp_bytes(r, payload)); }
  // A segment at an explicit sequence number, acknowledging l_nxt.
  void send(TcpFlags f, SeqNum seq, Bytes payload = {}) {
    inject(repr(f, seq, l_nxt), payload);
    ++p_tsval;
  }
  // In-order data (and FIN) from the peer, advancing p_nxt.
  void send_data(Bytes payload, TcpFlags extra = kPsh) {
    send(kAck | extra, p_nxt, payload);
    p_nxt += static_cast<std::uint32_t>(payload.size()) + (extra.fin() ? 1 : 0);
  }
  void send_ack() { send(kAck, p_nxt); }
  void send_fin() { send_data({}, kFin); }

  // --- reaching states -------------------------------------------------------------
  void do_listen(std::uint32_t backlog = 8, const TcpConnOptions* opt = nullptr) {
    listener = opt ? tcp->listen(Ipv4Addr{}, l_port, backlog, &app, nullptr, *opt)
                   : tcp->listen(l_port, backlog, &app);
    REQUIRE(listener);
  }
  static wire::TcpOptions syn_options(const PeerSyn& o, std::uint32_t tsval) {
    wire::TcpOptions r;
    r.mss = o.mss;
    r.wscale = o.wscale;
    r.sack_permitted = o.sack;
    if (o.ts) r.timestamps = wire::TcpTimestamps{tsval, 0};
    return r;
  }
  // The peer's SYN to our listener. Returns our SYN-ACK.
  Out syn_to_listener(const PeerSyn& o = {}) {
    p_ts = false;
    wire::TcpRepr r = repr(kSyn, p_iss);
    r.options = syn_options(o, p_tsval);
    inject(r);
    ++p_tsval;
    p_nxt = p_iss + 1;
    Out sa = one();
    REQUIRE(sa.flags_are(kSyn | kAck));
    CHECK(sa.ack() == p_iss + 1);
    l_iss = sa.seq();
    l_nxt = l_iss + 1;
    p_ts = o.ts && sa.h.options.timestamps.has_value();
    return sa;
  }
  // LISTEN -> SYN-RECEIVED -> ESTABLISHED through a passive open.
  Out establish_passive(const PeerSyn& o = {}, TimeNs rtt = 10 * kNsPerMs) {
    if (!listener) do_listen();
    Out sa = syn_to_listener(o);
    advance(rtt);
    send_ack();
    none();  // the handshake's ACK is not answered
    REQUIRE(app.accepts == 1);
    conn = app.conn;
    REQUIRE(state() == TcpState::established);
    return sa;
  }
  // CLOSED -> SYN-SENT. Returns our SYN.
  Out connect(const TcpConnOptions* opt = nullptr) {
    auto c = opt ? tcp->connect(kPeerIp, p_port, &app, nullptr, *opt, now, l_port)
                 : tcp->connect(kPeerIp, p_port, &app, nullptr, tcp->config().defaults, now, l_port);
    REQUIRE(c);
    conn = *c;
    Out syn = one();
    REQUIRE(syn.flags_are(kSyn));
    l_iss = syn.seq();
    l_nxt = l_iss + 1;
    REQUIRE(state() == TcpState::syn_sent);
    return syn;
  }
  // SYN-SENT -> ESTABLISHED: the peer's SYN-ACK. Returns our ACK.
  Out establish_active(const PeerSyn& o = {}, TimeNs rtt = 10 * kNsPerMs) {
    Out syn = connect();
    advance(rtt);
    p_ts = false;
    wire::TcpRepr r = repr(kSyn | kAck, p_iss, l_nxt);
    r.options = syn_options(o, p_tsval);
    if (o.ts && syn.h.options.timestamps) r.options.timestamps->tsecr = syn.h.options.timestamps->tsval;
    inject(r);
    ++p_tsval;
    p_nxt = p_iss + 1;
    p_ts = o.ts && syn.h.options.timestamps.has_value();
    Out a = one();
    REQUIRE(a.flags_are(kAck));
    CHECK(a.seq() == l_nxt);
    CHECK(a.ack() == p_nxt);
    REQUIRE(app.connects == 1);
    REQUIRE(state() == TcpState::established);
    return a;
  }
  // ESTABLISHED -> FIN-WAIT-1: shutdown(); returns our FIN (not yet acknowledged).
  Out to_fin_wait_1() {
    tcp->shutdown(conn, now);
    Out f = one();
    REQUIRE(f.flags_are(kFin | kAck));
    CHECK(f.seq() == l_nxt);
    l_nxt += 1;
    REQUIRE(state() == TcpState::fin_wait_1);
    return f;
  }
  // FIN-WAIT-1 -> FIN-WAIT-2: the peer acknowledges our FIN.
  void to_fin_wait_2() {
    to_fin_wait_1();
    send_ack();
    none();
    REQUIRE(state() == TcpState::fin_wait_2);
  }
  // ESTABLISHED -> CLOSE-WAIT: the peer's FIN; returns our ACK of it.
  Out to_close_wait() {
    send_fin();
    Out a = one();
    CHECK(a.flags_are(kAck));
    CHECK(a.ack() == p_nxt);
    REQUIRE(state() == TcpState::close_wait);
    return a;
  }
  // CLOSE-WAIT -> LAST-ACK: shutdown(); returns our FIN.
  Out to_last_ack() {
    to_close_wait();
    tcp->shutdown(conn, now);
    Out f = one();
    REQUIRE(f.flags_are(kFin | kAck));
    l_nxt += 1;
    REQUIRE(state() == TcpState::last_ack);
    return f;
  }
  // FIN-WAIT-1 -> CLOSING: the peer's FIN crosses ours.
  void to_closing() {
    to_fin_wait_1();
    inject(repr(kAck | kFin, p_nxt, l_nxt - 1));  // acknowledges up to our FIN, not the FIN
    ++p_tsval;
    p_nxt += 1;
    Out a = one();
    CHECK(a.flags_are(kAck));
    CHECK(a.ack() == p_nxt);
    REQUIRE(state() == TcpState::closing);
  }
  // FIN-WAIT-2 -> TIME-WAIT: the peer's FIN. The application hears the end.
  void to_time_wait() {
    to_fin_wait_2();
    send_fin();
    Out a = one();
    CHECK(a.flags_are(kAck));
    CHECK(a.ack() == p_nxt);
    REQUIRE(tcp->time_wait_count() == 1);
    REQUIRE(app.closes == 1);
    REQUIRE(app.err == TcpError::none);
  }
  // Any synchronized state, from a passive open with `syn`'s options.
  void to_state(TcpState s, const PeerSyn& syn = {}) {
    establish_passive(syn);
    switch (s) {
      case TcpState::established: break;
      case TcpState::fin_wait_1: to_fin_wait_1(); break;
      case TcpState::fin_wait_2: to_fin_wait_2(); break;
      case TcpState::close_wait: to_close_wait(); break;
      case TcpState::closing: to_closing(); break;
      case TcpState::last_ack: to_last_ack(); break;
      case TcpState::time_wait: to_time_wait(); break;
      default: FAIL("not a synchronized state: " << to_string(s));
    }
  }
  // The connection's state, TIME-WAIT included (the application's handle is
  // gone by then: the flow table still finds it).
  bool in_time_wait() const { return tcp->time_wait_count() == 1; }

 private:
  ScopedPool pool_;
  unsigned start_avail_;
  DeviceCaps caps_;
  CaptureSink sink_;
  std::unique_ptr<Stack> stack_;
};

inline std::vector<std::uint8_t> bytes_n(std::size_t n, std::uint8_t salt = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 31 + salt);
  return v;
}

}  // namespace ustack::test
