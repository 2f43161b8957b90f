// The hashed timer wheel: timers fire at the first advance() whose `now`
// reaches their deadline — never earlier, and never at a later advance.
//
// The core tests need no EAL, so this binary has its own Catch2 main.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "core/time.hpp"
#include "core/timer_wheel.hpp"

using namespace ustack;

namespace {

constexpr TimeNs kTick = kNsPerMs;

// A timer that records when it fired; optionally runs `then` from its callback.
struct Probe {
  Timer timer;
  int id = 0;
  std::vector<TimeNs> fired_at;
  TimerWheel* wheel = nullptr;
  void (*then)(Probe& self, TimeNs now) = nullptr;
  void* user = nullptr;

  explicit Probe(int i = 0) : timer(&Probe::on_fire, this), id(i) {}

  static void on_fire(Timer& t, TimeNs now, void* ctx) {
    auto* self = static_cast<Probe*>(ctx);
    REQUIRE(&t == &self->timer);
    REQUIRE_FALSE(t.armed());  // unlinked before its callback runs
    self->fired_at.push_back(now);
    if (self->then) self->then(*self, now);
  }
};

}  // namespace

TEST_CASE("TimerWheel: a timer fires at the first advance that reaches its deadline",
          "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe p;
  w.arm(p.timer, 5 * kTick + 300);
  CHECK(p.timer.armed());
  CHECK(p.timer.deadline() == 5 * kTick + 300);
  CHECK(w.armed_count() == 1);

  CHECK(w.advance(5 * kTick) == 0);        // same slot, deadline not reached
  CHECK(w.advance(5 * kTick + 299) == 0);  // one ns early
  CHECK(p.fired_at.empty());
  CHECK(w.advance(5 * kTick + 300) == 1);  // exactly due
  REQUIRE(p.fired_at.size() == 1);
  CHECK(p.fired_at[0] == 5 * kTick + 300);
  CHECK_FALSE(p.timer.armed());
  CHECK(w.armed_count() == 0);
  CHECK(w.advance(100 * kTick) == 0);  // never twice
  CHECK(p.fired_at.size() == 1);
}

TEST_CASE("TimerWheel: never early, never skipped, over random deadlines and steps",
          "[timer_wheel]") {
  // 16 slots of 1 ms: deadlines up to 400 ms are many rotations out.
  std::mt19937_64 rng(20240601);
  for (int round = 0; round < 20; ++round) {
    TimerWheel w(kTick, 16);
    std::vector<std::unique_ptr<Probe>> probes;
    for (int i = 0; i < 200; ++i) {
      probes.push_back(std::make_unique<Probe>(i));
      w.arm(probes.back()->timer, rng() % (400 * kTick));
    }
    REQUIRE(w.armed_count() == 200);
    TimeNs now = 0;
    TimeNs prev = 0;
    while (now < 420 * kTick) {
      // Steps from 1 ns to a few ticks, sometimes zero (same now twice).
      const auto r = rng() % 10;
      const TimeNs step = r == 0 ? 0 : r < 4 ? rng() % 1000 : r < 8 ? rng() % kTick : rng() % (4 * kTick);
      now += step;
      std::size_t due = 0;
      for (const auto& p : probes)
        if (p->fired_at.empty() && p->timer.deadline() <= now) ++due;
      REQUIRE(w.advance(now) == due);
      for (const auto& p : probes) {
        const TimeNs d = p->timer.deadline();
        // Due: fired exactly once, at the first advance that reached d.
        // Not due: still armed, never fired.
        const bool good = d <= now ? p->fired_at.size() == 1 && p->fired_at[0] >= d &&
                                         (d <= prev || p->fired_at[0] == now)
                                   : p->fired_at.empty() && p->timer.armed();
        if (!good) {
          INFO("timer " << p->id << " deadline " << d << " now " << now << " prev " << prev
                        << " fired " << p->fired_at.size() << " times, first at "
                        << (p->fired_at.empty() ? kNever : p->fired_at[0]));
          REQUIRE(good);
        }
      }
      prev = now;
    }
    CHECK(w.armed_count() == 0);
  }
}

TEST_CASE("TimerWheel: advancing every tick, a timer is late by less than one tick",
          "[timer_wheel]") {
  TimerWheel w(kTick, 64);
  std::mt19937_64 rng(7);
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 500; ++i) {
    probes.push_back(std::make_unique<Probe>(i));
    w.arm(probes.back()->timer, 1 + rng() % (200 * kTick));
  }
  for (TimeNs now = kTick; now <= 201 * kTick; now += kTick) w.advance(now);
  for (const auto& p : probes) {
    REQUIRE(p->fired_at.size() == 1);
    CHECK(p->fired_at[0] >= p->timer.deadline());
    CHECK(p->fired_at[0] - p->timer.deadline() < kTick);
  }
}

