// 0-RTT anti-replay: a bounded cache of ticket identities already used for
// early data (RFC 8446 §8.1 "single-use tickets", §8.2 "client hello
// recording", kept small by the ticket lifetime).
//
// An identity is remembered until its ticket could no longer be valid
// (window = ticket lifetime), so no replay inside the window is accepted.
// When the cache is full the guard fails closed: early data is refused (the
// handshake itself still succeeds, 1-RTT). It is per process: servers that
// share ticket keys across processes or machines must share the guard too,
// or give each its own ticket key.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <utility>

#include "tls/crypto.hpp"
#include "tls/engine.hpp"

namespace ustack::tls {

class SingleUseTickets final : public ReplayGuard {
 public:
  SingleUseTickets(std::size_t capacity, std::uint64_t window_ms) : capacity_(capacity), window_ms_(window_ms) {}
  void advance(std::uint64_t now_ms) {
    now_ms_ = now_ms;
    while (!order_.empty() && order_.front().first + window_ms_ < now_ms_) {
      seen_.erase(order_.front().second);
      order_.pop_front();
    }
  }
  bool first_use(Bytes identity) override {
    const Suite& s = *find_suite(TLS_AES_128_GCM_SHA256);
    const Secret h = hash(s, identity);  // identities are up to 64 KiB; keep 32 bytes
    Buf key(h.bytes().begin(), h.bytes().end());
    if (seen_.count(key) != 0) return false;
    if (seen_.size() >= capacity_) return false;  // fail closed
    seen_.insert(key);
    order_.emplace_back(now_ms_, std::move(key));
    return true;
  }
  std::size_t size() const { return seen_.size(); }

 private:
  std::size_t capacity_;
  std::uint64_t window_ms_;
  std::uint64_t now_ms_ = 0;
  std::set<Buf> seen_;
  std::deque<std::pair<std::uint64_t, Buf>> order_;
};

}  // namespace ustack::tls
