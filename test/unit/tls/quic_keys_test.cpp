// RFC 9001 Appendix A: Initial secrets and keys for DCID 0x8394c8f03e515708
// (A.1), the client's and server's Initial header protection (A.2, A.3), and
// the ChaCha20-Poly1305 short-header packet (A.5) with its key update
// secret; and the TLS alert <-> CRYPTO_ERROR mapping (§4.8).
#include <catch2/catch.hpp>

#include "test/unit/tls/hex.hpp"
#include "tls/quic_keys.hpp"

using namespace ustack;
using namespace ustack::tls;
using namespace ustack::tls::test;

namespace {
std::string H(const Secret& s) { return to_hex(Buf(s.bytes().begin(), s.bytes().end())); }

// §5.4.1: XOR the mask into the first byte's low bits (4 for long headers,
// 5 for short) and into the packet number bytes.
Buf protect_header(Buf header, std::size_t pn_offset, const std::array<std::uint8_t, quic::kMaskLen>& mask) {
  const bool long_header = (header[0] & 0x80) != 0;
  const std::size_t pn_len = (header[0] & 0x03) + 1;
  header[0] ^= mask[0] & (long_header ? 0x0f : 0x1f);
  for (std::size_t i = 0; i < pn_len; ++i) header[pn_offset + i] ^= mask[1 + i];
  return header;
}
}  // namespace

