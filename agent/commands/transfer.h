// `roam send FILE --to PEER` and `roam recv [--out DIR] [--once]`: one file per application
// stream, verified end to end. The sender writes a file header (common/session/stream_header.h),
// the bytes and FIN; the receiver writes to a temporary file, renames it when complete, and
// answers with the size and SHA-256 it got, which the sender checks against its own. Both print
// size and SHA-256 at the end; a progress bar shows on a terminal.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "agent/session/runtime.h"

namespace roam::agent {

struct SendOptions {
  AgentOptions agent;
  std::string file;
  std::optional<double> rate_mbit;  // pace the file at this rate (demos, shared links)
};

struct RecvOptions {
  AgentOptions agent;
  std::string out_dir = ".";
  bool once = false;  // exit after the first complete file (else: serve session after session)
};

// Exit status: 0 transferred and verified, 1 failed (named on err), 2 bad options.
int run_send(const SendOptions& options, std::ostream& out, std::ostream& err);
int run_recv(const RecvOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
