// Hashes, HMACs and encodings over wolfCrypt, for STUN integrity (RFC 8489 §14.5, §14.6),
// long-term keys (§9.2.2), TURN REST passwords and JWT HS256 signatures.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/util/bytes.h"

namespace roam::crypto {

using Md5Digest = std::array<std::byte, 16>;
using Sha1Digest = std::array<std::byte, 20>;
using Sha256Digest = std::array<std::byte, 32>;

Md5Digest md5(ByteSpan data);
Sha1Digest sha1(ByteSpan data);
Sha256Digest sha256(ByteSpan data);
Sha1Digest hmac_sha1(ByteSpan key, ByteSpan data);
Sha256Digest hmac_sha256(ByteSpan key, ByteSpan data);

// Incremental SHA-256 for streamed data (file transfers).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(ByteSpan data);
  Sha256Digest finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// CRC-32 (ISO-HDLC, the one STUN FINGERPRINT uses: RFC 8489 §14.7).
std::uint32_t crc32(ByteSpan data);

// Compares in time independent of where the inputs differ. Lengths are not secret.
bool constant_time_equal(ByteSpan a, ByteSpan b);

// RFC 4648 §4 (padded) and §5 (URL-safe, unpadded, as JWT uses).
std::string base64_encode(ByteSpan data);
std::string base64url_encode(ByteSpan data);
// Strict: rejects characters outside the alphabet and bad padding.
std::optional<Bytes> base64_decode(std::string_view text);
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace roam::crypto
