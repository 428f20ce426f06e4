// Which valid pair carries the data, and why a session is (still) relayed. Pure functions over
// small views of the pairs, so the policy is tested on its own.
//
// Order (architecture.md "switch policy"):
//   1. unmetered over metered interfaces (when prefer_unmetered, the default): a user on Wi-Fi
//      would rather use the relay than pay for cellular data;
//   2. direct over relayed;
//   3. lower smoothed RTT, with hysteresis: a pair of the same class replaces the selected one
//      only when its RTT is lower by more than max(hysteresis_min, hysteresis_fraction × RTT);
//   4. higher pair priority (which ranks IPv6 with IPv4 per interface, candidate.h), then the
//      older pair. Address family plays no other part: IPv6 is as eager as IPv4.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "common/ice/agent_types.h"

namespace roam::ice {

struct PolicyConfig {
  bool prefer_unmetered = true;
  Duration hysteresis_min = milliseconds(10);
  double hysteresis_fraction = 0.2;
};

struct PolicyView {
  PairId id = 0;
  bool relayed = false;
  bool metered = false;
  std::optional<Duration> rtt;
  std::uint64_t priority = 0;
};

// 0 is best: metered adds 2 (when preferring unmetered), relayed adds 1.
int class_rank(const PolicyView& pair, const PolicyConfig& config);

// True if `a` ranks strictly before `b` (class, RTT — a pair without RTT ranks after one with
// it —, priority, then lower id).
bool ranks_before(const PolicyView& a, const PolicyView& b, const PolicyConfig& config);

// Index of the best of `pairs`, nullopt if empty.
std::optional<std::size_t> best_pair(std::span<const PolicyView> pairs, const PolicyConfig& config);

// Whether `candidate` should replace `current` (both valid), and why: kBetterClass when its class
// is better, kLowerRtt when same class and its RTT beats the hysteresis; nullopt otherwise.
std::optional<SelectionReason> should_switch(const PolicyView& current, const PolicyView& candidate,
                                             const PolicyConfig& config);

// The facts the "still relayed" diagnosis is made from (gathered by the agent).
struct DirectSummary {
  bool any_pair = false;                   // any pair exists at all
  bool selected_direct = false;            // a direct pair is selected
  bool relay_only_policy = false;          // PathPolicy::kRelayOnly
  bool local_has_direct = false;           // we have a host base
  bool remote_has_direct = false;          // the peer gave a host/srflx/prflx candidate
  bool common_family = false;              // some local host base and remote direct share a family
  bool direct_valid = false;               // some direct pair is valid (yet a relay is selected)
  bool direct_valid_only_metered = false;  // ... and every valid direct pair is metered, avoided
  bool direct_unsettled = false;           // some direct pair has not finished its first check
  bool direct_all_timeouts = false;        // every direct failure so far was a timeout
  bool inbound_direct_seen = false;        // a check from the peer arrived on a direct pair
  bool nat_free_direct_timed_out = false;  // an IPv6 host↔host pair (no NAT can explain it) did
  bool local_symmetric = false;            // two mappings of one local base differ
  bool peer_symmetric = false;             // two mappings of one peer base differ
  bool local_has_ipv6 = false;             // we have an IPv6 host base
  bool remote_has_ipv6 = false;            // the peer gave an IPv6 direct candidate
};

// In order: direct selected → kNotRelayed; relay-only policy; no local direct candidate; no
// remote one; no common family; no pair at all → kNoPath; valid direct pairs not selected because
// all are metered; direct pairs still on their first check (or valid and about to be nominated);
// every failure a timeout, nothing ever heard from the peer directly, and a NAT-free pair among
// the failures → kDirectBlocked (a symmetric NAT seen on the way cannot explain that pair, the
// block can explain everything); symmetric NAT here, then at the peer; every failure a timeout
// with nothing heard directly → kDirectBlocked (kDirectBlockedNoIpv6 when the peer has IPv6 and
// we do not); otherwise kDirectFailed.
RelayReason diagnose(const DirectSummary& summary);

}  // namespace roam::ice
