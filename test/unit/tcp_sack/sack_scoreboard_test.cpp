// RFC 6675 loss recovery on a virtual flight of segments: every expectation
// below is worked out by hand from the RFC's rules (§4 IsLost, SetPipe,
// NextSeg; §5 entry and (A)-(C); §5.1), with SMSS = 100 so the arithmetic is
// visible. Scenarios run at several starting points, including flights that
// straddle 2^32.
//
// This binary needs no EAL, so it has its own Catch2 main, here.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/seq.hpp"
#include "tcp/sack_scoreboard.hpp"

#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

constexpr std::uint32_t kSmss = 100;
using Kind = TxSegment::Kind;

// A flight starting at `base`; offsets are relative to it, so the same
// scenario runs across the wrap.
struct Flight {
  SeqNum base;
  SackScoreboard sb;

  explicit Flight(std::uint32_t base_raw, std::size_t capacity = SackScoreboard::kDefaultCapacity)
      : base(base_raw), sb(kSmss, SeqNum{base_raw}, capacity) {}

  SeqNum at(std::uint32_t off) const { return base + off; }
  SackBlock blk(std::uint32_t l, std::uint32_t r) const { return SackBlock{at(l), at(r)}; }

  void send_segments(int n) {
    for (int i = 0; i < n; ++i) sb.on_send_new(kSmss);
  }

  // One ACK: cumulative point `ack_off`, blocks as offset pairs.
  SackScoreboard::AckResult ack(std::uint32_t ack_off,
                                std::initializer_list<std::array<std::uint32_t, 2>> blocks = {}) {
    std::vector<SackBlock> v;
    for (const auto& b : blocks) v.push_back(blk(b[0], b[1]));
    return sb.on_ack(at(ack_off), v);
  }
};

const std::uint32_t kBases[] = {1000u, 0xFFFFFFFFu - 350u, 0xFFFFFFFFu - 50u, 0x7FFFFF00u};

}  // namespace

TEST_CASE("single loss: three SACKed segments make the hole lost and NextSeg returns it",
          "[sack][islost][nextseg]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);  // [0, 1000), segment [0, 100) is lost
  REQUIRE(f.sb.snd_nxt() == f.at(1000));

  auto r = f.ack(0, {{100, 200}});
  CHECK(r.dup_ack);
  CHECK(r.newly_sacked == 100);
  CHECK(f.sb.dup_acks() == 1);
  CHECK_FALSE(r.enter_recovery);
  CHECK_FALSE(f.sb.is_lost(f.at(0)));  // 1 range, 100 octets above

  r = f.ack(0, {{100, 300}});
  CHECK(f.sb.dup_acks() == 2);
  CHECK_FALSE(r.enter_recovery);
  CHECK_FALSE(f.sb.is_lost(f.at(0)));  // 200 octets: not more than (3-1)*SMSS

  r = f.ack(0, {{100, 400}});
  CHECK(f.sb.dup_acks() == 3);
  CHECK(r.enter_recovery);
  CHECK(f.sb.is_lost(f.at(0)));  // 300 octets > 200
  CHECK_FALSE(f.sb.is_lost(f.at(400)));
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(100, 400));

  // Before recovery, NextSeg rule (1) already names the hole.
  CHECK(f.sb.next_seg(0) == TxSegment{Kind::retransmit, f.at(0), 100, 1});

  const auto start = f.sb.enter_recovery();
  CHECK(f.sb.in_recovery());
  CHECK(start.recovery_point == f.at(1000));
  CHECK(start.flight_size == 1000);
  CHECK(start.retransmit == TxSegment{Kind::retransmit, f.at(0), 100, 0});
  CHECK(f.sb.high_rxt() == f.at(100));
  CHECK(f.sb.rescue_rxt() == f.at(100));
  // SetPipe: hole [0,100) lost (0) but retransmitted (+100); [400,1000) not lost (+600).
  CHECK(start.pipe == 700);

  // The hole is covered by HighRxt: no more retransmissions; new data if any.
  CHECK(f.sb.next_seg(0).kind == Kind::none);
  CHECK(f.sb.next_seg(250) == TxSegment{Kind::new_data, f.at(1000), 100, 2});
  CHECK(f.sb.next_seg(40) == TxSegment{Kind::new_data, f.at(1000), 40, 2});
}

