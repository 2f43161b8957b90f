// A hashed timer wheel, one per lcore, driven by the poll loop's `now`.
//
// Timers are intrusive (embedded in their owner: an ARP entry, a connection),
// so arming and cancelling never allocate. The wheel has a fixed number of
// slots of `tick_ns` each; a timer further out than one rotation waits in its
// slot and is skipped until its deadline is reached (its deadline is compared
// exactly, so nothing fires early). Firing is late by at most one tick plus
// the loop's iteration time.
//
// The wheel never reads a clock: advance(now) fires everything due by `now`,
// and asserts that time does not go backwards.
//
// The wheel keeps a lower bound of every armed deadline, so the poll loop's
// call to advance() when nothing is due is a compare and a return (and, once
// per tick, a look at the slot the hand moves to), and next_deadline() is
// O(1) until a timer fires or the earliest one is cancelled.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/time.hpp"

namespace ustack {

class TimerWheel;

class Timer {
 public:
  using Fn = void (*)(Timer& t, TimeNs now, void* ctx);

  Timer() = default;
  Timer(Fn fn, void* ctx) : fn_(fn), ctx_(ctx) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();  // cancels through the wheel, so its earliest-deadline cache stays right

  void set_callback(Fn fn, void* ctx) { fn_ = fn; ctx_ = ctx; }
  bool armed() const { return next_ != this; }
  TimeNs deadline() const { return deadline_; }

 private:
  friend class TimerWheel;
  void unlink() {
    next_->prev_ = prev_;
    prev_->next_ = next_;
    next_ = prev_ = this;
  }
  void link_before(Timer& pos) {  // insert before pos (pos is a sentinel: append)
    next_ = &pos;
    prev_ = pos.prev_;
    pos.prev_->next_ = this;
    pos.prev_ = this;
  }

  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
  TimeNs deadline_ = kNever;
  Timer* next_ = this;
  Timer* prev_ = this;
  TimerWheel* wheel_ = nullptr;  // the wheel it was last armed on
};

class TimerWheel {
 public:
  // slots must be a power of two. Allocation happens here, at start-up only.
  explicit TimerWheel(TimeNs tick_ns = 100 * kNsPerUs, std::size_t slots = 4096, TimeNs start = 0)
      : tick_(tick_ns),
        mask_(slots - 1),
        slots_(slots),
        cur_tick_(start / tick_ns),
        next_tick_start_((cur_tick_ + 1) * tick_ns),
        now_(start) {
    assert(slots != 0 && (slots & (slots - 1)) == 0);
  }
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel() {
    for (Timer& s : slots_)
      for (Timer* t = s.next_; t != &s; t = t->next_) t->wheel_ = nullptr;
  }

  // (Re)arm `t` to fire at `deadline`; a deadline in the past fires on the next advance().
  void arm(Timer& t, TimeNs deadline) {
    if (t.armed() && t.deadline_ == lower_bound_) exact_ = false;
    t.unlink();
    t.wheel_ = this;
    t.deadline_ = deadline;
    std::uint64_t tick = deadline / tick_;
    if (tick < cur_tick_) tick = cur_tick_;
    t.link_before(slots_[tick & mask_]);
    if (deadline < lower_bound_) lower_bound_ = deadline;  // stays exact if it was
  }

  void cancel(Timer& t) {
    if (!t.armed()) return;
    t.unlink();
    if (t.deadline_ == lower_bound_) exact_ = false;  // still a valid lower bound
  }

