#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <rte_eal.h>
#include <rte_errno.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "test/support/support.hpp"

namespace ustack::test {

rte_mempool* make_pool(const char* name, unsigned n) {
  rte_mempool* mp = rte_pktmbuf_pool_create(name, n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!mp) throw std::runtime_error(std::string("mempool ") + name + ": " + rte_strerror(rte_errno));
  return mp;
}

rte_mempool* pool() {
  static rte_mempool* mp = make_pool("test_pool", 4095);
  return mp;
}

Packet packet_of(Bytes bytes, rte_mempool* mp) {
  Packet p = Packet::alloc(mp ? mp : pool());
  if (!p) throw std::runtime_error("mbuf pool exhausted");
  auto d = p.append(bytes.size());
  if (d.size() != bytes.size()) throw std::runtime_error("packet too large for one mbuf");
  if (!bytes.empty()) std::memcpy(d.data(), bytes.data(), bytes.size());
  return p;
}

ScopedPool::ScopedPool(unsigned n) {
  static unsigned serial = 0;
  char name[32];
  std::snprintf(name, sizeof name, "scoped%u", serial++);
  mp = make_pool(name, n);
}
ScopedPool::~ScopedPool() { rte_mempool_free(mp); }
unsigned ScopedPool::avail() const { return rte_mempool_avail_count(mp); }

TempDir::TempDir() {
  char tmpl[] = "/tmp/ustack-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::vector<std::uint8_t> bytes_of(const rte_mbuf* m) {
  std::vector<std::uint8_t> v(rte_pktmbuf_pkt_len(m));
  if (v.empty()) return v;  // memcpy's pointers must not be null even for 0 bytes
  const void* d = rte_pktmbuf_read(m, 0, static_cast<std::uint32_t>(v.size()), v.data());
  if (d != v.data()) std::memcpy(v.data(), d, v.size());
  return v;
}

std::vector<std::uint8_t> bytes_of(const Packet& p) { return bytes_of(p.get()); }

}  // namespace ustack::test

// One EAL per test binary. No hugepages, no PCI, no shared config: several
// test binaries run side by side under `meson test`.
int main(int argc, char** argv) {
  char prog[] = "ustack-test";
  char a1[] = "--no-huge", a2[] = "--no-pci", a3[] = "-m", a4[] = "256", a5[] = "--no-shconf",
       a6[] = "--no-telemetry", a7[] = "-l", a8[] = "0", a9[] = "--log-level=*:warning";
  char* eal_argv[] = {prog, a1, a2, a3, a4, a5, a6, a7, a8, a9, nullptr};
  if (rte_eal_init(9, eal_argv) < 0) {
    std::fprintf(stderr, "EAL init failed: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  const int rc = Catch::Session().run(argc, argv);
  rte_eal_cleanup();
  return rc;
}
