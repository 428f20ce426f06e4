#include "common/turn/uri.h"

#include <charconv>

namespace roam::turn {

expected<SocketAddress, std::string> parse_turn_uri(std::string_view uri) {
  if (uri.size() > kMaxTurnUriSize) return unexpected(std::string("TURN URI too long"));
  if (uri.starts_with("turns:")) {
    return unexpected(std::string("turns: (TURN over TLS) is not supported; Roam relays over UDP"));
  }
  if (!uri.starts_with("turn:")) return unexpected(std::string("not a turn: URI"));
  std::string_view rest = uri.substr(5);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!query.empty()) {
    // RFC 7065 §3: the only query is "transport=udp" / "transport=tcp".
    if (!query.starts_with("transport=")) return unexpected(std::string("unknown URI query"));
    auto transport = query.substr(10);
    if (transport != "udp") {
      return unexpected("transport " + std::string(transport) + " is not supported");
    }
  }
  std::string_view host = rest;
  std::uint16_t port = kDefaultTurnPort;
  std::string_view port_text;
  bool has_port = false;
  if (rest.starts_with("[")) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return unexpected(std::string("unclosed '[' in host"));
    host = rest.substr(1, close - 1);
    auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return unexpected(std::string("junk after the IPv6 host"));
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
    has_port = true;
  }
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return unexpected(std::string("bad port"));
    }
    port = static_cast<std::uint16_t>(value);
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return unexpected(std::string("host is not an IP address"));
  if (rest.starts_with("[") != ip->is_v6()) {
    return unexpected(std::string("IPv6 hosts must be in brackets (and only they)"));
  }
  return SocketAddress{*ip, port};
}

}  // namespace roam::turn
