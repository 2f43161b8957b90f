// libFuzzer target: IcmpPacket::parse, IcmpEchoRepr/IcmpErrorRepr::emit,
// IcmpErrorRepr::quote_of.
//
// Invariants:
//  - fewer than 8 bytes is `truncated`; with verification off nothing else
//    is refused; with it on, only `bad_checksum` is added;
//  - an accepted echo (type 0/8, code 0) re-emits byte for byte from its
//    value, and so does any message through IcmpErrorRepr — except that a
//    checksum field of 0xffff may come back as 0x0000, the other one's
//    complement zero (RFC 1071 §2: both verify when the rest sums to -0);
//  - quote_of never exceeds header + 8, kMaxQuote, or the datagram.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/bytes.hpp"
#include "wire/checksum.hpp"
#include "wire/icmp.hpp"
#include "wire/ipv4.hpp"

namespace {
inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

// `out` must equal `in` except for an equivalent checksum representation.
void require_same_message(ustack::Bytes in, const std::vector<std::uint8_t>& out) {
  using ustack::wire::IcmpPacket;
  require(out.size() == in.size());
  const std::size_t ck = IcmpPacket::kChecksumOff;
  require(std::memcmp(out.data(), in.data(), ck) == 0);
  require(std::memcmp(out.data() + ck + 2, in.data() + ck + 2, in.size() - ck - 2) == 0);
  const std::uint16_t a = ustack::load_be16(in, ck);
  const std::uint16_t b = ustack::load_be16(ustack::Bytes{out}, ck);
  require(a == b || (a == 0xffff && b == 0x0000));
  require(ustack::wire::checksum_ok(ustack::Bytes{out}));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ustack;
  using namespace ustack::wire;
  const Bytes in{data, size};
  const auto unverified = IcmpPacket::parse(in, /*verify_checksum=*/false);
  const auto p = IcmpPacket::parse(in);
  if (size < kIcmpHeaderLen) {
    require(!unverified && unverified.error() == ParseError::truncated);
    require(!p && p.error() == ParseError::truncated);
    return 0;
  }
  require(unverified.ok());
  require(p.ok() == checksum_ok(in));
  if (!p) {
    require(p.error() == ParseError::bad_checksum);
    return 0;
  }
  require(p->bytes().data() == data && p->bytes().size() == size);
  require(p->body().data() == data + kIcmpHeaderLen && p->body().size() == size - kIcmpHeaderLen);
  require(p->type() == data[0] && p->code() == data[1]);
  require(p->checksum() == load_be16(in, IcmpPacket::kChecksumOff));
  require(p->rest_of_header() == (std::uint32_t{p->echo_ident()} << 16 | p->echo_seq()));
  const bool err = p->is_error();
  require(!(err && (p->type() == icmp_type::kEchoRequest || p->type() == icmp_type::kEchoReply)));

  const bool echo = (p->type() == icmp_type::kEchoRequest || p->type() == icmp_type::kEchoReply) && p->code() == 0;
  if (echo) {
    const IcmpEchoRepr r{p->type() == icmp_type::kEchoRequest, p->echo_ident(), p->echo_seq(), p->body()};
    require(r.buffer_len() == size);
    std::vector<std::uint8_t> out(r.buffer_len());
    r.emit(MutBytes{out});
    require_same_message(in, out);
    require(IcmpPacket::parse(Bytes{out}).ok());
  }

  // Any message is type, code, a 32-bit word and a body: IcmpErrorRepr can
  // write every one of them (this is how an error is built from its parts).
  {
    const IcmpErrorRepr r{p->type(), p->code(), p->rest_of_header(), p->body()};
    std::vector<std::uint8_t> out(r.buffer_len());
    r.emit(MutBytes{out});
    require_same_message(in, out);
  }

  // What an error about this message's body (taken as an IPv4 datagram)
  // would quote.
  if (const auto ip = Ipv4Packet::parse(p->body(), false)) {
    const Bytes q = IcmpErrorRepr::quote_of(ip->bytes(), ip->header_len());
    const std::size_t expect =
        std::min({ip->header_len() + 8, IcmpErrorRepr::kMaxQuote, ip->bytes().size()});
    require(q.data() == ip->bytes().data() && q.size() == expect);
  }
  return 0;
}
