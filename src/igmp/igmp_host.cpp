// IGMPv3 host with v2/v1 compatibility. See igmp_host.hpp for the RFC
// sections; the notes here say why the code is shaped as it is.
//
// State-change retransmission (RFC 3376 §5.1) is kept as counters rather
// than as copies of reports: a group carries how many more reports must
// hold its filter-mode-change record, and each source that changed carries
// how many more must mention it. Whether a pending source goes in ALLOW or
// BLOCK is read from the *current* state when a report is built (INCLUDE:
// listed sources are allowed; EXCLUDE: listed sources are blocked), so a
// source that flips twice before its retransmissions end is reported by
// its last change and its counter restarts — the merge rule of §5.1. A new
// filter-mode change restarts the mode counter and drops the pending
// sources, because TO_IN/TO_EX carries the whole list. If a group's pending
// table overflows, it falls back to a filter-mode-change record, which is
// always a correct (if larger) description of the state.
//
// One interface timer sends every group's due changes together, as soon as
// a change happens and then at random intervals within the Unsolicited
// Report Interval; a change to one group therefore also advances the
// retransmissions of others, which is harmless (each still goes out its
// Robustness Variable times).
#include "igmp/igmp_host.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "wire/ethernet.hpp"
#include "wire/ipv4.hpp"

namespace ustack {

namespace {

using wire::igmp_addr::kAllRouters;
using wire::igmp_addr::kAllSystems;
using wire::igmp_addr::kV3Routers;
namespace rec = wire::igmp_record;

// RFC 3376 §4: TTL 1, precedence Internetwork Control, Router Alert.
const Ipv4TxOptions kIgmpTx{0xc0, std::uint8_t{1}, true};

std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool contains(std::span<const Ipv4Addr> sorted, Ipv4Addr a) { return std::binary_search(sorted.begin(), sorted.end(), a); }

// Sorts and removes duplicates in place; returns the new length.
std::size_t sort_unique(Ipv4Addr* p, std::size_t n) {
  std::sort(p, p + n);
  return static_cast<std::size_t>(std::unique(p, p + n) - p);
}

// Inserts `a` into the sorted list p[0..n) of capacity cap. False when full.
bool sorted_insert(Ipv4Addr* p, std::uint16_t& n, std::size_t cap, Ipv4Addr a) {
  Ipv4Addr* pos = std::lower_bound(p, p + n, a);
  if (pos != p + n && *pos == a) return true;
  if (n >= cap) return false;
  std::copy_backward(pos, p + n, p + n + 1);
  *pos = a;
  ++n;
  return true;
}

IgmpConfig sanitized(IgmpConfig c, std::uint16_t mtu) {
  if (c.max_groups == 0) c.max_groups = 1;
  if (c.max_memberships == 0) c.max_memberships = 1;
  if (c.robustness == 0) c.robustness = 1;  // RFC 3376 §8.1: MUST NOT be zero
  // One group's full list must fit one report: MTU - IP(24) - report header
  // - record header, in 4-byte sources. Then a TO_EX/IS_EX record is never
  // truncated (RFC 3376 §4.2.16 would allow it, at the cost of correctness).
  const std::size_t room = mtu > 64 ? (std::size_t{mtu} - 24 - 8 - 8) / 4 : 8;
  if (c.max_sources > room) c.max_sources = static_cast<std::uint16_t>(room);
  return c;
}

}  // namespace

IgmpHost::IgmpHost(Stack& stack, const IgmpConfig& cfg, RandomFn rng, void* rng_ctx)
    : stack_(stack),
      cfg_(sanitized(cfg, stack.caps().mtu)),
      rng_(rng),
      rng_ctx_(rng_ctx),
      rng_state_(cfg.seed),
      rv_(cfg_.robustness),
      qi_(cfg_.query_interval),
      qri_(cfg_.query_response_interval),
      groups_(cfg_.max_groups),
      group_index_(cfg_.max_groups),
      group_src_(std::size_t{cfg_.max_groups} * cfg_.max_sources),
      group_pending_(std::size_t{cfg_.max_groups} * cfg_.max_sources * 2),
      group_qsrc_(std::size_t{cfg_.max_groups} * cfg_.max_sources),
      members_(cfg_.max_memberships),
      member_index_(cfg_.max_memberships),
      member_src_(std::size_t{cfg_.max_memberships} * cfg_.max_sources),
      req_src_(cfg_.max_sources),
      new_src_(cfg_.max_sources),
      old_src_(cfg_.max_sources),
      report_budget_(std::max<std::size_t>(std::size_t{stack.caps().mtu},
                                           wire::kIpv4MinHeaderLen + wire::kIpv4RouterAlertLen + 64) -
                     (wire::kIpv4MinHeaderLen + wire::kIpv4RouterAlertLen)),
      rec_((report_budget_ - wire::kIgmpV3ReportHeaderLen) / wire::kIgmpGroupRecordHeaderLen),
      rec_src_((report_budget_ - wire::kIgmpV3ReportHeaderLen - wire::kIgmpGroupRecordHeaderLen) / 4),
      macs_(std::size_t{cfg_.max_groups} + 1),
      change_timer_(&IgmpHost::on_change_timer_cb, this),
      general_timer_(&IgmpHost::on_general_timer_cb, this),
      v1_querier_(&IgmpHost::on_querier_timer_cb, this),
      v2_querier_(&IgmpHost::on_querier_timer_cb, this) {
  const std::size_t ms = cfg_.max_sources;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    Group& g = groups_[i];
    g.owner = this;
    g.src = group_src_.data() + i * ms;
    g.pending = group_pending_.data() + i * ms * 2;
    g.qsrc = group_qsrc_.data() + i * ms;
    g.timer.set_callback(&IgmpHost::on_group_timer_cb, &g);
  }
  for (std::size_t i = 0; i < members_.size(); ++i) members_[i].src = member_src_.data() + i * ms;
  rebuild_macs();
  stack_.set_protocol_handler(wire::ipproto::kIgmp, this);
  stack_.set_multicast_filter(&IgmpHost::accepts_cb, this);
}

