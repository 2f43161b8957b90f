#include "runtime/stats.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>
#include <utility>

namespace ustack {
namespace {

void append_u64(std::string& s, std::uint64_t v) { s += std::to_string(v); }

// Counter names and our own keys are [a-z0-9_]; driver names and link text
// are plain ASCII. Escape anyway so the document is valid whatever comes in.
void append_json_string(std::string& s, std::string_view v) {
  s += '"';
  for (char c : v) {
    switch (c) {
      case '"': s += "\\\""; break;
      case '\\': s += "\\\\"; break;
      case '\n': s += "\\n"; break;
      case '\t': s += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          s += buf;
        } else {
          s += c;
        }
    }
  }
  s += '"';
}

// A minimal writer for nested objects with correct commas and indentation.
class Json {
 public:
  void open(std::string_view key = {}) {
    item(key);
    s_ += '{';
    first_ = true;
    ++depth_;
  }
  void open_array(std::string_view key) {
    item(key);
    s_ += '[';
    first_ = true;
    ++depth_;
  }
  void close(char c = '}') {
    --depth_;
    if (!first_) newline();
    s_ += c;
    first_ = false;
  }
  void u64(std::string_view key, std::uint64_t v) {
    item(key);
    append_u64(s_, v);
  }
  void num(std::string_view key, double v) {
    item(key);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    s_ += buf;
  }
  void str(std::string_view key, std::string_view v) {
    item(key);
    append_json_string(s_, v);
  }
  void boolean(std::string_view key, bool v) {
    item(key);
    s_ += v ? "true" : "false";
  }
  void null(std::string_view key) {
    item(key);
    s_ += "null";
  }
  std::string take() {
    s_ += '\n';
    return std::move(s_);
  }

 private:
  void item(std::string_view key) {
    if (depth_ > 0) {
      if (!first_) s_ += ',';
      newline();
    }
    first_ = false;
    if (!key.empty()) {
      append_json_string(s_, key);
      s_ += ": ";
    }
  }
  void newline() {
    s_ += '\n';
    s_.append(static_cast<std::size_t>(depth_) * 2, ' ');
  }
  std::string s_;
  int depth_ = 0;
  bool first_ = true;
};

void port_stats_fields(Json& j, const PortStats& p) {
  j.u64("ipackets", p.ipackets);
  j.u64("opackets", p.opackets);
  j.u64("ibytes", p.ibytes);
  j.u64("obytes", p.obytes);
  j.u64("imissed", p.imissed);
  j.u64("ierrors", p.ierrors);
  j.u64("oerrors", p.oerrors);
  j.u64("rx_nombuf", p.rx_nombuf);
}

std::string key_hex(const RssInfo& rss) {
  std::string s;
  char buf[4];
  for (std::uint8_t b : rss.key) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    s += buf;
  }
  return s;
}

void rss_fields(Json& j, const RssInfo& rss) {
  j.str("steering", to_string(rss.steering));
  j.boolean("known", rss.known());
  j.u64("queues", rss.nqueues);
  j.u64("reta_size", rss.reta.size());
  // How many RETA entries select each queue: shows the table was programmed.
  j.open_array("reta_entries_per_queue");
  if (rss.steering == RssSteering::toeplitz || rss.steering == RssSteering::software) {
    std::vector<std::uint64_t> per(rss.nqueues, 0);
    for (std::uint16_t q : rss.reta)
      if (q < per.size()) ++per[q];
    for (std::uint64_t n : per) j.u64({}, n);
  }
  j.close(']');
  j.boolean("key_symmetric", rss.key_symmetric());
  if (rss.steering == RssSteering::toeplitz || rss.steering == RssSteering::software) {
    j.str("key", key_hex(rss));
  } else {
    j.null("key");
  }
  j.boolean("ipv4_tcp", rss.ipv4_tcp);
  j.boolean("ipv4_udp", rss.ipv4_udp);
  j.str("note", rss.note);
}

// A service's counters, in their JSON order. The totals over the lcores
// (tcp_services, and udp_services' echo ports) sum exactly these.
template <class Snapshot>
using Counters = std::pair<std::string_view, std::uint64_t Snapshot::*>;

constexpr Counters<ServiceSnapshot> kServiceCounters[] = {
    {"connections", &ServiceSnapshot::connections}, {"active", &ServiceSnapshot::active},
    {"completed", &ServiceSnapshot::completed},     {"failed", &ServiceSnapshot::failed},
    {"bytes_in", &ServiceSnapshot::bytes_in},       {"bytes_out", &ServiceSnapshot::bytes_out},
};

