#include <set>

#include <gtest/gtest.h>

#include "common/util/bytes.h"
#include "common/util/random.h"
#include "common/util/socket_address.h"

namespace roam {
namespace {

TEST(Bytes, HexRoundTrip) {
  auto b = from_hex("00 01 fe FF");
  ASSERT_TRUE(b);
  EXPECT_EQ(to_hex(*b), "0001feff");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

TEST(Bytes, BigEndian) {
  Bytes out;
  ByteWriter w(out);
  w.u16(0x1234);
  w.u32(0xdeadbeef);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(load_be16(out.data()), 0x1234);
  EXPECT_EQ(load_be32(out.data() + 2), 0xdeadbeefu);
}

TEST(SocketAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = SocketAddress::parse("192.0.2.1:3478");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->ip.is_v4());
  EXPECT_EQ(v4->port, 3478);
  EXPECT_EQ(v4->to_string(), "192.0.2.1:3478");
  auto v6 = SocketAddress::parse("[2001:db8::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->ip.is_v6());
  EXPECT_EQ(v6->to_string(), "[2001:db8::1]:443");
  EXPECT_FALSE(SocketAddress::parse("2001:db8::1:443"));  // IPv6 needs brackets
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4:70000"));
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4:"));
  EXPECT_FALSE(SocketAddress::parse("host:80"));
  EXPECT_FALSE(SocketAddress::parse("[::1]"));
}

TEST(IpAddress, RefusesAnEmbeddedNul) {
  using namespace std::string_view_literals;
  EXPECT_TRUE(IpAddress::parse("1.2.3.4"sv));
  EXPECT_FALSE(IpAddress::parse("1.2.3.4\0junk"sv));
  EXPECT_FALSE(IpAddress::parse("::1\0"sv));
  EXPECT_FALSE(SocketAddress::parse("[::1\0]:80"sv));
}

TEST(IpAddress, Classification) {
  EXPECT_TRUE(IpAddress::parse("127.0.0.1")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("::1")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("169.254.1.1")->is_link_local());
  EXPECT_TRUE(IpAddress::parse("fe80::1")->is_link_local());
  EXPECT_TRUE(IpAddress::parse("10.1.2.3")->is_private());
  EXPECT_TRUE(IpAddress::parse("172.31.0.1")->is_private());
  EXPECT_FALSE(IpAddress::parse("172.32.0.1")->is_private());
  EXPECT_TRUE(IpAddress::parse("100.64.0.1")->is_private());
  EXPECT_TRUE(IpAddress::parse("fd00::1")->is_private());
  EXPECT_FALSE(IpAddress::parse("8.8.8.8")->is_private());
  EXPECT_TRUE(IpAddress::parse("::")->is_unspecified());
  EXPECT_NE(*IpAddress::parse("::ffff:1.2.3.4"), *IpAddress::parse("1.2.3.4"));
}

TEST(Random, SeededIsDeterministicAndUniformStaysInRange) {
  SeededRandom a(42), b(42);
  EXPECT_EQ(a.next_u64(), b.next_u64());
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto v = a.uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
}

}  // namespace
}  // namespace roam
