#include "agent/net/udp_socket.h"

#include <sys/socket.h>

#include <cstring>

#include <boost/asio/ip/v6_only.hpp>

#include "common/net/endpoint.h"

namespace roam::agent {

namespace ip = boost::asio::ip;

expected<BoundSocket, std::string> open_udp_socket(boost::asio::any_io_executor executor,
                                                   const std::string& interface,
                                                   const SocketAddress& address,
                                                   unsigned scope_id) {
  boost::system::error_code ec;
  BoundSocket out{ip::udp::socket(executor), false};
  auto endpoint = net::to_endpoint(address, scope_id);
  out.socket.open(endpoint.protocol(), ec);
  if (ec) return unexpected("cannot open a UDP socket: " + ec.message());
  if (address.ip.is_v6()) out.socket.set_option(ip::v6_only(true), ec);
  if (!interface.empty()) {
    // Without this, a packet from the Wi-Fi address may still leave through the cellular
    // interface when that holds the default route (architecture.md: probe every interface).
    out.bound_to_device =
        ::setsockopt(out.socket.native_handle(), SOL_SOCKET, SO_BINDTODEVICE, interface.c_str(),
                     static_cast<socklen_t>(interface.size())) == 0;
  }
  out.socket.bind(endpoint, ec);
  if (ec) {
    return unexpected("cannot bind UDP to " + address.to_string() + " on " + interface + ": " +
                      ec.message());
  }
  return out;
}

}  // namespace roam::agent
