// Wall-clock Unix milliseconds: the time base of the Redis pool (scores, expiries), shared
// with every signaling server (docs/relay-pool.md).
#pragma once

#include <chrono>
#include <cstdint>

namespace roam::relay {

inline std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace roam::relay
