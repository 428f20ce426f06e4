// The agent's TLS identity for QUIC: a fresh ECDSA P-256 key and a self-signed certificate,
// made once per agent run. Its SHA-256 fingerprint (RFC 8122 §5 text form, "sha-256 AB:..:CD")
// travels in signaling (`hello.fingerprint`) and the peer pins it: no CA is involved, and
// neither the relay nor the network can read or alter the data (architecture.md, security).
#pragma once

#include <memory>
#include <string>

#include "common/util/expected.h"

namespace roam::agent::quic {

class TlsIdentity {
 public:
  // Generates the key pair and the certificate (GnuTLS). Error: GnuTLS refused (named).
  static expected<std::shared_ptr<const TlsIdentity>, std::string> generate();
  ~TlsIdentity();
  TlsIdentity(const TlsIdentity&) = delete;
  TlsIdentity& operator=(const TlsIdentity&) = delete;

  // "sha-256 " + 32 upper-case hex bytes joined by ':' (signaling::valid_fingerprint accepts it).
  const std::string& fingerprint() const { return fingerprint_; }
  // gnutls_certificate_credentials_t holding the key and certificate (for connection.cc).
  void* credentials() const { return credentials_; }

 private:
  TlsIdentity() = default;
  void* credentials_ = nullptr;
  std::string fingerprint_;
};

// The SHA-256 fingerprint of a DER certificate, in the form above.
std::string certificate_fingerprint(const unsigned char* der, std::size_t size);

}  // namespace roam::agent::quic
