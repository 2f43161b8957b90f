// Zero heap allocation in TCP's steady state, measured: this binary links the
// malloc-interposing allocation counter (test/unit/tcp_conn/meson.build).
//
// "Steady state" is everything after a warm-up connection has gone through
// the same sequence once: a connection's open, 1,000 request/responses, a
// bulk transfer of several MiB, an orderly close into TIME-WAIT, a second
// connect/close cycle, and TIME-WAIT expiring. The layer allocates its pool
// of connections and rings at construction; nothing after that may touch the
// heap, on either side.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>

#include "core/alloc_counter.hpp"
#include "test/unit/tcp_conn/harness.hpp"

using namespace ustack;
using namespace ustack::test;

namespace {

constexpr std::uint16_t kPort = 7000;
constexpr std::size_t kMsg = 64;

// Echoes what it reads, or only counts it; closes on the peer's FIN.
struct Server final : tcp::TcpHandler {
  bool echo = true;
  std::uint64_t accepts = 0, rx = 0, closes = 0;
  std::array<std::uint8_t, 16384> buf{};

  void on_accept(tcp::TcpLayer&, TcpListenerId, TcpConnId, TimeNs) override { ++accepts; }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    for (std::size_t n; (n = t.read(c, buf, now)) != 0;) {
      rx += n;
      if (echo) t.send(c, Bytes{buf}.first(n), now);
    }
    if (t.peer_closed(c)) {
      t.close(c, now);
      ++closes;
    }
  }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError, TimeNs) override { ++closes; }
};

struct Client final : tcp::TcpHandler {
  bool connected = false;
  std::uint64_t rx = 0, to_send = 0, sent = 0;
  TcpConnId conn;
  std::array<std::uint8_t, 16384> buf{};

  void on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    connected = true;
    conn = c;
    pump(t, now);
  }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    for (std::size_t n; (n = t.read(c, buf, now)) != 0;) rx += n;
  }
  void on_writable(tcp::TcpLayer& t, TcpConnId, TimeNs now) override { pump(t, now); }
  void pump(tcp::TcpLayer& t, TimeNs now) {
    while (sent < to_send) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to_send - sent));
      for (std::size_t i = 0; i < want; ++i) buf[i] = static_cast<std::uint8_t>(sent + i);
      const std::size_t n = t.send(conn, Bytes{buf}.first(want), now);
      sent += n;
      if (n < want) return;
    }
  }
};

// What one pass observed; checked after the measured region (a Catch2
// assertion inside it could allocate on its own).
struct Pass {
  bool ok = true;
  std::uint64_t round_trips = 0, bulk = 0;
};

// One connection through its whole life, then a second, short one, then
// TIME-WAIT's expiry. Every wait is on virtual time.
void one_pass(TcpPair& p, Server& s, Client& c, std::uint64_t bulk_bytes, Pass& out) {
  auto established = [&] {
    c.connected = false;
    const std::uint64_t accepts = s.accepts;
    const auto id = p.ta.connect(p.ip_b(), kPort, &c, nullptr, p.now);
    out.ok = out.ok && id.has_value();
    out.ok = out.ok && p.run_until([&] { return c.connected && s.accepts == accepts + 1; });
  };
  auto closed = [&] {
    const std::uint64_t closes = s.closes;
    p.ta.close(c.conn, p.now);
    // The server closes on EOF; the client's end stays in TIME-WAIT.
    out.ok = out.ok && p.run_until([&] {
      return s.closes == closes + 1 && p.tb.connection_count() == 0 &&
             p.ta.connection_count() == p.ta.time_wait_count();
    });
  };

  established();
  std::array<std::uint8_t, kMsg> msg{};
  for (int i = 0; i < 1000 && out.ok; ++i) {
    const std::uint64_t want = c.rx + kMsg;
    out.ok = out.ok && p.ta.send(c.conn, Bytes{msg}, p.now) == kMsg;
    out.ok = out.ok && p.run_until([&] { return c.rx >= want; });
    if (out.ok) ++out.round_trips;
  }
  s.echo = false;
  const std::uint64_t want = s.rx + bulk_bytes;
  c.to_send = c.sent + bulk_bytes;
  c.pump(p.ta, p.now);
  out.ok = out.ok && p.run_until([&] { return s.rx >= want; });
  out.bulk = s.rx - (want - bulk_bytes);
  s.echo = true;
  closed();

  established();
  closed();
  // TIME-WAIT (2 MSL) expires: its timer frees the slots.
  out.ok = out.ok && p.run_until([&] { return p.ta.connection_count() == 0; }, 300 * kNsPerSec);
}

}  // namespace

TEST_CASE("The allocation counter sees allocations in this binary", "[alloc]") {
  const auto before = thread_alloc_count();
  auto p = std::make_unique<int>(7);
  CHECK(thread_alloc_count() == before + 1);
  CHECK(*p == 7);
}

TEST_CASE("TCP steady state allocates nothing: connect, 1,000 RRs, bulk, close, reconnect", "[tcp][alloc]") {
  constexpr std::uint64_t kBulk = 6 * 1024 * 1024;
  TcpPair p;
  Server s;
  Client c;
  REQUIRE(p.tb.listen(kPort, 16, &s));

  Pass warm;
  one_pass(p, s, c, kBulk, warm);  // ARP, first use of every path
  REQUIRE(warm.ok);

  const auto before = thread_alloc_count();
  Pass pass;
  one_pass(p, s, c, kBulk, pass);
  const auto allocs = thread_alloc_count() - before;

  CHECK(pass.ok);
  CHECK(pass.round_trips == 1000);
  CHECK(pass.bulk == kBulk);
  CHECK(p.a.stack().counters().get(StackCounter::tcp_tx_retransmits) == 0);
  CHECK(allocs == 0);
}
