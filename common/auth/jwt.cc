#include "common/auth/jwt.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "common/crypto/digest.h"
#include "common/util/json_sax.h"

namespace roam::auth::jwt {
namespace {

namespace json = boost::json;

// RFC 7515 §4.1.1, RFC 7518 §3.1: the only algorithm accepted or produced.
constexpr std::string_view kAlgorithm = "HS256";
// RFC 7519 §5.1: the recommended "typ" value (media type names are case-insensitive).
constexpr std::string_view kType = "JWT";
constexpr std::string_view kMintedHeader = R"({"alg":"HS256","typ":"JWT"})";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

// Counts the members of the top-level object as written, duplicates included. Boost.JSON
// keeps only the last of duplicate keys (RFC 7515 §5.2 allows that), but a token with
// duplicates is ambiguous across implementations, so we compare this count with the parsed
// object's size and reject any difference (RFC 7519 §4: "MUST either reject ... or").
struct MemberCounter : json_sax::IgnoreAll {
  std::size_t depth = 0;
  std::size_t top_level_members = 0;

  bool on_array_begin(json::error_code&) {
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth;
    return true;
  }
  bool on_object_begin(json::error_code&) {
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t n, json::error_code&) {
    if (depth == 1) top_level_members = n;
    --depth;
    return true;
  }
};

json::parse_options strict_options() {
  json::parse_options opts;  // standard JSON only: no comments, trailing commas, bad UTF-8
  opts.max_depth = kMaxJsonDepth;
  return opts;
}

// A JSON object with unique member names, or nullopt.
std::optional<json::object> parse_object(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, json::storage_ptr(),
                              strict_options());
  if (ec || !v.is_object()) return std::nullopt;
  json::basic_parser<MemberCounter> counter(strict_options());
  counter.write_some(false, text.data(), text.size(), ec);
  if (ec || counter.handler().top_level_members != v.get_object().size()) return std::nullopt;
  return std::move(v.get_object());
}

std::optional<std::string> decode_segment(std::string_view segment) {
  auto bytes = crypto::base64url_decode(segment);
  if (!bytes) return std::nullopt;
  return std::string(as_chars(*bytes));
}

bool valid_subject(std::string_view s) {
  if (s.empty() || s.size() > kMaxSubjectSize) return false;
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool valid_audience(std::string_view a) {
  return !a.empty() && a.size() <= kMaxAudienceSize;
}

bool valid_date(std::int64_t t) {
  return t >= 0 && t <= kMaxNumericDate;
}

enum class Round { kDown, kUp };

// RFC 7519 §2 NumericDate: a JSON number of seconds, possibly fractional. Fractions are
// rounded towards the stricter side by the caller's choice (exp down, nbf up).
std::optional<std::int64_t> numeric_date(const json::value& v, Round round) {
  std::int64_t t = -1;
  if (v.is_int64()) {
    t = v.get_int64();
  } else if (v.is_uint64()) {
    return std::nullopt;  // above INT64_MAX, far beyond kMaxNumericDate
  } else if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxNumericDate)) {
      return std::nullopt;
    }
    t = static_cast<std::int64_t>(round == Round::kDown ? std::floor(d) : std::ceil(d));
  } else {
    return std::nullopt;
  }
  if (!valid_date(t)) return std::nullopt;
  return t;
}

// Checks what mint() is given against the rules check_claims() applies to what it reads.
expected<void, JwtError> validate(const Claims& c) {
  if (c.subject.empty()) return unexpected(JwtError::kMissingSubject);
  if (!valid_subject(c.subject)) return unexpected(JwtError::kBadSubject);
  if (c.audience.empty()) return unexpected(JwtError::kWrongAudience);
  if (c.audience.size() > kMaxAudiences ||
      !std::all_of(c.audience.begin(), c.audience.end(),
                   [](const std::string& a) { return valid_audience(a); })) {
    return unexpected(JwtError::kBadClaim);
  }
  if (!valid_date(c.expires_at) || (c.not_before && !valid_date(*c.not_before)) ||
      (c.issued_at && !valid_date(*c.issued_at))) {
    return unexpected(JwtError::kBadClaim);
  }
  return {};
}

std::chrono::seconds clamp_leeway(std::chrono::seconds leeway) {
  return std::clamp(leeway, std::chrono::seconds{0}, kMaxLeeway);
}

}  // namespace