TEST_CASE("TimerWheel: a deadline in the past fires on the next advance", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  w.advance(10 * kTick + 500);
  Probe past, zero, now_exact;
  w.arm(past.timer, 3 * kTick);         // several slots behind
  w.arm(zero.timer, 0);                 // the epoch
  w.arm(now_exact.timer, w.now());      // exactly now
  // No time passes: still fires, at the same `now`.
  CHECK(w.advance(10 * kTick + 500) == 3);
  CHECK(past.fired_at == std::vector<TimeNs>{10 * kTick + 500});
  CHECK(zero.fired_at.size() == 1);
  CHECK(now_exact.fired_at.size() == 1);

  // Same, a whole rotation later.
  w.advance(40 * kTick);
  w.arm(past.timer, 39 * kTick - 1);
  CHECK(w.advance(40 * kTick + 1) == 1);
  CHECK(past.fired_at.size() == 2);
}

TEST_CASE("TimerWheel: a wheel started at a non-zero time", "[timer_wheel]") {
  TimerWheel w(kTick, 8, 1000 * kTick + 5);
  CHECK(w.now() == 1000 * kTick + 5);
  Probe a, b;
  w.arm(a.timer, 1000 * kTick + 10);
  w.arm(b.timer, 2 * kTick);  // long before the start
  CHECK(w.advance(1000 * kTick + 9) == 1);
  CHECK(b.fired_at.size() == 1);
  CHECK(a.fired_at.empty());
  CHECK(w.advance(1000 * kTick + 10) == 1);
  CHECK(a.fired_at.size() == 1);
}

TEST_CASE("TimerWheel: timers farther out than one rotation wait for their deadline",
          "[timer_wheel]") {
  // 8 slots of 1 ms = 8 ms per rotation; the timer is 12.5 rotations out and
  // shares its slot with timers that fire on every pass.
  TimerWheel w(kTick, 8);
  Probe far, near1, near2;
  const TimeNs far_deadline = 100 * kTick + 17;  // slot 100 & 7 == 4
  w.arm(far.timer, far_deadline);
  w.arm(near1.timer, 4 * kTick);   // slot 4, first pass
  w.arm(near2.timer, 12 * kTick);  // slot 4, second pass
  CHECK(w.next_deadline() == 4 * kTick);
  for (TimeNs now = 0; now < far_deadline; now += kTick / 2) {
    w.advance(now);
    REQUIRE(far.fired_at.empty());
    REQUIRE(far.timer.armed());
  }
  CHECK(near1.fired_at == std::vector<TimeNs>{4 * kTick});
  CHECK(near2.fired_at == std::vector<TimeNs>{12 * kTick});
  CHECK(w.next_deadline() == far_deadline);
  CHECK(w.advance(far_deadline) == 1);
  CHECK(far.fired_at == std::vector<TimeNs>{far_deadline});
}

TEST_CASE("TimerWheel: a jump longer than a rotation fires everything due exactly once",
          "[timer_wheel]") {
  TimerWheel w(kTick, 8);
  std::vector<std::unique_ptr<Probe>> probes;
  // Deadlines 1..50 ms: every slot holds several, from different rotations.
  for (int i = 1; i <= 50; ++i) {
    probes.push_back(std::make_unique<Probe>(i));
    w.arm(probes.back()->timer, static_cast<TimeNs>(i) * kTick + 123);
  }
  Probe later;
  w.arm(later.timer, 1000 * kTick);
  CHECK(w.advance(500 * kTick) == 50);
  for (const auto& p : probes) CHECK(p->fired_at == std::vector<TimeNs>{500 * kTick});
  CHECK(later.fired_at.empty());
  CHECK(w.armed_count() == 1);
  CHECK(w.next_deadline() == 1000 * kTick);
  // Another long jump, past the remaining one.
  CHECK(w.advance(5000 * kTick) == 1);
  CHECK(later.fired_at == std::vector<TimeNs>{5000 * kTick});
  CHECK(w.armed_count() == 0);
}

