// Per-pair round-trip time from check round trips (RFC 6298 §2 smoothing; Karn's rule — samples
// only from transactions that were never retransmitted — is applied by the caller), and the
// active-pair liveness timeout derived from it (agent_config.h explains the formula).
#pragma once

#include <algorithm>
#include <optional>

#include "common/util/time.h"

namespace roam::ice {

class RttEstimator {
 public:
  // RFC 6298 §2.2 (first sample) and §2.3 (later ones, alpha = 1/8, beta = 1/4).
  void add_sample(Duration rtt) {
    rtt = std::max(rtt, Duration::zero());
    latest_ = rtt;
    min_ = min_ ? std::min(*min_, rtt) : rtt;
    if (!srtt_) {
      srtt_ = rtt;
      rttvar_ = rtt / 2;
      return;
    }
    const Duration delta = *srtt_ > rtt ? *srtt_ - rtt : rtt - *srtt_;
    rttvar_ = (rttvar_ * 3 + delta) / 4;
    srtt_ = (*srtt_ * 7 + rtt) / 8;
  }
  bool has_sample() const { return srtt_.has_value(); }
  std::optional<Duration> smoothed() const { return srtt_; }
  Duration variation() const { return rttvar_; }
  std::optional<Duration> latest() const { return latest_; }
  std::optional<Duration> min() const { return min_; }

 private:
  std::optional<Duration> srtt_;
  Duration rttvar_{};
  std::optional<Duration> latest_;
  std::optional<Duration> min_;
};

// max(3 × SRTT, SRTT + 4 × RTTVAR) + max_ack_delay, clamped to [min_timeout, max_timeout];
// `fallback` (the caller's best guess) stands in for SRTT before the first sample.
inline Duration liveness_timeout(const RttEstimator& rtt, Duration max_ack_delay,
                                 Duration min_timeout, Duration max_timeout, Duration fallback) {
  const Duration srtt = rtt.smoothed().value_or(fallback);
  const Duration base = std::max(srtt * 3, srtt + rtt.variation() * 4);
  return std::clamp(base + max_ack_delay, min_timeout, std::max(min_timeout, max_timeout));
}

}  // namespace roam::ice
