// Configuration of the continuous ICE agent: timing (pacing, retransmission, keepalive,
// consent, liveness) and bounds. Every default cites where it comes from; AgentConfig::sanitized()
// clamps values that would break an RFC requirement.
#pragma once

#include <cstddef>
#include <string>

#include "common/ice/agent_types.h"
#include "common/stun/retransmission.h"
#include "common/util/time.h"

namespace roam::ice {

// RFC 8445 §14.2: Ta MUST NOT be below 5 ms. We default to 10 ms instead of the RFC's 50 ms:
// one component, one data stream and checks of ~100 bytes make 10 ms ≈ 80 kbit/s of checks,
// and a dozen pairs (2 interfaces × 2 families × 3 remote candidates) are all started within
// ~120 ms, which the 200 ms relay → direct target (targets.md) needs at 40 ms RTT.
inline constexpr Duration kMinTa = milliseconds(5);
inline constexpr Duration kDefaultTa = milliseconds(10);

// RFC 8445 §14.3: RTO for checks = MAX(500 ms, Ta × (Num-Waiting + Num-In-Progress)).
inline constexpr Duration kMinCheckRto = milliseconds(500);
// RFC 8489 §6.2.1 leaves Rc and Rm configurable. Rc = 4, Rm = 4 fail a check 5.5 s after its
// first request (0, 0.5, 1.5, 3.5 s, then 4 × 0.5 s) instead of 39.5 s: in continuous ICE a
// failed pair is rechecked later anyway (kDefaultRecheckInitial), so waiting longer only
// delays the "still relayed" diagnosis.
inline constexpr int kCheckTransmissions = 4;
inline constexpr int kCheckFinalWaitRtos = 4;

// RFC 7675 §5.1: consent expires 30 s after the last consent response, and consent checks go
// every 5 s randomized over [0.8, 1.2] (security.md: never more often than every 4 s with
// other ICE stacks). RFC 8445 §11 needs traffic on every pair at least every Tr = 15 s for the
// NAT bindings; both intervals below are far shorter.
inline constexpr Duration kConsentTimeout = seconds(30);
inline constexpr Duration kForeignConsentInterval = seconds(5);
// Roam-to-Roam backups are kept warm faster (prior-art.md: RFC 7675's pace is the floor for
// foreign stacks only): one request each way per 2.5 s is 0.8 packets/s sent per pair
// (requests plus answers to the peer's), within targets.md's ≤ 1 packet/s/path, and a dead
// backup is known within keepalive_misses × 2.5 s = 10 s.
inline constexpr Duration kDefaultKeepaliveInterval = milliseconds(2500);
inline constexpr int kDefaultKeepaliveMisses = 4;
// RFC 7675 §5.1 randomization of the interval: uniform in [0.8, 1.2] × interval.
inline constexpr double kKeepaliveJitter = 0.2;

// Active-pair liveness (targets.md: silent path death ≤ 300 ms blackout): a pair on which the
// owner expects data is dead when nothing arrives for
//   max(3 × SRTT, SRTT + 4 × RTTVAR) + max_ack_delay
// (3 RTT is the target of issue 6; SRTT + 4 RTTVAR is RFC 6298 §2.3's RTO, covering jitter;
// max_ack_delay is RFC 9000 §18.2's 25 ms default, the time a QUIC peer may hold an ACK),
// clamped to [50 ms, 3 s]. At 40 ms RTT that is 145 ms.
inline constexpr Duration kDefaultMaxAckDelay = milliseconds(25);
inline constexpr Duration kMinLivenessTimeout = milliseconds(50);
inline constexpr Duration kMaxLivenessTimeout = seconds(3);

// Failed pairs are rechecked (continuous ICE: networks change), first after 2 s, doubling up to
// 60 s (Tailscale retries direct paths every 60 s, prior-art.md).
inline constexpr Duration kDefaultRecheckInitial = seconds(2);
inline constexpr Duration kDefaultRecheckMax = seconds(60);

// Selection hysteresis: a pair of the same class replaces the selected one only when its RTT is
// lower by more than max(10 ms, 20 %), so jitter never flips the path.
inline constexpr Duration kDefaultHysteresisMin = milliseconds(10);
inline constexpr double kDefaultHysteresisFraction = 0.2;

// Bounds. RFC 8445 §6.1.2.5: limit the check list, default 100 pairs.
inline constexpr std::size_t kDefaultMaxPairs = 100;
inline constexpr std::size_t kDefaultMaxLocalCandidates = 32;
inline constexpr std::size_t kDefaultMaxRemoteCandidates = 64;  // signaled + peer-reflexive
inline constexpr std::size_t kDefaultMaxTransmits = 256;
inline constexpr std::size_t kDefaultMaxEvents = 1024;

// Which pairs are formed at all (prior-art.md #5: users ask for direct-only / relay-only).
enum class PathPolicy : std::uint8_t { kAll, kRelayOnly, kDirectOnly };

struct AgentConfig {
  Role role = Role::kControlling;
  IceCredentials local_credentials;  // must be valid(); see generate_credentials()
  // RFC 8445 §7.1.3 tie-breaker; drawn from the RandomSource when empty.
  std::optional<std::uint64_t> tie_breaker;
  std::string software = "roam";

  Duration ta = kDefaultTa;
  stun::RetransmissionPolicy check_retransmission{kMinCheckRto, kCheckTransmissions,
                                                  kCheckFinalWaitRtos};
  // The peer is another ICE stack: consent checks at RFC 7675's pace instead of
  // keepalive_interval.
  bool foreign_peer = false;
  Duration keepalive_interval = kDefaultKeepaliveInterval;
  int keepalive_misses = kDefaultKeepaliveMisses;
  Duration consent_timeout = kConsentTimeout;  // never above 30 s (RFC 7675 §5.1)
  Duration max_ack_delay = kDefaultMaxAckDelay;
  Duration min_liveness_timeout = kMinLivenessTimeout;
  Duration max_liveness_timeout = kMaxLivenessTimeout;
  Duration recheck_initial = kDefaultRecheckInitial;
  Duration recheck_max = kDefaultRecheckMax;

  PathPolicy path_policy = PathPolicy::kAll;
  bool prefer_unmetered = true;
  Duration hysteresis_min = kDefaultHysteresisMin;
  double hysteresis_fraction = kDefaultHysteresisFraction;

  std::size_t max_pairs = kDefaultMaxPairs;
  std::size_t max_local_candidates = kDefaultMaxLocalCandidates;
  std::size_t max_remote_candidates = kDefaultMaxRemoteCandidates;
  std::size_t max_transmits = kDefaultMaxTransmits;
  std::size_t max_events = kDefaultMaxEvents;

  // A copy with every value clamped into its legal range: ta ≥ 5 ms, check RTO ≥ 500 ms,
  // consent_timeout ≤ 30 s, keepalive interval ≥ 4 s for foreign peers (and ≤ 15 s, RFC 8445
  // §11), keepalive_misses ≥ 1, bounds ≥ 1, hysteresis fraction in [0, 1].
  AgentConfig sanitized() const;
  // The interval between keepalives of one valid pair (before jitter).
  Duration effective_keepalive_interval() const;
};

}  // namespace roam::ice
