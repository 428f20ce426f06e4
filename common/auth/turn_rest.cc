#include "common/auth/turn_rest.h"

#include <charconv>

#include "common/crypto/digest.h"
#include "common/util/bytes.h"

namespace roam::auth::turn_rest {
namespace {

// Decimal digits of kMaxUnixTime: longer expiry fields are malformed without parsing them.
constexpr std::size_t kMaxExpiryDigits = 12;

bool valid_secret(std::string_view secret) {
  return secret.size() >= kMinSecretSize && secret.size() <= kMaxSecretSize;
}

bool valid_peer_id(std::string_view peer_id) {
  if (peer_id.empty() || peer_id.size() > kMaxPeerIdSize) return false;
  for (char c : peer_id) {
    if (c < 0x21 || c > 0x7e || c == kSeparator) return false;
  }
  return true;
}

bool valid_time(std::int64_t t) {
  return t >= 0 && t <= kMaxUnixTime;
}

std::string password_for(std::string_view secret, std::string_view username) {
  return crypto::base64_encode(crypto::hmac_sha1(as_bytes(secret), as_bytes(username)));
}

}  // namespace

std::string_view describe(TurnRestError e) {
  switch (e) {
    case TurnRestError::kBadSecret:
      return "TURN REST shared secret must be 16 to 1024 bytes; set coturn's static-auth-secret "
             "and Roam's copy to the same long random value (e.g. `openssl rand -base64 32`)";
    case TurnRestError::kBadPeerId:
      return "peer id for TURN credentials must be 1 to 128 visible ASCII characters without "
             "':'; fix the peer id (it comes from the authenticated token's sub)";
    case TurnRestError::kBadTtl:
      return "TURN credential lifetime must be between 1 second and 24 hours; configure a "
             "shorter ttl (minutes are recommended)";
    case TurnRestError::kBadTime:
      return "current time is negative or past year 9999; the caller passed a wrong clock value";
    case TurnRestError::kMalformedUsername:
      return "TURN username is not \"<expiry unix seconds>:<peer id>\"; it was not minted by "
             "this scheme, so request fresh credentials";
    case TurnRestError::kWrongPassword:
      return "TURN password does not match the username under the shared secret; the secret "
             "differs between minter and server, or the credentials were altered";
    case TurnRestError::kExpired:
      return "TURN credentials have expired; request fresh credentials from roam-signaling";
  }
  return "unknown TURN REST credential error";
}

expected<Credentials, TurnRestError> mint(std::string_view secret, std::string_view peer_id,
                                          std::int64_t now_unix, std::chrono::seconds ttl) {
  if (!valid_secret(secret)) return unexpected(TurnRestError::kBadSecret);
  if (!valid_peer_id(peer_id)) return unexpected(TurnRestError::kBadPeerId);
  if (ttl < std::chrono::seconds{1} || ttl > kMaxTtl) return unexpected(TurnRestError::kBadTtl);
  if (!valid_time(now_unix)) return unexpected(TurnRestError::kBadTime);
  // Both bounded above, so the sum cannot overflow; verify() accepts expiries up to
  // kMaxUnixTime only, so mint nothing beyond it.
  const std::int64_t expiry = now_unix + ttl.count();
  if (!valid_time(expiry)) return unexpected(TurnRestError::kBadTime);
  Credentials c;
  c.username = std::to_string(expiry);
  c.username += kSeparator;
  c.username += peer_id;
  c.password = password_for(secret, c.username);
  c.expires_at_unix = expiry;
  return c;
}

expected<Verified, TurnRestError> verify(std::string_view secret, std::string_view username,
                                         std::string_view password, std::int64_t now_unix) {
  if (!valid_secret(secret)) return unexpected(TurnRestError::kBadSecret);
  if (!valid_time(now_unix)) return unexpected(TurnRestError::kBadTime);
  const auto colon = username.find(kSeparator);
  if (colon == std::string_view::npos) return unexpected(TurnRestError::kMalformedUsername);
  const auto expiry_text = username.substr(0, colon);
  const auto peer_id = username.substr(colon + 1);
  std::int64_t expiry = 0;
  if (expiry_text.empty() || expiry_text.size() > kMaxExpiryDigits || expiry_text.front() == '-' ||
      expiry_text.front() == '+') {
    return unexpected(TurnRestError::kMalformedUsername);
  }
  auto [end, ec] =
      std::from_chars(expiry_text.data(), expiry_text.data() + expiry_text.size(), expiry);
  if (ec != std::errc{} || end != expiry_text.data() + expiry_text.size() || !valid_time(expiry) ||
      !valid_peer_id(peer_id)) {
    return unexpected(TurnRestError::kMalformedUsername);
  }
  // Lengths are public (always 28 base64 characters); the content comparison is not.
  const auto expected_password = password_for(secret, username);
  if (!crypto::constant_time_equal(as_bytes(expected_password), as_bytes(password))) {
    return unexpected(TurnRestError::kWrongPassword);
  }
  if (now_unix > expiry) return unexpected(TurnRestError::kExpired);
  return Verified{std::string(peer_id), expiry};
}

}  // namespace roam::auth::turn_rest
