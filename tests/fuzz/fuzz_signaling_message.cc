// Fuzzes the signaling codec (common/signaling/message.h), the input parsed as a client and as
// a server message. Properties:
// - never crashes or throws;
// - every message that parses encodes within kMaxMessageSize to a text that parses back to an
//   equal message and re-encodes to the same text: parse(encode(parse(x))) == parse(x);
// - the directions agree on the shared types: a bye parses the same both ways, and a candidate
//   a client may send is one the server may forward (without its request);
// - the JSON layer (one pass that also refuses duplicate member names) accepts what
//   boost::json::parse accepts with the same options, less duplicates: whatever json::parse
//   refuses is bad_json, and whatever it accepts is bad_json only when too large, not an object
//   or with a duplicate member;
// - every error has a code parse_* documents, a short plain-text message, and echoes only
//   well-formed request/session ids (none for bad_json);
// - error messages never depend on secret values: changing the characters of hello.token,
//   session.relay.password and session.relay.token within their character classes (so their
//   validity is unchanged) leaves the result and the message exactly as they were.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "common/signaling/message.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace roam::signaling;
namespace json = boost::json;

constexpr std::size_t kMaxErrorTextSize = 256;

void check_error(const ParseError& e) {
  FUZZ_CHECK(e.code == ErrorCode::kBadJson || e.code == ErrorCode::kBadMessage ||
             e.code == ErrorCode::kUnknownType || e.code == ErrorCode::kUnsupportedVersion);
  fuzz_check_error_text(e.message, kMaxErrorTextSize);
  FUZZ_CHECK(!e.request || valid_request_id(*e.request));
  FUZZ_CHECK(!e.session || valid_session_id(*e.session));
  if (e.code == ErrorCode::kBadJson) FUZZ_CHECK(!e.request && !e.session);
}

template <class Message, class Parse>
void check_round_trip(const Message& message, Parse parse) {
  FUZZ_CHECK(!type_name(message).empty());
  const std::string encoded = encode(message);
  FUZZ_CHECK(encoded.size() <= kMaxMessageSize);
  auto again = parse(encoded);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == message);
  FUZZ_CHECK(encode(*again) == encoded);
}

// Moves a character to another of the same class (digits, a-f, g-z, A-F, G-Z, other printable
// ASCII except '"' and '\\'), so every rule the codec applies to secrets judges it the same.
char rotate(char c) {
  constexpr std::string_view kClasses[] = {
      "0123456789",           "abcdef",
      "ghijklmnopqrstuvwxyz", "ABCDEF",
      "GHIJKLMNOPQRSTUVWXYZ", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"};
  for (std::string_view cls : kClasses) {
    const auto at = cls.find(c);
    if (at != std::string_view::npos) return cls[(at + 1) % cls.size()];
  }
  return c;
}

bool rotate_member(json::object& object, std::string_view name) {
  auto* v = object.if_contains(json::string_view(name.data(), name.size()));
  if (v == nullptr || !v->is_string()) return false;
  std::string s(v->get_string().data(), v->get_string().size());
  for (char& c : s)
    c = rotate(c);
  *v = json::string_view(s.data(), s.size());
  return true;
}

template <class Parse>
void check_same_outcome(const std::string& a, const std::string& b, Parse parse) {
  auto ra = parse(a);
  auto rb = parse(b);
  FUZZ_CHECK(ra.has_value() == rb.has_value());
  if (ra) return;
  FUZZ_CHECK(ra.error().code == rb.error().code);
  FUZZ_CHECK(ra.error().message == rb.error().message);
}

void check_secrets(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return;
  const std::string original = json::serialize(v);
  json::object& top = v.get_object();
  bool changed = rotate_member(top, "token");
  if (auto* relay = top.if_contains("relay"); relay != nullptr && relay->is_object()) {
    changed = rotate_member(relay->get_object(), "password") || changed;
    changed = rotate_member(relay->get_object(), "token") || changed;
  }
  if (!changed) return;
  const std::string rotated = json::serialize(v);
  check_same_outcome(original, rotated, parse_client_message);
  check_same_outcome(original, rotated, parse_server_message);
}

// The single-pass JSON layer against Boost's own parser with the codec's options (standard
// JSON, kMaxJsonDepth).
template <class Result>
void check_json_layer(std::string_view text, const Result& result) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  json::error_code ec;
  const json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, options);
  if (ec) {
    FUZZ_CHECK(!result && result.error().code == ErrorCode::kBadJson);
    return;
  }
  if (!result && result.error().code == ErrorCode::kBadJson) {
    FUZZ_CHECK(text.size() > kMaxMessageSize || !v.is_object() ||
               result.error().message == "duplicate member name in a JSON object");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto client = parse_client_message(text);
  if (client) {
    check_round_trip(*client, parse_client_message);
  } else {
    check_error(client.error());
  }
  auto server = parse_server_message(text);
  if (server) {
    check_round_trip(*server, parse_server_message);
  } else {
    check_error(server.error());
  }

  // The types both directions share.
  if (client && std::holds_alternative<Bye>(*client)) {
    FUZZ_CHECK(server && *server == ServerMessage(std::get<Bye>(*client)));
  }
  if (server && std::holds_alternative<Bye>(*server)) {
    FUZZ_CHECK(client && *client == ClientMessage(std::get<Bye>(*server)));
  }
  if (client && std::holds_alternative<Candidate>(*client)) {
    Candidate forwarded = std::get<Candidate>(*client);
    forwarded.request.reset();
    FUZZ_CHECK(server && *server == ServerMessage(forwarded));
  }

  check_json_layer(text, client);
  check_json_layer(text, server);
  check_secrets(text);
  return 0;
}
