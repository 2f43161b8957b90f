// The TCP services and test client of `ustack` (src/services/) on two stacks
// over the in-memory pair, virtual time: echo (zero-copy, backpressure),
// discard, source, and the client checking the pattern, on clean and lossy
// wires; no connection and no mbuf left behind.
#include <catch2/catch.hpp>

#include "services/pattern.hpp"
#include "services/tcp_services.hpp"
#include "test/unit/tcp_conn/endpoint.hpp"
#include "test/unit/tcp_conn/harness.hpp"

using namespace ustack;
using namespace ustack::test;
using services::Pattern;
using services::ServiceKind;
using services::TcpGet;
using services::TcpService;

namespace {

FaultConfig lossy_wire() {
  FaultConfig f;
  f.drop = 0.03;
  f.reorder = 0.01;
  f.duplicate = 0.01;
  f.delay_ns = 100 * kNsPerUs;
  f.jitter_ns = 50 * kNsPerUs;
  return f;
}

// The pattern as the Python side of the interop test makes it.
std::uint8_t python_pattern(std::uint64_t i) { return static_cast<std::uint8_t>((7 * (i % 251) + i / 251) % 256); }

}  // namespace

TEST_CASE("Pattern: the documented formula, period 64256, chunks and mismatches", "[services]") {
  for (std::uint64_t i : {0ull, 1ull, 250ull, 251ull, 64255ull, 64256ull, 1000000007ull})
    CHECK(services::pattern_byte(i) == python_pattern(i));
  for (std::uint64_t off : {0ull, 100ull, 64000ull, 64256ull * 3 + 17}) {
    const auto c = Pattern::chunk(off, services::kPatternMaxChunk);
    REQUIRE(c.size() == services::kPatternMaxChunk);
    for (std::size_t i = 0; i < c.size(); ++i) REQUIRE(c[i] == python_pattern(off + i));
    CHECK(Pattern::mismatch(off, c) == c.size());
  }
  std::array<std::uint8_t, 40000> buf;
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = python_pattern(5000 + i);
  CHECK(Pattern::mismatch(5000, buf) == buf.size());
  buf[33333] ^= 1;
  CHECK(Pattern::mismatch(5000, buf) == 33333);
  CHECK(Pattern::mismatch(5001, buf) == 0);
}

TEST_CASE("Services: echo sends back what it gets, zero-copy, through a send buffer smaller than a segment",
          "[services][sim]") {
  const bool lossy = GENERATE(false, true);
  const std::uint32_t sndbuf = GENERATE(4096u, 256u * 1024);
  INFO("lossy " << lossy << " sndbuf " << sndbuf);
  tcp::TcpConfig cfg;
  cfg.defaults.sndbuf = sndbuf;
  TcpPair p(cfg, 5, lossy ? lossy_wire() : FaultConfig{}, lossy ? lossy_wire() : FaultConfig{});
  const auto avail = rte_mempool_avail_count(test::pool());
  {
    TcpService echo(p.ta, ServiceKind::echo, 7, 0);
    REQUIRE(echo.listening());
    const std::uint64_t n = 3 * 1024 * 1024 + 77;
    Endpoint client(n, 9, 9);  // the echo of salt 9 is salt 9
    auto c = p.tb.connect(p.ip_a(), 7, &client, nullptr, p.now);
    REQUIRE(c);
    client.conn = *c;
    REQUIRE(p.run_until([&] { return client.closed && p.ta.connection_count() == 0; }, 600 * kNsPerSec));
    for (std::size_t i = 0; i < kStackCounterCount; ++i) {
      const auto va = p.a.stack().counters().get(i), vb = p.b.stack().counters().get(i);
      if ((va || vb) && kStackCounterNames[i].starts_with("tcp")) UNSCOPED_INFO(kStackCounterNames[i] << " a=" << va << " b=" << vb);
    }
    CHECK(client.received == n);
    CHECK(client.mismatches == 0);
    CHECK(client.error == TcpError::none);
    const auto& k = echo.counters();
    CHECK(k.connections.get() == 1);
    CHECK(k.completed.get() == 1);
    CHECK(k.active.get() == 0);
    CHECK(k.failed.get() == 0);
    CHECK(k.bytes_in.get() == n);
    CHECK(k.bytes_out.get() == n);
  }
  // The client's side waits in TIME-WAIT (it holds no mbufs); the echo side is gone.
  CHECK(p.ta.connection_count() == 0);
  p.run_until([] { return false; }, 50 * kNsPerMs);
  // Every mbuf is back, but for one the fault injector may hold for reordering.
  CHECK(rte_mempool_avail_count(test::pool()) + p.fa.rx_queued() + p.fa.tx_queued() == avail);
}

