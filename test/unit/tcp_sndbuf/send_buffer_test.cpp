// The send buffer against a byte model of the stream: every payload byte is
// a function of its sequence number, so a misplaced, lost or stale byte in
// any segment shows.
#include <catch2/catch.hpp>

#include <vector>

#include "tcp/send_buffer.hpp"
#include "test/support/support.hpp"
#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"
#endif

using namespace ustack;
using namespace ustack::tcp;

namespace {

std::uint8_t byte_at(SeqNum s) { return static_cast<std::uint8_t>(s.raw() * 131u + (s.raw() >> 8)); }

std::vector<std::uint8_t> stream(SeqNum from, std::size_t len) {
  std::vector<std::uint8_t> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = byte_at(from + static_cast<std::uint32_t>(i));
  return v;
}

// Writes [sb.end(), sb.end() + len) by copy; returns the bytes accepted.
std::size_t write_stream(SendBuffer& sb, std::size_t len) {
  const auto v = stream(sb.end(), len);
  return sb.write_copy(Bytes{v});
}

// One mbuf from `mp` holding [from, from + len).
Packet piece(SeqNum from, std::size_t len, rte_mempool* mp) {
  const auto v = stream(from, len);
  return test::packet_of(Bytes{v}, mp);
}

bool exact(const Packet& p, SeqNum seq, std::size_t len) {
  return p && p.len() == len && test::bytes_of(p) == stream(seq, len);
}

// The segment() layout contract: an empty header mbuf with room for every
// header, then one indirect mbuf per source mbuf touched.
bool well_formed(const Packet& p) {
  const rte_mbuf* h = p.get();
  if (h->data_len != 0 || rte_pktmbuf_headroom(h) < SendBuffer::kMaxHeaderBytes) return false;
  std::uint32_t sum = 0;
  unsigned segs = 0;
  for (const rte_mbuf* m = h; m; m = m->next) {
    if (m != h && !RTE_MBUF_CLONED(m)) return false;
    sum += m->data_len;
    ++segs;
  }
  return sum == h->pkt_len && segs == h->nb_segs;
}

std::size_t chain_len(const Packet& p) { return p.get()->nb_segs; }

}  // namespace

