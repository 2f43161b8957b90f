// The record face: TLS 1.3 over a byte stream (TCP), on the handshake engine.
//
// Read: RFC 8446 §5 (record layer: content types, the plaintext records
// before keys, protected records after, §5.1's rule that a key change falls
// on a record boundary), §4.2.10 (early data: the client writes it under
// the early key until EndOfEarlyData; a server that rejects it skips what it
// cannot decrypt, up to max_early_data_size), §4.6.3 (KeyUpdate), §6 (alerts;
// close_notify), §5.5 (limits on key usage), Appendix D.4 (a dummy
// change_cipher_spec may arrive and is ignored).
//
// Still sans-IO: bytes from the socket go into feed(), bytes for the socket
// come out of take_output(). The engine announces secrets through the
// SecretSink interface; this class turns each into a RecordProtector for
// its level and direction and picks the read key by the engine's read level.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "tls/engine.hpp"
#include "tls/record.hpp"

namespace ustack::tls {

class RecordConnection : private SecretSink {
 public:
  RecordConnection(const ClientConfig& cfg, Hooks hooks = {});
  RecordConnection(const ServerConfig& cfg, Hooks hooks = {});

  // Client: queues the ClientHello. Server: ready for one.
  Status start();
  // Bytes received from the peer, any amount.
  Status feed(Bytes data);
  // Bytes to send to the peer (moved out).
  Buf take_output();
  bool has_output() const { return !out_.empty(); }
  // Application data received so far (moved out).
  Buf take_app_data();

  // Queues application data. Before the handshake completes a client with
  // 0-RTT keys sends it as early data (up to the ticket's limit; resent
  // after the handshake if the server refuses it); otherwise it waits.
  Status write(Bytes data);
  // Sends KeyUpdate and switches the write key (§4.6.3).
  Status key_update(bool request_peer_update);
  // Sends close_notify; nothing may be written after.
  void close();

  Engine& engine() { return engine_; }
  const Engine& engine() const { return engine_; }
  bool handshake_complete() const { return engine_.handshake_complete(); }
  bool peer_closed() const { return peer_closed_; }
  bool failed() const { return failed_; }
  // The alert that ended the connection: sent by us, or received.
  std::optional<Alert> alert_sent() const { return alert_sent_; }
  std::optional<Alert> alert_received() const { return alert_received_; }
  const char* why() const { return why_; }
  // Early data: bytes the client sent as 0-RTT / the server accepted as 0-RTT.
  std::size_t early_bytes() const { return early_bytes_; }
  int key_updates_received() const { return key_updates_received_; }
  int key_updates_sent() const { return key_updates_sent_; }
  // Records after which the write key is updated unprompted (§5.5: AES-GCM
  // allows 2^24.5 full records per key; we stay well below).
  void set_key_update_interval(std::uint64_t records) { auto_update_after_ = records; }
  // One NSS key log line per secret (SSLKEYLOGFILE format), without newline.
  void set_keylog(std::function<void(std::string_view line)> f) { keylog_ = std::move(f); }

 private:
  void on_secret(Level level, Direction dir, const Suite& suite, Bytes secret) override;
  void on_keylog(std::string_view label, Bytes client_random, Bytes secret) override;
  void on_key_update(bool update_requested) override;

  Status fail(Alert a, const char* why);
  Status after_engine(Status st);
  void drain_engine();
  void send_plaintext(ContentType t, Bytes data, std::uint16_t version);
  bool send_protected(Level level, ContentType t, Bytes data);
  void send_alert(Alert a);
  Status handle_record(const RecordHeader& h, Bytes record);
  Status handle_alert(Bytes body);
  void flush_pending_app();
  Status rotate_write_key();

  Engine engine_;
  bool client_;
  std::array<RecordProtector, kLevels> rd_;
  std::array<RecordProtector, kLevels> wr_;
  const Suite* suite_ = nullptr;
  Secret app_read_secret_, app_write_secret_;
  Buf in_;
  Buf out_;
  Buf app_in_;
  Buf pending_app_;  // written before the handshake finished
  Buf early_sent_;   // 0-RTT bytes, kept until the server says whether it took them
  bool first_record_sent_ = false;
  bool closed_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;
  bool early_settled_ = false;
  bool early_skip_done_ = false;
  std::uint32_t max_early_ = 0;
  Level sent_level_ = Level::initial;
  std::size_t early_bytes_ = 0;
  std::size_t skipped_early_ = 0;
  bool skipping_early_ = false;
  std::optional<Alert> alert_sent_, alert_received_;
  const char* why_ = "";
  int key_updates_received_ = 0;
  int key_updates_sent_ = 0;
  bool key_update_owed_ = false;
  std::uint64_t auto_update_after_ = std::uint64_t{1} << 23;
  std::function<void(std::string_view)> keylog_;
};

}  // namespace ustack::tls
