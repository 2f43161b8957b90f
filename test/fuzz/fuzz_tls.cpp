// libFuzzer target: the TLS 1.3 parsers, the engine and the record face.
//
// The first byte picks what the rest feeds:
//   0: every handshake message and extension parser (must refuse or
//      accept without reading outside the input; accepted messages re-emit
//      to bytes that parse to the same message);
//   1: a server record face, in chunks whose sizes come from the input,
//      as if the bytes came from a TCP peer; with the top bit of the first
//      byte set, a QUIC-mode server engine instead (no records: handshake
//      bytes at the initial level, as from CRYPTO frames), which requires
//      transport parameters and sends a HelloRetryRequest cookie;
//   2: a client engine after its ClientHello, as handshake bytes at the
//      initial level (a hostile ServerHello / HelloRetryRequest).
// Randomness is a fixed pattern and the key share is fixed, so a crash
// input replays exactly. The invariant beyond "no crash, no leak": once a
// face or engine failed, it stays failed and says which alert.
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tls/messages.hpp"
#include "tls/record_layer.hpp"

using namespace ustack;
using namespace ustack::tls;

namespace {

Hooks fixed_hooks() {
  Hooks h;
  h.random = [](MutBytes out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i * 31 + 7);
  };
  h.keygen = [](std::uint16_t g) -> std::optional<KeyShare> {
    static const std::uint8_t priv[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    if (g == group::x25519) return KeyShare::from_x25519_private(priv);
    return KeyShare::generate(g);
  };
  return h;
}

const ServerConfig& server_config() {
  static ServerConfig c = [] {
    ServerConfig s;
    s.cert_chain = {Buf{0x30, 0x03, 0x02, 0x01, 0x00}};  // never parsed by the server
    s.key = PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    s.alpn = {"h2"};
    TicketKey k;
    k.name.fill(1);
    k.key.fill(2);
    s.ticket_keys = {k};
    return s;
  }();
  return c;
}

const ServerConfig& quic_server_config() {
  static ServerConfig c = [] {
    ServerConfig s = server_config();
    s.quic = true;
    s.quic_transport_parameters = {0x01, 0x02, 0x40, 0x64};
    s.groups = {group::secp256r1, group::x25519};  // an X25519-only hello gets HelloRetryRequest
    s.hrr_cookie = {0xc0, 0x0c, 0x1e};
    return s;
  }();
  return c;
}

void check_roundtrip_ch(Bytes b) {
  auto m = parse_client_hello(b);
  if (!m) return;
  Buf out;
  emit_client_hello(out, *m);
  auto again = parse_client_hello(Bytes(out).subspan(kHandshakeHeaderLen));
  if (!again || again->extensions != m->extensions || again->cipher_suites != m->cipher_suites) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Bytes in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      check_roundtrip_ch(in);
      (void)parse_server_hello(in);
      (void)parse_encrypted_extensions(in);
      (void)parse_certificate(in);
      (void)parse_certificate_request(in);
      (void)parse_certificate_verify(in);
      (void)parse_finished(in, 32);
      (void)parse_new_session_ticket(in);
      (void)parse_key_update(in);
      (void)parse_u16_list(in, 2);
      (void)parse_key_share_ch(in);
      (void)parse_key_share_sh(in);
      (void)parse_server_name(in);
      (void)parse_alpn(in);
      (void)parse_pre_shared_key_ch(in);
      (void)Session::parse(in);
      break;
    }
    case 1: {
      if ((data[0] & 0x80) != 0) {
        struct NullSink : SecretSink {
          void on_secret(Level, Direction, const Suite&, Bytes) override {}
        } sink;
        Engine e(quic_server_config(), sink, fixed_hooks());
        if (!e.start()) __builtin_trap();
        std::size_t off = 0;
        while (off < in.size()) {
          const std::size_t n = std::min<std::size_t>(in.size() - off, 1 + std::size_t{in[off]} * 8);
          const Status st = e.receive(e.read_level(), in.subspan(off, n));
          off += n;
          if (!st) {
            if (e.state() != Engine::State::failed || e.receive(e.read_level(), {}).alert != st.alert) __builtin_trap();
            break;
          }
          for (std::size_t l = 0; l < kLevels; ++l) (void)e.take_output(static_cast<Level>(l));
        }
        break;
      }
      RecordConnection s(server_config(), fixed_hooks());
      (void)s.start();
      std::size_t off = 0;
      while (off < in.size()) {
        const std::size_t n = std::min<std::size_t>(in.size() - off, 1 + std::size_t{in[off]} * 8);
        const Status st = s.feed(in.subspan(off, n));
        off += n;
        if (!st) {
          // Failed once, failed for good: later input is refused with the same alert.
          if (!s.failed() || s.feed(in.subspan(0, 0)).alert != st.alert) __builtin_trap();
          break;
        }
      }
      (void)s.take_output();
      break;
    }
    default: {
      struct NullSink : SecretSink {
        void on_secret(Level, Direction, const Suite&, Bytes) override {}
      } sink;
      ClientConfig c;
      c.server_name = "localhost";
      c.verify = [](const std::vector<Buf>&, PKey&) { return Status::fail(Alert::bad_certificate, "fuzz"); };
      Engine e(c, sink, fixed_hooks());
      if (!e.start()) __builtin_trap();
      (void)e.take_output(Level::initial);
      const Status st = e.receive(Level::initial, in);
      if (!st && e.state() != Engine::State::failed) __builtin_trap();
      break;
    }
  }
  return 0;
}
