#include "common/auth/jwt.h"

#include <array>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/crypto/digest.h"

namespace roam::auth::jwt {
namespace {

using std::chrono::seconds;

constexpr std::string_view kKeyText = "roam-pyjwt-crosscheck-key-0123456789abcdef";  // 42 bytes
const ByteSpan kKey = as_bytes(kKeyText);
constexpr std::string_view kAudience = "roam-signaling";
constexpr std::int64_t kNow = 1700000100;
constexpr std::string_view kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

std::string b64(std::string_view s) {
  return crypto::base64url_encode(as_bytes(s));
}

// Builds a token from raw header and payload JSON, signed with HMAC-SHA256 whatever the
// header says: lets each test change exactly one thing.
std::string sign(std::string_view header, std::string_view payload, ByteSpan key = kKey) {
  std::string t = b64(header) + "." + b64(payload);
  return t + "." + crypto::base64url_encode(crypto::hmac_sha256(key, as_bytes(t)));
}

std::string claims_json(std::string_view extra = "") {
  return R"({"sub":"peer-42","aud":"roam-signaling","exp":1700000600)" + std::string(extra) + "}";
}

VerifyOptions options(seconds leeway = kDefaultLeeway) {
  return {kAudience, leeway};
}

JwtError verify_error(std::string_view token, std::int64_t now = kNow) {
  auto r = verify(kKey, token, now, options());
  EXPECT_FALSE(r);
  return r ? JwtError{} : r.error();
}

JwtError payload_error(std::string_view payload) {
  return verify_error(sign(kHs256Header, payload));
}

// --- Published and independent vectors ----------------------------------------------------

// RFC 7515 Appendix A.1: JWS using HMAC SHA-256. Its claims have no sub/aud (Roam would
// reject them), so the signature layer is checked on its own.
TEST(JwtRfc7515, AppendixA1Signature) {
  const auto key = crypto::base64url_decode(
                       "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwj"
                       "AzZr1Z9CAow")
                       .value();
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  auto payload = verify_signature(key, token);
  ASSERT_TRUE(payload) << describe(payload.error());
  EXPECT_EQ(*payload,
            "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");
  // The claims layer then refuses it for the missing subject, whatever the time.
  EXPECT_EQ(check_claims(*payload, 1300819000, options()).error(), JwtError::kMissingSubject);
  // One flipped signature character breaks it.
  auto tampered = token;
  tampered[tampered.rfind('.') + 1] = 'e';
  EXPECT_EQ(verify_signature(key, tampered).error(), JwtError::kBadSignature);
}

// Minted once with Debian's python3-jwt 2.6.0 (an independent implementation):
//   jwt.encode({"sub":"peer-42","aud":"roam-signaling","iat":1700000000,"nbf":1700000000,
//               "exp":1700000600}, b"roam-pyjwt-crosscheck-key-0123456789abcdef", "HS256")
constexpr std::string_view kPyJwtToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJwZWVyLTQyIiwiYXVkIjoicm9hbS1zaWduYWxpbmciLCJpYXQiOjE3MDAwMDAwMDAsIm5iZiI6MTcwMDAw"
    "MDAwMCwiZXhwIjoxNzAwMDAwNjAwfQ.TtIQ23ZU13YRL_ztIJRGMO7X7uuYFFxe22JJEhbXBq8";
// And with a kid header, an audience array, a fractional exp and an unknown nested claim:
//   jwt.encode({"sub":"peer-7","aud":["other","roam-signaling"],"exp":1700000600.5,
//               "extra":{"nested":[1,2]}}, key, "HS256", headers={"kid":"k1"})
constexpr std::string_view kPyJwtToken2 =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJwZWVyLTciLCJhdWQiOlsib3RoZXIiLCJyb2FtLXNpZ25hbGluZyJdLCJleHAiOjE3MDAwMDA2MDAuNSwi"
    "ZXh0cmEiOnsibmVzdGVkIjpbMSwyXX19.ft2qtwmQ7Rl8SEYehYvJfqRLVbAHQ2xnQbSD7C09MTg";

TEST(JwtPyJwt, VerifiesTokensMintedByPyJwt) {
  auto c = verify(kKey, kPyJwtToken, kNow, options());
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_EQ(*c, (Claims{.subject = "peer-42",
                        .audience = {"roam-signaling"},
                        .expires_at = 1700000600,
                        .not_before = 1700000000,
                        .issued_at = 1700000000}));
  auto c2 = verify(kKey, kPyJwtToken2, kNow, options());
  ASSERT_TRUE(c2) << describe(c2.error());
  EXPECT_EQ(c2->subject, "peer-7");
  EXPECT_EQ(c2->audience, (std::vector<std::string>{"other", "roam-signaling"}));
  EXPECT_EQ(c2->expires_at, 1700000600);  // 1700000600.5 rounded down (the stricter side)
  EXPECT_FALSE(c2->not_before);
}

TEST(JwtPyJwt, MintIsByteIdenticalToPyJwt) {
  // Same claims, same member order, same compact JSON: the same token.
  auto token = mint(kKey, Claims{.subject = "peer-42",
                                 .audience = {"roam-signaling"},
                                 .expires_at = 1700000600,
                                 .not_before = 1700000000,
                                 .issued_at = 1700000000});
  ASSERT_TRUE(token) << describe(token.error());
  EXPECT_EQ(*token, kPyJwtToken);
}

// --- Mint / verify ------------------------------------------------------------------------

TEST(JwtMint, RoundTrip) {
  auto token = mint(kKey, "peer-1", kAudience, kNow, seconds{600});
  ASSERT_TRUE(token) << describe(token.error());
  EXPECT_TRUE(token->starts_with(b64(kHs256Header) + "."));
  auto c = verify(kKey, *token, kNow, options());
  ASSERT_TRUE(c) << describe(c.error());
  EXPECT_EQ(c->subject, "peer-1");
  EXPECT_EQ(c->audience, std::vector<std::string>{"roam-signaling"});
  EXPECT_EQ(c->issued_at, kNow);
  EXPECT_EQ(c->expires_at, kNow + 600);
  EXPECT_FALSE(c->not_before);

  Claims many{.subject =
                  "p\xc3\xa9"
                  "er \"quoted\"",
              .audience = {"a", "roam-signaling", "b"},
              .expires_at = kNow + 10,
              .not_before = kNow - 5};
  auto t2 = mint(kKey, many);
  ASSERT_TRUE(t2);
  EXPECT_EQ(verify(kKey, *t2, kNow, options()), many);
}

TEST(JwtMint, RejectsInvalidClaimsAndKeys) {
  const Claims good{.subject = "p", .audience = {"roam-signaling"}, .expires_at = kNow};
  EXPECT_TRUE(mint(kKey, good));
  EXPECT_EQ(mint(kKey.first(kMinKeySize - 1), good).error(), JwtError::kWeakKey);
  EXPECT_TRUE(mint(kKey.first(kMinKeySize), good));
  auto c = good;
  c.subject = "";
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kMissingSubject);
  c = good;
  c.subject = std::string(kMaxSubjectSize + 1, 's');
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kBadSubject);
  c = good;
  c.audience = {};
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kWrongAudience);
  c.audience = {""};
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kBadClaim);
  c.audience = std::vector<std::string>(kMaxAudiences + 1, "a");
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kBadClaim);
  c = good;
  c.expires_at = -1;
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kBadClaim);
  c = good;
  c.not_before = kMaxNumericDate + 1;
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kBadClaim);
  EXPECT_EQ(mint(kKey, "p", kAudience, -5, seconds{60}).error(), JwtError::kBadClaim);
  EXPECT_EQ(mint(kKey, "p", kAudience, kMaxNumericDate, seconds{60}).error(), JwtError::kBadClaim);
  // Escaped control characters make each audience six times longer: over 4 KiB.
  c = good;
  c.audience = std::vector<std::string>(kMaxAudiences, std::string(kMaxAudienceSize, '\x01'));
  EXPECT_EQ(mint(kKey, c).error(), JwtError::kTooLarge);
}

