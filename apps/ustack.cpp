// ustack: the dedicated-core process.
//
//   ustack [EAL args] -- --ip A.B.C.D/N [--gw A.B.C.D] [--mac M] [--vlan VID] [--port N]
//          [--pcap-out FILE] [--stats-interval S] [--stats-json FILE]
//          [--ping A.B.C.D[:COUNT]] [--duration S]
//          [--tcp-echo PORT] [--tcp-discard PORT] [--tcp-source PORT:BYTES] [--tcp-get IP:PORT[:BYTES]]
//          [--tcp-* tuning] [--fault-* P]
//
// App arguments are parsed before EAL starts, so a usage error costs nothing
// and prints one line. Every failure is one line on stderr prefixed
// "ustack: "; exit status 2 for usage errors, 1 for runtime failures, 3 when
// a --tcp-get failed (the reason is on stdout with the other results).
#include <cstdio>
#include <string>

#include "runtime/eal_args.hpp"
#include "runtime/options.hpp"
#include "runtime/runtime.hpp"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "ustack: %s\n", msg.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Lines, not blocks, even into a pipe or file: the demo and tests read the log as it grows.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const ustack::SplitArgv split = ustack::split_argv(argc, argv);
  const std::string prog = split.eal.empty() ? "ustack" : split.eal[0];

  if (!split.has_separator) {
    // "ustack --help" without "--" means our help, not EAL's.
    for (std::size_t i = 1; i < split.eal.size(); ++i) {
      if (split.eal[i] == "--help" || split.eal[i] == "-h") {
        std::fputs(ustack::usage(prog).c_str(), stdout);
        return 0;
      }
      if (ustack::is_app_flag(split.eal[i]))
        return fail(kExitUsage, "'" + split.eal[i] + "' is an app option: put it after '--' (" + prog +
                                    " [EAL args] -- --ip A.B.C.D/N ...)");
    }
  }

  std::string err;
  const auto opts = ustack::parse_app_options(split.app, err);
  if (!opts) return fail(kExitUsage, err);
  if (opts->help) {
    std::fputs(ustack::usage(prog).c_str(), stdout);
    return 0;
  }

  const auto eal_args = ustack::effective_eal_args(split.eal, ustack::probe_eal_environment());
  std::printf("EAL args: %s\n", ustack::join_args(eal_args).c_str());

  auto rt = ustack::Runtime::create(eal_args, *opts, err);
  if (!rt) return fail(kExitRuntime, err);
  return rt->run();
}
