#include "signaling-server/keep_alive.h"

namespace roam::signaling {

KeepAlive::Action KeepAlive::on_tick(std::uint64_t receives, bool ping_pending) {
  if (receives != receives_seen_) {
    receives_seen_ = receives;
    pinged_ = false;
    return Action::kNone;
  }
  if (!pinged_) {
    pinged_ = true;
    return ping_pending ? Action::kNone : Action::kPing;
  }
  return Action::kTimeOut;
}

}  // namespace roam::signaling
