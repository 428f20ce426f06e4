// ICE candidates as values (RFC 8445 §5.1): types, priorities, foundations, and the pair
// priority and pair foundation the checklist is ordered and frozen by (RFC 8445 §6.1.2).
// Pure arithmetic over plain values: no sockets, no clocks. The SDP text form lives in
// candidate_text.h.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/socket_address.h"

namespace roam::ice {

// RFC 8445 §5.1.1: how the candidate was obtained.
enum class CandidateType : std::uint8_t {
  kHost,             // an address of a local interface
  kServerReflexive,  // the mapping a STUN/TURN server saw ("srflx")
  kPeerReflexive,    // the mapping the peer saw in a connectivity check ("prflx")
  kRelayed,          // an address allocated on a TURN server ("relay")
};
// The RFC 8839 §5.1 token: "host", "srflx", "prflx", "relay".
std::string_view to_string(CandidateType type);

// RFC 8839 §5.1 "transport". Only UDP is defined by RFC 8445 and only UDP is used by Roam;
// the text parser rejects every other transport (TCP candidates of RFC 6544 included) with
// CandidateError::kUnsupportedTransport, so the enum has a single value for now.
enum class Transport : std::uint8_t { kUdp };
std::string_view to_string(Transport transport);  // "UDP"

// RFC 8445 §5.1.2.1: component IDs are 1..256. Roam carries one QUIC flow per candidate, so
// it only ever uses component 1 (RFC 8445 §13: "a single component").
inline constexpr std::uint16_t kMinComponent = 1;
inline constexpr std::uint16_t kMaxComponent = 256;
inline constexpr std::uint16_t kDefaultComponent = 1;

// RFC 8445 §5.1.2.1: a priority is a positive integer between 1 and 2^31 - 1.
inline constexpr std::uint32_t kMinPriority = 1;
inline constexpr std::uint32_t kMaxPriority = 0x7FFF'FFFF;

// RFC 8445 §5.1.2.1: type preference 0..126, local preference 0..65535.
inline constexpr std::uint8_t kMaxTypePreference = 126;
inline constexpr std::uint16_t kMaxLocalPreference = 65535;

// RFC 8445 §5.1.2.2: the recommended type preferences.
inline constexpr std::uint8_t kHostTypePreference = 126;
inline constexpr std::uint8_t kPeerReflexiveTypePreference = 110;
inline constexpr std::uint8_t kServerReflexiveTypePreference = 100;
inline constexpr std::uint8_t kRelayedTypePreference = 0;

// RFC 8839 §5.1: foundation = 1*32ice-char.
inline constexpr std::size_t kMaxFoundationSize = 32;

// RFC 8445 §5.1.2.2 recommended type preference for `type`.
std::uint8_t recommended_type_preference(CandidateType type);

// RFC 8445 §5.1.2.1:
//   priority = 2^24 * type_preference + 2^8 * local_preference + (256 - component)
// Arguments out of range (type_preference > 126, component outside 1..256) are clamped into
// range, so the result is always a valid priority (1..2^31-1).
std::uint32_t compute_priority(std::uint8_t type_preference, std::uint16_t local_preference,
                               std::uint16_t component = kDefaultComponent);
// Same with the recommended type preference of `type`.
std::uint32_t compute_priority(CandidateType type, std::uint16_t local_preference,
                               std::uint16_t component = kDefaultComponent);

// Local preference for multihomed, dual-stack hosts (RFC 8445 §5.1.2.1, RFC 8421 §4).
//
// RFC 8445 requires a distinct local preference for every candidate of one type and
// component; RFC 8421 asks dual-stack agents to interleave address families rather than try
// all of one family first. Roam's scheme: every (interface, family, address) gets a slot
//
//   slot = (interface_rank * 2 + family_slot) * kMaxAddressesPerFamily + address_index
//   local_preference = kMaxLocalPreference - slot
//
// where interface_rank 0 is the most preferred interface (the caller ranks them, e.g.
// Ethernet, then Wi-Fi, then cellular), family_slot is 0 for IPv6 and 1 for IPv4, and
// address_index separates several addresses of one family on one interface (e.g. an IPv6
// stable and temporary address). The resulting order is if0/IPv6, if0/IPv4, if1/IPv6,
// if1/IPv4, ...: the families are interleaved per interface and IPv6 is never ranked below
// IPv4 of the same interface (carriers often block direct IPv4 UDP where IPv6 works).
// Returns nullopt when interface_rank >= kMaxInterfaces or address_index >=
// kMaxAddressesPerFamily.
inline constexpr std::uint16_t kMaxInterfaces = 64;
inline constexpr std::uint16_t kMaxAddressesPerFamily = 16;
static_assert(kMaxInterfaces * 2 * kMaxAddressesPerFamily <= kMaxLocalPreference + 1,
              "every slot must map to a distinct local preference");
std::optional<std::uint16_t> local_preference(std::uint16_t interface_rank, AddressFamily family,
                                              std::uint16_t address_index = 0);

// RFC 8445 §5.1.1.3: two candidates share a foundation exactly when they have the same type,
// bases with the same IP address (ports may differ), the same STUN/TURN server IP address
// (reflexive and relayed candidates; nullopt for host and peer-reflexive ones) and the same
// transport. The foundation is the first 48 bits of SHA-256 over those inputs, written as 8
// base64 characters (all ice-chars). Deterministic across runs and hosts; distinct inputs
// collide with probability about 2^-48 per pair, which only merges two Frozen groups.
std::string compute_foundation(CandidateType type, const IpAddress& base_ip,
                               const std::optional<IpAddress>& server_ip,
                               Transport transport = Transport::kUdp);

// RFC 8839 §5.1 extension attribute ("generation 0", "network-id 1", ...), kept verbatim so
// a candidate is forwarded unchanged. RFC 8839 §5.1: unknown ones MUST be ignored, not lost.
struct ExtensionAttribute {
  std::string name;
  std::string value;
  auto operator<=>(const ExtensionAttribute&) const = default;
};

struct Candidate {
  std::string foundation;  // 1..32 ice-chars (ALPHA / DIGIT / "+" / "/")
  std::uint16_t component = kDefaultComponent;
  Transport transport = Transport::kUdp;
  std::uint32_t priority = kMinPriority;
  SocketAddress address;
  CandidateType type = CandidateType::kHost;
  // "raddr"/"rport": the base of a reflexive candidate or the mapped address of a relayed one
  // (RFC 8839 §5.1). Diagnostic only: ICE never sends to it.
  std::optional<SocketAddress> related;
  std::vector<ExtensionAttribute> extensions;

  bool operator==(const Candidate&) const = default;
};

// RFC 8445 §6.1.2.3: the pair priority, from G (the controlling agent's candidate priority)
// and D (the controlled agent's):
//   2^32 * MIN(G, D) + 2 * MAX(G, D) + (G > D ? 1 : 0)
// Valid priorities are below 2^31 so the result fits 63 bits. Inputs above kMaxPriority
// (not valid candidate priorities) are clamped to it, so the result can never wrap around.
std::uint64_t pair_priority(std::uint32_t controlling_priority, std::uint32_t controlled_priority);

// RFC 8445 §6.1.2.6: a pair's foundation is the combination of its local and remote
// candidates' foundations; pairs with equal pair foundations form one Frozen group.
struct PairFoundation {
  std::string local;
  std::string remote;
  auto operator<=>(const PairFoundation&) const = default;
  // "local:remote" (':' is not an ice-char, so the text is unambiguous), for logs and map keys.
  std::string to_string() const;
};
PairFoundation pair_foundation(const Candidate& local, const Candidate& remote);

}  // namespace roam::ice
