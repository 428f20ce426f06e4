// `roam interfaces`: the usable local interfaces and addresses as the agent sees them (from
// rtnetlink, the same source continuous ICE uses), and with --watch every change as it happens.
#pragma once

#include <iosfwd>

#include "common/util/time.h"

namespace roam::agent {

struct InterfacesOptions {
  bool watch = false;  // keep running, one JSON line per change, until SIGINT/SIGTERM
  bool json = false;   // snapshot as one JSON document (watch output is always JSON lines)
  bool all = false;    // also loopback, link-local, deprecated; the snapshot lists down links
                       // and unusable addresses too (with "usable": false)
  Duration timeout = seconds(5);  // for the initial dump
  int receive_buffer_bytes = 0;   // netlink SO_RCVBUF; 0 = InterfaceMonitorOptions' default
};

// Runs the command; returns the process exit code (0 ok, 1 netlink failure). Watch output, one
// JSON object per line, flushed each line:
//   {"event":"interface_up"|"interface_down"|"address_added"|"address_removed",
//    "mono":<CLOCK_MONOTONIC seconds>,"time":"<UTC ISO 8601>","index":N,"interface":"eth0",
//    and for addresses "address","prefix","family":"ipv4"|"ipv6","scope","flags":[...]}
// The initial state comes first as up/added events, then {"event":"ready",...}. After lost
// kernel events (ENOBUFS) the re-dump's differences are followed by {"event":"resync",
// "count":N,...}.
int run_interfaces(const InterfacesOptions& options, std::ostream& out, std::ostream& err);

}  // namespace roam::agent
