#include "wire/tcp.hpp"

#include <algorithm>

namespace ustack::wire {

Result<TcpOptions> TcpOptions::parse(Bytes b) {
  TcpOptions o;
  const std::size_t n = b.size();
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t kind = b[i];
    if (kind == tcp_opt::kEol) break;  // the rest is padding, whatever it holds
    if (kind == tcp_opt::kNop) {
      ++i;
      continue;
    }
    // Every other kind has a length byte that counts kind and length too
    // (RFC 9293 §3.1); check it before reading anything it covers.
    if (n - i < 2) return ParseError::malformed;
    const std::size_t len = b[i + 1];
    if (len < 2 || len > n - i) return ParseError::malformed;
    const std::size_t body = i + 2;
    switch (kind) {
      case tcp_opt::kMss:
        if (len != tcp_opt::kMssLen) return ParseError::malformed;
        o.mss = load_be16(b, body);
        break;
      case tcp_opt::kWindowScale: {
        if (len != tcp_opt::kWindowScaleLen) return ParseError::malformed;
        const std::uint8_t shift = b[body];
        o.wscale_clamped = shift > kTcpMaxWindowScale;
        o.wscale = std::min(shift, kTcpMaxWindowScale);
        break;
      }
      case tcp_opt::kSackPermitted:
        if (len != tcp_opt::kSackPermittedLen) return ParseError::malformed;
        o.sack_permitted = true;
        break;
      case tcp_opt::kSack: {
        const std::size_t blocks = (len - tcp_opt::kSackBaseLen) / tcp_opt::kSackBlockLen;
        if ((len - tcp_opt::kSackBaseLen) % tcp_opt::kSackBlockLen != 0 || blocks == 0 ||
            blocks > kTcpMaxSackBlocks)
          return ParseError::malformed;
        o.sack_blocks = {};
        for (std::size_t k = 0; k < blocks; ++k) {
          const std::size_t off = body + k * tcp_opt::kSackBlockLen;
          o.sack_blocks[k] = SackBlock{SeqNum{load_be32(b, off)}, SeqNum{load_be32(b, off + 4)}};
        }
        o.sack_count = static_cast<std::uint8_t>(blocks);
        break;
      }
      case tcp_opt::kTimestamps:
        if (len != tcp_opt::kTimestampsLen) return ParseError::malformed;
        o.timestamps = TcpTimestamps{load_be32(b, body), load_be32(b, body + 4)};
        break;
      default:
        break;  // unknown kind: skipped by its length
    }
    i += len;
  }
  return o;
}

namespace {

constexpr std::size_t kMssGroupLen = 4;
constexpr std::size_t kTimestampsGroupLen = 12;  // NOP NOP TS, or SACK-permitted TS
constexpr std::size_t kSackPermGroupLen = 4;     // NOP NOP SACK-permitted
constexpr std::size_t kWscaleGroupLen = 4;       // NOP WS
constexpr std::size_t kSackGroupBaseLen = 4;     // NOP NOP kind len, then the blocks

// Everything but the SACK blocks.
std::size_t fixed_options_len(const TcpOptions& o) {
  std::size_t n = 0;
  if (o.mss) n += kMssGroupLen;
  if (o.timestamps) n += kTimestampsGroupLen;
  else if (o.sack_permitted) n += kSackPermGroupLen;
  if (o.wscale) n += kWscaleGroupLen;
  return n;
}
static_assert(kMssGroupLen + kTimestampsGroupLen + kWscaleGroupLen + kSackGroupBaseLen + tcp_opt::kSackBlockLen <=
                  kTcpMaxOptionsLen,
              "every option group plus one SACK block must fit in 40 bytes");

}  // namespace

std::size_t TcpRepr::sack_blocks_emitted() const {
  const std::size_t wanted = std::min<std::size_t>(options.sack_count, kTcpMaxSackBlocks);
  if (wanted == 0) return 0;
  const std::size_t room = kTcpMaxOptionsLen - fixed_options_len(options);  // >= 12, see the static_assert
  return std::min(wanted, (room - kSackGroupBaseLen) / tcp_opt::kSackBlockLen);
}