IgmpHost::~IgmpHost() {
  stack_.set_protocol_handler(wire::ipproto::kIgmp, nullptr);
  stack_.set_multicast_filter(nullptr, nullptr);
}

// --- tables ---------------------------------------------------------------

IgmpHost::Group* IgmpHost::find_group(Ipv4Addr g) {
  return const_cast<Group*>(static_cast<const IgmpHost*>(this)->find_group(g));
}

const IgmpHost::Group* IgmpHost::find_group(Ipv4Addr g) const {
  const auto* first = group_index_.data();
  const auto* last = first + n_groups_;
  const auto* it = std::lower_bound(first, last, g, [this](std::uint16_t i, Ipv4Addr a) { return groups_[i].addr < a; });
  if (it == last || groups_[*it].addr != g) return nullptr;
  return &groups_[*it];
}

IgmpHost::Group* IgmpHost::alloc_group(Ipv4Addr g) {
  std::size_t slot = 0;
  while (groups_[slot].used) ++slot;  // the caller checked n_groups_ < size
  Group& r = groups_[slot];
  r.used = true;
  r.addr = g;
  r.mode = FilterMode::include;
  r.nsrc = 0;
  r.mode_retx = 0;
  r.npending = 0;
  r.query_sources_only = false;
  r.nqsrc = 0;
  r.unsolicited_left = 0;
  r.last_reporter = false;
  auto* first = group_index_.data();
  auto* pos = std::lower_bound(first, first + n_groups_, g,
                               [this](std::uint16_t i, Ipv4Addr a) { return groups_[i].addr < a; });
  std::copy_backward(pos, first + n_groups_, first + n_groups_ + 1);
  *pos = static_cast<std::uint16_t>(slot);
  ++n_groups_;
  return &r;
}

void IgmpHost::free_group(Group& g) {
  if (!g.used) return;
  stack_.timers().cancel(g.timer);
  const auto slot = static_cast<std::uint16_t>(&g - groups_.data());
  auto* first = group_index_.data();
  auto* pos = std::find(first, first + n_groups_, slot);
  std::copy(pos + 1, first + n_groups_, pos);
  --n_groups_;
  g.used = false;
  g.mode = FilterMode::include;
  g.nsrc = 0;
}

std::size_t IgmpHost::member_lower_bound(Ipv4Addr g, SocketId s) const {
  const auto* first = member_index_.data();
  const auto* it = std::lower_bound(first, first + n_members_, std::pair{g, s}, [this](std::uint16_t i, const auto& key) {
    const Membership& m = members_[i];
    return m.group < key.first || (m.group == key.first && m.socket < key.second);
  });
  return static_cast<std::size_t>(it - first);
}

int IgmpHost::find_membership(SocketId s, Ipv4Addr g) const {
  const std::size_t k = member_lower_bound(g, s);
  if (k == n_members_) return -1;
  const Membership& m = members_[member_index_[k]];
  return m.group == g && m.socket == s ? member_index_[k] : -1;
}

