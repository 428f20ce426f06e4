// The server's TLS context (wolfSSL through Boost.Asio's OpenSSL-compatible API).
#pragma once

#include <string>

#include <boost/asio/ssl/context.hpp>

namespace roam::signaling {

// TLS 1.2 and 1.3 only, certificate chain and key from PEM files. Throws std::runtime_error
// naming the file and the cause when a file cannot be loaded or the key does not match.
boost::asio::ssl::context make_server_tls_context(const std::string& cert_file,
                                                  const std::string& key_file);

}  // namespace roam::signaling
