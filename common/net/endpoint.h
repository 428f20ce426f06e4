// Conversions between Asio UDP endpoints and roam::SocketAddress.
#pragma once

#include <boost/asio/ip/udp.hpp>

#include "common/util/socket_address.h"

namespace roam::net {

boost::asio::ip::udp::endpoint to_endpoint(const SocketAddress& a, unsigned scope_id = 0);
// IPv4-mapped IPv6 addresses come out as IPv4.
SocketAddress from_endpoint(const boost::asio::ip::udp::endpoint& e);

}  // namespace roam::net
