// `roam status`: asks every running agent of this user (their status sockets, see
// status_socket_dir()) for its sessions, every candidate pair with state and RTT, the active
// path and, when it is relayed, why. Stale sockets of dead agents are skipped.
#pragma once

#include <iosfwd>
#include <string>

namespace roam::agent {

struct StatusOptions {
  std::string socket;  // one agent only (else every socket in the status directory)
  bool json = false;
};

// 0: at least one agent answered; 1: none is running.
int run_status(const StatusOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
