#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/signaling/message.h"

namespace roam::signaling {
namespace {

// --- The examples of docs/signaling-protocol.md ---------------------------------------------
//
// Copied from the doc with the "..." placeholders filled in. They are written compactly and
// with the doc's member order, which is also encode()'s order: encoding the parsed example
// must give back exactly this text.

constexpr std::string_view kFingerprint1 =
    "sha-256 5A:1F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67:89:AB:CD:EF:10:32:"
    "54:76:98:9C";
constexpr std::string_view kFingerprint2 =
    "sha-256 77:E0:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67:89:AB:CD:EF:10:32:"
    "54:76:98:01";
constexpr std::string_view kToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2MzczMDAwMH0."
    "c2lnbmF0dXJlLXBsYWNlaG9sZGVyLTAxMjM0NTY3ODk";
constexpr std::string_view kSessionId = "9f86d081884c7d659a2feaa0c55ad015";

const std::string kHelloExample =
    R"({"type":"hello","version":1,"token":")" + std::string(kToken) +
    R"(","client":"roam/0.1.0","capabilities":["trickle","quic-v1"],"region":"eu-west",)"
    R"("fingerprint":")" +
    std::string(kFingerprint1) + R"(","ice":{"ufrag":"Fq3Z","pwd":"asd88fgpdd777uzjYhagZg0a"}})";
constexpr std::string_view kConnectExample = R"({"type":"connect","request":"r1","peer":"bob"})";
constexpr std::string_view kCandidateExample =
    R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015",)"
    R"("candidate":"candidate:1 1 UDP 2130706431 192.0.2.7 50000 typ host"})";
constexpr std::string_view kEndOfCandidatesExample =
    R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015","end_of_candidates":true})";
constexpr std::string_view kByeExample =
    R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015","reason":"done"})";
constexpr std::string_view kWelcomeExample =
    R"({"type":"welcome","version":1,"peer":"alice","server":"sig-1","token_expires":1763730000,)"
    R"("limits":{"max_message_bytes":65536,"messages_per_second":50,"burst":100,)"
    R"("max_sessions":64,"idle_timeout_s":60,"hello_timeout_s":10}})";
const std::string kSessionExample =
    R"({"type":"session","session":"9f86d081884c7d659a2feaa0c55ad015","request":"r1",)"
    R"("role":"controlling","peer":"bob","fingerprint":")" +
    std::string(kFingerprint2) +
    R"(","ice":{"ufrag":"Xk2p","pwd":"zW8d0Qm1pY4gHs0lRtNc6vbE"},)"
    R"("relay":{"uri":"turn:203.0.113.10:3478?transport=udp","username":"1763726700:alice",)"
    R"("password":"u0dGZ2y8rTq3V3a1R2bC1k4zQmY=","token":"8d2f11c40a7b3e95",)"
    R"("address":"203.0.113.10:50001","expires":1763726700},)"
    R"("remote_candidates":["candidate:Rf0c3a51b 1 UDP 16777215 203.0.113.10 50101 typ relay )"
    R"(raddr 0.0.0.0 rport 0"]})";
constexpr std::string_view kErrorExample =
    R"({"type":"error","code":"peer_unavailable","message":"peer 'bob' is not connected",)"
    R"("request":"r1"})";

std::string describe(const ParseError& e) {
  return std::string(to_string(e.code)) + ": " + e.message;
}

ClientMessage client_ok(std::string_view text) {
  auto r = parse_client_message(text);
  EXPECT_TRUE(r) << text << "\n  -> " << describe(r.error());
  return r ? *r : ClientMessage{};
}

ServerMessage server_ok(std::string_view text) {
  auto r = parse_server_message(text);
  EXPECT_TRUE(r) << text << "\n  -> " << describe(r.error());
  return r ? *r : ServerMessage{};
}

ParseError client_error(std::string_view text) {
  auto r = parse_client_message(text);
  EXPECT_FALSE(r) << text << "\n  -> parsed as " << encode(*r);
  return r ? ParseError{} : r.error();
}

ParseError server_error(std::string_view text) {
  auto r = parse_server_message(text);
  EXPECT_FALSE(r) << text << "\n  -> parsed as " << encode(*r);
  return r ? ParseError{} : r.error();
}

// The one property the fuzz target checks, for a given text and both directions.
void expect_round_trip(std::string_view text) {
  if (auto c = parse_client_message(text)) {
    const std::string encoded = encode(*c);
    auto again = parse_client_message(encoded);
    ASSERT_TRUE(again) << encoded << "\n  -> " << describe(again.error());
    EXPECT_EQ(*again, *c) << text << "\n  encoded: " << encoded;
    EXPECT_EQ(encode(*again), encoded);
  }
  if (auto s = parse_server_message(text)) {
    const std::string encoded = encode(*s);
    auto again = parse_server_message(encoded);
    ASSERT_TRUE(again) << encoded << "\n  -> " << describe(again.error());
    EXPECT_EQ(*again, *s) << text << "\n  encoded: " << encoded;
    EXPECT_EQ(encode(*again), encoded);
  }
}

// Replaces the first occurrence of `from` in `text` (which must contain it).
std::string replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// --- Doc examples ---------------------------------------------------------------------------

TEST(SignalingDocExamples, Hello) {
  const auto m = client_ok(kHelloExample);
  ASSERT_TRUE(std::holds_alternative<Hello>(m));
  const auto& h = std::get<Hello>(m);
  EXPECT_EQ(h, (Hello{.version = 1,
                      .token = std::string(kToken),
                      .client = "roam/0.1.0",
                      .capabilities = {"trickle", "quic-v1"},
                      .region = "eu-west",
                      .fingerprint = std::string(kFingerprint1),
                      .ice = IceCredentials{"Fq3Z", "asd88fgpdd777uzjYhagZg0a"}}));
  EXPECT_EQ(encode(m), kHelloExample);
  EXPECT_EQ(type_name(m), "hello");
}

TEST(SignalingDocExamples, HelloWithTheDocsWhitespace) {
  // The doc's layout: a line break and an indent between members.
  const std::string spaced = replace(replace(kHelloExample, R"(,"client")", ",\n \"client\""),
                                     R"(,"fingerprint")", ",\n \"fingerprint\"");
  EXPECT_EQ(client_ok(spaced), client_ok(kHelloExample));
}

TEST(SignalingDocExamples, Connect) {
  const auto m = client_ok(kConnectExample);
  EXPECT_EQ(m, ClientMessage(Connect{"r1", "bob"}));
  EXPECT_EQ(encode(m), kConnectExample);
  EXPECT_EQ(type_name(m), "connect");
}

