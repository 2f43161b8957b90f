// ustack-bench l2l3: ICMP echo through two stacks on the in-memory pair, on
// one core, beside the kernel's ICMP echo over loopback.
//
// What is measured:
//  - rtt: one echo request in flight; time from the send call to the reply
//    callback (ustack) or from sendto() to recv() returning (kernel).
//  - burst: 32 requests in flight at a time; packets per second through the
//    stacks (requests + replies) and wall time per packet.
// Both sides run on this thread; `now` is read from the TSC once per loop
// iteration, as the runtime does. Heap allocations are counted on this
// thread over the measured loop only (after warm-up).
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <rte_cycles.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "apps/bench/cases.hpp"
#include "apps/bench/clock.hpp"
#include "core/alloc_counter.hpp"
#include "drivers/mem_pair.hpp"
#include "src/runtime/engine.hpp"
#include "wire/checksum.hpp"

namespace ustack::bench {

namespace {

struct Replies {
  std::uint64_t count = 0;
  std::uint64_t last_tsc = 0;
  static void on(const EchoReply& /*r*/, TimeNs /*now*/, void* ctx) {
    auto* self = static_cast<Replies*>(ctx);
    ++self->count;
    self->last_tsc = rte_rdtsc();
  }
};

constexpr std::size_t kPayload = 56;  // ping's default

std::vector<CaseResult> run_ustack(const Options& opt, rte_mempool* pool) {
  DeviceCaps ca, cb;
  ca.mac = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};
  cb.mac = MacAddr{{0x02, 0, 0, 0, 0, 0x02}};
  MemPair pair(1024, ca, cb);
  StackConfig sa, sb;
  sa.mac = ca.mac;
  sa.ip = Ipv4Cidr{Ipv4Addr{10, 0, 0, 1}, 24};
  sb.mac = cb.mac;
  sb.ip = Ipv4Cidr{Ipv4Addr{10, 0, 0, 2}, 24};
  Clock clk;
  Engine a(pair.a(), sa, pool, clk.now());
  Engine b(pair.b(), sb, pool, clk.now());
  Replies rep;
  a.stack().on_echo_reply(&Replies::on, &rep);
  std::uint8_t payload[kPayload];
  for (std::size_t i = 0; i < kPayload; ++i) payload[i] = static_cast<std::uint8_t>(i);
  const Ipv4Addr dst = sb.ip.addr;

  auto ping_once = [&](std::uint16_t seq) {
    const std::uint64_t want = rep.count + 1;
    a.stack().send_echo_request(dst, 1, seq, Bytes{payload, kPayload}, clk.now());
    while (rep.count < want) {
      a.run_once(clk.now());
      b.run_once(clk.now());
      a.run_once(clk.now());
    }
  };
  for (std::uint16_t i = 0; i < 2000; ++i) ping_once(i);  // warm-up: ARP, caches

  std::vector<CaseResult> out;
  {
    std::vector<std::uint64_t> rtt;
    rtt.reserve(opt.iterations);
    const std::uint64_t allocs0 = thread_alloc_count();
    const std::uint64_t start = rte_rdtsc();
    for (std::uint64_t i = 0; i < opt.iterations; ++i) {
      const std::uint64_t t0 = rte_rdtsc();
      ping_once(static_cast<std::uint16_t>(i));
      rtt.push_back(static_cast<std::uint64_t>(clk.ns(rep.last_tsc - t0)));
    }
    const double elapsed = clk.ns(rte_rdtsc() - start);
    const std::uint64_t allocs = thread_alloc_count() - allocs0 - 0;
    CaseResult c{"icmp_echo_rtt", "one echo in flight, in-memory pair, one core; kernel: ICMP over loopback", {}, {}, {}};
    std::vector<std::uint64_t> ns(rtt.size());
    for (std::size_t i = 0; i < rtt.size(); ++i) ns[i] = rtt[i];
    fill_latency(c.ustack, ns);
    const double pkts = 2.0 * static_cast<double>(opt.iterations);
    c.ustack.pps = pkts / (elapsed / 1e9);
    c.ustack.ns_per_pkt = elapsed / pkts;
    // The rtt vector was reserved before counting began; anything counted is the stack's.
    c.ustack.allocs_per_pkt = static_cast<double>(allocs) / pkts;
    out.push_back(c);
  }
  {
    constexpr unsigned kInFlight = 32;
    const std::uint64_t bursts = opt.iterations / kInFlight + 1;
    std::vector<std::uint64_t> per_burst;
    per_burst.reserve(bursts);
    const std::uint64_t allocs0 = thread_alloc_count();
    const std::uint64_t start = rte_rdtsc();
    for (std::uint64_t k = 0; k < bursts; ++k) {
      const std::uint64_t t0 = rte_rdtsc();
      const std::uint64_t want = rep.count + kInFlight;
      const TimeNs now = clk.now();
      for (unsigned j = 0; j < kInFlight; ++j)
        a.stack().send_echo_request(dst, 2, static_cast<std::uint16_t>(j), Bytes{payload, kPayload}, now);
      while (rep.count < want) {
        a.run_once(clk.now());
        b.run_once(clk.now());
      }
      per_burst.push_back(static_cast<std::uint64_t>(clk.ns(rep.last_tsc - t0)));
    }
    const double elapsed = clk.ns(rte_rdtsc() - start);
    const std::uint64_t allocs = thread_alloc_count() - allocs0;
    CaseResult c{"icmp_echo_burst32", "32 echoes in flight; latency is per burst of 32 round trips", {}, {}, {}};
    fill_latency(c.ustack, per_burst);
    const double pkts = 2.0 * kInFlight * static_cast<double>(bursts);
    c.ustack.pps = pkts / (elapsed / 1e9);
    c.ustack.ns_per_pkt = elapsed / pkts;
    c.ustack.allocs_per_pkt = static_cast<double>(allocs) / pkts;
    out.push_back(c);
  }
  return out;
}

// The kernel's ICMP echo over loopback, through a raw socket (root) or a
// ping socket (when net.ipv4.ping_group_range allows it).
class KernelPinger {
 public:
  KernelPinger() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (fd_ < 0) {
      fd_ = ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
      raw_ = true;
    }
    if (fd_ < 0) note_ = std::string("no ICMP socket: ") + std::strerror(errno);
    dst_.sin_family = AF_INET;
    dst_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~KernelPinger() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& note() const { return note_; }

