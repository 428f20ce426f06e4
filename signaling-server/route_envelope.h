// What instances publish to each other's channel (layout::instance_channel): a message for a
// peer connected there, or a kick telling the instance that one of its peers reconnected
// elsewhere. JSON, produced by this code or by layout::register_script (kicks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/util/expected.h"
#include "signaling-server/outgoing.h"

namespace roam::signaling {

// Bound on an envelope: a message of at most kMaxMessageSize, JSON-escaped (up to 6 bytes per
// byte for control characters), plus the envelope's own members.
inline constexpr std::size_t kMaxEnvelopeSize = 6 * 64 * 1024 + 1024;

struct Envelope {
  enum class Kind : std::uint8_t { kDeliver, kKick } kind = Kind::kDeliver;
  std::string peer;             // the peer it is for
  std::int64_t generation = 0;  // kKick: the registry generation that took the peer over
  Outgoing message;             // kDeliver (timing is kRemote)
};

// A kDeliver envelope; `message.received_unix_us` must be set.
std::string encode_delivery(std::string_view peer, const Outgoing& message);
expected<Envelope, std::string> decode_envelope(std::string_view text);

}  // namespace roam::signaling