void IgmpHost::add_membership(SocketId s, Ipv4Addr g, FilterMode mode, std::span<const Ipv4Addr> src) {
  std::size_t slot = 0;
  while (members_[slot].used) ++slot;  // the caller checked there is one
  Membership& m = members_[slot];
  m.used = true;
  m.socket = s;
  m.group = g;
  m.mode = mode;
  m.nsrc = static_cast<std::uint16_t>(src.size());
  std::copy(src.begin(), src.end(), m.src);
  const std::size_t k = member_lower_bound(g, s);
  auto* first = member_index_.data();
  std::copy_backward(first + k, first + n_members_, first + n_members_ + 1);
  first[k] = static_cast<std::uint16_t>(slot);
  ++n_members_;
}

void IgmpHost::remove_membership(int slot) {
  Membership& m = members_[static_cast<std::size_t>(slot)];
  const std::size_t k = member_lower_bound(m.group, m.socket);
  auto* first = member_index_.data();
  std::copy(first + k + 1, first + n_members_, first + k);
  --n_members_;
  m.used = false;
  m.nsrc = 0;
}

// RFC 3376 §3.2: any EXCLUDE makes the interface EXCLUDE with the
// intersection of the EXCLUDE lists minus every INCLUDE list; otherwise it
// is INCLUDE with the union of the INCLUDE lists. The socket in
// `replace_slot` (if any) is left out and, with `with_new`, replaced by
// (new_mode, new_src). The result goes to new_src_; false when the union
// exceeds max_sources (an intersection never can).
bool IgmpHost::merge_state(Ipv4Addr group, int replace_slot, bool with_new, FilterMode new_mode,
                           std::span<const Ipv4Addr> new_src, FilterMode& out_mode, std::uint16_t& out_n) {
  auto each = [&](auto&& fn) {
    for (std::size_t k = member_lower_bound(group, 0); k < n_members_; ++k) {
      const Membership& m = members_[member_index_[k]];
      if (m.group != group) break;
      if (member_index_[k] == replace_slot) continue;
      fn(m.mode, m.sources());
    }
    if (with_new) fn(new_mode, new_src);
  };
  Ipv4Addr* out = new_src_.data();
  bool any_exclude = false;
  each([&](FilterMode mode, std::span<const Ipv4Addr>) { any_exclude |= mode == FilterMode::exclude; });
  std::uint16_t n = 0;
  if (any_exclude) {
    bool first = true;
    each([&](FilterMode mode, std::span<const Ipv4Addr> s) {
      if (mode != FilterMode::exclude) return;
      if (first) {
        std::copy(s.begin(), s.end(), out);
        n = static_cast<std::uint16_t>(s.size());
        first = false;
        return;
      }
      n = static_cast<std::uint16_t>(std::remove_if(out, out + n, [&](Ipv4Addr a) { return !contains(s, a); }) - out);
    });
    each([&](FilterMode mode, std::span<const Ipv4Addr> s) {
      if (mode != FilterMode::include) return;
      n = static_cast<std::uint16_t>(std::remove_if(out, out + n, [&](Ipv4Addr a) { return contains(s, a); }) - out);
    });
    out_mode = FilterMode::exclude;
    out_n = n;
    return true;
  }
  bool fits = true;
  each([&](FilterMode, std::span<const Ipv4Addr> s) {
    for (Ipv4Addr a : s) fits = fits && sorted_insert(out, n, cfg_.max_sources, a);
  });
  out_mode = FilterMode::include;
  out_n = n;
  return fits;
}

MembershipStatus IgmpHost::set_filter(SocketId socket, Ipv4Addr group, FilterMode mode,
                                      std::span<const Ipv4Addr> sources, TimeNs now) {
  observe(now);
  if (!group.is_multicast()) return MembershipStatus::not_multicast;
  if (sources.size() > cfg_.max_sources) {
    stack_.counters().inc(StackCounter::igmp_drop_sources_full);
    return MembershipStatus::sources_full;
  }
  std::copy(sources.begin(), sources.end(), req_src_.begin());
  const std::size_t n = sort_unique(req_src_.data(), sources.size());
  const std::span<const Ipv4Addr> req{req_src_.data(), n};
  const bool removing = mode == FilterMode::include && n == 0;
  const int slot = find_membership(socket, group);
  if (removing && slot < 0) return MembershipStatus::ok;
  Group* g = find_group(group);
  if ((slot < 0 && n_members_ == members_.size()) || (!g && n_groups_ == groups_.size())) {
    stack_.counters().inc(StackCounter::igmp_drop_table_full);
    return MembershipStatus::table_full;
  }
  FilterMode new_mode = FilterMode::include;
  std::uint16_t new_n = 0;
  if (!merge_state(group, slot, !removing, mode, req, new_mode, new_n)) {
    stack_.counters().inc(StackCounter::igmp_drop_sources_full);
    return MembershipStatus::sources_full;
  }
  if (removing) {
    remove_membership(slot);
  } else if (slot < 0) {
    add_membership(socket, group, mode, req);
  } else {
    Membership& m = members_[static_cast<std::size_t>(slot)];
    m.mode = mode;
    m.nsrc = static_cast<std::uint16_t>(n);
    std::copy(req.begin(), req.end(), m.src);
  }
  if (!g) g = alloc_group(group);
  apply_change(*g, new_mode, {new_src_.data(), new_n}, now);
  return MembershipStatus::ok;
}

