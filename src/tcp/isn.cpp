// RFC 6528 ISNs: see isn.hpp. Only the secret's source lives here, so the
// hash stays inline on the data path and libcrypto stays off it.
#include "tcp/isn.hpp"

#include <openssl/rand.h>

namespace ustack::tcp {

std::optional<Secret> random_secret() {
  Secret s{};
  if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) return std::nullopt;
  return s;
}

}  // namespace ustack::tcp
