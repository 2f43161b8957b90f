// Shared test support: EAL is initialised once in the test main (one per
// binary, as DPDK requires); pool() gives a process-wide mbuf pool.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "net/packet.hpp"

namespace ustack::test {

// 4095 mbufs of 2 KiB data room, created on first use.
rte_mempool* pool();

// A fresh pool of `n` mbufs for tests that exhaust one on purpose.
rte_mempool* make_pool(const char* name, unsigned n);

// A packet holding exactly `bytes`.
Packet packet_of(Bytes bytes, rte_mempool* mp = nullptr);
inline Packet packet_of(std::initializer_list<std::uint8_t> bytes) {
  std::vector<std::uint8_t> v(bytes);
  return packet_of(Bytes{v});
}

// A private mbuf pool, freed at scope exit, so a test can check that every
// mbuf came back (avail() equals its starting value).
class ScopedPool {
 public:
  explicit ScopedPool(unsigned n);
  ~ScopedPool();
  ScopedPool(const ScopedPool&) = delete;
  ScopedPool& operator=(const ScopedPool&) = delete;
  unsigned avail() const;
  rte_mempool* mp;
};

// A temporary directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const char* name) const { return path + "/" + name; }
  std::string path;
};

// The packet's bytes (all segments), copied out.
std::vector<std::uint8_t> bytes_of(const Packet& p);
std::vector<std::uint8_t> bytes_of(const rte_mbuf* m);

}  // namespace ustack::test
