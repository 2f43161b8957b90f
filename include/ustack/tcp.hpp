// The TCP types an application on the lcore sees: connection handles,
// per-connection options and statistics, errors and states.
//
// The layer itself (src/tcp/tcp_layer.hpp) is driven from the lcore's poll
// loop; these types carry no DPDK dependency so that the coming eventfd shim
// and the public library API can hand them across threads as plain values.
#pragma once

#include <cstdint>

namespace ustack {

// RFC 9293 §3.3.2 state names.
enum class TcpState : std::uint8_t {
  closed,
  listen,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

constexpr const char* to_string(TcpState s) {
  switch (s) {
    case TcpState::closed: return "CLOSED";
    case TcpState::listen: return "LISTEN";
    case TcpState::syn_sent: return "SYN-SENT";
    case TcpState::syn_received: return "SYN-RECEIVED";
    case TcpState::established: return "ESTABLISHED";
    case TcpState::fin_wait_1: return "FIN-WAIT-1";
    case TcpState::fin_wait_2: return "FIN-WAIT-2";
    case TcpState::close_wait: return "CLOSE-WAIT";
    case TcpState::closing: return "CLOSING";
    case TcpState::last_ack: return "LAST-ACK";
    case TcpState::time_wait: return "TIME-WAIT";
  }
  return "?";
}

// Why a connection ended, as reported to the application.
enum class TcpError : std::uint8_t {
  none,       // closed in order (both FINs exchanged, or our close() completed)
  refused,    // RST in answer to our SYN (ECONNREFUSED)
  timed_out,  // connect timeout, retransmission limit or keepalive (ETIMEDOUT)
  reset,      // RST on a synchronized connection (ECONNRESET)
  aborted,    // the application aborted (RST sent), or no resources
};

constexpr const char* to_string(TcpError e) {
  switch (e) {
    case TcpError::none: return "none";
    case TcpError::refused: return "refused";
    case TcpError::timed_out: return "timed out";
    case TcpError::reset: return "reset";
    case TcpError::aborted: return "aborted";
  }
  return "?";
}

// A connection handle: a pool index and its generation, so a handle kept
// past the connection's end is refused instead of reaching its successor.
struct TcpConnId {
  std::uint32_t index = 0xffffffffu;
  std::uint32_t gen = 0;
  constexpr bool valid() const { return index != 0xffffffffu; }
  constexpr bool operator==(const TcpConnId&) const = default;
};

struct TcpListenerId {
  std::uint32_t index = 0xffffffffu;
  constexpr bool valid() const { return index != 0xffffffffu; }
  constexpr bool operator==(const TcpListenerId&) const = default;
};

enum class TcpCongestion : std::uint8_t { newreno, cubic };

// Per-connection options (the socket options of this API). A listener's
// options are copied into every connection it accepts.
struct TcpConnOptions {
  bool nagle = false;                           // RFC 896; off by default (latency first)
  bool delayed_ack = true;                      // RFC 1122 §4.2.3.2 / RFC 9293 §3.8.6.3
  std::uint64_t delayed_ack_ns = 40'000'000;    // 40 ms, Linux's minimum
  TcpCongestion congestion = TcpCongestion::cubic;
  std::uint32_t sndbuf = 256 * 1024;            // bytes
  std::uint32_t rcvbuf = 256 * 1024;            // bytes, also the largest window advertised
  bool keepalive = false;
  std::uint64_t keepalive_idle_ns = 7200ull * 1'000'000'000;  // RFC 1122 §4.2.3.6 default
  std::uint64_t keepalive_interval_ns = 75ull * 1'000'000'000;
  std::uint32_t keepalive_probes = 9;
  bool sack = true;             // offer / accept SACK-permitted (RFC 2018)
  bool timestamps = true;       // offer / accept timestamps (RFC 7323)
  bool window_scaling = true;   // offer / accept window scaling (RFC 7323)
  // Active open: give up after this long without an answer (0: after the
  // SYN retry limit, about 63 s with the default 1 s initial RTO).
  std::uint64_t connect_timeout_ns = 0;
  // RFC 9293 §3.8.3 R2 for data: abort after this long of unanswered
  // retransmissions (at least 100 s by the RFC's SHOULD).
  std::uint64_t user_timeout_ns = 120ull * 1'000'000'000;
};

struct TcpConnStats {
  TcpState state = TcpState::closed;
  std::uint64_t srtt_ns = 0;
  std::uint64_t rttvar_ns = 0;
  std::uint64_t rto_ns = 0;
  std::uint32_t cwnd = 0;
  std::uint32_t ssthresh = 0;
  std::uint32_t snd_wnd = 0;   // the peer's window, scaled
  std::uint32_t rcv_wnd = 0;   // what we advertise, scaled
  std::uint16_t mss = 0;       // payload bytes per full segment
  std::uint8_t snd_wscale = 0; // the peer's shift
  std::uint8_t rcv_wscale = 0; // ours
  bool sack = false;           // negotiated
  bool timestamps = false;     // negotiated
  std::uint64_t bytes_in = 0;  // delivered in order to the receive queue
  std::uint64_t bytes_out = 0; // acknowledged by the peer
  std::uint64_t segs_in = 0;
  std::uint64_t segs_out = 0;
  std::uint64_t retransmits = 0;      // segments retransmitted (any cause)
  std::uint64_t fast_retransmits = 0;
  std::uint64_t timeouts = 0;         // RTO expiries
  std::uint64_t dup_acks_in = 0;
  std::uint64_t ooo_segs_in = 0;      // queued beyond RCV.NXT
  std::uint32_t unread = 0;           // bytes waiting in the receive queue
  std::uint32_t unacked = 0;          // bytes in the send buffer (sent or not)
};

}  // namespace ustack
