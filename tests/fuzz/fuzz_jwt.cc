// Fuzzes JWT verification. The input is tried twice: as a whole token (strict shape,
// base64url, header and signature checks) and, because a fuzzer cannot forge HMACs, directly
// as a claims payload. Properties: never crashes; any claims check_claims() accepts can be
// minted (unless the token would be too large) and the minted token verifies back to equal
// claims; any token that verifies re-mints to a token that verifies to the same claims; a key
// ring holding another key before the corpus key gives verify()'s answer, with index 1.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/auth/jwt.h"

namespace {

using namespace roam::auth::jwt;

// The corpus tokens in corpus/jwt/ are signed with this key.
constexpr std::string_view kKey = "roam-fuzz-jwt-key-0123456789abcdef";
constexpr std::string_view kOtherKey = "roam-fuzz-jwt-other-key-0123456789ab";
constexpr std::int64_t kNow = 1700000000;
const VerifyOptions kOptions{"roam-signaling", kDefaultLeeway};

void check_round_trip(const Claims& claims) {
  auto token = mint(roam::as_bytes(kKey), claims);
  if (!token) {
    if (token.error() != JwtError::kTooLarge) std::abort();
    return;
  }
  auto back = verify(roam::as_bytes(kKey), *token, kNow, kOptions);
  if (!back || !(*back == claims)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto verified = verify(roam::as_bytes(kKey), text, kNow, kOptions);
  if (verified) {
    check_round_trip(*verified);
  } else if (describe(verified.error()).empty()) {
    std::abort();
  }
  const std::array<roam::ByteSpan, 2> ring{roam::as_bytes(kOtherKey), roam::as_bytes(kKey)};
  std::size_t signed_by = 0;
  auto by_ring = verify_any(ring, text, kNow, kOptions, &signed_by);
  if (by_ring.has_value() != verified.has_value()) std::abort();
  if (verified && (!(*by_ring == *verified) || signed_by != 1)) std::abort();
  if (!verified && by_ring.error() != verified.error()) std::abort();
  (void)verify_signature(roam::as_bytes(kKey), text);
  auto claims = check_claims(text, kNow, kOptions);
  if (claims) check_round_trip(*claims);
  return 0;
}
