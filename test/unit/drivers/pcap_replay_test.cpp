#include "drivers/pcap_replay.hpp"

#include <catch2/catch.hpp>
#include <pcap/pcap.h>
#include <rte_mempool.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "test/support/support.hpp"

using namespace ustack;

namespace {

using TestPool = test::ScopedPool;

using test::TempDir;

using Frame = std::vector<std::uint8_t>;

Frame frame(std::uint32_t id, std::size_t len = 60) {
  Frame f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = static_cast<std::uint8_t>(i * 5 + id * 3);
  store_be16(f, 12, 0x88b5);
  store_be32(f, 14, id);
  return f;
}

struct Record {
  TimeNs ts;
  Frame bytes;
  std::uint32_t wire_len = 0;  // 0: bytes.size() (captured whole)
};

void write_capture(const std::string& path, const std::vector<Record>& records, int dlt = DLT_EN10MB,
                   unsigned precision = PCAP_TSTAMP_PRECISION_NANO) {
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(dlt, 65535, precision);
  REQUIRE(dead);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  REQUIRE(d);
  const TimeNs unit = precision == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000;
  for (const Record& r : records) {
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(r.ts / kNsPerSec);
    h.ts.tv_usec = static_cast<suseconds_t>((r.ts % kNsPerSec) / unit);
    h.caplen = static_cast<bpf_u_int32>(r.bytes.size());
    h.len = r.wire_len ? r.wire_len : h.caplen;
    pcap_dump(reinterpret_cast<u_char*>(d), &h, r.bytes.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

struct ReadBack {
  int dlt = -1;
  int precision = -1;
  std::vector<Record> records;
};

ReadBack read_capture(const std::string& path) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  INFO(errbuf);
  REQUIRE(p);
  ReadBack rb;
  rb.dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) {
    Record r;
    r.ts = static_cast<TimeNs>(h->ts.tv_sec) * kNsPerSec + static_cast<TimeNs>(h->ts.tv_usec);
    r.bytes.assign(data, data + h->caplen);
    r.wire_len = h->len;
    rb.records.push_back(std::move(r));
  }
  pcap_close(p);
  // The file's own precision: its magic number.
  std::ifstream f(path, std::ios::binary);
  std::uint8_t magic[4] = {};
  f.read(reinterpret_cast<char*>(magic), 4);
  const std::uint32_t m = magic[0] | (magic[1] << 8) | (magic[2] << 16) | (std::uint32_t{magic[3]} << 24);
  rb.precision = m == 0xa1b23c4d ? PCAP_TSTAMP_PRECISION_NANO : m == 0xa1b2c3d4 ? PCAP_TSTAMP_PRECISION_MICRO : -1;
  return rb;
}

std::vector<std::uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::unique_ptr<PcapReplay> open_ok(const std::string& in, const std::string& out, rte_mempool* mp,
                                    const DeviceCaps& caps = {}) {
  std::string err;
  auto r = PcapReplay::open(in, out, mp, caps, err);
  INFO(err);
  REQUIRE(r);
  CHECK(err.empty());
  return r;
}

// rx_burst with a burst of `burst`; copies out and frees.
std::vector<Frame> rx(Device& d, TimeNs now, std::size_t burst = 16) {
  std::vector<rte_mbuf*> pkts(burst);
  const std::uint16_t n = d.rx_burst(pkts, now);
  REQUIRE(n <= burst);
  std::vector<Frame> out;
  for (std::uint16_t i = 0; i < n; ++i) {
    out.push_back(test::bytes_of(pkts[i]));
    rte_pktmbuf_free(pkts[i]);
  }
  return out;
}

constexpr TimeNs kT0 = 1'700'000'000 * kNsPerSec;

}  // namespace

TEST_CASE("pcap replay: packets come up when now reaches their timestamps", "[pcap_replay]") {
  TempDir dir;
  TestPool pool(64);
  const unsigned start = pool.avail();
  const std::string in = dir.file("in.pcap");
  write_capture(in, {{kT0 + 100, frame(0)},
                     {kT0 + 200, frame(1, 1514)},
                     {kT0 + 200, frame(2, 42)},
                     {kT0 + 2 * kNsPerSec + 5, frame(3)}});
  {
    DeviceCaps caps;
    caps.mtu = 1400;
    auto r = open_ok(in, dir.file("out.pcap"), pool.mp, caps);
    CHECK(r->caps().mtu == 1400);
    CHECK(r->next_rx_time() == kT0 + 100);
    CHECK(rx(*r, 0).empty());
    CHECK(rx(*r, kT0 + 99).empty());
    CHECK(rx(*r, kT0 + 100) == std::vector<Frame>{frame(0)});
    CHECK(r->next_rx_time() == kT0 + 200);
    CHECK(rx(*r, kT0 + 199).empty());
    // Two are due; a burst of one takes them one at a time, in capture order.
    CHECK(rx(*r, kT0 + 250, 1) == std::vector<Frame>{frame(1, 1514)});
    CHECK(rx(*r, kT0 + 250, 1) == std::vector<Frame>{frame(2, 42)});
    CHECK(rx(*r, kT0 + 2 * kNsPerSec + 4).empty());
    CHECK(r->next_rx_time() == kT0 + 2 * kNsPerSec + 5);
    CHECK(rx(*r, kT0 + 3 * kNsPerSec) == std::vector<Frame>{frame(3)});
    CHECK_FALSE(r->next_rx_time().has_value());
    CHECK(rx(*r, kNever).empty());
    CHECK(std::string(r->input_error()).empty());

    const auto& c = r->counters();
    CHECK(c.rx_packets == 4);
    CHECK(c.rx_bytes == 60 + 1514 + 42 + 60);
    CHECK(c.rx_drop_oversize + c.rx_drop_nombuf + c.rx_drop_truncated_capture == 0);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap replay: a microsecond capture is read in nanoseconds", "[pcap_replay]") {
  TempDir dir;
  const std::string in = dir.file("micro.pcap");
  write_capture(in, {{kT0 + 5000, frame(0)}}, DLT_EN10MB, PCAP_TSTAMP_PRECISION_MICRO);
  auto r = open_ok(in, "", test::pool());
  CHECK(r->next_rx_time() == kT0 + 5000);
  CHECK(rx(*r, kT0 + 4999).empty());
  CHECK(rx(*r, kT0 + 5000).size() == 1);
}

TEST_CASE("pcap replay: pcapng input is accepted", "[pcap_replay]") {
  if (std::system("command -v editcap >/dev/null 2>&1") != 0) {
    WARN("editcap not installed; pcapng input not tested");
    return;
  }
  TempDir dir;
  const std::string in = dir.file("in.pcap");
  const std::string ng = dir.file("in.pcapng");
  write_capture(in, {{kT0 + 7, frame(0)}, {kT0 + 9, frame(1)}});
  REQUIRE(std::system(("editcap -F pcapng '" + in + "' '" + ng + "' >/dev/null 2>&1").c_str()) == 0);
  auto r = open_ok(ng, "", test::pool());
  CHECK(r->next_rx_time() == kT0 + 7);
  CHECK(rx(*r, kT0 + 9) == std::vector<Frame>{frame(0), frame(1)});
}

TEST_CASE("pcap replay: sent packets are written stamped now, byte-exact", "[pcap_replay]") {
  TempDir dir;
  TestPool pool(64);
  const unsigned start = pool.avail();
  const std::string in = dir.file("in.pcap");
  const std::string out = dir.file("out.pcap");
  write_capture(in, {});
  {
    auto r = open_ok(in, out, pool.mp);
    CHECK_FALSE(r->next_rx_time().has_value());
    std::vector<rte_mbuf*> pkts{test::packet_of(Bytes{frame(1)}, pool.mp).release(),
                                test::packet_of(Bytes{frame(2, 1000)}, pool.mp).release()};
    CHECK(r->tx_burst(pkts, kT0 + 123'456'789) == 2);
    // A two-segment packet is written whole.
    rte_mbuf* head = test::packet_of(Bytes{frame(3, 100)}, pool.mp).release();
    rte_mbuf* tail = test::packet_of(Bytes{frame(4, 50)}, pool.mp).release();
    REQUIRE(rte_pktmbuf_chain(head, tail) == 0);
    std::vector<rte_mbuf*> one{head};
    CHECK(r->tx_burst(one, kT0 + kNsPerSec + 1) == 1);
    CHECK(pool.avail() == start);  // tx_burst freed them all
    r->flush(kT0 + kNsPerSec + 1);

    const ReadBack rb = read_capture(out);
    CHECK(rb.dlt == DLT_EN10MB);
    CHECK(rb.precision == PCAP_TSTAMP_PRECISION_NANO);
    REQUIRE(rb.records.size() == 3);
    CHECK(rb.records[0].ts == kT0 + 123'456'789);
    CHECK(rb.records[0].bytes == frame(1));
    CHECK(rb.records[1].ts == kT0 + 123'456'789);
    CHECK(rb.records[1].bytes == frame(2, 1000));
    CHECK(rb.records[2].ts == kT0 + kNsPerSec + 1);
    Frame chained = frame(3, 100);
    const Frame t = frame(4, 50);
    chained.insert(chained.end(), t.begin(), t.end());
    CHECK(rb.records[2].bytes == chained);
    CHECK(rb.records[2].wire_len == 150);
    CHECK(r->counters().tx_packets == 3);
    CHECK(r->counters().tx_bytes == 60 + 1000 + 150);
  }
  CHECK(pool.avail() == start);
}

namespace {

// Replays `in`, echoing every received packet back out at the time it came
// in, plus one extra packet after each burst; returns the output file's bytes.
std::vector<std::uint8_t> echo_run(const std::string& in, const std::string& out, rte_mempool* mp) {
  {
    auto r = open_ok(in, out, mp);
    std::vector<rte_mbuf*> pkts(4);
    std::uint32_t extra = 100;
    while (auto t = r->next_rx_time()) {
      const std::uint16_t n = r->rx_burst(pkts, *t);
      REQUIRE(n > 0);
      REQUIRE(r->tx_burst(std::span<rte_mbuf*>(pkts.data(), n), *t) == n);
      std::vector<rte_mbuf*> one{test::packet_of(Bytes{frame(extra++)}, mp).release()};
      REQUIRE(r->tx_burst(one, *t + 1) == 1);
    }
  }
  return file_bytes(out);
}

}  // namespace

TEST_CASE("pcap replay: the same input gives the same output file, byte for byte", "[pcap_replay]") {
  TempDir dir;
  TestPool pool(64);
  const unsigned start = pool.avail();
  const std::string in = dir.file("in.pcap");
  std::vector<Record> recs;
  for (std::uint32_t i = 0; i < 20; ++i) recs.push_back({kT0 + i * 1000 + (i % 3) * 7, frame(i, 60 + i)});
  write_capture(in, recs);
  const auto first = echo_run(in, dir.file("out1.pcap"), pool.mp);
  const auto second = echo_run(in, dir.file("out2.pcap"), pool.mp);
  CHECK(first.size() > 24 + 40 * 16);  // file header + 40 records
  CHECK(first == second);
  const ReadBack rb = read_capture(dir.file("out1.pcap"));
  REQUIRE(rb.records.size() >= 20);
  CHECK(rb.records[0].bytes == frame(0, 60));
  CHECK(rb.records[0].ts == kT0);
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap replay: open errors give nullptr and one clear line", "[pcap_replay]") {
  TempDir dir;
  std::string err;
  const std::string missing = dir.file("no-such.pcap");
  CHECK(PcapReplay::open(missing, dir.file("out.pcap"), test::pool(), {}, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("no-such.pcap") && Catch::Contains("cannot read"));
  CHECK(err.find('\n') == std::string::npos);

  const std::string raw = dir.file("raw.pcap");
  write_capture(raw, {{kT0, frame(0)}}, DLT_RAW);
  err.clear();
  CHECK(PcapReplay::open(raw, dir.file("out.pcap"), test::pool(), {}, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("raw.pcap") && Catch::Contains("link type") && Catch::Contains("RAW") &&
                      Catch::Contains("Ethernet"));

  const std::string good = dir.file("good.pcap");
  write_capture(good, {{kT0, frame(0)}});
  err.clear();
  CHECK(PcapReplay::open(good, dir.path + "/no-such-dir/out.pcap", test::pool(), {}, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("no-such-dir/out.pcap"));

  err.clear();
  CHECK(PcapReplay::open(good, "", nullptr, {}, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("pool"));

  const std::string junk = dir.file("junk.pcap");
  std::ofstream(junk) << "this is not a capture file at all";
  err.clear();
  CHECK(PcapReplay::open(junk, "", test::pool(), {}, err) == nullptr);
  CHECK_THAT(err, Catch::Contains("junk.pcap"));
}

TEST_CASE("pcap replay: records that cannot become packets are counted and skipped", "[pcap_replay]") {
  TempDir dir;
  TestPool pool(64);
  const unsigned start = pool.avail();
  const std::string in = dir.file("in.pcap");
  // The pool's mbufs hold 2048 bytes after headroom.
  write_capture(in, {{kT0 + 1, frame(0)},
                     {kT0 + 2, frame(1, 3000)},       // oversize
                     {kT0 + 3, frame(2, 40), 100},    // captured 40 of 100 bytes
                     {kT0 + 4, frame(3, 2048)},       // exactly fits
                     {kT0 + 5, frame(4, 2049)},       // one too many
                     {kT0 + 6, frame(5)}});
  {
    auto r = open_ok(in, "", pool.mp);
    const auto got = rx(*r, kT0 + 10);
    REQUIRE(got.size() == 3);
    CHECK(got[0] == frame(0));
    CHECK(got[1] == frame(3, 2048));
    CHECK(got[2] == frame(5));
    CHECK(r->counters().rx_drop_oversize == 2);
    CHECK(r->counters().rx_drop_truncated_capture == 1);
    CHECK(r->counters().rx_packets == 3);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap replay: an exhausted pool drops and counts, like a NIC", "[pcap_replay]") {
  TempDir dir;
  TestPool pool(2);
  const unsigned start = pool.avail();
  const std::string in = dir.file("in.pcap");
  write_capture(in, {{kT0, frame(0)}, {kT0, frame(1)}, {kT0, frame(2)}, {kT0, frame(3)}, {kT0 + 1, frame(4)}});
  {
    auto r = open_ok(in, "", pool.mp);
    std::vector<rte_mbuf*> pkts(8);
    REQUIRE(r->rx_burst(pkts, kT0) == 2);
    CHECK(test::bytes_of(pkts[0]) == frame(0));
    CHECK(test::bytes_of(pkts[1]) == frame(1));
    CHECK(r->counters().rx_drop_nombuf == 2);
    rte_pktmbuf_free_bulk(pkts.data(), 2);
    CHECK(rx(*r, kT0 + 1) == std::vector<Frame>{frame(4)});
    CHECK(r->counters().rx_packets == 3);
  }
  CHECK(pool.avail() == start);
}

TEST_CASE("pcap replay: a file cut off mid-record ends input with the reason", "[pcap_replay]") {
  TempDir dir;
  const std::string in = dir.file("cut.pcap");
  write_capture(in, {{kT0, frame(0)}, {kT0 + 1, frame(1)}});
  std::filesystem::resize_file(in, std::filesystem::file_size(in) - 10);
  auto r = open_ok(in, "", test::pool());
  CHECK(rx(*r, kT0 + 1) == std::vector<Frame>{frame(0)});
  CHECK_FALSE(r->next_rx_time().has_value());
  CHECK_THAT(std::string(r->input_error()), Catch::Contains("truncated"));
}
