// The vocabulary of the continuous ICE agent (agent.h): identifiers, local candidates with their
// interface, pair states, failure/selection/"still relayed" reason codes, the events the agent
// emits and the datagrams it asks its owner to send. Plain values: no sockets, no clocks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/ice/candidate.h"
#include "common/util/bytes.h"
#include "common/util/random.h"
#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::ice {

// Chosen by the owner, one per local candidate: the socket (host base) or TURN allocation
// (relayed base) that sends and receives for it. Never reused within one agent is advised but
// not required once the previous candidate with that id was removed.
using LocalId = std::uint32_t;
// Assigned by the agent, one per candidate pair ever created; never reused, never 0.
using PairId = std::uint64_t;

// RFC 8445 §6.1.3.1: the controlling agent nominates; the controlled one follows.
enum class Role : std::uint8_t { kControlling, kControlled };
std::string_view to_string(Role role);

// RFC 8445 §5.3 short-term credentials: ufrag ≥ 4 characters (24 bits of randomness), pwd ≥ 22
// characters (128 bits); RFC 8839 §5.4 caps both at 256 characters.
inline constexpr std::size_t kMinUfragSize = 4;
inline constexpr std::size_t kMinPwdSize = 22;
inline constexpr std::size_t kMaxCredentialSize = 256;
struct IceCredentials {
  std::string ufrag;
  std::string pwd;
  bool operator==(const IceCredentials&) const = default;
};
// True when both sizes are within the bounds above and every character is an ice-char
// (RFC 8839 §5.4: ALPHA / DIGIT / "+" / "/").
bool valid(const IceCredentials& credentials);
// 8-character ufrag (48 bits) and 24-character pwd (144 bits) of ice-chars from `random`.
IceCredentials generate_credentials(RandomSource& random);

// A local candidate as the owner gathered it.
//  - kHost and kRelayed candidates are bases: the agent pairs them and sends checks from them
//    (a relayed base's datagrams go through the owner's TURN client; the agent does not care).
//  - kServerReflexive candidates are never paired (RFC 8445 §6.1.2.4: a pair with a reflexive
//    local candidate is redundant with the pair of its base); the owner trickles them to the
//    peer and gives them to the agent only so it can tell a symmetric local NAT (two different
//    mappings of one base) in its "still relayed" diagnosis. `base` names their host base.
//  - kPeerReflexive local candidates are not accepted (the agent learns them itself).
struct LocalCandidate {
  LocalId id = 0;
  Candidate candidate;
  std::optional<LocalId> base;  // kServerReflexive only
  std::string interface_name;   // for logs ("wlan0")
  std::uint32_t interface_index = 0;
  bool metered = false;  // e.g. cellular: avoided by the selection policy by default
};

// RFC 8445 §6.1.2.6 states without Frozen: every pair starts Waiting (see agent.h for why).
enum class PairState : std::uint8_t { kWaiting, kInProgress, kSucceeded, kFailed };
std::string_view to_string(PairState state);

// Why a pair failed (or was removed).
enum class PairFailure : std::uint8_t {
  kNone,
  kTimeout,           // no answer to a check after every retransmission (RFC 8489 §6.2.1)
  kErrorResponse,     // an error response other than 487 (RFC 8445 §7.2.5.2.4)
  kNonSymmetric,      // the answer came from elsewhere than the request went (§7.2.5.2.1)
  kKeepaliveTimeout,  // a valid pair missed AgentConfig::keepalive_misses keepalives in a row
  kConsentExpired,    // RFC 7675 §5.1: no consent response for 30 s
  kDataTimeout,       // the owner expected data on it and none came within the liveness timeout
  kLocalCandidateRemoved,  // remove_local_candidate / remove_interface: the pair is gone
  kRemoteCandidateRemoved,
  kEvicted,       // dropped to make room for a higher-priority pair (AgentConfig::max_pairs)
  kPeerReported,  // the peer said its end of the selected pair died (Agent::fail_selected)
};
std::string_view to_string(PairFailure failure);

// Relayed when either side's candidate is relayed.
enum class PathKind : std::uint8_t { kNone, kDirect, kRelay };
std::string_view to_string(PathKind kind);

