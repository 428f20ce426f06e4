// The sans-I/O parts of roam-signaling: rate limiting, keep-alive, admission, relay choice, the
// registry's peer info and the envelopes instances route to each other.
#include <gtest/gtest.h>

#include "common/ice/candidate_text.h"
#include "common/signaling/peer_info.h"
#include "common/signaling/route_envelope.h"
#include "signaling-server/connection_limiter.h"
#include "signaling-server/keep_alive.h"
#include "signaling-server/rate_limiter.h"
#include "signaling-server/relay_directory.h"
#include "signaling-server/relay_grants.h"

namespace roam::signaling {
namespace {

TEST(SignalingRateLimiter, BurstThenSteadyRate) {
  TimePoint t0{};
  TokenBucket bucket(10, 5, t0);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(bucket.try_take(t0)) << i;
  EXPECT_FALSE(bucket.try_take(t0));
  EXPECT_FALSE(bucket.try_take(t0 + std::chrono::milliseconds(99)));
  EXPECT_TRUE(bucket.try_take(t0 + std::chrono::milliseconds(100)));
  // Idle time refills at most to the burst.
  auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(bucket.try_take(later));
  EXPECT_FALSE(bucket.try_take(later));
}

TEST(SignalingRateLimiter, ClockGoingBackwardsAddsNothing) {
  TimePoint t0 = TimePoint{} + std::chrono::seconds(10);
  TokenBucket bucket(1000, 1, t0);
  EXPECT_TRUE(bucket.try_take(t0));
  EXPECT_FALSE(bucket.try_take(t0 - std::chrono::seconds(5)));
  EXPECT_FALSE(bucket.try_take(t0));
}

TEST(SignalingRateLimiter, WarnsOnceThenClosesOnFlood) {
  TimePoint t0{};
  RateLimiter limiter(1, 2, 4, t0);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kAccept);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kAccept);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kDropAndWarn);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kDrop);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kDrop);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kClose);
}

TEST(SignalingRateLimiter, AnAcceptedMessageEndsTheRun) {
  TimePoint t0{};
  RateLimiter limiter(1, 1, 3, t0);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kAccept);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kDropAndWarn);
  EXPECT_EQ(limiter.on_message(t0), RateLimiter::Verdict::kDrop);
  auto t1 = t0 + std::chrono::seconds(1);
  EXPECT_EQ(limiter.on_message(t1), RateLimiter::Verdict::kAccept);
  EXPECT_EQ(limiter.dropped_in_a_row(), 0u);
  EXPECT_EQ(limiter.on_message(t1), RateLimiter::Verdict::kDropAndWarn);
}

// Ticks come every idle_timeout / 2; the argument is the connection's receive counter then.
TEST(SignalingKeepAlive, PingsAfterASilentTickClosesAfterTheNext) {
  using Action = KeepAlive::Action;
  KeepAlive keep_alive;
  EXPECT_EQ(keep_alive.on_tick(3), Action::kNone);  // the hello arrived in this tick
  EXPECT_EQ(keep_alive.on_tick(3), Action::kPing);
  EXPECT_EQ(keep_alive.on_tick(3), Action::kTimeOut);
}

TEST(SignalingKeepAlive, TrafficOrAPongStartsOver) {
  using Action = KeepAlive::Action;
  KeepAlive keep_alive;
  for (std::uint64_t receives = 1; receives <= 5; ++receives)
    EXPECT_EQ(keep_alive.on_tick(receives), Action::kNone) << receives;
  EXPECT_EQ(keep_alive.on_tick(5), Action::kPing);
  keep_alive.on_ping_written();
  EXPECT_EQ(keep_alive.on_tick(6), Action::kNone);  // the pong
  EXPECT_EQ(keep_alive.on_tick(6), Action::kPing);  // silent again: a fresh ping
  EXPECT_EQ(keep_alive.on_tick(6), Action::kTimeOut);
}

TEST(SignalingKeepAlive, AnUnwrittenPingIsNotDoubledAndSilenceStillTimesOut) {
  using Action = KeepAlive::Action;
  KeepAlive keep_alive;
  EXPECT_EQ(keep_alive.on_tick(1), Action::kNone);
  EXPECT_EQ(keep_alive.on_tick(1), Action::kPing);
  EXPECT_EQ(keep_alive.on_tick(2), Action::kNone);  // traffic, the ping still queued
  EXPECT_EQ(keep_alive.on_tick(2), Action::kNone);  // silent: no second ping behind it
  EXPECT_EQ(keep_alive.on_tick(2), Action::kTimeOut);
}

TEST(SignalingConnectionLimiter, CapsPerIpAndTotalAndReleases) {
  auto limiter = std::make_shared<ConnectionLimiter>(3, 2);
  auto a = *IpAddress::parse("192.0.2.1");
  auto b = *IpAddress::parse("192.0.2.2");
  ConnectionLimiter::Refusal refusal{};
  auto s1 = limiter->admit(a, &refusal);
  auto s2 = limiter->admit(a, &refusal);
  EXPECT_TRUE(s1 && s2);
  {
    auto s3 = limiter->admit(a, &refusal);
    EXPECT_FALSE(s3);
    EXPECT_EQ(refusal, ConnectionLimiter::Refusal::kPerIpCap);
  }
  auto s4 = limiter->admit(b, &refusal);
  EXPECT_TRUE(s4);
  {
    auto s5 = limiter->admit(b, &refusal);
    EXPECT_FALSE(s5);
    EXPECT_EQ(refusal, ConnectionLimiter::Refusal::kServerFull);
  }
  EXPECT_EQ(limiter->total(), 3u);
  { auto moved = std::move(s1); }
  EXPECT_EQ(limiter->from(a), 1u);
  EXPECT_EQ(limiter->total(), 2u);
  EXPECT_TRUE(limiter->admit(b, &refusal));  // released again at once
}

