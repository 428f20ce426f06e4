// Per-connection message rate limit: a token bucket (rate r/s, capacity `burst`) plus a flood
// guard that turns a sustained overrun into a disconnect. Sans-I/O: callers pass `now`.
//
// Policy (docs/signaling-protocol.md "Limits"): a message finding the bucket empty is dropped;
// the first drop of a run is answered with `rate_limited`; `close_after` drops in a row (no
// message accepted between them) mean the client ignores the answers: close 1008.
#pragma once

#include <cstdint>

#include "common/util/time.h"

namespace roam::signaling {

class TokenBucket {
 public:
  // Starts full. rate > 0, burst >= 1.
  TokenBucket(double rate_per_second, double burst, TimePoint now);
  // Takes one token if there is one.
  bool try_take(TimePoint now);
  double tokens(TimePoint now);

 private:
  void refill(TimePoint now);
  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_;
};

class RateLimiter {
 public:
  enum class Verdict {
    kAccept,       // process the message
    kDropAndWarn,  // drop it and answer `rate_limited` (first drop of a run)
    kDrop,         // drop it silently (the client was warned already)
    kClose,        // flood: close the connection with 1008
  };
  RateLimiter(std::uint32_t rate_per_second, std::uint32_t burst, std::uint32_t close_after,
              TimePoint now);
  Verdict on_message(TimePoint now);
  std::uint32_t dropped_in_a_row() const { return dropped_in_a_row_; }

 private:
  TokenBucket bucket_;
  std::uint32_t close_after_;
  std::uint32_t dropped_in_a_row_ = 0;
};

}  // namespace roam::signaling