// --- Time ---------------------------------------------------------------------------------

TEST(JwtVerify, ExpiryWithLeeway) {
  const auto token = sign(kHs256Header, claims_json());  // exp 1700000600
  EXPECT_TRUE(verify(kKey, token, 1700000629, options()));
  EXPECT_EQ(verify(kKey, token, 1700000630, options()).error(), JwtError::kExpired);
  EXPECT_TRUE(verify(kKey, token, 1700000599, options(seconds{0})));
  EXPECT_EQ(verify(kKey, token, 1700000600, options(seconds{0})).error(), JwtError::kExpired);
  // Negative leeway counts as zero; huge leeway is clamped to kMaxLeeway.
  EXPECT_TRUE(verify(kKey, token, 1700000599, options(seconds{-100})));
  EXPECT_TRUE(verify(kKey, token, 1700000600 + kMaxLeeway.count() - 1, options(seconds{36000})));
  EXPECT_EQ(verify(kKey, token, 1700000600 + kMaxLeeway.count(), options(seconds{36000})).error(),
            JwtError::kExpired);
}

TEST(JwtVerify, NotBeforeWithLeeway) {
  const auto token = sign(kHs256Header, claims_json(R"(,"nbf":1700000130)"));
  EXPECT_TRUE(verify(kKey, token, 1700000100, options()));  // 30 s early: within leeway
  EXPECT_EQ(verify(kKey, token, 1700000099, options()).error(), JwtError::kNotYetValid);
  EXPECT_EQ(verify(kKey, token, 1700000129, options(seconds{0})).error(), JwtError::kNotYetValid);
  EXPECT_TRUE(verify(kKey, token, 1700000130, options(seconds{0})));
  // A fractional nbf rounds up (the stricter side).
  const auto frac = sign(kHs256Header, claims_json(R"(,"nbf":1700000129.2)"));
  EXPECT_EQ(verify(kKey, frac, 1700000129, options(seconds{0})).error(), JwtError::kNotYetValid);
}

