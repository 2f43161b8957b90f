#include "ustack/process.hpp"

#include <algorithm>
#include <cstdio>

#include "runtime/eal_args.hpp"
#include "runtime/options.hpp"
#include "runtime/runtime.hpp"

namespace ustack {

namespace {
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
}  // namespace

std::unique_ptr<Process> Process::create(int argc, char** argv, std::string& err, int& status) {
  err.clear();
  status = 0;
  SplitArgv split = split_argv(argc, argv);
  // A second "--" starts the application's own arguments.
  std::vector<std::string> app_args;
  if (auto it = std::find(split.app.begin(), split.app.end(), "--"); it != split.app.end()) {
    app_args.assign(it + 1, split.app.end());
    split.app.erase(it, split.app.end());
  }
  const std::string prog = split.eal.empty() ? "ustack" : split.eal[0];
  if (!split.has_separator) {
    // "prog --help" without "--" means our help, not EAL's.
    for (std::size_t i = 1; i < split.eal.size(); ++i) {
      if (split.eal[i] == "--help" || split.eal[i] == "-h") {
        std::fputs(usage(prog).c_str(), stdout);
        return nullptr;
      }
      if (is_app_flag(split.eal[i])) {
        err = "'" + split.eal[i] + "' is an app option: put it after '--' (" + prog +
              " [EAL args] -- --ip A.B.C.D/N ...)";
        status = kExitUsage;
        return nullptr;
      }
    }
  }
  const auto opts = parse_app_options(split.app, err);
  if (!opts) {
    status = kExitUsage;
    return nullptr;
  }
  if (opts->help) {
    std::fputs(usage(prog).c_str(), stdout);
    return nullptr;
  }
  const auto eal_args = effective_eal_args(split.eal, probe_eal_environment());
  std::printf("EAL args: %s\n", join_args(eal_args).c_str());
  std::fflush(stdout);
  auto rt = Runtime::create(eal_args, *opts, err);
  if (!rt) {
    status = kExitRuntime;
    return nullptr;
  }
  std::unique_ptr<Process> p(new Process(std::move(rt)));
  p->app_args_ = std::move(app_args);
  return p;
}

Process::Process(std::unique_ptr<Runtime> rt) : rt_(std::move(rt)) {}
Process::~Process() = default;

int Process::run(AppMain app) {
  Runtime::AppMain a;
  if (app) a = std::move(app);
  return rt_->run(std::move(a));
}

shim::Hub* Process::hub() { return rt_->hub(); }

}  // namespace ustack