TEST_CASE("TimerWheel: a jump of exactly one rotation visits every slot", "[timer_wheel]") {
  // From tick 0 to tick 8 with 8 slots: slot 0 is both the first and the last.
  TimerWheel w(kTick, 8);
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 16; ++i) {
    probes.push_back(std::make_unique<Probe>(i));
    w.arm(probes.back()->timer, static_cast<TimeNs>(i) * kTick / 2 + 1);
  }
  CHECK(w.advance(8 * kTick) == 16);
  for (std::size_t jump = 7; jump <= 9; ++jump) {
    TimerWheel w2(kTick, 8);
    Probe a, b;
    w2.arm(a.timer, (jump - 1) * kTick);
    w2.arm(b.timer, jump * kTick);
    INFO("jump " << jump);
    CHECK(w2.advance(jump * kTick) == 2);
  }
}

TEST_CASE("TimerWheel: next_deadline", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  CHECK(w.next_deadline() == kNever);
  Probe a, b, c;
  w.arm(a.timer, 50 * kTick);  // far, several rotations
  CHECK(w.next_deadline() == 50 * kTick);
  w.arm(b.timer, 7 * kTick + 1);
  w.arm(c.timer, 7 * kTick);  // same slot, earlier
  CHECK(w.next_deadline() == 7 * kTick);
  w.cancel(c.timer);
  CHECK(w.next_deadline() == 7 * kTick + 1);
  w.advance(7 * kTick + 1);
  CHECK(w.next_deadline() == 50 * kTick);
  w.arm(a.timer, 20 * kTick);  // re-arm earlier moves it
  CHECK(w.next_deadline() == 20 * kTick);
  w.cancel(a.timer);
  CHECK(w.next_deadline() == kNever);
}

TEST_CASE("TimerWheel: re-arming an armed timer moves it, cancel disarms", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe p, q;
  w.arm(p.timer, 3 * kTick);
  w.arm(p.timer, 40 * kTick);  // moved: not at 3 ms
  CHECK(w.armed_count() == 1);
  w.arm(q.timer, 2 * kTick);
  w.cancel(q.timer);
  CHECK_FALSE(q.timer.armed());
  w.cancel(q.timer);  // cancelling twice is harmless
  CHECK(w.advance(39 * kTick) == 0);
  CHECK(p.fired_at.empty());
  CHECK(q.fired_at.empty());
  CHECK(w.advance(40 * kTick) == 1);
  CHECK(p.fired_at.size() == 1);
}

TEST_CASE("TimerWheel: destroying an armed timer unlinks it", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe keep;
  w.arm(keep.timer, 5 * kTick);
  {
    Probe gone;
    w.arm(gone.timer, 5 * kTick);
    CHECK(w.armed_count() == 2);
  }
  CHECK(w.armed_count() == 1);
  CHECK(w.advance(5 * kTick) == 1);
  CHECK(keep.fired_at.size() == 1);
}

// Regression: ~Timer() once unlinked without telling the wheel, so
// next_deadline() kept reporting a destroyed timer's deadline.
TEST_CASE("TimerWheel: destroying the earliest armed timer updates next_deadline",
          "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe keep;
  w.arm(keep.timer, 5 * kTick);
  {
    Probe gone;
    w.arm(gone.timer, 3 * kTick);
    CHECK(w.next_deadline() == 3 * kTick);
  }
  CHECK(w.next_deadline() == 5 * kTick);
  w.cancel(keep.timer);
  CHECK(w.next_deadline() == kNever);
  {
    Probe only;
    w.arm(only.timer, 7 * kTick);
    CHECK(w.next_deadline() == 7 * kTick);
  }
  CHECK(w.next_deadline() == kNever);
}

TEST_CASE("TimerWheel: next_deadline tracks random arm/cancel/advance", "[timer_wheel]") {
  // The wheel caches a lower bound of the armed deadlines; whatever it
  // caches, next_deadline() must equal the earliest armed deadline.
  std::mt19937_64 rng(99);
  TimerWheel w(kTick, 32);
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < 40; ++i) probes.push_back(std::make_unique<Probe>(i));
  TimeNs now = 0;
  for (int step = 0; step < 20000; ++step) {
    Probe& p = *probes[rng() % probes.size()];
    switch (rng() % 6) {
      case 0:
      case 1:
        w.arm(p.timer, now + rng() % (100 * kTick));  // may be a re-arm
        break;
      case 2:
        w.arm(p.timer, now - std::min<TimeNs>(now, rng() % (3 * kTick)));  // in the past
        break;
      case 3:
        w.cancel(p.timer);
        break;
      case 4:
        now += rng() % (2 * kTick);
        w.advance(now);
        break;
      default:
        break;  // only ask
    }
    TimeNs expect = kNever;
    std::size_t armed = 0;
    for (const auto& q : probes)
      if (q->timer.armed()) {
        ++armed;
        expect = std::min(expect, q->timer.deadline());
      }
    INFO("step " << step);
    REQUIRE(w.next_deadline() == expect);
    if (step % 97 == 0) REQUIRE(w.armed_count() == armed);
  }
}

