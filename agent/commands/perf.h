// `roam perf --to PEER [--duration S] [--rate MBIT]` / `roam perf --listen`: a bulk or
// constant-rate stream to the listener. Every second both sides print goodput, RTT and the
// active path; the receiver measures every receive gap around a path switch (the blackout:
// last byte before the switch to first byte after it) and reports them with the totals, which
// the sender prints too.
#pragma once

#include <iosfwd>
#include <optional>

#include "agent/session/runtime.h"

namespace roam::agent {

struct PerfOptions {
  AgentOptions agent;
  bool listen = false;
  bool once = false;                // --listen: exit after one test
  double duration_s = 10;           // sender
  std::optional<double> rate_mbit;  // sender: constant rate (else bulk)
  bool json = false;                // one JSON object per line instead of text
};

int run_perf(const PerfOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
