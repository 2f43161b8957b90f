// The TLS 1.3 handshake engine: client and server state machines, sans-IO.
//
// Read: RFC 8446 §2 (protocol overview), §4.1 (key exchange messages, HRR),
// §4.2 (which extension may appear in which message, and the alert for each
// violation), §4.3-4.4 (server parameters, authentication messages), §4.6
// (post-handshake messages), §6.2 (error alerts), Appendix A (the state
// machines named in `State`), RFC 9001 §4 (how QUIC carries the same bytes).
//
// The engine never sees a record or a socket. Handshake bytes go in and come
// out per encryption level (initial, early, handshake, application: QUIC's
// four levels, and the record layer's four key epochs). New traffic secrets
// are announced to a SecretSink as soon as they exist; the face that owns the
// engine installs them (record protection for TCP, packet protection for
// QUIC). Within one call, output appears in level order and every secret for
// a level is announced before that level's output, so a face can drain
// output(initial), output(early), output(handshake), output(application) in
// that order after each call.
//
// Randomness, key shares, signatures and certificate verification are
// injectable (Hooks, ClientConfig::verify, ServerConfig::sign), which is how
// the RFC 8448 trace is reproduced byte for byte.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tls/crypto.hpp"
#include "tls/key_schedule.hpp"
#include "tls/messages.hpp"
#include "tls/types.hpp"

