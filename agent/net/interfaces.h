// Local network interfaces and their addresses (getifaddrs), the agent's view of "where can I
// send from". Gathering, the doctor and (later) netlink monitoring all start here.
#pragma once

#include <string>
#include <vector>

#include "common/util/socket_address.h"

namespace roam::agent {

struct InterfaceAddress {
  std::string interface;  // e.g. "wlan0"
  unsigned index = 0;     // if_nametoindex; the IPv6 scope id for link-local addresses
  IpAddress address;
  bool loopback = false;
  bool up = false;  // IFF_UP and IFF_RUNNING
};

// Every address of every interface, in kernel order.
std::vector<InterfaceAddress> list_interface_addresses();

}  // namespace roam::agent
