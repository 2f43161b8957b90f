// See key_schedule.hpp for the RFC sections.
#include "tls/key_schedule.hpp"

namespace ustack::tls {

namespace {
Secret empty_hash(const Suite& s) { return hash(s, {}); }
}  // namespace

void KeySchedule::start(const Suite& s, Bytes psk) {
  suite_ = &s;
  secret_ = hkdf_extract(s, {}, psk);
}

void KeySchedule::to_handshake(Bytes ecdhe) {
  const Secret salt = derive_secret(*suite_, secret_.bytes(), "derived", empty_hash(*suite_).bytes());
  secret_ = hkdf_extract(*suite_, salt.bytes(), ecdhe);
}

void KeySchedule::to_master() {
  const Secret salt = derive_secret(*suite_, secret_.bytes(), "derived", empty_hash(*suite_).bytes());
  secret_ = hkdf_extract(*suite_, salt.bytes(), {});
}

Secret KeySchedule::derive(std::string_view l, Bytes transcript_hash) const {
  return derive_secret(*suite_, secret_.bytes(), l, transcript_hash);
}

Secret KeySchedule::binder_key(bool resumption) const {
  return derive(resumption ? "res binder" : "ext binder", empty_hash(*suite_).bytes());
}

Secret finished_verify_data(const Suite& s, Bytes base_key, Bytes transcript_hash) {
  const Secret fk = hkdf_expand_label(s, base_key, "finished", {}, s.hash_len);
  return hmac(s, fk.bytes(), transcript_hash);
}

Secret next_traffic_secret(const Suite& s, Bytes secret) {
  return hkdf_expand_label(s, secret, "traffic upd", {}, s.hash_len);
}

Secret resumption_psk(const Suite& s, Bytes res_master, Bytes nonce) {
  return hkdf_expand_label(s, res_master, "resumption", nonce, s.hash_len);
}

}  // namespace ustack::tls
