// ice::ReflexiveGatherer in virtual time: queries per family, retransmission, refresh, a
// changed mapping (NAT rebinding) and a lost one, and responses that must not be consumed.
#include "common/ice/reflexive_gatherer.h"

#include <gtest/gtest.h>

#include "common/stun/binding.h"
#include "common/stun/message.h"

namespace roam::ice {
namespace {

SocketAddress addr(const char* text) {
  return *SocketAddress::parse(text);
}

class ReflexiveGathererTest : public ::testing::Test {
 protected:
  SeededRandom random_{7};
  ReflexiveGathererConfig config_;
  TimePoint t0_{};
  const SocketAddress server4_ = addr("203.0.113.10:3478");
  const SocketAddress server6_ = addr("[fd00:c::10]:3478");

  static stun::Message answer(const Transmit& request, const SocketAddress& mapped) {
    auto parsed = stun::Message::parse(request.data);
    EXPECT_TRUE(parsed);
    Bytes b = stun::MessageBuilder(stun::Method::kBinding, stun::Class::kSuccess,
                                   parsed->transaction_id())
                  .add_xor_address(stun::attr::kXorMappedAddress, mapped)
                  .finish();
    return *stun::Message::parse(b);
  }
};

TEST_F(ReflexiveGathererTest, QueriesOnlyServersOfTheBaseFamily) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_, server6_}, t0_);
  auto t = g.poll_transmit();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->local, 1u);
  EXPECT_EQ(t->destination, server4_);
  EXPECT_FALSE(g.poll_transmit());
  g.add_base(2, addr("[fd00:1::2]:5000"), {server4_, server6_}, t0_);
  t = g.poll_transmit();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->destination, server6_);
}

TEST_F(ReflexiveGathererTest, ReportsTheMappingAndRefreshesIt) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_}, t0_);
  auto request = *g.poll_transmit();
  ASSERT_TRUE(g.handle_response(1, server4_, answer(request, addr("198.51.100.2:6000")),
                                t0_ + milliseconds(40)));
  auto r = g.poll_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mapped, addr("198.51.100.2:6000"));
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(g.mapping(1, server4_), addr("198.51.100.2:6000"));
  // The next query waits for the refresh interval.
  EXPECT_EQ(g.next_deadline(), t0_ + milliseconds(40) + config_.refresh);
  g.handle_timeout(g.next_deadline());
  auto again = g.poll_transmit();
  ASSERT_TRUE(again);
  // The same mapping again: reported, not changed.
  ASSERT_TRUE(
      g.handle_response(1, server4_, answer(*again, addr("198.51.100.2:6000")), g.next_deadline()));
  r = g.poll_result();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->changed);
  // A rebinding NAT: a new mapping is a change.
  g.handle_timeout(g.next_deadline());
  auto third = *g.poll_transmit();
  ASSERT_TRUE(
      g.handle_response(1, server4_, answer(third, addr("198.51.100.2:7000")), g.next_deadline()));
  r = g.poll_result();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(r->mapped, addr("198.51.100.2:7000"));
}

TEST_F(ReflexiveGathererTest, RefreshNowAsksAgainAtOnceAndSeesARebinding) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_}, t0_);
  g.add_base(2, addr("10.0.1.2:5000"), {server4_}, t0_);
  auto first = *g.poll_transmit();
  auto other = *g.poll_transmit();
  ASSERT_EQ(first.local, 1u);
  ASSERT_TRUE(g.handle_response(1, server4_, answer(first, addr("198.51.100.2:6000")),
                                t0_ + milliseconds(40)));
  ASSERT_TRUE(g.handle_response(2, server4_, answer(other, addr("198.51.100.2:6001")),
                                t0_ + milliseconds(40)));
  while (g.poll_result()) {
  }
  // A path from base 1 died one second later: it asks again now, not after the refresh.
  const TimePoint died = t0_ + seconds(1);
  g.refresh_now(1, died);
  EXPECT_EQ(g.next_deadline(), died);
  g.handle_timeout(died);
  auto again = g.poll_transmit();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->local, 1u);
  EXPECT_FALSE(g.poll_transmit());  // base 2 keeps its schedule
  ASSERT_TRUE(g.handle_response(1, server4_, answer(*again, addr("198.51.100.2:7000")),
                                died + milliseconds(40)));
  auto r = g.poll_result();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->changed);
  EXPECT_EQ(r->mapped, addr("198.51.100.2:7000"));
  // A query in flight is not restarted.
  g.refresh_now(1, died + milliseconds(50));
  g.handle_timeout(died + milliseconds(50));
  g.refresh_now(1, died + milliseconds(60));
  EXPECT_GT(g.next_deadline(), died + milliseconds(60));
}

TEST_F(ReflexiveGathererTest, RetransmitsThenReportsALostMapping) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_}, t0_);
  auto first = *g.poll_transmit();
  ASSERT_TRUE(g.handle_response(1, server4_, answer(first, addr("198.51.100.2:6000")), t0_));
  (void)g.poll_result();
  // The server goes silent: every retransmission of the next query, then a lost mapping.
  TimePoint now = g.next_deadline();
  g.handle_timeout(now);
  int sent = 0;
  while (g.poll_transmit())
    ++sent;
  std::optional<ReflexiveResult> lost;
  for (int i = 0; i < 20 && !lost; ++i) {
    now = g.next_deadline();
    g.handle_timeout(now);
    while (g.poll_transmit())
      ++sent;
    lost = g.poll_result();
  }
  EXPECT_EQ(sent, config_.retransmission.max_transmissions);
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->mapped);
  EXPECT_TRUE(lost->changed);
  EXPECT_FALSE(g.mapping(1, server4_));
  // Gathering goes on: the next query follows after the refresh interval.
  EXPECT_EQ(g.next_deadline(), now + config_.refresh);
}

TEST_F(ReflexiveGathererTest, IgnoresAnswersFromElsewhereAndUnknownTransactions) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_}, t0_);
  auto request = *g.poll_transmit();
  auto response = answer(request, addr("198.51.100.2:6000"));
  EXPECT_FALSE(g.handle_response(1, addr("203.0.113.66:3478"), response, t0_));  // spoofed
  EXPECT_FALSE(g.handle_response(2, server4_, response, t0_));                   // another socket
  Transmit other{1, server4_, {}};
  other.data = stun::make_binding_request(stun::TransactionId{}, "x");
  EXPECT_FALSE(g.handle_response(1, server4_, answer(other, addr("198.51.100.2:1")), t0_));
  EXPECT_FALSE(g.poll_result());
  EXPECT_TRUE(g.handle_response(1, server4_, response, t0_));
}

TEST_F(ReflexiveGathererTest, RemovedBaseStopsEverything) {
  ReflexiveGatherer g(config_, random_);
  g.add_base(1, addr("10.0.0.2:5000"), {server4_}, t0_);
  g.remove_base(1);
  EXPECT_FALSE(g.poll_transmit());
  EXPECT_EQ(g.next_deadline(), kNever);
}

}  // namespace
}  // namespace roam::ice