std::string_view describe(JwtError e) {
  switch (e) {
    case JwtError::kWeakKey:
      return "JWT key is shorter than 32 bytes (RFC 7518 section 3.2 requires 256 bits for "
             "HS256); configure a longer random key";
    case JwtError::kTooLarge:
      return "token is larger than 4096 bytes; mint a smaller token (shorter sub and aud)";
    case JwtError::kMalformed:
      return "token is not three base64url segments joined by '.' (header.payload.signature); "
             "send the token exactly as minted by `roam-signaling token`";
    case JwtError::kBadEncoding:
      return "token segment is not valid unpadded base64url; the token was truncated or "
             "altered in transit";
    case JwtError::kBadHeader:
      return "token header is not a JSON object with unique members and typ \"JWT\"; mint the "
             "token with `roam-signaling token`";
    case JwtError::kUnsupportedAlgorithm:
      return "token algorithm is not HS256 (alg missing, \"none\", or another algorithm); only "
             "HS256 is accepted, so mint the token with `roam-signaling token`";
    case JwtError::kCriticalExtension:
      return "token header lists critical extensions (crit) that this server does not "
             "understand; mint a plain HS256 token";
    case JwtError::kBadSignature:
      return "token signature does not match: it was signed with another key or altered; check "
             "that the signer and this server share the same key";
    case JwtError::kBadPayload:
      return "token claims are not a JSON object with unique member names; mint a new token "
             "with `roam-signaling token`";
    case JwtError::kBadClaim:
      return "a token claim has the wrong type or range (exp, nbf and iat must be seconds since "
             "1970 before year 10000, aud a string or an array of up to 8 strings); mint a new "
             "token with `roam-signaling token`";
    case JwtError::kMissingExpiry:
      return "token has no exp claim, and tokens must expire; mint one with a lifetime using "
             "`roam-signaling token`";
    case JwtError::kExpired:
      return "token has expired; mint a new one with `roam-signaling token` (or check this "
             "host's clock)";
    case JwtError::kNotYetValid:
      return "token is not valid yet (its nbf is in the future); check the clocks of the "
             "signer and this server";
    case JwtError::kWrongAudience:
      return "token audience (aud) is missing or does not name this service; mint a token for "
             "this service's audience";
    case JwtError::kMissingSubject:
      return "token has no sub claim (the peer id); mint a token with a subject";
    case JwtError::kBadSubject:
      return "token subject (sub) is longer than 128 bytes or contains control characters; use "
             "a plain peer id";
  }
  return "unknown JWT error";
}

expected<std::string, JwtError> mint(ByteSpan key, const Claims& claims) {
  if (key.size() < kMinKeySize) return unexpected(JwtError::kWeakKey);
  if (auto ok = validate(claims); !ok) return unexpected(ok.error());

  json::object payload;
  payload["sub"] = claims.subject;
  if (claims.audience.size() == 1) {
    payload["aud"] = claims.audience.front();
  } else {
    json::array aud;
    for (const auto& a : claims.audience)
      aud.emplace_back(a);
    payload["aud"] = std::move(aud);
  }
  if (claims.issued_at) payload["iat"] = *claims.issued_at;
  if (claims.not_before) payload["nbf"] = *claims.not_before;
  payload["exp"] = claims.expires_at;

  std::string token = crypto::base64url_encode(as_bytes(kMintedHeader));
  token += '.';
  token += crypto::base64url_encode(as_bytes(json::serialize(payload)));
  const auto signature = crypto::hmac_sha256(key, as_bytes(token));
  token += '.';
  token += crypto::base64url_encode(signature);
  if (token.size() > kMaxTokenSize) return unexpected(JwtError::kTooLarge);
  return token;
}

expected<std::string, JwtError> mint(ByteSpan key, std::string_view subject,
                                     std::string_view audience, std::int64_t now_unix,
                                     std::chrono::seconds ttl) {
  Claims c;
  c.subject = std::string(subject);
  c.audience = {std::string(audience)};
  c.issued_at = now_unix;
  // Out-of-range inputs make expires_at invalid (rejected by validate) instead of wrapping.
  c.expires_at = valid_date(now_unix) && ttl.count() >= 0 && ttl.count() <= kMaxNumericDate
                     ? now_unix + ttl.count()
                     : -1;
  return mint(key, c);
}

expected<std::string, JwtError> verify_signature(ByteSpan key, std::string_view token) {
  if (key.size() < kMinKeySize) return unexpected(JwtError::kWeakKey);
  if (token.size() > kMaxTokenSize) return unexpected(JwtError::kTooLarge);
  const auto first = token.find('.');
  if (first == std::string_view::npos) return unexpected(JwtError::kMalformed);
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return unexpected(JwtError::kMalformed);
  }
  const auto header_b64 = token.substr(0, first);
  const auto payload_b64 = token.substr(first + 1, second - first - 1);
  const auto signature_b64 = token.substr(second + 1);

  // RFC 8725 §3.1: the algorithm is ours to choose; the header may only confirm it.
  auto header_text = decode_segment(header_b64);
  if (!header_text) return unexpected(JwtError::kBadEncoding);
  auto header = parse_object(*header_text);
  if (!header) return unexpected(JwtError::kBadHeader);
  const auto* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != kAlgorithm) {
    return unexpected(JwtError::kUnsupportedAlgorithm);
  }
  if (header->contains("crit")) return unexpected(JwtError::kCriticalExtension);
  if (const auto* typ = header->if_contains("typ")) {
    if (!typ->is_string() ||
        !iequals(std::string_view(typ->get_string().data(), typ->get_string().size()), kType)) {
      return unexpected(JwtError::kBadHeader);
    }
  }

  auto signature = crypto::base64url_decode(signature_b64);
  if (!signature) return unexpected(JwtError::kBadEncoding);
  const auto expected_signature = crypto::hmac_sha256(key, as_bytes(token.substr(0, second)));
  if (!crypto::constant_time_equal(expected_signature, *signature)) {
    return unexpected(JwtError::kBadSignature);
  }

  // Only now is the payload authentic and worth decoding.
  auto payload = decode_segment(payload_b64);
  if (!payload) return unexpected(JwtError::kBadEncoding);
  return std::move(*payload);
}

