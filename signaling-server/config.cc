#include "signaling-server/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common/auth/jwt.h"
#include "common/auth/turn_rest.h"
#include "common/signaling/message.h"

namespace roam::signaling {
namespace {

std::string env(const char* name) {
  return std::string("ROAM_SIGNALING_") + name;
}

HostPort host_port(const std::string& text, const char* setting, bool allow_zero) {
  auto parsed = parse_host_port(text, allow_zero);
  if (!parsed) throw ConfigError(std::string(setting) + ": " + parsed.error());
  return *parsed;
}

std::string default_instance_id() {
  char buf[200] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) std::snprintf(buf, sizeof buf, "signaling");
  std::string out;
  for (char c : std::string(buf))
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
  return out + "-" + std::to_string(::getpid());
}

void check_jwt_secret(const std::string& secret, std::string_view option = "--jwt-secret",
                      std::string_view env = "ROAM_SIGNALING_JWT_SECRET") {
  if (secret.size() < auth::jwt::kMinKeySize) {
    throw ConfigError(std::string(option) + " (" + std::string(env) + "): at least " +
                      std::to_string(auth::jwt::kMinKeySize) +
                      " bytes are required (RFC 7518 §3.2), e.g. from `head -c 32 /dev/urandom "
                      "| base64`");
  }
}

Duration whole_seconds(std::uint32_t s) {
  return std::chrono::seconds(s);
}

}  // namespace

