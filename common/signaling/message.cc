#include "common/signaling/message.h"

#include <algorithm>
#include <array>
#include <limits>
#include <memory>
#include <memory_resource>
#include <span>
#include <utility>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "common/ice/candidate_text.h"

namespace roam::signaling {
namespace {

namespace json = boost::json;

// Bounds of members the header does not name. Generous for what the server sends (instance
// names like "sig-1", "turn:203.0.113.10:3478?transport=udp", "1763726700:alice", a 28-char
// base64 HMAC-SHA1) while keeping every message far below kMaxMessageSize.
constexpr std::size_t kMaxServerNameSize = 64;
constexpr std::size_t kMaxRelayUriSize = 256;
constexpr std::size_t kMaxRelayUsernameSize = 256;
constexpr std::size_t kMaxRelayPasswordSize = 256;
// RFC 8656 §18.9: RESERVATION-TOKEN is 8 bytes, sent as 16 hex digits.
constexpr std::size_t kRelayTokenSize = 16;
// RFC 8122 §5: "sha-256 " and 32 "XX" byte pairs joined by ':'.
constexpr std::string_view kFingerprintPrefix = "sha-256 ";
constexpr std::size_t kFingerprintBytes = 32;
constexpr std::size_t kFingerprintSize = kFingerprintPrefix.size() + kFingerprintBytes * 3 - 1;

// ---- character classes -------------------------------------------------------------------

bool is_printable_ascii(char c) {
  return c >= 0x21 && c <= 0x7e;
}
bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
bool is_upper_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}
// RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
bool is_ice_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}
// Free text (client names, reasons, error messages) ends up in logs and user interfaces:
// no C0 control characters and no DEL. Boost.JSON has already checked the UTF-8.
bool is_text_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u != 0x7f;
}

template <class Pred>
bool all_of(std::string_view s, Pred pred) {
  return std::all_of(s.begin(), s.end(), pred);
}

bool printable(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max && all_of(s, is_printable_ascii);
}
bool text(std::string_view s, std::size_t max) {
  return s.size() <= max && all_of(s, is_text_char);
}
bool ice_chars(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max && all_of(s, is_ice_char);
}

// ---- member rules ------------------------------------------------------------------------
//
// ParseError::message is built only from member names and these fixed descriptions, never
// from member values: no secret (token, password, reservation token) and no attacker-chosen
// text can reach a log line or an error sent back.

struct TextRule {
  std::string_view what;  // completes "expected ..."
  bool (*valid)(std::string_view);
};

constexpr TextRule kPeerIdRule{"a peer id (1..128 printable ASCII characters)", valid_peer_id};
constexpr TextRule kRequestIdRule{"a request id (1..64 printable ASCII characters)",
                                  valid_request_id};
constexpr TextRule kSessionIdRule{"a session id (32 lower-case hex digits)", valid_session_id};
constexpr TextRule kFingerprintRule{
    "a certificate fingerprint (\"sha-256 \" and 32 upper-case hex pairs joined by ':')",
    valid_fingerprint};
constexpr TextRule kTokenRule{"a JWT (1..4096 printable ASCII characters)",
                              [](std::string_view s) { return printable(s, 1, kMaxTokenSize); }};
constexpr TextRule kClientRule{"a client name (at most 64 bytes, no control characters)",
                               [](std::string_view s) { return text(s, kMaxClientNameSize); }};
constexpr TextRule kCapabilityRule{
    "capabilities (1..32 printable ASCII characters each)",
    [](std::string_view s) { return printable(s, 1, kMaxCapabilitySize); }};
constexpr TextRule kRegionRule{"a region (at most 64 bytes, no control characters)",
                               [](std::string_view s) { return text(s, kMaxRegionSize); }};
constexpr TextRule kReasonRule{"a reason (at most 128 bytes, no control characters)",
                               [](std::string_view s) { return text(s, kMaxReasonSize); }};
constexpr TextRule kErrorMessageRule{
    "a message (at most 512 bytes, no control characters)",
    [](std::string_view s) { return text(s, kMaxErrorMessageSize); }};
// The codec only bounds candidate lines; the server checks their RFC 8839 syntax with
// ice::parse_candidate and answers bad_candidate, a more precise error than bad_message.
constexpr TextRule kCandidateRule{
    "an RFC 8839 candidate line (1..1024 bytes)",
    [](std::string_view s) { return !s.empty() && s.size() <= ice::kMaxCandidateLineSize; }};
