#include "apps/bench/report.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>

namespace ustack::bench {

std::string fmt(const char* f, double v) {
  char b[512];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void fill_latency(Figures& f, std::vector<std::uint64_t>& s) {
  f.samples = s.size();
  if (s.empty()) return;
  std::sort(s.begin(), s.end());
  auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(q * static_cast<double>(s.size() - 1) + 0.5);
    return static_cast<double>(s[std::min(i, s.size() - 1)]);
  };
  f.p50_ns = at(0.50);
  f.p99_ns = at(0.99);
  f.p999_ns = at(0.999);
  f.mean_ns = static_cast<double>(std::accumulate(s.begin(), s.end(), std::uint64_t{0})) / static_cast<double>(s.size());
}

CaseResult allocs_case(std::string name, std::string what, std::uint64_t allocs, std::uint64_t count,
                       const std::string& unit) {
  CaseResult c;
  c.name = std::move(name);
  c.what = std::move(what);
  c.shown = show::kAllocs;
  c.ustack.samples = count;
  c.ustack.allocs_per_pkt = count ? static_cast<double>(allocs) / static_cast<double>(count) : 0;
  c.kernel_note = "not comparable (the kernel's allocations are not this process's)";
  c.goal = allocs == 0 ? "0 allocations in " + std::to_string(count) + " " + unit + ": met"
                       : std::to_string(allocs) + " allocations in " + std::to_string(count) + " " + unit +
                             ": MISSED (must be 0)";
  return c;
}

namespace {

void row(const char* who, const CaseResult& c, const Figures& f) {
  if (c.shown == show::kDefault) {  // the l2l3 layout, unchanged
    std::printf("  %-7s p50 %9.0f ns  p99 %9.0f ns  p99.9 %9.0f ns  %11.0f pps  %7.1f ns/pkt  %5.2f allocs/pkt\n", who,
                f.p50_ns, f.p99_ns, f.p999_ns, f.pps, f.ns_per_pkt, f.allocs_per_pkt);
    return;
  }
  std::printf("  %-7s", who);
  if (c.shown & show::kLatency)
    std::printf(" p50 %9.0f ns  p99 %9.0f ns  p99.9 %9.0f ns ", f.p50_ns, f.p99_ns, f.p999_ns);
  if (c.shown & show::kGbps) std::printf(" %7.2f Gbit/s ", f.gbps);
  if (c.shown & show::kOps) std::printf(" %11.0f %s ", f.ops_per_sec, c.ops_unit.c_str());
  if (c.shown & show::kBytesPerConn) std::printf(" %9.0f bytes/conn ", f.bytes_per_conn);
  if (c.shown & show::kPps) std::printf(" %11.0f pps  %7.1f ns/pkt ", f.pps, f.ns_per_pkt);
  if (c.shown & show::kAllocs) std::printf(" %5.2f allocs/pkt", f.allocs_per_pkt);
  std::printf("\n");
}

double ratio(double num, double den) { return den > 0 ? num / den : 0; }

void ratio_line(const CaseResult& c, const Figures& u, const Figures& k) {
  if (c.shown == show::kDefault) {
    std::printf("  ratio   kernel/ustack: p50 %.1fx  p99 %.1fx  p99.9 %.1fx  pps ustack/kernel %.1fx\n",
                ratio(k.p50_ns, u.p50_ns), ratio(k.p99_ns, u.p99_ns), ratio(k.p999_ns, u.p999_ns), ratio(u.pps, k.pps));
    return;
  }
  // Every ratio reads "how many times better ustack is": > 1 favours ustack.
  const char* b = c.baseline.c_str();
  std::printf("  ratio  ");
  if (c.shown & show::kLatency)
    std::printf(" %s/ustack: p50 %.1fx  p99 %.1fx  p99.9 %.1fx ", b, ratio(k.p50_ns, u.p50_ns), ratio(k.p99_ns, u.p99_ns),
                ratio(k.p999_ns, u.p999_ns));
  if (c.shown & show::kGbps) std::printf(" Gbit/s ustack/%s %.2fx ", b, ratio(u.gbps, k.gbps));
  if (c.shown & show::kOps) std::printf(" %s ustack/%s %.2fx ", c.ops_unit.c_str(), b, ratio(u.ops_per_sec, k.ops_per_sec));
  if (c.shown & show::kBytesPerConn) std::printf(" bytes %s/ustack %.2fx ", b, ratio(k.bytes_per_conn, u.bytes_per_conn));
  if ((c.shown & show::kPps) && !(c.shown & (show::kGbps | show::kOps)))
    std::printf(" pps ustack/%s %.2fx", b, ratio(u.pps, k.pps));
  std::printf("\n");
}

void json_string(std::FILE* o, const std::string& s) {
  std::fputc('"', o);
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') std::fputc('\\', o);
    if (static_cast<unsigned char>(ch) < 0x20) {
      std::fprintf(o, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
      continue;
    }
    std::fputc(ch, o);
  }
  std::fputc('"', o);
}

void fig_json(std::FILE* o, const Figures& f) {
  std::fprintf(o,
               "{\"samples\": %llu, \"p50_ns\": %.1f, \"p99_ns\": %.1f, \"p999_ns\": %.1f, \"mean_ns\": %.1f, "
               "\"pps\": %.1f, \"ns_per_pkt\": %.2f, \"allocs_per_pkt\": %.4f, \"gbps\": %.3f, "
               "\"ops_per_sec\": %.1f, \"bytes_per_conn\": %.1f, \"pps_wall\": %.1f, \"gbps_wall\": %.3f, "
               "\"ops_per_sec_wall\": %.1f}",
               static_cast<unsigned long long>(f.samples), f.p50_ns, f.p99_ns, f.p999_ns, f.mean_ns, f.pps,
               f.ns_per_pkt, f.allocs_per_pkt, f.gbps, f.ops_per_sec, f.bytes_per_conn, f.pps_wall, f.gbps_wall,
               f.ops_per_sec_wall);
}

}  // namespace

void print_table(const std::vector<CaseResult>& cases) {
  for (const auto& c : cases) {
    std::printf("%s: %s\n", c.name.c_str(), c.what.c_str());
    row("ustack", c, c.ustack);
    if (c.kernel) {
      row(c.baseline.c_str(), c, *c.kernel);
      ratio_line(c, c.ustack, *c.kernel);
    } else {
      std::printf("  %-7s n/a: %s\n", c.baseline.c_str(), c.kernel_note.c_str());
    }
    if (!c.goal.empty()) std::printf("  goal    %s\n", c.goal.c_str());
    if (!c.note.empty()) std::printf("  note    %s\n", c.note.c_str());
  }
}

bool write_json(const std::string& path, const std::string& bench, const std::vector<CaseResult>& cases) {
  std::FILE* o = std::fopen(path.c_str(), "w");
  if (!o) return false;
  std::fprintf(o, "{\"bench\": ");
  json_string(o, bench);
  std::fprintf(o, ", \"cases\": [");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::fprintf(o, "%s\n  {\"name\": ", i ? "," : "");
    json_string(o, c.name);
    std::fprintf(o, ", \"what\": ");
    json_string(o, c.what);
    if (!c.note.empty()) {
      std::fprintf(o, ", \"note\": ");
      json_string(o, c.note);
    }
    if (!c.goal.empty()) {
      std::fprintf(o, ", \"goal\": ");
      json_string(o, c.goal);
    }
    std::fprintf(o, ", \"baseline\": ");
    json_string(o, c.baseline);
    std::fprintf(o, ", \"ustack\": ");
    fig_json(o, c.ustack);
    if (c.kernel) {
      const Figures& k = *c.kernel;
      const Figures& u = c.ustack;
      std::fprintf(o, ", \"kernel\": ");
      fig_json(o, k);
      std::fprintf(o, ", \"ratio_p50_kernel_over_ustack\": %.3f, \"ratio_p99_kernel_over_ustack\": %.3f, "
                      "\"ratio_p999_kernel_over_ustack\": %.3f, \"ratio_pps_ustack_over_kernel\": %.3f, "
                      "\"ratio_gbps_ustack_over_kernel\": %.3f, \"ratio_ops_ustack_over_kernel\": %.3f, "
                      "\"ratio_bytes_per_conn_kernel_over_ustack\": %.3f",
                   ratio(k.p50_ns, u.p50_ns), ratio(k.p99_ns, u.p99_ns), ratio(k.p999_ns, u.p999_ns),
                   ratio(u.pps, k.pps), ratio(u.gbps, k.gbps), ratio(u.ops_per_sec, k.ops_per_sec),
                   ratio(k.bytes_per_conn, u.bytes_per_conn));
    } else {
      std::fprintf(o, ", \"kernel\": null, \"kernel_note\": ");
      json_string(o, c.kernel_note);
    }
    std::fprintf(o, "}");
  }
  std::fprintf(o, "\n]}\n");
  return std::fclose(o) == 0;
}

}  // namespace ustack::bench
