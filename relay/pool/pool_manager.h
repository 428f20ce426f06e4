// Keeps roam-relay's reservation-token pool in Redis at its target (docs/relay-pool.md):
// expires entries at their deadline, counts what signaling servers took, creates new
// reservations as the policy allows, and throws the pool away when coturn restarts.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/redis/client.h"
#include "relay/health/coturn_monitor.h"
#include "relay/pool/pool_policy.h"
#include "relay/relay_metrics.h"

namespace roam::relay {

struct PoolManagerConfig {
  std::string instance_id;
  SocketAddress coturn;
  std::optional<IpAddress> external_ip;  // replaces coturn's relay IP in stored entries
  PoolPolicyConfig policy;
  Duration tick = milliseconds(250);
  std::chrono::milliseconds expiry_margin{20'000};
  std::function<turn::Credentials()> credentials;
};

class PoolManager {
 public:
  PoolManager(boost::asio::any_io_executor executor, redis::Client& redis, PoolManagerConfig config,
              RelayMetrics& metrics);

  boost::asio::awaitable<void> run();
  void stop();
  // From the coturn monitor: no reservations while unhealthy; a new epoch voids the pool.
  void on_coturn_status(const CoturnStatus& status);
  // Deletes the pool key (shutdown, or coturn gone).
  boost::asio::awaitable<void> discard(const char* why);

  int available() const { return available_; }
  bool exhausted() const { return policy_.exhausted(); }

 private:
  boost::asio::awaitable<void> maintain();
  boost::asio::awaitable<void> create_one(std::uint64_t epoch);
  void wake();

  boost::asio::any_io_executor executor_;
  redis::Client& redis_;
  PoolManagerConfig config_;
  RelayMetrics& metrics_;
  PoolPolicy policy_;
  boost::asio::steady_timer wakeup_;
  CoturnStatus coturn_;
  bool discard_pending_ = false;
  bool stopping_ = false;
  bool woken_ = false;
  int available_ = 0;
  // Tokens this sidecar put in Redis and has not seen leave yet, by usable-until (Unix ms).
  std::map<std::string, std::int64_t> live_;
};

}  // namespace roam::relay
