// TURN REST credentials: coturn's `use-auth-secret` / `static-auth-secret` scheme
// (draft-uberti-behave-turn-rest-00 §2.2), shared between roam-signaling (mints them for each
// session's peer) and coturn (checks them):
//
//   username = "<expiry as unix seconds>:<peer id>"
//   password = base64(HMAC-SHA1(shared secret, username))
//
// The password is then used as an ordinary long-term credential (RFC 8489 §9.2). Unix times
// are passed in by the caller: nothing here reads a clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/util/expected.h"

namespace roam::auth::turn_rest {

// Bounds. The username must fit STUN's USERNAME (RFC 8489 §14.3: < 513 bytes) with room to
// spare; a peer id is an identifier, not free text.
inline constexpr std::size_t kMaxPeerIdSize = 128;
// Our policy, not the draft's: a short shared secret can be brute-forced offline from one
// observed username/password pair. Generate it with e.g. `openssl rand -base64 32`.
inline constexpr std::size_t kMinSecretSize = 16;
inline constexpr std::size_t kMaxSecretSize = 1024;
// Our security notes ask for short-lived credentials (minutes); the draft's recommended
// one day (§2.2, "ttl") is the ceiling.
inline constexpr std::chrono::seconds kDefaultTtl{600};
inline constexpr std::chrono::seconds kMaxTtl{24 * 3600};
// Unix times beyond 9999-12-31T23:59:59Z are refused so arithmetic can never overflow.
inline constexpr std::int64_t kMaxUnixTime = 253402300799;
// coturn's default `rest-api-separator`.
inline constexpr char kSeparator = ':';

enum class TurnRestError {
  kBadSecret,          // shorter than kMinSecretSize or longer than kMaxSecretSize
  kBadPeerId,          // empty, longer than kMaxPeerIdSize, or not visible ASCII without ':'
  kBadTtl,             // ttl not in 1 s..kMaxTtl
  kBadTime,            // now_unix negative, or now_unix (+ ttl) past kMaxUnixTime
  kMalformedUsername,  // not "<digits>:<peer id>" (verify only)
  kWrongPassword,      // HMAC mismatch (verify only)
  kExpired,            // the username's expiry has passed (verify only)
};
// Human text naming the cause and the fix; never contains secrets or passwords.
std::string_view describe(TurnRestError e);

struct Credentials {
  std::string username;
  std::string password;
  std::int64_t expires_at_unix = 0;
  bool operator==(const Credentials&) const = default;
};

// Mints credentials for `peer_id` valid until now_unix + ttl. peer_id must be 1..128 visible
// ASCII characters (0x21-0x7E) other than ':', so the username has exactly one shape and
// cannot carry another peer's id or a forged expiry.
expected<Credentials, TurnRestError> mint(std::string_view secret, std::string_view peer_id,
                                          std::int64_t now_unix,
                                          std::chrono::seconds ttl = kDefaultTtl);

struct Verified {
  std::string peer_id;
  std::int64_t expires_at_unix = 0;
};

// Checks a username/password pair the way coturn does: the password must equal
// base64(HMAC-SHA1(secret, username)) (compared in constant time), then the expiry must not
// have passed (valid while now_unix <= expiry, as coturn). The password is checked first, so
// "expired" is only reported for genuine credentials.
expected<Verified, TurnRestError> verify(std::string_view secret, std::string_view username,
                                         std::string_view password, std::int64_t now_unix);

}  // namespace roam::auth::turn_rest
