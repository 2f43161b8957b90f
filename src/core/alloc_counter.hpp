// Counts heap allocations made by the calling thread.
//
// Linking src/core/alloc_counter.cpp into a program interposes malloc,
// calloc, realloc, aligned_alloc, posix_memalign and memalign (operator new
// goes through malloc), forwarding to glibc's implementation. It is linked
// only into ustack-bench and the allocation tests: "no heap allocation on the
// data path" is a measured property, not a comment.
#pragma once

#include <cstdint>

namespace ustack {

// Allocations made by this thread since it started.
std::uint64_t thread_alloc_count();

}  // namespace ustack
