// A bounded single-producer/single-consumer ring: how calls cross from an
// application thread to an lcore and how completions come back (issue 5's
// shim). Lock-free and wait-free: push and pop never block, a full ring
// says so (the caller turns that into EAGAIN or backpressure).
//
// Layout: the producer's index and the consumer's index live on their own
// cache lines, each side keeps a cached copy of the other's index and only
// re-reads the shared one when the cache says the ring is full (producer)
// or empty (consumer). A burst of n elements costs one acquire load (at
// most) and one release store per side, not one per element.
//
// Memory order: the producer writes the slots, then publishes the new tail
// with a release store; the consumer's acquire load of the tail makes those
// slot writes visible before it reads them. Symmetrically for the head, so
// the producer never overwrites a slot still being read.
//
// T must be trivially copyable (slots are overwritten in place; no
// destructor runs when an element leaves the ring).
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

namespace ustack {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "slots are overwritten in place");

 public:
  // `capacity` is rounded up to a power of two (at least 2). Allocates here only.
  explicit SpscRing(std::size_t capacity) {
    std::size_t n = 2;
    while (n < capacity) n <<= 1;
    slots_.resize(n);
    mask_ = n - 1;
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const { return mask_ + 1; }

  // Producer side. Pushes a prefix of `items`; returns how many went in.
  std::size_t push(std::span<const T> items) {
    const std::uint64_t tail = prod_.tail.load(std::memory_order_relaxed);
    std::size_t room = capacity() - static_cast<std::size_t>(tail - prod_.head_cache);
    if (room < items.size()) {
      prod_.head_cache = cons_.head.load(std::memory_order_acquire);
      room = capacity() - static_cast<std::size_t>(tail - prod_.head_cache);
    }
    const std::size_t n = items.size() < room ? items.size() : room;
    for (std::size_t i = 0; i < n; ++i) slots_[(tail + i) & mask_] = items[i];
    if (n) prod_.tail.store(tail + n, std::memory_order_release);
    return n;
  }
  bool push(const T& item) { return push(std::span<const T>(&item, 1)) == 1; }
  // Producer side: true when n more elements fit now (the consumer may only
  // make more room meanwhile).
  bool has_room(std::size_t n) {
    const std::uint64_t tail = prod_.tail.load(std::memory_order_relaxed);
    if (capacity() - static_cast<std::size_t>(tail - prod_.head_cache) >= n) return true;
    prod_.head_cache = cons_.head.load(std::memory_order_acquire);
    return capacity() - static_cast<std::size_t>(tail - prod_.head_cache) >= n;
  }

  // Consumer side. Pops up to out.size() elements; returns how many.
  std::size_t pop(std::span<T> out) {
    const std::size_t n = peek(out);
    advance(n);
    return n;
  }
  bool pop(T& item) { return pop(std::span<T>(&item, 1)) == 1; }

  // Consumer side, in two steps: peek() copies up to out.size() elements
  // without taking them, advance(n) then takes the first n of those (n at
  // most what peek returned). What is not taken is seen again next time, so
  // a consumer that cannot handle an element yet leaves it in the ring
  // (backpressure on the producer) instead of keeping it elsewhere.
  std::size_t peek(std::span<T> out) {
    const std::uint64_t head = cons_.head.load(std::memory_order_relaxed);
    std::size_t avail = static_cast<std::size_t>(cons_.tail_cache - head);
    if (avail < out.size()) {
      cons_.tail_cache = prod_.tail.load(std::memory_order_acquire);
      avail = static_cast<std::size_t>(cons_.tail_cache - head);
    }
    const std::size_t n = out.size() < avail ? out.size() : avail;
    for (std::size_t i = 0; i < n; ++i) out[i] = slots_[(head + i) & mask_];
    return n;
  }
  void advance(std::size_t n) {
    if (n) cons_.head.store(cons_.head.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  // Producer side: the position the next pushed element will have
  // (elements are numbered from 0 in push order).
  std::uint64_t next_position() const { return prod_.tail.load(std::memory_order_relaxed); }
  // Consumer side: how many elements have been popped (the position of the
  // next one to pop).
  std::uint64_t consumed() const { return cons_.head.load(std::memory_order_relaxed); }

  // Either side, approximate (the other side may move meanwhile).
  std::size_t size() const {
    return static_cast<std::size_t>(prod_.tail.load(std::memory_order_acquire) -
                                    cons_.head.load(std::memory_order_acquire));
  }
  bool empty() const { return size() == 0; }

 private:
  struct alignas(kCacheLine) Producer {
    std::atomic<std::uint64_t> tail{0};
    std::uint64_t head_cache = 0;  // the consumer's head, as last read
  };
  struct alignas(kCacheLine) Consumer {
    std::atomic<std::uint64_t> head{0};
    std::uint64_t tail_cache = 0;  // the producer's tail, as last read
  };
  Producer prod_;
  Consumer cons_;
  std::vector<T> slots_;
  std::size_t mask_ = 0;
};

}  // namespace ustack
