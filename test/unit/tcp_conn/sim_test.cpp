// TCP end to end on two stacks over the in-memory pair, virtual time.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <tuple>

#include "test/unit/tcp_conn/endpoint.hpp"
#include "test/unit/tcp_conn/harness.hpp"

using namespace ustack;
using namespace ustack::test;

namespace {

struct Transfer {
  std::uint64_t ab = 0, ba = 0;  // bytes a -> b and b -> a
  tcp::TcpConfig cfg;
  FaultConfig a_rx, a_tx;
  std::uint64_t seed = 7;
  TimeNs limit = 600 * kNsPerSec;
  bool multi_seg = false;  // the devices take chains: zero-copy TX
};

struct Outcome {
  Endpoint client, server;
  bool done = false;
  std::uint32_t conns_a = 0, conns_b = 0;
  std::uint64_t retransmits = 0;  // both sides
  std::uint64_t wire_drops = 0;   // by the fault injector, both directions
  std::uint64_t zero_copy = 0;    // segments sent as chains, both sides
};

void run(const Transfer& tr, Outcome& o) {
  TcpPair p(tr.cfg, tr.seed, tr.a_rx, tr.a_tx, nullptr, 4096, tr.multi_seg);
  o.client = Endpoint(tr.ab, 11, 22);
  o.server = Endpoint(tr.ba, 22, 11);
  REQUIRE(p.tb.listen(5000, 16, &o.server));
  auto c = p.ta.connect(p.ip_b(), 5000, &o.client, nullptr, p.now);
  REQUIRE(c);
  o.client.conn = *c;
  o.done = p.run_until(
      [&] {
        return o.client.eof && o.server.eof && o.client.closed && o.server.closed && p.ta.connection_count() == 0;
      },
      tr.limit);
  if (!o.done) {
    UNSCOPED_INFO("client eof " << o.client.eof << " closed " << o.client.closed << " shut " << o.client.shut << " sent " << o.client.sent
                  << "; server eof " << o.server.eof << " closed " << o.server.closed << " shut " << o.server.shut << " sent " << o.server.sent
                  << "; conns a " << p.ta.connection_count() << " b " << p.tb.connection_count() << " tw b " << p.tb.time_wait_count());
    for (auto [name, layer, id] : {std::tuple{"client", &p.ta, o.client.conn}, std::tuple{"server", &p.tb, o.server.conn}}) {
      if (auto st = layer->stats(id))
        UNSCOPED_INFO(name << ": " << to_string(st->state) << " cwnd " << st->cwnd << " ssthresh " << st->ssthresh
                           << " snd_wnd " << st->snd_wnd << " rcv_wnd " << st->rcv_wnd << " unacked " << st->unacked
                           << " unread " << st->unread << " rto " << st->rto_ns << " rtx " << st->retransmits
                           << " timeouts " << st->timeouts << " in " << st->bytes_in << " out " << st->bytes_out);
      else
        UNSCOPED_INFO(name << ": no connection");
    }
    for (std::size_t i = 0; i < kStackCounterCount; ++i) {
      const auto va = p.a.stack().counters().get(i), vb = p.b.stack().counters().get(i);
      if ((va || vb) && kStackCounterNames[i].starts_with("tcp")) UNSCOPED_INFO(kStackCounterNames[i] << " a=" << va << " b=" << vb);
    }
  }
  o.retransmits = p.a.stack().counters().get(StackCounter::tcp_tx_retransmits) +
                  p.b.stack().counters().get(StackCounter::tcp_tx_retransmits);
  o.wire_drops = p.fa.rx_counters().dropped + p.fa.tx_counters().dropped;
  o.zero_copy = p.a.stack().counters().get(StackCounter::tcp_tx_zero_copy) +
                p.b.stack().counters().get(StackCounter::tcp_tx_zero_copy);
  o.conns_a = p.ta.connection_count();
  o.conns_b = p.tb.connection_count() - p.tb.time_wait_count();
}

}  // namespace

TEST_CASE("TCP: handshake, small exchange, orderly close on a clean wire", "[tcp][sim]") {
  Transfer tr;
  tr.ab = 1000;
  tr.ba = 3000;
  Outcome o;
  run(tr, o);
  CHECK(o.done);
  CHECK(o.client.received == 3000);
  CHECK(o.server.received == 1000);
  CHECK(o.client.mismatches == 0);
  CHECK(o.server.mismatches == 0);
  CHECK(o.client.error == TcpError::none);
  CHECK(o.server.error == TcpError::none);
  CHECK(o.conns_b == 0);
}

