// A parse result: a value or the reason it was refused.
//
// A bad packet is data, not an exception: parsers return one of these and the
// caller turns the error kind into a counted drop reason.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace ustack {

enum class ParseError : std::uint8_t {
  ok = 0,
  truncated,     // fewer bytes than the header or a length field says
  malformed,     // a field has a value the format forbids
  bad_checksum,  // checksum verification failed
  unsupported,   // well-formed but a variant we do not handle
  bad_version,   // a version field we do not speak (IPv4 version != 4)
  bad_header_len,  // a header length field out of range (IHL < 5, TCP offset < 5)
  bad_length,    // a total/datagram length field inconsistent with the buffer
};

constexpr std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::ok: return "ok";
    case ParseError::truncated: return "truncated";
    case ParseError::malformed: return "malformed";
    case ParseError::bad_checksum: return "bad_checksum";
    case ParseError::unsupported: return "unsupported";
    case ParseError::bad_version: return "bad_version";
    case ParseError::bad_header_len: return "bad_header_len";
    case ParseError::bad_length: return "bad_length";
  }
  return "unknown";
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : value_(std::move(v)), err_(ParseError::ok) {}  // NOLINT: implicit by design
  Result(ParseError e) : value_(), err_(e) {}                   // NOLINT: implicit by design

  bool ok() const { return err_ == ParseError::ok; }
  explicit operator bool() const { return ok(); }
  ParseError error() const { return err_; }
  const T& value() const { return value_; }
  T& value() { return value_; }
  const T* operator->() const { return &value_; }
  const T& operator*() const { return value_; }

 private:
  T value_;
  ParseError err_;
};

}  // namespace ustack
