// UDP services that run on an lcore's UdpLayer (src/udp/udp_layer.hpp):
// what `ustack --udp-echo`, `--join` and `--mcast-send` run.
//
//   echo     every lcore: a socket on 0.0.0.0:PORT; each datagram goes back
//            to its sender in the mbuf it arrived in (zero-copy: the UDP and
//            IP headers are rewritten in its headroom), or copied when that
//            mbuf is shared.
//   join     the IGMP lcore (queue 0): a socket on 0.0.0.0:PORT joined to
//            GROUP (any source, or INCLUDE {SOURCE}), counting datagrams and
//            bytes and, for datagrams with the feed header (feed.hpp), the
//            sequence gaps and late arrivals.
//   send     the IGMP lcore: a publisher of RATE datagrams per second of SIZE
//            bytes to GROUP:PORT, each with the feed header (sequence from 0,
//            send time) followed by the test pattern.
//
// Counters follow tcp_services.hpp: one writer (the lcore), relaxed readers
// (the control thread). Nothing here allocates after construction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

#include "core/time.hpp"
#include "services/feed.hpp"
#include "services/tcp_services.hpp"
#include "udp/udp_layer.hpp"
#include "ustack/addr.hpp"

namespace ustack::services {

struct UdpServiceCounters {
  Gauge datagrams_in, bytes_in;
  Gauge datagrams_out, bytes_out;
  Gauge send_failed;  // a send the stack refused or could not build (no mbuf)
  // join: feed datagrams, sequence numbers missing, gaps (events), late
  // (reordered or duplicated) and datagrams without the feed header.
  Gauge feed, missing, gap_events, late, not_feed;
};

class UdpEcho {
 public:
  // Opens and binds a socket (reuse on, so --join may share the port).
  // Check ok() afterwards.
  UdpEcho(UdpLayer& udp, std::uint16_t port);
  ~UdpEcho();
  UdpEcho(const UdpEcho&) = delete;
  UdpEcho& operator=(const UdpEcho&) = delete;

  bool ok() const { return sock_ != nullptr; }
  std::uint16_t port() const { return port_; }
  const UdpServiceCounters& counters() const { return ctr_; }
  // The socket's receive-queue drops.
  std::uint64_t queue_drops() const { return queue_drops_.get(); }

 private:
  static void on_readable(UdpSocket& s, TimeNs now, void* ctx);
  std::uint16_t port_;
  UdpSocket* sock_ = nullptr;
  UdpServiceCounters ctr_;
  Gauge queue_drops_;
};

class McastJoin {
 public:
  McastJoin(UdpLayer& udp, Ipv4Addr group, std::uint16_t port, std::optional<Ipv4Addr> source);
  ~McastJoin();
  McastJoin(const McastJoin&) = delete;
  McastJoin& operator=(const McastJoin&) = delete;

  bool ok() const { return sock_ != nullptr; }
  // Joins (reports go out with the next flush). On failure the status says why.
  UdpStatus start(TimeNs now);
  // Leaves (closes the socket; the leave report goes out with the next flush).
  void stop(TimeNs now);
  // A failed start() for the control thread to report (release; read with failure()).
  void set_failed(UdpStatus st) { failed_.store(static_cast<std::uint8_t>(st) + 1, std::memory_order_release); }
  std::optional<UdpStatus> failure() const {
    const std::uint8_t f = failed_.load(std::memory_order_acquire);
    return f ? std::optional<UdpStatus>{static_cast<UdpStatus>(f - 1)} : std::nullopt;
  }
  Ipv4Addr group() const { return group_; }
  std::uint16_t port() const { return port_; }
  std::optional<Ipv4Addr> source() const { return source_; }
  const UdpServiceCounters& counters() const { return ctr_; }
  std::uint64_t queue_drops() const { return queue_drops_.get(); }

 private:
  static void on_readable(UdpSocket& s, TimeNs now, void* ctx);
  Ipv4Addr group_;
  std::uint16_t port_;
  std::optional<Ipv4Addr> source_;
  UdpSocket* sock_ = nullptr;
  FeedTracker feed_;
  UdpServiceCounters ctr_;
  Gauge queue_drops_;
  std::atomic<std::uint8_t> failed_{0};
};

class McastSender {
 public:
  // `wall_offset_ns` turns the loop's `now` into Unix-epoch ns for the
  // header's send time. `size` is the UDP payload (at least kFeedHeaderLen,
  // at most the layer's max_payload(): check ok()).
  McastSender(UdpLayer& udp, Ipv4Addr group, std::uint16_t port, std::uint32_t rate, std::uint16_t size,
              std::uint8_t ttl, bool loop, TimeNs wall_offset_ns);
  ~McastSender();
  McastSender(const McastSender&) = delete;
  McastSender& operator=(const McastSender&) = delete;

  bool ok() const { return sock_ != nullptr; }
  void start(TimeNs now);
  // Sends what is due by `now`, at most kMaxBurst datagrams per call; a
  // publisher that fell further behind (a stalled loop) skips the slots it
  // missed instead of bursting them all.
  void poll(TimeNs now);
  static constexpr unsigned kMaxBurst = 32;

  Ipv4Addr group() const { return group_; }
  std::uint16_t port() const { return port_; }
  std::uint32_t rate() const { return rate_; }
  std::uint16_t size() const { return size_; }
  const UdpServiceCounters& counters() const { return ctr_; }

 private:
  TimeNs slot_time(std::uint64_t k) const {
    return start_ + static_cast<TimeNs>((k / rate_) * kNsPerSec + (k % rate_) * kNsPerSec / rate_);
  }

  Ipv4Addr group_;
  std::uint16_t port_;
  std::uint32_t rate_;
  std::uint16_t size_;
  TimeNs wall_offset_;
  UdpSocket* sock_ = nullptr;
  bool started_ = false;
  TimeNs start_ = 0;
  std::uint64_t slot_ = 0;  // the next send slot since start
  std::uint64_t seq_ = 0;   // the next sequence number
  std::array<std::uint8_t, 9216> buf_{};
  UdpServiceCounters ctr_;
};

}  // namespace ustack::services