constexpr TextRule kUfragRule{
    "an ICE ufrag (4..256 ice-chars: ALPHA / DIGIT / \"+\" / \"/\")",
    [](std::string_view s) { return ice_chars(s, kMinUfragSize, kMaxIceCredentialSize); }};
constexpr TextRule kPwdRule{
    "an ICE password (22..256 ice-chars: ALPHA / DIGIT / \"+\" / \"/\")",
    [](std::string_view s) { return ice_chars(s, kMinPwdSize, kMaxIceCredentialSize); }};
constexpr TextRule kServerNameRule{
    "a server name (1..64 printable ASCII characters)",
    [](std::string_view s) { return printable(s, 1, kMaxServerNameSize); }};
// RFC 7065 §3.1: turnURI = scheme ":" host [ ":" port ] [ "?transport=" transport ].
constexpr TextRule kRelayUriRule{
    "a TURN URI (\"turn:\" or \"turns:\", at most 256 printable ASCII characters)",
    [](std::string_view s) {
      return printable(s, 1, kMaxRelayUriSize) && ((s.starts_with("turn:") && s.size() > 5) ||
                                                   (s.starts_with("turns:") && s.size() > 6));
    }};
constexpr TextRule kRelayUsernameRule{
    "a TURN username (1..256 printable ASCII characters)",
    [](std::string_view s) { return printable(s, 1, kMaxRelayUsernameSize); }};
constexpr TextRule kRelayPasswordRule{
    "a TURN password (1..256 printable ASCII characters)",
    [](std::string_view s) { return printable(s, 1, kMaxRelayPasswordSize); }};
constexpr TextRule kRelayTokenRule{
    "a reservation token (16 lower-case hex digits)",
    [](std::string_view s) { return s.size() == kRelayTokenSize && all_of(s, is_lower_hex); }};
constexpr TextRule kRelayAddressRule{
    "a relayed transport address (\"ip:port\" or \"[ipv6]:port\", port 1..65535)",
    [](std::string_view s) {
      auto a = SocketAddress::parse(s);
      return a && a->port != 0 && !a->ip.is_unspecified();
    }};
constexpr TextRule kRoleRule{"\"controlling\" or \"controlled\"", [](std::string_view s) {
                               return s == "controlling" || s == "controlled";
                             }};
constexpr TextRule kErrorCodeRule{
    "an error code of docs/signaling-protocol.md",
    [](std::string_view s) { return error_code_from_string(s).has_value(); }};

enum class Presence { kRequired, kOptional };

std::string_view view(const json::string& s) {
  return {s.data(), s.size()};
}

