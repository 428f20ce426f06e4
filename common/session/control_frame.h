// Frames of the QUIC control stream between two Roam agents. Once connected, the agents trickle
// ICE candidates over it (so path discovery survives a signaling outage), the controlled side
// asks the controlling side to switch paths, and either side probes RTT with ping/pong.
//
// Wire format, one frame after another on a single bidirectional stream:
//
//   type (1 byte) | length (2 bytes, big-endian) | payload (length bytes, at most 1024)
//
//   1 candidate          RFC 8839 candidate attribute value text, 1..512 printable ASCII bytes
//                        (not parsed here: the ICE layer does, common/ice/candidate_text.h)
//   2 end-of-candidates  empty payload
//   3 candidate-removed  "IP PORT" as text ("192.0.2.1 5000", "2001:db8::1 5000"), port 1..65535
//   4 switch-request     reason text, 0..256 printable ASCII bytes ("local-candidate-removed")
//   5 ping, 6 pong       8-byte big-endian nonce (application-level RTT probe)
//
// Frames of any other type are skipped (forward compatibility) as long as their length is
// within bounds. Printable ASCII means bytes 0x20..0x7e: the texts end up in logs.
//
// Contracts:
// - Pure: no I/O, no clocks; never throws except std::bad_alloc.
// - Every frame ControlFrameReader yields passes validate(), and encode() of it decodes back
//   to an equal frame (fuzzed by tests/fuzz/fuzz_control_frame.cc).
// - Decoding does not depend on how the bytes were split across feed() calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/util/bytes.h"
#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::session {

// Bounds. All of them are far above what the agent sends: a Roam candidate line is under 200
// bytes, a switch reason a few words.
inline constexpr std::size_t kControlFrameHeaderSize = 3;
inline constexpr std::size_t kMaxControlPayloadSize = 1024;
inline constexpr std::size_t kMaxCandidateTextSize = 512;
inline constexpr std::size_t kMaxSwitchReasonSize = 256;
inline constexpr std::size_t kPingPayloadSize = 8;
// Bytes a ControlFrameReader holds at most: the partial frame plus the wire size of decoded
// frames not yet taken with next(). Keep the control stream's QUIC receive window at or below
// this bound, or drain next() between feeds of at most this many bytes.
inline constexpr std::size_t kMaxControlPendingBytes = 64 * 1024;

enum class ControlFrameType : std::uint8_t {
  kCandidate = 1,
  kEndOfCandidates = 2,
  kCandidateRemoved = 3,
  kSwitchRequest = 4,
  kPing = 5,
  kPong = 6,
};

struct Candidate {
  std::string text;  // "1 1 udp 2130706431 192.0.2.1 5000 typ host" (RFC 8839 §5.1)
  bool operator==(const Candidate&) const = default;
};

// RFC 8838 §8.2 semantics: no more candidates from the sender in this generation.
struct EndOfCandidates {
  bool operator==(const EndOfCandidates&) const = default;
};

// The sender no longer has this local candidate (an interface went away): the receiver stops
// checking and using the pairs that include it.
struct CandidateRemoved {
  SocketAddress address;  // port != 0
  bool operator==(const CandidateRemoved&) const = default;
};

// Controlled side → controlling side: please nominate another pair (RFC 8445 leaves
// nomination to the controlling agent).
struct SwitchRequest {
  std::string reason;  // may be empty
  bool operator==(const SwitchRequest&) const = default;
};

struct Ping {
  std::uint64_t nonce = 0;
  bool operator==(const Ping&) const = default;
};

// Answers a Ping with its nonce.
struct Pong {
  std::uint64_t nonce = 0;
  bool operator==(const Pong&) const = default;
};

using ControlFrame =
    std::variant<Candidate, EndOfCandidates, CandidateRemoved, SwitchRequest, Ping, Pong>;

ControlFrameType type_of(const ControlFrame& frame);
// "candidate", "end-of-candidates", "candidate-removed", "switch-request", "ping", "pong".
std::string_view type_name(const ControlFrame& frame);

// Checks a frame built in code against the rules the reader enforces. Errors are the reader's:
// "candidate text: empty; expected 1..512 printable ASCII bytes",
// "candidate text: 600 bytes exceeds 512", "candidate text: byte 0x0a is not printable ASCII
// (offset 12)", "candidate-removed address: port 0; expected 1..65535",
// "switch reason: 300 bytes exceeds 256", "switch reason: byte 0x0a is not printable ASCII ...".
expected<void, std::string> validate(const ControlFrame& frame);

// The frame on the wire. A frame that fails validate() encodes to an empty buffer (no valid
// frame is empty), never to bytes the peer would reject.
Bytes encode(const ControlFrame& frame);

// Incremental decoder for one control stream. Feed the stream's bytes as they arrive, split
// anywhere, then take the decoded frames with next().
class ControlFrameReader {
 public:
  // Decodes every frame `data` completes. Errors (each leaves the stream unusable: reset it):
  // - "control frame type 1: payload 2000 bytes exceeds 1024" (a declared length above
  //   kMaxControlPayloadSize, whatever the type);
  // - a payload that breaks its type's rules: the validate() errors, plus
  //   "end-of-candidates frame: payload 3 bytes; expected none",
  //   "candidate-removed address: expected \"IP PORT\"",
  //   "candidate-removed address: not an IP address",
  //   "candidate-removed address: bad port; expected 1..65535" (1 to 5 digits, not 0),
  //   "ping frame: payload 7 bytes; expected 8" (and "pong frame: ...");
  // - "control stream: more than 65536 bytes pending; call next() between feeds".
  // After an error every feed() returns it again and consumes nothing; the frames decoded
  // before the error remain available from next().
  expected<void, std::string> feed(ByteSpan data);

  // The oldest decoded frame not yet taken, in stream order.
  std::optional<ControlFrame> next();

  // Frames of unknown types skipped so far.
  std::size_t skipped_unknown() const { return skipped_unknown_; }
  // Bytes held: the partial frame plus the wire size of decoded frames not yet taken.
  std::size_t pending_bytes() const { return partial_.size() + queued_bytes_; }
  bool failed() const { return error_.has_value(); }

 private:
  expected<void, std::string> fail(std::string error);

  Bytes partial_;  // the frame being received, header included; at most 3 + 1024 bytes
  std::deque<std::pair<ControlFrame, std::size_t>> frames_;  // with their wire sizes
  std::size_t queued_bytes_ = 0;
  std::size_t skipped_unknown_ = 0;
  std::optional<std::string> error_;
};

}  // namespace roam::session
