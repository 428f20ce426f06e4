#include "common/ice/selection_policy.h"

#include <algorithm>

namespace roam::ice {

int class_rank(const PolicyView& pair, const PolicyConfig& config) {
  return (config.prefer_unmetered && pair.metered ? 2 : 0) + (pair.relayed ? 1 : 0);
}

bool ranks_before(const PolicyView& a, const PolicyView& b, const PolicyConfig& config) {
  const int ca = class_rank(a, config);
  const int cb = class_rank(b, config);
  if (ca != cb) return ca < cb;
  if (a.rtt.has_value() != b.rtt.has_value()) return a.rtt.has_value();
  if (a.rtt && *a.rtt != *b.rtt) return *a.rtt < *b.rtt;
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.id < b.id;
}

std::optional<std::size_t> best_pair(std::span<const PolicyView> pairs,
                                     const PolicyConfig& config) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (!best || ranks_before(pairs[i], pairs[*best], config)) best = i;
  }
  return best;
}

std::optional<SelectionReason> should_switch(const PolicyView& current, const PolicyView& candidate,
                                             const PolicyConfig& config) {
  if (candidate.id == current.id) return std::nullopt;
  const int cc = class_rank(current, config);
  const int nc = class_rank(candidate, config);
  if (nc < cc) return SelectionReason::kBetterClass;
  if (nc > cc || !candidate.rtt) return std::nullopt;
  if (!current.rtt) return SelectionReason::kLowerRtt;
  const auto fraction =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double, Duration::period>(
          current.rtt->count() * config.hysteresis_fraction));
  const Duration margin = std::max(config.hysteresis_min, fraction);
  if (*candidate.rtt + margin < *current.rtt) return SelectionReason::kLowerRtt;
  return std::nullopt;
}

RelayReason diagnose(const DirectSummary& s) {
  if (s.selected_direct) return RelayReason::kNotRelayed;
  if (s.relay_only_policy) return RelayReason::kPolicy;
  if (!s.local_has_direct) return RelayReason::kNoLocalDirectCandidates;
  if (!s.remote_has_direct) return RelayReason::kNoRemoteDirectCandidates;
  if (!s.common_family) return RelayReason::kNoCommonAddressFamily;
  if (!s.any_pair) return RelayReason::kNoPath;
  if (s.direct_valid) {
    return s.direct_valid_only_metered ? RelayReason::kMeteredDirectAvoided
                                       : RelayReason::kCheckingDirect;
  }
  if (s.direct_unsettled) return RelayReason::kCheckingDirect;
  const bool nothing_got_through = s.direct_all_timeouts && !s.inbound_direct_seen;
  if (nothing_got_through && s.nat_free_direct_timed_out) return RelayReason::kDirectBlocked;
  if (s.local_symmetric) return RelayReason::kLocalSymmetricNat;
  if (s.peer_symmetric) return RelayReason::kPeerSymmetricNat;
  if (nothing_got_through) {
    return s.remote_has_ipv6 && !s.local_has_ipv6 ? RelayReason::kDirectBlockedNoIpv6
                                                  : RelayReason::kDirectBlocked;
  }
  return RelayReason::kDirectFailed;
}

}  // namespace roam::ice
