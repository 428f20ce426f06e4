#include "agent/net/udp_socket.h"

#include <cstring>

#include <boost/asio/ip/v6_only.hpp>
#include <sys/socket.h>

namespace roam::agent {

namespace ip = boost::asio::ip;

ip::udp::endpoint to_endpoint(const SocketAddress& a, unsigned scope_id) {
  if (a.ip.is_v4()) {
    ip::address_v4::bytes_type b;
    std::copy_n(a.ip.bytes().begin(), 4, b.begin());
    return {ip::address_v4(b), a.port};
  }
  ip::address_v6::bytes_type b;
  std::copy_n(a.ip.bytes().begin(), 16, b.begin());
  return {ip::address_v6(b, a.ip.is_link_local() ? scope_id : 0), a.port};
}

SocketAddress from_endpoint(const ip::udp::endpoint& e) {
  auto addr = e.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = ip::make_address_v4(ip::v4_mapped, addr.to_v6());
  }
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    return {IpAddress::v4({b[0], b[1], b[2], b[3]}), e.port()};
  }
  auto b = addr.to_v6().to_bytes();
  std::array<std::uint8_t, 16> raw;
  std::copy(b.begin(), b.end(), raw.begin());
  return {IpAddress::v6(raw), e.port()};
}

expected<BoundSocket, std::string> open_udp_socket(boost::asio::any_io_executor executor,
                                                   const std::string& interface,
                                                   const SocketAddress& address,
                                                   unsigned scope_id) {
  boost::system::error_code ec;
  BoundSocket out{ip::udp::socket(executor), false};
  auto endpoint = to_endpoint(address, scope_id);
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