TEST_CASE("three discontiguous SACKed segments make a hole lost", "[sack][islost]") {
  Flight f(5000);
  f.send_segments(10);
  f.ack(0, {{100, 200}, {300, 400}});
  CHECK_FALSE(f.sb.is_lost(f.at(0)));  // 2 ranges, 200 octets
  f.ack(0, {{500, 600}, {100, 200}, {300, 400}});
  CHECK(f.sb.is_lost(f.at(0)));        // 3 ranges
  CHECK_FALSE(f.sb.is_lost(f.at(200)));  // 2 ranges above
  CHECK_FALSE(f.sb.is_lost(f.at(250)));  // 2 ranges, 200 octets above
  CHECK(f.sb.is_lost(f.at(150)));        // inside a range: its rest counts as one of 3
}

TEST_CASE("multiple holes are retransmitted in order", "[sack][nextseg]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  // Segments 1 and 3 lost; 0 delivered; 2, 4, 5, 6 SACKed.
  f.ack(100, {{200, 300}});
  f.ack(100, {{400, 500}, {200, 300}});
  auto r = f.ack(100, {{400, 700}, {200, 300}});
  CHECK(r.enter_recovery);  // 3 dup ACKs (and IsLost(HighACK+1))
  REQUIRE(f.sb.ranges().size() == 2);
  CHECK(f.sb.is_lost(f.at(100)));  // 2 ranges, 400 octets above
  CHECK(f.sb.is_lost(f.at(300)));  // 300 octets above
  CHECK_FALSE(f.sb.is_lost(f.at(700)));

  const auto start = f.sb.enter_recovery();
  CHECK(start.retransmit == TxSegment{Kind::retransmit, f.at(100), 100, 0});
  // pipe: [100,200) lost+rxt = 100, [300,400) lost = 0, [700,1000) = 300.
  CHECK(start.pipe == 400);

  const TxSegment second = f.sb.next_seg(0);
  CHECK(second == TxSegment{Kind::retransmit, f.at(300), 100, 1});
  f.sb.on_transmit(second);
  CHECK(f.sb.high_rxt() == f.at(400));
  CHECK(f.sb.pipe() == 500);  // (C.4)
  CHECK(f.sb.update_pipe() == 500);  // SetPipe agrees

  // Nothing more to repair: new data, then nothing.
  CHECK(f.sb.next_seg(100).kind == Kind::new_data);
  CHECK(f.sb.next_seg(0).kind == Kind::none);
}

TEST_CASE("a hole that is not yet lost goes out under rule (3) only without new data",
          "[sack][nextseg]") {
  Flight f(77);
  f.send_segments(10);
  f.ack(0, {{100, 400}});
  f.ack(0, {{500, 600}, {100, 400}});
  f.sb.enter_recovery();  // retransmits [0,100)
  // [400,500) has one range (100 octets) above: not lost.
  CHECK_FALSE(f.sb.is_lost(f.at(400)));
  CHECK(f.sb.next_seg(100) == TxSegment{Kind::new_data, f.at(1000), 100, 2});
  CHECK(f.sb.next_seg(0) == TxSegment{Kind::retransmit, f.at(400), 100, 3});
  // Once more than 2*SMSS is SACKed above it, rule (1) wins over new data.
  f.ack(0, {{500, 800}, {100, 400}});
  CHECK(f.sb.next_seg(100) == TxSegment{Kind::retransmit, f.at(400), 100, 1});
}