// --- Audience and subject -----------------------------------------------------------------

TEST(JwtVerify, Audience) {
  const auto token = sign(kHs256Header, claims_json());
  EXPECT_EQ(verify(kKey, token, kNow, {"other-service"}).error(), JwtError::kWrongAudience);
  EXPECT_EQ(verify(kKey, token, kNow, {""}).error(), JwtError::kWrongAudience);
  EXPECT_EQ(verify(kKey, token, kNow, {"ROAM-SIGNALING"}).error(), JwtError::kWrongAudience);
  EXPECT_EQ(payload_error(R"({"sub":"p","exp":1700000600})"), JwtError::kWrongAudience);
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":[],"exp":1700000600})"), JwtError::kWrongAudience);
  EXPECT_TRUE(verify(kKey,
                     sign(kHs256Header, R"({"sub":"p","aud":["x","roam-signaling"],)"
                                        R"("exp":1700000600})"),
                     kNow, options()));
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":7,"exp":1700000600})"), JwtError::kBadClaim);
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":["roam-signaling",7],"exp":1700000600})"),
            JwtError::kBadClaim);
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":"","exp":1700000600})"), JwtError::kBadClaim);
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":["a","b","c","d","e","f","g","h","roam-signaling"],)"
                          R"("exp":1700000600})"),
            JwtError::kBadClaim);
}

