// `roam doctor`: per local interface and address family, the server-reflexive address (STUN),
// whether a TURN allocation succeeds (relayed address, round trips), and a plain-words verdict.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "agent/doctor/probe.h"
#include "common/util/time.h"

namespace roam::agent {

struct DoctorOptions {
  std::string stun;                     // HOST:PORT (names are resolved)
  std::optional<std::string> turn;      // HOST:PORT; defaults to the STUN server with a secret
  std::string turn_secret;              // coturn static-auth-secret (TURN REST credentials)
  std::string realm;                    // expected realm; checked against the server's
  std::vector<std::string> interfaces;  // only these (all when empty)
  bool json = false;
  Duration timeout = seconds(3);  // per probe
};

struct InterfaceReport {
  std::string interface;
  IpAddress local;
  bool bound_to_device = false;
  std::string skipped;  // why this address was not probed (empty when probed)
  StunProbeResult stun;
  std::optional<TurnProbeResult> turn;
  std::string verdict;
};

struct DoctorReport {
  std::string stun_server;
  std::string turn_server;
  std::vector<InterfaceReport> interfaces;
  std::string summary;
  bool ok = false;  // STUN answered (and TURN allocated, when asked) on at least one interface
};

// Runs every probe; throws std::invalid_argument with a message naming the option on bad input
// (unparsable or unresolvable server address).
DoctorReport run_doctor(const DoctorOptions& options);

void print_text(const DoctorReport& report, std::ostream& out);
void print_json(const DoctorReport& report, std::ostream& out);

}  // namespace roam::agent
