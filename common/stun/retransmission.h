// STUN request retransmission over UDP (RFC 8489 §6.2.1), as a sans-I/O schedule: the owner
// sends when due() says so and gives up when expired() says so.
#pragma once

#include "common/util/time.h"

namespace roam::stun {

struct RetransmissionPolicy {
  // RFC 8489 §6.2.1: RTO "SHOULD be greater than 500 ms" for a fresh path, Rc = 7, Rm = 16,
  // so the last of 7 transmissions goes at 31×RTO and the transaction fails at 39.5 s.
  Duration initial_rto = milliseconds(500);
  int max_transmissions = 7;  // Rc
  int final_wait_rtos = 16;   // Rm
};

class RetransmissionSchedule {
 public:
  RetransmissionSchedule() = default;
  RetransmissionSchedule(const RetransmissionPolicy& policy, TimePoint first_send);

  // When the next (re)transmission is due, or when the transaction times out after the last.
  TimePoint deadline() const { return deadline_; }
  // Called at/after deadline(): true if a retransmission must be sent now (and schedules the
  // next), false if the transaction has timed out.
  bool on_deadline(TimePoint now);
  int transmissions() const { return transmissions_; }

 private:
  RetransmissionPolicy policy_;
  Duration rto_{};
  TimePoint deadline_ = kNever;
  int transmissions_ = 0;
};

}  // namespace roam::stun
