// RSS decisions for EthdevPort: see ethdev_rss.hpp.
#include "drivers/ethdev_rss.hpp"

#include <rte_ethdev.h>

#include <algorithm>
#include <cstdio>

namespace ustack {
namespace {

// Hash functions asked for. The model (RssInfo) covers IPv4 TCP and UDP with
// ports; the address-only and IPv6 functions spread the rest (ICMP,
// fragments) instead of piling it on queue 0.
constexpr std::uint64_t kWantedHf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
constexpr std::uint64_t kIpv4Hf = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP |
                                  RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV4_OTHER;

std::string hex64(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void append(std::string& to, const std::string& what) {
  if (what.empty()) return;
  if (!to.empty()) to += "; ";
  to += what;
}

}  // namespace

std::vector<std::uint8_t> symmetric_rss_key(std::size_t len) {
  std::vector<std::uint8_t> k(len);
  for (std::size_t i = 0; i < len; ++i) k[i] = (i % 2 == 0) ? 0x6d : 0x5a;
  return k;
}

RssConfigPlan plan_rss_config(std::uint16_t nqueues, std::uint64_t offered, std::uint8_t hash_key_size) {
  RssConfigPlan p;
  if (nqueues <= 1) return p;
  if (offered == 0) {
    p.note = "the PMD offers no RSS hash function: RSS off, the PMD spreads flows its own way";
    return p;
  }
  if ((offered & kIpv4Hf) == 0) {
    p.note = "the PMD offers no IPv4 RSS hash function (offers " + hex64(offered) + "): RSS off";
    return p;
  }
  p.enable = true;
  p.hf = kWantedHf & offered;
  if (hash_key_size == 0) {
    p.note = "the PMD does not report its RSS key size: keeping its own key";
  } else if (hash_key_size < kMinRssKeyLen) {
    p.note = "the PMD's RSS key is " + std::to_string(hash_key_size) + " bytes, IPv4 needs " +
             std::to_string(kMinRssKeyLen) + ": keeping its own key";
  } else {
    p.key = symmetric_rss_key(hash_key_size);
  }
  return p;
}

std::vector<std::uint16_t> plan_reta(std::uint16_t reta_size, std::uint16_t nqueues) {
  std::vector<std::uint16_t> reta(reta_size);
  if (nqueues == 0) nqueues = 1;
  for (std::size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<std::uint16_t>(i % nqueues);
  return reta;
}

RssInfo assess_rss(const RssReadback& rb) {
  RssInfo r;
  r.nqueues = rb.nqueues;
  std::string notes;
  for (const auto& n : rb.notes) append(notes, n);
  if (rb.nqueues <= 1) {
    r = RssInfo::single_queue();
    r.note = notes;
    return r;
  }
  r.steering = RssSteering::unknown;
  if (!rb.enabled) {
    r.note = notes.empty() ? "RSS is off" : notes;
    return r;
  }

  std::string why;
  if (rb.hf) {
    r.ipv4_tcp = (*rb.hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0;
    r.ipv4_udp = (*rb.hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0;
    if (!r.ipv4_tcp) append(why, "the NIC does not hash IPv4 TCP ports (rss_hf " + hex64(*rb.hf) + ")");
  }
  if (!rb.key) {
    append(why, "the RSS key cannot be read back" + (rb.key_error.empty() ? "" : " (" + rb.key_error + ")"));
  } else if (rb.key->size() < kMinRssKeyLen) {
    append(why, "the RSS key is " + std::to_string(rb.key->size()) + " bytes, IPv4 needs " +
                    std::to_string(kMinRssKeyLen));
  }
  if (!rb.reta) {
    append(why, "the RETA cannot be read back" + (rb.reta_error.empty() ? "" : " (" + rb.reta_error + ")"));
  } else {
    const std::size_t n = rb.reta->size();
    if (n == 0 || (n & (n - 1)) != 0) {
      append(why, "the RETA has " + std::to_string(n) + " entries, not a power of two");
    } else {
      const auto bad = std::find_if(rb.reta->begin(), rb.reta->end(),
                                    [&](std::uint16_t q) { return q >= rb.nqueues; });
      if (bad != rb.reta->end())
        append(why, "RETA entry " + std::to_string(bad - rb.reta->begin()) + " selects queue " +
                        std::to_string(*bad) + " of " + std::to_string(rb.nqueues));
    }
  }
  if (!why.empty()) {
    append(notes, why);
    r.note = notes;
    return r;
  }

  r.steering = RssSteering::toeplitz;
  std::copy_n(rb.key->begin(), std::min(rb.key->size(), r.key.size()), r.key.begin());
  r.reta = *rb.reta;
  // Not a reason to distrust the table, but such a queue's lcore can open no
  // connection that the NIC steers back to it.
  for (std::uint16_t q = 0; q < rb.nqueues; ++q)
    if (std::find(r.reta.begin(), r.reta.end(), q) == r.reta.end())
      append(notes, "queue " + std::to_string(q) + " is in no RETA entry and receives no hashed flow");
  r.note = notes;
  return r;
}

}  // namespace ustack