TEST(SignalingDocExamples, CandidateBothDirections) {
  const Candidate expected{std::string(kSessionId),
                           "candidate:1 1 UDP 2130706431 192.0.2.7 50000 typ host", std::nullopt};
  const auto c = client_ok(kCandidateExample);
  EXPECT_EQ(c, ClientMessage(expected));
  EXPECT_EQ(encode(c), kCandidateExample);
  EXPECT_EQ(type_name(c), "candidate");
  const auto s = server_ok(kCandidateExample);
  EXPECT_EQ(s, ServerMessage(expected));
  EXPECT_EQ(encode(s), kCandidateExample);
  EXPECT_EQ(type_name(s), "candidate");
}

TEST(SignalingDocExamples, EndOfCandidatesBothDirections) {
  const Candidate expected{std::string(kSessionId), std::nullopt, std::nullopt};
  const auto c = client_ok(kEndOfCandidatesExample);
  EXPECT_EQ(c, ClientMessage(expected));
  EXPECT_TRUE(std::get<Candidate>(c).end_of_candidates());
  EXPECT_EQ(encode(c), kEndOfCandidatesExample);
  const auto s = server_ok(kEndOfCandidatesExample);
  EXPECT_EQ(s, ServerMessage(expected));
  EXPECT_EQ(encode(s), kEndOfCandidatesExample);
}

TEST(SignalingDocExamples, ByeBothDirections) {
  const Bye expected{std::string(kSessionId), "done"};
  const auto c = client_ok(kByeExample);
  EXPECT_EQ(c, ClientMessage(expected));
  EXPECT_EQ(encode(c), kByeExample);
  EXPECT_EQ(type_name(c), "bye");
  const auto s = server_ok(kByeExample);
  EXPECT_EQ(s, ServerMessage(expected));
  EXPECT_EQ(encode(s), kByeExample);
  EXPECT_EQ(type_name(s), "bye");
}

TEST(SignalingDocExamples, Welcome) {
  const auto m = server_ok(kWelcomeExample);
  EXPECT_EQ(m, ServerMessage(Welcome{.version = 1,
                                     .peer = "alice",
                                     .server = "sig-1",
                                     .token_expires = 1763730000,
                                     .limits = Limits{}}));  // the doc's values are the defaults
  EXPECT_EQ(encode(m), kWelcomeExample);
  EXPECT_EQ(type_name(m), "welcome");
}

TEST(SignalingDocExamples, Session) {
  const auto m = server_ok(kSessionExample);
  ASSERT_TRUE(std::holds_alternative<Session>(m));
  const auto& s = std::get<Session>(m);
  EXPECT_EQ(s.session, kSessionId);
  EXPECT_EQ(s.request, "r1");
  EXPECT_EQ(s.role, Role::kControlling);
  EXPECT_EQ(s.peer, "bob");
  EXPECT_EQ(s.fingerprint, kFingerprint2);
  EXPECT_EQ(s.ice, (IceCredentials{"Xk2p", "zW8d0Qm1pY4gHs0lRtNc6vbE"}));
  ASSERT_TRUE(s.relay);
  EXPECT_EQ(s.relay->uri, "turn:203.0.113.10:3478?transport=udp");
  EXPECT_EQ(s.relay->username, "1763726700:alice");
  EXPECT_EQ(s.relay->password, "u0dGZ2y8rTq3V3a1R2bC1k4zQmY=");
  EXPECT_EQ(s.relay->token, "8d2f11c40a7b3e95");
  EXPECT_EQ(s.relay->address, SocketAddress::parse("203.0.113.10:50001"));
  EXPECT_EQ(s.relay->expires, 1763726700);
  EXPECT_EQ(s.remote_candidates,
            std::vector<std::string>{"candidate:Rf0c3a51b 1 UDP 16777215 203.0.113.10 50101 typ "
                                     "relay raddr 0.0.0.0 rport 0"});
  EXPECT_EQ(encode(m), kSessionExample);
  EXPECT_EQ(type_name(m), "session");
}

TEST(SignalingDocExamples, Error) {
  const auto m = server_ok(kErrorExample);
  EXPECT_EQ(m, ServerMessage(Error{ErrorCode::kPeerUnavailable, "peer 'bob' is not connected", "r1",
                                   std::nullopt}));
  EXPECT_EQ(encode(m), kErrorExample);
  EXPECT_EQ(type_name(m), "error");
}

TEST(SignalingDocExamples, EachDirectionRefusesTheOthersTypes) {
  for (std::string_view text : {std::string_view(kHelloExample), kConnectExample}) {
    EXPECT_EQ(server_error(text).code, ErrorCode::kUnknownType) << text;
  }
  for (std::string_view text :
       {kWelcomeExample, std::string_view(kSessionExample), kErrorExample}) {
    EXPECT_EQ(client_error(text).code, ErrorCode::kUnknownType) << text;
  }
}

// --- JSON layer -----------------------------------------------------------------------------

TEST(SignalingJson, MalformedJsonIsBadJson) {
  for (std::string_view text : {
           "",
           " ",
           "{",
           "{\"type\":\"bye\"",
           "nul",
           R"({"type":"connect","request":"r1","peer":"bob",})",         // trailing comma
           R"(/* c */ {"type":"connect","request":"r1","peer":"bob"})",  // comment
           R"({"type":"connect","request":"r1","peer":"bob"} {})",       // two documents
           R"({"type":"connect","request":"r1","peer":"bob"}x)",
           "{\"type\":\"connect\",\"request\":\"r1\",\"peer\":\"b\xff\"}",  // invalid UTF-8
           R"({"type":"connect","request":"r1","peer":"\ud800"})",          // lone surrogate
           "{'type':'connect'}",
       }) {
    const auto e = client_error(text);
    EXPECT_EQ(e.code, ErrorCode::kBadJson) << text;
    EXPECT_FALSE(e.message.empty());
    EXPECT_FALSE(e.request);  // nothing can be trusted in a text that is not JSON
    EXPECT_EQ(server_error(text).code, ErrorCode::kBadJson) << text;
  }
}

TEST(SignalingJson, TopLevelMustBeAnObject) {
  for (std::string_view text : {"[]", R"(["type","hello"])", R"("hello")", "1", "null", "true"}) {
    const auto e = client_error(text);
    EXPECT_EQ(e.code, ErrorCode::kBadJson) << text;
    EXPECT_EQ(e.message, "message is not a JSON object");
    EXPECT_EQ(server_error(text).code, ErrorCode::kBadJson) << text;
  }
}

