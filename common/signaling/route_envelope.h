// What roam-signaling instances publish to each other's Redis channel: a message for a peer
// connected there, or a kick telling the instance that one of its peers reconnected
// elsewhere. JSON produced by roam-signaling (deliveries) or by its register script (kicks,
// via Redis's cjson); decoded strictly, since Redis is shared state (fuzzed by
// tests/fuzz/fuzz_route_envelope.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/signaling/message.h"
#include "common/util/expected.h"

namespace roam::signaling {

// Bound on an envelope: a message of at most kMaxMessageSize, JSON-escaped (up to 6 bytes per
// byte for control characters), plus the envelope's own members.
inline constexpr std::size_t kMaxEnvelopeSize = 6 * kMaxMessageSize + 1024;

// The session bookkeeping a delivered message implies for the receiving connection.
enum class SessionOp : std::uint8_t {
  kNone,
  kOpen,   // a `session`: the receiver now takes part in `session` with `peer`
  kClose,  // a `bye`: the receiver leaves `session`
};

struct RoutedMessage {
  std::string text;  // an encoded ServerMessage, forwarded as is
  std::string type;  // its type name: welcome, session, candidate, bye or error
  SessionOp op = SessionOp::kNone;
  std::string session;                // kOpen/kClose
  std::string peer;                   // kOpen: the other side
  std::int64_t received_unix_us = 0;  // when the first instance received it (latency)
  bool operator==(const RoutedMessage&) const = default;
};

struct Envelope {
  enum class Kind : std::uint8_t { kDeliver, kKick } kind = Kind::kDeliver;
  std::string peer;             // the peer it is for
  std::int64_t generation = 0;  // kKick: the registry generation that took the peer over
  RoutedMessage message;        // kDeliver
};

std::string encode_delivery(std::string_view peer, const RoutedMessage& message);
// Errors name the problem (never the message text).
expected<Envelope, std::string> decode_envelope(std::string_view text);

}  // namespace roam::signaling
