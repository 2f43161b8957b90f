// libFuzzer target: Ipv4Packet::parse, Ipv4Repr::emit, and the RFC 1624
// incremental checksum update on real headers.
//
// Invariants:
//  - a packet accepted with checksum verification is accepted without it,
//    with the same view; the header it accepted verifies;
//  - header_len is 20..60 in steps of 4, total_len lies between header_len
//    and the buffer size, and the views (options, payload) tile the datagram
//    in place;
//  - the value re-emits a 20-byte header that parses to the same value with
//    the same payload;
//  - forwarding-style edits patched with checksum_update16 (TTL decrement,
//    ident change) leave a header that still verifies and equals a full
//    recomputation.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/ipv4.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Bytes in{data, size};
  const auto unverified = Ipv4Packet::parse(in, /*verify_checksum=*/false);
  const auto p = Ipv4Packet::parse(in);
  if (!p) {
    require(p.error() != ParseError::ok);
    // Only the checksum separates the two modes.
    if (unverified) require(p.error() == ParseError::bad_checksum);
    else require(unverified.error() == p.error());
    if (size < kIpv4MinHeaderLen) require(p.error() == ParseError::truncated);
    if (!unverified) return 0;
  }
  const Ipv4Packet& v = *unverified;
  if (p) {
    require(p->bytes().data() == v.bytes().data() && p->bytes().size() == v.bytes().size());
    require(checksum_ok(p->header()));
  }

  const std::size_t hl = v.header_len();
  require(hl >= kIpv4MinHeaderLen && hl <= kIpv4MaxHeaderLen && hl % 4 == 0);
  require(hl == std::size_t{data[0] & 0x0fu} * 4);
  require((data[0] >> 4) == 4);
  require(v.total_len() >= hl && v.total_len() <= size);
  require(v.total_len() == load_be16(in, Ipv4Packet::kTotalLenOff));
  require(v.header().data() == data && v.header().size() == hl);
  require(v.options().data() == data + kIpv4MinHeaderLen && v.options().size() == hl - kIpv4MinHeaderLen);
  require(v.payload().data() == data + hl && v.payload().size() == v.total_len() - hl);
  require(v.frag_offset() % 8 == 0 && v.frag_offset() <= 0x1fff * 8);
  require(v.is_fragment() == (v.more_fragments() || v.frag_offset() != 0));
  (void)v.tos();
  (void)v.ident();
  (void)v.dont_fragment();
  (void)v.ttl();
  (void)v.protocol();
  (void)v.checksum();
  (void)v.src();
  (void)v.dst();

  // Value round trip (options are not carried by the value).
  const Ipv4Repr r = Ipv4Repr::from(v);
  require(r.payload_len == v.payload().size());
  std::vector<std::uint8_t> out(r.buffer_len());
  r.emit(MutBytes{out});
  if (!v.payload().empty())
    std::memcpy(out.data() + r.header_len(), v.payload().data(), v.payload().size());
  const auto again = Ipv4Packet::parse(Bytes{out});
  require(again.ok());
  require(Ipv4Repr::from(*again) == r);
  require(again->header_len() == kIpv4MinHeaderLen);
  require(again->payload().size() == v.payload().size());
  if (!v.payload().empty())
    require(std::memcmp(again->payload().data(), v.payload().data(), v.payload().size()) == 0);
  // The same header with the checksum left to the NIC differs only there.
  std::vector<std::uint8_t> nic(r.header_len());
  r.emit(MutBytes{nic}, /*compute_checksum=*/false);
  require(nic[Ipv4Packet::kChecksumOff] == 0 && nic[Ipv4Packet::kChecksumOff + 1] == 0);
  require(std::memcmp(nic.data(), out.data(), Ipv4Packet::kChecksumOff) == 0);

  // Incremental update on the received header (with its options), as a
  // router or NAT would do it. A version-4 header is never all zero, so
  // the incremental result must equal full recomputation exactly.
  if (p) {
    std::vector<std::uint8_t> h(p->header().begin(), p->header().end());
    const MutBytes hb{h};
    auto patch = [&](std::size_t off, std::uint16_t new_word) {
      const std::uint16_t old_word = load_be16(hb, off);
      const std::uint16_t ck = checksum_update16(load_be16(hb, Ipv4Packet::kChecksumOff), old_word, new_word);
      store_be16(hb, off, new_word);
      store_be16(hb, Ipv4Packet::kChecksumOff, 0);
      const std::uint16_t full = internet_checksum(Bytes{h});
      require(ck == full);
      store_be16(hb, Ipv4Packet::kChecksumOff, ck);
      require(checksum_ok(Bytes{h}));
    };
    const std::uint16_t ttl_proto = load_be16(hb, Ipv4Packet::kTtlOff);
    patch(Ipv4Packet::kTtlOff, static_cast<std::uint16_t>(ttl_proto - 0x0100));  // TTL - 1 (wraps)
    patch(Ipv4Packet::kIdOff, static_cast<std::uint16_t>(~load_be16(hb, Ipv4Packet::kIdOff)));
    const std::uint32_t old_src = load_be32(hb, Ipv4Packet::kSrcOff);
    const std::uint32_t new_src = old_src ^ 0x5a5aa5a5u;
    const std::uint16_t ck32 = checksum_update32(load_be16(hb, Ipv4Packet::kChecksumOff), old_src, new_src);
    store_be32(hb, Ipv4Packet::kSrcOff, new_src);
    store_be16(hb, Ipv4Packet::kChecksumOff, 0);
    require(ck32 == internet_checksum(Bytes{h}));
  }
  return 0;
}