TEST(SignalingJson, NestingDepthIsBounded) {
  // The message object is level 1: an unknown member may nest 7 more levels, not 8.
  auto nested = [](int arrays) {
    return std::string(R"({"type":"connect","request":"r1","peer":"bob","x":)") +
           std::string(arrays, '[') + std::string(arrays, ']') + "}";
  };
  EXPECT_TRUE(parse_client_message(nested(kMaxJsonDepth - 1)));
  const auto e = client_error(nested(kMaxJsonDepth));
  EXPECT_EQ(e.code, ErrorCode::kBadJson);
  EXPECT_EQ(e.message, "JSON nested deeper than 8 levels");
  // Objects count the same way as arrays.
  std::string objects = R"({"type":"connect","request":"r1","peer":"bob","x":)";
  for (std::size_t i = 0; i < kMaxJsonDepth; ++i)
    objects += R"({"y":)";
  objects += "1" + std::string(kMaxJsonDepth, '}') + "}";
  EXPECT_EQ(client_error(objects).code, ErrorCode::kBadJson);
  // Far deeper input fails the same way (no recursion in the parser).
  EXPECT_EQ(client_error(nested(10000)).code, ErrorCode::kBadJson);
}

TEST(SignalingJson, DuplicateMembersAreRejectedAtEveryLevel) {
  const std::vector<std::string> texts = {
      // top level, including `type` itself
      R"({"type":"connect","request":"r1","peer":"bob","peer":"eve"})",
      R"({"type":"connect","type":"hello","request":"r1","peer":"bob"})",
      // the same name written with an escape is the same name
      R"({"type":"connect","request":"r1","peer":"bob","p\u0065er":"eve"})",
      // inside a nested known object
      R"({"type":"hello","version":1,"token":"t","ice":{"ufrag":"Fq3Z","ufrag":"Zq3F",)"
      R"("pwd":"asd88fgpdd777uzjYhagZg0a"}})",
      // inside unknown members, objects in arrays, empty names
      R"({"type":"connect","request":"r1","peer":"bob","x":[{"a":1,"a":2}]})",
      R"({"type":"connect","request":"r1","peer":"bob","x":{"":1,"":1}})",
      R"({"type":"connect","request":"r1","peer":"bob","x":[1,{"y":[{"z":{"q":1,"q":1}}]}]})",
  };
  for (const auto& text : texts) {
    const auto e = client_error(text);
    EXPECT_EQ(e.code, ErrorCode::kBadJson) << text;
    EXPECT_EQ(e.message, "duplicate member name in a JSON object");
    EXPECT_FALSE(e.request);  // ambiguous messages echo nothing
  }
  // The same name in different objects is fine.
  EXPECT_TRUE(parse_client_message(
      R"({"type":"connect","request":"r1","peer":"bob","a":{"peer":1},"b":[{"peer":2},{"peer":3}]})"));
  EXPECT_EQ(server_error(std::string(kErrorExample).replace(1, 0, R"("code":"internal",)")).code,
            ErrorCode::kBadJson);
}

TEST(SignalingJson, SizeIsBounded) {
  // Pad a valid message with whitespace to exactly the limit, then one byte more.
  std::string text(kConnectExample);
  text.append(kMaxMessageSize - text.size(), ' ');
  ASSERT_EQ(text.size(), kMaxMessageSize);
  EXPECT_TRUE(parse_client_message(text));
  text += ' ';
  const auto e = client_error(text);
  EXPECT_EQ(e.code, ErrorCode::kBadJson);
  EXPECT_EQ(e.message, "message is larger than 65536 bytes");
  EXPECT_EQ(server_error(text).code, ErrorCode::kBadJson);
  // Checked before parsing: a huge non-JSON text gets the size error, not a syntax error.
  EXPECT_EQ(client_error(std::string(1 << 20, '{')).message, "message is larger than 65536 bytes");
}

TEST(SignalingJson, UnknownMembersAreIgnored) {
  EXPECT_EQ(
      client_ok(
          R"({"x":[1,2.5,null,{"a":"b"}],"type":"connect","request":"r1","peer":"bob","future":true})"),
      client_ok(kConnectExample));
  EXPECT_EQ(client_ok(replace(kHelloExample, R"("ufrag")", R"("new":{"k":[]},"ufrag")")),
            client_ok(kHelloExample));
  EXPECT_EQ(server_ok(replace(kSessionExample, R"("uri")", R"("region":"eu","uri")")),
            server_ok(kSessionExample));
  // A number no member allows, in an unknown member, is not an error either.
  EXPECT_TRUE(parse_client_message(
      R"({"type":"connect","request":"r1","peer":"bob","n":123456789012345678901234567890})"));
}

// --- Type -----------------------------------------------------------------------------------

TEST(SignalingType, MissingOrNotAString) {
  auto e = client_error(R"({"request":"r1","peer":"bob"})");
  EXPECT_EQ(e.code, ErrorCode::kBadMessage);
  EXPECT_EQ(e.message, "type: missing; expected a string (the message type)");
  EXPECT_EQ(e.request, "r1");
  e = server_error(R"({"type":1})");
  EXPECT_EQ(e.code, ErrorCode::kBadMessage);
  EXPECT_EQ(e.message, "type: expected a string (the message type)");
  EXPECT_EQ(client_error(R"({"type":null})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(client_error(R"({"type":["hello"]})").code, ErrorCode::kBadMessage);
}

TEST(SignalingType, UnknownTypes) {
  for (std::string_view type :
       {"", "Hello", "HELLO", "hello ", "ping", "welcome", "session", "error"}) {
    const auto e =
        client_error(R"({"type":")" + std::string(type) + R"(","request":"r9","session":")" +
                     std::string(kSessionId) + R"("})");
    EXPECT_EQ(e.code, ErrorCode::kUnknownType) << type;
    EXPECT_EQ(e.message, "type: not a client message type (hello, connect, candidate, bye)");
    EXPECT_EQ(e.request, "r9");  // so the server can say which request it did not understand
    EXPECT_EQ(e.session, kSessionId);
  }
  for (std::string_view type : {"hello", "connect", "Welcome", "ping"}) {
    const auto e = server_error(R"({"type":")" + std::string(type) + R"("})");
    EXPECT_EQ(e.code, ErrorCode::kUnknownType) << type;
    EXPECT_EQ(e.message,
              "type: not a server message type (welcome, session, candidate, bye, error)");
  }
}

