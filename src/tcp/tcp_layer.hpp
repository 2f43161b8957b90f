// The per-lcore TCP: connections, listeners and the RFC 9293 state machine.
//
// Read: RFC 9293 §3.3.2 (states), §3.5 (establishing: simultaneous open,
// half-open, reset), §3.6 (closing, TIME-WAIT), §3.8 (timers, SWS, Nagle,
// keepalive), §3.10 (event processing, in the order this file follows);
// RFC 5961 (blind RST/SYN/data attacks, challenge ACKs); RFC 7323
// (window scale, timestamps, PAWS); RFC 2018 / RFC 6675 (SACK recovery);
// RFC 5681 / RFC 6582 / RFC 9438 (congestion control); RFC 6298 (RTO);
// RFC 6928 (IW10); RFC 6191 (TIME-WAIT reuse with timestamps); RFC 4987
// (SYN cookies); RFC 6528 (ISNs); RFC 1122 §4.2.3.2 (delayed ACK).
//
// Sans-IO: segments arrive through the Stack (this is its ProtocolHandler
// for protocol 6) with `now`; segments leave through Stack::ip_output();
// timers live on the stack's timer wheel. Nothing reads a clock.
//
// Memory: every connection, its send ring, receive ring and out-of-order
// queue are allocated when the layer is constructed, sized by TcpConfig.
// Opening, running and closing connections allocates nothing from the heap;
// payload lives in mbufs from the stack's mempool. When the pool of
// connections is exhausted a SYN is refused (counted, RST) after the oldest
// TIME-WAIT connection, if any, has been recycled.
//
// The application API runs on the lcore (from the poll loop or from inside
// the callbacks): listen, connect, send, read, shutdown, close, abort. It
// reports through a TcpHandler, one virtual call per event, shaped so the
// eventfd shim can turn each event into a readiness bit.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/bytes.hpp"
#include "core/seq.hpp"
#include "core/time.hpp"
#include "core/timer_wheel.hpp"
#include "net/packet.hpp"
#include "net/stack.hpp"
#include "tcp/cc.hpp"
#include "tcp/flow_table.hpp"
#include "tcp/isn.hpp"
#include "tcp/reassembly.hpp"
#include "tcp/rss.hpp"
#include "tcp/rtt.hpp"
#include "tcp/sack_scoreboard.hpp"
#include "tcp/send_buffer.hpp"
#include "tcp/syncookie.hpp"
#include "tcp/tuple.hpp"
#include "ustack/tcp.hpp"
#include "wire/tcp.hpp"

namespace ustack::tcp {

class TcpLayer;

// Application callbacks. All run on the lcore, from inside TcpLayer calls;
// they may call back into the layer (send, read, close...).
class TcpHandler {
 public:
  // A passive open completed (the handshake's last ACK arrived). The
  // connection inherits the listener's handler and user pointer; change them
  // with TcpLayer::set_handler().
  virtual void on_accept(TcpLayer& /*tcp*/, TcpListenerId /*l*/, TcpConnId /*c*/, TimeNs /*now*/) {}
  // An active open completed.
  virtual void on_connected(TcpLayer& /*tcp*/, TcpConnId /*c*/, TimeNs /*now*/) {}
  // New in-order data, or the peer's FIN (read() then returns 0 and
  // peer_closed() is true).
  virtual void on_readable(TcpLayer& /*tcp*/, TcpConnId /*c*/, TimeNs /*now*/) {}
  // Send space opened after a send() accepted less than asked.
  virtual void on_writable(TcpLayer& /*tcp*/, TcpConnId /*c*/, TimeNs /*now*/) {}
  // The connection is over for the application: after this the handle is
  // invalid. `err` says why (none for an orderly end). Not called for a
  // connection the application aborted itself.
  virtual void on_closed(TcpLayer& /*tcp*/, TcpConnId /*c*/, TcpError /*err*/, TimeNs /*now*/) {}

