#include "relay/relay_service.h"

#include <ctime>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/auth/turn_rest.h"
#include "common/metrics/metrics.h"
#include "common/redis/client.h"
#include "relay/health/coturn_monitor.h"
#include "relay/pool/pool_manager.h"
#include "relay/registry.h"
#include "relay/relay_metrics.h"
#include "relay/stats/stats_exporter.h"

namespace roam::relay {

namespace asio = boost::asio;

struct RelayService::Impl {
  explicit Impl(RelayConfig c)
      : config(std::move(c)),
        metrics_server(metrics::ServerOptions{.listen = config.metrics_listen}),
        factory(metrics_server.factory("relay")),
        metrics(factory),
        redis(io.get_executor(),
              redis::Options{.host = config.redis_host, .port = config.redis_port}),
        monitor(io.get_executor(),
                CoturnMonitorConfig{.coturn = config.coturn,
                                    .interval = config.health_interval,
                                    .failures_before_down = config.health_failures,
                                    .credentials =
                                        [this] {
                                          // Outlives the 30 min canary.
                                          return credentials(std::chrono::hours(1));
                                        }}),
        pool(io.get_executor(), redis,
             PoolManagerConfig{
                 .instance_id = config.instance_id,
                 .coturn = config.coturn,
                 .external_ip = config.external_ip,
                 .policy = {.target = config.pool_target, .max_in_flight = config.max_in_flight},
                 .credentials = [this] { return credentials(std::chrono::minutes(10)); }},
             metrics),
        registry(redis, config, metrics),
        stats(io.get_executor(),
              StatsExporterConfig{.redis = redis::Options{.host = config.stats_redis_host,
                                                          .port = config.stats_redis_port},
                                  .own_user = own_user()},
              factory),
        signals(io, SIGINT, SIGTERM),
        heartbeat(io) {}

  // The pool's and canary's TURN REST user: "<expiry>:roam-relay-<id>" (the stats exporter
  // leaves these allocations out of the client figures).
  std::string own_user() const { return "roam-relay-" + config.instance_id; }

  turn::Credentials credentials(std::chrono::seconds ttl) const {
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto c = auth::turn_rest::mint(config.secret, own_user(), now, ttl);
    if (!c) throw std::runtime_error(std::string(auth::turn_rest::describe(c.error())));
    return {c->username, c->password};
  }

  asio::awaitable<void> heartbeat_loop() {
    while (!stopping) {
      if (redis.connected()) {
        co_await registry.beat(
            RegistrySnapshot{.healthy = monitor.status().healthy,
                             .pool = pool.available(),
                             .allocations = static_cast<std::int64_t>(stats.live_allocations())});
      }
      heartbeat.expires_after(config.heartbeat);
      co_await heartbeat.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::awaitable<void> shutdown() {
    stopping = true;
    heartbeat.cancel();
    monitor.stop();
    pool.stop();
    if (redis.connected()) {
      co_await registry.deregister();
      co_await pool.discard("roam-relay is stopping");
    }
    spdlog::info("roam-relay stopped");
    io.stop();
  }

  void begin_shutdown() {
    if (stopping) return;
    asio::co_spawn(io, shutdown(), asio::detached);
  }

  RelayConfig config;
  asio::io_context io;
  metrics::Server metrics_server;
  metrics::Factory factory;
  RelayMetrics metrics;
  redis::Client redis;
  CoturnMonitor monitor;
  PoolManager pool;
  Registry registry;
  StatsExporter stats;
  asio::signal_set signals;
  asio::steady_timer heartbeat;
  std::uint64_t last_epoch = 0;
  bool stopping = false;
};

RelayService::RelayService(RelayConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
RelayService::~RelayService() = default;

std::uint16_t RelayService::metrics_port() const {
  return impl_->metrics_server.port();
}

void RelayService::stop() {
  asio::post(impl_->io, [this] { impl_->begin_shutdown(); });
}

void RelayService::run() {
  auto& s = *impl_;
  spdlog::info("roam-relay {}: coturn {}, redis {}:{}, pool target {}, metrics on port {}",
               s.config.instance_id, s.config.coturn.to_string(), s.config.redis_host,
               s.config.redis_port, s.config.pool_target, s.metrics_server.port());
  s.redis.set_observer([&s](const redis::ConnectionEvent& e) {
    s.metrics.redis_connected.Set(e.kind == redis::ConnectionEvent::Kind::kConnected ? 1 : 0);
    if (e.kind == redis::ConnectionEvent::Kind::kConnected) {
      spdlog::info("redis connected");
    } else {
      spdlog::warn("redis {}: {}; retrying in {:.0f} ms", redis::to_string(e.kind),
                   redis::to_string(e.cause), to_ms(e.retry_in));
    }
  });
  s.redis.start();
  s.stats.start();
  s.signals.async_wait([&s](const boost::system::error_code& ec, int) {
    if (!ec) s.begin_shutdown();
  });
  asio::co_spawn(s.io, s.monitor.run([&s](const CoturnStatus& status) {
    s.metrics.coturn_up.Set(status.healthy ? 1 : 0);
    if (status.epoch != s.last_epoch) {
      // Every allocation died with the old process; none will say "deleted".
      if (s.last_epoch != 0) s.metrics.coturn_restarts.Increment();
      s.stats.coturn_restarted();
      s.last_epoch = status.epoch;
    }
    s.pool.on_coturn_status(status);
  }),
                 asio::detached);
  asio::co_spawn(s.io, s.pool.run(), asio::detached);
  asio::co_spawn(s.io, s.heartbeat_loop(), asio::detached);
  s.io.run();
}

}  // namespace roam::relay