void IgmpHost::close_socket(SocketId socket, TimeNs now) {
  // Slots never move, so walking them while leaving is safe.
  for (Membership& m : members_)
    if (m.used && m.socket == socket) leave(socket, m.group, now);
}

bool IgmpHost::pending_touch(Group& g, Ipv4Addr s) {
  for (std::size_t i = 0; i < g.npending; ++i) {
    if (g.pending[i].addr == s) {
      g.pending[i].retx = rv_;
      return true;
    }
  }
  if (g.npending >= std::size_t{cfg_.max_sources} * 2) return false;
  g.pending[g.npending++] = PendingSource{s, rv_};
  return true;
}

// The interface state of `g` becomes (mode, src): update the MAC list if
// membership changed, then report per the compatibility mode.
void IgmpHost::apply_change(Group& g, FilterMode mode, std::span<const Ipv4Addr> src, TimeNs now) {
  const bool was = g.member();
  const FilterMode old_mode = g.mode;
  const std::size_t old_n = g.nsrc;
  std::copy(g.src, g.src + old_n, old_src_.begin());
  g.mode = mode;
  g.nsrc = static_cast<std::uint16_t>(src.size());
  std::copy(src.begin(), src.end(), g.src);
  const bool is = g.member();
  if (was != is) rebuild_macs();

  // RFC 1112 appendix I, RFC 3376 §5: 224.0.0.1 is never reported.
  if (g.addr != kAllSystems) {
    if (mode_ == IgmpCompatMode::v3) {
      bool changed = false;
      if (old_mode != mode) {
        g.mode_retx = rv_;
        g.npending = 0;
        changed = true;
      } else {
        // Sources in exactly one of the two sorted lists changed.
        const Ipv4Addr* a = old_src_.data();
        const Ipv4Addr* ae = a + old_n;
        const Ipv4Addr* b = g.src;
        const Ipv4Addr* be = b + g.nsrc;
        bool overflow = false;
        while (a != ae || b != be) {
          Ipv4Addr x;
          if (b == be || (a != ae && *a < *b)) x = *a++;
          else if (a == ae || *b < *a) x = *b++;
          else {
            ++a;
            ++b;
            continue;
          }
          changed = true;
          overflow = overflow || !pending_touch(g, x);
        }
        if (overflow) {
          g.mode_retx = rv_;
          g.npending = 0;
        }
      }
      if (!is) {  // no answer is owed for a group we left
        stack_.timers().cancel(g.timer);
        g.query_sources_only = false;
        g.nqsrc = 0;
      }
      if (changed) send_state_changes(now);
    } else if (!was && is) {
      // RFC 2236 §3: report at once, repeat after Unsolicited Report Interval.
      send_v12(mode_ == IgmpCompatMode::v1 ? wire::igmp_type::kV1Report : wire::igmp_type::kV2Report, g.addr, g.addr,
               now);
      g.last_reporter = true;
      g.unsolicited_left = static_cast<std::uint8_t>(rv_ - 1);
      if (g.unsolicited_left > 0)
        stack_.timers().arm(g.timer, now + random_delay(cfg_.unsolicited_report_interval_v2));
    } else if (was && !is) {
      // RFC 2236 §6: leave only when we sent the last report (MAY skip
      // otherwise); IGMPv1 has no leave (RFC 3376 §7.2.1).
      if (mode_ == IgmpCompatMode::v2 && g.last_reporter) send_v12(wire::igmp_type::kV2Leave, g.addr, kAllRouters, now);
      stack_.timers().cancel(g.timer);
      g.unsolicited_left = 0;
    }
  }
  if (idle(g)) free_group(g);
}

void IgmpHost::rebuild_macs() {
  std::size_t n = 0;
  macs_[n++] = wire::multicast_mac(kAllSystems);
  for (std::size_t k = 0; k < n_groups_; ++k) {
    const Group& g = groups_[group_index_[k]];
    if (g.member()) macs_[n++] = wire::multicast_mac(g.addr);
  }
  std::sort(macs_.begin(), macs_.begin() + static_cast<std::ptrdiff_t>(n),
            [](const MacAddr& a, const MacAddr& b) { return a.b < b.b; });
  n_macs_ = static_cast<std::size_t>(std::unique(macs_.begin(), macs_.begin() + static_cast<std::ptrdiff_t>(n)) -
                                     macs_.begin());
  if (mac_fn_) mac_fn_(mac_list(), mac_ctx_);
}