ParseError make_error(ErrorCode code, std::string message) {
  ParseError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

// Reads the members of one JSON object. The first problem is kept (sticky) and every later
// read returns nullopt, so a message parser reads straight through and checks ok() once.
// Nested readers share the parent's error slot.
class Reader {
 public:
  Reader(const json::object& object, std::string path, std::optional<ParseError>* error)
      : object_(object), path_(std::move(path)), error_(error) {}

  bool ok() const { return !error_->has_value(); }

  void fail(ErrorCode code, std::string message) {
    if (ok()) *error_ = make_error(code, std::move(message));
  }
  // "<path>.<name>: expected <what>" (or "missing; expected <what>").
  void fail_member(std::string_view name, std::string_view what, bool missing = false) {
    fail(
        ErrorCode::kBadMessage,
        member_path(name) + (missing ? ": missing; expected " : ": expected ") + std::string(what));
  }

  std::string member_path(std::string_view name) const {
    std::string p = path_;
    p += '.';
    p += name;
    return p;
  }

  // The member, nullptr when absent (recording an error if it is required) or after an error.
  const json::value* find(std::string_view name, std::string_view what, Presence presence) {
    if (!ok()) return nullptr;
    const json::value* v = object_.if_contains(json::string_view(name.data(), name.size()));
    if (v == nullptr && presence == Presence::kRequired) fail_member(name, what, true);
    return v;
  }

  std::optional<std::string> text(std::string_view name, const TextRule& rule,
                                  Presence presence = Presence::kRequired) {
    const json::value* v = find(name, rule.what, presence);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string() || !rule.valid(view(v->get_string()))) {
      fail_member(name, rule.what);
      return std::nullopt;
    }
    return std::string(view(v->get_string()));
  }

  // Integers only: JSON numbers with a fraction or exponent (Boost.JSON doubles) are refused,
  // as are integers above INT64_MAX (uint64 kind; no member allows them).
  std::optional<std::int64_t> integer(std::string_view name, std::int64_t min, std::int64_t max,
                                      std::string_view what,
                                      Presence presence = Presence::kRequired) {
    const json::value* v = find(name, what, presence);
    if (v == nullptr) return std::nullopt;
    if (!v->is_int64() || v->get_int64() < min || v->get_int64() > max) {
      fail_member(name, what);
      return std::nullopt;
    }
    return v->get_int64();
  }

  std::optional<std::uint32_t> uint32(std::string_view name) {
    auto v =
        integer(name, 0, std::numeric_limits<std::uint32_t>::max(), "an integer in 0..4294967295");
    if (!v) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
  }

  std::optional<bool> boolean(std::string_view name, Presence presence = Presence::kRequired) {
    const json::value* v = find(name, "true or false", presence);
    if (v == nullptr) return std::nullopt;
    if (!v->is_bool()) {
      fail_member(name, "true or false");
      return std::nullopt;
    }
    return v->get_bool();
  }

  std::optional<Reader> object(std::string_view name, std::string_view what,
                               Presence presence = Presence::kRequired) {
    const json::value* v = find(name, what, presence);
    if (v == nullptr) return std::nullopt;
    if (!v->is_object()) {
      fail_member(name, what);
      return std::nullopt;
    }
    return Reader(v->get_object(), member_path(name), error_);
  }

  // An array of at most max_items strings, each satisfying rule.
  std::optional<std::vector<std::string>> texts(std::string_view name, std::string_view what,
                                                const TextRule& rule, std::size_t max_items,
                                                Presence presence = Presence::kRequired) {
    const json::value* v = find(name, what, presence);
    if (v == nullptr) return std::nullopt;
    if (!v->is_array() || v->get_array().size() > max_items) {
      fail_member(name, what);
      return std::nullopt;
    }
    std::vector<std::string> out;
    out.reserve(v->get_array().size());
    for (const json::value& item : v->get_array()) {
      if (!item.is_string() || !rule.valid(view(item.get_string()))) {
        fail_member(name, what);
        return std::nullopt;
      }
      out.emplace_back(view(item.get_string()));
    }
    return out;
  }

 private:
  const json::object& object_;
  std::string path_;
  std::optional<ParseError>* error_;
};

// ---- JSON layer ----------------------------------------------------------------------------

json::parse_options strict_options() {
  json::parse_options opts;  // standard JSON only: no comments, trailing commas, bad UTF-8
  opts.max_depth = kMaxJsonDepth;
  return opts;
}

// Builds the JSON value in one pass over the text, as json::parse does (with Boost's own
// value_stack), and refuses duplicate member names in any object, at any depth. Boost.JSON keeps
// the last of duplicate members, other parsers the first: a message with duplicates means
// different things to different readers (a classic smuggling vector), so it is refused
// outright. (common/auth/jwt.cc does the same for the top level of JWT parts by counting
// members; here every object is checked, so the names themselves are compared.)
class UniqueMembersBuilder {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();
  using string_view = json::string_view;
  using error_code = json::error_code;

