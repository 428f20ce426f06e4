// "HOST:PORT" settings (Redis servers, listen addresses) where HOST may be a name, an IPv4
// literal or a bracketed IPv6 literal. Names are kept as text: resolving is the caller's job.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/util/expected.h"

namespace roam {

struct HostPort {
  std::string host;  // brackets removed from IPv6 literals
  std::uint16_t port = 0;
};

// Port 1..65535, or 0 too when allow_zero ("pick a free port"). The error names the problem
// but not the setting: callers prefix it with the option name.
expected<HostPort, std::string> parse_host_port(std::string_view text, bool allow_zero = false);

}  // namespace roam
