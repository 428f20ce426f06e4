#include "common/ice/candidate.h"

#include <algorithm>

#include "common/crypto/digest.h"

namespace roam::ice {

std::string_view to_string(CandidateType type) {
  switch (type) {
    case CandidateType::kHost:
      return "host";
    case CandidateType::kServerReflexive:
      return "srflx";
    case CandidateType::kPeerReflexive:
      return "prflx";
    case CandidateType::kRelayed:
      return "relay";
  }
  return "host";
}

std::string_view to_string(Transport) {
  return "UDP";
}

std::uint8_t recommended_type_preference(CandidateType type) {
  switch (type) {
    case CandidateType::kHost:
      return kHostTypePreference;
    case CandidateType::kPeerReflexive:
      return kPeerReflexiveTypePreference;
    case CandidateType::kServerReflexive:
      return kServerReflexiveTypePreference;
    case CandidateType::kRelayed:
      return kRelayedTypePreference;
  }
  return kRelayedTypePreference;
}

std::uint32_t compute_priority(std::uint8_t type_preference, std::uint16_t local_preference,
                               std::uint16_t component) {
  const std::uint32_t type = std::min(type_preference, kMaxTypePreference);
  const std::uint32_t comp = std::clamp(component, kMinComponent, kMaxComponent);
  // At most 126 * 2^24 + 65535 * 2^8 + 255 = 2130706431 < 2^31. The single zero (type
  // preference 0, local preference 0, component 256) is raised to 1, the smallest valid value.
  const std::uint32_t priority =
      (type << 24) + (std::uint32_t{local_preference} << 8) + (kMaxComponent - comp);
  return std::max(priority, kMinPriority);
}

std::uint32_t compute_priority(CandidateType type, std::uint16_t local_preference,
                               std::uint16_t component) {
  return compute_priority(recommended_type_preference(type), local_preference, component);
}

std::optional<std::uint16_t> local_preference(std::uint16_t interface_rank, AddressFamily family,
                                              std::uint16_t address_index) {
  if (interface_rank >= kMaxInterfaces || address_index >= kMaxAddressesPerFamily) {
    return std::nullopt;
  }
  const unsigned family_slot = family == AddressFamily::kIPv6 ? 0 : 1;
  const unsigned slot =
      (interface_rank * 2u + family_slot) * kMaxAddressesPerFamily + address_index;
  return static_cast<std::uint16_t>(kMaxLocalPreference - slot);
}

std::string compute_foundation(CandidateType type, const IpAddress& base_ip,
                               const std::optional<IpAddress>& server_ip, Transport transport) {
  // A fixed-layout encoding of the inputs: a domain label, then type, transport, and each
  // address as family + 16 bytes, so no two distinct inputs share an encoding.
  constexpr std::string_view kLabel = "roam-ice-foundation-v1";
  Bytes input = to_bytes(kLabel);
  ByteWriter w(input);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(static_cast<std::uint8_t>(transport));
  const auto put_ip = [&w](const IpAddress& ip) {
    w.u8(static_cast<std::uint8_t>(ip.family()));
    for (std::uint8_t b : ip.bytes())
      w.u8(b);
  };
  put_ip(base_ip);
  w.u8(server_ip ? 1 : 0);
  if (server_ip) put_ip(*server_ip);
  const auto digest = crypto::sha256(input);
  // 6 bytes encode to exactly 8 base64 characters without padding; the base64 alphabet
  // (A-Z a-z 0-9 + /) is exactly RFC 8839's ice-char set.
  return crypto::base64_encode(ByteSpan(digest.data(), 6));
}

std::uint64_t pair_priority(std::uint32_t controlling_priority, std::uint32_t controlled_priority) {
  const std::uint64_t g = std::min(controlling_priority, kMaxPriority);
  const std::uint64_t d = std::min(controlled_priority, kMaxPriority);
  return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

std::string PairFoundation::to_string() const {
  return local + ":" + remote;
}

PairFoundation pair_foundation(const Candidate& local, const Candidate& remote) {
  return {local.foundation, remote.foundation};
}

}  // namespace roam::ice