enum class SelectionReason : std::uint8_t {
  kFirstValid,       // nothing was selected before
  kBetterClass,      // unmetered over metered, or direct over relayed
  kLowerRtt,         // same class, RTT lower by more than the hysteresis
  kSelectedFailed,   // the selected pair failed; this is the best remaining valid pair
  kSelectedRemoved,  // the selected pair's candidate was removed
  kNominated,        // controlled agent: the controlling agent nominated it (USE-CANDIDATE)
  kRoleChanged,      // became controlling and chose by its own policy
  kNoValidPair,      // nothing valid remains (SelectedPairChanged::pair is empty)
};
std::string_view to_string(SelectionReason reason);

// "Why am I (still) relayed?" — shown to users; see selection_policy.h for how it is derived.
enum class RelayReason : std::uint8_t {
  kNotRelayed,                // a direct pair is selected
  kNoPath,                    // nothing is selected at all
  kCheckingDirect,            // some direct pairs have not finished their first check yet
  kPolicy,                    // configured relay-only
  kNoLocalDirectCandidates,   // this device has no host candidate (e.g. only a relay)
  kNoRemoteDirectCandidates,  // the peer offered no host/reflexive candidate
  kNoCommonAddressFamily,     // e.g. the peer has only IPv6 direct candidates and we no IPv6
  kMeteredDirectAvoided,      // a direct pair works but only over a metered interface
  kLocalSymmetricNat,         // our NAT maps each destination to a new port
  kPeerSymmetricNat,          // the peer's NAT does
  kDirectBlocked,             // every direct check timed out and no direct check from the peer
                              // ever arrived: a carrier NAT or firewall drops direct UDP
  kDirectBlockedNoIpv6,       // the same over IPv4 while the peer has IPv6 and we do not
  kDirectFailed,              // direct checks failed otherwise (errors, one-way reachability)
};
std::string_view to_string(RelayReason reason);
// One sentence naming the cause and, where there is one, the fix.
std::string_view describe(RelayReason reason);

// A snapshot of one pair, as carried by events.
struct PairInfo {
  PairId id = 0;
  LocalId local = 0;
  CandidateType local_type = CandidateType::kHost;
  SocketAddress local_address;  // the local candidate's address (a relayed one for relays)
  SocketAddress remote;
  CandidateType remote_type = CandidateType::kHost;
  std::uint32_t interface_index = 0;
  bool metered = false;
  PathKind kind = PathKind::kDirect;
  std::uint64_t priority = 0;
  std::optional<Duration> rtt;  // smoothed, from check round trips
};

struct PairStateChanged {
  PairInfo pair;
  PairState state;
  PairFailure failure = PairFailure::kNone;  // with kFailed
  int error_code = 0;                        // with kErrorResponse
  bool removed = false;  // the pair no longer exists (its candidate was removed or evicted)
};
// RFC 7675 §5.1: consent expired (30 s), or keepalive_misses consent checks in a row went
// unanswered; the owner must stop sending on this pair at once.
struct ConsentLost {
  PairInfo pair;
};
struct SelectedPairChanged {
  std::optional<PairInfo> pair;  // empty: no valid pair remains
  PathKind kind = PathKind::kNone;
  SelectionReason reason = SelectionReason::kFirstValid;
  RelayReason relay_reason = RelayReason::kNoPath;
};
// The "still relayed" diagnosis changed (also while nothing else changes, e.g. when the last
// direct check fails).
struct RelayReasonChanged {
  RelayReason reason;
};
// RFC 8445 §7.2.5.1 / §7.3.1.1: a role conflict was resolved by switching roles.
struct RoleChanged {
  Role role;
};
// RFC 8445 §7.3.1.3: a check arrived from an address the peer never signaled.
struct PeerReflexiveLearned {
  LocalId local;
  Candidate candidate;
};
using Event = std::variant<PairStateChanged, ConsentLost, SelectedPairChanged, RelayReasonChanged,
                           RoleChanged, PeerReflexiveLearned>;

// A datagram the owner must send from local candidate `local` (its socket, or wrapped by its
// TURN allocation for a relayed base) to `destination`.
struct Transmit {
  LocalId local = 0;
  SocketAddress destination;
  Bytes data;
};

}  // namespace roam::ice
