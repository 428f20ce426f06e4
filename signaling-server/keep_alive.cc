#include "signaling-server/keep_alive.h"

namespace roam::signaling {

KeepAlive::Action KeepAlive::on_tick(std::uint64_t receives) {
  if (receives != receives_seen_) {
    receives_seen_ = receives;
    pinged_ = false;
    return Action::kNone;
  }
  if (!pinged_) {
    pinged_ = true;
    if (ping_in_flight_) return Action::kNone;
    ping_in_flight_ = true;
    return Action::kPing;
  }
  return Action::kTimeOut;
}

}  // namespace roam::signaling
