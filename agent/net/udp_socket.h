// Asio UDP sockets that really leave through a given interface.
#pragma once

#include <string>

#include <boost/asio/ip/udp.hpp>

#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::agent {

struct BoundSocket {
  boost::asio::ip::udp::socket socket;
  // False when SO_BINDTODEVICE was refused (needs CAP_NET_RAW): the socket is bound to the
  // interface's address only, and the kernel's routing decides the egress interface.
  bool bound_to_device = false;
};

// Opens a UDP socket bound to `address` (port 0 = any) and, when permitted, to the interface
// `interface` with SO_BINDTODEVICE. Returns a text naming the cause on failure.
expected<BoundSocket, std::string> open_udp_socket(boost::asio::any_io_executor executor,
                                                   const std::string& interface,
                                                   const SocketAddress& address,
                                                   unsigned scope_id = 0);

}  // namespace roam::agent
