// coturn --redis-statsdb parsing, allocation bookkeeping (virtual time) and the exporter's
// metrics, fed with publications recorded from Debian's coturn 4.6.1 (PSUBSCRIBE 'turn/*'
// while turnutils_uclient allocated, relayed to a peer, refreshed and deleted).
#include "common/relay/coturn_stats.h"

#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "common/metrics/metrics.h"
#include "relay/stats/stats_exporter.h"

namespace roam::relay::coturn_stats {
namespace {

using namespace std::chrono_literals;

struct Publication {
  std::string channel;
  std::string payload;
};

const std::string kAlloc =
    "turn/realm/roam.test/user/1795352282:carol/allocation/000000000000000007";

// One whole allocation, as recorded: 5000 × 50-byte ChannelData each way with a peer.
const std::vector<Publication> kRecordedSession = {
    {kAlloc + "/status",
     "new lifetime=777, type=UDP, local=127.0.0.1:13478, remote=127.0.0.1:47031, ssl=NONE, "
     "cipher=NONE"},
    {kAlloc + "/status",
     "refreshed lifetime=777, type=UDP, local=127.0.0.1:13478, remote=127.0.0.1:47031, "
     "ssl=NONE, cipher=NONE"},
    {kAlloc + "/status",
     "refreshed lifetime=600, type=UDP, local=127.0.0.1:13478, remote=127.0.0.1:47031, "
     "ssl=NONE, cipher=NONE"},
    {kAlloc + "/traffic", "rcvp=1030, rcvb=56264, sentp=1028, sentb=55812"},
    {kAlloc + "/traffic/peer", "rcvp=1018, rcvb=50900, sentp=1020, sentb=51000"},
    {kAlloc + "/traffic", "rcvp=1024, rcvb=55296, sentp=1024, sentb=55296"},
    {kAlloc + "/traffic/peer", "rcvp=1024, rcvb=51200, sentp=1024, sentb=51200"},
    {kAlloc + "/traffic", "rcvp=1024, rcvb=55296, sentp=1024, sentb=55296"},
    {kAlloc + "/traffic/peer", "rcvp=1024, rcvb=51200, sentp=1024, sentb=51200"},
    {kAlloc + "/traffic", "rcvp=1023, rcvb=55242, sentp=1025, sentb=55350"},
    {kAlloc + "/traffic/peer", "rcvp=1025, rcvb=51250, sentp=1023, sentb=51150"},
    {kAlloc + "/status",
     "refreshed lifetime=0, type=UDP, local=127.0.0.1:13478, remote=127.0.0.1:47031, "
     "ssl=NONE, cipher=NONE"},
    {kAlloc + "/traffic", "rcvp=910, rcvb=49202, sentp=910, sentb=49170"},
    {kAlloc + "/traffic/peer", "rcvp=909, rcvb=45450, sentp=909, sentb=45450"},
    {kAlloc + "/status", "deleted"},
    {kAlloc + "/total_traffic", "rcvp=5011, rcvb=271300, sentp=5011, sentb=270924"},
    {kAlloc + "/total_traffic/peer", "rcvp=5000, rcvb=250000, sentp=5000, sentb=250000"},
};

Event parse_ok(std::string_view channel, std::string_view payload) {
  auto e = parse(channel, payload);
  EXPECT_TRUE(e.has_value()) << channel << " | " << payload;
  return e ? *e : Event{Ignored{}};
}

ParseError parse_error(std::string_view channel, std::string_view payload) {
  auto e = parse(channel, payload);
  EXPECT_FALSE(e.has_value()) << channel << " | " << payload;
  return e ? ParseError::kTooLarge : e.error();
}

TEST(CoturnStatsParse, RecordedNewRefreshedDeleted) {
  auto e = parse_ok(kRecordedSession[0].channel, kRecordedSession[0].payload);
  ASSERT_TRUE(std::holds_alternative<StatusEvent>(e));
  EXPECT_EQ(std::get<StatusEvent>(e),
            (StatusEvent{{"roam.test", "1795352282:carol", 7}, Status::kNew, 777}));

  e = parse_ok(kRecordedSession[2].channel, kRecordedSession[2].payload);
  EXPECT_EQ(std::get<StatusEvent>(e),
            (StatusEvent{{"roam.test", "1795352282:carol", 7}, Status::kRefreshed, 600}));

  e = parse_ok(kRecordedSession[11].channel, kRecordedSession[11].payload);
  EXPECT_EQ(std::get<StatusEvent>(e).status, Status::kRefreshed);
  EXPECT_EQ(std::get<StatusEvent>(e).lifetime_seconds, 0u);

  e = parse_ok(kAlloc + "/status", "deleted");
  EXPECT_EQ(std::get<StatusEvent>(e),
            (StatusEvent{{"roam.test", "1795352282:carol", 7}, Status::kDeleted, 0}));
}

TEST(CoturnStatsParse, RecordedTrafficDeltasAndTotals) {
  auto e = parse_ok(kAlloc + "/traffic", "rcvp=1030, rcvb=56264, sentp=1028, sentb=55812");
  ASSERT_TRUE(std::holds_alternative<TrafficEvent>(e));
  EXPECT_EQ(
      std::get<TrafficEvent>(e),
      (TrafficEvent{
          {"roam.test", "1795352282:carol", 7}, Side::kClient, false, {1030, 56264, 1028, 55812}}));

  e = parse_ok(kAlloc + "/traffic/peer", "rcvp=1018, rcvb=50900, sentp=1020, sentb=51000");
  EXPECT_EQ(std::get<TrafficEvent>(e).side, Side::kPeer);
  EXPECT_FALSE(std::get<TrafficEvent>(e).total);
  EXPECT_EQ(std::get<TrafficEvent>(e).traffic, (Traffic{1018, 50900, 1020, 51000}));

  e = parse_ok(kAlloc + "/total_traffic", "rcvp=5011, rcvb=271300, sentp=5011, sentb=270924");
  EXPECT_EQ(std::get<TrafficEvent>(e).side, Side::kClient);
  EXPECT_TRUE(std::get<TrafficEvent>(e).total);

  e = parse_ok(kAlloc + "/total_traffic/peer", "rcvp=5000, rcvb=250000, sentp=5000, sentb=250000");
  EXPECT_EQ(std::get<TrafficEvent>(e).side, Side::kPeer);
  EXPECT_TRUE(std::get<TrafficEvent>(e).total);
  EXPECT_EQ(std::get<TrafficEvent>(e).traffic, (Traffic{5000, 250000, 5000, 250000}));
}

TEST(CoturnStatsParse, TotalsEqualTheSumOfTheDeltasInTheRecording) {
  // Why totals are never added: coturn's total is the sum of the deltas it published.
  Traffic sum[2], total[2];
  for (const auto& p : kRecordedSession) {
    auto e = parse_ok(p.channel, p.payload);
    auto* t = std::get_if<TrafficEvent>(&e);
    if (!t) continue;
    auto& into = t->total ? total[static_cast<int>(t->side)] : sum[static_cast<int>(t->side)];
    into.rx_packets += t->traffic.rx_packets;
    into.rx_bytes += t->traffic.rx_bytes;
    into.tx_packets += t->traffic.tx_packets;
    into.tx_bytes += t->traffic.tx_bytes;
  }
  EXPECT_EQ(sum[0], total[0]);
  EXPECT_EQ(sum[1], total[1]);
}

TEST(CoturnStatsParse, ThreadPrefixedIdsRealmlessChannelsAndOddUsers) {
  auto e = parse_ok("turn/realm/roam.test/user/1795352273:bob/allocation/001000000000000001/status",
                    "new lifetime=777, type=UDP, local=127.0.0.1:13478, remote=127.0.0.1:43200, "
                    "ssl=NONE, cipher=NONE");
  EXPECT_EQ(std::get<StatusEvent>(e).allocation.id, 1000000000000001u);

  e = parse_ok("turn/user/alice/allocation/000000000000000003/traffic",
               "rcvp=1, rcvb=2, sentp=3, sentb=4");
  EXPECT_EQ(std::get<TrafficEvent>(e).allocation, (AllocationRef{"", "alice", 3}));

  // Peer ids may hold '/', even "/user/" and "/allocation/…": the tail is anchored at the end.
  e = parse_ok(
      "turn/realm/r/user/1:a/user/b/allocation/000000000000000001/status/"
      "allocation/000000000000000009/status",
      "deleted");
  EXPECT_EQ(std::get<StatusEvent>(e).allocation,
            (AllocationRef{"r", "1:a/user/b/allocation/000000000000000001/status", 9}));

  // Empty user; the largest id; a lifetime of 2^32 - 1.
  e = parse_ok("turn/realm/r/user//allocation/18446744073709551615/status",
               "refreshed lifetime=4294967295");
  EXPECT_EQ(std::get<StatusEvent>(e).allocation, (AllocationRef{"r", "", 18446744073709551615u}));
  EXPECT_EQ(std::get<StatusEvent>(e).lifetime_seconds, 4294967295u);
}

TEST(CoturnStatsParse, TrafficFieldsInAnyOrderUnknownFieldsSkipped) {
  auto e = parse_ok(kAlloc + "/traffic", "sentb=4, sentp=3, rcvb=2, rcvp=1");
  EXPECT_EQ(std::get<TrafficEvent>(e).traffic, (Traffic{1, 2, 3, 4}));
  e = parse_ok(kAlloc + "/traffic", "rcvp=1, rcvb=2, sentp=3, sentb=4, rate=99");
  EXPECT_EQ(std::get<TrafficEvent>(e).traffic, (Traffic{1, 2, 3, 4}));
  e = parse_ok(kAlloc + "/traffic", "rcvp=1,rcvb=2,sentp=3,sentb=281474976710656");
  EXPECT_EQ(std::get<TrafficEvent>(e).traffic.tx_bytes, kMaxTrafficValue);
}

TEST(CoturnStatsParse, KeepaliveAndIgnoredChannels) {
  EXPECT_TRUE(std::holds_alternative<Keepalive>(parse_ok("__XXX__", "__YYY__")));
  EXPECT_TRUE(std::holds_alternative<Ignored>(parse_ok("__XXX__", "something else")));
  for (std::string channel :
       {"", "turn", "turn/", "turn/status", "turn/origin/example.com", "other/allocation/1/status",
        "turn/realm/r/user/u/status", "turn/realm/r/user/u/allocation/1/unknown",
        "turn/realm/r/user/u/allocation/1/traffic/peer/x", "turn/realm/r/user/u/allocation1/status",
        "TURN/realm/r/user/u/allocation/1/status"}) {
    EXPECT_TRUE(std::holds_alternative<Ignored>(parse_ok(channel, "deleted"))) << channel;
  }
}

TEST(CoturnStatsParse, MalformedChannels) {
  for (std::string channel :
       {"turn/realm/r/user/u/allocation//status", "turn/realm/r/user/u/allocation/abc/status",
        "turn/realm/r/user/u/allocation/-1/status", "turn/realm/r/user/u/allocation/+1/status",
        "turn/realm/r/user/u/allocation/ 1/status",
        "turn/realm/r/user/u/allocation/18446744073709551616/status",
        "turn/realm/r/user/u/allocation/000000000000000000001/status",
        "turn/realm/nouser/allocation/1/status", "turn/something/u/allocation/1/status"}) {
    EXPECT_EQ(parse_error(channel, "deleted"), ParseError::kBadChannel) << channel;
  }
}

TEST(CoturnStatsParse, MalformedPayloads) {
  const std::string status = kAlloc + "/status";
  for (const std::string& payload :
       std::vector<std::string>{"", "created lifetime=1", "deleted ", "Deleted", "new", "new ",
                                "new lifetime=", "new lifetime=-1", "new lifetime=x",
                                "new lifetime=4294967296", "new lifetime =1", "refreshed",
                                "refreshed lifetime=1x, type=UDP", std::string("deleted\0", 8)}) {
    EXPECT_EQ(parse_error(status, payload), ParseError::kBadPayload) << payload;
  }
  const std::string traffic = kAlloc + "/traffic/peer";
  for (std::string payload :
       {"", "rcvp=1, rcvb=2, sentp=3", "rcvp=1, rcvb=2, sentp=3, sentb=",
        "rcvp=1 rcvb=2 sentp=3 sentb=4", "rcvp=1, rcvb=2, sentp=3, sentb=4, rcvp=5",
        "rcvp=1, rcvb=2, sentp=3, sentb=-4", "rcvp=1, rcvb=2, sentp=3, sentb=281474976710657",
        "rcvp=1, rcvb=2, sentp=3, sentb=99999999999999999999999",
        "rcvp=1, , rcvb=2, sentp=3, sentb=4", "deleted"}) {
    EXPECT_EQ(parse_error(traffic, payload), ParseError::kBadPayload) << payload;
  }
}

TEST(CoturnStatsParse, OversizedInputsAreRefused) {
  EXPECT_EQ(parse_error(std::string(kMaxChannelSize + 1, 'a'), "deleted"), ParseError::kTooLarge);
  EXPECT_EQ(parse_error(kAlloc + "/status", std::string(kMaxPayloadSize + 1, 'a')),
            ParseError::kTooLarge);
  // At the bound: parsed.
  const std::string channel =
      "turn/user/" + std::string(kMaxChannelSize - 30, 'u') + "/allocation/1/status";
  ASSERT_EQ(channel.size(), kMaxChannelSize);
  EXPECT_TRUE(parse(channel, std::string(kMaxPayloadSize - 7, ' ') + "deleted").error() ==
              ParseError::kBadPayload);
  EXPECT_TRUE(parse(channel, "deleted").has_value());
  for (auto e : {ParseError::kTooLarge, ParseError::kBadChannel, ParseError::kBadPayload})
    EXPECT_FALSE(describe(e).empty());
}

TEST(CoturnStatsUsers, StripRestExpiryAndLoggable) {
  EXPECT_EQ(strip_rest_expiry("1795352261:alice"), "alice");
  EXPECT_EQ(strip_rest_expiry("1795352261:roam-relay-a:b"), "roam-relay-a:b");
  EXPECT_EQ(strip_rest_expiry("alice"), "alice");
  EXPECT_EQ(strip_rest_expiry("x1:alice"), "x1:alice");
  EXPECT_EQ(strip_rest_expiry(":alice"), ":alice");
  EXPECT_EQ(strip_rest_expiry(""), "");
  EXPECT_EQ(loggable_user("1795352261:alice"), "alice");
  EXPECT_EQ(loggable_user(std::string("1:a\nb\\\x7f\xff", 8)), "a\\x0ab\\x5c\\x7f\\xff");
  auto long_name = loggable_user("1:" + std::string(100, 'n'));
  EXPECT_EQ(long_name, std::string(64, 'n') + "...");
}

// --- AllocationTracker, virtual time ----------------------------------------------------

StatusEvent status(std::uint64_t id, Status s, std::uint32_t lifetime = 600,
                   std::string user = "1795352261:alice") {
  return {{"roam.test", std::move(user), id}, s, lifetime};
}

TrackerConfig own_is_relay(std::size_t max = 16) {
  TrackerConfig c;
  c.max_allocations = max;
  c.expiry_grace = 30s;
  c.is_own = [](std::string_view user) { return strip_rest_expiry(user) == "roam-relay-a"; };
  return c;
}

using Outcome = AllocationTracker::Outcome;

TEST(CoturnStatsTracker, NewThenDeletedReportsHowLongItLived) {
  AllocationTracker t(own_is_relay());
  const TimePoint t0{};
  EXPECT_EQ(t.next_deadline(), kNever);
  EXPECT_EQ(t.on_status(t0, status(1, Status::kNew)).outcome, Outcome::kOpened);
  EXPECT_EQ(t.live(), 1u);
  EXPECT_EQ(t.next_deadline(), t0 + 600s + 30s);
  EXPECT_EQ(t.on_status(t0 + 100s, status(1, Status::kRefreshed, 600)).outcome,
            Outcome::kRefreshed);
  EXPECT_EQ(t.next_deadline(), t0 + 700s + 30s);
  EXPECT_EQ(t.on_status(t0 + 200s, status(1, Status::kRefreshed, 0)).outcome, Outcome::kRefreshed);
  EXPECT_EQ(t.next_deadline(), t0 + 200s + 30s);
  auto r = t.on_status(t0 + 200s, status(1, Status::kDeleted, 0));
  EXPECT_EQ(r.outcome, Outcome::kClosed);
  ASSERT_TRUE(r.lived);
  EXPECT_EQ(*r.lived, 200s);
  EXPECT_EQ(t.live(), 0u);
  EXPECT_EQ(t.next_deadline(), kNever);
}

TEST(CoturnStatsTracker, DuplicatesAndUnknownDeletesCannotDrift) {
  AllocationTracker t(own_is_relay());
  const TimePoint t0{};
  t.on_status(t0, status(1, Status::kNew));
  EXPECT_EQ(t.on_status(t0 + 5s, status(1, Status::kNew)).outcome, Outcome::kDuplicateNew);
  EXPECT_EQ(t.live(), 1u);
  EXPECT_EQ(t.on_status(t0, status(2, Status::kDeleted)).outcome, Outcome::kUnknownDelete);
  EXPECT_EQ(t.live(), 1u);
  // The duplicate restarted the clock (a restarted coturn reuses ids).
  EXPECT_EQ(*t.on_status(t0 + 15s, status(1, Status::kDeleted)).lived, 10s);
  EXPECT_EQ(t.on_status(t0 + 16s, status(1, Status::kDeleted)).outcome, Outcome::kUnknownDelete);
  EXPECT_EQ(t.live(), 0u);
}

TEST(CoturnStatsTracker, RefreshOfUnknownAllocationAdoptsItWithoutAStartTime) {
  AllocationTracker t(own_is_relay());
  const TimePoint t0{};
  EXPECT_EQ(t.on_status(t0, status(5, Status::kRefreshed, 0)).outcome, Outcome::kNoop);
  EXPECT_EQ(t.live(), 0u);
  EXPECT_EQ(t.on_status(t0, status(5, Status::kRefreshed, 600)).outcome, Outcome::kAdopted);
  EXPECT_EQ(t.live(), 1u);
  EXPECT_TRUE(t.tracking(5));
  auto r = t.on_status(t0 + 50s, status(5, Status::kDeleted));
  EXPECT_EQ(r.outcome, Outcome::kClosed);
  EXPECT_FALSE(r.lived);
}

TEST(CoturnStatsTracker, EntriesExpireAfterLifetimePlusGrace) {
  AllocationTracker t(own_is_relay());
  const TimePoint t0{};
  t.on_status(t0, status(1, Status::kNew, 600));
  t.on_status(t0 + 10s, status(2, Status::kNew, 60));
  t.on_status(t0 + 20s, status(3, Status::kNew, 4294967295u));  // capped at max_lifetime
  EXPECT_EQ(t.next_deadline(), t0 + 10s + 60s + 30s);
  EXPECT_EQ(t.on_timeout(t0 + 99s), 0u);
  EXPECT_EQ(t.on_timeout(t0 + 100s), 1u);
  EXPECT_FALSE(t.tracking(2));
  EXPECT_EQ(t.next_deadline(), t0 + 630s);
  EXPECT_EQ(t.on_timeout(t0 + 3600s), 1u);
  EXPECT_EQ(t.next_deadline(), t0 + 20s + std::chrono::hours(24) + 30s);
  EXPECT_EQ(t.live(), 1u);
  t.clear();
  EXPECT_EQ(t.live(), 0u);
  EXPECT_EQ(t.next_deadline(), kNever);
}

TEST(CoturnStatsTracker, OwnAllocationsAreNeitherTrackedNorAnomalies) {
  AllocationTracker t(own_is_relay());
  const TimePoint t0{};
  for (auto s : {Status::kNew, Status::kRefreshed, Status::kDeleted}) {
    EXPECT_EQ(t.on_status(t0, status(9, s, 600, "1795352261:roam-relay-a")).outcome, Outcome::kOwn);
  }
  EXPECT_EQ(t.on_status(t0, status(9, Status::kNew, 600, "roam-relay-a")).outcome, Outcome::kOwn);
  // Not own: another instance, a longer id, no REST expiry but a different name.
  for (std::string user :
       {"1:roam-relay-b", "1:roam-relay-ab", "1:xroam-relay-a", "a:roam-relay-a"}) {
    EXPECT_NE(t.on_status(t0, status(10, Status::kNew, 600, user)).outcome, Outcome::kOwn) << user;
  }
  EXPECT_EQ(t.live(), 1u);
  EXPECT_FALSE(t.tracking(9));
}

TEST(CoturnStatsTracker, BoundedSet) {
  AllocationTracker t(own_is_relay(2));
  const TimePoint t0{};
  EXPECT_EQ(t.on_status(t0, status(1, Status::kNew)).outcome, Outcome::kOpened);
  EXPECT_EQ(t.on_status(t0, status(2, Status::kNew)).outcome, Outcome::kOpened);
  EXPECT_EQ(t.on_status(t0, status(3, Status::kNew)).outcome, Outcome::kOverflow);
  EXPECT_EQ(t.on_status(t0, status(4, Status::kRefreshed)).outcome, Outcome::kOverflow);
  EXPECT_EQ(t.on_status(t0, status(3, Status::kDeleted)).outcome, Outcome::kUnknownDelete);
  EXPECT_EQ(t.live(), 2u);
  for (auto o : {Outcome::kOpened, Outcome::kDuplicateNew, Outcome::kRefreshed, Outcome::kAdopted,
                 Outcome::kClosed, Outcome::kUnknownDelete, Outcome::kOwn, Outcome::kOverflow,
                 Outcome::kNoop}) {
    EXPECT_NE(to_string(o), "unknown");
  }
}

TEST(CoturnStatsTracker, NoOwnPredicateMeansNothingIsOwn) {
  AllocationTracker t(TrackerConfig{});
  EXPECT_EQ(t.on_status(TimePoint{}, status(1, Status::kNew, 600, "1:roam-relay-a")).outcome,
            Outcome::kOpened);
}

// --- StatsExporter metrics, fed directly (no Redis) ----------------------------------------

double value(prometheus::Registry& registry, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : m.label)
        have[l.name] = l.value;
      if (have != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

class ExporterFed : public ::testing::Test {
 protected:
  ExporterFed()
      : factory_(registry_, "relay"),
        exporter_(io_.get_executor(),
                  StatsExporterConfig{.redis = {.port = 1}, .own_user = "roam-relay-test"},
                  factory_) {}

  double v(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    return value(registry_, name, labels);
  }
  void feed(const std::vector<Publication>& ps) {
    for (const auto& p : ps)
      exporter_.on_message(p.channel, p.payload);
  }

  boost::asio::io_context io_;
  prometheus::Registry registry_;
  metrics::Factory factory_;
  StatsExporter exporter_;
};

TEST_F(ExporterFed, RecordedSessionGivesGaugeCountersAndOneLifetime) {
  EXPECT_EQ(v("roam_relay_coturn_stats_connected"), 0);
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);
  feed({kRecordedSession[0]});
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 1);
  EXPECT_EQ(exporter_.live_allocations(), 1u);
  feed({kRecordedSession.begin() + 1, kRecordedSession.end()});
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);
  EXPECT_EQ(exporter_.live_allocations(), 0u);
  EXPECT_EQ(v("roam_relay_coturn_allocation_lifetime_seconds"), 1);

