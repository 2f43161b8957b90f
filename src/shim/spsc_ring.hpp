// A bounded single-producer/single-consumer ring: how calls cross from an
// application thread to an lcore and how completions come back (issue 5's
// shim). Lock-free and wait-free: push and pop never block, a full ring
// says so (the caller turns that into EAGAIN or backpressure).
//
// Layout: each slot carries a sequence word next to its element, written
// last by the producer (release): the consumer finds the next element by
// reading that slot alone, so an element costs the consumer one transfer of
// the slot's line(s) from the producer's CPU, not also one of a shared tail
// index. The producer's tail and the consumer's head live on their own
// cache lines; the producer reads the consumer's head only when its cached
// copy says the ring is full, so freeing slots costs the producer nothing
// while there is room. A burst of n elements costs one release store per
// element (its sequence word) and one for the head. Either side may work on
// an element where it lies (emplace, front): a message is then written once
// and read once, with no copy through a stack on either side.
//
// Memory order: the producer writes the element, then its slot's sequence
// (position + 1) with a release store; the consumer's acquire load of that
// word makes the element visible before it reads it. The sequence of a
// slot's next use is a capacity higher, so a stale slot never matches. The
// consumer's release store of its head after reading orders those reads
// before the producer, having read the head (acquire), overwrites the slots.
//
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <memory>

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
    slots_ = std::make_unique<Slot[]>(n);
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
    for (std::size_t i = 0; i < n; ++i) {
      Slot& s = slots_[(tail + i) & mask_];
      s.value = items[i];
      s.seq.store(tail + i + 1, std::memory_order_release);
    }
    if (n) prod_.tail.store(tail + n, std::memory_order_relaxed);
    return n;
  }
  bool push(const T& item) { return push(std::span<const T>(&item, 1)) == 1; }
  // Producer side, in place: fill(T&) writes the next element straight into
  // its slot, with no copy through the caller's stack; false (fill not
  // called) when the ring is full. The slot holds an element from an
  // earlier lap: fill sets every field the element's reader looks at.
  template <class Fill>
  bool emplace(Fill&& fill) {
    if (!has_room(1)) return false;
    const std::uint64_t tail = prod_.tail.load(std::memory_order_relaxed);
    Slot& s = slots_[tail & mask_];
    fill(s.value);
    s.seq.store(tail + 1, std::memory_order_release);
    prod_.tail.store(tail + 1, std::memory_order_relaxed);
    return true;
  }
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
    std::size_t n = 0;
    for (const T* e; n < out.size() && (e = front(n)) != nullptr; ++n) out[n] = *e;
    return n;
  }
  // Consumer side, in place: the i-th element after the last one taken, if
  // it has arrived (null otherwise). Elements arrive in order, so ask for i
  // only once i - 1 was there. It stays where it is, unchanged, until
  // advance() takes it: the consumer reads it from the slot, not a copy.
  const T* front(std::size_t i = 0) const {
    const std::uint64_t pos = cons_.head.load(std::memory_order_relaxed) + i;
    const Slot& s = slots_[pos & mask_];
    // A slot of two lines: ask for the second with the first, so that an
    // element that has just arrived costs one wait for the producer's CPU,
    // not two in a row. Only a hint: it is read after the acquire.
    if constexpr (sizeof(Slot) > kCacheLine) __builtin_prefetch(reinterpret_cast<const char*>(&s) + kCacheLine);
    return s.seq.load(std::memory_order_acquire) == pos + 1 ? &s.value : nullptr;
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

  // Either side, approximate (the other side may move meanwhile). Reads
  // both indexes: not for a fast path.
  std::size_t size() const {
    const std::uint64_t head = cons_.head.load(std::memory_order_acquire);
    const std::uint64_t tail = prod_.tail.load(std::memory_order_relaxed);
    return tail > head ? static_cast<std::size_t>(tail - head) : 0;
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
  // A slot of a line or more starts on a line, so that an element crosses
  // in as few lines as it can; small ones are packed.
  static constexpr std::size_t kSlotAlign =
      sizeof(T) + sizeof(std::uint64_t) >= kCacheLine / 2 ? kCacheLine : alignof(std::atomic<std::uint64_t>);
  struct alignas(kSlotAlign) Slot {
    std::atomic<std::uint64_t> seq{0};  // position + 1 once the element at that position is in
    T value{};
  };
  Producer prod_;
  Consumer cons_;
  std::unique_ptr<Slot[]> slots_;
  std::size_t mask_ = 0;
};

}  // namespace ustack