TEST_CASE("pipe step by step through a recovery", "[sack][pipe][recovery]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  CHECK(f.sb.pipe() == 1000);

  auto r = f.ack(0, {{100, 200}});
  CHECK(f.sb.pipe() == 900);  // [0,100) not lost 100 + [200,1000) 800
  r = f.ack(0, {{100, 300}});
  CHECK(f.sb.pipe() == 800);
  r = f.ack(0, {{100, 400}});
  CHECK(f.sb.pipe() == 600);  // [0,100) now lost: 0 + [400,1000) 600
  REQUIRE(r.enter_recovery);

  const auto start = f.sb.enter_recovery();
  CHECK(start.pipe == 700);  // + the retransmission below HighRxt
  const std::uint32_t cwnd = start.flight_size / 2;  // the controller's job; 500 here
  CHECK(cwnd == 500);

  r = f.ack(0, {{100, 500}});
  CHECK(f.sb.pipe() == 600);  // 100 (rxt) + [500,1000) 500
  r = f.ack(0, {{100, 600}});
  CHECK(f.sb.pipe() == 500);
  CHECK(cwnd - f.sb.pipe() < kSmss);  // (C): nothing to send
  r = f.ack(0, {{100, 700}});
  CHECK(f.sb.pipe() == 400);
  REQUIRE(cwnd - f.sb.pipe() >= kSmss);
  const TxSegment seg = f.sb.next_seg(1000);
  CHECK(seg == TxSegment{Kind::new_data, f.at(1000), 100, 2});
  f.sb.on_transmit(seg);
  CHECK(f.sb.snd_nxt() == f.at(1100));
  CHECK(f.sb.pipe() == 500);

  // The retransmission arrives: cumulative ACK to 700, still below RecoveryPoint.
  r = f.ack(700);
  CHECK(r.cumulative);
  CHECK(r.acked_bytes == 700);
  CHECK_FALSE(r.dup_ack);
  CHECK_FALSE(r.recovery_done);
  CHECK(f.sb.in_recovery());
  CHECK(f.sb.dup_acks() == 0);
  CHECK(f.sb.ranges().empty());
  CHECK(f.sb.pipe() == 400);  // [700,1100)

  r = f.ack(1000);
  CHECK(r.recovery_done);
  CHECK_FALSE(f.sb.in_recovery());
  CHECK(f.sb.pipe() == 100);
}

TEST_CASE("rescue retransmission of the tail (rule 4)", "[sack][nextseg][rescue]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  // Segment 0 and the last segment [900,1000) are lost; no new data to send.
  f.ack(0, {{100, 200}});
  f.ack(0, {{100, 300}});
  REQUIRE(f.ack(0, {{100, 400}}).enter_recovery);
  f.sb.enter_recovery();
  // HighACK has not passed RescueRxt: no rescue yet.
  CHECK(f.sb.next_seg(0).kind == Kind::none);
  for (std::uint32_t right = 500; right <= 900; right += 100) f.ack(0, {{100, right}});
  CHECK(f.sb.next_seg(0).kind == Kind::none);

  // Partial ACK: the retransmission of [0,100) arrived.
  auto r = f.ack(900);
  CHECK(r.cumulative);
  CHECK_FALSE(r.recovery_done);
  const TxSegment rescue = f.sb.next_seg(0);
  CHECK(rescue == TxSegment{Kind::rescue, f.at(900), 100, 4});
  const SeqNum high_rxt_before = f.sb.high_rxt();
  f.sb.on_transmit(rescue);
  CHECK(f.sb.high_rxt() == high_rxt_before);  // HighRxt MUST NOT be updated
  CHECK(f.sb.rescue_rxt() == f.sb.recovery_point());
  CHECK(f.sb.pipe() == 200);                  // [900,1000) + the rescue copy
  // Only one rescue per recovery.
  CHECK(f.sb.next_seg(0).kind == Kind::none);
  CHECK(f.ack(1000).recovery_done);
}

