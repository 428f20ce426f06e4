// roam-relay as a process against real redis-server and turnserver: pool fill, token take and
// redemption by an independent TURN client, expiry, coturn and Redis restarts, Prometheus.
#include <ctime>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "common/auth/turn_rest.h"
#include "common/relay/pool_layout.h"
#include "tests/support/servers.h"
#include "tests/support/sync_clients.h"
#include "tests/support/turn_session.h"
#include "tests/support/wait.h"

namespace roam::relay {
namespace {

using namespace std::chrono_literals;
using test::Coturn;
using test::Process;
using test::RedisServer;
using test::RespReply;
using test::SyncRedis;

constexpr int kPoolTarget = 8;
constexpr char kInstance[] = "relay-test-1";

using test::eventually;

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    redis_ = RedisServer::start(&skip);
    if (!redis_) GTEST_SKIP() << skip;
    test::CoturnOptions options;
    options.statsdb_redis_port = redis_->port();
    coturn_ = Coturn::start(options, &skip);
    if (!coturn_) GTEST_SKIP() << skip;
    metrics_port_ = test::free_tcp_port();
    start_relay();
  }

  void TearDown() override { relay_.stop(); }

  void start_relay() {
    relay_ = Process::spawn({std::string(ROAM_BINARY_DIR) + "/bin/roam-relay",
                             "--coturn",
                             coturn_->address().to_string(),
                             "--secret",
                             coturn_->options().secret,
                             "--realm",
                             coturn_->options().realm,
                             "--redis",
                             "127.0.0.1:" + std::to_string(redis_->port()),
                             "--instance-id",
                             kInstance,
                             "--region",
                             "test-region",
                             "--pool-target",
                             std::to_string(kPoolTarget),
                             "--metrics",
                             "127.0.0.1:" + std::to_string(metrics_port_),
                             "--heartbeat",
                             "0.2",
                             "--health-interval",
                             "0.25",
                             "--health-failures",
                             "3",
                             "--log-level",
                             "debug"},
                            dir_.path() / "relay.log");
  }

  std::string relay_log() const { return test::read_file(dir_.path() / "relay.log"); }

  std::int64_t pool_size() {
    SyncRedis r(redis_->port());
    return r.command({"ZCARD", pool_key(kInstance)}).integer;
  }

  std::set<std::string> pool_members() {
    SyncRedis r(redis_->port());
    std::set<std::string> out;
    for (const auto& e : r.command({"ZRANGE", pool_key(kInstance), "0", "-1"}).elements) {
      out.insert(e.text);
    }
    return out;
  }

  std::optional<PoolEntry> take(int min_remaining_ms = 10000) {
    SyncRedis r(redis_->port());
    auto reply = r.command({"EVAL", std::string(take_token_script()), "1", pool_key(kInstance),
                            std::to_string(min_remaining_ms)});
    EXPECT_NE(reply.type, RespReply::Type::kError) << reply.text;
    if (reply.type != RespReply::Type::kString) return std::nullopt;
    auto e = decode_entry(reply.text);
    EXPECT_TRUE(e.has_value()) << reply.text;
    return e ? std::optional<PoolEntry>(*e) : std::nullopt;
  }

  std::optional<double> metric(const std::string& name, const std::string& labels = "") {
    auto body = test::http_get(metrics_port_, "/metrics");
    if (!body) return std::nullopt;
    return test::scrape_value(*body, name, labels);
  }

  bool pool_full() {
    return eventually([&] { return pool_size() == kPoolTarget; }, 10s);
  }

  turn::Credentials credentials(const std::string& peer) {
    auto c = auth::turn_rest::mint(coturn_->options().secret, peer,
                                   static_cast<std::int64_t>(std::time(nullptr)), 600s);
    return {c->username, c->password};
  }

  // An independent TURN client redeems the entry: it must get exactly the advertised address.
  void expect_redeems(const PoolEntry& entry) {
    test::TurnSession session(coturn_->address(), credentials("bob"));
    session.client().allocate(Clock::now(), {.reservation_token = entry.token});
    ASSERT_TRUE(session.run_until([&] {
      return session.event<turn::Allocated>() || session.event<turn::AllocationFailed>();
    })) << coturn_->log();
    auto allocated = session.event<turn::Allocated>();
    ASSERT_TRUE(allocated) << turn::describe(session.event<turn::AllocationFailed>()->failure);
    EXPECT_EQ(allocated->relayed, entry.relay);
  }

  test::TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Coturn> coturn_;
  std::uint16_t metrics_port_ = 0;
  Process relay_;
};