  // The value is made with `storage`; Boost's value stack starts in `stack_buffer` and the
  // builder's own bookkeeping comes from `scratch` (both go on to the heap when full).
  UniqueMembersBuilder(json::storage_ptr storage, std::span<unsigned char> stack_buffer,
                       std::pmr::memory_resource* scratch)
      : stack_(json::storage_ptr(), stack_buffer.data(), stack_buffer.size()),
        names_(scratch),
        open_(scratch),
        starts_(scratch) {
    stack_.reset(std::move(storage));
  }
  bool duplicate() const { return duplicate_; }
  json::value release() { return stack_.release(); }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    starts_.push_back(open_.size());
    return true;
  }
  bool on_object_end(std::size_t n, error_code& ec) {
    // An object's names are compared when it closes, sorted: O(n log n) even for a hostile
    // object with thousands of members.
    const auto first = open_.begin() + static_cast<std::ptrdiff_t>(starts_.back());
    const auto by_name = [this](const Name& a, const Name& b) { return view(a) < view(b); };
    const auto same_name = [this](const Name& a, const Name& b) { return view(a) == view(b); };
    std::sort(first, open_.end(), by_name);
    if (std::adjacent_find(first, open_.end(), same_name) != open_.end()) {
      duplicate_ = true;
      ec = json::error::syntax;  // stops the parser; duplicate() tells why
      return false;
    }
    open_.erase(first, open_.end());
    starts_.pop_back();
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(string_view part, std::size_t, error_code&) {
    names_.append(part.data(), part.size());
    stack_.push_chars(part);
    return true;
  }
  bool on_key(string_view part, std::size_t, error_code&) {
    names_.append(part.data(), part.size());
    open_.push_back({key_begin_, names_.size() - key_begin_});
    key_begin_ = names_.size();
    stack_.push_key(part);
    return true;
  }
  bool on_string_part(string_view part, std::size_t, error_code&) {
    stack_.push_chars(part);
    return true;
  }
  bool on_string(string_view part, std::size_t, error_code&) {
    stack_.push_string(part);
    return true;
  }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t i, string_view, error_code&) {
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, string_view, error_code&) {
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, string_view, error_code&) {
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  // A member name, as its place in names_ (which may grow and move; offsets stay valid).
  struct Name {
    std::size_t offset, size;
  };
  std::string_view view(const Name& name) const { return {names_.data() + name.offset, name.size}; }

  json::value_stack stack_;
  std::pmr::string names_;                // every member name so far, back to back
  std::size_t key_begin_ = 0;             // where the name being assembled begins in names_
  std::pmr::vector<Name> open_;           // the names of the open objects, innermost last
  std::pmr::vector<std::size_t> starts_;  // where each open object's names begin in open_
  bool duplicate_ = false;
};

// The frame as a JSON value with unique member names (made with `storage`), or a kBadJson
// error.
expected<json::value, ParseError> parse_json(std::string_view text, json::storage_ptr storage) {
  if (text.size() > kMaxMessageSize) {
    return unexpected(make_error(ErrorCode::kBadJson, "message is larger than 65536 bytes"));
  }
  // The builder's temporary stacks: enough for any message of ordinary shape, more from the heap.
  std::array<unsigned char, 1024> stack_buffer;
  std::array<std::byte, 1024> scratch_buffer;
  std::pmr::monotonic_buffer_resource scratch(scratch_buffer.data(), scratch_buffer.size());
  json::basic_parser<UniqueMembersBuilder> parser(strict_options(), std::move(storage),
                                                  stack_buffer, &scratch);
  json::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;  // as json::parse
  if (parser.handler().duplicate()) {
    return unexpected(make_error(ErrorCode::kBadJson, "duplicate member name in a JSON object"));
  }
  if (ec == json::error::too_deep) {
    return unexpected(make_error(ErrorCode::kBadJson, "JSON nested deeper than 8 levels"));
  }
  if (ec) {
    // Boost's messages are fixed texts ("syntax error", "illegal leading surrogate", ...).
    return unexpected(make_error(ErrorCode::kBadJson, "not valid JSON: " + ec.message()));
  }
  return parser.handler().release();
}

// ---- messages: parsing ---------------------------------------------------------------------

std::optional<IceCredentials> read_ice(Reader& r, std::string_view name) {
  auto ice = r.object(name, "an object with ufrag and pwd", Presence::kOptional);
  if (!ice) return std::nullopt;
  auto ufrag = ice->text("ufrag", kUfragRule);
  auto pwd = ice->text("pwd", kPwdRule);
  if (!r.ok()) return std::nullopt;
  return IceCredentials{std::move(*ufrag), std::move(*pwd)};
}

std::optional<Candidate> read_candidate(Reader& r, bool with_request) {
  Candidate c;
  auto session = r.text("session", kSessionIdRule);
  // `request` is a client → server member; in the other direction it is an unknown member.
  if (with_request) c.request = r.text("request", kRequestIdRule, Presence::kOptional);
  auto end = r.boolean("end_of_candidates", Presence::kOptional);
  c.candidate = r.text("candidate", kCandidateRule, Presence::kOptional);
  if (!r.ok()) return std::nullopt;
  const bool end_of_candidates = end.value_or(false);
  if (end_of_candidates && c.candidate) {
    r.fail(ErrorCode::kBadMessage,
           "candidate.candidate: not allowed with end_of_candidates:true; send one or the other");
    return std::nullopt;
  }
  if (!end_of_candidates && !c.candidate) {
    r.fail_member("candidate",
                  "an RFC 8839 candidate line (1..1024 bytes), or end_of_candidates:true", true);
    return std::nullopt;
  }
  c.session = std::move(*session);
  return c;
}