RelayInstance relay(std::string id, std::string region, bool healthy, int allocations, int pool) {
  RelayInstance r;
  r.id = std::move(id);
  r.region = std::move(region);
  r.turn_uri = "turn:192.0.2.10:3478?transport=udp";
  r.turn_address = *SocketAddress::parse("192.0.2.10:3478");
  r.healthy = healthy;
  r.allocations = allocations;
  r.pool = pool;
  return r;
}

TEST(SignalingRelayChoice, RegionFirstThenLeastLoadedHealthyOnly) {
  std::vector<RelayInstance> relays{relay("a", "eu", true, 5, 10), relay("b", "us", true, 1, 10),
                                    relay("c", "eu", false, 0, 10), relay("d", "eu", true, 2, 0),
                                    relay("e", "eu", true, 2, 7)};
  auto ranked = rank_relays(relays, std::string_view("eu"));
  std::vector<std::string> ids;
  for (const auto& r : ranked)
    ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"e", "d", "a", "b"}));
  auto anywhere = rank_relays(relays, std::nullopt);
  EXPECT_EQ(anywhere.front().id, "b");
}

TEST(SignalingRelayChoice, ParsesTheRegistryHash) {
  std::vector<std::string> fields{"id",           "relay-1",
                                  "region",       "eu",
                                  "turn_uri",     "turn:203.0.113.10:3478?transport=udp",
                                  "turn_address", "203.0.113.10:3478",
                                  "healthy",      "1",
                                  "allocations",  "17",
                                  "pool",         "48"};
  auto r = parse_relay_instance(fields);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, "relay-1");
  EXPECT_TRUE(r->healthy);
  EXPECT_EQ(r->allocations, 17);
  EXPECT_EQ(r->pool, 48);
  EXPECT_EQ(r->turn_address.to_string(), "203.0.113.10:3478");
  fields.resize(4);  // no turn_uri/turn_address: unusable
  EXPECT_FALSE(parse_relay_instance(fields));
}

TEST(SignalingRelayChoice, RelayCandidateIsValidRfc8839Text) {
  auto relay = *SocketAddress::parse("203.0.113.10:50001");
  auto text = relay_candidate_text(relay, *SocketAddress::parse("203.0.113.10:3478"));
  auto parsed = ice::parse_candidate(text);
  ASSERT_TRUE(parsed) << text;
  EXPECT_EQ(parsed->type, ice::CandidateType::kRelayed);
  EXPECT_EQ(parsed->address, relay);
  auto v6 = relay_candidate_text(*SocketAddress::parse("[2001:db8::1]:50001"),
                                 *SocketAddress::parse("[2001:db8::1]:3478"));
  EXPECT_TRUE(ice::parse_candidate(v6)) << v6;
}

TEST(SignalingPeerInfo, RoundTripsAndRejectsGarbage) {
  PeerInfo info;
  info.fingerprint =
      "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
      "89:AB:CD:EF:01:23:45:67:89";
  info.ice = IceCredentials{"Fq3Z", "asd88fgpdd777uzjYhagZg0a"};
  info.region = "eu-west";
  auto decoded = decode_peer_info(encode_peer_info(info));
  ASSERT_TRUE(decoded) << decoded.error();
  EXPECT_EQ(*decoded, info);
  EXPECT_EQ(*decode_peer_info("{}"), PeerInfo{});
  EXPECT_FALSE(decode_peer_info("[]"));
  EXPECT_FALSE(decode_peer_info(R"({"fingerprint":7})"));
  EXPECT_FALSE(decode_peer_info(R"({"fingerprint":"md5 00"})"));
  EXPECT_FALSE(decode_peer_info(R"({"ice":{"ufrag":"a"}})"));
}

TEST(SignalingRouteEnvelope, DeliveryRoundTrips) {
  RoutedMessage m;
  m.text = R"({"type":"session","session":"x"})";
  m.type = "session";
  m.op = SessionOp::kOpen;
  m.session = "0123456789abcdef0123456789abcdef";
  m.peer = "alice";
  m.received_unix_us = 1763726400123456;
  auto e = decode_envelope(encode_delivery("bob", m));
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->kind, Envelope::Kind::kDeliver);
  EXPECT_EQ(e->peer, "bob");
  EXPECT_EQ(e->message, m);
}

TEST(SignalingRouteEnvelope, KickFromTheRegisterScript) {
  // The shape layout::register_script publishes with cjson.
  auto e = decode_envelope(R"({"k":"kick","peer":"bob","gen":7})");
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->kind, Envelope::Kind::kKick);
  EXPECT_EQ(e->generation, 7);
}

TEST(SignalingRouteEnvelope, RejectsMalformed) {
  for (const char* bad : {"", "null", "[]", R"({"k":"m"})", R"({"k":"kick","peer":"b"})",
                          R"({"k":"m","peer":"b","type":"nope","text":"","us":1})",
                          R"({"k":"m","peer":"b","type":"bye","text":"","us":"1"})",
                          R"({"k":"m","peer":"b","type":"bye","text":"","us":1,"op":"open"})",
                          R"({"k":"zap","peer":"b"})", R"({"k":"kick","peer":"b","gen":0})",
                          R"({"k":"m","peer":"b","type":"bye","text":"","us":1,"s":"x"})"}) {
    EXPECT_FALSE(decode_envelope(bad)) << bad;
  }
}

}  // namespace
}  // namespace roam::signaling