void IgmpHost::set_mac_list_callback(MacListFn fn, void* ctx) {
  mac_fn_ = fn;
  mac_ctx_ = ctx;
  if (mac_fn_) mac_fn_(mac_list(), mac_ctx_);
}

// --- filters ----------------------------------------------------------------

std::optional<IgmpHost::InterfaceState> IgmpHost::socket_filter(SocketId socket, Ipv4Addr group) const {
  const int slot = find_membership(socket, group);
  if (slot < 0) return std::nullopt;
  const Membership& m = members_[static_cast<std::size_t>(slot)];
  return InterfaceState{m.mode, m.sources()};
}

bool IgmpHost::socket_accepts(SocketId socket, Ipv4Addr group, Ipv4Addr src) const {
  const int slot = find_membership(socket, group);
  if (slot < 0) return false;
  const Membership& m = members_[static_cast<std::size_t>(slot)];
  return contains(m.sources(), src) == (m.mode == FilterMode::include);
}

bool IgmpHost::accepts(Ipv4Addr group, Ipv4Addr src, std::uint8_t proto) const {
  if (group == kAllSystems) return true;
  const Group* g = find_group(group);
  if (!g || !g->member()) return false;
  if (proto == wire::ipproto::kIgmp) return true;
  return contains(g->sources(), src) == (g->mode == FilterMode::include);
}

bool IgmpHost::accepts_cb(Ipv4Addr group, Ipv4Addr src, std::uint8_t proto, const void* ctx) {
  return static_cast<const IgmpHost*>(ctx)->accepts(group, src, proto);
}

std::optional<IgmpHost::InterfaceState> IgmpHost::interface_state(Ipv4Addr group) const {
  const Group* g = find_group(group);
  if (!g || !g->member()) return std::nullopt;
  return InterfaceState{g->mode, g->sources()};
}

// --- input ----------------------------------------------------------------

void IgmpHost::ip_input(Packet&& pkt, const wire::Ipv4Packet& ip, TimeNs now) {
  const Packet frame = std::move(pkt);  // freed on return; `ip` views into it
  observe(now);
  auto& ctr = stack_.counters();
  const Bytes b = ip.payload();
  const auto msg = wire::IgmpMessage::parse(b);
  if (!msg) {
    ctr.inc(msg.error() == ParseError::bad_checksum ? StackCounter::igmp_drop_bad_checksum
                                                    : StackCounter::igmp_drop_truncated);
    return;
  }
  switch (msg->type()) {
    case wire::igmp_type::kMembershipQuery: {
      const auto q = wire::IgmpQuery::parse(b, /*verify_checksum=*/false);
      if (!q) {
        ctr.inc(q.error() == ParseError::truncated ? StackCounter::igmp_drop_truncated
                                                   : StackCounter::igmp_drop_malformed);
        return;
      }
      handle_query(*q, now);
      return;
    }
    case wire::igmp_type::kV1Report:
    case wire::igmp_type::kV2Report:
      ctr.inc(StackCounter::igmp_rx_report);
      heard_report(msg->group());
      return;
    case wire::igmp_type::kV2Leave:
      ctr.inc(StackCounter::igmp_rx_leave);  // for routers; nothing for a host to do
      return;
    case wire::igmp_type::kV3Report: {
      // Hosts take no action on v3 reports (there is no suppression in v3),
      // but a broken one is still counted as such.
      const auto r = wire::IgmpV3Report::parse(b, /*verify_checksum=*/false);
      ctr.inc(r ? StackCounter::igmp_rx_report : StackCounter::igmp_drop_truncated);
      return;
    }
    default:
      ctr.inc(StackCounter::igmp_drop_unknown_type);
      return;
  }
}

void IgmpHost::handle_query(const wire::IgmpQuery& q, TimeNs now) {
  auto& ctr = stack_.counters();
  const TimeNs max_resp = q.max_resp_time_ns();
  // RFC 3376 §7.2.1: v1 queries and v2 *general* queries start the older
  // querier present timers; the mode follows the timers.
  switch (q.version()) {
    case wire::IgmpVersion::v1:
      ctr.inc(StackCounter::igmp_rx_query_v1);
      stack_.timers().arm(v1_querier_, now + older_querier_timeout());
      break;
    case wire::IgmpVersion::v2:
      ctr.inc(StackCounter::igmp_rx_query_v2);
      if (q.is_general()) stack_.timers().arm(v2_querier_, now + older_querier_timeout());
      break;
    case wire::IgmpVersion::v3:
      ctr.inc(StackCounter::igmp_rx_query_v3);
      // The querier's robustness, query interval and response interval
      // (§4.1.6, §4.1.7, §8.3) size our retransmissions and the older
      // querier timeout; zero means "not given".
      if (q.qrv() != 0) rv_ = q.qrv();
      if (q.query_interval_s() != 0) qi_ = TimeNs{q.query_interval_s()} * kNsPerSec;
      if (max_resp != 0) qri_ = max_resp;
      break;
  }
  update_mode();
  if (mode_ == IgmpCompatMode::v3)
    v3_query(q, max_resp, now);
  else
    v12_query(q.group(), max_resp, now);
}

