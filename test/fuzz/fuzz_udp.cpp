// libFuzzer target: UdpDatagram::parse, UdpRepr::emit, and the feed header
// (services/feed.hpp) that the multicast services read from UDP payloads.
//
// The input is an IP payload as sent from 192.0.2.2 to 192.0.2.1 (the seed
// corpus is made with those addresses, so its checksums hold).
//
// Invariants:
//  - fewer than 8 bytes is `truncated`; with verification off only the
//    length checks refuse (`truncated`, `bad_length`), and verification adds
//    only `bad_checksum`, never for a zero checksum field;
//  - the view is the input cut to the length field, in place; header and
//    payload tile it;
//  - the value re-emits a datagram that parses with its checksum; when the
//    input verified with a checksum, the re-emitted bytes are the input's
//    (a sum of zero is 0xffff on both sides);
//  - the checksum-offload form differs only in the checksum field, and a NIC
//    finishing it produces the software checksum;
//  - FeedHeader::parse of the input (as a payload) accepts exactly: 24 bytes
//    or more, the magic, a header length from 24 to the size; what it accepts
//    re-emits to the same magic, sequence and time; a FeedTracker fed the
//    input's 8-byte words keeps feed = calls and never counts more late than calls.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "services/feed.hpp"
#include "wire/checksum.hpp"
#include "wire/udp.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Ipv4Addr src(192, 0, 2, 2);
  const Ipv4Addr dst(192, 0, 2, 1);
  const Bytes in{data, size};

  // The feed header, on the raw input as a UDP payload.
  {
    using services::FeedHeader;
    const auto h = FeedHeader::parse(in);
    const bool want = size >= services::kFeedHeaderLen && load_be32(in, 0) == services::kFeedMagic &&
                      load_be16(in, FeedHeader::kHeaderLenOff) >= services::kFeedHeaderLen &&
                      load_be16(in, FeedHeader::kHeaderLenOff) <= size;
    require(h.has_value() == want);
    if (h) {
      std::uint8_t b[services::kFeedHeaderLen];
      h->emit(MutBytes{b});
      const auto back = FeedHeader::parse(Bytes{b});
      require(back && back->seq == h->seq && back->send_time_ns == h->send_time_ns);
      require(std::memcmp(b, data, 4) == 0 && std::memcmp(b + 8, data + 8, 16) == 0);
    }
    services::FeedTracker t;
    std::uint64_t calls = 0;
    for (std::size_t off = 0; off + 8 <= size; off += 8, ++calls) t.on_seq(load_be64(in, off));
    require(t.feed() == calls && t.late() <= calls && t.gap_events() <= calls);
  }

  const auto unverified = UdpDatagram::parse(in, src, dst, /*verify_checksum=*/false);
  const auto p = UdpDatagram::parse(in, src, dst);
  if (!unverified) {
    require(unverified.error() == ParseError::truncated || unverified.error() == ParseError::bad_length);
    require(!p && p.error() == unverified.error());
    if (size < kUdpHeaderLen) require(unverified.error() == ParseError::truncated);
    return 0;
  }
  const UdpDatagram& v = *unverified;
  if (!p) {
    require(p.error() == ParseError::bad_checksum);
    require(v.has_checksum());
  }
  if (!v.has_checksum()) require(p.ok());

  const std::size_t len = load_be16(in, UdpDatagram::kLengthOff);
  require(len >= kUdpHeaderLen && len <= size);
  require(v.length() == len);
  require(v.bytes().data() == data && v.bytes().size() == len);
  require(v.header().data() == data && v.header().size() == kUdpHeaderLen);
  require(v.payload().data() == data + kUdpHeaderLen && v.payload().size() == len - kUdpHeaderLen);
  require(v.src_port() == load_be16(in, 0) && v.dst_port() == load_be16(in, 2));
  if (p) require(p->bytes().data() == data && p->bytes().size() == len);

  // Re-emit from the value.
  const UdpRepr r = UdpRepr::from(v);
  const Bytes payload = v.payload();
  std::vector<std::uint8_t> out(UdpRepr::buffer_len(payload.size()));
  r.emit(MutBytes{out}, src, dst, payload);
  if (!payload.empty()) std::memcpy(out.data() + kUdpHeaderLen, payload.data(), payload.size());
  const auto again = UdpDatagram::parse(Bytes{out}, src, dst);
  require(again.ok());
  require(again->has_checksum());
  require(UdpRepr::from(*again) == r);
  require(again->length() == len);
  if (p && v.has_checksum()) require(std::memcmp(out.data(), data, len) == 0);

  // Checksum offload: only the checksum field differs; the NIC's sum over
  // header + payload (field included), zero sent as 0xffff, is the software one.
  std::vector<std::uint8_t> nic(out.size());
  r.emit(MutBytes{nic}, src, dst, payload, /*compute_checksum=*/false);
  if (!payload.empty()) std::memcpy(nic.data() + kUdpHeaderLen, payload.data(), payload.size());
  require(std::memcmp(nic.data(), out.data(), UdpDatagram::kChecksumOff) == 0);
  require(std::memcmp(nic.data() + kUdpHeaderLen, out.data() + kUdpHeaderLen, out.size() - kUdpHeaderLen) == 0);
  std::uint16_t finished = internet_checksum(Bytes{nic});
  if (finished == 0) finished = 0xffff;
  require(finished == load_be16(Bytes{out}, UdpDatagram::kChecksumOff));
  return 0;
}