TEST(SignalingType, TypeNames) {
  EXPECT_EQ(type_name(ClientMessage(Hello{})), "hello");
  EXPECT_EQ(type_name(ClientMessage(Connect{})), "connect");
  EXPECT_EQ(type_name(ClientMessage(Candidate{})), "candidate");
  EXPECT_EQ(type_name(ClientMessage(Bye{})), "bye");
  EXPECT_EQ(type_name(ServerMessage(Welcome{})), "welcome");
  EXPECT_EQ(type_name(ServerMessage(Session{})), "session");
  EXPECT_EQ(type_name(ServerMessage(Candidate{})), "candidate");
  EXPECT_EQ(type_name(ServerMessage(Bye{})), "bye");
  EXPECT_EQ(type_name(ServerMessage(Error{})), "error");
}

// --- Members: types, presence, ranges --------------------------------------------------------

TEST(SignalingMembers, ErrorsNameTheMember) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> client_cases = {
      {R"({"type":"connect","request":"r1","peer":7})",
       "connect.peer: expected a peer id (1..128 printable ASCII characters)"},
      {R"({"type":"connect","request":"r1"})",
       "connect.peer: missing; expected a peer id (1..128 printable ASCII characters)"},
      {R"({"type":"connect","request":"r1","peer":""})",
       "connect.peer: expected a peer id (1..128 printable ASCII characters)"},
      {R"({"type":"connect","request":"r1","peer":"b b"})",
       "connect.peer: expected a peer id (1..128 printable ASCII characters)"},
      {R"({"type":"connect","peer":"bob"})",
       "connect.request: missing; expected a request id (1..64 printable ASCII characters)"},
      {R"({"type":"connect","request":null,"peer":"bob"})",
       "connect.request: expected a request id (1..64 printable ASCII characters)"},
      {R"({"type":"bye"})",
       "bye.session: missing; expected a session id (32 lower-case hex digits)"},
      {R"({"type":"bye","session":"9F86D081884C7D659A2FEAA0C55AD015"})",
       "bye.session: expected a session id (32 lower-case hex digits)"},
      {R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015","reason":7})",
       "bye.reason: expected a reason (at most 128 bytes, no control characters)"},
      {R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015","reason":"a\nb"})",
       "bye.reason: expected a reason (at most 128 bytes, no control characters)"},
      {R"({"type":"hello","token":"t"})",
       "hello.version: missing; expected an integer (the protocol version, 1)"},
      {R"({"type":"hello","version":"1","token":"t"})",
       "hello.version: expected an integer (the protocol version, 1)"},
      {R"({"type":"hello","version":1.0,"token":"t"})",
       "hello.version: expected an integer (the protocol version, 1)"},
      {R"({"type":"hello","version":1})",
       "hello.token: missing; expected a JWT (1..4096 printable ASCII characters)"},
      {R"({"type":"hello","version":1,"token":"t","capabilities":"trickle"})",
       "hello.capabilities: expected an array of at most 16 strings of 1..32 printable ASCII "
       "characters"},
      {R"({"type":"hello","version":1,"token":"t","ice":{"ufrag":"Fq3Z"}})",
       "hello.ice.pwd: missing; expected an ICE password (22..256 ice-chars: ALPHA / DIGIT / "
       "\"+\" / \"/\")"},
      {R"({"type":"hello","version":1,"token":"t","ice":[]})",
       "hello.ice: expected an object with ufrag and pwd"},
      {R"({"type":"hello","version":1,"token":"t","fingerprint":"sha-256 5a:1f"})",
       "hello.fingerprint: expected a certificate fingerprint (\"sha-256 \" and 32 upper-case "
       "hex pairs joined by ':')"},
      {R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015"})",
       "candidate.candidate: missing; expected an RFC 8839 candidate line (1..1024 bytes), or "
       "end_of_candidates:true"},
      {R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015","candidate":"c",)"
       R"("end_of_candidates":true})",
       "candidate.candidate: not allowed with end_of_candidates:true; send one or the other"},
      {R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015",)"
       R"("end_of_candidates":"true"})",
       "candidate.end_of_candidates: expected true or false"},
  };
  for (const auto& c : client_cases) {
    const auto e = client_error(c.text);
    EXPECT_EQ(e.code, ErrorCode::kBadMessage) << c.text;
    EXPECT_EQ(e.message, c.message) << c.text;
  }
  const std::vector<Case> server_cases = {
      {replace(kWelcomeExample, R"("burst":100)", R"("burst":-1)"),
       "welcome.limits.burst: expected an integer in 0..4294967295"},
      {replace(kWelcomeExample, R"("burst":100,)", ""),
       "welcome.limits.burst: missing; expected an integer in 0..4294967295"},
      {replace(kWelcomeExample, R"("server":"sig-1",)", ""),
       "welcome.server: missing; expected a server name (1..64 printable ASCII characters)"},
      {replace(kSessionExample, R"("role":"controlling")", R"("role":"leader")"),
       "session.role: expected \"controlling\" or \"controlled\""},
      {replace(kSessionExample, R"("token":"8d2f11c40a7b3e95",)", ""),
       "session.relay.token: missing; expected token and address together (or neither)"},
      {replace(kSessionExample, R"("address":"203.0.113.10:50001",)", ""),
       "session.relay.address: missing; expected token and address together (or neither)"},
      {replace(kSessionExample, R"("address":"203.0.113.10:50001")", R"("address":"203.0.113.10")"),
       "session.relay.address: expected a relayed transport address (\"ip:port\" or "
       "\"[ipv6]:port\", port 1..65535)"},
      {replace(kSessionExample, R"(,"remote_candidates":[)", R"(,"remote_candidatez":[)"),
       "session.remote_candidates: missing; expected an array of at most 8 RFC 8839 candidate "
       "lines (1..1024 bytes each)"},
      {replace(kErrorExample, R"("code":"peer_unavailable")", R"("code":"Peer_Unavailable")"),
       "error.code: expected an error code of docs/signaling-protocol.md"},
  };
  for (const auto& c : server_cases) {
    const auto e = server_error(c.text);
    EXPECT_EQ(e.code, ErrorCode::kBadMessage) << c.text;
    EXPECT_EQ(e.message, c.message) << c.text;
  }
}