TEST_CASE("RFC 9001 §A.1: Initial secrets and keys", "[tls][quic]") {
  const quic::InitialSecrets s = quic::initial_secrets(hex("8394c8f03e515708"));
  CHECK(H(s.client) == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea");
  CHECK(H(s.server) == "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b");
  quic::PacketKeys c, sv;
  REQUIRE(quic::derive_packet_keys(quic::initial_suite(), s.client.bytes(), c));
  REQUIRE(quic::derive_packet_keys(quic::initial_suite(), s.server.bytes(), sv));
  CHECK(H(c.key) == "1f369613dd76d5467730efcbe3b1a22d");
  CHECK(H(c.iv) == "fa044b2f42a3fd3b46fb255c");
  CHECK(H(c.hp) == "9f50449e04a0e810283a1e9933adedd2");
  CHECK(H(sv.key) == "cf3a5331653c364c88f0f379b6067e37");
  CHECK(H(sv.iv) == "0ac1493ca1905853b0bba03e");
  CHECK(H(sv.hp) == "c206b8d9b9f0f37644430b490eeaa314");
  // A different connection ID gives different keys.
  CHECK(H(quic::initial_secrets(hex("8394c8f03e515709")).client) != H(s.client));
  // A secret of the wrong length for the suite is refused.
  quic::PacketKeys bad;
  CHECK_FALSE(quic::derive_packet_keys(quic::initial_suite(), hex("00112233"), bad));
}

TEST_CASE("RFC 9001 §A.2/§A.3: Initial header protection (AES-128)", "[tls][quic]") {
  const quic::InitialSecrets s = quic::initial_secrets(hex("8394c8f03e515708"));
  quic::PacketKeys c, sv;
  REQUIRE(quic::derive_packet_keys(quic::initial_suite(), s.client.bytes(), c));
  REQUIRE(quic::derive_packet_keys(quic::initial_suite(), s.server.bytes(), sv));
  quic::HeaderProtector hc, hs;
  std::array<std::uint8_t, quic::kMaskLen> mask{};
  CHECK_FALSE(hc.mask(hex("d1b1c98dd7689fb8ec11d242b123dc9b"), mask));  // not initialised
  REQUIRE(hc.init(quic::initial_suite(), c.hp.bytes()));
  REQUIRE(hs.init(quic::initial_suite(), sv.hp.bytes()));

  REQUIRE(hc.mask(hex("d1b1c98dd7689fb8ec11d242b123dc9b"), mask));
  CHECK(to_hex(Buf(mask.begin(), mask.end())) == "437b9aec36");
  CHECK(to_hex(protect_header(hex("c300000001088394c8f03e5157080000449e00000002"), 18, mask)) ==
        "c000000001088394c8f03e5157080000449e7b9aec34");

  REQUIRE(hs.mask(hex("2cd0991cd25b0aac406a5816b6394100"), mask));
  CHECK(to_hex(Buf(mask.begin(), mask.end())) == "2ec0d8356a");
  CHECK(to_hex(protect_header(hex("c1000000010008f067a5502a4262b50040750001"), 18, mask)) ==
        "cf000000010008f067a5502a4262b5004075c0d9");

  CHECK_FALSE(hs.mask(hex("2cd0991cd25b0aac406a5816b63941"), mask));  // short sample
}

TEST_CASE("RFC 9001 §A.5: ChaCha20-Poly1305 short header packet and key update", "[tls][quic]") {
  const Suite& s = *find_suite(TLS_CHACHA20_POLY1305_SHA256);
  const Buf secret = hex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
  quic::PacketKeys k;
  REQUIRE(quic::derive_packet_keys(s, secret, k));
  CHECK(H(k.key) == "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8");
  CHECK(H(k.iv) == "e0459b3474bdd0e44a41c144");
  CHECK(H(k.hp) == "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4");
  CHECK(H(quic::next_secret(s, secret)) == "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9");

  // Packet number 654360564, 3-byte encoding, one PING frame.
  const Buf header = hex("4200bff4");
  Aead a;
  REQUIRE(a.init_raw(s, k.key.bytes(), k.iv.bytes(), true));
  Buf payload(1 + kTagLen);
  REQUIRE(a.seal(654360564, header, hex("01"), payload.data()));
  quic::HeaderProtector hp;
  REQUIRE(hp.init(s, k.hp.bytes()));
  std::array<std::uint8_t, quic::kMaskLen> mask{};
  // The sample starts 4 bytes after the packet number's first byte.
  REQUIRE(hp.mask(Bytes(payload).subspan(1, quic::kSampleLen), mask));
  CHECK(to_hex(Buf(mask.begin(), mask.end())) == "aefefe7d03");
  Buf packet = protect_header(header, 1, mask);
  packet.insert(packet.end(), payload.begin(), payload.end());
  CHECK(to_hex(packet) == "4cfe4189655e5cd55c41f69080575d7999c25a5bfb");
}

TEST_CASE("TLS alerts map to QUIC CRYPTO_ERROR 0x0100 + alert (RFC 9001 §4.8)", "[tls][quic]") {
  CHECK(quic::crypto_error(Alert::handshake_failure) == 0x0128);
  CHECK(quic::crypto_error(Alert::missing_extension) == 0x016d);
  CHECK(quic::crypto_error(Alert::no_application_protocol) == 0x0178);
  Alert a = Alert::close_notify;
  REQUIRE(quic::alert_of(0x0132, a));
  CHECK(a == Alert::decode_error);
  CHECK_FALSE(quic::alert_of(0x000a, a));  // PROTOCOL_VIOLATION: not a TLS alert
  CHECK_FALSE(quic::alert_of(0x0200, a));
  static_assert(quic::crypto_error(Alert::unexpected_message) == 0x010a);
}

#ifdef USTACK_COUNT_ALLOCS
#include "core/alloc_counter.hpp"

TEST_CASE("QUIC packet and header protection allocate nothing per packet", "[tls][quic]") {
  // Keys are set up once per secret (allocation allowed); sealing, opening
  // and masking each packet is the data path and must not touch the heap.
  for (std::uint16_t id : {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256}) {
    const Suite& s = *find_suite(id);
    const Buf secret(s.hash_len, 0x42);
    quic::PacketKeys k;
    REQUIRE(quic::derive_packet_keys(s, secret, k));
    Aead seal, open;
    quic::HeaderProtector hp;
    REQUIRE(seal.init_raw(s, k.key.bytes(), k.iv.bytes(), true));
    REQUIRE(open.init_raw(s, k.key.bytes(), k.iv.bytes(), false));
    REQUIRE(hp.init(s, k.hp.bytes()));
    std::array<std::uint8_t, 1200> plain{};
    std::array<std::uint8_t, 1200 + kTagLen> ct{};
    std::array<std::uint8_t, 1200> back{};
    const std::array<std::uint8_t, 5> header = {0x41, 0, 0, 0, 0};
    std::array<std::uint8_t, quic::kMaskLen> mask{};
    bool ok = true;
    const std::uint64_t before = thread_alloc_count();
    for (std::uint64_t pn = 0; pn < 1000; ++pn) {
      plain[0] = static_cast<std::uint8_t>(pn);
      ok = ok && seal.seal(pn, header, plain, ct.data()) && hp.mask(Bytes(ct).subspan(4, quic::kSampleLen), mask) &&
           open.open(pn, header, ct, back.data()) && back == plain;
    }
    const std::uint64_t allocs = thread_alloc_count() - before;
    INFO(s.name);
    CHECK(ok);
    CHECK(allocs == 0);
  }
}
#endif
