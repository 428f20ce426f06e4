#include "agent/quic/synthetic_path.h"

#include <arpa/inet.h>

#include <cstring>

namespace roam::agent::quic {
namespace {

// fd + 40-bit global ID "roam\0" (RFC 4193 §3.1; fixed, as the addresses stay inside the
// process), then the 16-bit subnet ID = the end, then the 64-bit interface ID = the PathId.
constexpr unsigned char kPrefix[6] = {0xfd, 'r', 'o', 'a', 'm', 0x00};
constexpr std::uint16_t kPort = 443;

}  // namespace

sockaddr_in6 synthetic_address(PathEnd end, PathId id) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(kPort);
  unsigned char* b = sa.sin6_addr.s6_addr;
  std::memcpy(b, kPrefix, sizeof kPrefix);
  b[6] = 0;
  b[7] = static_cast<unsigned char>(end);
  for (int i = 0; i < 8; ++i)
    b[8 + i] = static_cast<unsigned char>(id >> (56 - 8 * i));
  return sa;
}

void make_synthetic_path(ngtcp2_path_storage& out, PathEnd self, PathId id) {
  const PathEnd peer = self == PathEnd::kClient ? PathEnd::kServer : PathEnd::kClient;
  const sockaddr_in6 local = synthetic_address(self, id);
  const sockaddr_in6 remote = synthetic_address(peer, id);
  ngtcp2_path_storage_init(&out, reinterpret_cast<const ngtcp2_sockaddr*>(&local), sizeof local,
                           reinterpret_cast<const ngtcp2_sockaddr*>(&remote), sizeof remote,
                           nullptr);
}

std::optional<PathId> synthetic_path_id(const ngtcp2_addr& addr) {
  if (addr.addr == nullptr || addr.addrlen != sizeof(sockaddr_in6) ||
      addr.addr->sa_family != AF_INET6) {
    return std::nullopt;
  }
  sockaddr_in6 sa;
  std::memcpy(&sa, addr.addr, sizeof sa);
  const unsigned char* b = sa.sin6_addr.s6_addr;
  if (std::memcmp(b, kPrefix, sizeof kPrefix) != 0 || b[6] != 0 ||
      (b[7] != static_cast<unsigned char>(PathEnd::kClient) &&
       b[7] != static_cast<unsigned char>(PathEnd::kServer))) {
    return std::nullopt;
  }
  PathId id = 0;
  for (int i = 0; i < 8; ++i)
    id = (id << 8) | b[8 + i];
  return id;
}

}  // namespace roam::agent::quic
