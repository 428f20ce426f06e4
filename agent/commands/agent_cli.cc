#include "agent/commands/agent_cli.h"

#include <fstream>
#include <sstream>

namespace roam::agent {

void add_agent_options(CLI::App& command, AgentCli& cli) {
  auto& o = cli.options;
  const char* group = "Session";
  command
      .add_option("--signal", o.signaling_urls, "roam-signaling URL wss://HOST:PORT/ (repeatable)")
      ->envname("ROAM_SIGNAL")
      ->delimiter(',')
      ->group(group);
  command.add_option("--token", o.token, "signaling token (JWT)")
      ->envname("ROAM_TOKEN")
      ->group(group);
  command.add_option("--token-file", cli.token_file, "read the signaling token from this file")
      ->envname("ROAM_TOKEN_FILE")
      ->group(group);
  command.add_option("--ca", o.ca_file, "PEM CA file that signs the signaling certificate")
      ->envname("ROAM_CA")
      ->group(group);
  command.add_option("--events", o.events_path, "write path and session events as JSON lines")
      ->envname("ROAM_EVENTS")
      ->group(group);
  command.add_option("--metrics", o.metrics_address, "serve Prometheus metrics on HOST:PORT")
      ->envname("ROAM_METRICS")
      ->group(group);
  command.add_option("--status-socket", o.status_socket, "Unix socket for `roam status`")
      ->group(group);
  command.add_option("--stun", o.stun_servers, "STUN server IP:PORT ([v6]:port; repeatable)")
      ->envname("ROAM_STUN")
      ->delimiter(',')
      ->group(group);
  command.add_option("--interface", o.interfaces, "use only these interfaces (repeatable)")
      ->group(group);
  command.add_option("--metered", o.metered, "metered (cellular) interfaces (repeatable)")
      ->group(group);
  command.add_flag("--prefer-metered", o.prefer_metered, "do not avoid metered interfaces")
      ->group(group);
  command.add_flag("--relay-only", o.relay_only, "never use direct paths")->group(group);
  command.add_flag("--direct-only", o.direct_only, "never use the relay")->group(group);
  command
      .add_flag("--loopback", o.loopback,
                "gather on loopback too (two agents on one machine: tests, demo)")
      ->group(group);
  command.add_option("--region", o.region, "relay region hint")->group(group);
  command.add_option("--stats-interval", cli.stats_interval_s, "seconds between stats events")
      ->check(CLI::Range(0.0, 3600.0))
      ->group(group);
  command
      .add_option("--connect-timeout", cli.connect_timeout_s,
                  "give up when no connection is up after this many seconds (0: never)")
      ->check(CLI::Range(0.0, 86400.0))
      ->group(group);
}

expected<void, std::string> finish_agent_options(AgentCli& cli) {
  auto seconds_of = [](double s) {
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
  };
  cli.options.stats_interval = seconds_of(cli.stats_interval_s);
  cli.options.connect_timeout = seconds_of(cli.connect_timeout_s);
  if (!cli.token_file.empty()) {
    std::ifstream in(cli.token_file);
    if (!in) return unexpected("--token-file " + cli.token_file + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    std::string token = text.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
      token.pop_back();
    cli.options.token = token;
  }
  return {};
}

}  // namespace roam::agent