std::optional<ParsedCommand> parse_command_line(int argc, char** argv, int* exit_code) {
  CLI::App app{
      "roam-signaling: WebSocket-over-TLS rendezvous for Roam agents (docs/signaling-protocol.md)."
      "\nEvery option can also be given as ROAM_SIGNALING_<NAME> in the environment or as "
      "<name> = value in the --config TOML file."};
  app.set_config("--config", "", "TOML configuration file");
  ServerConfig c;
  std::string listen = "0.0.0.0:8443", admin = "127.0.0.1:9643", redis = "127.0.0.1:6379";
  std::uint32_t idle_s = 60, hello_s = 10, session_ttl_s = 3600, credential_ttl_s = 600,
                grace_s = 5;
  app.add_option("--listen", listen, "WSS listen address HOST:PORT (port 0: any free port)")
      ->envname(env("LISTEN"))
      ->capture_default_str();
  app.add_option("--admin-listen", admin, "HTTP address for /healthz and /metrics")
      ->envname(env("ADMIN_LISTEN"))
      ->capture_default_str();
  app.add_option("--cert", c.cert_file, "PEM certificate chain (required)")->envname(env("CERT"));
  app.add_option("--key", c.key_file, "PEM private key (required)")->envname(env("KEY"));
  app.add_option("--jwt-secret", c.jwt_secret, "HS256 key for peer tokens, >= 32 bytes (required)")
      ->envname(env("JWT_SECRET"));
  app.add_option("--jwt-previous-secret", c.jwt_previous_secret,
                 "the HS256 key before --jwt-secret, still accepted during a key rotation")
      ->envname(env("JWT_PREVIOUS_SECRET"));
  app.add_option("--audience", c.audience, "JWT audience (aud)")
      ->envname(env("AUDIENCE"))
      ->capture_default_str();
  app.add_option("--turn-secret", c.turn_secret,
                 "coturn static-auth-secret for TURN REST credentials (required)")
      ->envname(env("TURN_SECRET"));
  app.add_option("--redis", redis, "Redis HOST:PORT")->envname(env("REDIS"))->capture_default_str();
  app.add_option("--instance-id", c.instance_id, "unique id of this instance (default host-pid)")
      ->envname(env("INSTANCE_ID"));
  app.add_option("--allowed-origin", c.allowed_origins,
                 "Origin allowed in the WebSocket upgrade (repeatable; * = any). Requests "
                 "without Origin are always allowed")
      ->envname(env("ALLOWED_ORIGIN"))
      ->delimiter(',');
  auto count = [&](const char* flag, const char* name, std::uint32_t& value, const char* help,
                   std::uint32_t min, std::uint32_t max) {
    app.add_option(flag, value, help)
        ->envname(env(name))
        ->check(CLI::Range(min, max))
        ->capture_default_str();
  };
  count("--max-connections", "MAX_CONNECTIONS", c.max_connections, "connections at once", 1,
        10'000'000);
  count("--max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", c.max_connections_per_ip,
        "connections at once from one client IP", 1, 10'000'000);
  count("--max-message-bytes", "MAX_MESSAGE_BYTES", c.max_message_bytes,
        "largest accepted message (close 1009 beyond)", 1024,
        static_cast<std::uint32_t>(kMaxMessageSize));
  count("--rate", "RATE", c.rate, "messages per second per connection", 1, 10'000'000);
  count("--burst", "BURST", c.burst, "rate-limit burst", 1, 10'000'000);
  count("--flood-close-after", "FLOOD_CLOSE_AFTER", c.flood_close_after,
        "dropped messages in a row before close 1008", 1, 10'000'000);
  count("--max-sessions", "MAX_SESSIONS", c.max_sessions, "sessions per connection", 1, 100'000);
  count("--idle-timeout", "IDLE_TIMEOUT", idle_s, "seconds without traffic before close", 2,
        86'400);
  count("--hello-timeout", "HELLO_TIMEOUT", hello_s, "seconds to send hello", 1, 600);
  count("--send-queue", "SEND_QUEUE", c.send_queue, "queued messages per connection", 1, 1'000'000);
  count("--send-queue-bytes", "SEND_QUEUE_BYTES", c.send_queue_bytes, "queued bytes per connection",
        1024, 1u << 30);
  count("--session-ttl", "SESSION_TTL", session_ttl_s, "seconds a session is kept in Redis", 10,
        7 * 86'400);
  count("--credential-ttl", "CREDENTIAL_TTL", credential_ttl_s,
        "seconds TURN REST credentials stay valid", 60,
        static_cast<std::uint32_t>(auth::turn_rest::kMaxTtl.count()));
  count("--shutdown-grace", "SHUTDOWN_GRACE", grace_s,
        "seconds between close 1012 and the hard stop", 0, 600);
  std::uint32_t threads = 0;
  count("--threads", "THREADS", threads, "I/O threads (0: one per CPU)", 0, 256);
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->envname(env("LOG_LEVEL"))
      ->capture_default_str();

  TokenCommand t;
  auto* token = app.add_subcommand("token", "print a development token (JWT) for a peer id");
  token->add_option("--peer", t.peer, "peer id (the token's sub)")->required();
  token->add_option("--ttl", t.ttl_seconds, "lifetime in seconds")
      ->check(CLI::Range(1, 30 * 86'400))
      ->capture_default_str();
  token->add_option("--jwt-secret", t.jwt_secret, "HS256 key (as for the server)")
      ->envname(env("JWT_SECRET"));
  token->add_option("--audience", t.audience, "aud claim")
      ->envname(env("AUDIENCE"))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    *exit_code = app.exit(e);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    // One line naming the option, like every other configuration error (exit 2).
    throw ConfigError(e.what());
  }
  ParsedCommand out;
  if (token->parsed()) {
    if (t.jwt_secret.empty() && !c.jwt_secret.empty()) t.jwt_secret = c.jwt_secret;
    check_jwt_secret(t.jwt_secret);
    if (!valid_peer_id(t.peer)) {
      throw ConfigError("--peer: 1-128 printable ASCII characters without spaces");
    }
    out.token = t;
    return out;
  }
  c.listen = host_port(listen, "--listen", true);
  c.admin_listen = host_port(admin, "--admin-listen", true);
  c.redis = host_port(redis, "--redis", false);
  if (c.cert_file.empty())
    throw ConfigError("--cert (ROAM_SIGNALING_CERT): a PEM certificate is required");
  if (c.key_file.empty())
    throw ConfigError("--key (ROAM_SIGNALING_KEY): a PEM private key is required");
  check_jwt_secret(c.jwt_secret);
  if (!c.jwt_previous_secret.empty()) {
    check_jwt_secret(c.jwt_previous_secret, "--jwt-previous-secret",
                     "ROAM_SIGNALING_JWT_PREVIOUS_SECRET");
    if (c.jwt_previous_secret == c.jwt_secret) {
      throw ConfigError(
          "--jwt-previous-secret (ROAM_SIGNALING_JWT_PREVIOUS_SECRET): the same key as "
          "--jwt-secret; set it to the key being rotated out, or leave it unset");
    }
  }
  if (c.turn_secret.size() < auth::turn_rest::kMinSecretSize ||
      c.turn_secret.size() > auth::turn_rest::kMaxSecretSize) {
    throw ConfigError(
        "--turn-secret (ROAM_SIGNALING_TURN_SECRET): " +
        std::string(auth::turn_rest::describe(auth::turn_rest::TurnRestError::kBadSecret)));
  }
  if (c.audience.empty()) throw ConfigError("--audience: must not be empty");
  if (c.instance_id.empty()) c.instance_id = default_instance_id();
  if (c.instance_id.size() > 64 || c.instance_id.find_first_of(" \t{}:") != std::string::npos) {
    throw ConfigError("--instance-id: 1-64 characters without spaces, braces or ':'");
  }
  c.idle_timeout = whole_seconds(idle_s);
  c.hello_timeout = whole_seconds(hello_s);
  c.session_ttl = whole_seconds(session_ttl_s);
  c.credential_ttl = whole_seconds(credential_ttl_s);
  c.shutdown_grace = whole_seconds(grace_s);
  c.threads = threads;
  out.serve = std::move(c);
  return out;
}

}  // namespace roam::signaling
