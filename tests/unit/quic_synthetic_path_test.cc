// PathId <-> the synthetic addresses the QUIC connection hands ngtcp2.
#include <arpa/inet.h>

#include <cstring>

#include <gtest/gtest.h>

#include "agent/quic/synthetic_path.h"

namespace roam::agent::quic {
namespace {

bool same(const ngtcp2_addr& a, const ngtcp2_addr& b) {
  return a.addrlen == b.addrlen && std::memcmp(a.addr, b.addr, a.addrlen) == 0;
}

std::string text(const sockaddr_in6& sa) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &sa.sin6_addr, buf, sizeof buf);
  return buf;
}

TEST(QuicSyntheticPath, UniqueLocalAddressesCarryTheEndAndThePathId) {
  EXPECT_EQ(text(synthetic_address(PathEnd::kClient, 0x0102030405060708)),
            "fd72:6f61:6d00:1:102:304:506:708");
  EXPECT_EQ(text(synthetic_address(PathEnd::kServer, 7)), "fd72:6f61:6d00:2::7");
}

TEST(QuicSyntheticPath, EveryPathIdDiffersByIpOnBothEnds) {
  ngtcp2_path_storage a, b;
  make_synthetic_path(a, PathEnd::kClient, 1);
  make_synthetic_path(b, PathEnd::kClient, 2);
  EXPECT_FALSE(same(a.path.local, b.path.local));
  EXPECT_FALSE(same(a.path.remote, b.path.remote));
  // The server's view of a path mirrors the client's.
  ngtcp2_path_storage s;
  make_synthetic_path(s, PathEnd::kServer, 1);
  EXPECT_TRUE(same(s.path.local, a.path.remote));
  EXPECT_TRUE(same(s.path.remote, a.path.local));
}

TEST(QuicSyntheticPath, MapsBackToThePathId) {
  for (PathId id : {PathId{0}, PathId{1}, PathId{0xdeadbeef}, ~PathId{0}}) {
    ngtcp2_path_storage ps;
    make_synthetic_path(ps, PathEnd::kServer, id);
    EXPECT_EQ(synthetic_path_id(ps.path.local), id);
    EXPECT_EQ(synthetic_path_id(ps.path.remote), id);
  }
}

TEST(QuicSyntheticPath, ForeignAddressesAreNotPaths) {
  sockaddr_in6 other{};
  other.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", &other.sin6_addr);
  ngtcp2_addr addr{reinterpret_cast<ngtcp2_sockaddr*>(&other), sizeof other};
  EXPECT_FALSE(synthetic_path_id(addr));
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  ngtcp2_addr addr4{reinterpret_cast<ngtcp2_sockaddr*>(&v4), sizeof v4};
  EXPECT_FALSE(synthetic_path_id(addr4));
  ngtcp2_addr empty{nullptr, 0};
  EXPECT_FALSE(synthetic_path_id(empty));
}

}  // namespace
}  // namespace roam::agent::quic
