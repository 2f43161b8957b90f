// The out-of-order queue against a byte-array model of the stream.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "tcp/reassembly.hpp"
#include "test/support/support.hpp"

using namespace ustack;
using namespace ustack::tcp;

namespace {

// Payload bytes are a function of their sequence number, so any misplaced,
// duplicated or lost byte shows in the delivered stream.
std::uint8_t byte_at(SeqNum s) { return static_cast<std::uint8_t>(s.raw() * 131u + (s.raw() >> 8)); }

Packet segment(SeqNum seq, std::uint32_t len) {
  std::vector<std::uint8_t> v(len);
  for (std::uint32_t i = 0; i < len; ++i) v[i] = byte_at(seq + i);
  return test::packet_of(Bytes{v});
}

struct Receiver {
  ReassemblyQueue q;
  SeqNum rcv_nxt;
  std::vector<std::uint8_t> stream;
  SeqNum stream_start;

  Receiver(SeqNum isn, std::size_t segs = 16, std::size_t bytes = 1 << 20)
      : q(segs, bytes), rcv_nxt(isn), stream_start(isn) {}

  ReassemblyQueue::Insert offer(SeqNum seq, std::uint32_t len) {
    // In-order data bypasses the queue, as the connection will do.
    if (seq <= rcv_nxt && rcv_nxt < seq + len) {
      Packet p = segment(seq, len);
      const auto skip = static_cast<std::uint32_t>(rcv_nxt - seq);
      p.consume_front(skip);
      take(std::move(p));
      drain();
      return ReassemblyQueue::Insert::queued;
    }
    auto r = q.insert(rcv_nxt, seq, segment(seq, len));
    drain();
    return r;
  }
  void drain() {
    q.drain(rcv_nxt, [&](Packet&& p) { take(std::move(p)); });
  }
  void take(Packet&& p) {
    auto b = test::bytes_of(p);
    stream.insert(stream.end(), b.begin(), b.end());
    rcv_nxt = stream_start + static_cast<std::uint32_t>(stream.size());
  }
  bool stream_is_exact() const {
    for (std::size_t i = 0; i < stream.size(); ++i)
      if (stream[i] != byte_at(stream_start + static_cast<std::uint32_t>(i))) return false;
    return true;
  }
};

}  // namespace

TEST_CASE("Reassembly: a gap filled late releases everything behind it, in order", "[reasm]") {
  Receiver r(SeqNum{1000});
  CHECK(r.offer(SeqNum{1100}, 100) == ReassemblyQueue::Insert::queued);
  CHECK(r.offer(SeqNum{1300}, 50) == ReassemblyQueue::Insert::queued);
  CHECK(r.offer(SeqNum{1200}, 100) == ReassemblyQueue::Insert::queued);
  CHECK(r.stream.empty());
  CHECK(r.q.segments() == 3);
  CHECK(r.q.bytes() == 250);
  r.offer(SeqNum{1000}, 100);
  CHECK(r.rcv_nxt == SeqNum{1350});
  CHECK(r.q.empty());
  CHECK(r.q.bytes() == 0);
  CHECK(r.stream_is_exact());
}

TEST_CASE("Reassembly: overlaps keep queued data and add only new bytes", "[reasm]") {
  Receiver r(SeqNum{0});
  REQUIRE(r.offer(SeqNum{100}, 100) == ReassemblyQueue::Insert::queued);  // [100,200)
  CHECK(r.offer(SeqNum{120}, 50) == ReassemblyQueue::Insert::duplicate);  // inside
  CHECK(r.offer(SeqNum{100}, 100) == ReassemblyQueue::Insert::duplicate); // same
  CHECK(r.offer(SeqNum{150}, 100) == ReassemblyQueue::Insert::queued);    // right overlap -> [200,250)
  CHECK(r.q.bytes() == 150);
  CHECK(r.offer(SeqNum{50}, 100) == ReassemblyQueue::Insert::queued);     // left overlap -> [50,100)
  CHECK(r.q.bytes() == 200);
  CHECK(r.offer(SeqNum{40}, 300) == ReassemblyQueue::Insert::queued);     // covers all: only [40,50) is new before the next
  CHECK(r.q.bytes() == 210);
  r.offer(SeqNum{0}, 40);
  CHECK(r.rcv_nxt == SeqNum{250});
  CHECK(r.stream_is_exact());
}

TEST_CASE("Reassembly: data below RCV.NXT is never delivered twice", "[reasm]") {
  Receiver r(SeqNum{500});
  r.offer(SeqNum{500}, 100);
  CHECK(r.q.insert(r.rcv_nxt, SeqNum{450}, segment(SeqNum{450}, 100)) == ReassemblyQueue::Insert::duplicate);
  CHECK(r.q.insert(r.rcv_nxt, SeqNum{550}, segment(SeqNum{550}, 100)) == ReassemblyQueue::Insert::queued);
  r.drain();
  CHECK(r.rcv_nxt == SeqNum{650});
  CHECK(r.stream.size() == 150);
  CHECK(r.stream_is_exact());
}