expected<Claims, JwtError> check_claims(std::string_view payload_json, std::int64_t now_unix,
                                        const VerifyOptions& options) {
  auto payload = parse_object(payload_json);
  if (!payload) return unexpected(JwtError::kBadPayload);
  Claims c;

  // Shapes and types first, so an ill-formed token reports that, whatever the time.
  const auto* sub = payload->if_contains("sub");
  if (sub == nullptr) return unexpected(JwtError::kMissingSubject);
  if (!sub->is_string()) return unexpected(JwtError::kBadClaim);
  c.subject = std::string(sub->get_string().data(), sub->get_string().size());
  if (c.subject.empty()) return unexpected(JwtError::kMissingSubject);
  if (!valid_subject(c.subject)) return unexpected(JwtError::kBadSubject);

  const auto* aud = payload->if_contains("aud");
  if (aud != nullptr) {
    const auto add = [&c](const json::value& v) {
      if (!v.is_string()) return false;
      std::string a(v.get_string().data(), v.get_string().size());
      if (!valid_audience(a)) return false;
      c.audience.push_back(std::move(a));
      return true;
    };
    if (aud->is_array()) {
      const auto& list = aud->get_array();
      if (list.size() > kMaxAudiences) return unexpected(JwtError::kBadClaim);
      for (const auto& v : list) {
        if (!add(v)) return unexpected(JwtError::kBadClaim);
      }
    } else if (!add(*aud)) {
      return unexpected(JwtError::kBadClaim);
    }
  }

  const auto* exp = payload->if_contains("exp");
  if (exp == nullptr) return unexpected(JwtError::kMissingExpiry);
  auto expires_at = numeric_date(*exp, Round::kDown);
  if (!expires_at) return unexpected(JwtError::kBadClaim);
  c.expires_at = *expires_at;
  if (const auto* nbf = payload->if_contains("nbf")) {
    c.not_before = numeric_date(*nbf, Round::kUp);
    if (!c.not_before) return unexpected(JwtError::kBadClaim);
  }
  if (const auto* iat = payload->if_contains("iat")) {
    // Informational only (RFC 7519 §4.1.6): checked for type, not for time.
    c.issued_at = numeric_date(*iat, Round::kDown);
    if (!c.issued_at) return unexpected(JwtError::kBadClaim);
  }

  const std::int64_t leeway = clamp_leeway(options.leeway).count();
  // RFC 7519 §4.1.4: valid only while now is before exp; §4.1.5: from nbf on. Both operands
  // are bounded (dates by kMaxNumericDate, leeway by kMaxLeeway), so no overflow; now_unix
  // comes from the caller's clock and is compared, never added to a date.
  if (now_unix >= c.expires_at + leeway) return unexpected(JwtError::kExpired);
  if (c.not_before && now_unix < *c.not_before - leeway) {
    return unexpected(JwtError::kNotYetValid);
  }
  if (options.audience.empty() ||
      std::find(c.audience.begin(), c.audience.end(), options.audience) == c.audience.end()) {
    return unexpected(JwtError::kWrongAudience);
  }
  return c;
}

expected<Claims, JwtError> verify(ByteSpan key, std::string_view token, std::int64_t now_unix,
                                  const VerifyOptions& options) {
  auto payload = verify_signature(key, token);
  if (!payload) return unexpected(payload.error());
  return check_claims(*payload, now_unix, options);
}

expected<Claims, JwtError> verify_any(std::span<const ByteSpan> keys, std::string_view token,
                                      std::int64_t now_unix, const VerifyOptions& options,
                                      std::size_t* signed_by) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto payload = verify_signature(keys[i], token);
    if (!payload && payload.error() == JwtError::kBadSignature) continue;
    if (!payload) return unexpected(payload.error());
    if (signed_by) *signed_by = i;
    return check_claims(*payload, now_unix, options);
  }
  return unexpected(JwtError::kBadSignature);
}

}  // namespace roam::auth::jwt