 protected:
  ~TcpHandler() = default;
};

struct TcpConfig {
  std::uint32_t max_connections = 1024;
  std::uint32_t max_listeners = 16;
  TcpConnOptions defaults;  // for connect() without options
  RttConfig rtt;            // min RTO 200 ms by default
  TimeNs msl = 30 * kNsPerSec;  // TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2 suggests 2 min for MSL; 30 s like Linux's 60 s total)
  TimeNs fin_wait_2_timeout = 60 * kNsPerSec;  // orphaned FIN-WAIT-2 (after close()), like Linux tcp_fin_timeout
  std::uint32_t syn_retries = 6;       // SYN retransmissions before giving up (1+2+...+32 s)
  std::uint32_t synack_retries = 5;
  bool syn_cookies = true;             // when a listener's backlog is full
  std::uint32_t challenge_acks_per_sec = 1000;  // RFC 5961 §7 rate limit (shared by all connections)
  // Out-of-order queue bound, segments per connection; raised to hold a
  // whole receive window (defaults.rcvbuf) of 1 KiB segments.
  std::uint32_t ooo_segments = 64;
  std::uint32_t quickack_segments = 16;  // ACK every segment at connection start (slow start)
  PortRange ephemeral;
  // RSS of the port this lcore's queue belongs to; when known, connect()
  // picks source ports whose replies land on `queue`.
  bool rss_known = false;
  std::uint16_t queue = 0;
  std::vector<std::uint16_t> reta;
  RssKey rss_key = kSymmetricRssKey;
  // Secrets: drawn from the OS at construction unless given (tests pin them).
  std::optional<Secret> isn_secret, cookie_secret, table_secret;
};

class TcpLayer final : public ProtocolHandler {
 public:
  // Allocates everything: the connection pool and each connection's rings.
  // Registers itself with `stack` for protocol 6.
  TcpLayer(Stack& stack, const TcpConfig& cfg);
  ~TcpLayer();
  TcpLayer(const TcpLayer&) = delete;
  TcpLayer& operator=(const TcpLayer&) = delete;

  // --- application API (lcore only) ---------------------------------------

  // Listens on local:port (0.0.0.0 for every address). `backlog` bounds the
  // handshakes in progress; beyond it SYN cookies answer (if enabled).
  std::optional<TcpListenerId> listen(Ipv4Addr local, std::uint16_t port, std::uint32_t backlog,
                                      TcpHandler* h, void* user, const TcpConnOptions& opt);
  std::optional<TcpListenerId> listen(std::uint16_t port, std::uint32_t backlog, TcpHandler* h, void* user = nullptr) {
    return listen(Ipv4Addr{}, port, backlog, h, user, cfg_.defaults);
  }
  // Stops accepting; connections already accepted are not affected.
  // Handshakes in progress are reset.
  void unlisten(TcpListenerId l, TimeNs now);

  // Active open. The SYN leaves now; on_connected or on_closed(refused /
  // timed_out / reset) follows. nullopt when no connection slot or no
  // source port is free (counted).
  std::optional<TcpConnId> connect(Ipv4Addr remote, std::uint16_t port, TcpHandler* h, void* user,
                                   const TcpConnOptions& opt, TimeNs now, std::uint16_t local_port = 0);
  std::optional<TcpConnId> connect(Ipv4Addr remote, std::uint16_t port, TcpHandler* h, void* user, TimeNs now) {
    return connect(remote, port, h, user, cfg_.defaults, now);
  }

  // Copies a prefix of `data` into the send buffer and sends what the
  // windows allow. Returns the bytes accepted (0 when full: on_writable
  // follows when space opens; also 0 after shutdown or on a bad handle).
  std::size_t send(TcpConnId c, Bytes data, TimeNs now);
  // Zero-copy send: takes the mbuf chain when all of it fits (true), else
  // leaves it with the caller (false). Its data must not change afterwards.
  bool send_zero_copy(TcpConnId c, Packet& p, TimeNs now);
  // Free send space in bytes.
  std::size_t send_space(TcpConnId c) const;
  // Bytes in the send buffer (sent and unacknowledged, or not sent yet).
  std::size_t send_queued(TcpConnId c) const;
  // Asks for on_writable when space opens (a quarter of the buffer free, or
  // the buffer empty), as after a send that accepted less than asked. The
  // thread shim uses it to return send credit without failing a send first.
  void want_writable(TcpConnId c);

  // Copies in-order received data out. Returns 0 when nothing is queued.
  std::size_t read(TcpConnId c, MutBytes out, TimeNs now);
  // Zero-copy receive: the next queued segment (data() at its payload);
  // empty when nothing is queued. The app owns (and frees) it.
  Packet read_zero_copy(TcpConnId c, TimeNs now);
  std::size_t readable(TcpConnId c) const;
  bool peer_closed(TcpConnId c) const;  // FIN received and everything before it read
  bool fin_received(TcpConnId c) const; // FIN received (data before it may still be queued)
  // The connection's addresses and ports (local = ours).
  std::optional<FourTuple> tuple(TcpConnId c) const;

