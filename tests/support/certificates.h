// Test certificates made by the openssl CLI (Debian's openssl package): what a deployment's
// certificate looks like to wolfSSL, without shipping key material in the repository.
#pragma once

#include <filesystem>
#include <string>

namespace roam::test {

// Writes `dir`/`stem`.pem and `dir`/`stem`.key: a self-signed P-256 certificate for `name`,
// valid two days, with subjectAltName DNS:`name` and IP:127.0.0.1. False (with openssl's
// output or "openssl is not installed" in `error`) when it could not.
bool make_self_signed_certificate(const std::filesystem::path& dir, const std::string& stem,
                                  const std::string& name, std::string* error = nullptr);

}  // namespace roam::test
