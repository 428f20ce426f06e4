#include "common/net/endpoint.h"

#include <algorithm>

namespace roam::net {

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

}  // namespace roam::net
