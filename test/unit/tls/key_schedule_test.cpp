// The key schedule against every intermediate value of RFC 8448 §3, and the
// primitives under it against their own standards' vectors.
#include <catch2/catch.hpp>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/rfc8448.hpp"
#include "tls/key_schedule.hpp"
#include "tls/messages.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {
std::string H(const Secret& s) { return to_hex(vec(s.bytes())); }
std::string H(const char* s) { return to_hex(hex(s)); }
}  // namespace

TEST_CASE("X25519 shared secret: RFC 8448 §3", "[tls][crypto]") {
  auto c = KeyShare::from_x25519_private(hex(rfc8448::client_x25519_private));
  auto s = KeyShare::from_x25519_private(hex(rfc8448::server_x25519_private));
  REQUIRE(c);
  REQUIRE(s);
  CHECK(c->public_bytes() == hex(rfc8448::client_x25519_public));
  CHECK(s->public_bytes() == hex(rfc8448::server_x25519_public));
  auto z1 = c->derive(s->public_bytes());
  auto z2 = s->derive(c->public_bytes());
  REQUIRE(z1);
  REQUIRE(z2);
  CHECK(H(*z1) == H(rfc8448::ecdhe));
  CHECK(*z1 == *z2);
  // A low-order point gives an all-zero secret: refused (RFC 8446 §7.4.2).
  CHECK_FALSE(c->derive(Buf(32, 0)));
  CHECK_FALSE(c->derive(Buf(31, 1)));
}

TEST_CASE("P-256 shares agree; malformed points are refused", "[tls][crypto]") {
  auto a = KeyShare::generate(group::secp256r1);
  auto b = KeyShare::generate(group::secp256r1);
  REQUIRE(a);
  REQUIRE(b);
  const Buf pa = a->public_bytes();
  REQUIRE(pa.size() == 65);
  CHECK(pa[0] == 4);
  auto z1 = a->derive(b->public_bytes());
  auto z2 = b->derive(pa);
  REQUIRE(z1);
  REQUIRE(z2);
  CHECK(z1->size() == 32);
  CHECK(*z1 == *z2);
  Buf bad = pa;
  bad[64] ^= 1;  // off the curve
  CHECK_FALSE(b->derive(bad));
  Buf compressed(pa.begin(), pa.begin() + 33);
  compressed[0] = 2;
  CHECK_FALSE(b->derive(compressed));
}