  // Deltas only: equal to coturn's totals, not twice them.
  using L = std::map<std::string, std::string>;
  EXPECT_EQ(
      v("roam_relay_coturn_relayed_packets_total", L{{"side", "client"}, {"direction", "rx"}}),
      5011);
  EXPECT_EQ(v("roam_relay_coturn_relayed_bytes_total", L{{"side", "client"}, {"direction", "rx"}}),
            271300);
  EXPECT_EQ(
      v("roam_relay_coturn_relayed_packets_total", L{{"side", "client"}, {"direction", "tx"}}),
      5011);
  EXPECT_EQ(v("roam_relay_coturn_relayed_bytes_total", L{{"side", "client"}, {"direction", "tx"}}),
            270924);
  EXPECT_EQ(v("roam_relay_coturn_relayed_packets_total", L{{"side", "peer"}, {"direction", "rx"}}),
            5000);
  EXPECT_EQ(v("roam_relay_coturn_relayed_bytes_total", L{{"side", "peer"}, {"direction", "rx"}}),
            250000);
  EXPECT_EQ(v("roam_relay_coturn_relayed_bytes_total", L{{"side", "peer"}, {"direction", "tx"}}),
            250000);

  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "new"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "refreshed"}}), 3);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "deleted"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "traffic"}}), 10);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "total_traffic"}}), 2);
  for (auto kind : {"duplicate_new", "unknown_delete", "adopted", "expired", "overflow"})
    EXPECT_EQ(v("roam_relay_coturn_allocation_anomalies_total", {{"kind", kind}}), 0) << kind;
}