// RFC 3376 §5.2, rules 1-5.
void IgmpHost::v3_query(const wire::IgmpQuery& q, TimeNs max_resp, TimeNs now) {
  TimeNs at = now + random_delay(max_resp);
  // 1: a general response due sooner covers this query.
  if (general_timer_.armed() && general_timer_.deadline() <= at) return;
  // 2: a general query (re)schedules the interface timer.
  if (q.is_general()) {
    stack_.timers().arm(general_timer_, at);
    return;
  }
  Group* g = find_group(q.group());
  if (!g || !g->member() || g->addr == kAllSystems) return;
  const std::size_t n = q.num_sources();
  if (g->timer.armed()) {
    at = std::min(at, g->timer.deadline());
    if (n == 0 || !g->query_sources_only) {
      // 4: a group-specific query, or one already pending: answer for the group.
      g->query_sources_only = false;
      g->nqsrc = 0;
    } else {
      // 5: both source-specific: answer for the union of the sources.
      for (std::size_t i = 0; i < n && g->query_sources_only; ++i)
        g->query_sources_only = sorted_insert(g->qsrc, g->nqsrc, cfg_.max_sources, q.source(i));
      if (!g->query_sources_only) g->nqsrc = 0;  // too many: the whole group answers for them
    }
  } else {
    // 3: first pending response for the group.
    g->query_sources_only = n != 0;
    g->nqsrc = 0;
    for (std::size_t i = 0; i < n && g->query_sources_only; ++i)
      g->query_sources_only = sorted_insert(g->qsrc, g->nqsrc, cfg_.max_sources, q.source(i));
    if (!g->query_sources_only) g->nqsrc = 0;
  }
  stack_.timers().arm(g->timer, at);
}

// RFC 2236 §3: start a timer per group in (0, Max Response Time]; a running
// one is only ever moved earlier.
void IgmpHost::v12_query(Ipv4Addr group, TimeNs max_resp, TimeNs now) {
  auto schedule = [&](Group& g) {
    if (!g.member() || g.addr == kAllSystems) return;
    if (!g.timer.armed() || g.timer.deadline() > now + max_resp)
      stack_.timers().arm(g.timer, now + random_delay(max_resp));
  };
  if (!group.is_unspecified()) {
    if (Group* g = find_group(group)) schedule(*g);
    return;
  }
  for (std::size_t k = 0; k < n_groups_; ++k) schedule(groups_[group_index_[k]]);
}

// RFC 2236 §3: another member's v1/v2 report cancels ours (v1/v2 modes only;
// IGMPv3 has no suppression) and hands the leave duty to it.
void IgmpHost::heard_report(Ipv4Addr group) {
  if (mode_ == IgmpCompatMode::v3) return;
  Group* g = find_group(group);
  if (!g || !g->timer.armed()) return;
  stack_.timers().cancel(g->timer);
  g->unsolicited_left = 0;
  g->last_reporter = false;
}

void IgmpHost::update_mode() {
  const IgmpCompatMode m = v1_querier_.armed()   ? IgmpCompatMode::v1
                           : v2_querier_.armed() ? IgmpCompatMode::v2
                                                 : IgmpCompatMode::v3;
  if (m == mode_) return;
  mode_ = m;
  stack_.counters().inc(StackCounter::igmp_compat_mode_change);
  // RFC 3376 §7.2.1: a mode change cancels every pending response and retransmission.
  cancel_all_pending();
}

void IgmpHost::cancel_all_pending() {
  stack_.timers().cancel(change_timer_);
  stack_.timers().cancel(general_timer_);
  for (std::size_t k = n_groups_; k-- > 0;) {
    Group& g = groups_[group_index_[k]];
    stack_.timers().cancel(g.timer);
    g.mode_retx = 0;
    g.npending = 0;
    g.query_sources_only = false;
    g.nqsrc = 0;
    g.unsolicited_left = 0;
    if (idle(g)) free_group(g);  // a leave still being retransmitted ends here
  }
}

// --- timers -----------------------------------------------------------------

void IgmpHost::on_group_timer_cb(Timer&, TimeNs now, void* ctx) {
  Group& g = *static_cast<Group*>(ctx);
  g.owner->on_group_timer(g, now);
}

