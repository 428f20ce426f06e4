// TokenCache: reservation tokens a signaling shard fetched ahead of need (virtual time).
#include "signaling-server/token_cache.h"

#include <gtest/gtest.h>

namespace {

using roam::TimePoint;
using roam::relay::PoolEntry;
using roam::signaling::TokenCache;
using namespace std::chrono_literals;

TokenCache::Held token(std::uint64_t n) {
  PoolEntry e;
  e.token = n;
  e.expires_ms = 1'000'000 + static_cast<std::int64_t>(n);
  return {e, e.expires_ms - 5'000, {}};
}

std::vector<TokenCache::Held> tokens(std::uint64_t first, std::uint64_t count) {
  std::vector<TokenCache::Held> out;
  for (auto n = first; n < first + count; ++n)
    out.push_back(token(n));
  return out;
}

TEST(TokenCache, FetchesABatchThenHandsTokensOutInOrder) {
  TokenCache cache({.batch = 4, .low_water = 2, .min_grants_per_second = 0});
  const TimePoint t0{};
  EXPECT_FALSE(cache.take("r1", t0));
  EXPECT_EQ(cache.start_fetch("r1", t0, 100), 4u);
  EXPECT_EQ(cache.start_fetch("r1", t0, 100), 0u) << "one fetch in flight per relay";
  cache.add("r1", tokens(1, 4), t0);
  EXPECT_EQ(cache.held("r1"), 4u);
  EXPECT_EQ(cache.take("r1", t0)->token, 1u);
  EXPECT_EQ(cache.take("r1", t0)->token, 2u);
  EXPECT_EQ(cache.start_fetch("r1", t0, 100), 0u) << "2 left: not below the low water mark";
  EXPECT_EQ(cache.take("r1", t0)->token, 3u);
  EXPECT_EQ(cache.start_fetch("r1", t0, 100), 3u) << "tops up to the batch size";
  EXPECT_FALSE(cache.take("r2", t0)) << "relays do not share tokens";
}

TEST(TokenCache, AnEmptyPoolIsNotAskedAgainAtOnce) {
  TokenCache cache(
      {.batch = 4, .low_water = 2, .retry_after_empty = 1s, .min_grants_per_second = 0});
  const TimePoint t0{};
  ASSERT_EQ(cache.start_fetch("r1", t0, 100), 4u);
  cache.add("r1", {}, t0);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 500ms, 100), 0u);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 1001ms, 100), 4u);
  cache.fetch_failed("r1");
  EXPECT_EQ(cache.start_fetch("r1", t0 + 1002ms, 100), 4u) << "a failed fetch may be retried";
}

TEST(TokenCache, TokensHeldTooLongAreNeverHandedOutAndGoBack) {
  TokenCache cache({.batch = 4, .low_water = 3, .max_hold = 20s, .min_grants_per_second = 0});
  const TimePoint t0{};
  ASSERT_EQ(cache.start_fetch("r1", t0, 100), 4u);
  cache.add("r1", tokens(1, 2), t0);
  ASSERT_EQ(cache.start_fetch("r1", t0 + 10s, 100), 2u);
  cache.add("r1", tokens(3, 2), t0 + 10s);
  // At 25 s the first two are 25 s old: set aside; the next two (15 s) are fine.
  EXPECT_EQ(cache.take("r1", t0 + 25s)->token, 3u);
  auto back = cache.stale(t0 + 25s);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].first, "r1");
  EXPECT_EQ(back[0].second.entry.token, 1u);
  EXPECT_EQ(back[0].second.score, token(1).score) << "returned with its pool score";
  EXPECT_EQ(back[1].second.entry.token, 2u);
  // Later the last one ages out too without anyone taking it.
  back = cache.stale(t0 + 31s);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].second.entry.token, 4u);
  EXPECT_EQ(cache.held(), 0u);
}

TEST(TokenCache, TakeAllEmptiesTheCacheAndStopsFetching) {
  TokenCache cache({.batch = 4, .low_water = 2, .min_grants_per_second = 0});
  const TimePoint t0{};
  ASSERT_EQ(cache.start_fetch("r1", t0, 100), 4u);
  cache.add("r1", tokens(1, 3), t0);
  ASSERT_EQ(cache.start_fetch("r2", t0, 100), 4u);
  cache.add("r2", tokens(10, 1), t0);
  auto all = cache.take_all();
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(cache.held(), 0u);
  EXPECT_EQ(cache.start_fetch("r1", t0, 100), 0u) << "no fetching after shutdown began";
}

TEST(TokenCache, FetchesAheadOnlyUnderLoadAndOnlyAQuarterOfThePool) {
  TokenCache cache({.batch = 16, .low_water = 8, .min_grants_per_second = 20});
  const TimePoint t0{};
  for (int i = 0; i < 19; ++i)
    cache.note_grant(t0 + i * 10ms);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 200ms, 100), 0u) << "19 grants/s: below the gate";
  cache.note_grant(t0 + 200ms);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 200ms, 100), 16u);
  cache.fetch_failed("r1");
  EXPECT_EQ(cache.start_fetch("r1", t0 + 200ms, 12), 3u) << "a quarter of a 12-token pool";
  cache.fetch_failed("r1");
  EXPECT_EQ(cache.start_fetch("r1", t0 + 200ms, 3), 0u) << "a tiny pool is left alone";
  // The load of the previous second counts for the next one, then it is forgotten.
  cache.note_grant(t0 + 1500ms);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 1500ms, 100), 16u);
  cache.fetch_failed("r1");
  cache.note_grant(t0 + 5s);
  EXPECT_EQ(cache.start_fetch("r1", t0 + 5s, 100), 0u) << "an idle gap resets the load";
}

// The defaults are sized for ./run bench signaling phase (c): 16 pairs connecting at once on a
// shard take 32 tokens, and a full cache serves them all without a Redis round trip (with a
// batch of 16, half of such a burst waited for Redis and the grant p99 doubled).
TEST(TokenCache, DefaultsServeABurstOfSixteenConnectsFromOneFetch) {
  TokenCache cache(TokenCache::Limits{});
  const TimePoint t0{};
  for (std::size_t i = 0; i < cache.limits().min_grants_per_second; ++i)
    cache.note_grant(t0);
  constexpr std::size_t kConnects = 16, kTokensPerConnect = 2;
  const auto fetch = cache.start_fetch("r1", t0, 1000);
  ASSERT_EQ(fetch, kConnects * kTokensPerConnect);
  cache.add("r1", tokens(1, fetch), t0);
  for (std::size_t k = 0; k < kConnects * kTokensPerConnect; ++k) {
    ASSERT_TRUE(cache.take("r1", t0 + 1ms)) << "token " << k << " of the burst missed";
    if (k + 1 == kConnects * kTokensPerConnect - cache.limits().low_water + 1) {
      EXPECT_GT(cache.start_fetch("r1", t0 + 1ms, 1000), 0u) << "refills below the low water";
    }
  }
}

}  // namespace
