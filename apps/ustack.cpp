// ustack: the dedicated-core process.
//
//   ustack [EAL args] -- --ip A.B.C.D/N [--gw A.B.C.D] [--mac M] [--vlan VID] [--port N]
//          [--pcap-out FILE] [--stats-interval S] [--stats-json FILE]
//          [--ping A.B.C.D[:COUNT]] [--duration S]
//          [--tcp-echo PORT] [--tcp-discard PORT] [--tcp-source PORT:BYTES] [--tcp-get IP:PORT[:BYTES]]
//          [--tcp-* tuning] [--fault-* P]
//
// ustack::Process (include/ustack/process.hpp) does the work. App arguments
// are parsed before EAL starts, so a usage error costs nothing
// and prints one line. Every failure is one line on stderr prefixed
// "ustack: "; exit status 2 for usage errors, 1 for runtime failures, 3 when
// a --tcp-get failed (the reason is on stdout with the other results).
#include <cstdio>
#include <string>

#include "ustack/process.hpp"

int main(int argc, char** argv) {
  // Lines, not blocks, even into a pipe or file: the demo and tests read the log as it grows.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // The dedicated-core process of the public API (ustack/process.hpp), with
  // no application thread: the services run on the lcores.
  std::string err;
  int status = 0;
  auto p = ustack::Process::create(argc, argv, err, status);
  if (!p) {
    if (!err.empty()) std::fprintf(stderr, "ustack: %s\n", err.c_str());
    return status;
  }
  return p->run({});
}