std::optional<Bye> read_bye(Reader& r) {
  auto session = r.text("session", kSessionIdRule);
  auto reason = r.text("reason", kReasonRule, Presence::kOptional);
  if (!r.ok()) return std::nullopt;
  return Bye{std::move(*session), reason.value_or("")};
}

// The protocol version member of hello and welcome: any other integer is kUnsupportedVersion.
bool read_version(Reader& r) {
  constexpr std::string_view kWhat = "an integer (the protocol version, 1)";
  const json::value* v = r.find("version", kWhat, Presence::kRequired);
  if (v == nullptr) return false;
  if (!v->is_int64() && !v->is_uint64()) {
    r.fail_member("version", kWhat);
    return false;
  }
  if (!v->is_int64() || v->get_int64() != kProtocolVersion) {
    r.fail(ErrorCode::kUnsupportedVersion,
           r.member_path("version") + ": unsupported protocol version; this side speaks 1");
    return false;
  }
  return true;
}

std::optional<Hello> read_hello(Reader& r) {
  Hello h;
  // The version first: a client of a later version may send members this one misreads.
  if (!read_version(r)) return std::nullopt;
  auto token = r.text("token", kTokenRule);
  auto client = r.text("client", kClientRule, Presence::kOptional);
  auto capabilities =
      r.texts("capabilities", "an array of at most 16 strings of 1..32 printable ASCII characters",
              kCapabilityRule, kMaxCapabilities, Presence::kOptional);
  h.region = r.text("region", kRegionRule, Presence::kOptional);
  h.fingerprint = r.text("fingerprint", kFingerprintRule, Presence::kOptional);
  h.ice = read_ice(r, "ice");
  if (!r.ok()) return std::nullopt;
  h.token = std::move(*token);
  h.client = client.value_or("");
  if (capabilities) h.capabilities = std::move(*capabilities);
  return h;
}

std::optional<Connect> read_connect(Reader& r) {
  auto request = r.text("request", kRequestIdRule);
  auto peer = r.text("peer", kPeerIdRule);
  if (!r.ok()) return std::nullopt;
  return Connect{std::move(*request), std::move(*peer)};
}

std::optional<Welcome> read_welcome(Reader& r) {
  Welcome w;
  if (!read_version(r)) return std::nullopt;
  auto peer = r.text("peer", kPeerIdRule);
  auto server = r.text("server", kServerNameRule);
  auto expires = r.integer("token_expires", 0, std::numeric_limits<std::int64_t>::max(),
                           "a non-negative integer (Unix seconds)");
  if (auto limits = r.object("limits", "an object with the six limits")) {
    auto max_message_bytes = limits->uint32("max_message_bytes");
    auto messages_per_second = limits->uint32("messages_per_second");
    auto burst = limits->uint32("burst");
    auto max_sessions = limits->uint32("max_sessions");
    auto idle_timeout_s = limits->uint32("idle_timeout_s");
    auto hello_timeout_s = limits->uint32("hello_timeout_s");
    if (r.ok()) {
      w.limits = Limits{*max_message_bytes, *messages_per_second, *burst,
                        *max_sessions,      *idle_timeout_s,      *hello_timeout_s};
    }
  }
  if (!r.ok()) return std::nullopt;
  w.peer = std::move(*peer);
  w.server = std::move(*server);
  w.token_expires = *expires;
  return w;
}

std::optional<RelayGrant> read_relay(Reader& r) {
  auto relay = r.object("relay", "an object with the relay grant", Presence::kOptional);
  if (!relay) return std::nullopt;
  RelayGrant g;
  auto uri = relay->text("uri", kRelayUriRule);
  auto username = relay->text("username", kRelayUsernameRule);
  auto password = relay->text("password", kRelayPasswordRule);
  auto expires = relay->integer("expires", 0, std::numeric_limits<std::int64_t>::max(),
                                "a non-negative integer (Unix seconds)");
  g.token = relay->text("token", kRelayTokenRule, Presence::kOptional);
  auto address = relay->text("address", kRelayAddressRule, Presence::kOptional);
  if (!r.ok()) return std::nullopt;
  // A reservation token is useless without the address it redeems to, and the reverse.
  if (g.token.has_value() != address.has_value()) {
    relay->fail_member(g.token ? "address" : "token", "token and address together (or neither)",
                       true);
    return std::nullopt;
  }
  g.uri = std::move(*uri);
  g.username = std::move(*username);
  g.password = std::move(*password);
  g.expires = *expires;
  if (address) g.address = SocketAddress::parse(*address);
  return g;
}