constexpr Counters<UdpServiceSnapshot> kUdpServiceCounters[] = {
    {"datagrams_in", &UdpServiceSnapshot::datagrams_in}, {"bytes_in", &UdpServiceSnapshot::bytes_in},
    {"datagrams_out", &UdpServiceSnapshot::datagrams_out}, {"bytes_out", &UdpServiceSnapshot::bytes_out},
    {"send_failed", &UdpServiceSnapshot::send_failed},   {"queue_drops", &UdpServiceSnapshot::queue_drops},
};

void service_fields(Json& j, const ServiceSnapshot& s) {
  j.open();
  j.str("kind", s.kind);
  j.u64("port", s.port);
  if (s.kind == "source") j.u64("source_bytes", s.source_bytes);
  for (const auto& [key, field] : kServiceCounters) j.u64(key, s.*field);
  j.close();
}

void udp_service_fields(Json& j, const UdpServiceSnapshot& s) {
  j.open();
  j.str("kind", s.kind);
  j.str("target", s.target);
  j.str("status", s.status);
  for (const auto& [key, field] : kUdpServiceCounters) j.u64(key, s.*field);
  if (s.kind == "join") {
    j.u64("feed", s.feed);
    j.u64("missing", s.missing);
    j.u64("gaps", s.gap_events);
    j.u64("late", s.late);
    j.u64("not_feed", s.not_feed);
  }
  if (s.kind == "mcast-send") {
    j.u64("rate", s.rate);
    j.u64("size", s.size);
  }
  j.close();
}

void fault_fields(Json& j, std::string_view key, const FaultCounters& f) {
  j.open(key);
  j.u64("passed", f.passed);
  j.u64("dropped", f.dropped);
  j.u64("duplicated", f.duplicated);
  j.u64("reordered", f.reordered);
  j.u64("corrupted", f.corrupted);
  j.u64("delayed", f.delayed);
  j.u64("overflow", f.overflow);
  j.u64("inner_rejected", f.inner_rejected);
  j.close();
}

}  // namespace

std::vector<std::string> rss_report(std::uint16_t port_id, const RssInfo& rss) {
  const std::string pre = "port " + std::to_string(port_id) + ": rss ";
  const std::string queues = std::to_string(rss.nqueues) + " queue" + (rss.nqueues == 1 ? "" : "s");
  std::vector<std::string> out;
  switch (rss.steering) {
    case RssSteering::single_queue:
      out.push_back(pre + "single-queue (every flow is queue 0's)");
      break;
    case RssSteering::software:
    case RssSteering::toeplitz: {
      std::string s = pre + to_string(rss.steering) + ", key " + (rss.key_symmetric() ? "symmetric" : "not symmetric") + " (" +
                      key_hex(rss).substr(0, 16) + "...), reta " + std::to_string(rss.reta.size()) +
                      " entries over " + queues + ", hashes";
      if (rss.ipv4_tcp) s += " ipv4-tcp";
      if (rss.ipv4_udp) s += " ipv4-udp";
      out.push_back(s);
      break;
    }
    case RssSteering::unknown:
      out.push_back(pre + "unknown over " + queues + " (TCP is steered to its lcores in software): " +
                    (rss.note.empty() ? "no reason recorded" : rss.note));
      return out;
  }
  if (!rss.note.empty()) out.push_back(pre + "note: " + rss.note);
  return out;
}

bool is_drop_counter(std::size_t index) { return kStackCounterNames[index].find("drop") != std::string_view::npos; }

std::string counter_group(std::size_t index) {
  const std::string_view n = kStackCounterNames[index];
  const std::string_view prefix = n.substr(0, n.find('_'));
  for (std::string_view g : {"eth", "arp", "ipv4", "icmp", "tcp", "udp", "igmp"})
    if (prefix == g) return std::string(g);
  return "resources";
}

std::uint64_t LcoreSnapshot::drops() const {
  std::uint64_t d = 0;
  for (std::size_t i = 0; i < kStackCounterCount; ++i)
    if (is_drop_counter(i)) d += counters[i];
  return d;
}

