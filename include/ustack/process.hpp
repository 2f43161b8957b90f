// Dedicated-core process mode: ustack takes the EAL lcores it is given, pins
// one poll loop (and one complete stack) on each, and runs the application
// on a thread of its own, pinned to the other CPUs. The application's
// threads use the thread shim (ustack/shim.hpp) through the Hub it is handed.
//
//   int main(int argc, char** argv) {
//     std::string err;
//     int status = 0;
//     auto p = ustack::Process::create(argc, argv, err, status);
//     if (!p) { if (!err.empty()) fprintf(stderr, "app: %s\n", err.c_str()); return status; }
//     return p->run([](ustack::shim::Hub& hub, const std::atomic<bool>& stop) {
//       std::string e;
//       auto t = ustack::shim::Thread::attach(hub, e);
//       ... sockets, epoll_wait on their eventfds, until stop ...
//       return 0;
//     });
//   }
//
// The command line is the `ustack` program's: `prog [EAL args] -- --ip
// A.B.C.D/N [options]` (prog -- --help lists them), optionally followed by a
// second `--` and the application's own arguments (app_args()). Start-up validates the
// core lists: --app-cpus (default: the process's CPUs that no lcore polls)
// must not overlap the lcores' CPUs, and the Hub refuses to attach a thread
// whose affinity includes a polling CPU. The `ustack` program itself is
// this, run without an application.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ustack {

class Runtime;
namespace shim {
class Hub;
}

class Process {
 public:
  using AppMain = std::function<int(shim::Hub& hub, const std::atomic<bool>& stop)>;

  // Parses argv (usage errors before EAL starts), initialises EAL, the port,
  // one stack and one shim lcore per lcore. nullptr on failure: `err` is one
  // line and `status` the exit status (2 usage, 1 runtime); nullptr with an
  // empty `err` and status 0 when --help printed the usage.
  static std::unique_ptr<Process> create(int argc, char** argv, std::string& err, int& status);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Runs the poll loops and `app` (may be empty: only the services run)
  // until SIGINT/SIGTERM, --duration or `app` returns; `app` must return
  // once `stop` is set. Returns the exit status (app's when non-zero).
  int run(AppMain app);

  // nullptr with --shim-threads 0.
  shim::Hub* hub();

  // What followed the second "--" on the command line.
  const std::vector<std::string>& app_args() const { return app_args_; }

 private:
  explicit Process(std::unique_ptr<Runtime> rt);
  std::unique_ptr<Runtime> rt_;
  std::vector<std::string> app_args_;
};

}  // namespace ustack
