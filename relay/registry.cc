#include "relay/registry.h"

#include <spdlog/spdlog.h>

#include "common/redis/command.h"
#include "common/relay/pool_layout.h"
#include "relay/unix_time.h"

namespace roam::relay {

Registry::Registry(redis::Client& redis, const RelayConfig& config, RelayMetrics& metrics)
    : redis_(redis), config_(config), metrics_(metrics) {}

boost::asio::awaitable<void> Registry::beat(const RegistrySnapshot& now) {
  if (!now.healthy) {
    if (registered_) co_await deregister();
    co_return;
  }
  const std::string key = instance_key(config_.instance_id);
  // Three heartbeats of slack: one slow beat must not make a healthy relay vanish.
  const auto ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(config_.heartbeat * 3);
  redis::Command hset = {"HSET",         key,
                         "id",           config_.instance_id,
                         "region",       config_.region,
                         "turn_uri",     config_.turn_uri(),
                         "turn_address", config_.public_turn_address().to_string(),
                         "realm",        config_.realm,
                         "healthy",      "1",
                         "allocations",  std::to_string(now.allocations),
                         "pool",         std::to_string(now.pool),
                         "pool_target",  std::to_string(config_.pool_target),
                         "updated_ms",   std::to_string(unix_ms_now())};
  auto a = co_await redis_.command(std::move(hset));
  auto b = co_await redis::run(redis_, "PEXPIRE", key, std::to_string(ttl_ms.count()));
  auto c = co_await redis::run(redis_, "SADD", instances_key(), config_.instance_id);
  if (!a || !b || !c) {
    metrics_.redis_errors.Increment();
    co_return;
  }
  if (!registered_)
    spdlog::info("registered relay {} ({})", config_.instance_id, config_.turn_uri());
  registered_ = true;
}

boost::asio::awaitable<void> Registry::deregister() {
  auto r = co_await redis::run(redis_, "DEL", instance_key(config_.instance_id));
  auto s = co_await redis::run(redis_, "SREM", instances_key(), config_.instance_id);
  if (!r || !s) {
    metrics_.redis_errors.Increment();
    co_return;
  }
  if (registered_) spdlog::info("deregistered relay {}", config_.instance_id);
  registered_ = false;
}

}  // namespace roam::relay
