// The one owning packet type: an rte_mbuf, wrapped once, with RAII.
//
// Protocol code sees packets through this class and byte spans; it includes
// rte_mbuf.h (a buffer library) but never rte_ethdev.h. Views borrow from the
// packet's data; they never outlive it. Headroom (RTE_PKTMBUF_HEADROOM, 128
// bytes) lets every layer prepend its header without copying.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <utility>

#include "core/bytes.hpp"

namespace ustack {

class Packet {
 public:
  Packet() = default;
  explicit Packet(rte_mbuf* m) : m_(m) {}
  Packet(Packet&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  Packet& operator=(Packet&& o) noexcept {
    if (this != &o) {
      reset();
      m_ = std::exchange(o.m_, nullptr);
    }
    return *this;
  }
  Packet(const Packet&) = delete;
  Packet& operator=(const Packet&) = delete;
  ~Packet() { reset(); }

  // A packet from `pool` with no data; empty (falsy) when the pool is exhausted.
  static Packet alloc(rte_mempool* pool) { return Packet{rte_pktmbuf_alloc(pool)}; }

  explicit operator bool() const { return m_ != nullptr; }
  rte_mbuf* get() const { return m_; }
  rte_mbuf* release() { return std::exchange(m_, nullptr); }
  void reset() {
    if (m_) rte_pktmbuf_free(m_);
    m_ = nullptr;
  }

  std::size_t len() const { return rte_pktmbuf_pkt_len(m_); }
  bool contiguous() const { return rte_pktmbuf_is_contiguous(m_) != 0; }
  // The first segment's data (all of it when contiguous()).
  MutBytes data() const { return {rte_pktmbuf_mtod(m_, std::uint8_t*), rte_pktmbuf_data_len(m_)}; }

  // Grows the front by n bytes and returns them; empty span when headroom is short.
  MutBytes prepend(std::size_t n) {
    auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(m_, static_cast<std::uint16_t>(n)));
    return p ? MutBytes{p, n} : MutBytes{};
  }
  // Grows the back by n bytes and returns them; empty span when tailroom is short.
  MutBytes append(std::size_t n) {
    auto* p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_append(m_, static_cast<std::uint16_t>(n)));
    return p ? MutBytes{p, n} : MutBytes{};
  }
  // Removes n bytes from the front / back. False when the packet is shorter.
  bool consume_front(std::size_t n) { return rte_pktmbuf_adj(m_, static_cast<std::uint16_t>(n)) != nullptr; }
  bool trim_back(std::size_t n) { return rte_pktmbuf_trim(m_, static_cast<std::uint16_t>(n)) == 0; }

 private:
  rte_mbuf* m_ = nullptr;
};

}  // namespace ustack
