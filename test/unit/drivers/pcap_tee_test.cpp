#include "drivers/pcap_tee.hpp"

#include <catch2/catch.hpp>
#include <pcap/pcap.h>
#include <rte_mempool.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "drivers/mem_pair.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

using TestPool = test::ScopedPool;

using test::TempDir;

using Frame = std::vector<std::uint8_t>;

Frame frame(std::uint32_t id, std::size_t len = 60) {
  Frame f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = static_cast<std::uint8_t>(i * 11 + id);
  store_be16(f, 12, 0x88b5);
  store_be32(f, 14, id);
  return f;
}

struct Record {
  TimeNs ts;
  Frame bytes;
  std::uint32_t wire_len;
};

std::vector<Record> read_capture(const std::string& path) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  INFO(errbuf);
  REQUIRE(p);
  CHECK(pcap_datalink(p) == DLT_EN10MB);
  std::vector<Record> out;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1)
    out.push_back({static_cast<TimeNs>(h->ts.tv_sec) * kNsPerSec + static_cast<TimeNs>(h->ts.tv_usec),
                   Frame(data, data + h->caplen), h->len});
  pcap_close(p);
  return out;
}

std::unique_ptr<PcapTee> open_ok(Device& inner, const std::string& path, TimeNs offset) {
  std::string err;
  auto tee = PcapTee::open(inner, path, offset, err);
  INFO(err);
  REQUIRE(tee);
  return tee;
}

void send(Device& d, std::vector<rte_mbuf*> pkts, TimeNs now) { REQUIRE(d.tx_burst(pkts, now) == pkts.size()); }

rte_mbuf* mbuf_of(const Frame& f, rte_mempool* mp) { return test::packet_of(Bytes{f}, mp).release(); }

// A realtime-minus-monotonic offset, as the runtime would pass.
constexpr TimeNs kOffset = 1'700'000'000 * kNsPerSec + 123;

}  // namespace

