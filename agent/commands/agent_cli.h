// The options every session command (send, recv, pipe, perf) shares, for CLI11: flags, the
// ROAM_* environment and the TOML file given with --config.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "agent/session/runtime.h"

namespace roam::agent {

struct AgentCli {
  AgentOptions options;
  std::string token_file;
  double stats_interval_s = 1.0;
  double connect_timeout_s = 30.0;
};

// Adds --signal, --token/--token-file, --ca, --events, --metrics, --stun, --interface,
// --metered, --relay-only, --direct-only, ... to `command`.
void add_agent_options(CLI::App& command, AgentCli& cli);
// After parsing: reads --token-file, converts durations. Error: unreadable token file.
expected<void, std::string> finish_agent_options(AgentCli& cli);

}  // namespace roam::agent
