// The GnuTLS side of one QUIC connection: TLS 1.3 only, ALPN "roam/1" mandatory, both ends
// present their certificate and pin the peer's by fingerprint (no CA). ngtcp2's GnuTLS helper
// drives the handshake through the session; this class only builds and checks it.
#pragma once

#include <memory>
#include <string>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "agent/quic/tls_identity.h"
#include "common/util/expected.h"

namespace roam::agent::quic {

class TlsSession {
 public:
  // Error: GnuTLS refused a setting (named).
  static expected<std::unique_ptr<TlsSession>, std::string> create(bool is_server,
                                                                   const TlsIdentity& identity,
                                                                   std::string peer_fingerprint);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Binds the session to its connection (ngtcp2's crypto callbacks find the connection through
  // the session); call right after creating the ngtcp2_conn.
  void attach(ngtcp2_conn* conn);
  gnutls_session_t native() const { return session_; }

  // Why this end rejected the peer during the handshake (fingerprint, ALPN); empty otherwise.
  const std::string& rejection() const { return rejection_; }

 private:
  TlsSession() = default;
  static ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref);
  static int verify_peer(gnutls_session_t session);

  gnutls_session_t session_ = nullptr;
  ngtcp2_crypto_conn_ref ref_{};
  ngtcp2_conn* conn_ = nullptr;
  std::string peer_fingerprint_;
  std::string rejection_;
};

}  // namespace roam::agent::quic
