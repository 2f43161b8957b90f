#include "apps/bench/report.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace ustack::bench {

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

namespace {
void row(const char* who, const Figures& f) {
  std::printf("  %-7s p50 %9.0f ns  p99 %9.0f ns  p99.9 %9.0f ns  %11.0f pps  %7.1f ns/pkt  %5.2f allocs/pkt\n", who,
              f.p50_ns, f.p99_ns, f.p999_ns, f.pps, f.ns_per_pkt, f.allocs_per_pkt);
}
void fig_json(std::FILE* o, const Figures& f) {
  std::fprintf(o,
               "{\"samples\": %llu, \"p50_ns\": %.1f, \"p99_ns\": %.1f, \"p999_ns\": %.1f, \"mean_ns\": %.1f, "
               "\"pps\": %.1f, \"ns_per_pkt\": %.2f, \"allocs_per_pkt\": %.4f}",
               static_cast<unsigned long long>(f.samples), f.p50_ns, f.p99_ns, f.p999_ns, f.mean_ns, f.pps,
               f.ns_per_pkt, f.allocs_per_pkt);
}
double ratio(double kernel, double ours) { return ours > 0 ? kernel / ours : 0; }
}  // namespace

void print_table(const std::vector<CaseResult>& cases) {
  for (const auto& c : cases) {
    std::printf("%s: %s\n", c.name.c_str(), c.what.c_str());
    row("ustack", c.ustack);
    if (c.kernel) {
      row("kernel", *c.kernel);
      std::printf("  ratio   kernel/ustack: p50 %.1fx  p99 %.1fx  p99.9 %.1fx  pps ustack/kernel %.1fx\n",
                  ratio(c.kernel->p50_ns, c.ustack.p50_ns), ratio(c.kernel->p99_ns, c.ustack.p99_ns),
                  ratio(c.kernel->p999_ns, c.ustack.p999_ns), ratio(c.ustack.pps, c.kernel->pps));
    } else {
      std::printf("  kernel  n/a: %s\n", c.kernel_note.c_str());
    }
  }
}

bool write_json(const std::string& path, const std::string& bench, const std::vector<CaseResult>& cases) {
  std::FILE* o = std::fopen(path.c_str(), "w");
  if (!o) return false;
  std::fprintf(o, "{\"bench\": \"%s\", \"cases\": [", bench.c_str());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    std::fprintf(o, "%s\n  {\"name\": \"%s\", \"what\": \"%s\", \"ustack\": ", i ? "," : "", c.name.c_str(), c.what.c_str());
    fig_json(o, c.ustack);
    if (c.kernel) {
      std::fprintf(o, ", \"kernel\": ");
      fig_json(o, *c.kernel);
      std::fprintf(o, ", \"ratio_p50_kernel_over_ustack\": %.3f, \"ratio_p99_kernel_over_ustack\": %.3f, "
                      "\"ratio_pps_ustack_over_kernel\": %.3f",
                   ratio(c.kernel->p50_ns, c.ustack.p50_ns), ratio(c.kernel->p99_ns, c.ustack.p99_ns),
                   ratio(c.ustack.pps, c.kernel->pps));
    } else {
      std::fprintf(o, ", \"kernel\": null, \"kernel_note\": \"%s\"", c.kernel_note.c_str());
    }
    std::fprintf(o, "}");
  }
  std::fprintf(o, "\n]}\n");
  return std::fclose(o) == 0;
}

}  // namespace ustack::bench
