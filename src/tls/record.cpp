// See record.hpp for the RFC sections.
#include "tls/record.hpp"

namespace ustack::tls {

Result<RecordHeader> parse_record_header(Bytes b) {
  if (b.size() < kRecordHeaderLen) return ParseError::truncated;
  RecordHeader h;
  h.type = static_cast<ContentType>(b[0]);
  h.version = load_be16(b, 1);
  h.length = load_be16(b, 3);
  if (h.length > kMaxCiphertext) return ParseError::bad_length;
  return h;
}

void emit_record_header(Buf& out, ContentType t, std::uint16_t version, std::size_t length) {
  out.push_back(static_cast<std::uint8_t>(t));
  out.push_back(static_cast<std::uint8_t>(version >> 8));
  out.push_back(static_cast<std::uint8_t>(version));
  out.push_back(static_cast<std::uint8_t>(length >> 8));
  out.push_back(static_cast<std::uint8_t>(length));
}

bool RecordProtector::seal(ContentType t, Bytes plain, std::size_t pad, Buf& out) {
  // The sequence number must never wrap (§5.3); in practice the §5.5 limits
  // make the record face update keys long before.
  if (plain.size() > kMaxPlaintext || seq_ == ~std::uint64_t{0}) return false;
  const std::size_t inner = plain.size() + 1 + pad;
  const std::size_t start = out.size();
  emit_record_header(out, ContentType::application_data, kTls12, inner + kTagLen);
  const std::size_t body = out.size();
  out.resize(body + inner + kTagLen, 0);
  std::copy(plain.begin(), plain.end(), out.begin() + static_cast<std::ptrdiff_t>(body));
  out[body + plain.size()] = static_cast<std::uint8_t>(t);
  const Bytes aad(out.data() + start, kRecordHeaderLen);
  const Bytes in(out.data() + body, inner);
  if (!aead_.seal(seq_, aad, in, out.data() + body)) {
    out.resize(start);
    return false;
  }
  ++seq_;
  return true;
}

Status RecordProtector::open(Bytes record, ContentType& t, Buf& plain) {
  if (record.size() < kRecordHeaderLen + kTagLen + 1) return Status::fail(Alert::bad_record_mac, "record too short");
  if (seq_ == ~std::uint64_t{0}) return Status::fail(Alert::internal_error, "sequence number exhausted");
  const Bytes aad = record.first(kRecordHeaderLen);
  const Bytes ct = record.subspan(kRecordHeaderLen);
  plain.resize(ct.size() - kTagLen);
  if (!aead_.open(seq_, aad, ct, plain.data())) return Status::fail(Alert::bad_record_mac, "record authentication failed");
  ++seq_;
  if (plain.size() > kMaxPlaintext + 1) return Status::fail(Alert::record_overflow, "inner plaintext above 2^14 + 1");
  // Padding is zeros after the content type (§5.4): the type is the last non-zero byte.
  std::size_t n = plain.size();
  while (n > 0 && plain[n - 1] == 0) --n;
  if (n == 0) return Status::fail(Alert::unexpected_message, "record with no content type");
  t = static_cast<ContentType>(plain[n - 1]);
  plain.resize(n - 1);
  return Status::success();
}

}  // namespace ustack::tls