TEST_CASE("TimerWheel: re-arm from inside the callback (periodic timer)", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe p;
  p.wheel = &w;
  // Every 2.5 ms after the previous deadline, five times.
  p.then = [](Probe& self, TimeNs) {
    if (self.fired_at.size() < 5) self.wheel->arm(self.timer, self.timer.deadline() + 2 * kTick + kTick / 2);
  };
  w.arm(p.timer, kTick);
  for (TimeNs now = 0; now <= 30 * kTick; now += kTick / 4) w.advance(now);
  const std::vector<TimeNs> expect{kTick, 3 * kTick + kTick / 2, 6 * kTick, 8 * kTick + kTick / 2,
                                   11 * kTick};
  CHECK(p.fired_at == expect);
  CHECK_FALSE(p.timer.armed());
}

TEST_CASE("TimerWheel: re-arm inside the callback for the same slot does not loop",
          "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe p;
  p.wheel = &w;
  // Re-arm 1 ns later: same tick, so it must wait for the next advance
  // rather than spin inside this one.
  p.then = [](Probe& self, TimeNs now) {
    if (self.fired_at.size() < 3) self.wheel->arm(self.timer, now + 1);
  };
  w.arm(p.timer, 5 * kTick);
  CHECK(w.advance(5 * kTick) == 1);
  CHECK(p.fired_at.size() == 1);
  CHECK(w.advance(5 * kTick) == 0);  // deadline now+1 not reached
  CHECK(w.advance(5 * kTick + 1) == 1);
  CHECK(w.advance(5 * kTick + 2) == 1);
  CHECK(w.advance(6 * kTick) == 0);
  CHECK(p.fired_at == std::vector<TimeNs>{5 * kTick, 5 * kTick + 1, 5 * kTick + 2});
}

TEST_CASE("TimerWheel: cancel another timer of the same slot from a callback", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe a(1), b(2), c(3);
  // All three in tick 5; a is armed first, so it runs first.
  w.arm(a.timer, 5 * kTick + 100);
  w.arm(b.timer, 5 * kTick + 200);
  w.arm(c.timer, 5 * kTick + 300);
  a.wheel = &w;
  a.user = &b;
  a.then = [](Probe& self, TimeNs) { self.wheel->cancel(static_cast<Probe*>(self.user)->timer); };
  CHECK(w.advance(6 * kTick) == 2);
  CHECK(a.fired_at.size() == 1);
  CHECK(b.fired_at.empty());
  CHECK_FALSE(b.timer.armed());
  CHECK(c.fired_at.size() == 1);
  CHECK(w.armed_count() == 0);
  CHECK(w.advance(100 * kTick) == 0);
  CHECK(b.fired_at.empty());
}

TEST_CASE("TimerWheel: cancel a not-yet-due timer of the same slot from a callback",
          "[timer_wheel]") {
  // b shares the slot but is one rotation out: it is on the list being
  // walked when a's callback cancels it.
  TimerWheel w(kTick, 16);
  Probe a(1), b(2), c(3);
  w.arm(b.timer, 21 * kTick);  // tick 21: slot 5, next rotation
  w.arm(a.timer, 5 * kTick);
  w.arm(c.timer, 5 * kTick + 1);
  a.wheel = &w;
  a.user = &b;
  a.then = [](Probe& self, TimeNs) { self.wheel->cancel(static_cast<Probe*>(self.user)->timer); };
  CHECK(w.advance(5 * kTick + 1) == 2);
  CHECK_FALSE(b.timer.armed());
  CHECK(w.armed_count() == 0);
  CHECK(w.advance(30 * kTick) == 0);
  CHECK(b.fired_at.empty());
}

