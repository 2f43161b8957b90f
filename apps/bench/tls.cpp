// ustack-bench tls: TLS 1.3 handshakes per second and their latency, ustack's
// engine (src/tls, record face) beside OpenSSL's libssl, in the same run.
//
// Both sides do the same work per handshake on one thread, in memory: a
// client and a server, TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519, an
// ECDSA P-256 leaf issued by a P-256 CA; the client verifies the chain and
// the name "localhost"; the server issues one session ticket, and the
// handshake ends when the client has taken it (so a resumed handshake can
// follow). ustack's bytes move between two RecordConnections; libssl's
// through a BIO pair. A resumed handshake is psk_dhe_ke (an X25519
// exchange, no certificate) from a ticket of an earlier full handshake,
// reused for every iteration (no early data, so no anti-replay cost).
//
// The two implementations alternate in rounds so that load from other work
// on the shared machine lands on both. Only this file links libssl: the
// engine itself uses libcrypto alone.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "apps/bench/cases.hpp"
#include "core/alloc_counter.hpp"
#include "tls/record_layer.hpp"

namespace ustack::bench {

namespace {

using tls::Buf;
using tls::PKey;

constexpr int kRounds = 10;

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ustack-bench tls: %s\n", what);
  std::exit(1);
}

// ---- a CA and a leaf, made in memory ----

struct Cert {
  PKey key;
  X509* x509 = nullptr;
  Buf der;
};

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (e == nullptr) die("certificate extension");
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

Cert make_cert(const char* cn, const Cert* issuer) {
  Cert c;
  c.key = PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509* x = X509_new();
  if (!c.key || x == nullptr) die("key generation");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), issuer != nullptr ? 2 : 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, c.key.get());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer->x509 : x;
  X509_set_issuer_name(x, X509_get_subject_name(iss));
  if (issuer == nullptr) {
    add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, iss, NID_basic_constraints, "CA:FALSE");
    add_ext(x, iss, NID_ext_key_usage, "serverAuth");
    add_ext(x, iss, NID_subject_alt_name, "DNS:localhost");
  }
  if (X509_sign(x, issuer != nullptr ? issuer->key.get() : c.key.get(), EVP_sha256()) == 0) die("certificate signing");
  c.x509 = x;
  unsigned char* der = nullptr;
  const int n = i2d_X509(x, &der);
  c.der.assign(der, der + n);
  OPENSSL_free(der);
  return c;
}

// ---- ustack ----

struct UstackSide {
  tls::TrustStore trust;
  tls::ClientConfig cc;
  tls::ServerConfig sc;
  std::optional<tls::Session> session;

  UstackSide(const Cert& ca, const Cert& leaf) {
    X509_STORE_add_cert(trust.get(), ca.x509);
    cc.server_name = "localhost";
    cc.trust = &trust;
    cc.cipher_suites = {tls::TLS_AES_128_GCM_SHA256};
    cc.groups = {tls::group::x25519};
    cc.key_share_groups = {tls::group::x25519};
    sc.cert_chain = {leaf.der};
    sc.key = leaf.key;
    sc.cipher_suites = {tls::TLS_AES_128_GCM_SHA256};
    sc.groups = {tls::group::x25519};
    tls::TicketKey k;
    tls::random_bytes(k.name);
    tls::random_bytes(k.key);
    sc.ticket_keys = {k};
  }

  // One handshake; false on any failure. `resume`: offer the saved ticket.
  bool handshake(bool resume) {
    if (resume) {
      cc.session = session;
    } else {
      cc.session.reset();
    }
    tls::RecordConnection client(cc), server(sc);
    if (!client.start() || !server.start()) return false;
    for (int i = 0; i < 16; ++i) {
      const Buf a = client.take_output();
      if (!a.empty() && !server.feed(a)) return false;
      const Buf b = server.take_output();
      if (!b.empty() && !client.feed(b)) return false;
      if (client.handshake_complete() && server.handshake_complete() && !client.engine().sessions().empty()) {
        if (resume != client.engine().resumed()) return false;
        if (!resume) session = client.engine().sessions().back();
        return true;
      }
    }
    return false;
  }
};

// ---- OpenSSL libssl ----

struct OpensslSide {
  SSL_CTX* client_ctx = nullptr;
  SSL_CTX* server_ctx = nullptr;
  SSL_SESSION* session = nullptr;

