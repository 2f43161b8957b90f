#include "runtime/telemetry.hpp"

#include <rte_telemetry.h>

#include <array>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"

namespace ustack {
namespace {

std::mutex g_mu;
Runtime* g_rt = nullptr;
bool g_registered = false;

int stats_cmd(const char* /*cmd*/, const char* /*params*/, rte_tel_data* d) {
  std::array<std::uint64_t, kStackCounterCount> sum{};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_rt == nullptr) return -1;  // not running (starting up or shutting down)
    g_rt->sum_counters(sum);
  }
  rte_tel_data_start_dict(d);
  for (std::size_t i = 0; i < kStackCounterCount; ++i) {
    const std::string name(kStackCounterNames[i]);
    rte_tel_data_add_dict_u64(d, name.c_str(), sum[i]);
  }
  return 0;
}

// Gauges for leak checks while ustack runs: summed over lcores, and lcore by
// lcore as "qN_..." keys.
int tcp_cmd(const char* /*cmd*/, const char* /*params*/, rte_tel_data* d) {
  std::vector<LcoreSnapshot> lc;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_rt == nullptr) return -1;
    lc = g_rt->gauges();
  }
  std::uint64_t conns = 0, tw = 0, avail = 0;
  for (const auto& l : lc) {
    conns += l.tcp_connections;
    tw += l.tcp_time_wait;
    avail += l.mbuf_available;
  }
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "connections", conns);
  rte_tel_data_add_dict_u64(d, "time_wait", tw);
  rte_tel_data_add_dict_u64(d, "mbuf_available", avail);
  for (const auto& l : lc) {
    const std::string q = "q" + std::to_string(l.queue) + "_";
    rte_tel_data_add_dict_u64(d, (q + "connections").c_str(), l.tcp_connections);
    rte_tel_data_add_dict_u64(d, (q + "time_wait").c_str(), l.tcp_time_wait);
    rte_tel_data_add_dict_u64(d, (q + "mbuf_available").c_str(), l.mbuf_available);
  }
  return 0;
}

}  // namespace

void telemetry_attach(Runtime* rt) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_rt = rt;
  if (!g_registered) {
    // Fails only for a bad name or a full command table; telemetry is a
    // convenience, so a failure is not worth stopping for.
    (void)rte_telemetry_register_cmd("/ustack/stats", stats_cmd,
                                     "Returns ustack's stack counters summed over lcores. Takes no parameters");
    (void)rte_telemetry_register_cmd("/ustack/tcp", tcp_cmd,
                                     "Returns TCP connections, TIME-WAIT connections and free mbufs, summed and per "
                                     "queue. Takes no parameters");
    g_registered = true;
  }
}

void telemetry_detach(Runtime* rt) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_rt == rt) g_rt = nullptr;
}

}  // namespace ustack
