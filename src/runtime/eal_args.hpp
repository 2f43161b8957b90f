// EAL arguments with defaults for the embedded case: on a machine with no
// hugepages and no PCI devices, only the device needs naming.
//
// Rules (each applies only when the user did not say otherwise):
//   - none of --no-huge, -m, --socket-mem, --huge-dir, and no free hugepages:
//       add --no-huge -m 512
//   - a --vdev and none of -a/--allow/-b/--block/--no-pci: add --no-pci
//   - --no-huge (given or added) and no --no-shconf/--in-memory: add --no-shconf
//   - none of -l/-c/--lcores: add -l <first CPU this process may run on>
//     (the stack runs one poll loop per lcore; DPDK's default is every CPU)
#pragma once

#include <string>
#include <vector>

namespace ustack {

struct EalEnvironment {
  unsigned long free_hugepages = 0;  // summed over all page sizes
  int first_cpu = 0;                 // first CPU in the affinity mask
};

// Reads /sys/kernel/mm/hugepages and the affinity mask.
EalEnvironment probe_eal_environment();

// `user` starts with argv[0]. Returns the arguments to hand to rte_eal_init.
std::vector<std::string> effective_eal_args(const std::vector<std::string>& user, const EalEnvironment& env);

// One line, shell-like (for printing).
std::string join_args(const std::vector<std::string>& args);

}  // namespace ustack
