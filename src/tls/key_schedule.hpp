// The TLS 1.3 key schedule.
//
// Read: RFC 8446 §7.1 (the schedule diagram: Early Secret -> Handshake
// Secret -> Master Secret, each "derived" then Extract), §7.2 (traffic key
// updates, "traffic upd"), §4.4.4 (finished_key), §4.6.1 (resumption PSK from
// resumption_master_secret and the ticket nonce), §4.2.11.2 (binder_key),
// §7.5 (exporters). RFC 8448 §3 lists every intermediate value for the
// simple 1-RTT handshake; the unit tests check against them.
#pragma once

#include <string_view>

#include "tls/crypto.hpp"

namespace ustack::tls {

class KeySchedule {
 public:
  // Early Secret = HKDF-Extract(0, PSK), with PSK = zeros when there is none.
  void start(const Suite& s, Bytes psk);
  const Suite& suite() const { return *suite_; }
  // Handshake Secret = HKDF-Extract(Derive-Secret(Early, "derived", ""), (EC)DHE).
  void to_handshake(Bytes ecdhe);
  // Master Secret = HKDF-Extract(Derive-Secret(Handshake, "derived", ""), 0).
  void to_master();
  const Secret& current() const { return secret_; }
  // Derive-Secret(current stage, label, transcript hash).
  Secret derive(std::string_view label, Bytes transcript_hash) const;
  // binder_key = Derive-Secret(Early, "res binder" | "ext binder", "").
  Secret binder_key(bool resumption) const;
  void wipe() { secret_.wipe(); }

 private:
  const Suite* suite_ = nullptr;
  Secret secret_;
};

// finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length);
// verify_data = HMAC(finished_key, transcript_hash).
Secret finished_verify_data(const Suite& s, Bytes base_key, Bytes transcript_hash);
// application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length).
Secret next_traffic_secret(const Suite& s, Bytes secret);
// PSK = HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length).
Secret resumption_psk(const Suite& s, Bytes res_master, Bytes nonce);

// Traffic labels, also the NSS key log labels' sources.
namespace label {
constexpr std::string_view c_e_traffic = "c e traffic";
constexpr std::string_view c_hs_traffic = "c hs traffic";
constexpr std::string_view s_hs_traffic = "s hs traffic";
constexpr std::string_view c_ap_traffic = "c ap traffic";
constexpr std::string_view s_ap_traffic = "s ap traffic";
constexpr std::string_view exp_master = "exp master";
constexpr std::string_view res_master = "res master";
constexpr std::string_view e_exp_master = "e exp master";
}  // namespace label

}  // namespace ustack::tls
