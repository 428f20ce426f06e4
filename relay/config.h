// roam-relay configuration: the same names as flags (--pool-target), environment variables
// (ROAM_RELAY_POOL_TARGET) and keys of the TOML file given with --config (pool-target = 50).
#pragma once

#include <optional>
#include <string>

#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::relay {

struct RelayConfig {
  SocketAddress coturn;  // coturn's listening address (UDP)
  std::string secret;    // coturn static-auth-secret (TURN REST)
  std::string realm;     // coturn realm
  std::string redis_host = "127.0.0.1";
  std::uint16_t redis_port = 6379;
  std::string stats_redis_host;  // coturn's --redis-statsdb server (default: --redis)
  std::uint16_t stats_redis_port = 0;
  std::string instance_id;               // default: host name
  std::optional<IpAddress> external_ip;  // public IP of coturn when it is behind NAT
  std::string region = "default";
  int pool_target = 50;
  int max_in_flight = 16;  // reservations being created at once
  std::string metrics_listen = "127.0.0.1:9641";
  Duration heartbeat = seconds(1);
  Duration health_interval = seconds(1);
  int health_failures = 3;  // consecutive failed checks before coturn is "down"
  std::string log_level = "info";

  // What agents are told to allocate at: external IP (if any) and coturn's port.
  SocketAddress public_turn_address() const;
  std::string turn_uri() const;  // RFC 7065: turn:HOST:PORT?transport=udp
};

// Parses argv (+ environment, + --config TOML). Throws ConfigError with a one-line message
// naming the setting on bad or missing values; CLI11 handles --help itself (returns nullopt
// with *exit_code set).
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
std::optional<RelayConfig> parse_config(int argc, char** argv, int* exit_code);

}  // namespace roam::relay
