#include "relay/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common/auth/turn_rest.h"
#include "common/relay/pool_layout.h"
#include "common/util/host_port.h"

namespace roam::relay {
namespace {

// "host:port" for Redis (names allowed: hiredis resolves them).
void split_host_port(const std::string& text, const char* setting, std::string& host,
                     std::uint16_t& port) {
  auto parsed = parse_host_port(text);
  if (!parsed) throw ConfigError(std::string(setting) + ": " + parsed.error());
  host = parsed->host;
  port = parsed->port;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "relay";
  std::string out;
  for (char c : std::string(buf))
    out.push_back(valid_instance_id(std::string(1, c)) ? c : '-');
  return out.empty() ? "relay" : out;
}

}  // namespace

SocketAddress RelayConfig::public_turn_address() const {
  return {external_ip.value_or(coturn.ip), coturn.port};
}

std::string RelayConfig::turn_uri() const {
  auto a = public_turn_address();
  std::string host = a.ip.is_v4() ? a.ip.to_string() : "[" + a.ip.to_string() + "]";
  return "turn:" + host + ":" + std::to_string(a.port) + "?transport=udp";
}

std::optional<RelayConfig> parse_config(int argc, char** argv, int* exit_code) {
  CLI::App app{
      "roam-relay: sidecar of one coturn. Keeps a pool of reservation tokens in Redis, "
      "registers the relay for roam-signaling and exports coturn's stats to "
      "Prometheus.\nEvery option can also be given as ROAM_RELAY_<NAME> in the "
      "environment or as <name> = value in the --config TOML file."};
  app.set_config("--config", "", "TOML configuration file");
  RelayConfig c;
  std::string coturn = "127.0.0.1:3478", redis = "127.0.0.1:6379", stats_redis, external_ip;
  double heartbeat_s = 1, health_s = 1;
  auto env = [](const char* name) { return std::string("ROAM_RELAY_") + name; };
  app.add_option("--coturn", coturn, "coturn UDP address IP:PORT")
      ->envname(env("COTURN"))
      ->capture_default_str();
  app.add_option("--secret", c.secret, "coturn static-auth-secret (required)")
      ->envname(env("SECRET"));
  app.add_option("--realm", c.realm, "coturn realm (required)")->envname(env("REALM"));
  app.add_option("--redis", redis, "Redis HOST:PORT for the pool and registry")
      ->envname(env("REDIS"))
      ->capture_default_str();
  app.add_option("--stats-redis", stats_redis,
                 "Redis HOST:PORT coturn publishes --redis-statsdb to (default: --redis)")
      ->envname(env("STATS_REDIS"));
  app.add_option("--instance-id", c.instance_id, "unique id of this relay (default: host name)")
      ->envname(env("INSTANCE_ID"));
  app.add_option("--external-ip", external_ip,
                 "public IP of coturn when it is behind NAT (advertised instead of its own)")
      ->envname(env("EXTERNAL_IP"));
  app.add_option("--region", c.region, "region label for relay selection")
      ->envname(env("REGION"))
      ->capture_default_str();
  app.add_option("--pool-target", c.pool_target, "reservation tokens to keep ready")
      ->envname(env("POOL_TARGET"))
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--max-in-flight", c.max_in_flight, "reservations created at once")
      ->envname(env("MAX_IN_FLIGHT"))
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--metrics", c.metrics_listen, "Prometheus listen address IP:PORT")
      ->envname(env("METRICS"))
      ->capture_default_str();
  app.add_option("--heartbeat", heartbeat_s, "seconds between registry heartbeats")
      ->envname(env("HEARTBEAT"))
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  app.add_option("--health-interval", health_s, "seconds between coturn health checks")
      ->envname(env("HEALTH_INTERVAL"))
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  app.add_option("--health-failures", c.health_failures,
                 "failed checks in a row before coturn counts as down")
      ->envname(env("HEALTH_FAILURES"))
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->envname(env("LOG_LEVEL"))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every other parse problem is a configuration error: 2, like ours.
    *exit_code = app.exit(e) == 0 ? 0 : 2;
    return std::nullopt;
  }
  auto address = SocketAddress::parse(coturn);
  if (!address) throw ConfigError("--coturn: expected IP:PORT of coturn, got '" + coturn + "'");
  c.coturn = *address;
  if (c.secret.empty()) {
    throw ConfigError("--secret (ROAM_RELAY_SECRET): coturn's static-auth-secret is required");
  }
  if (c.realm.empty()) throw ConfigError("--realm (ROAM_RELAY_REALM): coturn's realm is required");
  // Every credential the relay mints uses this secret: reject one minting would refuse, now,
  // rather than on the first reservation.
  if (c.secret.size() < auth::turn_rest::kMinSecretSize ||
      c.secret.size() > auth::turn_rest::kMaxSecretSize) {
    throw ConfigError("--secret: " + std::string(auth::turn_rest::describe(
                                         auth::turn_rest::TurnRestError::kBadSecret)));
  }
  split_host_port(redis, "--redis", c.redis_host, c.redis_port);
  if (stats_redis.empty()) {
    c.stats_redis_host = c.redis_host;
    c.stats_redis_port = c.redis_port;
  } else {
    split_host_port(stats_redis, "--stats-redis", c.stats_redis_host, c.stats_redis_port);
  }
  if (c.instance_id.empty()) c.instance_id = hostname();
  if (!valid_instance_id(c.instance_id)) {
    throw ConfigError("--instance-id: 1-64 characters of [A-Za-z0-9._-], got '" + c.instance_id +
                      "'");
  }
  if (!external_ip.empty()) {
    c.external_ip = IpAddress::parse(external_ip);
    if (!c.external_ip)
      throw ConfigError("--external-ip: not an IP address: '" + external_ip + "'");
  }
  if (!SocketAddress::parse(c.metrics_listen)) {
    throw ConfigError("--metrics: expected IP:PORT, got '" + c.metrics_listen + "'");
  }
  c.heartbeat = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(heartbeat_s));
  c.health_interval = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(health_s));
  return c;
}

}  // namespace roam::relay
