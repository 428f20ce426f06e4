// The SDP text form of ICE candidates (RFC 8839 §5.1), as trickled over signaling:
//
//   candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
//             [raddr <address> rport <port>] *(<extension-name> <extension-value>)
//
// A strict, bounded parser and the matching serializer. Every accepted line serializes to a
// canonical text that parses back to an equal Candidate (fuzzed by tests/fuzz/fuzz_candidate).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/ice/candidate.h"
#include "common/util/expected.h"

namespace roam::ice {

// Bounds. A real candidate line is under 200 bytes; extensions seen in the wild (libwebrtc's
// "generation 0 ufrag X network-id 1 network-cost 10") add well under 100.
inline constexpr std::size_t kMaxCandidateLineSize = 1024;  // whole input, prefixes included
inline constexpr std::size_t kMaxExtensions = 16;
inline constexpr std::size_t kMaxExtensionNameSize = 32;
// RFC 8839 §5.4: receivers must accept ice-ufrag values of up to 256 characters, and libwebrtc
// repeats the ufrag as the "ufrag" extension.
inline constexpr std::size_t kMaxExtensionValueSize = 256;
// Sum over the extensions of name + value + 2 separating spaces.
inline constexpr std::size_t kMaxExtensionsTextSize = 768;

// The longest canonical text to_string() can produce: every fixed field at its maximum
// ("candidate:", 32-char foundation, 3-digit component, "UDP", 10-digit priority, 45-char
// addresses, 5-digit ports, "typ srflx", raddr/rport) plus the extension budget. Keeping it
// within kMaxCandidateLineSize guarantees that serialized candidates always parse again.
inline constexpr std::size_t kMaxCanonicalCandidateSize =
    10 + kMaxFoundationSize + 4 + 4 + 11 + 46 + 6 + 10 + 52 + 12 + kMaxExtensionsTextSize;
static_assert(kMaxCanonicalCandidateSize <= kMaxCandidateLineSize);

// RFC 8840's "a=end-of-candidates" attribute (Trickle ICE, RFC 8838): no more candidates follow
// in this generation.
inline constexpr std::string_view kEndOfCandidates = "end-of-candidates";

enum class CandidateError {
  kTooLong,               // more than kMaxCandidateLineSize bytes
  kNotCandidate,          // another SDP attribute ("a=foo:..."), not a candidate
  kEndOfCandidates,       // the end-of-candidates marker (see is_end_of_candidates)
  kBadSyntax,             // control/non-ASCII characters, or not single-space separated
  kMissingField,          // fewer than the 8 mandatory fields
  kBadFoundation,         // not 1..32 ice-chars
  kBadComponent,          // not a number in 1..256
  kUnsupportedTransport,  // anything but UDP (e.g. RFC 6544 TCP candidates)
  kBadPriority,           // not a number in 1..2^31-1
  kBadAddress,            // not an IPv4/IPv6 literal
  kHostnameAddress,       // an FQDN: we never resolve names from peers
  kMdnsAddress,           // an mDNS ".local" name (browsers hiding host addresses)
  kBadPort,               // not a number in 1..65535
  kBadType,               // "typ" missing or the type is not host/srflx/prflx/relay
  kBadRelatedAddress,     // raddr without rport (or the reverse), or bad address/port
  kBadExtension,          // odd name/value count, bad name, oversize or empty value
  kTooManyExtensions,     // more than kMaxExtensions or kMaxExtensionsTextSize
};
// Human text naming the cause and the fix; never contains the line itself.
std::string_view describe(CandidateError e);

// Parses one candidate. Accepts "a=candidate:...", "candidate:..." and the bare value, with
// one optional trailing "\r\n" or "\n". Keywords ("candidate", "typ", "raddr", "rport",
// "UDP", the type names) are case-insensitive as in ABNF (RFC 5234 §2.3). Lenient only where
// RFC 8839 marks fields as diagnostic: raddr/rport may be absent on reflexive and relayed
// candidates, present on host ones, and may be 0.0.0.0/:: port 0 (RFC 8839 §5.1 privacy).
// Leading zeros in numbers are accepted ("001"). Errors: see CandidateError.
expected<Candidate, CandidateError> parse_candidate(std::string_view line);

// True for "end-of-candidates" and "a=end-of-candidates" (with an optional line ending).
bool is_end_of_candidates(std::string_view line);

// Checks a Candidate built in code against the same rules the parser enforces (foundation
// chars and size, component, priority, port, extension names/values/bounds).
expected<void, CandidateError> validate(const Candidate& candidate);

// The canonical text: "candidate:" prefix (no "a=", no line ending), "UDP", lower-case type,
// numbers without leading zeros, RFC 5952 IPv6 text, raddr/rport when present, extensions in
// order. A candidate that passes validate() always round-trips through parse_candidate().
std::string to_string(const Candidate& candidate);

}  // namespace roam::ice
