#include "common/ice/agent_types.h"

#include <algorithm>

namespace roam::ice {
namespace {

// RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
constexpr std::string_view kIceChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_ice_char(char c) {
  return kIceChars.find(c) != std::string_view::npos;
}

std::string random_ice_string(RandomSource& random, std::size_t size) {
  std::string out;
  out.reserve(size);
  for (std::size_t i = 0; i < size; ++i)
    out.push_back(kIceChars[random.uniform(kIceChars.size())]);
  return out;
}

}  // namespace

std::string_view to_string(Role role) {
  return role == Role::kControlling ? "controlling" : "controlled";
}

bool valid(const IceCredentials& c) {
  auto ok = [](const std::string& s, std::size_t min) {
    return s.size() >= min && s.size() <= kMaxCredentialSize &&
           std::all_of(s.begin(), s.end(), is_ice_char);
  };
  return ok(c.ufrag, kMinUfragSize) && ok(c.pwd, kMinPwdSize);
}

IceCredentials generate_credentials(RandomSource& random) {
  return {random_ice_string(random, 8), random_ice_string(random, 24)};
}

std::string_view to_string(PairState state) {
  switch (state) {
    case PairState::kWaiting:
      return "waiting";
    case PairState::kInProgress:
      return "in-progress";
    case PairState::kSucceeded:
      return "succeeded";
    case PairState::kFailed:
      return "failed";
  }
  return "failed";
}

std::string_view to_string(PairFailure failure) {
  switch (failure) {
    case PairFailure::kNone:
      return "none";
    case PairFailure::kTimeout:
      return "timeout";
    case PairFailure::kErrorResponse:
      return "error-response";
    case PairFailure::kNonSymmetric:
      return "non-symmetric";
    case PairFailure::kKeepaliveTimeout:
      return "keepalive-timeout";
    case PairFailure::kConsentExpired:
      return "consent-expired";
    case PairFailure::kDataTimeout:
      return "data-timeout";
    case PairFailure::kLocalCandidateRemoved:
      return "local-candidate-removed";
    case PairFailure::kRemoteCandidateRemoved:
      return "remote-candidate-removed";
    case PairFailure::kPeerReported:
      return "peer-reported";
    case PairFailure::kEvicted:
      return "evicted";
  }
  return "none";
}

std::string_view to_string(PathKind kind) {
  switch (kind) {
    case PathKind::kNone:
      return "none";
    case PathKind::kDirect:
      return "direct";
    case PathKind::kRelay:
      return "relay";
  }
  return "none";
}

std::string_view to_string(SelectionReason reason) {
  switch (reason) {
    case SelectionReason::kFirstValid:
      return "first-valid";
    case SelectionReason::kBetterClass:
      return "better-class";
    case SelectionReason::kLowerRtt:
      return "lower-rtt";
    case SelectionReason::kSelectedFailed:
      return "selected-failed";
    case SelectionReason::kSelectedRemoved:
      return "selected-removed";
    case SelectionReason::kNominated:
      return "nominated";
    case SelectionReason::kRoleChanged:
      return "role-changed";
    case SelectionReason::kNoValidPair:
      return "no-valid-pair";
  }
  return "first-valid";
}

std::string_view to_string(RelayReason reason) {
  switch (reason) {
    case RelayReason::kNotRelayed:
      return "not-relayed";
    case RelayReason::kNoPath:
      return "no-path";
    case RelayReason::kCheckingDirect:
      return "checking-direct";
    case RelayReason::kPolicy:
      return "policy";
    case RelayReason::kNoLocalDirectCandidates:
      return "no-local-direct-candidates";
    case RelayReason::kNoRemoteDirectCandidates:
      return "no-remote-direct-candidates";
    case RelayReason::kNoCommonAddressFamily:
      return "no-common-address-family";
    case RelayReason::kMeteredDirectAvoided:
      return "metered-direct-avoided";
    case RelayReason::kLocalSymmetricNat:
      return "local-symmetric-nat";
    case RelayReason::kPeerSymmetricNat:
      return "peer-symmetric-nat";
    case RelayReason::kDirectBlocked:
      return "direct-blocked";
    case RelayReason::kDirectBlockedNoIpv6:
      return "direct-blocked-no-ipv6";
    case RelayReason::kDirectFailed:
      return "direct-failed";
  }
  return "no-path";
}

std::string_view describe(RelayReason reason) {
  switch (reason) {
    case RelayReason::kNotRelayed:
      return "a direct path is in use";
    case RelayReason::kNoPath:
      return "no path to the peer works yet";
    case RelayReason::kCheckingDirect:
      return "direct paths are still being checked";
    case RelayReason::kPolicy:
      return "relay-only mode is configured; allow direct paths to use them";
    case RelayReason::kNoLocalDirectCandidates:
      return "this device has no usable local address for direct paths";
    case RelayReason::kNoRemoteDirectCandidates:
      return "the peer offered no direct address (it may be in relay-only mode)";
    case RelayReason::kNoCommonAddressFamily:
      return "this device and the peer share no address family (e.g. the peer has only IPv6 "
             "and this network has none)";
    case RelayReason::kMeteredDirectAvoided:
      return "a direct path exists only over a metered (cellular) interface; allow metered "
             "interfaces to use it";
    case RelayReason::kLocalSymmetricNat:
      return "this network's NAT changes the port for every destination (symmetric NAT); "
             "enable UPnP/PCP or use a network with an endpoint-independent NAT";
    case RelayReason::kPeerSymmetricNat:
      return "the peer's NAT changes the port for every destination (symmetric NAT)";
    case RelayReason::kDirectBlocked:
      return "no direct packet ever got through in either direction: a carrier NAT or "
             "firewall blocks direct UDP between the devices";
    case RelayReason::kDirectBlockedNoIpv6:
      return "direct IPv4 is blocked (carrier NAT or firewall) and the peer has IPv6 but this "
             "network has none; IPv6 would likely allow a direct path";
    case RelayReason::kDirectFailed:
      return "direct checks failed (one-way reachability or rejected checks)";
  }
  return "";
}

}  // namespace roam::ice
