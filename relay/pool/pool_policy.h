// When roam-relay creates reservations: keep `target` tokens ready, at most `max_in_flight`
// being made at once, and back off exponentially while coturn refuses (508 out of ports,
// 486 quota) so an exhausted relay is not hammered. Sans-I/O: callers pass `now`.
#pragma once

#include "common/turn/failure.h"
#include "common/util/time.h"

namespace roam::relay {

struct PoolPolicyConfig {
  int target = 50;
  int max_in_flight = 16;
  Duration min_backoff = milliseconds(100);
  Duration max_backoff = seconds(10);
};

class PoolPolicy {
 public:
  explicit PoolPolicy(PoolPolicyConfig config) : config_(config) {}

  // How many reservations to start now, given `available` unexpired tokens in the pool.
  int wanted(TimePoint now, int available) const;
  void on_started() { ++in_flight_; }
  void on_created();
  // A failed reservation; capacity failures (508/486) mark the pool exhausted.
  void on_failed(TimePoint now, turn::Failure failure);
  // Forget in-flight work and backoff (coturn restarted: everything starts over).
  void reset();

  int in_flight() const { return in_flight_; }
  bool exhausted() const { return exhausted_; }
  // kNever when not backing off.
  TimePoint retry_at() const { return retry_at_; }
  const PoolPolicyConfig& config() const { return config_; }

 private:
  PoolPolicyConfig config_;
  int in_flight_ = 0;
  bool exhausted_ = false;
  Duration backoff_{};
  TimePoint retry_at_ = kNever;
};

}  // namespace roam::relay
