// roam-relay's entry in the relay registry (docs/relay-pool.md): a hash with a TTL, refreshed
// every heartbeat while coturn is healthy, deleted when it is not or when the sidecar stops.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/redis/client.h"
#include "relay/config.h"
#include "relay/relay_metrics.h"

namespace roam::relay {

struct RegistrySnapshot {
  bool healthy = false;
  int pool = 0;
  std::int64_t allocations = 0;
};

class Registry {
 public:
  Registry(redis::Client& redis, const RelayConfig& config, RelayMetrics& metrics);

  // One heartbeat: registers (healthy) or deregisters (unhealthy).
  boost::asio::awaitable<void> beat(const RegistrySnapshot& now);
  boost::asio::awaitable<void> deregister();

 private:
  redis::Client& redis_;
  const RelayConfig& config_;
  RelayMetrics& metrics_;
  bool registered_ = false;
};

}  // namespace roam::relay
