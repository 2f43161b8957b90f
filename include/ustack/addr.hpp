// Address value types shared by the public API and the wire layer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ustack {

struct MacAddr {
  std::array<std::uint8_t, 6> b{};

  static constexpr MacAddr broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_multicast() const { return (b[0] & 0x01) != 0; }
  constexpr bool is_zero() const { return *this == MacAddr{}; }
  constexpr bool operator==(const MacAddr&) const = default;

  // "aa:bb:cc:dd:ee:ff" (also accepts '-'); nullopt when malformed.
  static std::optional<MacAddr> parse(std::string_view s);
  std::string to_string() const;
};

// An IPv4 address held in host byte order; the wire layer converts.
struct Ipv4Addr {
  std::uint32_t v = 0;

  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(std::uint32_t host_order) : v(host_order) {}
  constexpr Ipv4Addr(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
      : v((std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d) {}

  constexpr bool is_unspecified() const { return v == 0; }
  constexpr bool is_limited_broadcast() const { return v == 0xffffffffu; }
  constexpr bool is_multicast() const { return (v >> 28) == 0xe; }
  constexpr bool is_loopback() const { return (v >> 24) == 127; }
  constexpr auto operator<=>(const Ipv4Addr&) const = default;

  // Dotted quad; nullopt when malformed.
  static std::optional<Ipv4Addr> parse(std::string_view s);
  std::string to_string() const;
};

// An address with its prefix length: "192.0.2.1/24".
struct Ipv4Cidr {
  Ipv4Addr addr;
  std::uint8_t prefix_len = 32;

  constexpr std::uint32_t mask() const {
    return prefix_len == 0 ? 0u : ~std::uint32_t{0} << (32 - prefix_len);
  }
  constexpr bool contains(Ipv4Addr a) const { return (a.v & mask()) == (addr.v & mask()); }
  constexpr Ipv4Addr network() const { return Ipv4Addr{addr.v & mask()}; }
  constexpr Ipv4Addr broadcast() const { return Ipv4Addr{addr.v | ~mask()}; }

  static std::optional<Ipv4Cidr> parse(std::string_view s);
  std::string to_string() const;
};

}  // namespace ustack
