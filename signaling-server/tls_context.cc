#include "signaling-server/tls_context.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/ssl.h>

namespace roam::signaling {
namespace {

constexpr const char* kCipherPreference =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

template <class T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, std::integral_constant<decltype(Free), Free>>;

// A certificate chain or key file is a few KiB; anything near this is not one.
constexpr std::uintmax_t kMaxPemBytes = 1024 * 1024;

// The whole of `file`, read once: the context is loaded from these bytes and the pair check
// runs on the same bytes, so a renewal that lands between two reads cannot split them.
std::string read_pem(const std::string& file, const char* option) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(file, ec);
  const auto size = regular ? std::filesystem::file_size(file, ec) : 0;
  std::ifstream in(file, std::ios::binary);
  if (!regular || ec || !in) {
    throw std::runtime_error(std::string(option) + ": cannot read '" + file + "'");
  }
  if (size > kMaxPemBytes) {
    throw std::runtime_error(std::string(option) + ": '" + file + "' is over " +
                             std::to_string(kMaxPemBytes) + " bytes: not a PEM file");
  }
  return {std::istreambuf_iterator<char>(in), {}};
}

// Whether a signature by the key in `key_pem` verifies with the public key of the first
// certificate in `cert_pem`. A mismatched pair fails every handshake (a renewal caught
// half-written, say), and neither loading nor Debian's wolfSSL_CTX_check_private_key /
// X509_check_private_key notice one: both accept another certificate's ECDSA key (wolfSSL
// 5.5.4, seen here). A signature cannot be fooled that way.
bool key_signs_for_certificate(const std::string& cert_pem, const std::string& key_pem) {
  Owned<WOLFSSL_BIO, wolfSSL_BIO_free_all> cert_bio(
      wolfSSL_BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  Owned<WOLFSSL_BIO, wolfSSL_BIO_free_all> key_bio(
      wolfSSL_BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  if (!cert_bio || !key_bio) return false;
  Owned<WOLFSSL_X509, wolfSSL_X509_free> cert(
      wolfSSL_PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  Owned<WOLFSSL_EVP_PKEY, wolfSSL_EVP_PKEY_free> key(
      wolfSSL_PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!cert || !key) return false;
  Owned<WOLFSSL_EVP_PKEY, wolfSSL_EVP_PKEY_free> public_key(wolfSSL_X509_get_pubkey(cert.get()));
  Owned<WOLFSSL_EVP_MD_CTX, wolfSSL_EVP_MD_CTX_free> sign(wolfSSL_EVP_MD_CTX_new());
  Owned<WOLFSSL_EVP_MD_CTX, wolfSSL_EVP_MD_CTX_free> verify(wolfSSL_EVP_MD_CTX_new());
  if (!public_key || !sign || !verify) return false;
  constexpr std::string_view kProbe = "roam-signaling: does this key belong to --cert?";
  std::array<unsigned char, 1024> signature{};  // RSA-8192 at most
  std::size_t length = signature.size();
  return wolfSSL_EVP_DigestSignInit(sign.get(), nullptr, wolfSSL_EVP_sha256(), nullptr,
                                    key.get()) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestSignUpdate(sign.get(), kProbe.data(), kProbe.size()) ==
             WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestSignFinal(sign.get(), signature.data(), &length) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyInit(verify.get(), nullptr, wolfSSL_EVP_sha256(), nullptr,
                                      public_key.get()) == WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyUpdate(verify.get(), kProbe.data(), kProbe.size()) ==
             WOLFSSL_SUCCESS &&
         wolfSSL_EVP_DigestVerifyFinal(verify.get(), signature.data(), length) == WOLFSSL_SUCCESS;
}

// Why a chain did not load. Through Asio's buffer path Debian's wolfSSL 5.5.4 leaves no reason
// on its error queue ("unknown error number (, )"), so the common causes are told here.
std::string certificate_chain_problem(std::string_view pem, const boost::system::error_code& ec) {
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string_view::npos) {
    return "no PEM certificate in it (no '-----BEGIN CERTIFICATE-----' line)";
  }
  const std::string reason = ec.message();
  if (!reason.starts_with("unknown error")) return reason;
  return "a certificate in it does not parse (truncated or corrupt PEM)";
}

}  // namespace

boost::asio::ssl::context make_server_tls_context(const std::string& cert_file,
                                                  const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  const std::string cert_pem = read_pem(cert_file, "--cert");
  const std::string key_pem = read_pem(key_file, "--key");
  // RFC 8996: TLS 1.0 and 1.1 are deprecated; the agent and browsers speak 1.2 or 1.3.
  ssl::context context(ssl::context::tls_server);
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
  // Server order, ChaCha20-Poly1305 first: Debian's wolfSSL is built without AES-NI, and on a
  // signaling-sized (~300-byte) record its C AES-128-GCM costs 3.4 us against ChaCha20-Poly1305's
  // 1.7 us (measured here). Both are RFC 8446 §9.1 suites; AES-GCM stays for clients without
  // ChaCha20. TLS 1.2 keeps ECDHE only (forward secrecy, security.md).
  if (::SSL_CTX_set_cipher_list(context.native_handle(), kCipherPreference) != 1) {
    throw std::runtime_error("TLS: wolfSSL refused the cipher list");
  }
  boost::system::error_code ec;
  context.use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) {
    throw std::runtime_error("--cert: cannot load the PEM certificate chain '" + cert_file +
                             "': " + certificate_chain_problem(cert_pem, ec));
  }
  context.use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
  if (ec) {
    throw std::runtime_error("--key: cannot load the PEM private key '" + key_file +
                             "': " + ec.message());
  }
  if (!key_signs_for_certificate(cert_pem, key_pem)) {
    throw std::runtime_error("--key: the private key '" + key_file +
                             "' does not belong to the certificate in '" + cert_file + "'");
  }
  return context;
}

}  // namespace roam::signaling
