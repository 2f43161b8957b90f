#include "runtime/stats.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>

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
  if (rss.steering == RssSteering::toeplitz) {
    std::vector<std::uint64_t> per(rss.nqueues, 0);
    for (std::uint16_t q : rss.reta)
      if (q < per.size()) ++per[q];
    for (std::uint64_t n : per) j.u64({}, n);
  }
  j.close(']');
  j.boolean("key_symmetric", rss.key_symmetric());
  if (rss.steering == RssSteering::toeplitz) {
    j.str("key", key_hex(rss));
  } else {
    j.null("key");
  }
  j.boolean("ipv4_tcp", rss.ipv4_tcp);
  j.boolean("ipv4_udp", rss.ipv4_udp);
  j.str("note", rss.note);
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
    case RssSteering::toeplitz: {
      std::string s = pre + "toeplitz, key " + (rss.key_symmetric() ? "symmetric" : "not symmetric") + " (" +
                      key_hex(rss).substr(0, 16) + "...), reta " + std::to_string(rss.reta.size()) +
                      " entries over " + queues + ", hashes";
      if (rss.ipv4_tcp) s += " ipv4-tcp";
      if (rss.ipv4_udp) s += " ipv4-udp";
      out.push_back(s);
      break;
    }
    case RssSteering::unknown:
      out.push_back(pre + "unknown over " + queues + " (TCP checks each flow's queue in software): " +
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
  for (std::string_view g : {"eth", "arp", "ipv4", "icmp", "udp", "igmp"})
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
  return s;
}

std::string stats_json(double uptime_s, const std::vector<LcoreSnapshot>& lcores, const PortSnapshot& port) {
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