std::string stats_line(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "stats t=%.1fs", uptime_s);
  std::string s = buf;
  for (const auto& l : lcores) {
    std::snprintf(buf, sizeof buf, " lcore%u/q%u rx=%llu tx=%llu drop=%llu", l.lcore_id, l.queue,
                  static_cast<unsigned long long>(l.get(StackCounter::eth_rx_packets)),
                  static_cast<unsigned long long>(l.get(StackCounter::eth_tx_packets)),
                  static_cast<unsigned long long>(l.drops()));
    s += buf;
  }
  std::snprintf(buf, sizeof buf, " | port%u", port.port_id);
  s += buf;
  if (port.stats) {
    const PortStats& p = *port.stats;
    std::snprintf(buf, sizeof buf,
                  " ipackets=%llu opackets=%llu ibytes=%llu obytes=%llu imissed=%llu ierrors=%llu oerrors=%llu "
                  "rx_nombuf=%llu",
                  static_cast<unsigned long long>(p.ipackets), static_cast<unsigned long long>(p.opackets),
                  static_cast<unsigned long long>(p.ibytes), static_cast<unsigned long long>(p.obytes),
                  static_cast<unsigned long long>(p.imissed), static_cast<unsigned long long>(p.ierrors),
                  static_cast<unsigned long long>(p.oerrors), static_cast<unsigned long long>(p.rx_nombuf));
    s += buf;
  } else {
    s += " stats unavailable";
  }
  s += " |";
  for (const auto& l : lcores) {
    std::snprintf(buf, sizeof buf, " lcore%u conns=%u time_wait=%u mbuf_avail=%llu", l.lcore_id, l.tcp_connections,
                  l.tcp_time_wait, static_cast<unsigned long long>(l.mbuf_available));
    s += buf;
  }
  for (const auto& l : lcores) {
    for (const auto& u : l.udp_services) {
      if (u.kind == "join") {
        std::snprintf(buf, sizeof buf, " | join %s rx=%llu feed=%llu missing=%llu gaps=%llu late=%llu", u.target.c_str(),
                      static_cast<unsigned long long>(u.datagrams_in), static_cast<unsigned long long>(u.feed),
                      static_cast<unsigned long long>(u.missing), static_cast<unsigned long long>(u.gap_events),
                      static_cast<unsigned long long>(u.late));
      } else if (u.kind == "mcast-send") {
        std::snprintf(buf, sizeof buf, " | mcast-send %s tx=%llu failed=%llu", u.target.c_str(),
                      static_cast<unsigned long long>(u.datagrams_out), static_cast<unsigned long long>(u.send_failed));
      } else {
        std::snprintf(buf, sizeof buf, " | lcore%u udp-echo %s in=%llu out=%llu", l.lcore_id, u.target.c_str(),
                      static_cast<unsigned long long>(u.datagrams_in), static_cast<unsigned long long>(u.datagrams_out));
      }
      s += buf;
      if (u.status != "ok") s += " (" + u.status + ")";
    }
  }
  return s;
}

