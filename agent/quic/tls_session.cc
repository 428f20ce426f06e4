#include "agent/quic/tls_session.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "agent/quic/connection.h"

namespace roam::agent::quic {
namespace {

// TLS 1.3 only (RFC 9001 §4.2); compatibility mode off (§8.4: no ChangeCipherSpec in QUIC);
// the AEADs ngtcp2's GnuTLS helper implements.
constexpr const char* kPriority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305";

std::string gnutls_error(const char* what, int rv) {
  return std::string("TLS session: ") + what + " failed: " + gnutls_strerror(rv);
}

bool same_fingerprint(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

expected<std::unique_ptr<TlsSession>, std::string> TlsSession::create(
    bool is_server, const TlsIdentity& identity, std::string peer_fingerprint) {
  std::unique_ptr<TlsSession> self(new TlsSession());
  self->peer_fingerprint_ = std::move(peer_fingerprint);
  self->ref_.get_conn = &TlsSession::get_conn;
  self->ref_.user_data = self.get();

  // No session tickets (no resumption, no 0-RTT); QUIC has no EndOfEarlyData (RFC 9001 §8.3).
  const unsigned flags =
      is_server ? GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA
                : GNUTLS_CLIENT;
  if (int rv = gnutls_init(&self->session_, flags); rv < 0) {
    self->session_ = nullptr;
    return unexpected(gnutls_error("gnutls_init", rv));
  }
  if (int rv = gnutls_priority_set_direct(self->session_, kPriority, nullptr); rv < 0) {
    return unexpected(gnutls_error("gnutls_priority_set_direct", rv));
  }
  const int rv = is_server ? ngtcp2_crypto_gnutls_configure_server_session(self->session_)
                           : ngtcp2_crypto_gnutls_configure_client_session(self->session_);
  if (rv != 0) return unexpected(std::string("TLS session: ngtcp2 GnuTLS setup failed"));
  // ngtcp2's helper expects the session pointer to be its connection reference.
  gnutls_session_set_ptr(self->session_, &self->ref_);
  if (int r = gnutls_credentials_set(
          self->session_, GNUTLS_CRD_CERTIFICATE,
          static_cast<gnutls_certificate_credentials_t>(identity.credentials()));
      r < 0) {
    return unexpected(gnutls_error("gnutls_credentials_set", r));
  }
  gnutls_datum_t alpn{.data = reinterpret_cast<unsigned char*>(const_cast<char*>(kAlpn)),
                      .size = static_cast<unsigned>(std::string_view(kAlpn).size())};
  if (int r = gnutls_alpn_set_protocols(
          self->session_, &alpn, 1,
          GNUTLS_ALPN_MANDATORY | (is_server ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0));
      r < 0) {
    return unexpected(gnutls_error("gnutls_alpn_set_protocols", r));
  }
  if (is_server) {
    // Mutual authentication: the client must show the certificate its peer pinned. No CA
    // names in the request (there are none; the client must not filter on them).
    gnutls_certificate_server_set_request(self->session_, GNUTLS_CERT_REQUIRE);
    gnutls_certificate_send_x509_rdn_sequence(self->session_, 1);
  }
  gnutls_session_set_verify_function(self->session_, &TlsSession::verify_peer);
  return self;
}

TlsSession::~TlsSession() {
  if (session_) gnutls_deinit(session_);
}

void TlsSession::attach(ngtcp2_conn* conn) {
  conn_ = conn;
  ngtcp2_conn_set_tls_native_handle(conn, session_);
}

ngtcp2_conn* TlsSession::get_conn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<TlsSession*>(ref->user_data)->conn_;
}

// Runs when the peer's Certificate message arrives (both ends). ALPN is settled by then: the
// client saw EncryptedExtensions, the server the ClientHello. Nonzero fails the handshake.
int TlsSession::verify_peer(gnutls_session_t session) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
  auto* self = static_cast<TlsSession*>(ref->user_data);

  gnutls_datum_t selected{};
  const std::string_view want(kAlpn);
  if (gnutls_alpn_get_selected_protocol(session, &selected) != 0 ||
      std::string_view(reinterpret_cast<const char*>(selected.data), selected.size) != want) {
    self->rejection_ = std::string("peer did not negotiate ALPN \"") + kAlpn + "\"";
    return -1;
  }
  unsigned count = 0;
  const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
  if (chain == nullptr || count == 0) {
    self->rejection_ = "peer presented no certificate";
    return -1;
  }
  const std::string got = certificate_fingerprint(chain[0].data, chain[0].size);
  if (!same_fingerprint(got, self->peer_fingerprint_)) {
    self->rejection_ = "peer certificate fingerprint mismatch (expected " +
                       self->peer_fingerprint_ + ", got " + got + ")";
    return -1;
  }
  return 0;
}

}  // namespace roam::agent::quic