TEST_F(RelayTest, PoolFillsToTargetAndInstanceRegisters) {
  ASSERT_TRUE(pool_full()) << relay_log();
  SyncRedis r(redis_->port());
  ASSERT_TRUE(eventually(
      [&] {
        return r.command({"HGET", instance_key(kInstance), "pool"}).text ==
               std::to_string(kPoolTarget);
      },
      3s));
  auto hash = r.command({"HGETALL", instance_key(kInstance)});
  std::map<std::string, std::string> fields;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    fields[hash.elements[i].text] = hash.elements[i + 1].text;
  }
  EXPECT_EQ(fields["healthy"], "1");
  EXPECT_EQ(fields["region"], "test-region");
  EXPECT_EQ(fields["turn_address"], coturn_->address().to_string());
  EXPECT_EQ(fields["turn_uri"], "turn:" + coturn_->address().to_string() + "?transport=udp");
  EXPECT_EQ(fields["realm"], coturn_->options().realm);
  EXPECT_EQ(fields["pool_target"], std::to_string(kPoolTarget));
  auto ttl = r.command({"PTTL", instance_key(kInstance)}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 600);  // 3 heartbeats of 0.2 s
  EXPECT_EQ(r.command({"SISMEMBER", instances_key(), kInstance}).integer, 1);
  // Every entry: coturn's relay IP, an odd port (E+1) in its range, ~300 s of life.
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (const auto& m : pool_members()) {
    auto e = decode_entry(m);
    ASSERT_TRUE(e) << m;
    EXPECT_EQ(e->relay.ip, coturn_->address().ip);
    EXPECT_EQ(e->relay.port % 2, 1);
    EXPECT_GE(e->relay.port, coturn_->min_relay_port());
    EXPECT_LE(e->relay.port, coturn_->max_relay_port());
    EXPECT_GT(e->expires_ms, now_ms + 250'000);
    EXPECT_LE(e->expires_ms, now_ms + 300'000);
  }
  EXPECT_EQ(metric("roam_relay_pool_tokens"), kPoolTarget);
  EXPECT_EQ(metric("roam_relay_coturn_up"), 1);
}

TEST_F(RelayTest, TakenTokenRedeemsToTheAdvertisedAddressAndPoolRefills) {
  ASSERT_TRUE(pool_full()) << relay_log();
  auto entry = take();
  ASSERT_TRUE(entry);
  expect_redeems(*entry);
  ASSERT_TRUE(pool_full()) << relay_log();
  EXPECT_TRUE(eventually([&] { return metric("roam_relay_pool_tokens_taken_total") == 1; }, 3s));
  EXPECT_GE(metric("roam_relay_pool_tokens_created_total").value_or(0), kPoolTarget + 1);
  // A second take gets a different token, also good.
  auto second = take();
  ASSERT_TRUE(second);
  EXPECT_NE(second->token, entry->token);
  expect_redeems(*second);
}

TEST_F(RelayTest, ExpiredOrNearlyExpiredTokensAreNeverHandedOut) {
  ASSERT_TRUE(pool_full()) << relay_log();
  SyncRedis r(redis_->port());
  // Age every real entry artificially: usable-until 5 s from now (less than the 10 s a taker
  // needs), and plant one long expired.
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (const auto& m : pool_members()) {
    r.command({"ZADD", pool_key(kInstance), "XX", std::to_string(now_ms + 5000), m});
  }
  PoolEntry stale{*SocketAddress::parse("127.0.0.1:1"), 42, now_ms - 10'000};
  r.command({"ZADD", pool_key(kInstance), std::to_string(now_ms - 30'000), encode_entry(stale)});
  auto got = take(10'000);
  EXPECT_FALSE(got) << "handed out a token with less than 10 s left";
  // The sidecar removes what is past its deadline and counts it as expired, then refills.
  EXPECT_TRUE(eventually([&] { return !pool_members().contains(encode_entry(stale)); }, 3s));
  EXPECT_TRUE(eventually([&] { return metric("roam_relay_pool_tokens_expired_total") >= 1; }, 3s));
  EXPECT_TRUE(eventually([&] { return pool_size() >= 1 && take(10'000).has_value(); }, 10s))
      << relay_log();
}

TEST_F(RelayTest, CoturnDownDiscardsPoolThenRefillsWithFreshTokens) {
  ASSERT_TRUE(pool_full()) << relay_log();
  auto before = pool_members();
  coturn_->kill(/*restart=*/false);
  SyncRedis r(redis_->port());
  EXPECT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 0;
      },
      5s))
      << relay_log();
  EXPECT_TRUE(eventually([&] { return pool_size() == 0; }, 5s));
  EXPECT_TRUE(eventually([&] { return metric("roam_relay_coturn_up") == 0; }, 3s));

  coturn_->kill(/*restart=*/true);  // start it again on the same ports
  ASSERT_TRUE(pool_full()) << relay_log();
  EXPECT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 1;
      },
      5s));
  for (const auto& m : pool_members())
    EXPECT_FALSE(before.contains(m)) << "old token kept: " << m;
  auto entry = take();
  ASSERT_TRUE(entry);
  expect_redeems(*entry);
}

TEST_F(RelayTest, FastCoturnRestartIsDetectedByTheCanary) {
  ASSERT_TRUE(pool_full()) << relay_log();
  auto before = pool_members();
  // Faster than the health checks can notice an outage: only the lost canary allocation tells.
  coturn_->kill(/*restart=*/true);
  EXPECT_TRUE(eventually(
      [&] {
        auto now = pool_members();
        if (now.size() != static_cast<std::size_t>(kPoolTarget)) return false;
        for (const auto& m : now) {
          if (before.contains(m)) return false;
        }
        return true;
      },
      10s))
      << relay_log();
  EXPECT_GE(metric("roam_relay_coturn_restarts_total").value_or(0), 1);
  auto entry = take();
  ASSERT_TRUE(entry);
  expect_redeems(*entry);
}

TEST_F(RelayTest, RedisRestartIsSurvived) {
  ASSERT_TRUE(pool_full()) << relay_log();
  redis_->kill(/*restart=*/true);  // comes back empty (no persistence)
  EXPECT_TRUE(relay_.running()) << relay_log();
  ASSERT_TRUE(pool_full()) << relay_log();
  SyncRedis r(redis_->port());
  EXPECT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 1;
      },
      5s));
  EXPECT_TRUE(relay_.running());
  auto entry = take();
  ASSERT_TRUE(entry);
  expect_redeems(*entry);
}

TEST_F(RelayTest, RegistryEntryDisappearsWhenTheSidecarStops) {
  ASSERT_TRUE(pool_full()) << relay_log();
  SyncRedis r(redis_->port());
  ASSERT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 1;
      },
      3s));
  // Graceful stop: deregisters and drops its pool at once.
  relay_.signal(SIGTERM);
  EXPECT_TRUE(eventually([&] { return !relay_.running(); }, 5s));
  EXPECT_EQ(r.command({"EXISTS", instance_key(kInstance)}).integer, 0);
  EXPECT_EQ(r.command({"EXISTS", pool_key(kInstance)}).integer, 0);
  EXPECT_EQ(r.command({"SISMEMBER", instances_key(), kInstance}).integer, 0);
  // Crash: the entry expires by itself within three heartbeats (3 × 0.2 s).
  start_relay();
  ASSERT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 1;
      },
      5s));
  relay_.signal(SIGKILL);
  EXPECT_TRUE(eventually(
      [&] {
        return r.command({"EXISTS", instance_key(kInstance)}).integer == 0;
      },
      1500ms));
}

