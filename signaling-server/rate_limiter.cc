#include "signaling-server/rate_limiter.h"

#include <algorithm>

namespace roam::signaling {

TokenBucket::TokenBucket(double rate_per_second, double burst, TimePoint now)
    : rate_(rate_per_second), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

void TokenBucket::refill(TimePoint now) {
  if (now <= last_) return;  // a clock that does not move forward adds nothing
  double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

bool TokenBucket::try_take(TimePoint now) {
  refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

double TokenBucket::tokens(TimePoint now) {
  refill(now);
  return tokens_;
}

RateLimiter::RateLimiter(std::uint32_t rate_per_second, std::uint32_t burst,
                         std::uint32_t close_after, TimePoint now)
    : bucket_(rate_per_second, burst, now), close_after_(std::max<std::uint32_t>(close_after, 1)) {}

RateLimiter::Verdict RateLimiter::on_message(TimePoint now) {
  if (bucket_.try_take(now)) {
    dropped_in_a_row_ = 0;
    return Verdict::kAccept;
  }
  ++dropped_in_a_row_;
  if (dropped_in_a_row_ >= close_after_) return Verdict::kClose;
  return dropped_in_a_row_ == 1 ? Verdict::kDropAndWarn : Verdict::kDrop;
}

}  // namespace roam::signaling