  // Fire every timer whose deadline is <= now. Returns how many fired.
  std::size_t advance(TimeNs now) {
    assert(now >= now_ && "time went backwards");
    now_ = now;
    if (now < lower_bound_) {  // nothing can be due
      if (now >= next_tick_start_) set_hand(now / tick_);  // a division once per tick, not per call
      return 0;
    }
    const std::uint64_t target = now / tick_;
    // Timers armed by callbacks during the pass lower the bound through arm().
    lower_bound_ = kNever;
    exact_ = false;
    std::uint64_t first = cur_tick_;
    // After a long gap (idle replay), one full rotation visits every slot.
    if (target - first > mask_) first = target - mask_;
    // Move the clock hand before running callbacks: a timer they arm for a
    // past deadline is clamped to `target`, a slot the next advance visits,
    // not to a slot this pass has already left behind.
    set_hand(target);
    std::size_t fired = 0;
    TimeNs current_slot_min = kNever;
    for (std::uint64_t tick = first; tick <= target; ++tick)
      fired += run_slot(slots_[tick & mask_], now, tick == target ? &current_slot_min : nullptr);
    slot_visits_ += target - first + 1;
    // What is left is not due: in the current slot, at its earliest deadline
    // (just measured); in any other slot, not before the next tick starts (a
    // slot behind the hand holds only timers of later rotations). Without
    // this bound every later advance() would walk the current slot again
    // until the next timer fires: with thousands of armed timers (TIME-WAIT,
    // keepalives) a cost on every poll-loop iteration.
    lower_bound_ = std::min({lower_bound_, current_slot_min, next_tick_start_});
    return fired;
  }

  // Earliest deadline among armed timers (kNever when none). O(slots): for idle
  // loops and replays deciding how far to jump, not for the per-packet path.
  TimeNs next_deadline() const {
    if (exact_) return lower_bound_;
    TimeNs best = kNever;
    for (const Timer& s : slots_)
      for (const Timer* t = s.next_; t != &s; t = t->next_)
        if (t->deadline_ < best) best = t->deadline_;
    lower_bound_ = best;
    exact_ = true;
    return best;
  }

  // O(armed timers + slots); for tests and diagnostics.
  std::size_t armed_count() const {
    std::size_t n = 0;
    for (const Timer& s : slots_)
      for (const Timer* t = s.next_; t != &s; t = t->next_) ++n;
    return n;
  }
  TimeNs now() const { return now_; }
  TimeNs tick_ns() const { return tick_; }
  // Slots advance() has walked since construction: what advancing costs.
  std::uint64_t slot_visits() const { return slot_visits_; }

 private:
  void set_hand(std::uint64_t tick) {
    cur_tick_ = tick;
    next_tick_start_ = (tick + 1) * tick_;
  }

  // Fires the slot's due timers. `left_min`, when given, receives the
  // earliest deadline among the timers left in the slot (kNever if none).
  std::size_t run_slot(Timer& slot, TimeNs now, TimeNs* left_min) {
    if (slot.next_ == &slot) return 0;
    // Move the slot's timers to a local list, then put back what is not due.
    // A callback may arm or cancel any timer (itself included); the intrusive
    // unlink keeps both lists consistent.
    Timer pending;
    pending.next_ = slot.next_;
    pending.prev_ = slot.prev_;
    slot.next_->prev_ = &pending;
    slot.prev_->next_ = &pending;
    slot.next_ = slot.prev_ = &slot;
    std::size_t fired = 0;
    while (pending.next_ != &pending) {
      Timer* t = pending.next_;
      t->unlink();
      if (t->deadline_ <= now) {
        ++fired;
        if (t->fn_) t->fn_(*t, now, t->ctx_);
      } else {
        t->link_before(slot);
      }
    }
    // Callbacks may have armed or cancelled timers of this slot: read what
    // is there now.
    if (left_min)
      for (const Timer* t = slot.next_; t != &slot; t = t->next_) *left_min = std::min(*left_min, t->deadline_);
    return fired;
  }

  TimeNs tick_;
  std::uint64_t mask_;
  std::vector<Timer> slots_;  // sentinels
  std::uint64_t cur_tick_;
  TimeNs next_tick_start_;  // (cur_tick_ + 1) * tick_
  TimeNs now_;
  // Every armed deadline is >= lower_bound_; equal to the earliest when exact_.
  mutable TimeNs lower_bound_ = kNever;
  mutable bool exact_ = true;
  std::uint64_t slot_visits_ = 0;
};

inline Timer::~Timer() {
  if (wheel_ && armed())
    wheel_->cancel(*this);
  else
    unlink();
}

}  // namespace ustack
