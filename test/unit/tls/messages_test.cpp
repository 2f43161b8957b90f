// Golden bytes for the handshake messages: RFC 8448 §3's messages parse into
// the values the RFC describes and emit back to the same bytes; truncated and
// malformed variants are refused with the right error kind.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "test/unit/tls/hex.hpp"
#include "test/unit/tls/rfc8448.hpp"
#include "tls/messages.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {
Bytes body_of(const Buf& msg) { return Bytes(msg).subspan(kHandshakeHeaderLen); }
}  // namespace

TEST_CASE("ClientHello: RFC 8448 parse and emit", "[tls][messages]") {
  const Buf msg = hex(rfc8448::client_hello);
  REQUIRE(msg[0] == 1);
  auto ch = parse_client_hello(body_of(msg));
  REQUIRE(ch.ok());
  CHECK(ch->legacy_version == 0x0303);
  CHECK(vec(ch->random) == hex(rfc8448::client_random));
  CHECK(ch->legacy_session_id.empty());
  CHECK(ch->cipher_suites == std::vector<std::uint16_t>{0x1301, 0x1303, 0x1302});
  CHECK(ch->legacy_compression_methods == Buf{0});
  std::vector<std::uint16_t> types;
  for (const auto& e : ch->extensions) types.push_back(e.type);
  CHECK(types == std::vector<std::uint16_t>{0, 0xff01, 10, 35, 51, 43, 13, 45, 28});

  auto sni = parse_server_name(find_ext(ch->extensions, ext::server_name)->data);
  REQUIRE(sni.ok());
  CHECK(*sni == "server");
  auto groups = parse_u16_list(find_ext(ch->extensions, ext::supported_groups)->data, 2);
  REQUIRE(groups.ok());
  CHECK(groups->size() == 9);
  CHECK((*groups)[0] == group::x25519);
  auto ks = parse_key_share_ch(find_ext(ch->extensions, ext::key_share)->data);
  REQUIRE(ks.ok());
  REQUIRE(ks->size() == 1);
  CHECK((*ks)[0].group == group::x25519);
  CHECK((*ks)[0].key_exchange == hex(rfc8448::client_x25519_public));
  auto sv = parse_u16_list(find_ext(ch->extensions, ext::supported_versions)->data, 1);
  REQUIRE(sv.ok());
  CHECK(*sv == std::vector<std::uint16_t>{0x0304});
  auto sa = parse_u16_list(find_ext(ch->extensions, ext::signature_algorithms)->data, 2);
  REQUIRE(sa.ok());
  CHECK(sa->size() == 15);

  Buf out;
  emit_client_hello(out, *ch);
  CHECK(to_hex(out) == to_hex(msg));
}

TEST_CASE("ServerHello: RFC 8448 parse and emit", "[tls][messages]") {
  const Buf msg = hex(rfc8448::server_hello);
  auto sh = parse_server_hello(body_of(msg));
  REQUIRE(sh.ok());
  CHECK_FALSE(sh->is_hrr());
  CHECK(vec(sh->random) == hex(rfc8448::server_random));
  CHECK(sh->cipher_suite == 0x1301);
  auto ks = parse_key_share_sh(find_ext(sh->extensions, ext::key_share)->data);
  REQUIRE(ks.ok());
  CHECK(ks->group == group::x25519);
  CHECK(ks->key_exchange == hex(rfc8448::server_x25519_public));
  auto v = parse_u16(find_ext(sh->extensions, ext::supported_versions)->data);
  REQUIRE(v.ok());
  CHECK(*v == 0x0304);
  Buf out;
  emit_server_hello(out, *sh);
  CHECK(out == msg);
}

TEST_CASE("EncryptedExtensions, Certificate, CertificateVerify, Finished: RFC 8448", "[tls][messages]") {
  const Buf ee = hex(rfc8448::encrypted_extensions);
  auto e = parse_encrypted_extensions(body_of(ee));
  REQUIRE(e.ok());
  REQUIRE(e->extensions.size() == 3);
  CHECK(e->extensions[2].type == ext::server_name);
  CHECK(e->extensions[2].data.empty());
  Buf out;
  emit_encrypted_extensions(out, *e);
  CHECK(out == ee);

  const Buf cm = hex(rfc8448::certificate);
  auto c = parse_certificate(body_of(cm));
  REQUIRE(c.ok());
  CHECK(c->context.empty());
  REQUIRE(c->entries.size() == 1);
  CHECK(c->entries[0].cert_data.size() == 432);
  out.clear();
  emit_certificate(out, *c);
  CHECK(out == cm);

  const Buf cv = hex(rfc8448::certificate_verify);
  auto v = parse_certificate_verify(body_of(cv));
  REQUIRE(v.ok());
  CHECK(v->scheme == sigscheme::rsa_pss_rsae_sha256);
  CHECK(v->signature.size() == 128);
  out.clear();
  emit_certificate_verify(out, *v);
  CHECK(out == cv);

  const Buf fin = hex(rfc8448::server_finished);
  auto f = parse_finished(body_of(fin), 32);
  REQUIRE(f.ok());
  out.clear();
  emit_finished(out, *f);
  CHECK(out == fin);
  CHECK(parse_finished(body_of(fin), 48).error() == ParseError::bad_length);
}

