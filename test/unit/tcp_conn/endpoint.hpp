// A test application on a TcpLayer: sends `to_send` bytes of a deterministic
// pattern, half-closes, reads everything until the peer's FIN and checks
// every byte against the pattern, then closes.
#pragma once

#include <array>
#include <cstdint>

#include "tcp/tcp_layer.hpp"

namespace ustack::test {

// Byte i of the stream (a cheap mix, so a shifted or repeated chunk shows).
inline std::uint8_t pattern_byte(std::uint64_t i, std::uint8_t salt) {
  std::uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + salt;
  x ^= x >> 29;
  return static_cast<std::uint8_t>((x >> (8 * (i & 7))) ^ i);
}

struct Endpoint final : tcp::TcpHandler {
  explicit Endpoint(std::uint64_t send_bytes = 0, std::uint8_t send_salt = 1, std::uint8_t recv_salt = 2)
      : to_send(send_bytes), salt_out(send_salt), salt_in(recv_salt) {}

  TcpConnId conn;
  std::uint64_t to_send;
  std::uint8_t salt_out, salt_in;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a of what arrived
  bool connected = false, eof = false, closed = false, shut = false;
  bool close_on_eof = true;
  bool zero_copy_read = false;
  TcpError error = TcpError::none;
  int accepts = 0;

  void on_accept(tcp::TcpLayer& t, TcpListenerId, TcpConnId c, TimeNs now) override {
    ++accepts;
    conn = c;
    connected = true;
    pump(t, now);
  }
  void on_connected(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    conn = c;
    connected = true;
    pump(t, now);
  }
  void on_writable(tcp::TcpLayer& t, TcpConnId, TimeNs now) override { pump(t, now); }
  void on_readable(tcp::TcpLayer& t, TcpConnId c, TimeNs now) override {
    std::array<std::uint8_t, 4096> buf;
    for (;;) {
      std::size_t n;
      if (zero_copy_read) {
        Packet p = t.read_zero_copy(c, now);
        if (!p) break;
        n = p.len();
        consume(Bytes{p.data()}.first(n));
      } else {
        n = t.read(c, buf, now);
        if (n == 0) break;
        consume(Bytes{buf}.first(n));
      }
    }
    if (t.peer_closed(c) && !eof) {
      eof = true;
      if (close_on_eof && shut) do_close(t, now);
    }
  }
  void on_closed(tcp::TcpLayer&, TcpConnId, TcpError err, TimeNs) override {
    closed = true;
    error = err;
  }
  // close() ends the handle: no on_closed follows, so note it here.
  void do_close(tcp::TcpLayer& t, TimeNs now) {
    t.close(conn, now);
    closed = true;
  }
  void consume(Bytes b) {
    for (std::uint8_t v : b) {
      if (v != pattern_byte(received, salt_in)) ++mismatches;
      hash = (hash ^ v) * 1099511628211ull;
      ++received;
    }
  }
  void pump(tcp::TcpLayer& t, TimeNs now) {
    std::array<std::uint8_t, 16384> buf;
    while (sent < to_send) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to_send - sent));
      for (std::size_t i = 0; i < want; ++i) buf[i] = pattern_byte(sent + i, salt_out);
      const std::size_t n = t.send(conn, Bytes{buf}.first(want), now);
      sent += n;
      if (n < want) return;
    }
    if (!shut) {
      shut = true;
      t.shutdown(conn, now);
      if (eof && close_on_eof) do_close(t, now);
    }
  }
};

inline std::uint64_t pattern_hash(std::uint64_t n, std::uint8_t salt) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint64_t i = 0; i < n; ++i) h = (h ^ pattern_byte(i, salt)) * 1099511628211ull;
  return h;
}

}  // namespace ustack::test
