// `roam-signaling token`: mints a development token with the server's secret.
#pragma once

#include "signaling-server/config.h"

namespace roam::signaling {

// Prints the token on stdout; returns the process exit code.
int run_token_command(const TokenCommand& command);

}  // namespace roam::signaling
