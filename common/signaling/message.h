// The signaling protocol's messages (docs/signaling-protocol.md): typed structs, a strict and
// bounded JSON parser for each direction, and the matching serializers.
//
// Contracts:
// - parse_* never throws and never reads more than kMaxMessageSize bytes; it rejects nesting
//   deeper than kMaxJsonDepth, duplicate member names, and every member of the wrong type or
//   out of its documented range. Unknown members are ignored; an unknown `type` is an error.
// - encode(parse(x)) is canonical: every message that parses serializes to a text that parses
//   back to an equal message (fuzzed by tests/fuzz/fuzz_signaling_message.cc).
// - Errors carry the `request` (and `session`) of the offending message when those members
//   could be read, so the server can answer "which request failed".
// - Secrets (token, relay password, reservation token) never appear in ParseError::message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::signaling {

inline constexpr int kProtocolVersion = 1;

// Bounds (docs/signaling-protocol.md "Framing and general rules").
inline constexpr std::size_t kMaxMessageSize = 64 * 1024;  // OWASP: messages <= 64 KiB
inline constexpr std::size_t kMaxJsonDepth = 8;
inline constexpr std::size_t kMaxPeerIdSize = 128;  // = auth::jwt::kMaxSubjectSize
inline constexpr std::size_t kMaxRequestIdSize = 64;
inline constexpr std::size_t kSessionIdSize = 32;  // 128 bits as lower-case hex
inline constexpr std::size_t kMaxClientNameSize = 64;
inline constexpr std::size_t kMaxCapabilities = 16;
inline constexpr std::size_t kMaxCapabilitySize = 32;
inline constexpr std::size_t kMaxRegionSize = 64;
inline constexpr std::size_t kMaxReasonSize = 128;
inline constexpr std::size_t kMaxErrorMessageSize = 512;
inline constexpr std::size_t kMaxTokenSize = 4096;  // = auth::jwt::kMaxTokenSize
inline constexpr std::size_t kMaxRemoteCandidates = 8;
// RFC 8839 §5.4: ice-ufrag 4..256 ice-chars, ice-pwd 22..256 ice-chars.
inline constexpr std::size_t kMinUfragSize = 4;
inline constexpr std::size_t kMinPwdSize = 22;
inline constexpr std::size_t kMaxIceCredentialSize = 256;

// Machine-readable error codes (the `code` member of `error` messages).
enum class ErrorCode {
  kBadJson,
  kBadMessage,
  kUnknownType,
  kHelloRequired,
  kAlreadyAuthenticated,
  kUnsupportedVersion,
  kBadToken,
  kTokenExpired,
  kRateLimited,
  kPeerUnavailable,
  kSelfConnect,
  kTooManySessions,
  kUnknownSession,
  kBadCandidate,
  kRoutingUnavailable,
  kInternal,
};
std::string_view to_string(ErrorCode code);  // "bad_json", ...
std::optional<ErrorCode> error_code_from_string(std::string_view text);

enum class Role { kControlling, kControlled };  // RFC 8445 §6.1.1
std::string_view to_string(Role role);

struct IceCredentials {
  std::string ufrag;
  std::string pwd;
  bool operator==(const IceCredentials&) const = default;
};

// ---- client → server -------------------------------------------------------------------

struct Hello {
  int version = kProtocolVersion;
  std::string token;                      // JWT; never log it
  std::string client;                     // "roam/0.1.0"; may be empty
  std::vector<std::string> capabilities;  // informational in version 1
  std::optional<std::string> region;
  std::optional<std::string> fingerprint;  // "sha-256 AB:..:CD" (RFC 8122 §5)
  std::optional<IceCredentials> ice;
  bool operator==(const Hello&) const = default;
};

struct Connect {
  std::string request;
  std::string peer;
  bool operator==(const Connect&) const = default;
};