TEST(JwtVerify, Subject) {
  EXPECT_EQ(payload_error(R"({"aud":"roam-signaling","exp":1700000600})"),
            JwtError::kMissingSubject);
  EXPECT_EQ(payload_error(R"({"sub":"","aud":"roam-signaling","exp":1700000600})"),
            JwtError::kMissingSubject);
  EXPECT_EQ(payload_error(R"({"sub":42,"aud":"roam-signaling","exp":1700000600})"),
            JwtError::kBadClaim);
  EXPECT_EQ(payload_error(R"({"sub":"a\nb","aud":"roam-signaling","exp":1700000600})"),
            JwtError::kBadSubject);
  EXPECT_EQ(payload_error(R"({"sub":")" + std::string(kMaxSubjectSize + 1, 's') +
                          R"(","aud":"roam-signaling","exp":1700000600})"),
            JwtError::kBadSubject);
  EXPECT_TRUE(verify(kKey,
                     sign(kHs256Header, R"({"sub":")" + std::string(kMaxSubjectSize, 's') +
                                            R"(","aud":"roam-signaling","exp":1700000600})"),
                     kNow, options()));
}

// --- Claim types --------------------------------------------------------------------------

TEST(JwtVerify, ClaimTypes) {
  EXPECT_EQ(payload_error(R"({"sub":"p","aud":"roam-signaling"})"), JwtError::kMissingExpiry);
  for (std::string_view exp : {R"("1700000600")", "true", "null", "[1700000600]", "-1", "1e300",
                               "18446744073709551615", "253402300800"}) {
    EXPECT_EQ(payload_error(R"({"sub":"p","aud":"roam-signaling","exp":)" + std::string(exp) + "}"),
              JwtError::kBadClaim)
        << exp;
  }
  EXPECT_EQ(payload_error(claims_json(R"(,"nbf":"1700000000")")), JwtError::kBadClaim);
  EXPECT_EQ(payload_error(claims_json(R"(,"iat":"now")")), JwtError::kBadClaim);
  // Type errors win over time errors: an expired token with a bad nbf reports the type.
  EXPECT_EQ(verify_error(sign(kHs256Header, claims_json(R"(,"nbf":{})")), 1800000000),
            JwtError::kBadClaim);
  // Unknown claims are ignored.
  EXPECT_TRUE(verify(kKey, sign(kHs256Header, claims_json(R"(,"iss":"x","roles":[1,{"a":null}])")),
                     kNow, options()));
}

TEST(JwtVerify, PayloadMustBeAnObjectWithUniqueMembers) {
  for (std::string_view payload :
       {"[1]", "\"str\"", "null", "42", "not json", "", R"({"sub":"p",})", R"({"sub":"p"} x)"}) {
    EXPECT_EQ(payload_error(payload), JwtError::kBadPayload) << payload;
  }
  EXPECT_EQ(payload_error(R"({"sub":"evil","sub":"peer-42","aud":"roam-signaling",)"
                          R"("exp":1700000600})"),
            JwtError::kBadPayload);
  EXPECT_EQ(payload_error(claims_json(R"(,"exp":1900000000)")), JwtError::kBadPayload);
  // Duplicates in nested objects are not claims and do not matter.
  EXPECT_TRUE(
      verify(kKey, sign(kHs256Header, claims_json(R"(,"x":{"a":1,"a":2})")), kNow, options()));
  // Nesting deeper than kMaxJsonDepth.
  EXPECT_EQ(payload_error(claims_json(R"(,"x":[[[[[[[[[1]]]]]]]]])")), JwtError::kBadPayload);
}

// --- Header and algorithm -----------------------------------------------------------------

