// The relays roam-relay sidecars registered in Redis (docs/relay-pool.md "Choosing a relay"),
// cached per I/O thread and refreshed every kRefreshInterval, so a `connect` costs no registry
// round trip. When Redis is down the last known list stays in use (grants then carry
// credentials without a reservation token).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "common/redis/client.h"
#include "common/util/socket_address.h"

namespace roam::signaling {

struct RelayInstance {
  std::string id;
  std::string region;
  std::string turn_uri;
  SocketAddress turn_address;
  bool healthy = false;
  std::int64_t allocations = 0;
  std::int64_t pool = 0;
};

// Parses one instance hash (HGETALL reply as field/value pairs); nullopt if incomplete.
std::optional<RelayInstance> parse_relay_instance(const std::vector<std::string>& fields);

// Healthy relays in the order to try them: region == hint first, then the fewest allocations,
// then the fullest pool (ties by id, so every instance picks alike).
std::vector<RelayInstance> rank_relays(std::vector<RelayInstance> relays,
                                       std::optional<std::string_view> region);

class RelayDirectory {
 public:
  static constexpr std::chrono::seconds kRefreshInterval{1};
  static constexpr std::chrono::milliseconds kRetryInterval{100};
  // Instances read per refresh; more are ignored (and logged once).
  static constexpr std::size_t kMaxInstances = 256;

  explicit RelayDirectory(redis::Client& redis) : redis_(redis) {}
  // Refreshes forever (until the executor stops).
  boost::asio::awaitable<void> run();
  // One refresh; false when Redis did not answer (the old list is kept).
  boost::asio::awaitable<bool> refresh();
  const std::vector<RelayInstance>& relays() const { return relays_; }

 private:
  redis::Client& redis_;
  std::vector<RelayInstance> relays_;
};

}  // namespace roam::signaling