TEST_CASE("key schedule: RFC 8448 §3 simple 1-RTT", "[tls][key_schedule]") {
  const Suite& s = *find_suite(TLS_AES_128_GCM_SHA256);
  KeySchedule ks;
  ks.start(s, {});
  CHECK(H(ks.current()) == H(rfc8448::early_secret));
  CHECK(H(derive_secret(s, ks.current().bytes(), "derived", hash(s, {}).bytes())) == H(rfc8448::handshake_derived));
  ks.to_handshake(hex(rfc8448::ecdhe));
  CHECK(H(ks.current()) == H(rfc8448::handshake_secret));

  Transcript t;
  t.add(hex(rfc8448::client_hello));
  t.add(hex(rfc8448::server_hello));
  t.set_suite(s);
  CHECK(H(t.current()) == H(rfc8448::hello_hash));
  const Secret chs = ks.derive(label::c_hs_traffic, t.current().bytes());
  const Secret shs = ks.derive(label::s_hs_traffic, t.current().bytes());
  CHECK(H(chs) == H(rfc8448::c_hs_traffic));
  CHECK(H(shs) == H(rfc8448::s_hs_traffic));
  CHECK(H(hkdf_expand_label(s, shs.bytes(), "key", {}, 16)) == H(rfc8448::s_hs_key));
  CHECK(H(hkdf_expand_label(s, shs.bytes(), "iv", {}, 12)) == H(rfc8448::s_hs_iv));
  CHECK(H(hkdf_expand_label(s, chs.bytes(), "key", {}, 16)) == H(rfc8448::c_hs_key));
  CHECK(H(hkdf_expand_label(s, chs.bytes(), "iv", {}, 12)) == H(rfc8448::c_hs_iv));
  CHECK(H(hkdf_expand_label(s, shs.bytes(), "finished", {}, 32)) == H(rfc8448::s_finished_key));

  t.add(hex(rfc8448::encrypted_extensions));
  t.add(hex(rfc8448::certificate));
  t.add(hex(rfc8448::certificate_verify));
  // Server Finished = HMAC(finished_key, Hash(CH..CV)).
  const Buf sfin = hex(rfc8448::server_finished);
  CHECK(H(finished_verify_data(s, shs.bytes(), t.current().bytes())) == to_hex(Buf(sfin.begin() + 4, sfin.end())));
  t.add(sfin);
  CHECK(H(t.current()) == H(rfc8448::server_finished_hash));

  CHECK(H(derive_secret(s, ks.current().bytes(), "derived", hash(s, {}).bytes())) == H(rfc8448::master_derived));
  ks.to_master();
  CHECK(H(ks.current()) == H(rfc8448::master_secret));
  const Secret cap = ks.derive(label::c_ap_traffic, t.current().bytes());
  const Secret sap = ks.derive(label::s_ap_traffic, t.current().bytes());
  CHECK(H(cap) == H(rfc8448::c_ap_traffic));
  CHECK(H(sap) == H(rfc8448::s_ap_traffic));
  CHECK(H(ks.derive(label::exp_master, t.current().bytes())) == H(rfc8448::exp_master));
  CHECK(H(hkdf_expand_label(s, sap.bytes(), "key", {}, 16)) == H(rfc8448::s_ap_key));
  CHECK(H(hkdf_expand_label(s, sap.bytes(), "iv", {}, 12)) == H(rfc8448::s_ap_iv));
  CHECK(H(hkdf_expand_label(s, cap.bytes(), "key", {}, 16)) == H(rfc8448::c_ap_key));
  CHECK(H(hkdf_expand_label(s, cap.bytes(), "iv", {}, 12)) == H(rfc8448::c_ap_iv));
  CHECK(H(hkdf_expand_label(s, chs.bytes(), "finished", {}, 32)) == H(rfc8448::c_finished_key));

  const Buf cfin = hex(rfc8448::client_finished);
  CHECK(H(finished_verify_data(s, chs.bytes(), t.current().bytes())) == to_hex(Buf(cfin.begin() + 4, cfin.end())));
  t.add(cfin);
  CHECK(H(t.current()) == H(rfc8448::client_finished_hash));
  const Secret rms = ks.derive(label::res_master, t.current().bytes());
  CHECK(H(rms) == H(rfc8448::res_master));
  CHECK(H(resumption_psk(s, rms.bytes(), Buf{0, 0})) == H(rfc8448::resumption_psk));
}

TEST_CASE("HKDF: RFC 5869 test case 1", "[tls][crypto]") {
  const Suite& s = *find_suite(TLS_AES_128_GCM_SHA256);
  const Secret prk = hkdf_extract(s, hex("000102030405060708090a0b0c"), hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  CHECK(H(prk) == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  Buf okm(42);
  REQUIRE(hkdf_expand(s, prk.bytes(), hex("f0f1f2f3f4f5f6f7f8f9"), okm));
  CHECK(to_hex(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("Transcript after HelloRetryRequest starts with message_hash", "[tls][crypto]") {
  const Suite& s = *find_suite(TLS_AES_256_GCM_SHA384);
  const Buf ch1 = hex("01000002aabb");
  Transcript t;
  t.add(ch1);
  t.set_suite(s);
  t.replace_with_message_hash();
  Buf expect = {254, 0, 0, 48};
  const Secret h = hash(s, ch1);
  expect.insert(expect.end(), h.bytes().begin(), h.bytes().end());
  CHECK(t.current() == hash(s, expect));
}

TEST_CASE("next_traffic_secret and Secret wiping", "[tls][key_schedule]") {
  const Suite& s = *find_suite(TLS_CHACHA20_POLY1305_SHA256);
  const Buf cur = hex(rfc8448::c_ap_traffic);
  const Secret n = next_traffic_secret(s, cur);
  CHECK(n == hkdf_expand_label(s, cur, "traffic upd", {}, 32));
  Secret w(cur);
  w.wipe();
  CHECK(w.empty());
}
