#include "relay/pool/pool_policy.h"

#include <algorithm>

namespace roam::relay {

int PoolPolicy::wanted(TimePoint now, int available) const {
  if (retry_at_ != kNever && now < retry_at_) return 0;
  int missing = config_.target - available - in_flight_;
  int room = config_.max_in_flight - in_flight_;
  // While backing off, probe with one request at a time instead of a burst.
  if (retry_at_ != kNever) room = std::min(room, 1 - in_flight_);
  return std::max(0, std::min(missing, room));
}

void PoolPolicy::on_created() {
  in_flight_ = std::max(0, in_flight_ - 1);
  exhausted_ = false;
  backoff_ = {};
  retry_at_ = kNever;
}

void PoolPolicy::on_failed(TimePoint now, turn::Failure failure) {
  in_flight_ = std::max(0, in_flight_ - 1);
  if (failure == turn::Failure::kInsufficientCapacity || failure == turn::Failure::kQuotaReached) {
    exhausted_ = true;
  }
  backoff_ = backoff_ == Duration{} ? config_.min_backoff
                                    : std::min<Duration>(backoff_ * 2, config_.max_backoff);
  retry_at_ = now + backoff_;
}

void PoolPolicy::reset() {
  in_flight_ = 0;
  exhausted_ = false;
  backoff_ = {};
  retry_at_ = kNever;
}

}  // namespace roam::relay
