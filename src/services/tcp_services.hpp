// TCP test services and the test client that run on an lcore, on that
// lcore's TcpLayer (src/tcp/tcp_layer.hpp): what `ustack --tcp-echo`,
// `--tcp-discard`, `--tcp-source` and `--tcp-get` run.
//
// Every lcore runs its own instance of each service, listening on the same
// port: RSS (or the kernel's fanout) decides which lcore a flow belongs to,
// and that lcore's instance serves it alone. Nothing is shared between
// lcores except the counters, which the lcore writes with relaxed stores and
// the control thread reads with relaxed loads (like StackCounters).
//
// Per-connection state lives in a table allocated at construction, one slot
// per TcpLayer connection slot (indexed by TcpConnId::index), so serving a
// connection allocates nothing.
//
//   echo     zero-copy: each received mbuf (read_zero_copy) is handed back to
//            send_zero_copy. When the send buffer has no room for it, the
//            mbuf is held and reading stops (the receive window closes and
//            the peer is flow-controlled) until on_writable; a part that
//            fits is copied meanwhile, so a send buffer smaller than one
//            segment cannot stall it. At the peer's FIN, after echoing
//            everything, it closes.
//   discard  reads and frees; closes at the peer's FIN.
//   source   sends `bytes` of the pattern (services/pattern.hpp) and closes,
//            discarding whatever the client sends (an HTTP request from curl,
//            say) so that closing does not reset.
//   get      the client: connects, receives until EOF checking every byte
//            against the pattern and the count against the expected one,
//            closes, and publishes the result for the control thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/time.hpp"
#include "net/packet.hpp"
#include "tcp/tcp_layer.hpp"
#include "ustack/addr.hpp"
#include "ustack/tcp.hpp"

namespace ustack::services {

// A counter with one writer (the owning lcore) and relaxed readers.
class Gauge {
 public:
  void add(std::uint64_t by = 1) { v_.store(v_.load(std::memory_order_relaxed) + by, std::memory_order_relaxed); }
  void sub(std::uint64_t by = 1) { v_.store(v_.load(std::memory_order_relaxed) - by, std::memory_order_relaxed); }
  std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void store_max(std::uint64_t v) {
    if (v > get()) v_.store(v, std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> v_{0};
};

struct ServiceCounters {
  Gauge connections;  // accepted
  Gauge active;       // accepted and not yet closed
  Gauge completed;    // ended in order (peer's FIN seen, or all sent) and closed by us
  Gauge failed;       // reset, timed out or aborted
  Gauge bytes_in;     // payload received
  Gauge bytes_out;    // payload handed to TCP
};

enum class ServiceKind : std::uint8_t { echo, discard, source };
const char* to_string(ServiceKind k);

class TcpService final : public tcp::TcpHandler {
 public:
  // Listens on `port` (every local address) with `backlog`. `source_bytes`
  // is what a source sends each client. Check listening() afterwards.
  TcpService(tcp::TcpLayer& tcp, ServiceKind kind, std::uint16_t port, std::uint64_t source_bytes);
  TcpService(const TcpService&) = delete;
  TcpService& operator=(const TcpService&) = delete;
  ~TcpService();

  bool listening() const { return listener_.has_value(); }
  ServiceKind kind() const { return kind_; }
  std::uint16_t port() const { return port_; }
  std::uint64_t source_bytes() const { return source_bytes_; }
  const ServiceCounters& counters() const { return ctr_; }

  void on_accept(tcp::TcpLayer& t, TcpListenerId l, TcpConnId c, TimeNs now) override;
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_writable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_closed(tcp::TcpLayer& t, TcpConnId c, TcpError err, TimeNs now) override;

 private:
  struct Slot {
    bool in_use = false;
    TcpConnId id;
    Packet pending;          // echo: received, not yet accepted by the send buffer
    std::uint64_t sent = 0;  // source: pattern bytes handed to TCP
  };
  Slot* slot_of(TcpConnId c);
  void echo(tcp::TcpLayer& t, Slot& s, TimeNs now);
  bool flush_pending(tcp::TcpLayer& t, Slot& s, TimeNs now);
  void drain(tcp::TcpLayer& t, Slot& s, TimeNs now);  // discard what arrived
  void source(tcp::TcpLayer& t, Slot& s, TimeNs now);
  void finish(tcp::TcpLayer& t, Slot& s, TimeNs now);  // close() and forget

  tcp::TcpLayer& tcp_;
  ServiceKind kind_;
  std::uint16_t port_;
  std::uint64_t source_bytes_;
  std::optional<TcpListenerId> listener_;
  std::vector<Slot> slots_;
  ServiceCounters ctr_;
};

// Client mode. Runs on one lcore; start() and poll() come from its loop.
class TcpGet final : public tcp::TcpHandler {
 public:
  enum class Outcome : std::uint8_t {
    running,
    ok,
    no_connection,  // connect() refused locally (no slot, no port)
    refused,
    reset,
    timed_out,
    short_count,    // EOF before the expected count
    long_count,     // more than the expected count
    mismatch,       // a byte differs from the pattern
  };
  struct Result {
    Outcome outcome = Outcome::running;
    std::uint64_t bytes = 0;
    std::uint64_t mismatch_at = 0;  // stream offset of the first bad byte
    TimeNs elapsed = 0;             // connect() to EOF (or failure)
    TimeNs connect_time = 0;        // connect() to established
    TcpConnStats conn;              // at EOF
  };

  TcpGet(Ipv4Addr dst, std::uint16_t port, std::optional<std::uint64_t> expect, TimeNs timeout);

  void start(tcp::TcpLayer& t, TimeNs now);
  // The overall deadline; cheap when nothing is due.
  void poll(tcp::TcpLayer& t, TimeNs now);

  // For the control thread: true once the result is final (acquire), after
  // which result() may be read.
  bool done() const { return done_.load(std::memory_order_acquire); }
  const Result& result() const { return res_; }
  Ipv4Addr dst() const { return dst_; }
  std::uint16_t port() const { return port_; }
  std::optional<std::uint64_t> expected() const { return expect_; }
  std::uint64_t bytes_so_far() const { return progress_.get(); }

  void on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override;
  void on_closed(tcp::TcpLayer& t, TcpConnId c, TcpError err, TimeNs now) override;

 private:
  void end(Outcome o, TimeNs now);

  Ipv4Addr dst_;
  std::uint16_t port_;
  std::optional<std::uint64_t> expect_;
  TimeNs timeout_;
  TimeNs start_ = 0;
  TimeNs deadline_ = kNever;
  std::optional<TcpConnId> conn_;
  Result res_;
  Gauge progress_;
  std::atomic<bool> done_{false};
};

const char* to_string(TcpGet::Outcome o);

}  // namespace ustack::services