TEST_F(RelayTest, PrometheusScrapesPoolAndRelayedTraffic) {
  ASSERT_TRUE(pool_full()) << relay_log();
  std::string skip;
  auto prometheus = test::PrometheusServer::start({metrics_port_}, &skip);
  if (!prometheus) GTEST_SKIP() << skip;

  // Relay traffic through coturn both ways, then close the allocation so coturn publishes
  // its final traffic figures.
  test::TurnSession s(coturn_->address(), credentials("alice"));
  test::UdpSocket peer;
  s.client().allocate(Clock::now(), {});
  ASSERT_TRUE(s.wait_for<turn::Allocated>());
  s.client().create_permission(Clock::now(), peer.local_address().ip);
  ASSERT_TRUE(s.wait_for<turn::PermissionCreated>());
  ASSERT_TRUE(s.client().bind_channel(Clock::now(), peer.local_address()));
  ASSERT_TRUE(s.wait_for<turn::ChannelBound>());
  const auto relayed = *s.client().relayed_address();
  for (int i = 0; i < 50; ++i) {
    auto out = s.client().wrap(peer.local_address(), as_bytes("hello through the relay"));
    s.socket().send_to(coturn_->address(), *out);
    peer.send_to(relayed, as_bytes("hello back"));
  }
  s.client().deallocate(Clock::now());
  ASSERT_TRUE(s.wait_for<turn::Deallocated>());

  auto value_of = [&](const std::string& promql) -> std::optional<std::string> {
    auto body = prometheus->query(promql);
    if (!body || body->find("\"result\":[{") == std::string::npos) return std::nullopt;
    return body;
  };
  EXPECT_TRUE(eventually([&] { return value_of("roam_relay_pool_tokens").has_value(); }, 20s))
      << prometheus->log();
  EXPECT_TRUE(eventually(
      [&] {
        return value_of("roam_relay_pool_tokens == " + std::to_string(kPoolTarget)).has_value();
      },
      10s))
      << prometheus->query("roam_relay_pool_tokens").value_or("no answer") << relay_log();
  EXPECT_TRUE(eventually(
      [&] { return value_of("sum(roam_relay_coturn_relayed_bytes_total) > 0").has_value(); }, 20s))
      << prometheus->query("roam_relay_coturn_relayed_bytes_total").value_or("no answer");
  auto up = value_of("up{job=\"roam\"} == 1");
  EXPECT_TRUE(up.has_value());
}