TEST(JwtVerify, AlgorithmMustBeHs256) {
  const auto payload = claims_json();
  // alg "none" with an empty signature (the classic downgrade) and with our HMAC anyway.
  EXPECT_EQ(verify_error(b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(payload) + "."),
            JwtError::kUnsupportedAlgorithm);
  for (std::string_view header :
       {R"({"alg":"none"})", R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"RS256","typ":"JWT"})",
        R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"alg":256})", R"({"typ":"JWT"})",
        R"({"alg":["HS256"]})"}) {
    EXPECT_EQ(verify_error(sign(header, payload)), JwtError::kUnsupportedAlgorithm) << header;
  }
  EXPECT_TRUE(verify(kKey, sign(R"({"alg":"HS256"})", payload), kNow, options()));
}

TEST(JwtVerify, HeaderChecks) {
  const auto payload = claims_json();
  EXPECT_EQ(verify_error(sign(R"({"alg":"HS256","crit":["exp"]})", payload)),
            JwtError::kCriticalExtension);
  EXPECT_EQ(verify_error(sign(R"({"alg":"HS256","b64":false,"crit":["b64"]})", payload)),
            JwtError::kCriticalExtension);
  EXPECT_EQ(verify_error(sign(R"({"alg":"HS256","typ":"at+jwt"})", payload)), JwtError::kBadHeader);
  EXPECT_EQ(verify_error(sign(R"({"alg":"HS256","typ":1})", payload)), JwtError::kBadHeader);
  EXPECT_TRUE(
      verify(kKey, sign(R"({"alg":"HS256","typ":"jwt","kid":"k"})", payload), kNow, options()));
  EXPECT_EQ(verify_error(sign(R"(["HS256"])", payload)), JwtError::kBadHeader);
  EXPECT_EQ(verify_error(sign("", payload)), JwtError::kBadHeader);
  // A duplicate alg could mean "none" to another parser.
  EXPECT_EQ(verify_error(sign(R"({"alg":"none","alg":"HS256"})", payload)), JwtError::kBadHeader);
}

// --- Signature, encoding, shape -----------------------------------------------------------

TEST(JwtVerify, TamperingIsDetected) {
  const auto token = sign(kHs256Header, claims_json());
  const auto dot1 = token.find('.');
  const auto dot2 = token.rfind('.');
  // Swap in another payload but keep the signature.
  const auto other = token.substr(0, dot1 + 1) +
                     b64(R"({"sub":"peer-43","aud":"roam-signaling","exp":1700000600})") +
                     token.substr(dot2);
  EXPECT_EQ(verify_error(other), JwtError::kBadSignature);
  // Flip one signature character (the first: the last one carries padding bits).
  auto sig = token;
  sig[dot2 + 1] = sig[dot2 + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_error(sig), JwtError::kBadSignature);
  // Empty signature; a well-encoded signature of the wrong length (33 bytes).
  EXPECT_EQ(verify_error(token.substr(0, dot2 + 1)), JwtError::kBadSignature);
  EXPECT_EQ(verify_error(token + "A"), JwtError::kBadSignature);
  // Another key.
  EXPECT_EQ(
      verify(as_bytes("another-key-of-sufficient-length-32b"), token, kNow, options()).error(),
      JwtError::kBadSignature);
  EXPECT_EQ(verify(kKey.first(kMinKeySize - 1), token, kNow, options()).error(),
            JwtError::kWeakKey);
}

TEST(JwtVerify, StrictBase64Url) {
  const auto token = sign(kHs256Header, claims_json());
  const auto dot2 = token.rfind('.');
  EXPECT_EQ(verify_error(token + "="), JwtError::kBadEncoding);  // padding
  EXPECT_EQ(verify_error("+" + token.substr(1)), JwtError::kBadEncoding);
  auto slash = token;
  slash[dot2 + 1] = '/';
  EXPECT_EQ(verify_error(slash), JwtError::kBadEncoding);
  EXPECT_EQ(verify_error(token + "AA"), JwtError::kBadEncoding);  // 45 chars: impossible length
  EXPECT_EQ(verify_error(" " + token), JwtError::kBadEncoding);
  // Non-canonical: the last of 43 characters carries 2 unused bits, which must be zero, so
  // canonical last characters are A, E, I, ... and never B.
  auto noncanonical = token;
  noncanonical.back() = 'B';
  EXPECT_EQ(verify_error(noncanonical), JwtError::kBadEncoding);
}

