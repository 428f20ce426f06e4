// Time for sans-I/O state machines: callers pass `now`; nothing in common/ reads a clock.
#pragma once

#include <chrono>

namespace roam {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

using std::chrono::milliseconds;
using std::chrono::seconds;

// A deadline that is never reached, for state machines with nothing scheduled.
inline constexpr TimePoint kNever = TimePoint::max();

// Milliseconds as a double, for logs and reports.
inline double to_ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace roam
