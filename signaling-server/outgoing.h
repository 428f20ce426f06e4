// One message on its way to a connection's writer, with what the writer needs besides the
// bytes: the session bookkeeping it implies and when forwarding started (for latency).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/signaling/route_envelope.h"
#include "common/util/time.h"

namespace roam::signaling {

struct Outgoing {
  using SessionOp = signaling::SessionOp;

  std::string text;       // an encoded ServerMessage
  std::string_view type;  // its type name (static storage), for metrics
  SessionOp op = SessionOp::kNone;
  std::string session;
  std::string peer;  // kOpen: the other side
  // Forwarded messages are timed from arrival at the first instance to written on this one:
  // steady clock when both ends are on this instance, Unix microseconds across instances.
  enum class Timing : std::uint8_t { kNone, kLocal, kRemote } timing = Timing::kNone;
  TimePoint received_at{};
  std::int64_t received_unix_us = 0;
  // The sending connection had more of its input received and not yet parsed when this was
  // handed over: more of its burst, often for the same peer, follows within a few handlers.
  bool sender_has_more = false;
};

}  // namespace roam::signaling
