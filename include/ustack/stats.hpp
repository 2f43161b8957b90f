// ustack counters: every packet the stack sees is counted, and every packet it
// refuses is counted under exactly one drop reason.
//
// Counters are per lcore (one StackCounters per stack instance). The owning
// lcore increments them with plain relaxed load+store (no locked instruction
// on the hot path); any other thread may read them with relaxed loads, e.g.
// the stats printer, the JSON writer or DPDK telemetry.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ustack {

// X(name): the name is also the JSON key and the telemetry key.
#define USTACK_STACK_COUNTERS(X)                                                   \
  /* ethernet */                                                                   \
  X(eth_rx_packets)                                                                \
  X(eth_rx_bytes)                                                                  \
  X(eth_tx_packets)                                                                \
  X(eth_tx_bytes)                                                                  \
  X(eth_drop_truncated)                                                            \
  X(eth_drop_not_for_us)                                                           \
  X(eth_drop_unknown_ethertype)                                                    \
  X(eth_drop_vlan_mismatch)                                                        \
  X(eth_drop_non_contiguous)                                                       \
  /* arp */                                                                        \
  X(arp_rx_request)                                                                \
  X(arp_rx_reply)                                                                  \
  X(arp_tx_request)                                                                \
  X(arp_tx_reply)                                                                  \
  X(arp_tx_gratuitous)                                                             \
  X(arp_drop_truncated)                                                            \
  X(arp_drop_malformed)                                                            \
  X(arp_drop_unsupported)                                                          \
  X(arp_drop_not_for_us)                                                           \
  X(arp_resolve_failed)                                                            \
  X(arp_drop_pending_overflow)                                                     \
  X(arp_drop_table_full)                                                           \
  X(arp_drop_resolve_timeout)                                                      \
  /* ipv4 */                                                                       \
  X(ipv4_rx_packets)                                                               \
  X(ipv4_tx_packets)                                                               \
  X(ipv4_drop_truncated)                                                           \
  X(ipv4_drop_bad_version)                                                         \
  X(ipv4_drop_bad_ihl)                                                             \
  X(ipv4_drop_bad_length)                                                          \
  X(ipv4_drop_bad_checksum)                                                        \
  X(ipv4_drop_bad_source)                                                          \
  X(ipv4_drop_fragment)                                                            \
  X(ipv4_drop_not_for_us)                                                          \
  X(ipv4_drop_unknown_protocol)                                                    \
  X(ipv4_drop_no_route)                                                            \
  X(ipv4_drop_multicast_not_joined)                                               \
  /* icmp */                                                                       \
  X(icmp_rx_echo_request)                                                          \
  X(icmp_rx_echo_reply)                                                            \
  X(icmp_rx_error)                                                                 \
  X(icmp_tx_echo_reply)                                                            \
  X(icmp_tx_echo_request)                                                          \
  X(icmp_tx_error)                                                                 \
  X(icmp_drop_truncated)                                                           \
  X(icmp_drop_bad_checksum)                                                        \
  X(icmp_drop_unknown_type)                                                        \
  X(icmp_drop_broadcast_echo)                                                      \
  X(icmp_error_rate_limited)                                                       \
  /* udp */                                                                        \
  X(udp_rx_datagrams)         /* valid datagrams received */                       \
  X(udp_rx_delivered)         /* queued to a socket (one per socket for multi) */  \
  X(udp_tx_datagrams)                                                              \
  X(udp_tx_multicast_loop)    /* sent to a group and looped back to local members */ \
  X(udp_rx_icmp_error)        /* ICMP errors reported to a socket */               \
  X(udp_drop_truncated)                                                            \
  X(udp_drop_bad_length)                                                           \
  X(udp_drop_bad_checksum)                                                         \
  X(udp_drop_no_socket)       /* unicast: answered with port unreachable */        \
  X(udp_drop_no_socket_multi) /* broadcast/multicast nobody listens to */          \
  X(udp_drop_queue_full)      /* per socket, per datagram */                       \
  X(udp_drop_no_mbuf)         /* no mbuf to clone for one more socket */           \
  X(udp_drop_icmp_truncated)  /* ICMP error quoting less than IP + UDP header */   \
  X(udp_drop_icmp_no_socket)  /* ICMP error about no socket of ours */             \
  /* igmp */                                                                       \
  X(igmp_rx_query_v1)                                                              \
  X(igmp_rx_query_v2)                                                              \
  X(igmp_rx_query_v3)                                                              \
  X(igmp_rx_report)                                                                \
  X(igmp_rx_leave)                                                                 \
  X(igmp_tx_report_v1)                                                             \
  X(igmp_tx_report_v2)                                                             \
  X(igmp_tx_report_v3)                                                             \
  X(igmp_tx_leave)                                                                 \
  X(igmp_compat_mode_change)                                                       \
  X(igmp_drop_truncated)                                                           \
  X(igmp_drop_bad_checksum)                                                        \
  X(igmp_drop_malformed)                                                           \
  X(igmp_drop_unknown_type)                                                        \
  X(igmp_drop_table_full)                                                          \
  X(igmp_drop_sources_full)                                                        \
  /* resources */                                                                  \
  /* tcp */                                                                        \
  X(tcp_rx_segments)                                                          \
  X(tcp_tx_segments)                                                          \
  X(tcp_tx_retransmits)                                                       \
  X(tcp_tx_zero_copy)                                                       \
  X(tcp_tx_rst)                                                               \
  X(tcp_tx_challenge_ack)                                                     \
  X(tcp_oow_ack_limited)                                                      \
  X(tcp_challenge_ack_limited)                                                \
  X(tcp_active_opens)                                                         \
  X(tcp_passive_opens)                                                        \
  X(tcp_established)                                                          \
  X(tcp_conn_closed)                                                          \
  X(tcp_conn_reset)                                                           \
  X(tcp_conn_timed_out)                                                       \
  X(tcp_conn_refused)                                                         \
  X(tcp_syncookies_sent)                                                      \
  X(tcp_syncookies_accepted)                                                  \
  X(tcp_syncookies_failed)                                                    \
  X(tcp_time_wait_reused)                                                     \
  X(tcp_time_wait_recycled)                                                   \
  X(tcp_drop_truncated)                                                       \
  X(tcp_drop_bad_checksum)                                                    \
  X(tcp_drop_bad_header_len)                                                  \
  X(tcp_drop_bad_options)                                                     \
  X(tcp_drop_non_unicast)                                                     \
  X(tcp_drop_no_socket)                                                       \
  X(tcp_drop_listen_overflow)                                                 \
  X(tcp_drop_table_full)                                                      \
  X(tcp_drop_paws)                                                            \
  X(tcp_drop_out_of_window)                                                   \
  X(tcp_drop_bad_ack)                                                         \
  X(tcp_drop_no_ack)                                                          \
  X(tcp_drop_rst_out_of_window)                                               \
  X(tcp_drop_syn_in_window)                                                   \
  X(tcp_drop_rcvq_full)                                                       \
  X(tcp_drop_ooo_full)                                                        \
  X(tcp_drop_after_close)                                                     \
  X(tcp_tx_drop_no_mbuf)                                                      \
  X(mbuf_alloc_failed)                                                             \
  X(tx_drop_no_headroom)                                                           \
  X(tx_drop_queue_full)

enum class StackCounter : std::uint16_t {
#define USTACK_X(name) name,
  USTACK_STACK_COUNTERS(USTACK_X)
#undef USTACK_X
  count_
};

inline constexpr std::size_t kStackCounterCount = static_cast<std::size_t>(StackCounter::count_);

inline constexpr std::array<std::string_view, kStackCounterCount> kStackCounterNames = {
#define USTACK_X(name) #name,
    USTACK_STACK_COUNTERS(USTACK_X)
#undef USTACK_X
};

constexpr std::string_view to_string(StackCounter c) {
  return kStackCounterNames[static_cast<std::size_t>(c)];
}

// One writer (the owning lcore), any number of relaxed readers.
class alignas(64) StackCounters {
 public:
  void inc(StackCounter c, std::uint64_t by = 1) {
    auto& v = v_[static_cast<std::size_t>(c)];
    v.store(v.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  std::uint64_t get(StackCounter c) const {
    return v_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  }
  std::uint64_t get(std::size_t i) const { return v_[i].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::uint64_t>, kStackCounterCount> v_{};
};

}  // namespace ustack