namespace ustack::tls {

enum class Level : std::uint8_t { initial = 0, early = 1, handshake = 2, application = 3 };
enum class Direction : std::uint8_t { read, write };
constexpr std::size_t kLevels = 4;

class SecretSink {
 public:
  virtual ~SecretSink() = default;
  // A traffic secret for `level` in `direction` now exists. It is wiped after
  // the call: copy what is needed.
  virtual void on_secret(Level level, Direction dir, const Suite& suite, Bytes secret) = 0;
  // NSS key log line material (SSLKEYLOGFILE): label, client random, secret.
  virtual void on_keylog(std::string_view /*label*/, Bytes /*client_random*/, Bytes /*secret*/) {}
  // The peer sent KeyUpdate (record face only; QUIC forbids the message).
  virtual void on_key_update(bool /*update_requested*/) {}
};

struct Hooks {
  std::function<void(MutBytes)> random;                                // default: RAND_bytes
  std::function<std::optional<KeyShare>(std::uint16_t group)> keygen;  // default: KeyShare::generate
};

// What a client remembers to resume (RFC 8446 §4.6.1, §2.2).
struct Session {
  std::uint16_t suite = 0;
  Buf ticket;
  Buf psk;  // the resumption PSK (secret; wiped with the session's owner)
  std::uint32_t age_add = 0;
  std::uint32_t lifetime = 0;
  std::uint32_t max_early_data = 0;
  std::uint64_t received_at_ms = 0;  // caller's clock, for obfuscated_ticket_age
  std::string alpn;
  std::string server_name;
  Buf serialize() const;
  static std::optional<Session> parse(Bytes b);
};

struct ClientConfig {
  std::string server_name;  // SNI, and the name the certificate must match
  std::vector<std::string> alpn;
  std::vector<std::uint16_t> cipher_suites = {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
                                              TLS_CHACHA20_POLY1305_SHA256};
  // supported_groups as advertised (may list groups only to advertise them).
  std::vector<std::uint16_t> groups = {group::x25519, group::secp256r1};
  // Groups to send a key share for in the first ClientHello.
  std::vector<std::uint16_t> key_share_groups = {group::x25519};
  std::vector<std::uint16_t> signature_schemes = {
      sigscheme::ecdsa_secp256r1_sha256, sigscheme::rsa_pss_rsae_sha256, sigscheme::rsa_pss_rsae_sha384,
      sigscheme::rsa_pss_rsae_sha512, sigscheme::ed25519};
  // Server authentication: a trust store (required unless `verify` is set).
  const TrustStore* trust = nullptr;
  std::int64_t verify_time = 0;  // 0: libcrypto's clock
  std::function<Status(const std::vector<Buf>& chain, PKey& leaf_key)> verify;
  // Optional client certificate, sent when the server asks.
  std::vector<Buf> cert_chain;
  PKey key;
  // Resumption and 0-RTT.
  std::optional<Session> session;
  std::uint64_t now_ms = 0;  // caller's clock for the ticket age
  bool send_early_data = false;
  // A 32-byte legacy_session_id (RFC 8446 Appendix D.4 middlebox compatibility).
  bool compat_session_id = false;
  // RFC 7685 padding: a ClientHello of 256..511 bytes is padded to 512, the
  // workaround for servers that hang on those lengths (NSS and BoringSSL do
  // the same; RFC 8448 §4 and §5 show it). Never under QUIC, whose Initial
  // packets are padded instead.
  bool pad_client_hello = false;
  // QUIC (RFC 9001 §8.2): quic_transport_parameters sent and required back.
  bool quic = false;
  Buf quic_transport_parameters;
  // Extra opaque extensions and an explicit order (tests reproducing other
  // implementations' ClientHellos, e.g. RFC 8448).
  Extensions extra_extensions;
  std::vector<std::uint16_t> extension_order;
};

// Server ticket protection key: 16-byte name, 32-byte AES-256-GCM key.
struct TicketKey {
  std::array<std::uint8_t, 16> name{};
  std::array<std::uint8_t, 32> key{};
};

// What a server ticket carries (RFC 8446 §4.6.1 leaves the format to the
// server): the resumption PSK and what 0-RTT acceptance must match.
struct TicketContents {
  std::uint16_t suite = 0;
  std::uint64_t issued_ms = 0;  // server clock (ServerConfig::now_ms) at issue
  std::uint32_t age_add = 0;
  std::uint32_t lifetime = 0;  // seconds
  std::uint32_t max_early_data = 0;
  std::string alpn;
  std::string sni;
  Secret psk;
};

// Single-use ticket store for 0-RTT anti-replay (RFC 8446 §8.1).
class ReplayGuard {
 public:
  virtual ~ReplayGuard() = default;
  // True the first time a ticket identity is seen; false for a replay.
  virtual bool first_use(Bytes identity) = 0;
};

struct ServerConfig {
  std::vector<Buf> cert_chain;  // DER, leaf first
  PKey key;                     // private key (or only the leaf's public key when `sign` is set)
  std::function<bool(std::uint16_t scheme, Bytes content, Buf& sig)> sign;
  std::vector<std::uint16_t> cipher_suites = {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
                                              TLS_CHACHA20_POLY1305_SHA256};  // preference order
  std::vector<std::uint16_t> groups = {group::x25519, group::secp256r1};    // preference order
  std::vector<std::string> alpn;                                              // preference order
  // Client certificates.
  bool request_client_cert = false;
  bool require_client_cert = false;
  const TrustStore* client_trust = nullptr;
  std::int64_t verify_time = 0;
  // Tickets: issued after the handshake when ticket keys exist; the first
  // key encrypts, all of them decrypt (rotation: push a new key in front).
  std::vector<TicketKey> ticket_keys;
  // Replaces the built-in ticket decryption when set (a ticket store shared
  // by several servers, or a test accepting RFC 8448 §4's NSS-made ticket).
  // nullopt: not ours, or not valid; the handshake goes on without it.
  std::function<std::optional<TicketContents>(Bytes ticket)> open_ticket;
  std::uint32_t ticket_lifetime = 7200;
  std::uint32_t max_early_data = 0;  // > 0: accept 0-RTT up to this many bytes
  ReplayGuard* replay = nullptr;     // required for 0-RTT
  std::uint64_t now_ms = 0;          // caller's clock, for ticket ages
  bool quic = false;
  Buf quic_transport_parameters;
  // HelloRetryRequest cookie (§4.2.2): sent when not empty, and then the
  // second ClientHello must echo it unchanged (illegal_parameter otherwise).
  // The server stays stateful; this only reproduces servers that send one.
  Buf hrr_cookie;
  Extensions ee_extra_extensions;
  std::vector<std::uint16_t> ee_extension_order;
};

class Engine {
 public:
  enum class State : std::uint8_t {
    start,
    // client
    wait_sh,
    wait_ee,
    wait_cert_cr,
    wait_cert,
    wait_cv,
    wait_finished,
    // server
    wait_ch,
    wait_eoed,
    wait_flight2,  // client Certificate / Finished
    wait_client_cv,
    wait_client_finished,
    connected,
    failed,
  };