TEST(SignalingMembers, Version) {
  const auto hello = [](std::string_view version) {
    return R"({"type":"hello","version":)" + std::string(version) + R"(,"token":"t"})";
  };
  EXPECT_TRUE(parse_client_message(hello("1")));
  for (std::string_view v : {"0", "2", "-1", "100", "9223372036854775807", "18446744073709551615",
                             "-9223372036854775808"}) {
    const auto e = client_error(hello(v));
    EXPECT_EQ(e.code, ErrorCode::kUnsupportedVersion) << v;
    EXPECT_EQ(e.message, "hello.version: unsupported protocol version; this side speaks 1");
  }
  for (std::string_view v : {"1.0", "1e0", "\"1\"", "true", "null", "[1]", "1.5"}) {
    EXPECT_EQ(client_error(hello(v)).code, ErrorCode::kBadMessage) << v;
  }
  // The version is judged first: a later client's other members may mean something else.
  EXPECT_EQ(client_error(R"({"type":"hello","version":2,"token":7,"ice":"x"})").code,
            ErrorCode::kUnsupportedVersion);
  // And the welcome from a server that would pick another version.
  EXPECT_EQ(server_error(replace(kWelcomeExample, R"("version":1)", R"("version":2)")).code,
            ErrorCode::kUnsupportedVersion);
  EXPECT_EQ(server_error(replace(kWelcomeExample, R"("version":1,)", "")).code,
            ErrorCode::kBadMessage);
}

TEST(SignalingMembers, IntegersOnly) {
  const auto welcome = [](std::string_view member, std::string_view value) {
    return replace(kWelcomeExample, member, value);
  };
  // uint32 limits: the full range and nothing outside it.
  EXPECT_EQ(
      std::get<Welcome>(server_ok(welcome(R"("burst":100)", R"("burst":4294967295)"))).limits.burst,
      4294967295u);
  EXPECT_EQ(std::get<Welcome>(server_ok(welcome(R"("burst":100)", R"("burst":0)"))).limits.burst,
            0u);
  for (std::string_view bad : {R"("burst":4294967296)", R"("burst":-1)", R"("burst":1.5)",
                               R"("burst":1e2)", R"("burst":100.0)", R"("burst":"100")",
                               R"("burst":18446744073709551615)", R"("burst":null)"}) {
    EXPECT_EQ(server_error(welcome(R"("burst":100)", bad)).code, ErrorCode::kBadMessage) << bad;
  }
  // int64 times: non-negative, within int64.
  EXPECT_EQ(std::get<Welcome>(server_ok(welcome(R"("token_expires":1763730000)",
                                                R"("token_expires":9223372036854775807)")))
                .token_expires,
            INT64_MAX);
  for (std::string_view bad : {R"("token_expires":-1)", R"("token_expires":9223372036854775808)",
                               R"("token_expires":1763730000.5)"}) {
    EXPECT_EQ(server_error(welcome(R"("token_expires":1763730000)", bad)).code,
              ErrorCode::kBadMessage)
        << bad;
  }
  EXPECT_EQ(
      server_error(replace(kSessionExample, R"("expires":1763726700)", R"("expires":-5)")).message,
      "session.relay.expires: expected a non-negative integer (Unix seconds)");
}

TEST(SignalingMembers, Candidate) {
  const std::string base = R"({"type":"candidate","session":")" + std::string(kSessionId) + "\"";
  auto with = [&](std::string_view members) { return base + std::string(members) + "}"; };
  // end_of_candidates:false is the same as its absence.
  EXPECT_EQ(client_ok(with(R"(,"candidate":"x","end_of_candidates":false)")),
            client_ok(with(R"(,"candidate":"x")")));
  EXPECT_EQ(client_error(with(R"(,"end_of_candidates":false)")).code, ErrorCode::kBadMessage);
  EXPECT_EQ(client_error(with(R"(,"candidate":null,"end_of_candidates":true)")).code,
            ErrorCode::kBadMessage);
  // The codec bounds the line; its syntax is the server's business (ice::parse_candidate).
  EXPECT_TRUE(parse_client_message(with(R"(,"candidate":"not a candidate at all")")));
  EXPECT_TRUE(parse_client_message(
      with(R"(,"candidate":"a=candidate:1 1 udp 2130706431 192.0.2.7 50000 typ host\r\n")")));
  EXPECT_TRUE(parse_client_message(with(R"(,"candidate":")" + std::string(1024, 'c') + "\"")));
  EXPECT_EQ(client_error(with(R"(,"candidate":")" + std::string(1025, 'c') + "\"")).code,
            ErrorCode::kBadMessage);
  EXPECT_EQ(client_error(with(R"(,"candidate":"")")).code, ErrorCode::kBadMessage);
  // The optional request is read from clients and echoed; a forwarded candidate drops it.
  const auto c = client_ok(with(R"(,"request":"r7","candidate":"x")"));
  EXPECT_EQ(std::get<Candidate>(c).request, "r7");
  EXPECT_EQ(encode(c), with(R"(,"request":"r7","candidate":"x")"));
  EXPECT_EQ(client_error(with(R"(,"request":"","candidate":"x")")).message,
            "candidate.request: expected a request id (1..64 printable ASCII characters)");
  const auto s = server_ok(with(R"(,"request":"r7","candidate":"x")"));
  EXPECT_FALSE(std::get<Candidate>(s).request);
  EXPECT_EQ(encode(ServerMessage(std::get<Candidate>(c))), with(R"(,"candidate":"x")"));
}

