// `roam ice`: continuous ICE with one peer through roam-signaling, without QUIC on top. It
// gathers on every interface, takes part in one session (started with --connect, or the first
// one offered), checks and keeps every pair warm, and writes the path event log. It is the
// diagnostic view of the path engine (and what the lab tests and `./run bench ice` drive);
// `--traffic-interval` adds request/answer probes on the selected pair so liveness detection
// runs as it does under application traffic.
#pragma once

#include <iosfwd>
#include <optional>

#include "agent/paths/path_options.h"
#include "common/util/time.h"

namespace roam::agent {

struct IceOptions : PathOptions {
  std::optional<Duration> duration;
  std::optional<Duration> traffic_interval;
};

// Runs until --duration, SIGINT/SIGTERM, the peer's bye or a fatal error. Returns the exit
// status: 0, 1 (runtime failure, named on `err`) or 2 (bad options).
int run_ice(const IceOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