TEST_CASE("TimerWheel: a callback may arm and cancel timers in other slots", "[timer_wheel]") {
  TimerWheel w(kTick, 16);
  Probe a(1), later(2), victim(3);
  w.arm(a.timer, 2 * kTick);
  w.arm(victim.timer, 20 * kTick);  // beyond this advance
  a.wheel = &w;
  a.user = &later;
  a.then = [](Probe& self, TimeNs) {
    self.wheel->arm(static_cast<Probe*>(self.user)->timer, 3 * kTick);  // due in this advance
  };
  // Order within one advance is not promised, only that everything due by
  // `now` fires: `later` fires in this advance and cancels the victim.
  later.wheel = &w;
  later.user = &victim;
  later.then = [](Probe& self, TimeNs) { self.wheel->cancel(static_cast<Probe*>(self.user)->timer); };
  CHECK(w.advance(10 * kTick) == 2);
  CHECK(a.fired_at.size() == 1);
  CHECK(later.fired_at == std::vector<TimeNs>{10 * kTick});
  CHECK_FALSE(victim.timer.armed());
  CHECK(w.armed_count() == 0);
  CHECK(w.advance(30 * kTick) == 0);
  CHECK(victim.fired_at.empty());
}

// Regression: advance() once moved cur_tick_ only after running callbacks,
// so a past deadline armed from a callback landed in an already-visited slot
// and waited a whole rotation.
TEST_CASE("TimerWheel: a due timer armed from a callback fires by the next advance",
          "[timer_wheel]") {
  TimerWheel w(kTick, 64);
  Probe a(1), asap(2), same_tick(3);
  w.arm(a.timer, 2 * kTick);
  a.wheel = &w;
  a.then = [](Probe& self, TimeNs) {
    auto* others = static_cast<Probe**>(self.user);
    self.wheel->arm(others[0]->timer, 0);                     // "as soon as possible"
    self.wheel->arm(others[1]->timer, 2 * kTick + kTick / 2);  // tick being processed, due
  };
  Probe* others[] = {&asap, &same_tick};
  a.user = others;
  w.advance(10 * kTick);  // a fires while the loop is at tick 2
  REQUIRE(a.fired_at.size() == 1);
  w.advance(10 * kTick);  // both are due: by now they must have fired
  CHECK(asap.fired_at.size() == 1);
  CHECK(same_tick.fired_at.size() == 1);
  CHECK(w.armed_count() == 0);
}

TEST_CASE("TimerWheel: advance returns how many fired, empty wheel is cheap to advance",
          "[timer_wheel]") {
  TimerWheel w(100 * kNsPerUs, 4096);
  CHECK(w.tick_ns() == 100 * kNsPerUs);
  CHECK(w.advance(0) == 0);
  CHECK(w.advance(kNsPerSec) == 0);
  Probe ps[3];
  for (auto& p : ps) w.arm(p.timer, kNsPerSec + 1);
  CHECK(w.advance(kNsPerSec + 1) == 3);
  CHECK(w.now() == kNsPerSec + 1);
}

TEST_CASE("TimerWheel: after timers fire, advancing walks slots once per tick, not once per call",
          "[timer_wheel]") {
  // Thousands of far timers (TIME-WAIT, keepalives) and one that fires: the
  // poll loop then advances every ~100 ns. Each call must stay a compare
  // until the next tick starts or the next timer is due.
  TimerWheel w(100 * kNsPerUs, 4096);
  std::vector<std::unique_ptr<Probe>> far;
  for (int i = 0; i < 2000; ++i) {
    far.push_back(std::make_unique<Probe>());
    w.arm(far.back()->timer, 2 * kNsPerSec + static_cast<TimeNs>(i) * 30 * kNsPerMs);
  }
  Probe soon, current_slot;
  w.arm(soon.timer, 10 * kNsPerUs);
  w.arm(current_slot.timer, 60 * kNsPerUs);  // later in the tick (0..100 us) the first pass runs in
  TimeNs now = 0;
  while (soon.fired_at.empty()) w.advance(now += 100);
  const auto visits = w.slot_visits();
  // 100 ms in 100 ns steps: 1,000,000 calls over 1,000 ticks.
  for (int i = 0; i < 1'000'000; ++i) w.advance(now += 100);
  CHECK(current_slot.fired_at.size() == 1);
  CHECK(current_slot.fired_at[0] >= 60 * kNsPerUs);
  CHECK(current_slot.fired_at[0] < 60 * kNsPerUs + 100);
  // Crossing into a tick walks the slot left behind (a timer armed during
  // that tick may wait there) and the one reached: two per tick.
  CHECK(w.slot_visits() - visits <= 2 * 1'000 + 2);
  for (const auto& p : far) CHECK(p->fired_at.empty());
}