  OpensslSide(const Cert& ca, const Cert& leaf) {
    client_ctx = SSL_CTX_new(TLS_client_method());
    server_ctx = SSL_CTX_new(TLS_server_method());
    if (client_ctx == nullptr || server_ctx == nullptr) die("SSL_CTX_new");
    for (SSL_CTX* ctx : {client_ctx, server_ctx}) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
      if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1 || SSL_CTX_set1_groups_list(ctx, "X25519") != 1)
        die("libssl configuration");
    }
    // The server issues one ticket (ustack's does too) and keeps no session
    // cache: TLS 1.3 tickets are stateless on both sides.
    SSL_CTX_set_num_tickets(server_ctx, 1);
    SSL_CTX_set_session_cache_mode(server_ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate(server_ctx, leaf.x509) != 1 || SSL_CTX_use_PrivateKey(server_ctx, leaf.key.get()) != 1)
      die("libssl certificate");
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, nullptr);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), ca.x509);
  }
  ~OpensslSide() {
    SSL_SESSION_free(session);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
  }

  bool handshake(bool resume) {
    SSL* c = SSL_new(client_ctx);
    SSL* s = SSL_new(server_ctx);
    BIO *cb = nullptr, *sb = nullptr;
    bool ok = c != nullptr && s != nullptr && BIO_new_bio_pair(&cb, 0, &sb, 0) == 1;
    if (ok) {
      SSL_set_bio(c, cb, cb);
      SSL_set_bio(s, sb, sb);
      SSL_set_connect_state(c);
      SSL_set_accept_state(s);
      ok = SSL_set_tlsext_host_name(c, "localhost") == 1 && SSL_set1_host(c, "localhost") == 1 &&
           (!resume || SSL_set_session(c, session) == 1);
    }
    bool c_done = false, s_done = false, ticket = false;
    for (int i = 0; ok && i < 16 && !(c_done && s_done && ticket); ++i) {
      if (!c_done) {
        const int r = SSL_do_handshake(c);
        c_done = r == 1;
        if (r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ) ok = false;
      }
      if (!s_done) {
        const int r = SSL_do_handshake(s);
        s_done = r == 1;
        if (r <= 0 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
          ok = false;
      }
      if (c_done && s_done) {
        // The ticket arrives after the client's handshake: a read takes it in.
        unsigned char byte;
        const int r = SSL_read(c, &byte, 1);
        if (r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ) ok = false;
        SSL_SESSION* got = SSL_get0_session(c);
        ticket = got != nullptr && SSL_SESSION_is_resumable(got) == 1;
      }
    }
    ok = ok && c_done && s_done && ticket && (SSL_session_reused(c) == 1) == resume;
    if (ok && !resume) {
      SSL_SESSION_free(session);
      session = SSL_get1_session(c);
    }
    // Freeing a connection that never shut down marks its session not
    // resumable (ssl_clear_bad_session); these ended cleanly, as far as the
    // benchmark is concerned, so say so without sending close_notify.
    if (c != nullptr) SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    if (s != nullptr) SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c);
    SSL_free(s);
    return ok;
  }
};

struct Run {
  std::vector<std::uint64_t> ns;
  std::uint64_t total_ns = 0;
  std::uint64_t allocs = 0;
};

template <class Side>
void measure(Side& side, bool resume, std::uint64_t n, Run& run, const char* who) {
  const std::uint64_t a0 = thread_alloc_count();
  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t s = now_ns();
    if (!side.handshake(resume)) {
      std::fprintf(stderr, "ustack-bench tls: %s %s handshake failed\n", who, resume ? "resumed" : "full");
      std::exit(1);
    }
    run.ns.push_back(now_ns() - s);
  }
  run.total_ns += now_ns() - t0;
  run.allocs += thread_alloc_count() - a0;
}

Figures figures(Run& r) {
  Figures f;
  const double n = static_cast<double>(r.ns.size());
  fill_latency(f, r.ns);
  f.ops_per_sec = f.p50_ns > 0 ? 1e9 / f.p50_ns : 0;
  f.ops_per_sec_wall = r.total_ns > 0 ? n * 1e9 / static_cast<double>(r.total_ns) : 0;
  return f;
}

CaseResult run_case(UstackSide& u, OpensslSide& o, bool resume, std::uint64_t n) {
  Run ur, orun;
  ur.ns.reserve(n);
  orun.ns.reserve(n);
  // Warm both up (code, caches, the first ticket), then alternate rounds.
  measure(u, resume, 20, ur, "ustack");
  measure(o, resume, 20, orun, "openssl");
  ur = Run{};
  orun = Run{};
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t k = n / kRounds + (static_cast<std::uint64_t>(round) < n % kRounds ? 1 : 0);
    measure(u, resume, k, ur, "ustack");
    measure(o, resume, k, orun, "openssl");
  }
  CaseResult c;
  c.name = resume ? "tls_resumed_handshake" : "tls_full_handshake";
  c.what = resume ? "TLS 1.3 resumed handshake (psk_dhe_ke, X25519, new ticket), client+server on one core"
                  : "TLS 1.3 full handshake (X25519, ECDSA P-256 chain verified, one ticket), client+server on one core";
  const std::uint64_t ua = ur.allocs, oa = orun.allocs;
  c.ustack = figures(ur);
  c.kernel = figures(orun);
  c.baseline = "openssl";
  c.shown = show::kLatency | show::kOps;
  c.ops_unit = "hs/s";
  char note[256];
  std::snprintf(note, sizeof note,
                "hs/s at the median; whole-run %.0f vs %.0f hs/s; heap allocations per handshake ustack %.0f, "
                "openssl %.0f",
                c.ustack.ops_per_sec_wall, c.kernel->ops_per_sec_wall,
                static_cast<double>(ua) / static_cast<double>(n), static_cast<double>(oa) / static_cast<double>(n));
  c.note = note;
  const bool met = c.ustack.ops_per_sec >= c.kernel->ops_per_sec;
  c.goal = std::string("at least as fast as OpenSSL's libssl (issue 6): ") + (met ? "met" : "MISSED");
  return c;
}

}  // namespace

std::vector<CaseResult> bench_tls(const TlsOptions& opt) {
  const Cert ca = make_cert("ustack bench CA", nullptr);
  const Cert leaf = make_cert("localhost", &ca);
  std::vector<CaseResult> out;
  {
    UstackSide u(ca, leaf);
    OpensslSide o(ca, leaf);
    out.push_back(run_case(u, o, false, opt.iterations));
    out.push_back(run_case(u, o, true, opt.iterations));
  }
  X509_free(ca.x509);
  X509_free(leaf.x509);
  return out;
}

}  // namespace ustack::bench
