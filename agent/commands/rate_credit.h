// Constant-rate sending (`--rate MBIT` of send and perf): byte credit that accrues at the rate
// while time passes; the sender spends it on stream writes at every tick.
#pragma once

#include <algorithm>
#include <cstddef>

#include "common/util/time.h"

namespace roam::agent {

// How often a paced sender adds credit and writes (small enough for smooth pacing at 1 Gbit/s).
inline constexpr Duration kRateTick = milliseconds(2);

class RateCredit {
 public:
  RateCredit(double mbit, TimePoint start, double initial_bytes = 0)
      : bytes_per_second_(mbit * 1e6 / 8), last_(start), credit_(initial_bytes) {}

  void accrue(TimePoint now) {
    credit_ += bytes_per_second_ * std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  // No burst after a stall: at most `bytes` of saved-up credit.
  void cap(std::size_t bytes) { credit_ = std::min(credit_, static_cast<double>(bytes)); }
  std::size_t available() const { return credit_ >= 1 ? static_cast<std::size_t>(credit_) : 0; }
  void spend(std::size_t bytes) { credit_ -= static_cast<double>(bytes); }

 private:
  double bytes_per_second_;
  TimePoint last_;
  double credit_;
};

}  // namespace roam::agent
