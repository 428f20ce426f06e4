#include "agent/net/interfaces.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

namespace roam::agent {

std::vector<InterfaceAddress> list_interface_addresses() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    InterfaceAddress a;
    if (it->ifa_addr->sa_family == AF_INET) {
      std::array<std::uint8_t, 4> b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, 4);
      a.address = IpAddress::v4(b);
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      std::array<std::uint8_t, 16> b;
      std::memcpy(b.data(), &reinterpret_cast<sockaddr_in6*>(it->ifa_addr)->sin6_addr, 16);
      a.address = IpAddress::v6(b);
    } else {
      continue;
    }
    a.interface = it->ifa_name;
    a.index = ::if_nametoindex(it->ifa_name);
    a.loopback = (it->ifa_flags & IFF_LOOPBACK) != 0;
    a.up = (it->ifa_flags & IFF_UP) != 0 && (it->ifa_flags & IFF_RUNNING) != 0;
    out.push_back(std::move(a));
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace roam::agent
