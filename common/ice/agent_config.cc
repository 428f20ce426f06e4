#include "common/ice/agent_config.h"

#include <algorithm>

namespace roam::ice {

AgentConfig AgentConfig::sanitized() const {
  AgentConfig c = *this;
  c.ta = std::max(c.ta, kMinTa);  // RFC 8445 §14.2
  c.check_retransmission.initial_rto =
      std::max(c.check_retransmission.initial_rto, kMinCheckRto);  // §14.3
  c.check_retransmission.max_transmissions = std::max(c.check_retransmission.max_transmissions, 1);
  c.check_retransmission.final_wait_rtos = std::max(c.check_retransmission.final_wait_rtos, 1);
  c.consent_timeout =
      std::clamp(c.consent_timeout, Duration(seconds(1)), kConsentTimeout);  // RFC 7675 §5.1
  c.keepalive_interval = std::clamp(c.keepalive_interval, Duration(milliseconds(100)),
                                    Duration(seconds(15)));  // RFC 8445 §11
  c.keepalive_misses = std::max(c.keepalive_misses, 1);
  c.max_ack_delay = std::max(c.max_ack_delay, Duration::zero());
  c.min_liveness_timeout = std::max(c.min_liveness_timeout, Duration(milliseconds(1)));
  c.max_liveness_timeout = std::max(c.max_liveness_timeout, c.min_liveness_timeout);
  c.recheck_initial = std::max(c.recheck_initial, Duration(milliseconds(100)));
  c.recheck_max = std::max(c.recheck_max, c.recheck_initial);
  c.hysteresis_min = std::max(c.hysteresis_min, Duration::zero());
  c.hysteresis_fraction = std::clamp(c.hysteresis_fraction, 0.0, 1.0);
  c.max_pairs = std::max<std::size_t>(c.max_pairs, 1);
  c.max_local_candidates = std::max<std::size_t>(c.max_local_candidates, 1);
  c.max_remote_candidates = std::max<std::size_t>(c.max_remote_candidates, 1);
  c.max_transmits = std::max<std::size_t>(c.max_transmits, 1);
  c.max_events = std::max<std::size_t>(c.max_events, 1);
  return c;
}

Duration AgentConfig::effective_keepalive_interval() const {
  // security.md / RFC 7675 §5.1: other ICE stacks get consent checks every 5 s (never < 4 s).
  return foreign_peer ? std::max(keepalive_interval, kForeignConsentInterval) : keepalive_interval;
}

}  // namespace roam::ice