  // Half-close: FIN after the queued data. Reading continues.
  void shutdown(TcpConnId c, TimeNs now);
  // Close both directions: FIN after queued data; the handle is invalid on
  // return (no more callbacks). Unread received data, or data arriving
  // afterwards, resets the connection (RFC 9293 §3.10.4, as Linux does).
  void close(TcpConnId c, TimeNs now);
  // RST now, drop everything. The handle is invalid on return.
  void abort(TcpConnId c, TimeNs now);

  void set_handler(TcpConnId c, TcpHandler* h, void* user);
  void* user(TcpConnId c) const;
  std::optional<TcpConnStats> stats(TcpConnId c) const;
  TcpState state(TcpConnId c) const;
  // Options that may change on an open connection.
  void set_nagle(TcpConnId c, bool on, TimeNs now);
  void set_delayed_ack(TcpConnId c, bool on);
  void set_keepalive(TcpConnId c, bool on, TimeNs now);
  void set_congestion(TcpConnId c, TcpCongestion cc);  // before data flows; resets the controller

  // --- diagnostics ----------------------------------------------------------
  std::uint32_t connection_count() const { return used_; }  // all states, TIME-WAIT included
  std::uint32_t time_wait_count() const { return tw_count_; }
  std::uint32_t capacity() const { return cfg_.max_connections; }
  // Heap bytes per connection slot, all allocated at construction whether
  // the slot is used or not: the TCB, its rings (send, receive, out-of-order,
  // SACK scoreboard), its pool pointer and its share of the flow table.
  // Payload is not included: it lives in mbufs (none for an idle connection).
  std::size_t bytes_per_connection() const;
  const TcpConfig& config() const { return cfg_; }
  Stack& stack() { return stack_; }
  // Self-check for tests and fuzzing: walks every connection slot (detached
  // and TIME-WAIT ones too) and every listener, and returns a short
  // description of the first broken invariant, nullptr when all hold:
  //  - SND.UNA <= SND.NXT <= SND.MAX, nothing sent beyond the buffered data
  //    and the FIN, the send buffer starting at SND.UNA and within sndbuf;
  //  - the receive queue's byte count matches its mbufs, and what is queued
  //    plus the window still offered stays within rcvbuf (the out-of-order
  //    data inside that window);
  //  - data in flight has the retransmission timer armed;
  //  - the pool, TIME-WAIT and listener backlog counts match the slots, and
  //    a free slot holds no data and no armed timer.
  // O(connections + queued segments); never call it on a hot path.
  const char* check_invariants() const;

  // ProtocolHandler
  void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) override;

  struct Conn;
  struct Listener;

 private:
  struct Segment;  // a parsed incoming segment

  // Connection pool.
  Conn* alloc_conn(TimeNs now);
  void init_conn(Conn& c, const FourTuple& t, const TcpConnOptions& opt, TimeNs now);
  void free_conn(Conn& c);
  Conn* conn_of(TcpConnId id) const;
  TcpConnId id_of(const Conn& c) const;

  // Input.
  void listen_input(Listener& l, Segment& s, TimeNs now);
  void syn_sent_input(Conn& c, const Segment& s, TimeNs now);
  void conn_input(Conn& c, Segment& s, TimeNs now);
  bool process_ack(Conn& c, const Segment& s, TimeNs now);
  void process_data(Conn& c, Segment& s, TimeNs now);
  void process_fin(Conn& c, TimeNs now);
  // The ACK of our SYN arrived (in SYN-SENT or SYN-RECEIVED): RTT sample, SYN
  // timer stopped, the peer's window `snd_wnd` adopted, ESTABLISHED (or
  // FIN-WAIT-1 when the application already closed). Callbacks are the caller's.
  void complete_handshake(Conn& c, const Segment& s, std::uint32_t snd_wnd, TimeNs now);
  // Moves out-of-order data that now lines up with RCV.NXT into the receive
  // queue, when the queue has room for all of it; returns the bytes moved.
  std::size_t drain_ooo(Conn& c);
  void negotiate(Conn& c, const wire::TcpOptions& o, bool syn_has_ts);
  bool time_wait_reusable(const Conn& c, const Segment& s) const;

