#include "agent/quic/tls_identity.h"

#include <array>
#include <ctime>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

namespace roam::agent::quic {
namespace {

// Validity: an hour back tolerates a peer whose clock is behind; nothing checks the dates (the
// fingerprint is pinned), but a well-formed certificate keeps every TLS stack happy.
constexpr std::time_t kBackdate = 3600;
constexpr std::time_t kLifetime = 30 * 24 * 3600;
constexpr const char* kSubject = "CN=roam-agent";

std::string gnutls_error(const char* what, int rv) {
  return std::string("TLS identity: ") + what + " failed: " + gnutls_strerror(rv);
}

struct KeyGuard {
  gnutls_x509_privkey_t key = nullptr;
  ~KeyGuard() {
    if (key) gnutls_x509_privkey_deinit(key);
  }
};
struct CrtGuard {
  gnutls_x509_crt_t crt = nullptr;
  ~CrtGuard() {
    if (crt) gnutls_x509_crt_deinit(crt);
  }
};

}  // namespace

expected<std::shared_ptr<const TlsIdentity>, std::string> TlsIdentity::generate() {
  KeyGuard key;
  if (int rv = gnutls_x509_privkey_init(&key.key); rv < 0) {
    return unexpected(gnutls_error("gnutls_x509_privkey_init", rv));
  }
  if (int rv = gnutls_x509_privkey_generate(key.key, GNUTLS_PK_ECDSA,
                                            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
      rv < 0) {
    return unexpected(gnutls_error("ECDSA P-256 key generation", rv));
  }

  CrtGuard crt;
  if (int rv = gnutls_x509_crt_init(&crt.crt); rv < 0) {
    return unexpected(gnutls_error("gnutls_x509_crt_init", rv));
  }
  // A positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets, non-negative).
  std::array<unsigned char, 16> serial{};
  if (int rv = gnutls_rnd(GNUTLS_RND_NONCE, serial.data(), serial.size()); rv < 0) {
    return unexpected(gnutls_error("gnutls_rnd", rv));
  }
  serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x01);
  const std::time_t now = std::time(nullptr);
  const char* error_at = nullptr;
  int rv = gnutls_x509_crt_set_version(crt.crt, 3);
  if (rv >= 0) rv = gnutls_x509_crt_set_serial(crt.crt, serial.data(), serial.size());
  if (rv >= 0) rv = gnutls_x509_crt_set_activation_time(crt.crt, now - kBackdate);
  if (rv >= 0) rv = gnutls_x509_crt_set_expiration_time(crt.crt, now + kLifetime);
  if (rv >= 0) rv = gnutls_x509_crt_set_dn(crt.crt, kSubject, &error_at);
  if (rv >= 0) rv = gnutls_x509_crt_set_key(crt.crt, key.key);
  if (rv >= 0) rv = gnutls_x509_crt_set_basic_constraints(crt.crt, 0, -1);
  if (rv >= 0) rv = gnutls_x509_crt_set_key_usage(crt.crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (rv < 0) return unexpected(gnutls_error("certificate fields", rv));
  if (rv = gnutls_x509_crt_sign2(crt.crt, crt.crt, key.key, GNUTLS_DIG_SHA256, 0); rv < 0) {
    return unexpected(gnutls_error("self-signing the certificate", rv));
  }

  gnutls_datum_t der{};
  if (rv = gnutls_x509_crt_export2(crt.crt, GNUTLS_X509_FMT_DER, &der); rv < 0) {
    return unexpected(gnutls_error("certificate DER export", rv));
  }
  std::string fingerprint = certificate_fingerprint(der.data, der.size);
  gnutls_free(der.data);
  if (fingerprint.empty()) return unexpected(std::string("TLS identity: SHA-256 failed"));

  gnutls_certificate_credentials_t credentials = nullptr;
  if (rv = gnutls_certificate_allocate_credentials(&credentials); rv < 0) {
    return unexpected(gnutls_error("gnutls_certificate_allocate_credentials", rv));
  }
  // The credentials keep their own copies of the key and the certificate.
  if (rv = gnutls_certificate_set_x509_key(credentials, &crt.crt, 1, key.key); rv < 0) {
    gnutls_certificate_free_credentials(credentials);
    return unexpected(gnutls_error("gnutls_certificate_set_x509_key", rv));
  }

  std::shared_ptr<TlsIdentity> identity(new TlsIdentity());
  identity->credentials_ = credentials;
  identity->fingerprint_ = std::move(fingerprint);
  return identity;
}

TlsIdentity::~TlsIdentity() {
  if (credentials_) {
    gnutls_certificate_free_credentials(
        static_cast<gnutls_certificate_credentials_t>(credentials_));
  }
}

std::string certificate_fingerprint(const unsigned char* der, std::size_t size) {
  std::array<unsigned char, 32> digest{};
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, size, digest.data()) < 0) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "sha-256 ";
  for (std::size_t i = 0; i < digest.size(); ++i) {
    if (i) out += ':';
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0f];
  }
  return out;
}

}  // namespace roam::agent::quic
