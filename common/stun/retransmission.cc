#include "common/stun/retransmission.h"

namespace roam::stun {

RetransmissionSchedule::RetransmissionSchedule(const RetransmissionPolicy& policy,
                                               TimePoint first_send)
    : policy_(policy), rto_(policy.initial_rto), transmissions_(1) {
  deadline_ = first_send + (policy_.max_transmissions > 1 ? rto_ : rto_ * policy_.final_wait_rtos);
}

bool RetransmissionSchedule::on_deadline(TimePoint now) {
  if (transmissions_ >= policy_.max_transmissions) return false;
  ++transmissions_;
  rto_ *= 2;  // RFC 8489 §6.2.1: the interval doubles after each transmission
  // After the last transmission wait Rm × the initial RTO (the RFC's 39.5 s = 31.5 + 16×0.5).
  deadline_ = now + (transmissions_ < policy_.max_transmissions
                         ? rto_
                         : policy_.initial_rto * policy_.final_wait_rtos);
  return true;
}

}  // namespace roam::stun