TEST_CASE("Reassembly: bounds refuse, never grow", "[reasm]") {
  const unsigned avail = rte_mempool_avail_count(test::pool());
  {
    Receiver r(SeqNum{0}, 3, 250);
    CHECK(r.offer(SeqNum{100}, 100) == ReassemblyQueue::Insert::queued);
    CHECK(r.offer(SeqNum{300}, 100) == ReassemblyQueue::Insert::queued);
    CHECK(r.offer(SeqNum{500}, 100) == ReassemblyQueue::Insert::full);  // bytes: 300 > 250
    CHECK(r.offer(SeqNum{500}, 50) == ReassemblyQueue::Insert::queued);
    CHECK(r.offer(SeqNum{700}, 10) == ReassemblyQueue::Insert::full);   // segments: 3
    CHECK(r.q.segments() == 3);
    CHECK(r.q.bytes() == 250);
  }
  CHECK(rte_mempool_avail_count(test::pool()) == avail);  // refused and queued mbufs all freed
}

TEST_CASE("Reassembly: works across the 2^32 wrap", "[reasm]") {
  Receiver r(SeqNum{0xffffff00u});
  CHECK(r.offer(SeqNum{0x00000010u}, 0x40) == ReassemblyQueue::Insert::queued);   // after the wrap
  CHECK(r.offer(SeqNum{0xffffff80u}, 0x90) == ReassemblyQueue::Insert::queued);   // spans the wrap
  r.offer(SeqNum{0xffffff00u}, 0x80);
  CHECK(r.rcv_nxt == SeqNum{0x50u});
  CHECK(r.stream.size() == 0x150);
  CHECK(r.stream_is_exact());
}

TEST_CASE("Reassembly: SACK blocks merge touching segments, latest first (RFC 2018 §4)", "[reasm][sack]") {
  Receiver r(SeqNum{0});
  r.offer(SeqNum{100}, 100);
  r.offer(SeqNum{400}, 100);
  r.offer(SeqNum{200}, 50);  // touches [100,200): block [100,250)
  std::array<SackBlock, 4> out{};
  auto n = r.q.sack_blocks(out);
  REQUIRE(n == 2);
  CHECK(out[0] == SackBlock{SeqNum{100}, SeqNum{250}});  // holds the latest segment
  CHECK(out[1] == SackBlock{SeqNum{400}, SeqNum{500}});
  r.offer(SeqNum{700}, 10);
  r.offer(SeqNum{900}, 10);
  r.offer(SeqNum{1100}, 10);
  n = r.q.sack_blocks(out);
  REQUIRE(n == 4);  // five blocks held, four fit
  CHECK(out[0] == SackBlock{SeqNum{1100}, SeqNum{1110}});
  CHECK(out[1] == SackBlock{SeqNum{100}, SeqNum{250}});
  CHECK(out[2] == SackBlock{SeqNum{400}, SeqNum{500}});
  CHECK(out[3] == SackBlock{SeqNum{700}, SeqNum{710}});
  std::array<SackBlock, 1> one{};
  CHECK(r.q.sack_blocks(one) == 1);
  CHECK(one[0] == SackBlock{SeqNum{1100}, SeqNum{1110}});
  r.offer(SeqNum{0}, 100);  // releases [0,250)
  n = r.q.sack_blocks(out);
  REQUIRE(n == 4);
  CHECK(out[0] == SackBlock{SeqNum{1100}, SeqNum{1110}});
  CHECK(out[1] == SackBlock{SeqNum{400}, SeqNum{500}});
}

TEST_CASE("Reassembly: a long random arrival order yields the exact stream", "[reasm]") {
  const unsigned avail = rte_mempool_avail_count(test::pool());
  std::mt19937 rng(20261129);
  for (int round = 0; round < 20; ++round) {
    const SeqNum isn{static_cast<std::uint32_t>(rng())};
    Receiver r(isn, 32, 1 << 20);
    const std::uint32_t total = 20000;
    // The sender's segments, then a shuffled, duplicated, overlapping arrival
    // order; anything refused for space is simply sent again later.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> pending;
    for (std::uint32_t off = 0; off < total;) {
      const std::uint32_t len = 1 + rng() % 1400;
      pending.push_back({off, std::min(len, total - off)});
      off += len;
    }
    std::size_t guard = 0;
    while (r.rcv_nxt != isn + total && guard++ < 200000) {
      auto [off, len] = pending[rng() % pending.size()];
      // Sometimes resend a shifted overlapping range.
      if (rng() % 4 == 0 && off > 10) {
        off -= rng() % 10;
        len = std::min<std::uint32_t>(len + 20, total - off);
      }
      r.offer(isn + off, len);
    }
    INFO("round " << round);
    CHECK(r.rcv_nxt == isn + total);
    CHECK(r.stream.size() == total);
    CHECK(r.stream_is_exact());
    CHECK(r.q.empty());
  }
  CHECK(rte_mempool_avail_count(test::pool()) == avail);
}
