// Server addresses from the command line ("IP:PORT", "[v6]:PORT"), e.g. --stun.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::agent {

// Error: names the option and the offending text (a host that is not an IP literal, a bad port).
expected<std::vector<SocketAddress>, std::string> parse_server_addresses(
    const std::vector<std::string>& texts, std::string_view option);

}  // namespace roam::agent
