// ustack's feed header: what `ustack --mcast-send` puts at the front of every
// datagram, what `--join` checks for gaps, and what the benchmarks and the
// interop tests (Python's struct.pack("!IBBHQQ", ...)) speak.
//
//   offset  size  field
//   0       4     magic 0x55535446 ("USTF")
//   4       1     version (1)
//   5       1     flags (0; receivers ignore them)
//   6       2     header length in bytes (24; receivers skip what they do not know)
//   8       8     sequence number: 0 for a publisher's first datagram, +1 per datagram
//   16      8     send time: ns since the Unix epoch, read when the datagram was built
//
// All fields big-endian. After the header the payload is free (the publisher
// fills it with the TCP test pattern, services/pattern.hpp, from offset 0 of
// the datagram's payload, so corruption anywhere shows). A datagram shorter
// than the header, with another magic or a header length under 24 is "not a
// feed datagram" and counted as such; it never breaks the gap count.
#pragma once

#include <cstdint>
#include <optional>

#include "core/bytes.hpp"

namespace ustack::services {

inline constexpr std::uint32_t kFeedMagic = 0x55535446;
inline constexpr std::uint8_t kFeedVersion = 1;
inline constexpr std::size_t kFeedHeaderLen = 24;

struct FeedHeader {
  static constexpr std::size_t kMagicOff = 0;
  static constexpr std::size_t kVersionOff = 4;
  static constexpr std::size_t kFlagsOff = 5;
  static constexpr std::size_t kHeaderLenOff = 6;
  static constexpr std::size_t kSeqOff = 8;
  static constexpr std::size_t kTimeOff = 16;

  std::uint64_t seq = 0;
  std::uint64_t send_time_ns = 0;  // Unix epoch

  // nullopt when `b` is not a feed datagram.
  static std::optional<FeedHeader> parse(Bytes b) {
    if (b.size() < kFeedHeaderLen || load_be32(b, kMagicOff) != kFeedMagic) return std::nullopt;
    const std::uint16_t hlen = load_be16(b, kHeaderLenOff);
    if (hlen < kFeedHeaderLen || hlen > b.size()) return std::nullopt;
    return FeedHeader{load_be64(b, kSeqOff), load_be64(b, kTimeOff)};
  }
  // Writes the 24 bytes at the front of `b` (at least that long).
  void emit(MutBytes b) const {
    store_be32(b, kMagicOff, kFeedMagic);
    b[kVersionOff] = kFeedVersion;
    b[kFlagsOff] = 0;
    store_be16(b, kHeaderLenOff, kFeedHeaderLen);
    store_be64(b, kSeqOff, seq);
    store_be64(b, kTimeOff, send_time_ns);
  }
};

// The receiver's view of one feed: gaps and late datagrams from the
// sequence numbers. A datagram above the next expected one opens a gap of
// the numbers skipped; one below it (a reordered or duplicated datagram,
// or a publisher that restarted) is "late" and does not move the
// expectation back, so a restart shows once as late and then counts again.
class FeedTracker {
 public:
  void on_seq(std::uint64_t seq) {
    ++feed_;
    if (!started_) {
      started_ = true;
      next_ = seq + 1;
      return;
    }
    if (seq == next_) {
      ++next_;
    } else if (seq > next_) {
      gaps_ += seq - next_;
      ++gap_events_;
      next_ = seq + 1;
    } else {
      ++late_;
    }
  }
  std::uint64_t feed() const { return feed_; }          // feed datagrams seen
  std::uint64_t missing() const { return gaps_; }       // sequence numbers skipped
  std::uint64_t gap_events() const { return gap_events_; }
  std::uint64_t late() const { return late_; }
  std::optional<std::uint64_t> next() const { return started_ ? std::optional<std::uint64_t>{next_} : std::nullopt; }

 private:
  bool started_ = false;
  std::uint64_t next_ = 0;
  std::uint64_t feed_ = 0, gaps_ = 0, gap_events_ = 0, late_ = 0;
};

}  // namespace ustack::services