TEST_CASE("segments are byte-exact for every (seq, len) over odd-sized writes", "[sndbuf]") {
  test::ScopedPool mp(256);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{0x12345678};
    SendBuffer sb(mp.mp, 1 << 20, 64, isn);
    // Small zero-copy pieces: many mbuf boundaries in few bytes, so the
    // exhaustive sweep below stays cheap.
    for (std::size_t len : {1u, 3u, 7u, 2u, 13u, 1u, 31u, 64u, 5u, 100u, 11u}) {
      Packet p = piece(sb.end(), len, mp.mp);
      REQUIRE(sb.write_zero_copy(std::move(p)));
    }
    REQUIRE(sb.segments() == 11);
    const std::size_t total = sb.buffered();
    REQUIRE(total == 238);
    bool all_exact = true, all_formed = true, all_copy_exact = true;
    for (std::uint32_t off = 0; off <= total; ++off) {
      for (std::uint32_t len = 0; len <= total - off + 1; ++len) {
        const SeqNum seq = isn + off;
        const std::size_t want = std::min<std::size_t>(len, total - off);
        Packet s = sb.segment(seq, len, mp.mp);
        if (!exact(s, seq, want)) all_exact = false;
        if (!s || !well_formed(s)) all_formed = false;
        Packet c = sb.segment_copy(seq, len, mp.mp);
        if (!exact(c, seq, want) || !c.contiguous()) all_copy_exact = false;
      }
    }
    CHECK(all_exact);
    CHECK(all_formed);
    CHECK(all_copy_exact);
    CHECK(mp.avail() == start - 11);  // only the buffered mbufs are out
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("copied writes fill tailroom, then whole mbufs; segments span them", "[sndbuf]") {
  test::ScopedPool mp(64);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{1000};
    SendBuffer sb(mp.mp, 1 << 20, 64, isn);
    for (std::size_t len : {1u, 2000u, 7u, 333u, 2049u, 4099u, 17u, 1u, 2500u}) REQUIRE(write_stream(sb, len) == len);
    const std::size_t total = sb.buffered();
    REQUIRE(total == 11007);
    // Tailroom was used: the writes are packed into full data rooms.
    Packet probe = Packet::alloc(mp.mp);
    const std::size_t room = probe.get()->buf_len;
    probe.reset();
    CHECK(sb.segments() == (total + room - 1) / room);

    bool ok = true;
    for (std::uint32_t off = 0; off <= total; off += 7) {
      for (std::uint32_t len : {0u, 1u, 2u, 3u, 64u, 1460u, 2175u, 2176u, 2177u, 4352u, 9000u, 65535u}) {
        const SeqNum seq = isn + off;
        const std::size_t want = std::min<std::size_t>(len, total - off);
        Packet s = sb.segment(seq, len, mp.mp);
        if (!exact(s, seq, want) || !well_formed(s)) ok = false;
        if (want <= 1460) {
          Packet c = sb.segment_copy(seq, len, mp.mp);
          if (!exact(c, seq, want)) ok = false;
        }
      }
    }
    CHECK(ok);

    // The header mbuf takes the headers in front of the payload.
    Packet s = sb.segment(isn + 5, 3000, mp.mp);
    REQUIRE(s);
    auto hdr = s.prepend(SendBuffer::kMaxHeaderBytes);
    REQUIRE(hdr.size() == SendBuffer::kMaxHeaderBytes);
    std::fill(hdr.begin(), hdr.end(), std::uint8_t{0xee});
    auto b = test::bytes_of(s);
    REQUIRE(b.size() == SendBuffer::kMaxHeaderBytes + 3000);
    CHECK(std::vector<std::uint8_t>(b.begin() + SendBuffer::kMaxHeaderBytes, b.end()) == stream(isn + 5, 3000));

    // segment_copy caps at one mbuf's tailroom and says so through len().
    Packet big = sb.segment_copy(isn, 65535, mp.mp);
    REQUIRE(big);
    CHECK(big.len() == std::size_t{big.get()->buf_len} - big.get()->data_off);
    CHECK(big.len() < 65535);
    CHECK(exact(big, isn, big.len()));
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("partial ACK inside an mbuf trims it in place", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{500};
    SendBuffer sb(mp.mp, 1 << 20, 16, isn);
    REQUIRE(write_stream(sb, 5000) == 5000);
    const std::size_t segs = sb.segments();
    REQUIRE(segs == 3);

    CHECK(sb.ack(isn + 100) == 100);
    CHECK(sb.snd_una() == isn + 100);
    CHECK(sb.buffered() == 4900);
    CHECK(sb.end() == isn + 5000);
    CHECK(sb.segments() == segs);  // trimmed, not freed
    CHECK(exact(sb.segment(isn + 100, 5000, mp.mp), isn + 100, 4900));
    CHECK(exact(sb.segment(isn + 101, 10, mp.mp), isn + 101, 10));

    // Into the second mbuf: the first is freed, the second trimmed.
    CHECK(sb.ack(isn + 3000) == 2900);
    CHECK(sb.segments() == segs - 1);
    CHECK(mp.avail() == start - (segs - 1));
    CHECK(exact(sb.segment(isn + 3000, 2000, mp.mp), isn + 3000, 2000));
    CHECK(exact(sb.segment_copy(isn + 3000, 2000, mp.mp), isn + 3000, 2000));

    // Writing after a partial ACK continues the stream.
    REQUIRE(write_stream(sb, 10) == 10);
    CHECK(exact(sb.segment(isn + 4990, 100, mp.mp), isn + 4990, 20));

    CHECK(sb.ack(sb.end()) == 2010);
    CHECK(sb.buffered() == 0);
    CHECK(sb.segments() == 0);
    CHECK(mp.avail() == start);
    // An empty buffer gives header-only segments at end().
    Packet h = sb.segment(sb.end(), 1460, mp.mp);
    REQUIRE(h);
    CHECK(h.len() == 0);
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("ACKs outside [snd_una, end] change nothing", "[sndbuf]") {
  test::ScopedPool mp(16);
  const SeqNum isn{0x7ffffff0};
  SendBuffer sb(mp.mp, 1 << 20, 16, isn);
  REQUIRE(write_stream(sb, 3000) == 3000);
  const unsigned avail = mp.avail();
  for (SeqNum bad : {isn - 1, isn - 1000, isn + 3001, isn + 100000, isn + 0x80000000u, isn + 0x7fffffffu}) {
    CHECK(sb.ack(bad) == 0);
    CHECK(sb.snd_una() == isn);
    CHECK(sb.buffered() == 3000);
    CHECK(mp.avail() == avail);
  }
  CHECK(sb.ack(isn) == 0);  // duplicate ACK: acceptable, nothing new
  CHECK(sb.ack(isn + 3000) == 3000);
  CHECK(sb.ack(isn + 2999) == 0);  // old ACK after the buffer moved on
  CHECK(sb.snd_una() == isn + 3000);
  // segment() outside [snd_una, end] is refused.
  CHECK(!sb.segment(isn, 10, mp.mp));
  CHECK(!sb.segment(isn + 3001, 10, mp.mp));
  CHECK(!sb.segment_copy(isn + 3001, 10, mp.mp));
}

TEST_CASE("backpressure at the byte limit", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{42};
    SendBuffer sb(mp.mp, 1000, 16, isn);
    CHECK(sb.free_space() == 1000);
    CHECK(write_stream(sb, 1500) == 1000);
    CHECK(sb.buffered() == 1000);
    CHECK(sb.free_space() == 0);
    CHECK(write_stream(sb, 1) == 0);

    // Zero-copy refuses what does not fit and leaves it with the caller.
    Packet p = piece(sb.end(), 301, mp.mp);
    CHECK(sb.ack(isn + 300) == 300);
    CHECK(!sb.write_zero_copy(p));
    REQUIRE(p);
    CHECK(p.len() == 301);
    CHECK(p.consume_front(1));  // still the caller's to change
    Packet q = piece(sb.end(), 300, mp.mp);
    CHECK(sb.write_zero_copy(q));
    CHECK(!q);
    CHECK(sb.free_space() == 0);
    CHECK(exact(sb.segment(sb.snd_una(), 2000, mp.mp), isn + 300, 1000));
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("backpressure at the ring size", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{7};
    SendBuffer sb(mp.mp, 1 << 20, 2, isn);
    CHECK(sb.write_zero_copy(piece(sb.end(), 10, mp.mp)));
    // A two-segment chain needs two slots; one is left.
    // Its bytes are for the place it will land once the ring has room.
    Packet a = piece(isn + 20, 5, mp.mp);
    Packet b = piece(isn + 25, 5, mp.mp);
    REQUIRE(rte_pktmbuf_chain(a.get(), b.release()) == 0);
    CHECK(!sb.write_zero_copy(a));
    CHECK(a.len() == 10);
    CHECK(sb.write_zero_copy(piece(sb.end(), 10, mp.mp)));
    CHECK(sb.segments() == 2);
    // Zero-copy tails are not appended to; the ring is full.
    CHECK(write_stream(sb, 10) == 0);
    CHECK(sb.ack(sb.end()) == 20);
    CHECK(sb.write_zero_copy(a));
    CHECK(exact(sb.segment(sb.snd_una(), 100, mp.mp), sb.snd_una(), 10));
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("backpressure at pool exhaustion, for writes and for segments", "[sndbuf]") {
  test::ScopedPool mp(3);
  test::ScopedPool hdr(2);
  const unsigned start = mp.avail(), hstart = hdr.avail();
  {
    const SeqNum isn{0};
    SendBuffer sb(mp.mp, 1 << 20, 16, isn);
    const std::size_t got = write_stream(sb, 100000);
    CHECK(got > 0);
    CHECK(got < 100000);
    CHECK(sb.buffered() == got);
    CHECK(sb.segments() == start);
    CHECK(mp.avail() == 0);
    CHECK(write_stream(sb, 1) == 0);
    // Segments come from another pool; two mbufs cover a header and one slice.
    CHECK(exact(sb.segment(isn, 100, hdr.mp), isn, 100));
    CHECK(hdr.avail() == hstart);
    Packet none = sb.segment(isn, static_cast<std::uint32_t>(got), hdr.mp);  // needs 1 + 3
    CHECK(!none);
    CHECK(hdr.avail() == hstart);  // the partial chain went back
    CHECK(!sb.segment(isn, 10, mp.mp));
    CHECK(!sb.segment_copy(isn, 10, mp.mp));

    // An ACK frees mbufs and writing resumes.
    CHECK(sb.ack(sb.end()) == got);
    CHECK(write_stream(sb, 10) == 10);
    CHECK(exact(sb.segment(sb.snd_una(), 10, hdr.mp), sb.snd_una(), 10));
  }
  CHECK(mp.avail() == start);
  CHECK(hdr.avail() == hstart);
}

TEST_CASE("zero-copy writes keep the caller's mbufs and skip empty segments", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{9000};
    SendBuffer sb(mp.mp, 1 << 20, 16, isn);
    REQUIRE(write_stream(sb, 3) == 3);
    Packet a = piece(sb.end(), 100, mp.mp);
    Packet empty = Packet::alloc(mp.mp);
    Packet c = piece(sb.end() + 100, 50, mp.mp);
    const void* a_buf = a.get()->buf_addr;
    REQUIRE(rte_pktmbuf_chain(a.get(), empty.release()) == 0);
    REQUIRE(rte_pktmbuf_chain(a.get(), c.release()) == 0);
    CHECK(sb.write_zero_copy(a));
    CHECK(!a);
    CHECK(sb.buffered() == 153);
    CHECK(sb.segments() == 3);  // the empty segment was freed
    CHECK(mp.avail() == start - 3);
    // The segment references the caller's buffer, not a copy.
    Packet s = sb.segment(isn + 3, 100, mp.mp);
    REQUIRE(chain_len(s) == 2);
    CHECK(s.get()->next->buf_addr == a_buf);
    CHECK(exact(s, isn + 3, 100));
    CHECK(exact(sb.segment(isn, 1000, mp.mp), isn, 153));
    // Copies after a zero-copy tail go into a new mbuf.
    REQUIRE(write_stream(sb, 5) == 5);
    CHECK(sb.segments() == 4);
    CHECK(exact(sb.segment(isn, 1000, mp.mp), isn, 158));
    CHECK(!sb.write_zero_copy(Packet{}));
    CHECK(sb.write_zero_copy(Packet::alloc(mp.mp)));  // length 0: accepted, freed
    CHECK(sb.buffered() == 158);
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("a segment outlives the ACK that frees its source", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{77};
    SendBuffer sb(mp.mp, 1 << 20, 16, isn);
    REQUIRE(write_stream(sb, 4000) == 4000);
    Packet whole = sb.segment(isn, 4000, mp.mp);
    Packet middle = sb.segment(isn + 1000, 2000, mp.mp);
    Packet copy = sb.segment_copy(isn + 10, 100, mp.mp);
    REQUIRE(exact(whole, isn, 4000));
    CHECK(sb.ack(isn + 1500) == 1500);
    CHECK(sb.ack(isn + 4000) == 2500);
    CHECK(sb.segments() == 0);
    // Then the buffer is reused for new data, which must not show through.
    REQUIRE(write_stream(sb, 4000) == 4000);
    CHECK(exact(whole, isn, 4000));
    CHECK(exact(middle, isn + 1000, 2000));
    CHECK(exact(copy, isn + 10, 100));
    CHECK(exact(sb.segment(isn + 4000, 4000, mp.mp), isn + 4000, 4000));
    // A write into the tailroom of an mbuf a segment references leaves that
    // segment unchanged.
    Packet tail = sb.segment(sb.end() - 10, 10, mp.mp);
    REQUIRE(write_stream(sb, 10) == 10);
    CHECK(exact(tail, isn + 7990, 10));
    CHECK(exact(sb.segment(isn + 7990, 20, mp.mp), isn + 7990, 20));
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("sequence numbers wrap around 2^32", "[sndbuf]") {
  test::ScopedPool mp(32);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{0u - 1501u};  // 5501 bytes end at 4000
    SendBuffer sb(mp.mp, 1 << 20, 16, isn);
    for (std::size_t len : {999u, 1u, 1500u, 3001u}) REQUIRE(write_stream(sb, len) == len);
    CHECK(sb.end() == SeqNum{4000});
    CHECK(sb.end() > sb.snd_una());
    bool ok = true;
    for (std::uint32_t off = 0; off <= 5501; off += 11)
      for (std::uint32_t len : {0u, 1u, 700u, 2176u, 6000u}) {
        const std::size_t want = std::min<std::size_t>(len, 5501 - off);
        if (!exact(sb.segment(isn + off, len, mp.mp), isn + off, want)) ok = false;
        if (!exact(sb.segment_copy(isn + off, std::min(len, 1000u), mp.mp), isn + off, std::min<std::size_t>(want, 1000)))
          ok = false;
      }
    CHECK(ok);
    CHECK(sb.ack(SeqNum{0xfffffffeu}) == 1499);  // just before the wrap
    CHECK(sb.ack(SeqNum{10}) == 12);             // across it
    CHECK(sb.snd_una() == SeqNum{10});
    CHECK(sb.ack(SeqNum{0xfffffff0u}) == 0);     // behind, across the wrap
    CHECK(exact(sb.segment(SeqNum{10}, 10000, mp.mp), SeqNum{10}, 3990));
    CHECK(sb.ack(SeqNum{4000}) == 3990);
  }
  CHECK(mp.avail() == start);
}

TEST_CASE("a random workload never leaks an mbuf", "[sndbuf]") {
  test::ScopedPool mp(128);
  const unsigned start = mp.avail();
  {
    const SeqNum isn{0xfffff000u};
    SendBuffer sb(mp.mp, 20000, 24, isn);
    std::uint32_t rng = 12345;
    auto next = [&] { return rng = rng * 1103515245u + 12345u, rng >> 8; };
    std::vector<Packet> in_flight;
    bool ok = true;
    for (int i = 0; i < 3000; ++i) {
      switch (next() % 4) {
        case 0: write_stream(sb, next() % 5000); break;
        case 1: {
          Packet p = piece(sb.end(), 1 + next() % 1500, mp.mp);
          sb.write_zero_copy(p);
          break;
        }
        case 2: sb.ack(sb.snd_una() + static_cast<std::uint32_t>(next() % (sb.buffered() + 100))); break;
        default: {
          const auto off = static_cast<std::uint32_t>(next() % (sb.buffered() + 1));
          const auto len = static_cast<std::uint32_t>(next() % 9000);
          Packet s = sb.segment(sb.snd_una() + off, len, mp.mp);
          if (s && !exact(s, sb.snd_una() + off, std::min<std::size_t>(len, sb.buffered() - off))) ok = false;
          if (s && in_flight.size() < 8) in_flight.push_back(std::move(s));
          if (next() % 3 == 0 && !in_flight.empty()) in_flight.erase(in_flight.begin());
        }
      }
    }
    CHECK(ok);
  }
  CHECK(mp.avail() == start);
}

#ifdef USTACK_COUNT_ALLOCS
TEST_CASE("no heap allocation after construction", "[sndbuf][alloc]") {
  test::ScopedPool mp(64);
  const SeqNum isn{1};
  SendBuffer sb(mp.mp, 16000, 32, isn);
  std::vector<std::uint8_t> data(3000, 0x5a);
  // The counter sees allocations at all.
  const std::uint64_t c0 = thread_alloc_count();
  auto* probe = new std::uint64_t(1);
  asm volatile("" : : "r"(probe) : "memory");  // keep the allocation from being elided
  CHECK(thread_alloc_count() == c0 + 1);
  delete probe;

  const std::uint64_t before = thread_alloc_count();
  std::size_t sent = 0;
  for (int i = 0; i < 1000; ++i) {
    sb.write_copy(Bytes{data}.first(1 + static_cast<std::size_t>(i) % data.size()));
    Packet s = sb.segment(sb.snd_una(), 1460, mp.mp);
    Packet c = sb.segment_copy(sb.snd_una(), 200, mp.mp);
    sent += s.len() + c.len();
    sb.ack(sb.snd_una() + static_cast<std::uint32_t>(std::min<std::size_t>(sb.buffered(), 2000)));
  }
  const std::uint64_t allocs = thread_alloc_count() - before;
  CHECK(allocs == 0);
  CHECK(sent != 0);
}
#endif