TEST(SignalingMembers, HelloOptionalMembers) {
  const auto h = std::get<Hello>(client_ok(R"({"type":"hello","version":1,"token":"t.t.t"})"));
  EXPECT_EQ(h, (Hello{.version = 1, .token = "t.t.t"}));
  EXPECT_EQ(encode(ClientMessage(h)), R"({"type":"hello","version":1,"token":"t.t.t"})");

  const std::string base = R"({"type":"hello","version":1,"token":"t")";
  auto hello = [&](std::string_view members) { return base + std::string(members) + "}"; };
  auto bad = [&](std::string_view members) {
    const auto e = client_error(hello(members));
    EXPECT_EQ(e.code, ErrorCode::kBadMessage) << members;
  };
  // client/region: text up to 64 bytes (UTF-8 allowed), no control characters.
  EXPECT_TRUE(parse_client_message(hello(R"(,"client":"")")));
  EXPECT_TRUE(parse_client_message(hello(R"(,"client":")" + std::string(64, 'c') + "\"")));
  bad(R"(,"client":")" + std::string(65, 'c') + "\"");
  EXPECT_EQ(std::get<Hello>(client_ok(hello(R"(,"client":"r\u00f6am \"x\"")"))).client,
            "r\xc3\xb6"
            "am \"x\"");
  bad(R"(,"client":"a\tb")");
  bad(R"(,"client":"a\u007fb")");
  bad(R"(,"region":")" + std::string(65, 'r') + "\"");
  bad(R"(,"region":["eu"])");
  // capabilities: at most 16 strings of 1..32 printable ASCII characters.
  std::string caps = R"(,"capabilities":[)";
  for (int i = 0; i < 16; ++i)
    caps += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
  EXPECT_EQ(std::get<Hello>(client_ok(hello(caps + "]"))).capabilities.size(), 16u);
  bad(caps + R"(,"c16"])");
  EXPECT_TRUE(parse_client_message(hello(R"(,"capabilities":[])")));
  bad(R"(,"capabilities":[""])");
  bad(R"(,"capabilities":["a b"])");
  bad(R"(,"capabilities":[1])");
  bad(R"(,"capabilities":[")" + std::string(33, 'c') + "\"]");
  EXPECT_TRUE(parse_client_message(hello(R"(,"capabilities":[")" + std::string(32, 'c') + "\"]")));
  // token: 1..4096 printable ASCII.
  EXPECT_EQ(client_error(R"({"type":"hello","version":1,"token":""})").code,
            ErrorCode::kBadMessage);
  EXPECT_TRUE(parse_client_message(R"({"type":"hello","version":1,"token":")" +
                                   std::string(kMaxTokenSize, 't') + "\"}"));
  EXPECT_EQ(client_error(R"({"type":"hello","version":1,"token":")" +
                         std::string(kMaxTokenSize + 1, 't') + "\"}")
                .message,
            "hello.token: expected a JWT (1..4096 printable ASCII characters)");
  // ice credentials: RFC 8839 §5.4 sizes and ice-chars.
  bad(R"(,"ice":{"ufrag":"Fq3","pwd":"asd88fgpdd777uzjYhagZg0a"})");
  bad(R"(,"ice":{"ufrag":"Fq3Z","pwd":"asd88fgpdd777uzjYhagZ"})");
  bad(R"(,"ice":{"ufrag":"Fq-Z","pwd":"asd88fgpdd777uzjYhagZg0a"})");
  EXPECT_TRUE(
      parse_client_message(hello(R"(,"ice":{"ufrag":"F+/Z","pwd":"asd88fgpdd777uzjYhagZg"})")));
}

TEST(SignalingMembers, SessionVariants) {
  // Minimal: no request, fingerprint, ice or relay; no remote candidates.
  const std::string minimal = R"({"type":"session","session":")" + std::string(kSessionId) +
                              R"(","role":"controlled","peer":"alice","remote_candidates":[]})";
  const auto m = server_ok(minimal);
  EXPECT_EQ(m,
            ServerMessage(Session{
                .session = std::string(kSessionId), .role = Role::kControlled, .peer = "alice"}));
  EXPECT_EQ(encode(m), minimal);

  // A relay grant without a reservation (empty pool) and an IPv6 relayed address.
  const auto no_token = server_ok(replace(
      kSessionExample, R"("token":"8d2f11c40a7b3e95","address":"203.0.113.10:50001",)", ""));
  EXPECT_FALSE(std::get<Session>(no_token).relay->token);
  EXPECT_FALSE(std::get<Session>(no_token).relay->address);
  const auto v6 = server_ok(replace(kSessionExample, R"("address":"203.0.113.10:50001")",
                                    R"("address":"[2001:DB8:0:0::1]:3478")"));
  EXPECT_EQ(std::get<Session>(v6).relay->address, SocketAddress::parse("[2001:db8::1]:3478"));
  EXPECT_NE(encode(v6).find(R"("address":"[2001:db8::1]:3478")"), std::string::npos);

  for (std::string_view address : {R"("0.0.0.0:3478")", R"("203.0.113.10:0")", R"("host:3478")",
                                   R"("203.0.113.10:65536")", R"("[::]:1")", R"(50001)"}) {
    EXPECT_EQ(server_error(replace(kSessionExample, R"("203.0.113.10:50001")", address)).code,
              ErrorCode::kBadMessage)
        << address;
  }
  for (std::string_view uri :
       {R"("stun:203.0.113.10")", R"("turn:")", R"("TURN:x")", R"("turn:a b")", R"("")"}) {
    EXPECT_EQ(
        server_error(replace(kSessionExample, R"("turn:203.0.113.10:3478?transport=udp")", uri))
            .code,
        ErrorCode::kBadMessage)
        << uri;
  }
  EXPECT_TRUE(parse_server_message(replace(
      kSessionExample, R"("turn:203.0.113.10:3478?transport=udp")", R"("turns:relay.example")")));
  // At most 8 remote candidates, each a bounded non-empty string.
  std::string eight = R"(,"remote_candidates":["c")";
  for (int i = 1; i < 8; ++i)
    eight += R"(,"c")";
  const std::string head = minimal.substr(0, minimal.find(R"(,"remote_candidates")"));
  EXPECT_EQ(std::get<Session>(server_ok(head + eight + "]}")).remote_candidates.size(), 8u);
  EXPECT_EQ(server_error(head + eight + R"(,"c"]})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(server_error(head + R"(,"remote_candidates":[""]})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(server_error(head + R"(,"remote_candidates":"c"})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(server_error(head + R"(,"remote_candidates":[null]})").code, ErrorCode::kBadMessage);
}

TEST(SignalingMembers, ErrorMessages) {
  // Every code of the doc's table is accepted and round-trips through its name.
  const std::vector<std::string_view> codes = {
      "bad_json",         "bad_message",           "unknown_type",
      "hello_required",   "already_authenticated", "unsupported_version",
      "bad_token",        "token_expired",         "rate_limited",
      "peer_unavailable", "self_connect",          "too_many_sessions",
      "unknown_session",  "bad_candidate",         "routing_unavailable",
      "internal"};
  std::set<ErrorCode> seen;
  for (auto name : codes) {
    const auto code = error_code_from_string(name);
    ASSERT_TRUE(code) << name;
    EXPECT_EQ(to_string(*code), name);
    seen.insert(*code);
    const auto m = server_ok(R"({"type":"error","code":")" + std::string(name) + R"("})");
    EXPECT_EQ(std::get<Error>(m).code, *code);
    EXPECT_EQ(encode(m), R"({"type":"error","code":")" + std::string(name) + R"(","message":""})");
  }
  EXPECT_EQ(seen.size(), codes.size());
  EXPECT_FALSE(error_code_from_string("BAD_JSON"));
  EXPECT_FALSE(error_code_from_string(""));
  // The session member of an error, and the message bound.
  const auto both = std::get<Error>(
      server_ok(R"({"type":"error","code":"unknown_session","message":"m","session":")" +
                std::string(kSessionId) + R"(","request":"r2"})"));
  EXPECT_EQ(both.session, kSessionId);
  EXPECT_EQ(both.request, "r2");
  EXPECT_TRUE(parse_server_message(R"({"type":"error","code":"internal","message":")" +
                                   std::string(kMaxErrorMessageSize, 'm') + "\"}"));
  EXPECT_EQ(server_error(R"({"type":"error","code":"internal","message":")" +
                         std::string(kMaxErrorMessageSize + 1, 'm') + "\"}")
                .code,
            ErrorCode::kBadMessage);
  EXPECT_EQ(server_error(R"({"type":"error","message":"m"})").message,
            "error.code: missing; expected an error code of docs/signaling-protocol.md");
  EXPECT_EQ(to_string(Role::kControlling), "controlling");
  EXPECT_EQ(to_string(Role::kControlled), "controlled");
}