TEST(JwtVerify, ShapeAndSize) {
  const auto token = sign(kHs256Header, claims_json());
  EXPECT_EQ(verify_error(""), JwtError::kMalformed);
  EXPECT_EQ(verify_error("abc"), JwtError::kMalformed);
  EXPECT_EQ(verify_error(token.substr(0, token.rfind('.'))), JwtError::kMalformed);  // 2
  EXPECT_EQ(verify_error(token + ".x"), JwtError::kMalformed);                       // 4
  EXPECT_EQ(verify_error(token + "."), JwtError::kMalformed);
  EXPECT_EQ(verify_error(".."), JwtError::kBadHeader);
  std::string big = sign(kHs256Header, claims_json(R"(,"pad":")" + std::string(3000, 'p') + "\""));
  ASSERT_GT(big.size(), kMaxTokenSize);
  EXPECT_EQ(verify_error(big), JwtError::kTooLarge);
  EXPECT_EQ(verify_error(std::string(kMaxTokenSize + 1, 'a')), JwtError::kTooLarge);
}

// ---- key rotation --------------------------------------------------------------------------

TEST(JwtVerifyAny, TheKeyThatSignedDecidesAndItsIndexIsReported) {
  const auto current = as_bytes("current-key-of-sufficient-length-32bytes");
  const auto previous = as_bytes("previous-key-of-sufficient-length-32byte");
  const std::array<ByteSpan, 2> ring{current, previous};
  std::size_t signed_by = 99;
  auto claims =
      verify_any(ring, sign(kHs256Header, claims_json(), previous), kNow, options(), &signed_by);
  ASSERT_TRUE(claims) << describe(claims.error());
  EXPECT_EQ(claims->subject, "peer-42");
  EXPECT_EQ(signed_by, 1u);
  ASSERT_TRUE(
      verify_any(ring, sign(kHs256Header, claims_json(), current), kNow, options(), &signed_by));
  EXPECT_EQ(signed_by, 0u);
  // A key outside the ring, and an empty ring.
  EXPECT_EQ(verify_any(ring, sign(kHs256Header, claims_json()), kNow, options()).error(),
            JwtError::kBadSignature);
  EXPECT_EQ(verify_any({}, sign(kHs256Header, claims_json()), kNow, options()).error(),
            JwtError::kBadSignature);
}

TEST(JwtVerifyAny, ClaimsOfTheMatchingKeyAreCheckedAndKeylessErrorsComeFirst) {
  const auto current = as_bytes("current-key-of-sufficient-length-32bytes");
  const std::array<ByteSpan, 2> ring{current, kKey};
  // Signed by the second key but expired: the claim error, not "bad signature".
  EXPECT_EQ(verify_any(ring, sign(kHs256Header, claims_json()), 1700000600 + 31, options()).error(),
            JwtError::kExpired);
  EXPECT_EQ(verify_any(ring, "abc", kNow, options()).error(), JwtError::kMalformed);
  EXPECT_EQ(verify_any(ring, sign(R"({"alg":"none"})", claims_json()), kNow, options()).error(),
            JwtError::kUnsupportedAlgorithm);
}

TEST(JwtErrors, DescriptionsAreDistinct) {
  std::set<std::string_view> texts;
  for (int e = 0; e <= static_cast<int>(JwtError::kBadSubject); ++e) {
    auto text = describe(static_cast<JwtError>(e));
    EXPECT_GT(text.size(), 20u);
    EXPECT_TRUE(texts.insert(text).second) << text;
  }
  EXPECT_NE(describe(JwtError::kExpired).find("roam-signaling token"), std::string_view::npos);
}

}  // namespace
}  // namespace roam::auth::jwt
