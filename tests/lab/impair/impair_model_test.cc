// The impairment model under virtual time: what a packet experiences is exactly what was
// configured (the lab's self-test then measures the same on real packets).
#include "impair_model.h"

#include <gtest/gtest.h>

namespace roam::lab {
namespace {

constexpr Nanos kMs = 1'000'000;

TEST(ImpairModel, FixedDelay) {
  ImpairModel m({.delay = 20 * kMs});
  for (Nanos t = 0; t < 100 * kMs; t += 7 * kMs) {
    const auto d = m.on_packet(t, 100);
    ASSERT_EQ(d.fate, Fate::kDeliver);
    EXPECT_EQ(d.departure, t + 20 * kMs);
  }
}

TEST(ImpairModel, JitterStaysInBoundsAndFifoKeepsOrder) {
  ImpairModel m({.delay = 20 * kMs, .jitter = 5 * kMs, .seed = 7});
  Nanos last = 0;
  for (Nanos t = 0; t < 2000 * kMs; t += kMs) {
    const auto d = m.on_packet(t, 100);
    EXPECT_GE(d.departure, t + 15 * kMs);
    EXPECT_LE(d.departure, t + 25 * kMs);
    EXPECT_GE(d.departure, last);
    last = d.departure;
  }
}

TEST(ImpairModel, ReorderLetsPacketsOvertake) {
  ImpairModel m({.delay = 20 * kMs, .jitter = 10 * kMs, .reorder = true, .seed = 3});
  int overtaken = 0;
  Nanos last = 0;
  for (Nanos t = 0; t < 1000 * kMs; t += kMs) {
    const auto d = m.on_packet(t, 100);
    overtaken += d.departure < last;
    last = d.departure;
  }
  EXPECT_GT(overtaken, 100);
}

TEST(ImpairModel, LossRateMatchesProbability) {
  ImpairModel m({.loss = 0.05, .seed = 11});
  int lost = 0;
  constexpr int kPackets = 200'000;
  for (int i = 0; i < kPackets; ++i)
    lost += m.on_packet(i * kMs, 100).fate == Fate::kLost;
  EXPECT_NEAR(static_cast<double>(lost) / kPackets, 0.05, 0.003);
}

TEST(ImpairModel, SameSeedSameFates) {
  ImpairModel a({.loss = 0.3, .seed = 5}), b({.loss = 0.3, .seed = 5});
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(a.on_packet(i, 10).fate, b.on_packet(i, 10).fate);
}

TEST(ImpairModel, RateSerializesBackToBackPackets) {
  // 1 Mbit/s: a 1250-byte packet takes 10 ms on the wire.
  ImpairModel m({.delay = 5 * kMs, .rate_bps = 1'000'000, .limit = 100});
  for (int i = 0; i < 10; ++i) {
    const auto d = m.on_packet(0, 1250);
    ASSERT_EQ(d.fate, Fate::kDeliver);
    EXPECT_EQ(d.departure, (i + 1) * 10 * kMs + 5 * kMs);
  }
  // An idle link sends at once.
  EXPECT_EQ(m.on_packet(1000 * kMs, 1250).departure, 1015 * kMs);
}

TEST(ImpairModel, TailDropBeyondLimit) {
  ImpairModel m({.rate_bps = 1'000'000, .limit = 4});
  int delivered = 0, over = 0;
  for (int i = 0; i < 10; ++i) {
    const auto fate = m.on_packet(0, 1250).fate;
    delivered += fate == Fate::kDeliver;
    over += fate == Fate::kOverLimit;
  }
  EXPECT_EQ(delivered, 5);  // one on the wire, four waiting
  EXPECT_EQ(over, 5);
  // Once the queue has drained, packets are accepted again.
  EXPECT_EQ(m.on_packet(100 * kMs, 1250).fate, Fate::kDeliver);
}

}  // namespace
}  // namespace roam::lab
