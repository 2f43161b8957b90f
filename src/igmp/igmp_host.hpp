// The host side of IGMPv3 with IGMPv2 and IGMPv1 compatibility, for one
// interface (one Stack).
//
// Read with: RFC 3376 §2 (the IPMulticastListen service interface), §3.2
// (per-socket filters merged into the interface state), §5.1 (state-change
// reports and their retransmission and merging), §5.2 (answering general,
// group-specific and group-and-source-specific queries), §7.2.1 (older
// querier present timers, compatibility modes), §8 (timer values); RFC 2236
// §3 and §6 (the IGMPv2 host: reports, suppression, the leave flag); RFC
// 1112 §4 and appendix I (224.0.0.1 is never reported).
//
// Sans-IO on the stack's timer wheel: every entry point takes `now`; the
// timers are intrusive and armed on Stack::timers(), so Stack::poll() fires
// them and Stack::next_deadline() covers them. Output goes through
// Stack::ip_output() (TTL 1, TOS 0xc0, Router Alert: RFC 3376 §4). Random
// delays come from an injected generator, so tests are deterministic.
//
// Memory: every table (groups, per-socket memberships, source lists,
// retransmission state, report scratch) is sized from IgmpConfig in the
// constructor; nothing allocates afterwards. A request that does not fit is
// refused and counted (igmp_drop_table_full, igmp_drop_sources_full).
//
// Sockets are opaque 64-bit ids chosen by the socket layer: IGMP keeps each
// socket's filter so it can merge them and so the socket layer can ask
// socket_accepts() when it delivers a datagram.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/time.hpp"
#include "core/timer_wheel.hpp"
#include "net/stack.hpp"
#include "ustack/addr.hpp"
#include "wire/igmp.hpp"

namespace ustack {

enum class FilterMode : std::uint8_t { include, exclude };
enum class IgmpCompatMode : std::uint8_t { v1 = 1, v2 = 2, v3 = 3 };
using SocketId = std::uint64_t;

enum class MembershipStatus : std::uint8_t {
  ok,
  not_multicast,  // the group is not in 224.0.0.0/4
  table_full,     // no free (socket, group) slot or group record (igmp_drop_table_full)
  sources_full,   // more than max_sources in the socket's list or the merged one (igmp_drop_sources_full)
};

struct IgmpConfig {
  std::uint16_t max_groups = 64;        // group records, including ones still retransmitting a leave
  std::uint16_t max_memberships = 256;  // (socket, group) pairs
  // Sources per socket filter and per interface filter. Clamped so that one
  // group's full list fits a report at the device MTU (365 at 1500).
  std::uint16_t max_sources = 64;
  // RFC 3376 §8; the robustness, query interval and query response interval
  // are replaced by what a v3 querier announces (QRV, QQIC, Max Resp Code).
  std::uint8_t robustness = 2;
  TimeNs query_interval = 125 * kNsPerSec;
  TimeNs query_response_interval = 10 * kNsPerSec;
  TimeNs unsolicited_report_interval = 1 * kNsPerSec;      // v3 (RFC 3376 §8.11)
  TimeNs unsolicited_report_interval_v2 = 10 * kNsPerSec;  // v1/v2 (RFC 2236 §8.10)
  std::uint64_t seed = 0x6a09e667f3bcc908;                 // for the built-in generator
};

// A source of uniformly distributed 64-bit values.
using RandomFn = std::uint64_t (*)(void* ctx);
// The link-layer groups to receive: 01:00:5e:00:00:01 and one MAC per joined
// group, sorted, without duplicates. Valid for the duration of the call.
using MacListFn = void (*)(std::span<const MacAddr> macs, void* ctx);

class IgmpHost final : public ProtocolHandler {
 public:
  // Registers itself with `stack` as the IGMP protocol handler and as its
  // multicast filter; `stack` must outlive it. Without `rng`, a SplitMix64
  // seeded with cfg.seed supplies the random delays.
  IgmpHost(Stack& stack, const IgmpConfig& cfg, RandomFn rng = nullptr, void* rng_ctx = nullptr);
  ~IgmpHost();
  IgmpHost(const IgmpHost&) = delete;
  IgmpHost& operator=(const IgmpHost&) = delete;

