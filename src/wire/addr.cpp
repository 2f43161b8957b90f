#include "ustack/addr.hpp"

#include <charconv>
#include <cstdio>

namespace ustack {

namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<MacAddr> MacAddr::parse(std::string_view s) {
  if (s.size() != 17 || (s[2] != ':' && s[2] != '-')) return std::nullopt;
  MacAddr m;
  for (std::size_t i = 0; i < 6; ++i) {
    const int hi = hexval(s[i * 3]);
    const int lo = hexval(s[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && s[i * 3 + 2] != s[2]) return std::nullopt;  // one separator throughout
    m.b[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return m;
}

std::string MacAddr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return buf;
}

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view s) {
  std::uint32_t v = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    unsigned octet = 0;
    auto [q, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc{} || octet > 255 || q - p > 3) return std::nullopt;
    if (q - p > 1 && *p == '0') return std::nullopt;  // no leading zeros (octal ambiguity)
    p = q;
    v = v << 8 | octet;
  }
  if (p != end) return std::nullopt;
  return Ipv4Addr{v};
}

std::string Ipv4Addr::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  return buf;
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = Ipv4Addr::parse(s.substr(0, slash));
  if (!a) return std::nullopt;
  const auto rest = s.substr(slash + 1);
  unsigned len = 0;
  auto [q, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
  if (rest.empty() || ec != std::errc{} || q != rest.data() + rest.size() || len > 32) return std::nullopt;
  if (rest.size() > 1 && rest[0] == '0') return std::nullopt;  // "/08": no leading zeros
  return Ipv4Cidr{*a, static_cast<std::uint8_t>(len)};
}

std::string Ipv4Cidr::to_string() const { return addr.to_string() + "/" + std::to_string(prefix_len); }

}  // namespace ustack