TEST_CASE("rescue waits until HighACK is past RescueRxt, not merely at it", "[sack][rescue]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  // [0,200) and [900,1000) lost.
  REQUIRE(f.ack(0, {{200, 500}}).enter_recovery);  // IsLost(HighACK + 1)
  f.sb.enter_recovery();                            // [0,100); RescueRxt + 1 = 100
  CHECK(f.sb.rescue_rxt() == f.at(100));
  const TxSegment s = f.sb.next_seg(0);
  CHECK(s == TxSegment{Kind::retransmit, f.at(100), 100, 1});
  f.sb.on_transmit(s);
  f.ack(100, {{200, 900}});  // HighACK == RescueRxt (octet 99): not greater
  CHECK(f.sb.next_seg(0).kind == Kind::none);
  f.ack(900);
  CHECK(f.sb.next_seg(0) == TxSegment{Kind::rescue, f.at(900), 100, 4});
}

TEST_CASE("rescue covers the highest un-SACKed octet below a SACKed tail", "[sack][rescue]") {
  Flight f(300);
  f.send_segments(10);
  // [0,100) and [500,700) lost; [100,500) and [700,1000) SACKed.
  f.ack(0, {{100, 400}});
  f.sb.enter_recovery();  // [0,100)
  f.ack(0, {{100, 500}});
  f.ack(0, {{700, 1000}, {100, 500}});
  // [500,700): 300 octets above -> lost; rule (1) twice.
  TxSegment s = f.sb.next_seg(0);
  CHECK(s == TxSegment{Kind::retransmit, f.at(500), 100, 1});
  f.sb.on_transmit(s);
  s = f.sb.next_seg(0);
  CHECK(s == TxSegment{Kind::retransmit, f.at(600), 100, 1});
  f.sb.on_transmit(s);
  CHECK(f.sb.next_seg(0).kind == Kind::none);
  f.ack(500, {{700, 1000}});  // partial ACK past RescueRxt
  // Rule (4): the highest un-SACKed octet is 699, in the hole [500,700).
  CHECK(f.sb.next_seg(0) == TxSegment{Kind::rescue, f.at(600), 100, 4});
}

TEST_CASE("D-SACK blocks are flagged and not recorded", "[sack][dsack]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  f.ack(300, {{400, 500}});
  // First block below the cumulative ACK: a duplicate of delivered data.
  auto r = f.ack(300, {{100, 200}, {400, 500}});
  CHECK(r.dsack);
  CHECK(r.newly_sacked == 0);
  CHECK_FALSE(r.dup_ack);
  CHECK(r.ignored_blocks == 0);
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(400, 500));

  // First block inside the second: a duplicate above the cumulative ACK.
  f.ack(300, {{600, 700}, {400, 500}});
  r = f.ack(300, {{600, 700}, {600, 800}});
  CHECK(r.dsack);
  CHECK(r.newly_sacked == 100);  // [700,800) via the second block
  CHECK(r.dup_ack);

  // A plain repeat of known SACK information is neither D-SACK nor duplicate.
  r = f.ack(300, {{600, 800}, {400, 500}});
  CHECK_FALSE(r.dsack);
  CHECK_FALSE(r.dup_ack);
  CHECK(r.newly_sacked == 0);
}

TEST_CASE("blocks outside [SND.UNA, SND.NXT] or malformed are ignored", "[sack][validate]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(5);  // [0,500)
  auto r = f.ack(100, {{200, 300},      // fine
                       {400, 600},      // beyond SND.NXT
                       {50, 150},       // straddles SND.UNA (not first)
                       {350, 350},      // empty
                       {480, 420}});    // reversed
  CHECK(r.ignored_blocks == 4);
  CHECK(r.newly_sacked == 100);
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(200, 300));

  // [100,200) starts at SND.UNA and is new, so it counts; [700,800) does not.
  r = f.ack(100, {{100, 200}, {700, 800}});
  CHECK(r.ignored_blocks == 1);
  CHECK(r.newly_sacked == 100);
  // Only invalid blocks: not a duplicate ACK, nothing recorded.
  r = f.ack(100, {{600, 700}, {1000, 1100}});
  CHECK(r.ignored_blocks == 2);
  CHECK_FALSE(r.dup_ack);
  CHECK(f.sb.dup_acks() == 2);

  // An ACK of unsent data changes nothing.
  r = f.ack(600, {{300, 400}});
  CHECK(r.ack_invalid);
  CHECK(f.sb.snd_una() == f.at(100));
  CHECK_FALSE(f.sb.is_sacked(f.at(300)));
}

