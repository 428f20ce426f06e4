// The test harness itself: real servers start on free ports, answer, and restart.
#include "tests/support/servers.h"

#include <gtest/gtest.h>

namespace roam::test {
namespace {

TEST(Harness, CoturnStartsAnswersAndRestarts) {
  std::string skip;
  auto coturn = Coturn::start({}, &skip);
  if (!coturn) GTEST_SKIP() << skip;
  EXPECT_TRUE(stun_ping(coturn->address(), 1000));
  coturn->kill(/*restart=*/false);
  EXPECT_FALSE(stun_ping(coturn->address(), 200));
  coturn->kill(/*restart=*/true);
  EXPECT_TRUE(stun_ping(coturn->address(), 1000));
}

TEST(Harness, RedisStartsAndRestarts) {
  std::string skip;
  auto redis = RedisServer::start(&skip);
  if (!redis) GTEST_SKIP() << skip;
  EXPECT_GT(redis->port(), 0);
  redis->kill(/*restart=*/true);
}

}  // namespace
}  // namespace roam::test
