// TURN URIs (RFC 7065 §3): "turn:" host [":" port] ["?transport=" ("udp" / "tcp")], and the
// "turns:" form. Roam relays over UDP only, so parse_turn_uri() accepts only "turn:" with
// transport udp (or none) and an IP literal host: the signaling server hands out addresses,
// and resolving a name here would put a DNS round trip on the call-setup path.
#pragma once

#include <string>
#include <string_view>

#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::turn {

// RFC 7065 §3: the default port of "turn:" is 3478.
inline constexpr std::uint16_t kDefaultTurnPort = 3478;
inline constexpr std::size_t kMaxTurnUriSize = 256;

// The server address of a "turn:" URI with an IP literal (IPv6 in brackets). Errors name what
// is wrong: "not a turn: URI", "transport tcp is not supported", "host is not an IP address".
expected<SocketAddress, std::string> parse_turn_uri(std::string_view uri);

}  // namespace roam::turn