TEST_CASE("cumulative ACK with new SACK information: DupAcks resets then counts",
          "[sack][dupack]") {
  Flight f(0xFFFFFFF0u);
  f.send_segments(10);
  f.ack(0, {{200, 300}});
  f.ack(0, {{200, 400}});
  CHECK(f.sb.dup_acks() == 2);
  auto r = f.ack(100, {{200, 500}});
  CHECK(r.cumulative);
  CHECK(r.dup_ack);  // §2: counted even though it moves SND.UNA
  CHECK(f.sb.dup_acks() == 1);
  // IsLost(HighACK + 1) alone triggers step (2): 300 octets above [100,200).
  CHECK(r.enter_recovery);
}

TEST_CASE("SACK ranges merge across 2^32", "[sack][wrap]") {
  Flight f(0xFFFFFFFFu - 150u);  // [0,1000) straddles the wrap at offset 151
  f.send_segments(10);
  f.ack(0, {{100, 151}});
  f.ack(0, {{200, 300}, {100, 151}});
  auto r = f.ack(0, {{151, 200}, {100, 151}, {200, 300}});
  CHECK(r.newly_sacked == 49);
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(100, 300));
  CHECK(f.sb.ranges()[0].right.raw() < f.sb.ranges()[0].left.raw());
  CHECK(f.sb.sacked_bytes() == 200);
  CHECK(f.sb.is_sacked(f.at(151)));
  CHECK(f.sb.is_sacked(SeqNum{0}));
  CHECK_FALSE(f.sb.is_sacked(f.at(300)));
  CHECK_FALSE(f.sb.is_sacked(f.at(99)));
}

TEST_CASE("recovery ends at RecoveryPoint and keeps SACK information above it",
          "[sack][recovery]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(5);  // [0,500)
  f.ack(0, {{100, 400}});
  const auto start = f.sb.enter_recovery();
  REQUIRE(start.recovery_point == f.at(500));
  f.send_segments(3);  // [500,800) sent during recovery
  auto r = f.ack(400, {{600, 700}});
  CHECK_FALSE(r.recovery_done);  // 400 < RecoveryPoint
  r = f.ack(500, {{600, 700}});
  CHECK(r.recovery_done);  // ACK for RecoveryPoint (inclusive 499)
  CHECK_FALSE(f.sb.in_recovery());
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(600, 700));
  CHECK_FALSE(f.sb.rescue_rxt_valid());
}

TEST_CASE("RTO: recovery ends, scoreboard and HighRxt reset, no new recovery before "
          "RecoveryPoint",
          "[sack][rto]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b);
  f.send_segments(10);
  f.ack(0, {{100, 400}});
  f.sb.enter_recovery();
  f.sb.on_transmit(f.sb.next_seg(100));  // new data [1000,1100)
  REQUIRE(f.sb.in_recovery());

  f.sb.on_rto();
  CHECK_FALSE(f.sb.in_recovery());
  CHECK(f.sb.recovery_held());
  CHECK(f.sb.recovery_point() == f.at(1100));
  CHECK(f.sb.ranges().empty());  // SACK information discarded (RFC 2018 §8)
  CHECK(f.sb.high_rxt() == f.sb.snd_una());
  CHECK_FALSE(f.sb.rescue_rxt_valid());
  CHECK(f.sb.dup_acks() == 0);
  CHECK(f.sb.pipe() == 1100);  // everything outstanding, nothing known lost
  CHECK(f.sb.next_seg(0).kind == Kind::none);

  // SACK information is used again, but a new recovery may not start.
  auto r = f.ack(0, {{100, 200}});
  r = f.ack(0, {{100, 300}});
  r = f.ack(0, {{100, 500}});
  CHECK(f.sb.dup_acks() == 3);
  CHECK(f.sb.is_lost(f.at(0)));
  CHECK_FALSE(r.enter_recovery);

  // SND.UNA reaches the RecoveryPoint: the hold is released.
  r = f.ack(1100);
  CHECK_FALSE(f.sb.recovery_held());
  f.send_segments(5);  // [1100,1600)
  f.ack(1100, {{1200, 1300}});
  f.ack(1100, {{1200, 1400}});
  r = f.ack(1100, {{1200, 1500}});
  CHECK(r.enter_recovery);
}