std::optional<Session> read_session(Reader& r) {
  Session s;
  auto session = r.text("session", kSessionIdRule);
  s.request = r.text("request", kRequestIdRule, Presence::kOptional);
  auto role = r.text("role", kRoleRule);
  auto peer = r.text("peer", kPeerIdRule);
  s.fingerprint = r.text("fingerprint", kFingerprintRule, Presence::kOptional);
  s.ice = read_ice(r, "ice");
  s.relay = read_relay(r);
  auto candidates = r.texts("remote_candidates",
                            "an array of at most 8 RFC 8839 candidate lines (1..1024 bytes each)",
                            kCandidateRule, kMaxRemoteCandidates);
  if (!r.ok()) return std::nullopt;
  s.session = std::move(*session);
  s.role = *role == "controlling" ? Role::kControlling : Role::kControlled;
  s.peer = std::move(*peer);
  s.remote_candidates = std::move(*candidates);
  return s;
}

std::optional<Error> read_error(Reader& r) {
  Error e;
  auto code = r.text("code", kErrorCodeRule);
  auto message = r.text("message", kErrorMessageRule, Presence::kOptional);
  e.request = r.text("request", kRequestIdRule, Presence::kOptional);
  e.session = r.text("session", kSessionIdRule, Presence::kOptional);
  if (!r.ok()) return std::nullopt;
  e.code = *error_code_from_string(*code);
  e.message = message.value_or("");
  return e;
}

template <class Message, class Part>
expected<Message, ParseError> finish(std::optional<Part> part,
                                     const std::optional<ParseError>& error) {
  if (part) return Message(std::move(*part));
  return unexpected(error.value_or(make_error(ErrorCode::kBadMessage, "invalid message")));
}

// Shared by both directions: the JSON layer, the `type` member, the echo of request/session,
// and no exception ever escapes (Boost.JSON and std::string may throw std::bad_alloc).
template <class Message, class Dispatch>
expected<Message, ParseError> parse_message(std::string_view text, Dispatch dispatch) try {
  // The JSON value lives only while the message is read from it: its memory comes from this
  // frame (and from the heap beyond the buffer), released all at once on return.
  std::array<unsigned char, 4096> buffer;
  json::monotonic_resource resource(buffer.data(), buffer.size());
  auto value = parse_json(text, json::storage_ptr(&resource));
  if (!value) return unexpected(std::move(value.error()));
  if (!value->is_object()) {
    return unexpected(make_error(ErrorCode::kBadJson, "message is not a JSON object"));
  }
  const json::object* object = &value->get_object();

  // Echo request/session whenever they are well-formed, whatever else is wrong.
  std::optional<std::string> request;
  std::optional<std::string> session;
  if (const auto* v = object->if_contains("request");
      v && v->is_string() && valid_request_id(view(v->get_string()))) {
    request = std::string(view(v->get_string()));
  }
  if (const auto* v = object->if_contains("session");
      v && v->is_string() && valid_session_id(view(v->get_string()))) {
    session = std::string(view(v->get_string()));
  }

  expected<Message, ParseError> result = unexpected(ParseError{});
  const json::value* type = object->if_contains("type");
  if (type == nullptr || !type->is_string()) {
    result = unexpected(make_error(ErrorCode::kBadMessage,
                                   type ? "type: expected a string (the message type)"
                                        : "type: missing; expected a string (the message type)"));
  } else {
    result = dispatch(view(type->get_string()), *object);
  }
  if (!result) {
    result.error().request = std::move(request);
    result.error().session = std::move(session);
  }
  return result;
} catch (const std::exception&) {
  return unexpected(make_error(ErrorCode::kBadJson, "message could not be parsed"));
}

// ---- messages: encoding --------------------------------------------------------------------

json::string_view jv(std::string_view s) {
  return {s.data(), s.size()};
}

json::object encode_ice(const IceCredentials& ice) {
  json::object o;
  o.emplace("ufrag", jv(ice.ufrag));
  o.emplace("pwd", jv(ice.pwd));
  return o;
}

