// TLS 1.3 record protection.
//
// Read: RFC 8446 §5.1 (TLSPlaintext), §5.2 (TLSInnerPlaintext, TLSCiphertext,
// additional data = the record header), §5.3 (per-record nonce), §5.4
// (padding), §5.5 (key usage limits).
//
// A RecordProtector is one direction under one traffic secret: it owns the
// AEAD and the 64-bit sequence number, which restarts at 0 for every new key.
// It frames whole records into a caller-supplied buffer, so the TCP face, a
// test and the benchmark drive it identically.
#pragma once

#include <cstdint>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "tls/crypto.hpp"
#include "tls/types.hpp"

namespace ustack::tls {

enum class ContentType : std::uint8_t {
  invalid = 0,
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
};

constexpr std::size_t kRecordHeaderLen = 5;
constexpr std::size_t kMaxPlaintext = 1 << 14;
constexpr std::size_t kMaxCiphertext = kMaxPlaintext + 256;

struct RecordHeader {
  ContentType type = ContentType::invalid;
  std::uint16_t version = 0;
  std::uint16_t length = 0;
};
// truncated: fewer than 5 bytes; bad_length: length above 2^14 + 256.
Result<RecordHeader> parse_record_header(Bytes b);
void emit_record_header(Buf& out, ContentType t, std::uint16_t version, std::size_t length);

class RecordProtector {
 public:
  bool init(const Suite& s, Bytes traffic_secret, bool encrypt) {
    seq_ = 0;
    return aead_.init(s, traffic_secret, encrypt);
  }
  bool ready() const { return aead_.ready(); }
  std::uint64_t seq() const { return seq_; }

  // Appends one protected record carrying `plain` (at most 2^14 bytes) of
  // type `t`, with `pad` zero bytes of padding.
  bool seal(ContentType t, Bytes plain, std::size_t pad, Buf& out);
  // Opens one whole record (header included). On success `plain` holds the
  // content and `t` its real type. Alerts: bad_record_mac (authentication
  // failed), record_overflow (plaintext above 2^14), unexpected_message (no
  // non-zero content type).
  Status open(Bytes record, ContentType& t, Buf& plain);

 private:
  Aead aead_;
  std::uint64_t seq_ = 0;
};

}  // namespace ustack::tls
