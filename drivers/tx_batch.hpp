// Collects a loop iteration's output and hands it to the device in bursts.
//
// A short tx_burst is counted as a drop and the rest freed, never leaked and
// never retried (retrying would stall the loop behind a full ring).
#pragma once

#include <array>
#include <cstdint>

#include "drivers/device.hpp"

namespace ustack {

class TxBatch {
 public:
  static constexpr std::uint16_t kCapacity = 64;

  explicit TxBatch(Device& dev) : dev_(dev) {}
  TxBatch(const TxBatch&) = delete;
  TxBatch& operator=(const TxBatch&) = delete;
  ~TxBatch() { drop_all(); }

  struct Flushed {
    std::uint32_t sent = 0;
    std::uint32_t dropped = 0;
    std::uint64_t sent_bytes = 0;
  };

  // Queues one packet; a full batch is flushed first (its result added to `acc`).
  void push(rte_mbuf* m, TimeNs now, Flushed& acc) {
    if (n_ == kCapacity) add(acc, flush(now));
    pkts_[n_++] = m;
  }

  Flushed flush(TimeNs now) {
    Flushed r;
    if (n_ == 0) return r;
    std::uint64_t bytes = 0;
    for (std::uint16_t i = 0; i < n_; ++i) bytes += rte_pktmbuf_pkt_len(pkts_[i]);
    const std::uint16_t sent = dev_.tx_burst(std::span<rte_mbuf*>(pkts_.data(), n_), now);
    r.sent = sent;
    r.dropped = static_cast<std::uint32_t>(n_ - sent);
    if (sent < n_) {
      for (std::uint16_t i = sent; i < n_; ++i) bytes -= rte_pktmbuf_pkt_len(pkts_[i]);
      rte_pktmbuf_free_bulk(pkts_.data() + sent, n_ - sent);
    }
    r.sent_bytes = bytes;
    n_ = 0;
    return r;
  }

  static void add(Flushed& acc, const Flushed& f) {
    acc.sent += f.sent;
    acc.dropped += f.dropped;
    acc.sent_bytes += f.sent_bytes;
  }

  std::uint16_t size() const { return n_; }
  Device& device() { return dev_; }

 private:
  void drop_all() {
    if (n_) rte_pktmbuf_free_bulk(pkts_.data(), n_);
    n_ = 0;
  }
  Device& dev_;
  std::array<rte_mbuf*, kCapacity> pkts_{};
  std::uint16_t n_ = 0;
};

}  // namespace ustack
