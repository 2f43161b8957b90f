#include "runtime/eal_args.hpp"

#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

namespace ustack {
namespace {

// True when `a` is the long option `name` ("--name" or "--name=...").
bool is_long(std::string_view a, std::string_view name) {
  return a == name || (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=');
}

// True when `a` is the short option `name` ("-m" or "-m512").
bool is_short(std::string_view a, std::string_view name) {
  return a.size() >= 2 && a[0] == '-' && a[1] != '-' && a.substr(0, name.size()) == name;
}

bool has(const std::vector<std::string>& args, std::initializer_list<std::string_view> longs,
         std::initializer_list<std::string_view> shorts) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    for (auto l : longs)
      if (is_long(args[i], l)) return true;
    for (auto s : shorts)
      if (is_short(args[i], s)) return true;
  }
  return false;
}

}  // namespace

EalEnvironment probe_eal_environment() {
  EalEnvironment env;
  std::error_code ec;
  for (const auto& d : std::filesystem::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
    std::ifstream f(d.path() / "free_hugepages");
    unsigned long n = 0;
    if (f >> n) env.free_hugepages += n;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) {
        env.first_cpu = c;
        break;
      }
    }
  }
  return env;
}

std::vector<std::string> effective_eal_args(const std::vector<std::string>& user, const EalEnvironment& env) {
  std::vector<std::string> out = user;
  if (out.empty()) out.emplace_back("ustack");
  if (!has(user, {"--lcores"}, {"-l", "-c"})) {
    out.emplace_back("-l");
    out.push_back(std::to_string(env.first_cpu));
  }
  bool no_huge = has(user, {"--no-huge"}, {});
  if (!no_huge && !has(user, {"--socket-mem", "--huge-dir"}, {"-m"}) && env.free_hugepages == 0) {
    out.emplace_back("--no-huge");
    out.emplace_back("-m");
    out.emplace_back("512");
    no_huge = true;
  }
  if (has(user, {"--vdev"}, {}) && !has(user, {"--allow", "--block", "--no-pci"}, {"-a", "-b"}))
    out.emplace_back("--no-pci");
  if (no_huge && !has(user, {"--no-shconf", "--in-memory"}, {})) out.emplace_back("--no-shconf");
  return out;
}

std::string join_args(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ' ';
    const bool quote = a.empty() || a.find_first_of(" \t'\"\\$") != std::string::npos;
    if (!quote) {
      s += a;
      continue;
    }
    s += '\'';
    for (char c : a) {
      if (c == '\'')
        s += "'\\''";
      else
        s += c;
    }
    s += '\'';
  }
  return s;
}

}  // namespace ustack