  // RFC 3376 §2 IPMulticastListen(socket, interface, group, mode, sources):
  // replaces `socket`'s filter for `group`. INCLUDE with no sources removes
  // it. Reports the resulting interface change (if any) at once and
  // schedules the retransmissions. On refusal nothing changes.
  MembershipStatus set_filter(SocketId socket, Ipv4Addr group, FilterMode mode, std::span<const Ipv4Addr> sources,
                              TimeNs now);
  // Any-source join and leave: EXCLUDE {} and INCLUDE {}.
  MembershipStatus join(SocketId socket, Ipv4Addr group, TimeNs now) {
    return set_filter(socket, group, FilterMode::exclude, {}, now);
  }
  void leave(SocketId socket, Ipv4Addr group, TimeNs now) { (void)set_filter(socket, group, FilterMode::include, {}, now); }
  // Leaves every group `socket` is in (on close).
  void close_socket(SocketId socket, TimeNs now);

  // Whether `socket`'s own filter passes a datagram from `src` to `group`
  // (the socket layer's delivery check; RFC 3376 §3.1).
  bool socket_accepts(SocketId socket, Ipv4Addr group, Ipv4Addr src) const;
  // Whether the interface state passes it: 224.0.0.1 always; IGMP messages
  // to any group we are in (a querier is not among a group's sources); other
  // protocols by the merged source filter. Installed as the stack's filter.
  bool accepts(Ipv4Addr group, Ipv4Addr src, std::uint8_t proto) const;

  // `fn` is called now and whenever the set of member groups changes.
  void set_mac_list_callback(MacListFn fn, void* ctx);
  std::span<const MacAddr> mac_list() const { return {macs_.data(), n_macs_}; }

  // The merged interface state of `group`; nullopt when not a member.
  struct InterfaceState {
    FilterMode mode;
    std::span<const Ipv4Addr> sources;
  };
  std::optional<InterfaceState> interface_state(Ipv4Addr group) const;
  // `socket`'s own filter for `group`; nullopt when it is not a member.
  std::optional<InterfaceState> socket_filter(SocketId socket, Ipv4Addr group) const;
  IgmpCompatMode compat_mode() const { return mode_; }
  std::uint8_t robustness() const { return rv_; }
  // RFC 3376 §8.12: Robustness Variable × Query Interval + Query Response Interval.
  TimeNs older_querier_timeout() const { return TimeNs{rv_} * qi_ + qri_; }
  // The latest `now` any entry point was given (time never goes backwards
  // here, so a caller without a clock of its own may pass this).
  TimeNs last_time() const { return last_now_; }
  // Group records in use: members plus groups still retransmitting a change.
  std::size_t group_records() const { return n_groups_; }
  const IgmpConfig& config() const { return cfg_; }

  void ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) override;

 private:
  struct PendingSource {
    Ipv4Addr addr;
    std::uint8_t retx = 0;  // state-change reports still to carry it
  };
  struct Group {
    IgmpHost* owner = nullptr;
    Ipv4Addr addr;
    bool used = false;
    // Interface state (RFC 3376 §3.2); INCLUDE {} is "not a member".
    FilterMode mode = FilterMode::include;
    std::uint16_t nsrc = 0;
    Ipv4Addr* src = nullptr;  // sorted, max_sources
    // v3 state-change retransmission (§5.1): filter-mode-change reports
    // still due, and sources whose ALLOW/BLOCK is still due.
    std::uint8_t mode_retx = 0;
    std::uint16_t npending = 0;
    PendingSource* pending = nullptr;  // 2 * max_sources
    // v3: the pending response to a group(-and-source)-specific query;
    // v1/v2: the report timer (unsolicited repeats and query responses).
    Timer timer;
    bool query_sources_only = false;  // the pending v3 response is source-specific
    std::uint16_t nqsrc = 0;
    Ipv4Addr* qsrc = nullptr;  // sorted, max_sources
    std::uint8_t unsolicited_left = 0;  // v1/v2 unsolicited reports still to send
    bool last_reporter = false;         // RFC 2236 §3: we sent the last report

    bool member() const { return mode == FilterMode::exclude || nsrc != 0; }
    std::span<const Ipv4Addr> sources() const { return {src, nsrc}; }
  };
  struct Membership {
    SocketId socket = 0;
    Ipv4Addr group;
    FilterMode mode = FilterMode::include;
    std::uint16_t nsrc = 0;
    Ipv4Addr* src = nullptr;  // sorted, max_sources
    bool used = false;
    std::span<const Ipv4Addr> sources() const { return {src, nsrc}; }
  };

