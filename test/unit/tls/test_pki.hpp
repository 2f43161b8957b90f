// Test-only PKI made in memory with libcrypto: a CA and leaf certificates
// for RSA-2048, P-256 and Ed25519 keys, with DNS and IP subjectAltNames.
// Nothing here is written to disk or reused outside the tests.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "tls/crypto.hpp"

namespace ustack::tls::test {

enum class KeyKind { rsa, p256, ed25519 };

inline PKey make_key(KeyKind k) {
  switch (k) {
    case KeyKind::rsa: return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    case KeyKind::p256: return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    case KeyKind::ed25519: return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  }
  return PKey{};
}

struct TestCert {
  PKey key;
  X509* x509 = nullptr;
  Buf der;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

// Issued by `issuer` (self-signed when null), valid from an hour ago for a day.
inline TestCert make_cert(KeyKind kind, const std::string& cn, const std::string& san, const TestCert* issuer,
                          bool ca, long serial = 1) {
  TestCert c;
  c.key = make_key(kind);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, c.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer->x509 : x;
  X509_set_issuer_name(x, X509_get_subject_name(iss));
  if (ca) {
    add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, iss, NID_basic_constraints, "CA:FALSE");
    add_ext(x, iss, NID_ext_key_usage, "serverAuth,clientAuth");
    if (!san.empty()) add_ext(x, iss, NID_subject_alt_name, san.c_str());
  }
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : c.key.get();
  const bool no_digest = EVP_PKEY_is_a(signer, "ED25519");
  X509_sign(x, signer, no_digest ? nullptr : EVP_sha256());
  c.x509 = x;
  unsigned char* der = nullptr;
  const int n = i2d_X509(x, &der);
  c.der.assign(der, der + n);
  OPENSSL_free(der);
  return c;
}

// A CA (P-256) and one leaf per key kind for "localhost" / 127.0.0.1.
struct TestPki {
  TestCert ca;
  TestCert leaf[3];
  TrustStore trust;
  TestPki() {
    ca = make_cert(KeyKind::p256, "ustack test CA", "", nullptr, true);
    X509_STORE_add_cert(trust.get(), ca.x509);
    const KeyKind kinds[] = {KeyKind::rsa, KeyKind::p256, KeyKind::ed25519};
    for (int i = 0; i < 3; ++i) {
      leaf[i] = make_cert(kinds[i], "localhost", "DNS:localhost,IP:127.0.0.1", &ca, false, 2 + i);
    }
  }
  ~TestPki() {
    X509_free(ca.x509);
    for (auto& l : leaf) X509_free(l.x509);
  }
  static TestPki& get() {
    static TestPki p;
    return p;
  }
};

}  // namespace ustack::tls::test