TEST(RelayConfig, MissingSecretIsAOneLineErrorNamingTheSetting) {
  auto dir = test::TempDir();
  auto p = Process::spawn({std::string(ROAM_BINARY_DIR) + "/bin/roam-relay", "--realm", "r"},
                          dir.path() / "out.log");
  int status = 0;
  for (int i = 0; i < 200 && p.running(); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(p.running());
  auto out = test::read_file(dir.path() / "out.log");
  EXPECT_NE(out.find("--secret"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  (void)status;
}

TEST(RelayConfig, BadValuesNameTheSetting) {
  for (auto [flag, value] :
       std::vector<std::pair<std::string, std::string>>{{"--coturn", "nonsense"},
                                                        {"--redis", "localhost"},
                                                        {"--instance-id", "has space"},
                                                        {"--external-ip", "1.2.3"},
                                                        {"--secret", "too-short"}}) {
    auto dir = test::TempDir();
    auto p = Process::spawn({std::string(ROAM_BINARY_DIR) + "/bin/roam-relay", "--secret",
                             "0123456789abcdef", "--realm", "r", flag, value},
                            dir.path() / "out.log");
    for (int i = 0; i < 200 && p.running(); ++i)
      std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(p.running()) << flag;
    auto out = test::read_file(dir.path() / "out.log");
    EXPECT_NE(out.find(flag), std::string::npos) << out;
  }
}

TEST(RelayConfig, TomlFileAndEnvironmentUseTheFlagNames) {
  test::TempDir dir;
  {
    std::ofstream toml(dir.path() / "relay.toml");
    toml << "secret = \"0123456789abcdef\"\nrealm = \"r\"\ncoturn = \"not-an-address\"\n";
  }
  auto p = Process::spawn({std::string(ROAM_BINARY_DIR) + "/bin/roam-relay", "--config",
                           (dir.path() / "relay.toml").string()},
                          dir.path() / "toml.log");
  for (int i = 0; i < 200 && p.running(); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(p.running());
  // The file's secret and realm were read (else the error would name them), its coturn too.
  auto out = test::read_file(dir.path() / "toml.log");
  EXPECT_NE(out.find("--coturn"), std::string::npos) << out;
  EXPECT_NE(out.find("not-an-address"), std::string::npos) << out;

  ::setenv("ROAM_RELAY_SECRET", "0123456789abcdef", 1);
  ::setenv("ROAM_RELAY_REALM", "r", 1);
  ::setenv("ROAM_RELAY_POOL_TARGET", "-5", 1);
  auto q =
      Process::spawn({std::string(ROAM_BINARY_DIR) + "/bin/roam-relay"}, dir.path() / "env.log");
  for (int i = 0; i < 200 && q.running(); ++i)
    std::this_thread::sleep_for(10ms);
  ::unsetenv("ROAM_RELAY_SECRET");
  ::unsetenv("ROAM_RELAY_REALM");
  ::unsetenv("ROAM_RELAY_POOL_TARGET");
  EXPECT_FALSE(q.running());
  out = test::read_file(dir.path() / "env.log");
  EXPECT_NE(out.find("--pool-target"), std::string::npos) << out;
}

TEST(RelayConfig, UnreachableCoturnAndRedisKeepTheDaemonRetrying) {
  // A daemon must ride out dependencies that start later: it stays up, reports coturn down
  // and Redis disconnected in its metrics, and logs why.
  auto dir = test::TempDir();
  auto metrics_port = test::free_tcp_port();
  auto p = Process::spawn(
      {std::string(ROAM_BINARY_DIR) + "/bin/roam-relay", "--secret", "0123456789abcdef", "--realm",
       "r", "--coturn", "127.0.0.1:" + std::to_string(test::free_udp_port()), "--redis",
       "127.0.0.1:" + std::to_string(test::free_tcp_port()), "--metrics",
       "127.0.0.1:" + std::to_string(metrics_port), "--health-interval", "0.2"},
      dir.path() / "out.log");
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(p.running()) << test::read_file(dir.path() / "out.log");
  auto body = test::http_get(metrics_port, "/metrics");
  ASSERT_TRUE(body);
  EXPECT_EQ(test::scrape_value(*body, "roam_relay_coturn_up"), 0);
  EXPECT_EQ(test::scrape_value(*body, "roam_relay_redis_connected"), 0);
  auto log = test::read_file(dir.path() / "out.log");
  EXPECT_NE(log.find("redis"), std::string::npos) << log;
  p.signal(SIGTERM);
  for (int i = 0; i < 300 && p.running(); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(p.running()) << "SIGTERM must stop it promptly";
}

}  // namespace
}  // namespace roam::relay