  // Tables.
  Group* find_group(Ipv4Addr g);
  const Group* find_group(Ipv4Addr g) const;
  Group* alloc_group(Ipv4Addr g);
  void free_group(Group& g);
  bool idle(const Group& g) const { return g.used && !g.member() && g.mode_retx == 0 && g.npending == 0; }
  std::size_t member_lower_bound(Ipv4Addr g, SocketId s) const;
  int find_membership(SocketId s, Ipv4Addr g) const;
  void add_membership(SocketId s, Ipv4Addr g, FilterMode mode, std::span<const Ipv4Addr> src);
  void remove_membership(int slot);
  bool merge_state(Ipv4Addr group, int replace_slot, bool with_new, FilterMode new_mode,
                   std::span<const Ipv4Addr> new_src, FilterMode& out_mode, std::uint16_t& out_n);
  void apply_change(Group& g, FilterMode mode, std::span<const Ipv4Addr> src, TimeNs now);
  bool pending_touch(Group& g, Ipv4Addr s);
  void rebuild_macs();

  // Protocol.
  void handle_query(const wire::IgmpQuery& q, TimeNs now);
  void v3_query(const wire::IgmpQuery& q, TimeNs max_resp, TimeNs now);
  void v12_query(Ipv4Addr group, TimeNs max_resp, TimeNs now);
  void heard_report(Ipv4Addr group);
  void update_mode();
  void cancel_all_pending();
  void send_state_changes(TimeNs now);
  void send_current_state(const Group& g, TimeNs now);
  void send_v12(std::uint8_t type, Ipv4Addr group, Ipv4Addr dst, TimeNs now);
  void on_group_timer(Group& g, TimeNs now);
  void observe(TimeNs now);          // asserts that time does not go backwards
  TimeNs random_delay(TimeNs max);  // uniform in (0, max]; 0 when max is 0
  std::uint64_t next_random();

  // v3 report building: records accumulate until the next one would pass the
  // MTU, then a report is sent (RFC 3376 §4.2.16).
  void rec_begin(std::uint8_t type, Ipv4Addr group, std::size_t nsrc);
  void rec_add(Ipv4Addr s);
  void rec_end();
  void rec_flush();

  static void on_group_timer_cb(Timer& t, TimeNs now, void* ctx);
  static void on_change_timer_cb(Timer& t, TimeNs now, void* ctx);
  static void on_general_timer_cb(Timer& t, TimeNs now, void* ctx);
  static void on_querier_timer_cb(Timer& t, TimeNs now, void* ctx);
  static bool accepts_cb(Ipv4Addr group, Ipv4Addr src, std::uint8_t proto, const void* ctx);

  Stack& stack_;
  IgmpConfig cfg_;
  RandomFn rng_;
  void* rng_ctx_;
  std::uint64_t rng_state_;
  IgmpCompatMode mode_ = IgmpCompatMode::v3;
  TimeNs last_now_ = 0;
  std::uint8_t rv_;
  TimeNs qi_;
  TimeNs qri_;

  std::vector<Group> groups_;
  std::vector<std::uint16_t> group_index_;  // used slots, sorted by address
  std::size_t n_groups_ = 0;
  std::vector<Ipv4Addr> group_src_;
  std::vector<PendingSource> group_pending_;
  std::vector<Ipv4Addr> group_qsrc_;

  std::vector<Membership> members_;
  std::vector<std::uint16_t> member_index_;  // used slots, sorted by (group, socket)
  std::size_t n_members_ = 0;
  std::vector<Ipv4Addr> member_src_;

  std::vector<Ipv4Addr> req_src_;  // scratch: the request's sorted sources
  std::vector<Ipv4Addr> new_src_;  // scratch: the merged interface list
  std::vector<Ipv4Addr> old_src_;  // scratch: the list before a change

  std::size_t report_budget_;  // IGMP bytes per report: MTU - IPv4 header with Router Alert
  std::vector<wire::IgmpGroupRecordRepr> rec_;
  std::vector<Ipv4Addr> rec_src_;
  std::size_t n_rec_ = 0;
  std::size_t n_rec_src_ = 0;
  std::size_t rec_bytes_ = wire::kIgmpV3ReportHeaderLen;
  std::size_t rec_start_ = 0;
  std::uint8_t rec_type_ = 0;
  Ipv4Addr rec_group_;
  TimeNs rec_now_ = 0;

  std::vector<MacAddr> macs_;
  std::size_t n_macs_ = 0;
  MacListFn mac_fn_ = nullptr;
  void* mac_ctx_ = nullptr;

  Timer change_timer_;   // v3 state-change retransmissions, all groups
  Timer general_timer_;  // v3 response to a general query (the interface timer)
  Timer v1_querier_;     // IGMPv1 Querier Present
  Timer v2_querier_;     // IGMPv2 Querier Present
};

}  // namespace ustack
