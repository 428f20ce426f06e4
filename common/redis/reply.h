// Owned Redis replies and the errors a Redis command can complete with.
//
// A Reply is a plain value (no pointers into hiredis): it is copied out of hiredis's reply
// tree before the hiredis callback returns, within the bounds of ReplyLimits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/util/expected.h"

struct redisReply;  // hiredis

namespace roam::redis {

// Why a command (or a connection attempt) did not produce a reply.
enum class Errc : std::uint8_t {
  kNotConnected,     // no connection at submit time (connecting or reconnecting): retry later
  kTimeout,          // no reply within the command's timeout (a late reply is discarded)
  kConnectionLost,   // the connection broke after the command was sent; it may have run
  kServerError,      // Redis answered with an error reply; message is its text ("WRONGTYPE ...")
  kTooManyInFlight,  // Options::max_in_flight commands are already awaiting replies
  kReplyTooLarge,    // the reply exceeds ReplyLimits (the command did run on the server)
  kInvalidArgument,  // empty command, Options::max_command_bytes exceeded, or a pub/sub
                     // command on Client (use Subscriber)
  kConnectFailed,    // a connection attempt failed (refused, resolve error, connect timeout)
  kShutdown,         // the Client/Subscriber was destroyed or stopped first
};

std::string_view to_string(Errc code);

struct Error {
  Errc code = Errc::kNotConnected;
  std::string message;  // human-readable cause; for kServerError the server's text verbatim

  bool operator==(const Error&) const = default;
};

// "timeout: no reply within 200 ms" style text for logs.
std::string to_string(const Error& error);

// Values of a reply tree. A top-level error reply never becomes a Reply (the command completes
// with Errc::kServerError); ErrorReply only appears inside arrays (EXEC, EVAL results).
struct Nil {
  bool operator==(const Nil&) const = default;
};
struct Status {  // simple string reply: "OK", "PONG", "QUEUED"
  std::string text;
  bool operator==(const Status&) const = default;
};
struct ErrorReply {
  std::string text;
  bool operator==(const ErrorReply&) const = default;
};

class Reply {
 public:
  using Array = std::vector<Reply>;
  // std::string is a bulk string: binary safe (may hold NUL bytes).
  using Value = std::variant<Nil, std::int64_t, std::string, Status, ErrorReply, Array>;

  Reply() = default;  // nil
  Reply(Value value) : value_(std::move(value)) {}

  const Value& value() const { return value_; }
  Value& value() { return value_; }

  bool is_nil() const { return std::holds_alternative<Nil>(value_); }
  // Each returns nullptr when the reply holds another type.
  const std::int64_t* as_integer() const { return std::get_if<std::int64_t>(&value_); }
  const std::string* as_string() const { return std::get_if<std::string>(&value_); }
  const Status* as_status() const { return std::get_if<Status>(&value_); }
  const ErrorReply* as_error() const { return std::get_if<ErrorReply>(&value_); }
  const Array* as_array() const { return std::get_if<Array>(&value_); }

  // redis-cli-like rendering for logs and test failure messages (bytes outside printable
  // ASCII are escaped as \xNN).
  std::string debug_string() const;

  bool operator==(const Reply&) const = default;

 private:
  Value value_;
};

using Result = roam::expected<Reply, Error>;

// Bounds applied while copying a reply out of hiredis. hiredis 0.14 itself has no limits: it
// has already buffered the whole reply when these are checked, so they protect the code that
// consumes replies, not the socket reader. Size Redis data (and proto-max-bulk-len) accordingly.
struct ReplyLimits {
  std::size_t max_depth = 8;                    // nesting of arrays (a flat array is depth 1)
  std::size_t max_elements = 1'000'000;         // all array elements in the tree
  std::size_t max_bytes = 64u * 1024u * 1024u;  // all string bytes in the tree
};

// Copies a hiredis reply. A top-level REDIS_REPLY_ERROR becomes Errc::kServerError; a null
// pointer (hiredis's "connection went away") becomes Errc::kConnectionLost.
Result convert_reply(const ::redisReply* reply, const ReplyLimits& limits);

}  // namespace roam::redis
