#include "tests/support/certificates.h"

#include <chrono>

#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace roam::test {

bool make_self_signed_certificate(const std::filesystem::path& dir, const std::string& stem,
                                  const std::string& name, std::string* error) {
  auto openssl = find_program("openssl");
  if (!openssl) {
    if (error) *error = "the openssl CLI is not installed (apt-get install openssl)";
    return false;
  }
  const auto cert = dir / (stem + ".pem"), key = dir / (stem + ".key");
  const auto log = dir / (stem + "-openssl.log");
  auto process =
      Process::spawn({*openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                      "/CN=" + name, "-addext", "subjectAltName=DNS:" + name + ",IP:127.0.0.1",
                      "-keyout", key.string(), "-out", cert.string()},
                     log);
  eventually([&] { return !process.running(); }, std::chrono::seconds(30),
             std::chrono::milliseconds(10));
  if (std::filesystem::exists(cert) && std::filesystem::exists(key)) return true;
  if (error) *error = "openssl could not make a certificate:\n" + read_file(log);
  return false;
}

}  // namespace roam::test
