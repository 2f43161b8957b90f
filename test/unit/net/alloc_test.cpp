// Zero heap allocation on the data path, measured: this binary links the
// malloc-interposing allocation counter.
#include <catch2/catch.hpp>

#include <memory>

#include "core/alloc_counter.hpp"
#include "drivers/mem_pair.hpp"
#include "src/runtime/engine.hpp"
#include "test/support/support.hpp"

using namespace ustack;

TEST_CASE("The allocation counter sees allocations", "[alloc]") {
  const auto before = thread_alloc_count();
  auto p = std::make_unique<int>(7);
  CHECK(thread_alloc_count() == before + 1);
  CHECK(*p == 7);
}

TEST_CASE("Steady-state ping between two stacks allocates nothing", "[alloc]") {
  DeviceCaps ca, cb;
  ca.mac = MacAddr{{0x02, 0, 0, 0, 0, 1}};
  cb.mac = MacAddr{{0x02, 0, 0, 0, 0, 2}};
  MemPair pair(256, ca, cb);
  StackConfig sa, sb;
  sa.mac = ca.mac;
  sa.ip = Ipv4Cidr{Ipv4Addr{10, 2, 0, 1}, 24};
  sb.mac = cb.mac;
  sb.ip = Ipv4Cidr{Ipv4Addr{10, 2, 0, 2}, 24};
  TimeNs now = kNsPerSec;
  Engine a(pair.a(), sa, test::pool(), now);
  Engine b(pair.b(), sb, test::pool(), now);
  std::uint64_t replies = 0;
  a.stack().on_echo_reply([](const EchoReply&, TimeNs, void* ctx) { ++*static_cast<std::uint64_t*>(ctx); }, &replies);
  std::uint8_t data[56] = {};
  auto ping = [&](std::uint16_t seq) {
    a.stack().send_echo_request(sb.ip.addr, 1, seq, Bytes{data, sizeof data}, now);
    for (int i = 0; i < 3; ++i) {
      now += kNsPerUs;
      a.run_once(now);
      b.run_once(now);
    }
  };
  for (std::uint16_t i = 0; i < 100; ++i) ping(i);  // warm-up: ARP on both sides
  REQUIRE(replies == 100);
  const auto before = thread_alloc_count();
  for (std::uint16_t i = 0; i < 10000; ++i) ping(i);
  // Includes ARP refresh timers and the unicast confirmation after 60 s of virtual time.
  for (int i = 0; i < 200; ++i) {
    now += kNsPerSec;
    ping(static_cast<std::uint16_t>(i));
  }
  const auto allocs = thread_alloc_count() - before;
  CHECK(replies == 100 + 10000 + 200);
  CHECK(allocs == 0);
}
