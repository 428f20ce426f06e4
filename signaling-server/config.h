// roam-signaling configuration: the same names as flags (--max-sessions), environment variables
// (ROAM_SIGNALING_MAX_SESSIONS) and keys of the TOML file given with --config (max-sessions =
// 64). docs/signaling-server.md lists them.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/util/host_port.h"
#include "common/util/time.h"

namespace roam::signaling {

struct ServerConfig {
  HostPort listen{"0.0.0.0", 8443};
  HostPort admin_listen{"127.0.0.1", 9643};
  std::string cert_file;
  std::string key_file;
  std::string jwt_secret;
  // Also accepted on tokens (never used to mint) while a key rotation is under way; empty: none.
  std::string jwt_previous_secret;
  std::string audience = "roam";
  std::string turn_secret;
  HostPort redis{"127.0.0.1", 6379};
  std::string instance_id;
  std::vector<std::string> allowed_origins;  // "*" allows any Origin
  std::uint32_t max_connections = 100000;
  std::uint32_t max_connections_per_ip = 256;
  std::uint32_t max_message_bytes = 64 * 1024;
  std::uint32_t rate = 50;  // messages per second per connection
  std::uint32_t burst = 100;
  std::uint32_t flood_close_after = 100;  // dropped messages in a row before close 1008
  std::uint32_t max_sessions = 64;        // per connection
  Duration idle_timeout = seconds(60);
  Duration hello_timeout = seconds(10);
  std::uint32_t send_queue = 256;             // messages
  std::uint32_t send_queue_bytes = 1u << 20;  // bytes
  Duration session_ttl = seconds(3600);
  Duration credential_ttl = seconds(600);
  Duration shutdown_grace = seconds(5);
  unsigned threads = 0;  // 0: one per CPU
  std::string log_level = "info";
};

// `roam-signaling token`: mint a development token.
struct TokenCommand {
  std::string jwt_secret;
  std::string audience = "roam";
  std::string peer;
  std::int64_t ttl_seconds = 3600;
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ParsedCommand {
  std::optional<ServerConfig> serve;
  std::optional<TokenCommand> token;
};

// Parses argv (+ environment, + --config TOML). Throws ConfigError with a one-line message
// naming the setting on bad or missing values. Returns nullopt for --help (or a CLI11 parse
// error already printed) with *exit_code set.
std::optional<ParsedCommand> parse_command_line(int argc, char** argv, int* exit_code);

}  // namespace roam::signaling
