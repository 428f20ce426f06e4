// What a peer said about itself in `hello` that the other side of its sessions needs. Kept
// in the local PeerDirectory and, as JSON, in the Redis peer registry.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/signaling/message.h"
#include "common/util/expected.h"

namespace roam::signaling {

struct PeerInfo {
  std::optional<std::string> fingerprint;
  std::optional<IceCredentials> ice;
  std::optional<std::string> region;
  bool operator==(const PeerInfo&) const = default;
};

std::string encode_peer_info(const PeerInfo& info);
// Fails on anything encode_peer_info would not produce (the registry is shared state).
expected<PeerInfo, std::string> decode_peer_info(std::string_view json);

}  // namespace roam::signaling