TEST_CASE("pcap tee: RX and TX are recorded in order with offset timestamps", "[pcap_tee]") {
  TempDir dir;
  TestPool pool(64);
  const unsigned start = pool.avail();
  const std::string path = dir.file("tee.pcap");
  {
    MemPair pair(16);
    auto tee = open_ok(pair.a(), path, kOffset);
    CHECK(tee->caps().mac == pair.a().caps().mac);

    send(pair.b(), {mbuf_of(frame(0), pool.mp), mbuf_of(frame(1, 200), pool.mp)}, 0);
    std::vector<rte_mbuf*> got(8);
    REQUIRE(tee->rx_burst(got, 10) == 2);
    CHECK(test::bytes_of(got[0]) == frame(0));
    CHECK(test::bytes_of(got[1]) == frame(1, 200));
    rte_pktmbuf_free_bulk(got.data(), 2);

    // A two-segment TX packet is recorded whole, and still reaches the peer.
    rte_mbuf* head = mbuf_of(frame(2, 100), pool.mp);
    REQUIRE(rte_pktmbuf_chain(head, mbuf_of(frame(3, 70), pool.mp)) == 0);
    send(*tee, {head}, 20);
    REQUIRE(pair.b().rx_burst(got, 20) == 1);
    CHECK(rte_pktmbuf_pkt_len(got[0]) == 170);
    rte_pktmbuf_free(got[0]);

    send(pair.b(), {mbuf_of(frame(4), pool.mp)}, 25);
    REQUIRE(tee->rx_burst(got, 30) == 1);
    rte_pktmbuf_free(got[0]);
    CHECK(tee->rx_burst(got, 40) == 0);  // nothing received, nothing written
    CHECK(tee->packets_written() == 4);
    tee->flush(40);

    const auto recs = read_capture(path);
    REQUIRE(recs.size() == 4);
    CHECK(recs[0].ts == kOffset + 10);
    CHECK(recs[0].bytes == frame(0));
    CHECK(recs[1].ts == kOffset + 10);
    CHECK(recs[1].bytes == frame(1, 200));
    CHECK(recs[2].ts == kOffset + 20);
    Frame chained = frame(2, 100);
    const Frame t = frame(3, 70);
    chained.insert(chained.end(), t.begin(), t.end());
    CHECK(recs[2].bytes == chained);
    CHECK(recs[2].wire_len == 170);
    CHECK(recs[3].ts == kOffset + 30);
    CHECK(recs[3].bytes == frame(4));

    if (std::system("command -v tshark >/dev/null 2>&1") == 0) {
      const std::string cmd = "tshark -r '" + path + "' -T fields -e frame.len -e frame.time_epoch 2>/dev/null";
      FILE* p = popen(cmd.c_str(), "r");
      REQUIRE(p);
      std::string text;
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) text += buf;
      CHECK(pclose(p) == 0);
      INFO(text);
      CHECK(text.rfind("60\t1700000000.000000133", 0) == 0);
      CHECK_THAT(text, Catch::Contains("200\t1700000000.000000133") &&
                           Catch::Contains("170\t1700000000.000000143") &&
                           Catch::Contains("60\t1700000000.000000153"));
    } else {
      WARN("tshark not installed; capture not checked with it");
    }
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap tee: a TX packet inner refuses is recorded and counted", "[pcap_tee]") {
  TempDir dir;
  TestPool pool(16);
  const unsigned start = pool.avail();
  const std::string path = dir.file("tee.pcap");
  {
    MemPair pair(1);
    auto tee = open_ok(pair.a(), path, 0);
    std::vector<rte_mbuf*> pkts{mbuf_of(frame(0), pool.mp), mbuf_of(frame(1), pool.mp),
                                mbuf_of(frame(2), pool.mp)};
    REQUIRE(tee->tx_burst(pkts, 5) == 1);
    rte_pktmbuf_free_bulk(pkts.data() + 1, 2);
    CHECK(tee->tx_rejected() == 2);
    CHECK(tee->packets_written() == 3);
    tee->flush(5);
    const auto recs = read_capture(path);
    REQUIRE(recs.size() == 3);
    CHECK(recs[2].bytes == frame(2));
    CHECK(recs[2].ts == 5);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap tee: an unwritable path gives nullptr and one clear line", "[pcap_tee]") {
  TempDir dir;
  MemPair pair;
  std::string err;
  const std::string bad = dir.path + "/missing-dir/tee.pcap";
  CHECK(PcapTee::open(pair.a(), bad, 0, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("pcap tee") && Catch::Contains("missing-dir/tee.pcap"));
  CHECK(err.find('\n') == std::string::npos);
}

TEST_CASE("pcap writer: a packet longer than the snapshot length is cut, with its length kept",
          "[pcap_tee]") {
  // The writer's limit is libpcap's (256 KiB); an mbuf chain that long needs
  // 129 mbufs, so build one from a private pool.
  TempDir dir;
  TestPool pool(160);
  const unsigned start = pool.avail();
  const std::string path = dir.file("big.pcap");
  {
    std::string err;
    auto w = PcapWriter::open(path, err);
    REQUIRE(w);
    rte_mbuf* head = nullptr;
    Frame all;
    for (std::uint32_t i = 0; i < 130; ++i) {
      const Frame part = frame(i, 2048);
      all.insert(all.end(), part.begin(), part.end());
      rte_mbuf* m = mbuf_of(part, pool.mp);
      if (!head) {
        head = m;
      } else {
        REQUIRE(rte_pktmbuf_chain(head, m) == 0);
      }
    }
    w->write(head, 77);
    rte_pktmbuf_free(head);
    w->flush();
    const auto recs = read_capture(path);
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].wire_len == 130 * 2048);
    REQUIRE(recs[0].bytes.size() == PcapWriter::kSnapLen);
    CHECK(std::equal(recs[0].bytes.begin(), recs[0].bytes.end(), all.begin()));
  }
  CHECK(pool.avail() == start);
}