std::string stats_json(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port,
                       const std::vector<GetSnapshot>& gets) {
  std::array<std::uint64_t, kStackCounterCount> total{};
  for (const auto& l : lcores)
    for (std::size_t i = 0; i < kStackCounterCount; ++i) total[i] += l.counters[i];

  Json j;
  j.open();
  j.num("uptime_s", uptime_s);

  j.open_array("ports");
  j.open();
  j.u64("port_id", port.port_id);
  j.str("driver", port.driver);
  j.str("mac", port.mac);
  j.u64("mtu", port.mtu);
  j.u64("queues", port.queues);
  j.str("link", port.link);
  if (port.stats) {
    port_stats_fields(j, *port.stats);
  } else {
    j.null("stats");
  }
  j.open("rss");
  rss_fields(j, port.rss);
  j.close();
  j.close();
  j.close(']');

  j.open_array("lcores");
  for (const auto& l : lcores) {
    j.open();
    j.u64("lcore_id", l.lcore_id);
    j.u64("queue", l.queue);
    if (l.arp_entries) {
      j.u64("arp_table_size", *l.arp_entries);
    } else {
      j.null("arp_table_size");
    }
    j.u64("drops", l.drops());
    j.u64("arp_shared", l.arp_shared);
    j.u64("arp_share_dropped", l.arp_share_dropped);
    j.open("tcp");
    j.u64("connections", l.tcp_connections);
    j.u64("time_wait", l.tcp_time_wait);
    j.u64("capacity", l.tcp_capacity);
    j.u64("steered_out", l.tcp_steered_out);
    j.u64("steered_in", l.tcp_steered_in);
    j.u64("steer_dropped", l.tcp_steer_dropped);
    j.close();
    j.open("mbufs");
    j.u64("available", l.mbuf_available);
    j.u64("pool_size", l.mbuf_pool_size);
    j.close();
    j.open_array("services");
    for (const auto& sv : l.services) service_fields(j, sv);
    j.close(']');
    j.open_array("udp_services");
    for (const auto& u : l.udp_services) udp_service_fields(j, u);
    j.close(']');
    j.open("multicast");
    j.boolean("igmp_owner", l.igmp_owner);
    j.u64("filter_programmed", l.mc_filter_programmed);
    j.u64("filter_fallbacks", l.mc_filter_fallbacks);
    j.u64("steered_out", l.mcast_steered_out);
    j.u64("steered_in", l.mcast_steered_in);
    j.u64("steer_dropped", l.mcast_steer_dropped);
    j.close();
    if (l.fault_rx && l.fault_tx) {
      j.open("faults");
      fault_fields(j, "rx", *l.fault_rx);
      fault_fields(j, "tx", *l.fault_tx);
      j.close();
    }
    j.open("counters");
    for (std::size_t i = 0; i < kStackCounterCount; ++i) j.u64(kStackCounterNames[i], l.counters[i]);
    j.close();
    j.close();
  }
  j.close(']');

  // Summed over lcores, grouped by protocol in counter order.
  std::map<std::string, std::vector<std::size_t>> groups;
  std::vector<std::string> order;
  for (std::size_t i = 0; i < kStackCounterCount; ++i) {
    const std::string g = counter_group(i);
    if (!groups.count(g)) order.push_back(g);
    groups[g].push_back(i);
  }
  j.open("protocols");
  for (const auto& g : order) {
    j.open(g);
    for (std::size_t i : groups[g]) j.u64(kStackCounterNames[i], total[i]);
    j.close();
  }
  j.close();

  j.open("drops");
  std::uint64_t all_drops = 0;
  for (std::size_t i = 0; i < kStackCounterCount; ++i) {
    if (!is_drop_counter(i)) continue;
    j.u64(kStackCounterNames[i], total[i]);
    all_drops += total[i];
  }
  j.u64("total", all_drops);
  j.close();

  j.open("totals");
  for (std::size_t i = 0; i < kStackCounterCount; ++i) j.u64(kStackCounterNames[i], total[i]);
  j.close();

  // Each service summed over the lcores that run it (all of them).
  j.open_array("tcp_services");
  if (!lcores.empty()) {
    for (std::size_t k = 0; k < lcores[0].services.size(); ++k) {
      ServiceSnapshot sum = lcores[0].services[k];
      for (std::size_t i = 1; i < lcores.size(); ++i) {
        if (k >= lcores[i].services.size()) continue;
        for (const auto& [key, field] : kServiceCounters) sum.*field += lcores[i].services[k].*field;
      }
      service_fields(j, sum);
    }
  }
  j.close(']');

  // UDP services: each echo port summed over the lcores, then the joins
  // and the publisher (queue 0's).
  j.open_array("udp_services");
  if (!lcores.empty()) {
    for (std::size_t k = 0; k < lcores[0].udp_services.size(); ++k) {
      UdpServiceSnapshot sum = lcores[0].udp_services[k];
      if (sum.kind == "udp-echo") {
        for (std::size_t i = 1; i < lcores.size(); ++i) {
          if (k >= lcores[i].udp_services.size()) continue;
          for (const auto& [key, field] : kUdpServiceCounters) sum.*field += lcores[i].udp_services[k].*field;
        }
      }
      udp_service_fields(j, sum);
    }
  }
  j.close(']');

  j.open_array("tcp_get");
  for (const auto& g : gets) {
    j.open();
    j.str("target", g.target);
    j.str("outcome", g.outcome);
    j.boolean("ok", g.ok);
    j.u64("bytes", g.bytes);
    if (g.expected) j.u64("expected", *g.expected); else j.null("expected");
    if (g.mismatch_at) j.u64("mismatch_at", *g.mismatch_at); else j.null("mismatch_at");
    j.num("elapsed_s", g.elapsed_s);
    j.num("connect_s", g.connect_s);
    j.u64("retransmits", g.retransmits);
    j.boolean("sack", g.sack);
    j.boolean("timestamps", g.timestamps);
    j.u64("snd_wscale", g.snd_wscale);
    j.u64("rcv_wscale", g.rcv_wscale);
    j.u64("mss", g.mss);
    j.close();
  }
  j.close(']');

  j.close();
  return j.take();
}

bool write_file(const std::string& path, const std::string& text, std::string& err) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    err = tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int saved = errno;
  if (std::fclose(f) != 0 || !ok) {
    err = tmp + ": " + std::strerror(ok ? errno : saved);
    std::remove(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace ustack