TEST_CASE("Services: discard reads everything and closes at the peer's FIN", "[services][sim]") {
  TcpPair p;
  TcpService discard(p.ta, ServiceKind::discard, 9, 0);
  const std::uint64_t n = 1 << 20;
  Endpoint client(n, 3, 4);
  auto c = p.tb.connect(p.ip_a(), 9, &client, nullptr, p.now);
  REQUIRE(c);
  client.conn = *c;
  REQUIRE(p.run_until([&] { return client.closed && p.ta.connection_count() == 0; }));
  CHECK(client.received == 0);
  CHECK(client.eof);
  CHECK(discard.counters().bytes_in.get() == n);
  CHECK(discard.counters().completed.get() == 1);
}

TEST_CASE("Services: source and the client, byte count and pattern checked", "[services][sim]") {
  const bool lossy = GENERATE(false, true);
  INFO("lossy " << lossy);
  TcpPair p({}, 11, lossy ? lossy_wire() : FaultConfig{}, lossy ? lossy_wire() : FaultConfig{});
  const std::uint64_t n = 2 * 1024 * 1024 + 12345;
  TcpService source(p.tb, ServiceKind::source, 19, n);
  TcpGet get(p.ip_b(), 19, n, 600 * kNsPerSec);
  get.start(p.ta, p.now);
  REQUIRE(p.run_until([&] { return get.done() && p.ta.connection_count() == 0; }, 600 * kNsPerSec));
  CHECK(get.result().outcome == TcpGet::Outcome::ok);
  CHECK(get.result().bytes == n);
  CHECK(source.counters().bytes_out.get() == n);
  CHECK(source.counters().completed.get() == 1);
  CHECK(source.counters().failed.get() == 0);
  // The source closed first: its side waits in TIME-WAIT.
  CHECK(p.tb.connection_count() == p.tb.time_wait_count());
}

TEST_CASE("Services: the client reports refused, short, long and a pattern mismatch", "[services][sim]") {
  TcpPair p;
  SECTION("refused") {
    TcpGet get(p.ip_b(), 19, std::nullopt, 10 * kNsPerSec);
    get.start(p.ta, p.now);
    REQUIRE(p.run_until([&] { return get.done(); }));
    CHECK(get.result().outcome == TcpGet::Outcome::refused);
  }
  SECTION("short") {
    TcpService source(p.tb, ServiceKind::source, 19, 1000);
    TcpGet get(p.ip_b(), 19, 1001, 10 * kNsPerSec);
    get.start(p.ta, p.now);
    REQUIRE(p.run_until([&] { return get.done(); }));
    CHECK(get.result().outcome == TcpGet::Outcome::short_count);
    CHECK(get.result().bytes == 1000);
  }
  SECTION("long") {
    TcpService source(p.tb, ServiceKind::source, 19, 100000);
    TcpGet get(p.ip_b(), 19, 99999, 10 * kNsPerSec);
    get.start(p.ta, p.now);
    REQUIRE(p.run_until([&] { return get.done(); }));
    CHECK(get.result().outcome == TcpGet::Outcome::long_count);
  }
  SECTION("mismatch") {
    // A peer that sends another pattern (the simulation tests' own).
    Endpoint server(5000, 1, 2);
    REQUIRE(p.tb.listen(19, 4, &server));
    TcpGet get(p.ip_b(), 19, std::nullopt, 10 * kNsPerSec);
    get.start(p.ta, p.now);
    REQUIRE(p.run_until([&] { return get.done(); }));
    CHECK(get.result().outcome == TcpGet::Outcome::mismatch);
    CHECK(get.result().mismatch_at < 5000);
  }
  SECTION("timeout") {
    // Nobody answers: an address on the subnet without a host.
    TcpGet get(Ipv4Addr{10, 1, 0, 77}, 19, std::nullopt, 2 * kNsPerSec);
    get.start(p.ta, p.now);
    REQUIRE(p.run_until([&] {
      get.poll(p.ta, p.now);
      return get.done();
    }));
    CHECK(get.result().outcome == TcpGet::Outcome::timed_out);
    CHECK(p.ta.connection_count() == 0);
  }
}