json::object to_json(const Hello& h) {
  json::object o;
  o.emplace("type", "hello");
  o.emplace("version", h.version);
  o.emplace("token", jv(h.token));
  if (!h.client.empty()) o.emplace("client", jv(h.client));
  if (!h.capabilities.empty()) {
    json::array caps;
    for (const auto& c : h.capabilities)
      caps.emplace_back(jv(c));
    o.emplace("capabilities", std::move(caps));
  }
  if (h.region) o.emplace("region", jv(*h.region));
  if (h.fingerprint) o.emplace("fingerprint", jv(*h.fingerprint));
  if (h.ice) o.emplace("ice", encode_ice(*h.ice));
  return o;
}

json::object to_json(const Connect& c) {
  json::object o;
  o.emplace("type", "connect");
  o.emplace("request", jv(c.request));
  o.emplace("peer", jv(c.peer));
  return o;
}

json::object to_json(const Candidate& c, bool with_request) {
  json::object o;
  o.emplace("type", "candidate");
  o.emplace("session", jv(c.session));
  if (with_request && c.request) o.emplace("request", jv(*c.request));
  if (c.candidate) {
    o.emplace("candidate", jv(*c.candidate));
  } else {
    o.emplace("end_of_candidates", true);
  }
  return o;
}

json::object to_json(const Bye& b) {
  json::object o;
  o.emplace("type", "bye");
  o.emplace("session", jv(b.session));
  if (!b.reason.empty()) o.emplace("reason", jv(b.reason));
  return o;
}

json::object to_json(const Welcome& w) {
  json::object limits;
  limits.emplace("max_message_bytes", w.limits.max_message_bytes);
  limits.emplace("messages_per_second", w.limits.messages_per_second);
  limits.emplace("burst", w.limits.burst);
  limits.emplace("max_sessions", w.limits.max_sessions);
  limits.emplace("idle_timeout_s", w.limits.idle_timeout_s);
  limits.emplace("hello_timeout_s", w.limits.hello_timeout_s);
  json::object o;
  o.emplace("type", "welcome");
  o.emplace("version", w.version);
  o.emplace("peer", jv(w.peer));
  o.emplace("server", jv(w.server));
  o.emplace("token_expires", w.token_expires);
  o.emplace("limits", std::move(limits));
  return o;
}

json::object to_json(const Session& s) {
  json::object o;
  o.emplace("type", "session");
  o.emplace("session", jv(s.session));
  if (s.request) o.emplace("request", jv(*s.request));
  o.emplace("role", jv(to_string(s.role)));
  o.emplace("peer", jv(s.peer));
  if (s.fingerprint) o.emplace("fingerprint", jv(*s.fingerprint));
  if (s.ice) o.emplace("ice", encode_ice(*s.ice));
  if (s.relay) {
    const RelayGrant& g = *s.relay;
    json::object relay;
    relay.emplace("uri", jv(g.uri));
    relay.emplace("username", jv(g.username));
    relay.emplace("password", jv(g.password));
    if (g.token) relay.emplace("token", jv(*g.token));
    if (g.address) relay.emplace("address", g.address->to_string());
    relay.emplace("expires", g.expires);
    o.emplace("relay", std::move(relay));
  }
  json::array candidates;
  for (const auto& c : s.remote_candidates)
    candidates.emplace_back(jv(c));
  o.emplace("remote_candidates", std::move(candidates));
  return o;
}

json::object to_json(const Error& e) {
  json::object o;
  o.emplace("type", "error");
  o.emplace("code", jv(to_string(e.code)));
  o.emplace("message", jv(e.message));
  if (e.request) o.emplace("request", jv(*e.request));
  if (e.session) o.emplace("session", jv(*e.session));
  return o;
}