// --- Echo of request and session in errors ----------------------------------------------------

TEST(SignalingEcho, RequestAndSessionAreEchoedWhenWellFormed) {
  auto e = client_error(R"({"type":"connect","request":"r1","peer":""})");
  EXPECT_EQ(e.request, "r1");
  EXPECT_FALSE(e.session);

  e = client_error(R"({"type":"candidate","request":"r3","session":")" + std::string(kSessionId) +
                   R"(","candidate":7})");
  EXPECT_EQ(e.request, "r3");
  EXPECT_EQ(e.session, kSessionId);

  e = client_error(R"({"type":"bye","session":")" + std::string(kSessionId) + R"(","reason":1})");
  EXPECT_EQ(e.session, kSessionId);
  EXPECT_FALSE(e.request);

  // Echoed even when the member comes after the bad one, and for a version error.
  e = client_error(R"({"type":"connect","peer":null,"request":"r4"})");
  EXPECT_EQ(e.request, "r4");
  e = client_error(R"({"type":"hello","version":3,"token":"t","request":"r5"})");
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedVersion);
  EXPECT_EQ(e.request, "r5");

  // Ill-formed ids are not echoed (they would be as bad in the answer).
  e = client_error(R"({"type":"connect","request":")" + std::string(65, 'r') +
                   R"(","peer":"bob"})");
  EXPECT_EQ(e.message, "connect.request: expected a request id (1..64 printable ASCII characters)");
  EXPECT_FALSE(e.request);
  e = client_error(R"({"type":"candidate","request":5,"session":"XYZ","candidate":"c"})");
  EXPECT_FALSE(e.request);
  EXPECT_FALSE(e.session);

  // Server direction too.
  e = server_error(replace(kSessionExample, R"("role":"controlling")", R"("role":1)"));
  EXPECT_EQ(e.request, "r1");
  EXPECT_EQ(e.session, kSessionId);
}

// --- Secrets ------------------------------------------------------------------------------------

TEST(SignalingSecrets, NeverInErrorMessages) {
  // Each text has one invalid secret (or a valid secret next to another problem); the value
  // must not appear in the error message, whatever the problem.
  const std::string secret = "SuperSecret-Value-0123456789";
  const std::vector<std::string> client_texts = {
      R"({"type":"hello","version":1,"token":")" + secret + R"( with spaces"})",
      R"({"type":"hello","version":1,"token":")" + secret + std::string(kMaxTokenSize, 'x') +
          R"("})",
      R"({"type":"hello","version":1,"token":")" + secret + R"(","ice":1})",
      R"({"type":"hello","version":2,"token":")" + secret + R"("})",
      R"({"type":")" + secret + R"(","token":")" + secret + R"("})",
      R"({"type":"hello","version":1,"token":")" + secret + R"(","token":")" + secret + R"("})",
      R"({"type":"hello","version":1,"token":")" + secret + R"(","x":)",
  };
  for (const auto& text : client_texts) {
    const auto e = client_error(text);
    EXPECT_EQ(e.message.find(secret), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("SuperSecret"), std::string::npos) << e.message;
  }
  const std::vector<std::string> server_texts = {
      replace(kSessionExample, "u0dGZ2y8rTq3V3a1R2bC1k4zQmY=", secret + "\\n"),
      replace(kSessionExample, "u0dGZ2y8rTq3V3a1R2bC1k4zQmY=", std::string(300, 'P')),
      replace(kSessionExample, R"("8d2f11c40a7b3e95")", R"("8D2F11C40A7B3E95")"),
      replace(kSessionExample, R"("8d2f11c40a7b3e95")", R"("8d2f11c40a7b3e95ff")"),
      replace(kSessionExample, R"("address":"203.0.113.10:50001",)", ""),
  };
  for (const auto& text : server_texts) {
    const auto e = server_error(text);
    EXPECT_EQ(e.code, ErrorCode::kBadMessage) << text;
    for (std::string_view s :
         {std::string_view(secret), std::string_view("PPPPPPPP"), std::string_view("8D2F11C4"),
          std::string_view("8d2f11c4"), std::string_view("u0dGZ2y8")}) {
      EXPECT_EQ(e.message.find(s), std::string::npos) << e.message;
    }
  }
}

// --- Encoding -----------------------------------------------------------------------------------

TEST(SignalingEncode, OptionalMembersAreOmitted) {
  EXPECT_EQ(encode(ClientMessage(Bye{std::string(kSessionId), ""})),
            R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015"})");
  EXPECT_EQ(encode(ServerMessage(Candidate{std::string(kSessionId), std::nullopt, "r1"})),
            kEndOfCandidatesExample);
  EXPECT_EQ(encode(ServerMessage(Error{ErrorCode::kInternal, "", std::nullopt, std::nullopt})),
            R"({"type":"error","code":"internal","message":""})");
  Session s{.session = std::string(kSessionId), .peer = "bob"};
  s.relay = RelayGrant{.uri = "turn:r", .username = "1:bob", .password = "p", .expires = 1};
  EXPECT_EQ(encode(ServerMessage(s)),
            R"({"type":"session","session":"9f86d081884c7d659a2feaa0c55ad015",)"
            R"("role":"controlling","peer":"bob","relay":{"uri":"turn:r","username":"1:bob",)"
            R"("password":"p","expires":1},"remote_candidates":[]})");
}

TEST(SignalingEncode, EscapesText) {
  const Bye bye{std::string(kSessionId), "a \"quoted\" \\ r\xc3\xa9son \xf0\x9f\x91\x8b"};
  const std::string text = encode(ClientMessage(bye));
  EXPECT_EQ(text, R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015",)"
                  R"("reason":"a \"quoted\" \\ r)"
                  "\xc3\xa9son \xf0\x9f\x91\x8b\"}");
  EXPECT_EQ(client_ok(text), ClientMessage(bye));
}