void IgmpHost::on_change_timer_cb(Timer&, TimeNs now, void* ctx) {
  auto& h = *static_cast<IgmpHost*>(ctx);
  h.observe(now);
  h.send_state_changes(now);
}

// §5.2: the interface timer answers a general query with a Current-State
// record for every group we are in.
void IgmpHost::on_general_timer_cb(Timer&, TimeNs now, void* ctx) {
  auto& h = *static_cast<IgmpHost*>(ctx);
  h.observe(now);
  h.rec_now_ = now;
  for (std::size_t k = 0; k < h.n_groups_; ++k) {
    const Group& g = h.groups_[h.group_index_[k]];
    if (!g.member() || g.addr == kAllSystems) continue;
    h.rec_begin(g.mode == FilterMode::exclude ? rec::kModeIsExclude : rec::kModeIsInclude, g.addr, g.nsrc);
    for (Ipv4Addr s : g.sources()) h.rec_add(s);
    h.rec_end();
  }
  h.rec_flush();
}

void IgmpHost::on_querier_timer_cb(Timer&, TimeNs, void* ctx) { static_cast<IgmpHost*>(ctx)->update_mode(); }

void IgmpHost::on_group_timer(Group& g, TimeNs now) {
  observe(now);
  if (mode_ != IgmpCompatMode::v3) {
    if (g.member()) {
      send_v12(mode_ == IgmpCompatMode::v1 ? wire::igmp_type::kV1Report : wire::igmp_type::kV2Report, g.addr, g.addr,
               now);
      g.last_reporter = true;
    }
    if (g.unsolicited_left > 0 && --g.unsolicited_left > 0)
      stack_.timers().arm(g.timer, now + random_delay(cfg_.unsolicited_report_interval_v2));
    return;
  }
  if (g.member()) {
    if (!g.query_sources_only) {
      send_current_state(g, now);
    } else {
      // §5.2: INCLUDE(A) answers IS_IN(A*Q); EXCLUDE(A) answers IS_IN(Q-A);
      // nothing when that is empty. old_src_ is free scratch here.
      std::size_t n = 0;
      const bool incl = g.mode == FilterMode::include;
      for (std::size_t i = 0; i < g.nqsrc; ++i)
        if (contains(g.sources(), g.qsrc[i]) == incl) old_src_[n++] = g.qsrc[i];
      if (n != 0) {
        rec_now_ = now;
        rec_begin(rec::kModeIsInclude, g.addr, n);
        for (std::size_t i = 0; i < n; ++i) rec_add(old_src_[i]);
        rec_end();
        rec_flush();
      }
    }
  }
  g.query_sources_only = false;
  g.nqsrc = 0;
}

void IgmpHost::send_current_state(const Group& g, TimeNs now) {
  rec_now_ = now;
  rec_begin(g.mode == FilterMode::exclude ? rec::kModeIsExclude : rec::kModeIsInclude, g.addr, g.nsrc);
  for (Ipv4Addr s : g.sources()) rec_add(s);
  rec_end();
  rec_flush();
}

// §5.1: one report with every group's due change records: the filter-mode
// change (TO_IN/TO_EX with the current list) while its counter lasts, then
// ALLOW and BLOCK for the pending sources.
void IgmpHost::send_state_changes(TimeNs now) {
  rec_now_ = now;
  bool more = false;
  for (std::size_t k = 0; k < n_groups_; ++k) {
    Group& g = groups_[group_index_[k]];
    if (g.mode_retx == 0 && g.npending == 0) continue;
    const bool incl = g.mode == FilterMode::include;
    if (g.mode_retx > 0) {
      rec_begin(incl ? rec::kChangeToInclude : rec::kChangeToExclude, g.addr, g.nsrc);
      for (Ipv4Addr s : g.sources()) rec_add(s);
      rec_end();
      --g.mode_retx;
    }
    std::size_t n_allow = 0;
    for (std::size_t i = 0; i < g.npending; ++i) n_allow += contains(g.sources(), g.pending[i].addr) == incl;
    const std::size_t n_block = g.npending - n_allow;
    for (const bool allow : {true, false}) {
      const std::size_t cnt = allow ? n_allow : n_block;
      if (cnt == 0) continue;
      rec_begin(allow ? rec::kAllowNewSources : rec::kBlockOldSources, g.addr, cnt);
      for (std::size_t i = 0; i < g.npending; ++i)
        if ((contains(g.sources(), g.pending[i].addr) == incl) == allow) rec_add(g.pending[i].addr);
      rec_end();
    }
    std::size_t kept = 0;
    for (std::size_t i = 0; i < g.npending; ++i)
      if (--g.pending[i].retx > 0) g.pending[kept++] = g.pending[i];
    g.npending = static_cast<std::uint16_t>(kept);
    if (g.member()) g.last_reporter = true;
    more = more || g.mode_retx > 0 || g.npending > 0;
  }
  rec_flush();
  for (std::size_t k = n_groups_; k-- > 0;) {
    Group& g = groups_[group_index_[k]];
    if (idle(g)) free_group(g);
  }
  if (more)
    stack_.timers().arm(change_timer_, now + random_delay(cfg_.unsolicited_report_interval));
  else
    stack_.timers().cancel(change_timer_);
}