constexpr std::array<std::pair<ErrorCode, std::string_view>, 16> kErrorCodes{{
    {ErrorCode::kBadJson, "bad_json"},
    {ErrorCode::kBadMessage, "bad_message"},
    {ErrorCode::kUnknownType, "unknown_type"},
    {ErrorCode::kHelloRequired, "hello_required"},
    {ErrorCode::kAlreadyAuthenticated, "already_authenticated"},
    {ErrorCode::kUnsupportedVersion, "unsupported_version"},
    {ErrorCode::kBadToken, "bad_token"},
    {ErrorCode::kTokenExpired, "token_expired"},
    {ErrorCode::kRateLimited, "rate_limited"},
    {ErrorCode::kPeerUnavailable, "peer_unavailable"},
    {ErrorCode::kSelfConnect, "self_connect"},
    {ErrorCode::kTooManySessions, "too_many_sessions"},
    {ErrorCode::kUnknownSession, "unknown_session"},
    {ErrorCode::kBadCandidate, "bad_candidate"},
    {ErrorCode::kRoutingUnavailable, "routing_unavailable"},
    {ErrorCode::kInternal, "internal"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) {
  for (const auto& [c, name] : kErrorCodes) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) {
  for (const auto& [c, name] : kErrorCodes) {
    if (name == text) return c;
  }
  return std::nullopt;
}

std::string_view to_string(Role role) {
  return role == Role::kControlling ? "controlling" : "controlled";
}

expected<ClientMessage, ParseError> parse_client_message(std::string_view text) {
  return parse_message<ClientMessage>(text, [](std::string_view type, const json::object& object) {
    std::optional<ParseError> error;
    Reader r(object, std::string(type), &error);
    if (type == "hello") return finish<ClientMessage>(read_hello(r), error);
    if (type == "connect") return finish<ClientMessage>(read_connect(r), error);
    if (type == "candidate") return finish<ClientMessage>(read_candidate(r, true), error);
    if (type == "bye") return finish<ClientMessage>(read_bye(r), error);
    return expected<ClientMessage, ParseError>(
        unexpected(make_error(ErrorCode::kUnknownType,
                              "type: not a client message type (hello, connect, candidate, bye)")));
  });
}

expected<ServerMessage, ParseError> parse_server_message(std::string_view text) {
  return parse_message<ServerMessage>(text, [](std::string_view type, const json::object& object) {
    std::optional<ParseError> error;
    Reader r(object, std::string(type), &error);
    if (type == "welcome") return finish<ServerMessage>(read_welcome(r), error);
    if (type == "session") return finish<ServerMessage>(read_session(r), error);
    if (type == "candidate") return finish<ServerMessage>(read_candidate(r, false), error);
    if (type == "bye") return finish<ServerMessage>(read_bye(r), error);
    if (type == "error") return finish<ServerMessage>(read_error(r), error);
    return expected<ServerMessage, ParseError>(unexpected(
        make_error(ErrorCode::kUnknownType,
                   "type: not a server message type (welcome, session, candidate, bye, error)")));
  });
}

std::string encode(const ClientMessage& message) {
  const json::object o = std::visit(
      [](const auto& m) -> json::object {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, Candidate>) {
          return to_json(m, true);
        } else {
          return to_json(m);
        }
      },
      message);
  return json::serialize(o);
}

std::string encode(const ServerMessage& message) {
  // Candidate::request is client → server only: a forwarded candidate never carries the
  // sender's request id to the other peer.
  const json::object o = std::visit(
      [](const auto& m) -> json::object {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, Candidate>) {
          return to_json(m, false);
        } else {
          return to_json(m);
        }
      },
      message);
  return json::serialize(o);
}

std::string_view type_name(const ClientMessage& message) {
  static constexpr std::array<std::string_view, 4> kNames{"hello", "connect", "candidate", "bye"};
  static_assert(std::variant_size_v<ClientMessage> == kNames.size());
  return kNames[message.index()];
}

std::string_view type_name(const ServerMessage& message) {
  static constexpr std::array<std::string_view, 5> kNames{"welcome", "session", "candidate", "bye",
                                                          "error"};
  static_assert(std::variant_size_v<ServerMessage> == kNames.size());
  return kNames[message.index()];
}

bool valid_peer_id(std::string_view id) {
  return printable(id, 1, kMaxPeerIdSize);
}

bool valid_request_id(std::string_view id) {
  return printable(id, 1, kMaxRequestIdSize);
}

bool valid_session_id(std::string_view id) {
  return id.size() == kSessionIdSize && all_of(id, is_lower_hex);
}

bool valid_fingerprint(std::string_view fingerprint) {
  if (fingerprint.size() != kFingerprintSize || !fingerprint.starts_with(kFingerprintPrefix)) {
    return false;
  }
  const std::string_view pairs = fingerprint.substr(kFingerprintPrefix.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    // "XX:XX:...:XX": every third character is the separator.
    const bool ok = (i % 3 == 2) ? pairs[i] == ':' : is_upper_hex(pairs[i]);
    if (!ok) return false;
  }
  return true;
}

bool valid_ice_credentials(const IceCredentials& ice) {
  return ice_chars(ice.ufrag, kMinUfragSize, kMaxIceCredentialSize) &&
         ice_chars(ice.pwd, kMinPwdSize, kMaxIceCredentialSize);
}

}  // namespace roam::signaling
