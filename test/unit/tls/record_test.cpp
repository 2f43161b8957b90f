// Record protection against RFC 8448 §3's records (AES-128-GCM) and the
// other suites' AEADs against their own vectors (RFC 9001 §A.5 for
// ChaCha20-Poly1305 under TLS 1.3 labels, McGrew-Viega case 14 for AES-256-GCM).
#include <catch2/catch.hpp>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/rfc8448.hpp"
#include "tls/record.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {
const Suite& aes128() { return *find_suite(TLS_AES_128_GCM_SHA256); }
Buf cat(std::initializer_list<const char*> parts) {
  Buf out;
  for (auto p : parts) {
    const Buf b = hex(p);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}
}  // namespace

TEST_CASE("seal reproduces RFC 8448 §3's protected records", "[tls][record]") {
  RecordProtector server_hs, client_hs, server_ap, client_ap;
  REQUIRE(server_hs.init(aes128(), hex(rfc8448::s_hs_traffic), true));
  REQUIRE(client_hs.init(aes128(), hex(rfc8448::c_hs_traffic), true));
  REQUIRE(server_ap.init(aes128(), hex(rfc8448::s_ap_traffic), true));
  REQUIRE(client_ap.init(aes128(), hex(rfc8448::c_ap_traffic), true));

  Buf out;
  const Buf flight = cat({rfc8448::encrypted_extensions, rfc8448::certificate, rfc8448::certificate_verify,
                          rfc8448::server_finished});
  REQUIRE(server_hs.seal(ContentType::handshake, flight, 0, out));
  CHECK(to_hex(out) == to_hex(hex(rfc8448::server_flight_record)));

  out.clear();
  REQUIRE(client_hs.seal(ContentType::handshake, hex(rfc8448::client_finished), 0, out));
  CHECK(out == hex(rfc8448::client_finished_record));

  out.clear();
  REQUIRE(server_ap.seal(ContentType::handshake, hex(rfc8448::new_session_ticket), 0, out));
  CHECK(out == hex(rfc8448::new_session_ticket_record));
  out.clear();
  REQUIRE(client_ap.seal(ContentType::application_data, hex(rfc8448::application_data), 0, out));
  CHECK(out == hex(rfc8448::client_application_record));
  out.clear();
  REQUIRE(server_ap.seal(ContentType::application_data, hex(rfc8448::application_data), 0, out));
  CHECK(out == hex(rfc8448::server_application_record));
  out.clear();
  REQUIRE(client_ap.seal(ContentType::alert, hex("0100"), 0, out));
  CHECK(out == hex(rfc8448::client_alert_record));
  out.clear();
  REQUIRE(server_ap.seal(ContentType::alert, hex("0100"), 0, out));
  CHECK(out == hex(rfc8448::server_alert_record));
}

TEST_CASE("open recovers RFC 8448 §3's records and refuses tampering", "[tls][record]") {
  RecordProtector rd;
  REQUIRE(rd.init(aes128(), hex(rfc8448::s_hs_traffic), false));
  ContentType t;
  Buf plain;
  REQUIRE(rd.open(hex(rfc8448::server_flight_record), t, plain).ok);
  CHECK(t == ContentType::handshake);
  CHECK(plain == cat({rfc8448::encrypted_extensions, rfc8448::certificate, rfc8448::certificate_verify,
                      rfc8448::server_finished}));
  CHECK(rd.seq() == 1);

  RecordProtector rd2;
  REQUIRE(rd2.init(aes128(), hex(rfc8448::c_hs_traffic), false));
  Buf rec = hex(rfc8448::client_finished_record);
  rec[10] ^= 0x80;
  auto st = rd2.open(rec, t, plain);
  CHECK_FALSE(st.ok);
  CHECK(st.alert == Alert::bad_record_mac);
  rec = hex(rfc8448::client_finished_record);
  rec[2] = 0x01;  // the header is authenticated (additional data)
  CHECK(rd2.open(rec, t, plain).alert == Alert::bad_record_mac);
}

TEST_CASE("padding is stripped; all-zero plaintext is unexpected_message", "[tls][record]") {
  for (auto id : {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256}) {
    const Suite& s = *find_suite(id);
    const Buf secret(s.hash_len, 0x42);
    RecordProtector w, r;
    REQUIRE(w.init(s, secret, true));
    REQUIRE(r.init(s, secret, false));
    Buf out;
    REQUIRE(w.seal(ContentType::application_data, hex("68656c6c6f"), 100, out));
    CHECK(out.size() == 5 + 5 + 1 + 100 + 16);
    ContentType t;
    Buf plain;
    REQUIRE(r.open(out, t, plain).ok);
    CHECK(t == ContentType::application_data);
    CHECK(plain == hex("68656c6c6f"));
    // An inner plaintext of only zeros has no content type.
    out.clear();
    REQUIRE(w.seal(ContentType::invalid, {}, 3, out));
    CHECK(r.open(out, t, plain).alert == Alert::unexpected_message);
    // Over 2^14 + 1 bytes of inner plaintext.
    Buf big(kMaxPlaintext, 1);
    out.clear();
    REQUIRE(w.seal(ContentType::application_data, big, 1, out));
    CHECK(r.open(out, t, plain).alert == Alert::record_overflow);
    CHECK_FALSE(w.seal(ContentType::application_data, Buf(kMaxPlaintext + 1), 0, out));
  }
}

TEST_CASE("ChaCha20-Poly1305: RFC 9001 §A.5 payload under quic labels", "[tls][record]") {
  const Suite& s = *find_suite(TLS_CHACHA20_POLY1305_SHA256);
  const Buf secret = hex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
  const Secret key = hkdf_expand_label(s, secret, "quic key", {}, 32);
  const Secret iv = hkdf_expand_label(s, secret, "quic iv", {}, 12);
  CHECK(to_hex(vec(key.bytes())) == "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8");
  CHECK(to_hex(vec(iv.bytes())) == "e0459b3474bdd0e44a41c144");
  Aead a;
  REQUIRE(a.init_raw(s, key.bytes(), iv.bytes(), true));
  Buf out(1 + kTagLen);
  REQUIRE(a.seal(654360564, hex("4200bff4"), hex("01"), out.data()));
  CHECK(to_hex(out) == "655e5cd55c41f69080575d7999c25a5bfb");
}

TEST_CASE("AES-256-GCM: McGrew-Viega test case 14", "[tls][record]") {
  const Suite& s = *find_suite(TLS_AES_256_GCM_SHA384);
  Aead a;
  REQUIRE(a.init_raw(s, Buf(32, 0), Buf(12, 0), true));
  Buf out(16 + kTagLen);
  REQUIRE(a.seal(0, {}, Buf(16, 0), out.data()));
  CHECK(to_hex(out) == "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
  Aead d;
  REQUIRE(d.init_raw(s, Buf(32, 0), Buf(12, 0), false));
  Buf plain(16);
  CHECK(d.open(0, {}, out, plain.data()));
  CHECK(plain == Buf(16, 0));
}

TEST_CASE("record header parse", "[tls][record]") {
  CHECK(parse_record_header(hex("16 0303")).error() == ParseError::truncated);
  CHECK(parse_record_header(hex("17 0303 4101")).error() == ParseError::bad_length);
  auto h = parse_record_header(hex("17 0303 4100"));
  REQUIRE(h.ok());
  CHECK(h->type == ContentType::application_data);
  CHECK(h->length == 0x4100);
}
