// `roam pipe --to PEER` / `roam pipe --listen`: stdin and stdout joined to the peer's over one
// application stream, like netcat. Each side's end of input ends its direction (FIN); the run
// ends when both directions are done or the connection closes.
#pragma once

#include <iosfwd>

#include "agent/session/runtime.h"

namespace roam::agent {

struct PipeOptions {
  AgentOptions agent;
  bool listen = false;
};

int run_pipe(const PipeOptions& options, std::ostream& err);

}  // namespace roam::agent
