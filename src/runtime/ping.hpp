// The --ping client: sends ICMP echo requests from one lcore's stack on a
// fixed schedule and records each reply's round-trip time, for the control
// thread to print.
//
// Lcore side (poll, on_reply) never allocates, locks or makes a syscall. A
// reply may arrive on any lcore (RSS or kernel fanout picks the queue), so
// every per-sequence slot is an atomic: the sending lcore stores the send
// time, the receiving lcore claims the slot by exchanging in the RTT, and the
// control thread reads with acquire loads and prints.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "net/stack.hpp"
#include "runtime/options.hpp"

namespace ustack {

class PingSession {
 public:
  static constexpr TimeNs kInterval = 100 * kNsPerMs;
  // After the last request, how long to wait for replies before declaring
  // the rest lost. Longer than ARP's resolution timeout (1 s x 4 tries) would
  // only delay the summary; a second is what ping(8) waits with -c.
  static constexpr TimeNs kLinger = 1 * kNsPerSec;
  static constexpr std::size_t kPayload = 56;  // ping(8)'s default

  PingSession(const PingTarget& t, std::uint16_t ident)
      : dst_(t.dst), count_(t.count), ident_(ident), sent_at_(t.count), rtt_(t.count), printed_(t.count, false) {
    for (std::size_t i = 0; i < kPayload; ++i) payload_[i] = static_cast<std::uint8_t>(0x10 + i);
  }

  Ipv4Addr dst() const { return dst_; }
  std::uint16_t ident() const { return ident_; }
  std::uint16_t count() const { return count_; }

  // Lcore: sends the next request when due. `now` is the sender's clock.
  void poll(Stack& stack, TimeNs now) {
    if (finished_.load(std::memory_order_relaxed)) return;
    const std::uint32_t sent = sent_.load(std::memory_order_relaxed);
    if (sent < count_) {
      if (now < next_send_) return;
      // Sequence numbers start at 1, like ping(8).
      const auto seq = static_cast<std::uint16_t>(sent + 1);
      sent_at_[sent].store(now + 1, std::memory_order_release);  // +1: 0 means "not sent"
      stack.send_echo_request(dst_, ident_, seq, Bytes(payload_, kPayload), now);
      sent_.store(sent + 1, std::memory_order_release);
      last_send_ = now;
      next_send_ = now + kInterval;
      return;
    }
    if (received_.load(std::memory_order_relaxed) >= count_ || now >= last_send_ + kLinger)
      finished_.store(true, std::memory_order_release);
  }

  // Any lcore: a reply for this session (ident already matched).
  void on_reply(const EchoReply& r, TimeNs now) {
    if (r.seq == 0 || r.seq > count_ || r.from != dst_) return;
    const std::size_t i = r.seq - 1u;
    const TimeNs sent = sent_at_[i].load(std::memory_order_acquire);
    if (sent == 0) return;  // a reply to something we did not send
    const TimeNs rtt = now >= sent - 1 ? now - (sent - 1) : 0;
    std::uint64_t expected = 0;
    // +1 so that a (theoretical) zero RTT still marks the slot as taken.
    if (!rtt_[i].compare_exchange_strong(expected, rtt + 1, std::memory_order_acq_rel)) return;  // duplicate
    received_.fetch_add(1, std::memory_order_acq_rel);
  }

  // Control thread: calls fn(seq, rtt_ns) once for each reply not yet reported.
  template <typename Fn>
  void drain(Fn&& fn) {
    for (std::size_t i = 0; i < count_; ++i) {
      if (printed_[i]) continue;
      const std::uint64_t v = rtt_[i].load(std::memory_order_acquire);
      if (v == 0) continue;
      printed_[i] = true;
      const TimeNs rtt = v - 1;
      rtt_min_ = rtt_n_ == 0 || rtt < rtt_min_ ? rtt : rtt_min_;
      rtt_max_ = rtt > rtt_max_ ? rtt : rtt_max_;
      rtt_sum_ += rtt;
      ++rtt_n_;
      fn(static_cast<std::uint16_t>(i + 1), rtt);
    }
  }

  bool finished() const { return finished_.load(std::memory_order_acquire); }
  std::uint32_t sent() const { return sent_.load(std::memory_order_acquire); }
  std::uint32_t received() const { return received_.load(std::memory_order_acquire); }

  // Control thread, after drain(): "ping A: N sent, M received, X% loss[, rtt min/avg/max ...]".
  std::string summary() const {
    const std::uint32_t s = sent();
    const std::uint32_t r = rtt_n_;
    const unsigned loss = s == 0 ? 0u : static_cast<unsigned>((100ull * (s - std::min(r, s))) / s);
    char buf[200];
    int n = std::snprintf(buf, sizeof buf, "ping %s: %u sent, %u received, %u%% loss", dst_.to_string().c_str(), s, r,
                          loss);
    if (r != 0 && n > 0 && static_cast<std::size_t>(n) < sizeof buf)
      std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), ", rtt min/avg/max %.3f/%.3f/%.3f ms",
                    static_cast<double>(rtt_min_) / 1e6, static_cast<double>(rtt_sum_) / r / 1e6,
                    static_cast<double>(rtt_max_) / 1e6);
    return buf;
  }
  bool summary_printed = false;  // control thread only

 private:
  Ipv4Addr dst_;
  std::uint16_t count_;
  std::uint16_t ident_;
  std::uint8_t payload_[kPayload];
  // Sender lcore only.
  TimeNs next_send_ = 0;
  TimeNs last_send_ = 0;
  // Shared.
  std::atomic<std::uint32_t> sent_{0};
  std::atomic<std::uint32_t> received_{0};
  std::atomic<bool> finished_{false};
  std::vector<std::atomic<std::uint64_t>> sent_at_;
  std::vector<std::atomic<std::uint64_t>> rtt_;
  // Control thread only.
  std::vector<bool> printed_;
  TimeNs rtt_min_ = 0;
  TimeNs rtt_max_ = 0;
  TimeNs rtt_sum_ = 0;
  std::uint32_t rtt_n_ = 0;
};

// All sessions of one run; the lcore that owns queue 0 sends.
class PingSet {
 public:
  static constexpr std::uint16_t kIdentBase = 0x7573;  // "us"

  explicit PingSet(const std::vector<PingTarget>& targets) {
    for (std::size_t i = 0; i < targets.size(); ++i)
      sessions_.push_back(std::make_unique<PingSession>(targets[i], static_cast<std::uint16_t>(kIdentBase + i)));
  }

  bool empty() const { return sessions_.empty(); }

  void poll(Stack& stack, TimeNs now) {
    for (auto& s : sessions_) s->poll(stack, now);
  }

  // An EchoReplyFn; ctx is the PingSet.
  static void on_reply(const EchoReply& r, TimeNs now, void* ctx) {
    auto* self = static_cast<PingSet*>(ctx);
    const std::size_t i = static_cast<std::uint16_t>(r.ident - kIdentBase);
    if (i < self->sessions_.size()) self->sessions_[i]->on_reply(r, now);
  }

  std::vector<std::unique_ptr<PingSession>>& sessions() { return sessions_; }

 private:
  std::vector<std::unique_ptr<PingSession>> sessions_;
};

}  // namespace ustack
