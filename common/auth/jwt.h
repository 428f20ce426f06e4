// HS256 JSON Web Tokens (RFC 7519 over RFC 7515 JWS compact serialization, RFC 7518 §3.2),
// the signaling server's peer tokens: sub = peer id, aud = the service, exp/nbf/iat.
//
// Verification follows RFC 8725 (JWT best current practice): one algorithm only (HS256,
// never "none" or whatever the header asks for), bounded input, strict base64url, unique
// JSON member names, the signature checked in constant time before any claim is read, and
// exp/aud/sub always required. Unix times are passed in: nothing here reads a clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/bytes.h"
#include "common/util/expected.h"

namespace roam::auth::jwt {

// Bounds. Roam's tokens are about 200 bytes; 4 KiB also fits an HTTP header comfortably.
inline constexpr std::size_t kMaxTokenSize = 4096;
// RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash output (256 bits).
inline constexpr std::size_t kMinKeySize = 32;
inline constexpr std::size_t kMaxSubjectSize = 128;  // a peer id, not free text
inline constexpr std::size_t kMaxAudiences = 8;
inline constexpr std::size_t kMaxAudienceSize = 128;
// Nesting depth the JSON parser accepts; claims are flat, this only bounds hostile input.
inline constexpr std::size_t kMaxJsonDepth = 8;
// Clock-skew tolerance for exp and nbf (RFC 7519 §4.1.4: "a small leeway, usually no more
// than a few minutes"). Larger requested leeways are clamped to kMaxLeeway.
inline constexpr std::chrono::seconds kDefaultLeeway{30};
inline constexpr std::chrono::seconds kMaxLeeway{300};
// RFC 7519 §2 NumericDate, limited to 0..9999-12-31T23:59:59Z so time arithmetic never
// overflows.
inline constexpr std::int64_t kMaxNumericDate = 253402300799;

enum class JwtError {
  kWeakKey,               // key shorter than kMinKeySize
  kTooLarge,              // token longer than kMaxTokenSize (or a minted one would be)
  kMalformed,             // not exactly three '.'-separated segments
  kBadEncoding,           // a segment is not strict unpadded base64url
  kBadHeader,             // header not a JSON object, duplicate members, or typ not "JWT"
  kUnsupportedAlgorithm,  // alg missing or not exactly "HS256" ("none", "HS512", "RS256"...)
  kCriticalExtension,     // header has "crit" (RFC 7515 §4.1.11): we understand none
  kBadSignature,          // HMAC mismatch: another key, or an altered token
  kBadPayload,            // claims not a JSON object, or duplicate member names
  kBadClaim,              // a claim of the wrong type or range (e.g. exp as a string)
  kMissingExpiry,         // no exp
  kExpired,               // now >= exp + leeway
  kNotYetValid,           // now + leeway < nbf
  kWrongAudience,         // aud absent or not containing the expected audience
  kMissingSubject,        // sub absent or empty
  kBadSubject,            // sub too long or with control characters
};
// Human text naming the cause and the fix; never contains the token, key or claims.
std::string_view describe(JwtError e);

// The registered claims Roam uses. Other claims are ignored on verify and never minted.
struct Claims {
  std::string subject;                     // "sub": the peer id (1..kMaxSubjectSize bytes)
  std::vector<std::string> audience;       // "aud": a string on the wire when there is one
  std::int64_t expires_at = 0;             // "exp", unix seconds
  std::optional<std::int64_t> not_before;  // "nbf", unix seconds
  std::optional<std::int64_t> issued_at;   // "iat", unix seconds
  bool operator==(const Claims&) const = default;
};

// Signs `claims` as header {"alg":"HS256","typ":"JWT"} . payload . HMAC-SHA256. The claims
// must pass the same checks verify applies to types and sizes (kMissingSubject, kBadSubject,
// kWrongAudience for no audience, kBadClaim); kWeakKey; kTooLarge when the token would
// exceed kMaxTokenSize.
expected<std::string, JwtError> mint(ByteSpan key, const Claims& claims);
// Convenience: sub, a single aud, iat = now_unix, exp = now_unix + ttl.
expected<std::string, JwtError> mint(ByteSpan key, std::string_view subject,
                                     std::string_view audience, std::int64_t now_unix,
                                     std::chrono::seconds ttl);

// The lower layer: size, shape, strict base64url, header (a JSON object, alg exactly "HS256",
// no crit, typ "JWT" if present) and the HMAC-SHA256 signature, compared in constant time.
// Returns the payload (the decoded claims JSON text, not yet interpreted). Use it alone only
// for tokens that are not Roam peer tokens (e.g. RFC 7515's examples); peer tokens go
// through verify().
expected<std::string, JwtError> verify_signature(ByteSpan key, std::string_view token);

struct VerifyOptions {
  std::string_view audience;                     // required: aud must contain exactly this string
  std::chrono::seconds leeway = kDefaultLeeway;  // clamped to 0..kMaxLeeway
};

// The claim checks on an already authenticated payload: a JSON object with unique member
// names; sub a non-empty string without control characters; aud a string or an array of
// strings containing options.audience; exp required; exp/nbf/iat NumericDates within
// 0..kMaxNumericDate (fractions are rounded towards the stricter side); then
// now < exp + leeway and now + leeway >= nbf. Type errors are reported before time and
// audience errors.
expected<Claims, JwtError> check_claims(std::string_view payload_json, std::int64_t now_unix,
                                        const VerifyOptions& options);

// verify_signature, then check_claims on its payload.
expected<Claims, JwtError> verify(ByteSpan key, std::string_view token, std::int64_t now_unix,
                                  const VerifyOptions& options);

// Key rotation: Roam's tokens name no key (no "kid"), so a verifier that accepts the previous
// key as well as the current one tries them in turn. The first key whose signature matches
// decides and its claims are checked; kBadSignature when none matches. An error that does not
// depend on the key (size, shape, header) is returned at once. `signed_by`, when given, gets
// the index of the matching key.
expected<Claims, JwtError> verify_any(std::span<const ByteSpan> keys, std::string_view token,
                                      std::int64_t now_unix, const VerifyOptions& options,
                                      std::size_t* signed_by = nullptr);

}  // namespace roam::auth::jwt
