#include "common/util/host_port.h"

#include <charconv>

namespace roam {

expected<HostPort, std::string> parse_host_port(std::string_view text, bool allow_zero) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return unexpected("expected HOST:PORT, got '" + std::string(text) + "'");
  }
  unsigned value = 0;
  auto digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size() || value > 65535 ||
      (value == 0 && !allow_zero)) {
    return unexpected("bad port in '" + std::string(text) + "'");
  }
  HostPort out{std::string(text.substr(0, colon)), static_cast<std::uint16_t>(value)};
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

}  // namespace roam
