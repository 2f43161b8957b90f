// libFuzzer target: TcpSegment::parse, TcpOptions::parse, TcpRepr::emit.
//
// The input is a TCP segment as sent from 192.0.2.2 to 192.0.2.1 (the seed
// corpus is made with those addresses, so its checksums hold).
//
// Invariants:
//  - fewer than 20 bytes is `truncated`; with verification off only the
//    length checks refuse, and verification adds only `bad_checksum`;
//  - header_len is 20..60 in steps of 4 and equals the data offset; the
//    views (options, payload) tile the segment in place; SEG.LEN adds SYN
//    and FIN to the payload;
//  - the options parser reads nothing outside the options area: it is run
//    on an exactly-sized heap copy (so ASan sees any overread) and on the
//    whole input, and it either succeeds with values in range or says
//    `malformed`;
//  - the value re-emits a header that parses, with the checksum, to the same
//    value (minus SACK blocks that no longer fit and the clamped flag); the
//    checksum-offload form differs only in the checksum field, and a NIC
//    finishing it produces the software checksum.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "core/seq.hpp"
#include "wire/checksum.hpp"
#include "wire/tcp.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

void check_options(const ustack::Result<ustack::wire::TcpOptions>& o) {
  using namespace ustack::wire;
  if (!o) {
    require(o.error() == ustack::ParseError::malformed);
    return;
  }
  require(o->sack_count <= kTcpMaxSackBlocks);
  require(o->sacks().size() == o->sack_count);
  for (std::size_t k = o->sack_count; k < kTcpMaxSackBlocks; ++k) require(o->sack_blocks[k] == SackBlock{});
  if (o->wscale) require(*o->wscale <= kTcpMaxWindowScale);
  if (o->wscale_clamped) require(o->wscale && *o->wscale == kTcpMaxWindowScale);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Ipv4Addr src(192, 0, 2, 2);
  const Ipv4Addr dst(192, 0, 2, 1);
  const Bytes in{data, size};

  // The options parser on arbitrary bytes.
  check_options(TcpOptions::parse(in));

  const auto unverified = TcpSegment::parse(in, src, dst, /*verify_checksum=*/false);
  const auto p = TcpSegment::parse(in, src, dst);
  if (!p) {
    require(p.error() != ParseError::ok);
    if (unverified) require(p.error() == ParseError::bad_checksum);
    else require(unverified.error() == p.error());
    if (size < kTcpMinHeaderLen) require(p.error() == ParseError::truncated);
    if (!unverified) return 0;
  }
  const TcpSegment& v = *unverified;
  if (p) require(p->bytes().data() == v.bytes().data() && p->bytes().size() == v.bytes().size());

  const std::size_t hl = v.header_len();
  require(hl >= kTcpMinHeaderLen && hl <= kTcpMaxHeaderLen && hl % 4 == 0);
  require(hl == static_cast<std::size_t>(data[TcpSegment::kDataOffOff] >> 4) * 4);
  require(v.data_offset() * 4u == hl);
  require(v.bytes().data() == data && v.bytes().size() == size);
  require(v.header().data() == data && v.header().size() == hl);
  require(v.options().data() == data + kTcpMinHeaderLen && v.options().size() == hl - kTcpMinHeaderLen);
  require(v.payload().data() == data + hl && v.payload().size() == size - hl);
  const TcpFlags f = v.flags();
  require(v.seg_len() == v.payload().size() + (f.syn() ? 1u : 0u) + (f.fin() ? 1u : 0u));
  require(v.reserved() < 16);
  (void)v.checksum();

  // Options: an exactly-sized copy, so reading past the area is an ASan error
  // rather than a read of the payload; the in-place parse must agree.
  const std::vector<std::uint8_t> opt_copy(v.options().begin(), v.options().end());
  const auto o = TcpOptions::parse(Bytes{opt_copy});
  check_options(o);
  const auto o_in_place = TcpOptions::parse(v.options());
  require(o.ok() == o_in_place.ok());
  if (o) require(*o == *o_in_place);

  // Re-emit the value (no options when they were malformed).
  const TcpRepr r = TcpRepr::from(v, o ? *o : TcpOptions{});
  const std::size_t new_hl = r.header_len();
  require(new_hl >= kTcpMinHeaderLen && new_hl <= kTcpMaxHeaderLen && new_hl % 4 == 0);
  require(r.sack_blocks_emitted() <= r.options.sack_count);
  const Bytes payload = v.payload();
  if (new_hl + payload.size() > kTcpMaxSegmentLen) return 0;
  std::vector<std::uint8_t> out(new_hl + payload.size());
  r.emit(MutBytes{out}, src, dst, payload);
  if (!payload.empty()) std::memcpy(out.data() + new_hl, payload.data(), payload.size());
  const auto again = TcpSegment::parse(Bytes{out}, src, dst);
  require(again.ok());
  require(again->header_len() == new_hl);
  require(again->payload().size() == payload.size());
  if (!payload.empty()) require(std::memcmp(again->payload().data(), payload.data(), payload.size()) == 0);
  const auto o2 = TcpOptions::parse(again->options());
  require(o2.ok());
  TcpRepr expect = r;
  expect.options.wscale_clamped = false;
  expect.options.sack_count = static_cast<std::uint8_t>(r.sack_blocks_emitted());
  for (std::size_t k = expect.options.sack_count; k < kTcpMaxSackBlocks; ++k)
    expect.options.sack_blocks[k] = SackBlock{};
  require(TcpRepr::from(*again, *o2) == expect);
  // Emitting the re-parsed value again is a fixed point, byte for byte.
  std::vector<std::uint8_t> out2(new_hl);
  TcpRepr::from(*again, *o2).emit(MutBytes{out2}, src, dst, payload);
  require(std::memcmp(out2.data(), out.data(), new_hl) == 0);

  // Checksum offload: only the checksum field differs, and the NIC's sum
  // over header + payload (field included) is the software checksum.
  std::vector<std::uint8_t> nic(out.size());
  r.emit(MutBytes{nic}, src, dst, payload, /*compute_checksum=*/false);
  if (!payload.empty()) std::memcpy(nic.data() + new_hl, payload.data(), payload.size());
  require(std::memcmp(nic.data(), out.data(), TcpSegment::kChecksumOff) == 0);
  require(std::memcmp(nic.data() + TcpSegment::kUrgentOff, out.data() + TcpSegment::kUrgentOff,
                      out.size() - TcpSegment::kUrgentOff) == 0);
  require(internet_checksum(Bytes{nic}) == load_be16(Bytes{out}, TcpSegment::kChecksumOff));
  return 0;
}
