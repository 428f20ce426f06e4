#include "relay/pool/pool_manager.h"

#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "common/redis/command.h"
#include "common/relay/pool_layout.h"
#include "relay/pool/reservation.h"
#include "relay/unix_time.h"

namespace roam::relay {

namespace asio = boost::asio;

PoolManager::PoolManager(asio::any_io_executor executor, redis::Client& redis,
                         PoolManagerConfig config, RelayMetrics& metrics)
    : executor_(executor),
      redis_(redis),
      config_(std::move(config)),
      metrics_(metrics),
      policy_(config_.policy),
      wakeup_(executor) {
  metrics_.pool_target.Set(config_.policy.target);
}

void PoolManager::wake() {
  // Remember the wake-up even if run() is busy in Redis rather than waiting on the timer.
  woken_ = true;
  wakeup_.cancel();
}

void PoolManager::stop() {
  stopping_ = true;
  wake();
}

void PoolManager::on_coturn_status(const CoturnStatus& status) {
  if (status.epoch != coturn_.epoch || !status.healthy) {
    // Whatever is in Redis was made by a coturn process that is gone (or unreachable).
    discard_pending_ = true;
    policy_.reset();
  }
  coturn_ = status;
  wake();
}

asio::awaitable<void> PoolManager::discard(const char* why) {
  auto r = co_await redis::run(redis_, "DEL", pool_key(config_.instance_id));
  if (!r) {
    metrics_.redis_errors.Increment();
    co_return;  // retried on the next tick
  }
  if (!live_.empty() || available_ > 0) {
    spdlog::info("discarded {} pool tokens: {}", live_.size(), why);
  }
  metrics_.tokens_discarded.Increment(static_cast<double>(live_.size()));
  live_.clear();
  available_ = 0;
  metrics_.pool_tokens.Set(0);
  discard_pending_ = false;
}

asio::awaitable<void> PoolManager::maintain() {
  const std::string key = pool_key(config_.instance_id);
  const std::int64_t now = unix_ms_now();
  // Expire: members whose usable life is over (score = usable-until).
  auto removed = co_await redis::run(redis_, "ZREMRANGEBYSCORE", key, "-inf", std::to_string(now));
  auto members = co_await redis::run(redis_, "ZRANGE", key, "0", "-1");
  if (!removed || !members || !members->as_array()) {
    metrics_.redis_errors.Increment();
    co_return;
  }
  if (auto n = removed->as_integer(); n && *n > 0) metrics_.tokens_expired.Increment(double(*n));
  std::set<std::string> present;
  for (const auto& m : *members->as_array()) {
    if (const auto* s = m.as_string()) present.insert(*s);
  }
  // Ours and gone before its deadline: a signaling server took it.
  for (auto it = live_.begin(); it != live_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second > now) metrics_.tokens_taken.Increment();
    it = live_.erase(it);
  }
  available_ = static_cast<int>(present.size());
  metrics_.pool_tokens.Set(available_);
}

asio::awaitable<void> PoolManager::create_one(std::uint64_t epoch) {
  const std::int64_t started_ms = unix_ms_now();
  ReservationRequest request{config_.coturn, config_.credentials(), seconds(5)};
  auto made = co_await make_reservation(executor_, std::move(request));
  if (epoch != coturn_.epoch || stopping_) co_return;  // a restart voided it meanwhile
  if (!made) {
    policy_.on_failed(Clock::now(), made.error().failure);
    metrics_.reservation_failure(made.error().failure).Increment();
    if (policy_.exhausted()) {
      spdlog::warn("token pool exhausted: coturn refuses reservations ({} {}); backing off",
                   made.error().code, made.error().reason);
    } else {
      spdlog::debug("reservation failed: {}", turn::describe(made.error().failure));
    }
    wake();
    co_return;
  }
  PoolEntry entry{made->relayed, made->token,
                  started_ms + relay::kReservationLifetime.count()};  // conservative: from start
  if (config_.external_ip) entry.relay.ip = *config_.external_ip;
  const std::int64_t usable_until = entry.expires_ms - config_.expiry_margin.count();
  std::string member = encode_entry(entry);
  auto r = co_await redis::run(redis_, "ZADD", pool_key(config_.instance_id),
                               std::to_string(usable_until), member);
  if (!r || epoch != coturn_.epoch) {
    if (!r) metrics_.redis_errors.Increment();
    policy_.on_failed(Clock::now(), turn::Failure::kServerError);
    wake();
    co_return;
  }
  live_[member] = usable_until;
  policy_.on_created();
  metrics_.tokens_created.Increment();
  metrics_.refill_seconds.Observe(std::chrono::duration<double>(made->latency).count());
  ++available_;
  metrics_.pool_tokens.Set(available_);
  wake();
}

asio::awaitable<void> PoolManager::run() {
  while (!stopping_) {
    metrics_.redis_connected.Set(redis_.connected() ? 1 : 0);
    if (redis_.connected()) {
      if (discard_pending_ || (!coturn_.healthy && available_ > 0)) {
        co_await discard(coturn_.healthy ? "coturn restarted" : "coturn is down");
      }
      if (coturn_.healthy && !discard_pending_) {
        co_await maintain();
        int wanted = policy_.wanted(Clock::now(), available_);
        for (int i = 0; i < wanted; ++i) {
          policy_.on_started();
          asio::co_spawn(executor_, create_one(coturn_.epoch), asio::detached);
        }
      }
    }
    metrics_.pool_in_flight.Set(policy_.in_flight());
    metrics_.pool_exhausted.Set(policy_.exhausted() ? 1 : 0);
    TimePoint next = Clock::now() + config_.tick;
    if (policy_.retry_at() != kNever)
      next = std::min(next, std::max(Clock::now(), policy_.retry_at()));
    if (woken_) {
      woken_ = false;
      continue;
    }
    wakeup_.expires_at(next);
    co_await wakeup_.async_wait(asio::as_tuple(asio::use_awaitable));
    woken_ = false;
  }
}

}  // namespace roam::relay
