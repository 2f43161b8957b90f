// What the tcp and udp benches' kernel baselines share: a socket descriptor
// that closes itself, and the error that stops a kernel case (caught by the
// bench, which then prints it as the case's kernel note).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace ustack::bench {

struct KernelError {
  std::string what;
};

// "call: strerror(errno)", for a KernelError after a failed system call.
inline std::string errno_text(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ustack::bench