TEST_CASE("TCP: 4 MiB each way on a clean wire", "[tcp][sim]") {
  Transfer tr;
  tr.ab = 4 << 20;
  tr.ba = 4 << 20;
  Outcome o;
  run(tr, o);
  CHECK(o.done);
  CHECK(o.client.received == tr.ba);
  CHECK(o.server.received == tr.ab);
  CHECK(o.client.hash == pattern_hash(tr.ba, 22));
  CHECK(o.server.hash == pattern_hash(tr.ab, 11));
  CHECK(o.zero_copy == 0);  // these devices take no chains: every payload copied once
}

TEST_CASE("TCP: 4 MiB each way with zero-copy TX (mbuf chains into the send buffer)", "[tcp][sim]") {
  Transfer tr;
  tr.ab = 4 << 20;
  tr.ba = 4 << 20;
  tr.multi_seg = true;
  Outcome o;
  run(tr, o);
  CHECK(o.done);
  CHECK(o.client.hash == pattern_hash(tr.ba, 22));
  CHECK(o.server.hash == pattern_hash(tr.ab, 11));
  CHECK(o.client.mismatches == 0);
  CHECK(o.server.mismatches == 0);
  // Full-sized segments went as chains (a segment's checksum is verified by
  // the receiver, so a wrong sum over a chain would have stalled the transfer).
  CHECK(o.zero_copy > (tr.ab + tr.ba) / 1460 / 2);
}

namespace {

void lossy(TcpCongestion cc, bool sack, std::uint64_t bytes, std::uint64_t seed, bool multi_seg = false) {
  Transfer tr;
  tr.multi_seg = multi_seg;
  tr.ab = bytes;
  tr.ba = bytes;
  tr.seed = seed;
  tr.cfg.defaults.congestion = cc;
  tr.cfg.defaults.sack = sack;
  FaultConfig f;
  f.drop = 0.05;
  f.duplicate = 0.02;
  f.reorder = 0.02;
  f.jitter_ns = 50 * kNsPerUs;
  f.delay_ns = 100 * kNsPerUs;
  tr.a_rx = f;
  tr.a_tx = f;
  tr.limit = 3600 * kNsPerSec;
  Outcome o;
  run(tr, o);
  INFO("client received " << o.client.received << " server received " << o.server.received);
  CHECK(o.done);
  CHECK(o.client.received == tr.ba);
  CHECK(o.server.received == tr.ab);
  CHECK(o.client.mismatches == 0);
  CHECK(o.server.mismatches == 0);
  CHECK(o.client.hash == pattern_hash(tr.ba, 22));
  CHECK(o.server.hash == pattern_hash(tr.ab, 11));
  CHECK(o.client.error == TcpError::none);
  CHECK(o.server.error == TcpError::none);
  // The faults happened and were repaired.
  CHECK(o.wire_drops > 0);
  CHECK(o.retransmits >= o.wire_drops / 4);
  CHECK((o.zero_copy > 0) == multi_seg);
}

std::uint64_t sim_bytes() {
  if (const char* e = std::getenv("USTACK_TCP_SIM_MIB")) return std::strtoull(e, nullptr, 10) << 20;
  return 64ull << 20;
}

}  // namespace

TEST_CASE("TCP: lossy wire, NewReno with SACK", "[tcp][sim][lossy]") { lossy(TcpCongestion::newreno, true, sim_bytes(), 1); }
TEST_CASE("TCP: lossy wire, NewReno without SACK", "[tcp][sim][lossy]") { lossy(TcpCongestion::newreno, false, sim_bytes(), 2); }
TEST_CASE("TCP: lossy wire, CUBIC with SACK", "[tcp][sim][lossy]") { lossy(TcpCongestion::cubic, true, sim_bytes(), 3); }
TEST_CASE("TCP: lossy wire, CUBIC without SACK", "[tcp][sim][lossy]") { lossy(TcpCongestion::cubic, false, sim_bytes(), 4); }
// Retransmissions of chained segments reference the same buffered mbufs as
// the originals, which ACKs trim meanwhile: a quarter of the volume suffices.
TEST_CASE("TCP: lossy wire, zero-copy TX", "[tcp][sim][lossy]") { lossy(TcpCongestion::cubic, true, sim_bytes() / 4, 5, true); }
