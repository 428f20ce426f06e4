#include "agent/net/server_list.h"

#include "common/util/host_port.h"

namespace roam::agent {

expected<std::vector<SocketAddress>, std::string> parse_server_addresses(
    const std::vector<std::string>& texts, std::string_view option) {
  std::vector<SocketAddress> out;
  for (const auto& t : texts) {
    const std::string where = std::string(option) + " " + t + ": ";
    auto hp = parse_host_port(t);
    if (!hp) return unexpected(where + hp.error());
    auto ip = IpAddress::parse(hp->host);
    if (!ip) return unexpected(where + "the host must be an IP address");
    out.push_back(SocketAddress{*ip, hp->port});
  }
  return out;
}

}  // namespace roam::agent
