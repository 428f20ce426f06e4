// TURN URIs (RFC 7065) from relay grants, and the agent's wss:// signaling URLs.
#include <gtest/gtest.h>

#include "agent/paths/signaling_link.h"
#include "common/turn/uri.h"

namespace roam {
namespace {

SocketAddress addr(const char* text) {
  return *SocketAddress::parse(text);
}

TEST(TurnUri, AcceptsUdpUrisWithIpLiterals) {
  EXPECT_EQ(turn::parse_turn_uri("turn:203.0.113.10:3478?transport=udp").value(),
            addr("203.0.113.10:3478"));
  EXPECT_EQ(turn::parse_turn_uri("turn:203.0.113.10").value(), addr("203.0.113.10:3478"));
  EXPECT_EQ(turn::parse_turn_uri("turn:[fd00:c::10]:5349").value(), addr("[fd00:c::10]:5349"));
  EXPECT_EQ(turn::parse_turn_uri("turn:[fd00:c::10]?transport=udp").value(),
            addr("[fd00:c::10]:3478"));
}

TEST(TurnUri, RefusesWhatRoamCannotUseWithAReason) {
  auto expect_error = [](std::string_view uri, std::string_view words) {
    auto r = turn::parse_turn_uri(uri);
    ASSERT_FALSE(r) << uri;
    EXPECT_NE(r.error().find(words), std::string::npos) << uri << ": " << r.error();
  };
  expect_error("turns:203.0.113.10:5349", "not supported");
  expect_error("turn:203.0.113.10:3478?transport=tcp", "transport tcp");
  expect_error("turn:relay.example.com:3478", "not an IP address");
  expect_error("stun:203.0.113.10", "not a turn: URI");
  expect_error("turn:203.0.113.10:0", "bad port");
  expect_error("turn:203.0.113.10:70000", "bad port");
  expect_error("turn:203.0.113.10:", "bad port");
  expect_error("turn:[fd00::1", "unclosed");
  expect_error("turn:fd00::1", "");
  expect_error("turn:[203.0.113.10]:3478", "brackets");
  expect_error("turn:203.0.113.10?foo=bar", "unknown URI query");
  expect_error(std::string("turn:") + std::string(300, '1'), "too long");
}

TEST(WssUrl, ParsesHostPortAndPath) {
  auto o = agent::parse_wss_url("wss://203.0.113.10:8443/");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "203.0.113.10");
  EXPECT_EQ(o->port, 8443);
  EXPECT_EQ(o->path, "/");
  o = agent::parse_wss_url("wss://[fd00:c::10]:9443/roam");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "fd00:c::10");
  EXPECT_EQ(o->port, 9443);
  EXPECT_EQ(o->path, "/roam");
  o = agent::parse_wss_url("wss://signal.example.com");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, 443);
  EXPECT_EQ(o->path, "/");
  EXPECT_FALSE(agent::parse_wss_url("ws://203.0.113.10:8443/"));
  EXPECT_FALSE(agent::parse_wss_url("wss://:8443/"));
  EXPECT_FALSE(agent::parse_wss_url("wss://h:99999/"));
  EXPECT_FALSE(agent::parse_wss_url("wss://[::1/"));
}

}  // namespace
}  // namespace roam
