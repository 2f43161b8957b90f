// Hex literals for golden bytes: whitespace is ignored so RFC dumps paste as-is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ustack::tls::test {

inline std::vector<std::uint8_t> hex(std::string_view s) {
  std::vector<std::uint8_t> out;
  int hi = -1;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

inline std::string to_hex(const std::vector<std::uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s.push_back(d[x >> 4]);
    s.push_back(d[x & 15]);
  }
  return s;
}

template <class T>
std::vector<std::uint8_t> vec(const T& span) {
  return std::vector<std::uint8_t>(span.begin(), span.end());
}

}  // namespace ustack::tls::test