  // Output.
  void output(Conn& c, TimeNs now);  // send what windows allow, FIN, ACK if pending
  // Sends [seq, seq + len) from the send buffer with `flags`. Options on
  // the segment (SACK blocks) may leave room for less payload: *sent says
  // how much went, and a FIN goes only when all `len` did.
  bool send_segment(Conn& c, SeqNum seq, std::uint32_t len, wire::TcpFlags flags, TimeNs now,
                    bool retransmit = false, std::uint32_t* sent = nullptr);
  // A pure ACK carries SND.MAX, not SND.NXT: after an RTO rewinds SND.NXT,
  // the peer may already hold data up to SND.MAX, and an ACK below its
  // RCV.NXT would be unacceptable there (answered by an ACK of its own: an
  // ACK war). Linux's snd_nxt is never rewound, for the same reason.
  void send_ack(Conn& c, TimeNs now) { send_segment(c, c_snd_max(c), 0, wire::tcp_flag::kAck, now); }
  // Answers an unacceptable segment with an ACK, at most once per
  // kOowInterval per connection for segments without data (RFC 5961 §5 /
  // Linux's tcp_invalid_ratelimit): two ends that disagree about sequence
  // numbers must not ping-pong ACKs.
  void send_dup_ack(Conn& c, const Segment& s, TimeNs now);
  void send_challenge_ack(Conn& c, TimeNs now);
  void send_rst_for(const Segment& s, TimeNs now);  // RFC 9293 §3.10.7.1 reply to an unexpected segment
  void send_rst(Conn& c, TimeNs now);
  void send_synack_cookie(const Segment& s, const Listener& l, TimeNs now);
  // A header-only segment outside any connection's send path (RST, cookie
  // SYN-ACK); false, counted, when no mbuf is left.
  bool emit_bare(const FourTuple& t, const wire::TcpRepr& r, TimeNs now);
  void retransmit_una(Conn& c, TimeNs now);
  // Payload bytes a data segment can carry now: the MSS, less SACK blocks.
  std::uint32_t segment_room(const Conn& c) const;
  void schedule_ack(Conn& c, TimeNs now, bool immediate);
  static SeqNum c_snd_max(const Conn& c);

  // Windows.
  std::uint32_t rcv_window(const Conn& c) const;
  std::uint16_t window_field(Conn& c, bool syn);
  void maybe_window_update(Conn& c, TimeNs now);

  // Timers.
  static void on_rtx_timer(Timer& t, TimeNs now, void* ctx);
  static void on_delack_timer(Timer& t, TimeNs now, void* ctx);
  static void on_keepalive_timer(Timer& t, TimeNs now, void* ctx);
  void rtx_timeout(Conn& c, TimeNs now);
  void arm_rtx(Conn& c, TimeNs now);
  void arm_keepalive(Conn& c, TimeNs now);
  void enter_time_wait(Conn& c, TimeNs now);

  // Application side.
  void queue_fin(Conn& c);  // shutdown/close: FIN after the queued data (§3.10.4)
  static std::size_t send_room(const Conn& c);  // free space in the send buffer

  // Ending.
  void set_state(Conn& c, TcpState s);
  void finish(Conn& c, TcpError err, TimeNs now);  // to CLOSED: report, free
  void report_closed(Conn& c, TcpError err, TimeNs now);
  void release(Conn& c);  // free now, or when the entry point processing it returns
  void notify_readable(Conn& c, TimeNs now);
  void notify_writable(Conn& c, TimeNs now);
  void count(StackCounter k, std::uint64_t by = 1) { stack_.counters().inc(k, by); }
  std::uint32_t ts_now(const Conn& c, TimeNs now) const;
  // The per-connection offset of our timestamp clock (RFC 7323 §7.1): a
  // function of the tuple, so a cookie SYN-ACK, sent with no connection,
  // stamps the same clock the connection later uses (else the peer's PAWS
  // could drop everything after the handshake).
  std::uint32_t ts_offset_for(const FourTuple& t) const;

  Stack& stack_;
  TcpConfig cfg_;
  rte_mempool* pool_;
  FlowTable flows_;
  IsnGenerator isn_;
  SynCookies cookies_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Listener> listeners_;
  std::uint32_t free_head_;
  std::uint32_t used_ = 0;
  // TIME-WAIT connections, oldest first (intrusive doubly linked by index),
  // recycled when the pool runs out.
  std::uint32_t tw_head_, tw_tail_;
  std::uint32_t tw_count_ = 0;
  std::uint16_t port_hint_;
  // RFC 5961 §7 challenge ACK budget, refilled per second.
  std::uint32_t challenge_budget_ = 0;
  TimeNs challenge_epoch_ = 0;
  std::uint32_t ts_secret_;
  Conn* busy_ = nullptr;  // the connection an input or timer callback is processing
};

}  // namespace ustack::tcp