// --- output ---------------------------------------------------------------

void IgmpHost::rec_begin(std::uint8_t type, Ipv4Addr group, std::size_t nsrc) {
  // Split-able records need room for the header and one source; IS_EX and
  // TO_EX must go whole (§4.2.16), so they need all of it.
  const bool whole = type == rec::kModeIsExclude || type == rec::kChangeToExclude;
  const std::size_t need = wire::kIgmpGroupRecordHeaderLen + 4 * (whole ? nsrc : std::min<std::size_t>(nsrc, 1));
  if (n_rec_ > 0 && rec_bytes_ + need > report_budget_) rec_flush();
  rec_type_ = type;
  rec_group_ = group;
  rec_start_ = n_rec_src_;
  rec_bytes_ += wire::kIgmpGroupRecordHeaderLen;
}

void IgmpHost::rec_add(Ipv4Addr s) {
  if (rec_bytes_ + 4 > report_budget_) {
    // §4.2.16: an EXCLUDE list that does not fit is cut (max_sources is
    // clamped so this does not happen); any other record continues in a
    // record of the same type in the next report.
    if (rec_type_ == rec::kModeIsExclude || rec_type_ == rec::kChangeToExclude) return;
    const std::uint8_t type = rec_type_;
    const Ipv4Addr group = rec_group_;
    rec_end();
    rec_flush();
    rec_begin(type, group, 1);
  }
  rec_src_[n_rec_src_++] = s;
  rec_bytes_ += 4;
}

void IgmpHost::rec_end() {
  rec_[n_rec_++] = wire::IgmpGroupRecordRepr{rec_type_, rec_group_, {rec_src_.data() + rec_start_, n_rec_src_ - rec_start_}};
}

void IgmpHost::rec_flush() {
  if (n_rec_ == 0) return;
  const wire::IgmpV3ReportRepr report{{rec_.data(), n_rec_}};
  n_rec_ = 0;
  n_rec_src_ = 0;
  rec_bytes_ = wire::kIgmpV3ReportHeaderLen;
  Packet pkt = Packet::alloc(stack_.pool());
  if (!pkt) {
    stack_.counters().inc(StackCounter::mbuf_alloc_failed);
    return;
  }
  const MutBytes body = pkt.append(report.buffer_len());
  if (body.empty()) {
    stack_.counters().inc(StackCounter::tx_drop_no_headroom);
    return;
  }
  report.emit(body);
  if (stack_.ip_output(std::move(pkt), kV3Routers, wire::ipproto::kIgmp, rec_now_, kIgmpTx))
    stack_.counters().inc(StackCounter::igmp_tx_report_v3);
}

void IgmpHost::send_v12(std::uint8_t type, Ipv4Addr group, Ipv4Addr dst, TimeNs now) {
  Packet pkt = Packet::alloc(stack_.pool());
  if (!pkt) {
    stack_.counters().inc(StackCounter::mbuf_alloc_failed);
    return;
  }
  const MutBytes body = pkt.append(wire::IgmpV2Repr::buffer_len());
  if (body.empty()) {
    stack_.counters().inc(StackCounter::tx_drop_no_headroom);
    return;
  }
  wire::IgmpV2Repr{type, 0, group}.emit(body);
  if (!stack_.ip_output(std::move(pkt), dst, wire::ipproto::kIgmp, now, kIgmpTx)) return;
  switch (type) {
    case wire::igmp_type::kV1Report: stack_.counters().inc(StackCounter::igmp_tx_report_v1); break;
    case wire::igmp_type::kV2Report: stack_.counters().inc(StackCounter::igmp_tx_report_v2); break;
    default: stack_.counters().inc(StackCounter::igmp_tx_leave); break;
  }
}

void IgmpHost::observe(TimeNs now) {
  assert(now >= last_now_ && "time went backwards");
  last_now_ = now;
}

TimeNs IgmpHost::random_delay(TimeNs max) {
  if (max == 0) return 0;
  return 1 + next_random() % max;
}

std::uint64_t IgmpHost::next_random() { return rng_ ? rng_(rng_ctx_) : splitmix64(rng_state_); }

}  // namespace ustack