  Engine(const ClientConfig& cfg, SecretSink& sink, Hooks hooks = {});
  Engine(const ServerConfig& cfg, SecretSink& sink, Hooks hooks = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Client: writes the ClientHello (and announces 0-RTT keys when offering
  // early data). Server: nothing to do; waits for the ClientHello.
  Status start();
  // Handshake bytes that arrived at `level`, in order, any fragmentation.
  Status receive(Level level, Bytes data);
  // Bytes to send at `level`; the caller takes them (the buffer is moved out).
  Buf take_output(Level level);
  bool has_output() const;

  // Record face only (QUIC never sends it): a KeyUpdate message to send at
  // the application level. The caller switches its write key after sending.
  Buf make_key_update(bool request_peer_update);
  // Server: issue a NewSessionTicket now (also done once after the handshake
  // when ticket keys are configured).
  Status send_ticket();

  bool is_client() const { return client_ != nullptr; }
  State state() const { return state_; }
  bool handshake_complete() const { return state_ == State::connected; }
  Level read_level() const { return read_level_; }
  const Suite* suite() const { return suite_; }
  std::uint16_t group() const { return group_; }
  std::uint16_t signature_scheme() const { return peer_scheme_ != 0 ? peer_scheme_ : my_scheme_; }
  const std::string& alpn() const { return alpn_; }
  const std::string& server_name() const { return sni_; }
  bool did_hrr() const { return hrr_; }
  bool resumed() const { return resumed_; }
  // Client: the server accepted early data. Server: it is accepting it.
  bool early_data_accepted() const { return early_accepted_; }
  bool early_data_offered() const { return early_offered_; }
  std::uint32_t max_early_data() const { return max_early_data_; }
  const Buf& peer_transport_parameters() const { return peer_tp_; }
  const std::vector<Buf>& peer_chain() const { return peer_chain_; }
  // Client: tickets received so far (most recent last).
  const std::vector<Session>& sessions() const { return sessions_; }
  Bytes client_random() const { return client_random_; }
  Status failure() const { return failure_; }

 private:
  Status fail(Alert a, const char* why);
  Status process(Level level, HandshakeType type, Bytes body, Bytes whole);
  void set_read_level(Level l);
  void announce(Level level, Direction dir, std::string_view keylog_label, const Secret& s);
  void random(MutBytes out);
  std::optional<KeyShare> keygen(std::uint16_t g);
  void send_message(Level level, const Buf& msg);
  void send_finished(const Secret& my_hs);
  Status check_finished(Bytes body, const Secret& peer_hs, const char* mismatch);
  void derive_application_secrets();

  // client
  Status client_send_hello(bool after_hrr);
  Status client_on_server_hello(const ServerHello& sh, Bytes whole);
  Status client_on_hrr(const ServerHello& hrr, Bytes whole);
  Status client_on_ee(Bytes body, Bytes whole);
  Status client_on_cert_request(Bytes body, Bytes whole);
  Status client_on_certificate(Bytes body, Bytes whole);
  Status client_on_cv(Bytes body, Bytes whole);
  Status client_on_finished(Bytes body, Bytes whole);
  Status client_on_ticket(Bytes body);
  // server
  Status server_on_client_hello(Bytes body, Bytes whole);
  Status server_send_flight(const ClientHello& ch, Bytes ch_whole, const KeyShareEntry& share,
                            std::optional<Secret> psk, std::uint32_t psk_index);
  Status server_on_eoed(Bytes body, Bytes whole);
  Status server_on_client_certificate(Bytes body, Bytes whole);
  Status server_on_client_cv(Bytes body, Bytes whole);
  Status server_on_client_finished(Bytes body, Bytes whole);
  Status on_key_update(Bytes body);

  const ClientConfig* client_ = nullptr;
  const ServerConfig* server_ = nullptr;
  SecretSink& sink_;
  Hooks hooks_;
  State state_ = State::start;
  Level read_level_ = Level::initial;
  Status failure_;

  std::array<Buf, kLevels> in_;
  std::array<Buf, kLevels> out_;

  Transcript transcript_;
  KeySchedule ks_;
  const Suite* suite_ = nullptr;
  std::uint16_t group_ = 0;
  std::uint16_t my_scheme_ = 0;
  std::uint16_t peer_scheme_ = 0;
  std::array<std::uint8_t, 32> client_random_{};
  Buf session_id_;
  std::vector<KeyShare> my_shares_;
  std::vector<Buf> peer_chain_;
  PKey peer_key_;
  Secret c_hs_, s_hs_, c_ap_, s_ap_, res_master_;
  std::string alpn_;
  std::string sni_;
  Buf peer_tp_;
  bool hrr_ = false;
  bool resumed_ = false;
  bool early_offered_ = false;
  bool early_accepted_ = false;
  std::uint32_t max_early_data_ = 0;
  bool cert_requested_ = false;
  Buf cert_request_context_;
  Buf cookie_;
  std::vector<Session> sessions_;
  std::uint32_t tickets_sent_ = 0;
  // server: the first ClientHello's choices, checked against the second (§4.1.2)
  std::uint16_t hrr_suite_ = 0;
  std::uint16_t hrr_group_ = 0;
};

}  // namespace ustack::tls
