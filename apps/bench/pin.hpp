// Pinning the bench's threads: the lcore thread to one CPU, the
// application thread to every other (the shim benches need two CPUs).
#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace ustack::bench {

inline bool pin(unsigned cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

inline bool pin_except(unsigned cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 0; c < n && c < CPU_SETSIZE; ++c)
    if (static_cast<unsigned>(c) != cpu) CPU_SET(static_cast<int>(c), &s);
  return CPU_COUNT(&s) > 0 && pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

}  // namespace ustack::bench
