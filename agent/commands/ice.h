// `roam ice`: continuous ICE with one peer through roam-signaling, without QUIC on top. It
// gathers on every interface, takes part in one session (started with --connect, or the first
// one offered), checks and keeps every pair warm, and writes the path event log. It is the
// diagnostic view of the path engine (and what the lab tests and `./run bench ice` drive);
// `--traffic-interval` adds request/answer probes on the selected pair so liveness detection
// runs as it does under application traffic.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "common/util/time.h"

namespace roam::agent {

struct IceOptions {
  std::vector<std::string> signaling_urls;
  std::string ca_file;
  std::string token;
  std::optional<std::string> connect_peer;
  std::vector<std::string> stun_servers;  // HOST:PORT with IP literals
  std::string events_path;
  std::optional<Duration> duration;
  std::vector<std::string> interfaces;
  std::vector<std::string> metered;
  bool prefer_metered = false;
  bool relay_only = false;
  bool direct_only = false;
  Duration stats_interval = seconds(1);
  std::optional<Duration> traffic_interval;
  std::optional<std::string> region;
};

// Runs until --duration, SIGINT/SIGTERM, the peer's bye or a fatal error. Returns the exit
// status: 0, 1 (runtime failure, named on `err`) or 2 (bad options).
int run_ice(const IceOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
