#include <gtest/gtest.h>

#include "common/relay/pool_layout.h"
#include "relay/pool/pool_policy.h"

namespace roam::relay {
namespace {

TEST(PoolPolicy, FillsUpToTargetWithinInFlightBound) {
  PoolPolicy p({.target = 50, .max_in_flight = 16});
  TimePoint now{};
  EXPECT_EQ(p.wanted(now, 0), 16);
  for (int i = 0; i < 16; ++i)
    p.on_started();
  EXPECT_EQ(p.wanted(now, 0), 0);
  p.on_created();
  EXPECT_EQ(p.wanted(now, 1), 1);
  EXPECT_EQ(p.wanted(now, 40), 0);  // 40 ready + 15 in flight > 50
  EXPECT_EQ(p.wanted(now, 50), 0);
}

TEST(PoolPolicy, CapacityFailuresBackOffExponentiallyAndMarkExhaustion) {
  PoolPolicy p({.target = 10,
                .max_in_flight = 4,
                .min_backoff = milliseconds(100),
                .max_backoff = milliseconds(800)});
  TimePoint now{};
  p.on_started();
  p.on_failed(now, turn::Failure::kInsufficientCapacity);
  EXPECT_TRUE(p.exhausted());
  EXPECT_EQ(p.retry_at(), now + milliseconds(100));
  EXPECT_EQ(p.wanted(now + milliseconds(99), 0), 0);
  // After the backoff: one probe at a time, not a burst.
  EXPECT_EQ(p.wanted(now + milliseconds(100), 0), 1);
  std::vector<Duration> waits;
  for (int i = 0; i < 5; ++i) {
    p.on_started();
    p.on_failed(now, turn::Failure::kQuotaReached);
    waits.push_back(p.retry_at() - now);
  }
  EXPECT_EQ(waits, (std::vector<Duration>{milliseconds(200), milliseconds(400), milliseconds(800),
                                          milliseconds(800), milliseconds(800)}));
  p.on_started();
  p.on_created();
  EXPECT_FALSE(p.exhausted());
  EXPECT_EQ(p.retry_at(), kNever);
  EXPECT_EQ(p.wanted(now, 0), 4);
}

TEST(PoolPolicy, OtherFailuresBackOffWithoutExhaustion) {
  PoolPolicy p({.target = 10, .max_in_flight = 4});
  p.on_started();
  p.on_failed(TimePoint{}, turn::Failure::kTimeout);
  EXPECT_FALSE(p.exhausted());
  EXPECT_NE(p.retry_at(), kNever);
  p.reset();
  EXPECT_EQ(p.retry_at(), kNever);
  EXPECT_EQ(p.in_flight(), 0);
}

TEST(PoolLayout, EntryRoundTripAndRejections) {
  PoolEntry e{*SocketAddress::parse("203.0.113.10:50001"), 0x8d2f11c40a7b3e95ull, 1763726700123};
  auto text = encode_entry(e);
  EXPECT_EQ(
      text,
      R"({"relay":"203.0.113.10:50001","token":"8d2f11c40a7b3e95","expires_ms":1763726700123})");
  auto back = decode_entry(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, e);
  PoolEntry v6{*SocketAddress::parse("[2001:db8::1]:50001"), 1, 2};
  EXPECT_EQ(decode_entry(encode_entry(v6)).value(), v6);
  for (const char* bad : {"", "[]", "{}", R"({"relay":"x","token":"00","expires_ms":1})",
                          R"({"relay":"1.2.3.4:5","token":"0011","expires_ms":1})",
                          R"({"relay":"1.2.3.4:5","token":"zz11223344556677","expires_ms":1})",
                          R"({"relay":"1.2.3.4:5","token":"0011223344556677","expires_ms":"1"})"}) {
    EXPECT_FALSE(decode_entry(bad)) << bad;
  }
}

TEST(PoolLayout, KeysAndInstanceIds) {
  EXPECT_EQ(pool_key("eu-1"), "roam:relay:{eu-1}:pool");
  EXPECT_EQ(instance_key("eu-1"), "roam:relay:{eu-1}:instance");
  EXPECT_TRUE(valid_instance_id("relay.eu-west_1"));
  EXPECT_FALSE(valid_instance_id(""));
  EXPECT_FALSE(valid_instance_id("a}b"));
  EXPECT_FALSE(valid_instance_id("a b"));
  EXPECT_FALSE(valid_instance_id(std::string(65, 'a')));
}

}  // namespace
}  // namespace roam::relay