std::size_t TcpRepr::options_len() const {
  const std::size_t k = sack_blocks_emitted();
  return fixed_options_len(options) + (k == 0 ? 0 : kSackGroupBaseLen + k * tcp_opt::kSackBlockLen);
}

void TcpRepr::emit(MutBytes out, Ipv4Addr src, Ipv4Addr dst, Bytes payload, bool compute_checksum) const {
  // The header is a multiple of 4 bytes, so the payload sum chains at an even offset.
  emit_split(out, src, dst, static_cast<std::uint16_t>(payload.size()),
             compute_checksum ? std::optional<std::uint32_t>{checksum_add(payload)} : std::nullopt);
}

void TcpRepr::emit_split(MutBytes out, Ipv4Addr src, Ipv4Addr dst, std::uint16_t payload_len,
                         std::optional<std::uint32_t> payload_sum) const {
  const std::size_t hl = header_len();
  store_be16(out, TcpSegment::kSrcPortOff, src_port);
  store_be16(out, TcpSegment::kDstPortOff, dst_port);
  store_be32(out, TcpSegment::kSeqOff, seq.raw());
  store_be32(out, TcpSegment::kAckOff, ack.raw());
  store8(out, TcpSegment::kDataOffOff, static_cast<std::uint8_t>((hl / 4) << 4));
  store8(out, TcpSegment::kFlagsOff, flags.bits);
  store_be16(out, TcpSegment::kWindowOff, window);
  store_be16(out, TcpSegment::kChecksumOff, 0);
  store_be16(out, TcpSegment::kUrgentOff, urgent_ptr);

  std::size_t i = TcpSegment::kOptionsOff;
  auto put4 = [&](std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    store8(out, i, a);
    store8(out, i + 1, b);
    store8(out, i + 2, c);
    store8(out, i + 3, d);
    i += 4;
  };
  if (options.mss) {
    store8(out, i, tcp_opt::kMss);
    store8(out, i + 1, tcp_opt::kMssLen);
    store_be16(out, i + 2, *options.mss);
    i += 4;
  }
  if (options.timestamps) {
    if (options.sack_permitted)
      put4(tcp_opt::kSackPermitted, tcp_opt::kSackPermittedLen, tcp_opt::kTimestamps, tcp_opt::kTimestampsLen);
    else
      put4(tcp_opt::kNop, tcp_opt::kNop, tcp_opt::kTimestamps, tcp_opt::kTimestampsLen);
    store_be32(out, i, options.timestamps->tsval);
    store_be32(out, i + 4, options.timestamps->tsecr);
    i += 8;
  } else if (options.sack_permitted) {
    put4(tcp_opt::kNop, tcp_opt::kNop, tcp_opt::kSackPermitted, tcp_opt::kSackPermittedLen);
  }
  if (options.wscale)
    put4(tcp_opt::kNop, tcp_opt::kWindowScale, tcp_opt::kWindowScaleLen,
         std::min(*options.wscale, kTcpMaxWindowScale));
  if (const std::size_t k = sack_blocks_emitted(); k != 0) {
    put4(tcp_opt::kNop, tcp_opt::kNop, tcp_opt::kSack,
         static_cast<std::uint8_t>(tcp_opt::kSackBaseLen + k * tcp_opt::kSackBlockLen));
    for (std::size_t j = 0; j < k; ++j) {
      store_be32(out, i, options.sack_blocks[j].left.raw());
      store_be32(out, i + 4, options.sack_blocks[j].right.raw());
      i += tcp_opt::kSackBlockLen;
    }
  }

  const auto tcp_len = static_cast<std::uint16_t>(hl + payload_len);
  const std::uint32_t ph = pseudo_header_sum(src, dst, ipproto::kTcp, tcp_len);
  if (payload_sum) {
    const std::uint32_t sum = checksum_add(Bytes{out.data(), hl}, checksum_reduce(ph) + checksum_reduce(*payload_sum));
    store_be16(out, TcpSegment::kChecksumOff, checksum_fold(sum));
  } else {
    store_be16(out, TcpSegment::kChecksumOff, static_cast<std::uint16_t>(~checksum_fold(ph)));
  }
}

}  // namespace ustack::wire