TEST_CASE("capacity limit: the highest range is forgotten", "[sack][capacity]") {
  const std::uint32_t b = GENERATE(from_range(std::begin(kBases), std::end(kBases)));
  Flight f(b, 2);
  CHECK(f.sb.capacity() == 2);
  f.send_segments(10);
  f.ack(0, {{500, 600}});
  f.ack(0, {{300, 400}, {500, 600}});
  REQUIRE(f.sb.ranges().size() == 2);

  // A lower disjoint range pushes out the highest one.
  auto r = f.ack(0, {{100, 200}, {300, 400}, {500, 600}});
  CHECK(r.overflow);
  CHECK(r.newly_sacked == 100);
  CHECK(r.dup_ack);
  // [500,600) evicted, then the ACK's own [500,600) block refused again.
  CHECK(f.sb.overflow_drops() == 2);
  REQUIRE(f.sb.ranges().size() == 2);
  CHECK(f.sb.ranges()[0] == f.blk(100, 200));
  CHECK(f.sb.ranges()[1] == f.blk(300, 400));
  CHECK_FALSE(f.sb.is_sacked(f.at(500)));

  // A new highest range is itself forgotten: no new information, not a dup.
  r = f.ack(0, {{700, 800}, {100, 200}, {300, 400}});
  CHECK(r.overflow);
  CHECK(r.newly_sacked == 0);
  CHECK_FALSE(r.dup_ack);
  CHECK(f.sb.overflow_drops() == 3);

  // Conservative: pipe counts the forgotten octets as outstanding.
  CHECK(f.sb.pipe() == 800);
  CHECK_FALSE(f.sb.is_lost(f.at(0)));  // 2 ranges, 200 octets remembered

  // Filling the gap merges, making room again.
  r = f.ack(0, {{200, 300}, {100, 200}, {300, 400}});
  CHECK_FALSE(r.overflow);
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(100, 400));
  r = f.ack(0, {{500, 600}, {100, 400}});
  CHECK_FALSE(r.overflow);
  CHECK(f.sb.ranges().size() == 2);
}

TEST_CASE("a cumulative ACK trims and clips the scoreboard", "[sack][update]") {
  Flight f(0xFFFFFF00u);
  f.send_segments(10);
  f.ack(0, {{100, 300}, {500, 600}});
  f.ack(200);
  REQUIRE(f.sb.ranges().size() == 2);
  CHECK(f.sb.ranges()[0] == f.blk(200, 300));
  f.ack(400);
  REQUIRE(f.sb.ranges().size() == 1);
  CHECK(f.sb.ranges()[0] == f.blk(500, 600));
}

#ifdef USTACK_COUNT_ALLOCS
TEST_CASE("driving the scoreboard allocates nothing after construction", "[sack][alloc]") {
  Flight f(0xFFFFFF00u, 4);
  const std::array<SackBlock, 3> blocks = {f.blk(700, 800), f.blk(100, 200), f.blk(400, 500)};
  const std::uint64_t before = thread_alloc_count();
  for (int i = 0; i < 10; ++i) f.sb.on_send_new(kSmss);
  (void)f.sb.on_ack(f.at(0), blocks);
  (void)f.sb.on_ack(f.at(0), std::span<const SackBlock>(blocks).subspan(0, 2));
  f.sb.enter_recovery();
  f.sb.on_transmit(f.sb.next_seg(0));
  f.sb.on_transmit(f.sb.next_seg(100));
  (void)f.sb.update_pipe();
  f.sb.on_rto();
  CHECK(thread_alloc_count() == before);
}
#endif
