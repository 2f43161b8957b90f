#include "shim/hub.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace ustack::shim {

Hub::Hub(std::vector<ShimLcore*> lcores, std::vector<int> polling_cpus)
    : lcores_(std::move(lcores)), polling_cpus_(std::move(polling_cpus)) {
  channels_ = lcores_.empty() ? 0 : lcores_[0]->channel_count();
  for (auto* l : lcores_) channels_ = std::min(channels_, l->channel_count());
  claimed_.reset(new std::atomic<bool>[channels_]);
  for (std::uint32_t i = 0; i < channels_; ++i) claimed_[i].store(false);
}

int Hub::claim(std::string& err) {
  if (!polling_cpus_.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
      std::string bad;
      for (int cpu : polling_cpus_)
        if (cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set)) bad += (bad.empty() ? "" : ",") + std::to_string(cpu);
      if (!bad.empty()) {
        err = "shim thread may run on polling lcore CPU(s) " + bad +
              ": pin it to other CPUs (pthread_setaffinity_np) or give ustack different lcores";
        return -1;
      }
    }
  }
  for (std::uint32_t i = 0; i < channels_; ++i) {
    bool expect = false;
    if (claimed_[i].compare_exchange_strong(expect, true)) {
      for (auto* l : lcores_) l->channel(i).active.store(true, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  err = "every shim channel is taken (" + std::to_string(channels_) + " threads attached)";
  return -1;
}

}  // namespace ustack::shim
