// RSS decisions for EthdevPort as pure functions of what the PMD reports, so
// that they are tested without a NIC:
//
//   plan_rss_config()  at configure: hash functions and key to ask for
//   plan_reta()        after start: the redirection table to program
//   assess_rss()       after start: what the read-back key, table and hash
//                      functions mean for TCP (an RssInfo)
//
// EthdevPort does the ethdev calls in between and degrades instead of
// failing: a PMD that refuses the key keeps its own, one without a
// programmable table keeps its own, and whatever cannot be read back makes
// the steering "unknown" (TCP then checks each flow's queue in software).
// Start-up never fails because of RSS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drivers/rss_info.hpp"

namespace ustack {

// The 0x6d, 0x5a pattern at `len` bytes. The pattern has a 16-bit period at
// any length, so the key is symmetric whatever size the NIC wants, and its
// first 40 bytes are tcp::kSymmetricRssKey.
std::vector<std::uint8_t> symmetric_rss_key(std::size_t len);

// Shortest key that covers an IPv4 4-tuple: 12 input bytes + 4.
inline constexpr std::size_t kMinRssKeyLen = 16;

struct RssConfigPlan {
  bool enable = false;            // rxmode.mq_mode = RSS
  std::uint64_t hf = 0;           // RTE_ETH_RSS_* to request
  std::vector<std::uint8_t> key;  // empty: keep the PMD's key
  std::string note;               // why RSS is off, or why the key is the PMD's
};

// With more than one queue: the IPv4/IPv6 TCP/UDP and address hash functions
// the PMD offers (`offered`: dev_info.flow_type_rss_offloads), RSS off when
// it offers none for IPv4; our symmetric key when the PMD names its key size
// (dev_info.hash_key_size) and that covers IPv4, else the PMD's own key.
RssConfigPlan plan_rss_config(std::uint16_t nqueues, std::uint64_t offered, std::uint8_t hash_key_size);

// Entry i -> queue i % nqueues (tcp::fill_reta's spread; DPDK drivers' default).
std::vector<std::uint16_t> plan_reta(std::uint16_t reta_size, std::uint16_t nqueues);

// What the port says after start.
struct RssReadback {
  std::uint16_t nqueues = 1;
  bool enabled = false;                           // configured with RSS
  std::optional<std::uint64_t> hf;                // rss_hf in use (read with the key)
  std::optional<std::vector<std::uint8_t>> key;   // at the PMD's key length
  std::string key_error;                          // why key/hf are missing
  std::optional<std::vector<std::uint16_t>> reta;
  std::string reta_error;                         // why reta is missing
  std::vector<std::string> notes;                 // degradations on the way
};

// toeplitz when key, table and functions are known and usable for IPv4 TCP
// (key >= 16 bytes, table size a power of two, every entry a valid queue,
// IPv4 TCP hashed with ports); single_queue with one queue; else unknown.
// `note` joins the degradations and, when unknown, the reasons.
RssInfo assess_rss(const RssReadback& rb);

}  // namespace ustack
