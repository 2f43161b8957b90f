// TCP end to end on two stacks over the in-memory pair, virtual time.
#include <catch2/catch.hpp>

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
};

struct Outcome {
  Endpoint client, server;
  bool done = false;
  std::uint32_t conns_a = 0, conns_b = 0;
};

void run(const Transfer& tr, Outcome& o) {
  TcpPair p(tr.cfg, tr.seed, tr.a_rx, tr.a_tx);
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
}