// Both directions: a trickled candidate (RFC 8839 text, kept as sent) or end-of-candidates.
struct Candidate {
  std::string session;
  std::optional<std::string> candidate;  // absent = end_of_candidates
  std::optional<std::string> request;    // client → server only (encode(ServerMessage) omits
                                         // it, parse_server_message ignores it), echoed in errors
  bool end_of_candidates() const { return !candidate.has_value(); }
  bool operator==(const Candidate&) const = default;
};

// Both directions.
struct Bye {
  std::string session;
  std::string reason;  // may be empty
  bool operator==(const Bye&) const = default;
};

using ClientMessage = std::variant<Hello, Connect, Candidate, Bye>;

// ---- server → client -------------------------------------------------------------------

struct Limits {
  std::uint32_t max_message_bytes = kMaxMessageSize;
  std::uint32_t messages_per_second = 50;
  std::uint32_t burst = 100;
  std::uint32_t max_sessions = 64;
  std::uint32_t idle_timeout_s = 60;
  std::uint32_t hello_timeout_s = 10;
  bool operator==(const Limits&) const = default;
};

struct Welcome {
  int version = kProtocolVersion;
  std::string peer;
  std::string server;
  std::int64_t token_expires = 0;  // Unix seconds
  Limits limits;
  bool operator==(const Welcome&) const = default;
};

struct RelayGrant {
  std::string uri;       // RFC 7065 "turn:host:port?transport=udp"
  std::string username;  // TURN REST "expiry:peer"
  std::string password;  // never log it
  std::int64_t expires = 0;
  std::optional<std::string> token;      // RESERVATION-TOKEN as 16 hex digits; never log it
  std::optional<SocketAddress> address;  // relayed address the token redeems to
  bool operator==(const RelayGrant&) const = default;
};

struct Session {
  std::string session;
  std::optional<std::string> request;  // only to the peer that sent `connect`
  Role role = Role::kControlling;
  std::string peer;  // the other side
  std::optional<std::string> fingerprint;
  std::optional<IceCredentials> ice;
  std::optional<RelayGrant> relay;
  std::vector<std::string> remote_candidates;  // RFC 8839 text, at most kMaxRemoteCandidates
  bool operator==(const Session&) const = default;
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // human text, at most kMaxErrorMessageSize
  std::optional<std::string> request;
  std::optional<std::string> session;
  bool operator==(const Error&) const = default;
};

using ServerMessage = std::variant<Welcome, Session, Candidate, Bye, Error>;

// ---- parsing and serializing -----------------------------------------------------------

// Why a text is not a valid message. `code` is kBadJson, kBadMessage or kUnknownType (or
// kUnsupportedVersion for a hello or welcome with another version); `message` names the member
// (and never quotes a member's value).
struct ParseError {
  ErrorCode code = ErrorCode::kBadMessage;
  std::string message;
  std::optional<std::string> request;
  std::optional<std::string> session;
  bool operator==(const ParseError&) const = default;
};

expected<ClientMessage, ParseError> parse_client_message(std::string_view text);
expected<ServerMessage, ParseError> parse_server_message(std::string_view text);

std::string encode(const ClientMessage& message);
std::string encode(const ServerMessage& message);

// The type name of a message ("hello", "session", ...), for metrics labels and logs.
std::string_view type_name(const ClientMessage& message);
std::string_view type_name(const ServerMessage& message);

// Field validators shared with the server (the JWT subject is a peer id, etc.).
bool valid_peer_id(std::string_view id);               // 1..kMaxPeerIdSize chars in 0x21..0x7e
bool valid_request_id(std::string_view id);            // 1..kMaxRequestIdSize chars in 0x21..0x7e
bool valid_session_id(std::string_view id);            // kSessionIdSize lower-case hex digits
bool valid_fingerprint(std::string_view fingerprint);  // "sha-256 " + 32 "XX" joined by ':'
bool valid_ice_credentials(const IceCredentials& ice);

}  // namespace roam::signaling