  bool send(std::uint16_t seq) {
    std::uint8_t msg[8 + kPayload] = {};
    msg[0] = 8;  // echo request
    msg[4] = static_cast<std::uint8_t>(kIdent >> 8);
    msg[5] = static_cast<std::uint8_t>(kIdent);
    msg[6] = static_cast<std::uint8_t>(seq >> 8);
    msg[7] = static_cast<std::uint8_t>(seq);
    for (std::size_t i = 0; i < kPayload; ++i) msg[8 + i] = static_cast<std::uint8_t>(i);
    const std::uint16_t sum = wire::internet_checksum(Bytes{msg, sizeof msg});
    msg[2] = static_cast<std::uint8_t>(sum >> 8);
    msg[3] = static_cast<std::uint8_t>(sum);
    return ::sendto(fd_, msg, sizeof msg, 0, reinterpret_cast<const sockaddr*>(&dst_), sizeof dst_) ==
           static_cast<ssize_t>(sizeof msg);
  }

  // Blocks until one echo reply arrives (a raw socket also sees our requests).
  bool recv_reply() {
    std::uint8_t buf[2048];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) return false;
      std::size_t off = 0;
      if (raw_) off = static_cast<std::size_t>(buf[0] & 0xf) * 4;
      if (static_cast<std::size_t>(n) >= off + 8 && buf[off] == 0) return true;
    }
  }

 private:
  static constexpr std::uint16_t kIdent = 0x5a5a;
  int fd_ = -1;
  bool raw_ = false;
  std::string note_;
  sockaddr_in dst_{};
};

void run_kernel(const Options& opt, std::vector<CaseResult>& cases) {
  KernelPinger k;
  if (!k.ok()) {
    for (auto& c : cases) c.kernel_note = k.note();
    return;
  }
  Clock clk;
  for (std::uint16_t i = 0; i < 200; ++i)
    if (!k.send(i) || !k.recv_reply()) {
      for (auto& c : cases) c.kernel_note = "kernel ping over loopback failed";
      return;
    }
  {
    std::vector<std::uint64_t> rtt;
    rtt.reserve(opt.kernel_iterations);
    const std::uint64_t allocs0 = thread_alloc_count();
    const std::uint64_t start = rte_rdtsc();
    for (std::uint64_t i = 0; i < opt.kernel_iterations; ++i) {
      const std::uint64_t t0 = rte_rdtsc();
      k.send(static_cast<std::uint16_t>(i));
      k.recv_reply();
      rtt.push_back(static_cast<std::uint64_t>(clk.ns(rte_rdtsc() - t0)));
    }
    const double elapsed = clk.ns(rte_rdtsc() - start);
    Figures f;
    fill_latency(f, rtt);
    const double pkts = 2.0 * static_cast<double>(opt.kernel_iterations);
    f.pps = pkts / (elapsed / 1e9);
    f.ns_per_pkt = elapsed / pkts;
    f.allocs_per_pkt = static_cast<double>(thread_alloc_count() - allocs0) / pkts;  // user-space only
    cases[0].kernel = f;
  }
  {
    constexpr unsigned kInFlight = 32;
    const std::uint64_t bursts = opt.kernel_iterations / kInFlight + 1;
    std::vector<std::uint64_t> per_burst;
    per_burst.reserve(bursts);
    const std::uint64_t allocs0 = thread_alloc_count();
    const std::uint64_t start = rte_rdtsc();
    for (std::uint64_t b = 0; b < bursts; ++b) {
      const std::uint64_t t0 = rte_rdtsc();
      for (unsigned j = 0; j < kInFlight; ++j) k.send(static_cast<std::uint16_t>(j));
      for (unsigned j = 0; j < kInFlight; ++j) k.recv_reply();
      per_burst.push_back(static_cast<std::uint64_t>(clk.ns(rte_rdtsc() - t0)));
    }
    const double elapsed = clk.ns(rte_rdtsc() - start);
    Figures f;
    fill_latency(f, per_burst);
    const double pkts = 2.0 * kInFlight * static_cast<double>(bursts);
    f.pps = pkts / (elapsed / 1e9);
    f.ns_per_pkt = elapsed / pkts;
    f.allocs_per_pkt = static_cast<double>(thread_alloc_count() - allocs0) / pkts;
    cases[1].kernel = f;
  }
}

}  // namespace

std::vector<CaseResult> bench_l2l3(const Options& opt, rte_mempool* pool) {
  auto cases = run_ustack(opt, pool);
  run_kernel(opt, cases);
  return cases;
}

}  // namespace ustack::bench