TEST_CASE("NewSessionTicket: RFC 8448 parse and emit", "[tls][messages]") {
  const Buf msg = hex(rfc8448::new_session_ticket);
  auto t = parse_new_session_ticket(body_of(msg));
  REQUIRE(t.ok());
  CHECK(t->lifetime == 30);
  CHECK(t->age_add == 0xfad6aac5);
  CHECK(t->nonce == Buf{0, 0});
  CHECK(t->ticket.size() == 178);
  REQUIRE(t->extensions.size() == 1);
  CHECK(t->extensions[0].type == ext::early_data);
  CHECK(t->extensions[0].data == Buf{0, 0, 4, 0});
  Buf out;
  emit_new_session_ticket(out, *t);
  CHECK(out == msg);
}

TEST_CASE("KeyUpdate and EndOfEarlyData", "[tls][messages]") {
  Buf out;
  emit_key_update(out, KeyUpdate{true});
  CHECK(out == hex("1800000101"));
  auto k = parse_key_update(Bytes(out).subspan(4));
  REQUIRE(k.ok());
  CHECK(k->update_requested);
  CHECK(parse_key_update(hex("02")).error() == ParseError::malformed);
  CHECK(parse_key_update(hex("0000")).error() == ParseError::bad_length);
  out.clear();
  emit_end_of_early_data(out);
  CHECK(out == hex("05000000"));
}

TEST_CASE("every truncation of the RFC 8448 messages is refused", "[tls][messages]") {
  const Buf ch = hex(rfc8448::client_hello);
  const Buf sh = hex(rfc8448::server_hello);
  const Buf cert = hex(rfc8448::certificate);
  const Buf nst = hex(rfc8448::new_session_ticket);
  for (std::size_t n = 0; n + 1 < ch.size() - 4; ++n) {
    auto r = parse_client_hello(Bytes(ch).subspan(4, n));
    // Cutting exactly before the extensions leaves a (TLS 1.2 style) hello without extensions.
    if (n == 2 + 32 + 1 + 8 + 2) continue;
    CHECK_FALSE(r.ok());
  }
  for (std::size_t n = 0; n + 1 < sh.size() - 4; ++n) CHECK_FALSE(parse_server_hello(Bytes(sh).subspan(4, n)).ok());
  for (std::size_t n = 0; n + 1 < cert.size() - 4; ++n) CHECK_FALSE(parse_certificate(Bytes(cert).subspan(4, n)).ok());
  for (std::size_t n = 0; n + 1 < nst.size() - 4; ++n) {
    CHECK_FALSE(parse_new_session_ticket(Bytes(nst).subspan(4, n)).ok());
  }
}

TEST_CASE("malformed extension blocks", "[tls][messages]") {
  // Two supported_groups extensions.
  Buf b = hex("000c 000a 0004 0002 001d 000a 0000");
  Reader r(b);
  CHECK(parse_extensions(r).error() == ParseError::malformed);
  // Extension length past the block.
  b = hex("0006 000a 0009 0002 001d");
  Reader r2(b);
  CHECK(parse_extensions(r2).error() == ParseError::truncated);
  // key_share with a group twice.
  CHECK(parse_key_share_ch(hex("000c 001d 0002 aabb 001d 0002 ccdd")).error() == ParseError::malformed);
  // odd-length u16 list, empty list
  CHECK(parse_u16_list(hex("0003 001d00"), 2).error() == ParseError::malformed);
  CHECK(parse_u16_list(hex("0000"), 2).error() == ParseError::malformed);
  // ALPN with an empty name
  CHECK(parse_alpn(hex("0003 02 6832 00")).error() == ParseError::bad_length);
  CHECK(parse_alpn(hex("0004 02 6832 00")).error() == ParseError::malformed);
  auto a = parse_alpn(make_alpn({"h2", "http/1.1"}));
  REQUIRE(a.ok());
  CHECK(*a == std::vector<std::string>{"h2", "http/1.1"});
  // server_name with an embedded NUL
  CHECK(parse_server_name(hex("0006 00 0003 610062")).error() == ParseError::malformed);
  // ClientHello with a 33-byte session id
  Buf ch = hex("0303");
  ch.resize(2 + 32, 0);
  ch.push_back(33);
  ch.resize(ch.size() + 33, 0);
  for (auto x : hex("0002 1301 0100 0000")) ch.push_back(x);
  CHECK(parse_client_hello(ch).error() == ParseError::malformed);
}

TEST_CASE("pre_shared_key offer round trip and binder length", "[tls][messages]") {
  OfferedPsks p;
  p.identities.push_back({Buf{1, 2, 3}, 0x01020304});
  p.binders.push_back(Buf(32, 0xaa));
  const Buf b = make_pre_shared_key_ch(p);
  auto q = parse_pre_shared_key_ch(b);
  REQUIRE(q.ok());
  CHECK(q->identities[0].identity == Buf{1, 2, 3});
  CHECK(q->identities[0].obfuscated_ticket_age == 0x01020304);
  CHECK(q->binders_len == 2 + 1 + 32);
  // identity without binder
  p.binders.clear();
  CHECK(parse_pre_shared_key_ch(make_pre_shared_key_ch(p)).error() == ParseError::malformed);
}

TEST_CASE("order_extensions puts listed types first, keeps the rest", "[tls][messages]") {
  Extensions e{{43, {}}, {10, {}}, {0, {}}, {51, {}}};
  const std::uint16_t order[] = {0, 51};
  order_extensions(e, order);
  CHECK(e[0].type == 0);
  CHECK(e[1].type == 51);
  CHECK(e[2].type == 43);
  CHECK(e[3].type == 10);
}