TEST_F(ExporterFed, OwnAllocationsCountTrafficButNotAllocations) {
  const std::string own =
      "turn/realm/roam.test/user/1795352400:roam-relay-test/allocation/"
      "000000000000000042";
  feed({{own + "/status", "new lifetime=600, type=UDP, local=a, remote=b, ssl=NONE, cipher=NONE"}});
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);
  feed({{own + "/traffic", "rcvp=3, rcvb=300, sentp=2, sentb=200"},
        {own + "/traffic/peer", "rcvp=0, rcvb=0, sentp=0, sentb=0"},
        {own + "/status", "deleted"},
        {own + "/total_traffic", "rcvp=3, rcvb=300, sentp=2, sentb=200"}});
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);
  EXPECT_EQ(v("roam_relay_coturn_allocation_lifetime_seconds"), 0);
  EXPECT_EQ(v("roam_relay_coturn_relayed_bytes_total", {{"side", "client"}, {"direction", "rx"}}),
            300);
  EXPECT_EQ(v("roam_relay_coturn_allocation_anomalies_total", {{"kind", "unknown_delete"}}), 0);
}

TEST_F(ExporterFed, GarbageIsCountedNotFatalAndCoturnRestartForgetsAll) {
  feed({{"__XXX__", "__YYY__"},
        {"turn/origin/x", "y"},
        {kAlloc + "/status", "exploded"},
        {kAlloc + "/traffic", "rcvp=1"},
        {std::string(2000, 't'), "x"},
        {kAlloc + "/status", "deleted"}});
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "keepalive"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "ignored"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_stats_messages_total", {{"kind", "malformed"}}), 3);
  EXPECT_EQ(v("roam_relay_coturn_allocation_anomalies_total", {{"kind", "unknown_delete"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);

  feed({{kAlloc + "/status", "new lifetime=600"},
        {kAlloc + "/status", "new lifetime=600"},
        {"turn/user/u/allocation/8/status", "refreshed lifetime=600"}});
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 2);
  EXPECT_EQ(v("roam_relay_coturn_allocation_anomalies_total", {{"kind", "duplicate_new"}}), 1);
  EXPECT_EQ(v("roam_relay_coturn_allocation_anomalies_total", {{"kind", "adopted"}}), 1);
  exporter_.coturn_restarted();
  EXPECT_EQ(v("roam_relay_coturn_allocations"), 0);
  EXPECT_EQ(exporter_.live_allocations(), 0u);
}

}  // namespace
}  // namespace roam::relay::coturn_stats
