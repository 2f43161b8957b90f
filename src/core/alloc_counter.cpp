#include "core/alloc_counter.hpp"

#include <cstddef>

// glibc's own entry points, which the interposers forward to.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
// Initial-exec TLS in the executable: reading it never allocates.
thread_local std::uint64_t t_allocs = 0;
}  // namespace

namespace ustack {
std::uint64_t thread_alloc_count() { return t_allocs; }
}  // namespace ustack

extern "C" {

void* malloc(std::size_t n) {
  ++t_allocs;
  return __libc_malloc(n);
}

void* calloc(std::size_t n, std::size_t sz) {
  ++t_allocs;
  return __libc_calloc(n, sz);
}

void* realloc(void* p, std::size_t n) {
  ++t_allocs;
  return __libc_realloc(p, n);
}

void free(void* p) { __libc_free(p); }

void* memalign(std::size_t align, std::size_t n) {
  ++t_allocs;
  return __libc_memalign(align, n);
}

void* aligned_alloc(std::size_t align, std::size_t n) {
  ++t_allocs;
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, std::size_t align, std::size_t n) {
  ++t_allocs;
  void* p = __libc_memalign(align, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}

}  // extern "C"