TEST(SignalingEncode, RoundTrips) {
  const std::vector<std::string> texts = {
      kHelloExample,
      std::string(kConnectExample),
      std::string(kCandidateExample),
      std::string(kEndOfCandidatesExample),
      std::string(kByeExample),
      std::string(kWelcomeExample),
      kSessionExample,
      std::string(kErrorExample),
      // Non-canonical inputs: escapes, whitespace, member order, false flags, unknown members.
      R"( { "peer" : "b\u006fb" , "request" : "r\/1" , "type" : "connect" } )",
      R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015","request":"r9",)"
      R"("candidate":"a=candidate:1 1 udp 1 ::1 9 typ host\r\n","end_of_candidates":false})",
      R"({"type":"candidate","session":"9f86d081884c7d659a2feaa0c55ad015","candidate":"\u0001"})",
      R"({"type":"bye","session":"9f86d081884c7d659a2feaa0c55ad015","reason":""})",
      R"({"type":"hello","version":1,"token":"t","client":"","capabilities":[],"x":{}})",
      R"({"type":"error","code":"bad_json","session":"9f86d081884c7d659a2feaa0c55ad015"})",
      replace(kSessionExample, R"("203.0.113.10:50001")", R"("[::ffff:203.0.113.10]:050001")"),
      replace(kSessionExample, R"("203.0.113.10:50001")", R"("[2001:db8:0::1]:1")"),
  };
  for (const auto& text : texts) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(parse_client_message(text) || parse_server_message(text));
    expect_round_trip(text);
  }
}

TEST(SignalingEncode, NeverThrowsOnGarbage) {
  // A few pathological shapes; the fuzz target covers the rest.
  const std::vector<std::string> texts = {
      std::string(kMaxMessageSize, '['),
      std::string(kMaxMessageSize, '"'),
      "{\"type\":\"" + std::string(kMaxMessageSize - 12, 'x') + "\"}",
      std::string("{\"type\":\"bye\"\0}", 15),
      "{\"" + std::string(30000, 'k') + "\":1,\"" + std::string(30000, 'k') + "\":2}",
  };
  for (const auto& text : texts) {
    EXPECT_NO_THROW({
      (void)parse_client_message(text);
      (void)parse_server_message(text);
    });
    expect_round_trip(text);
  }
}

// --- Validators ---------------------------------------------------------------------------------

TEST(SignalingValidators, PeerAndRequestIds) {
  EXPECT_TRUE(valid_peer_id("a"));
  EXPECT_TRUE(valid_peer_id("alice@example.com/laptop-1"));
  EXPECT_TRUE(valid_peer_id(std::string(kMaxPeerIdSize, '~')));
  EXPECT_FALSE(valid_peer_id(""));
  EXPECT_FALSE(valid_peer_id(std::string(kMaxPeerIdSize + 1, 'a')));
  EXPECT_FALSE(valid_peer_id("a b"));
  EXPECT_FALSE(valid_peer_id("a\x7f"));
  EXPECT_FALSE(valid_peer_id("a\x1f"));
  EXPECT_FALSE(valid_peer_id("r\xc3\xb6"));
  EXPECT_FALSE(valid_peer_id(std::string_view("a\0b", 3)));
  EXPECT_TRUE(valid_request_id("r1"));
  EXPECT_TRUE(valid_request_id(std::string(kMaxRequestIdSize, '!')));
  EXPECT_FALSE(valid_request_id(std::string(kMaxRequestIdSize + 1, 'r')));
  EXPECT_FALSE(valid_request_id(""));
  EXPECT_FALSE(valid_request_id(" r1"));
}

TEST(SignalingValidators, SessionIds) {
  EXPECT_TRUE(valid_session_id(kSessionId));
  EXPECT_TRUE(valid_session_id(std::string(32, '0')));
  EXPECT_FALSE(valid_session_id("9F86D081884C7D659A2FEAA0C55AD015"));
  EXPECT_FALSE(valid_session_id(kSessionId.substr(1)));
  EXPECT_FALSE(valid_session_id(std::string(kSessionId) + "0"));
  EXPECT_FALSE(valid_session_id("9f86d081884c7d659a2feaa0c55ad01g"));
  EXPECT_FALSE(valid_session_id(""));
}

TEST(SignalingValidators, Fingerprints) {
  EXPECT_TRUE(valid_fingerprint(kFingerprint1));
  EXPECT_TRUE(valid_fingerprint(kFingerprint2));
  std::string f(kFingerprint1);
  EXPECT_FALSE(valid_fingerprint(f.substr(0, f.size() - 3)));  // 31 pairs
  EXPECT_FALSE(valid_fingerprint(f + ":00"));                  // 33 pairs
  EXPECT_FALSE(valid_fingerprint(replace(f, "sha-256 ", "SHA-256 ")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "sha-256 ", "sha-1 ")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "sha-256 ", "sha-256  ")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "5A", "5a")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "5A:", "5A-")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "5A:1F", "5A1:F")));
  EXPECT_FALSE(valid_fingerprint(replace(f, "9C", "9G")));
  EXPECT_FALSE(valid_fingerprint(f.substr(8)));
  EXPECT_FALSE(valid_fingerprint(""));
}

TEST(SignalingValidators, IceCredentials) {
  EXPECT_TRUE(valid_ice_credentials({"Fq3Z", "asd88fgpdd777uzjYhagZg"}));
  EXPECT_TRUE(valid_ice_credentials({"+/aZ", std::string(kMaxIceCredentialSize, 'p')}));
  EXPECT_TRUE(
      valid_ice_credentials({std::string(kMaxIceCredentialSize, 'u'), std::string(22, '/')}));
  EXPECT_FALSE(valid_ice_credentials({"Fq3", "asd88fgpdd777uzjYhagZg"}));
  EXPECT_FALSE(valid_ice_credentials({"Fq3Z", "asd88fgpdd777uzjYhagZ"}));
  EXPECT_FALSE(
      valid_ice_credentials({std::string(kMaxIceCredentialSize + 1, 'u'), std::string(22, 'p')}));
  EXPECT_FALSE(valid_ice_credentials({"Fq3Z", std::string(kMaxIceCredentialSize + 1, 'p')}));
  EXPECT_FALSE(valid_ice_credentials({"Fq3=", "asd88fgpdd777uzjYhagZg"}));
  EXPECT_FALSE(valid_ice_credentials({"Fq3Z", "asd88fgpdd777uzjYhag-g"}));
  EXPECT_FALSE(valid_ice_credentials({"Fq 3Z", "asd88fgpdd777uzjYhagZg"}));
  EXPECT_FALSE(valid_ice_credentials({}));
}

}  // namespace
}  // namespace roam::signaling
