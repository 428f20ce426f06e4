// roam: the endpoint agent. Each subcommand parses its options and hands over to its module.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/commands/interfaces.h"
#include "agent/doctor/doctor.h"

int main(int argc, char** argv) {
  CLI::App app{
      "roam: one encrypted QUIC connection between two endpoints, relay-first, "
      "upgraded to direct paths and migrated across networks"};
  app.require_subcommand(1);

  roam::agent::DoctorOptions doctor;
  double timeout_s = 3.0;
  auto* cmd = app.add_subcommand("doctor",
                                 "Check STUN and TURN reachability from every local "
                                 "interface and address family");
  cmd->add_option("--stun", doctor.stun, "STUN server HOST:PORT")->required();
  cmd->add_option("--turn", doctor.turn, "TURN server HOST:PORT (default: the STUN server)");
  cmd->add_option("--turn-secret", doctor.turn_secret, "coturn static-auth-secret (TURN REST)")
      ->envname("ROAM_TURN_SECRET");
  cmd->add_option("--realm", doctor.realm, "expected TURN realm (checked against the server's)");
  cmd->add_option("--interface", doctor.interfaces, "probe only these interfaces (repeatable)");
  cmd->add_option("--timeout", timeout_s, "seconds per probe")->check(CLI::Range(0.1, 60.0));
  cmd->add_flag("--json", doctor.json, "machine-readable output");

  roam::agent::InterfacesOptions interfaces;
  auto* ifs = app.add_subcommand("interfaces",
                                 "List the usable local interfaces and addresses (rtnetlink); "
                                 "--watch prints every change as a JSON line");
  ifs->add_flag("--watch", interfaces.watch, "keep running, one JSON line per change");
  ifs->add_flag("--json", interfaces.json, "machine-readable snapshot");
  ifs->add_flag("--all", interfaces.all,
                "include loopback, link-local, deprecated, down and unusable entries");

  ifs->add_option("--netlink-rcvbuf", interfaces.receive_buffer_bytes)
      ->group("");  // hidden: tests force lost events (ENOBUFS) with a tiny buffer

  CLI11_PARSE(app, argc, argv);
  if (ifs->parsed()) return roam::agent::run_interfaces(interfaces, std::cout, std::cerr);
  if (cmd->parsed()) {
    doctor.timeout =
        std::chrono::duration_cast<roam::Duration>(std::chrono::duration<double>(timeout_s));
    try {
      auto report = roam::agent::run_doctor(doctor);
      doctor.json ? print_json(report, std::cout) : print_text(report, std::cout);
      return report.ok ? EXIT_SUCCESS : EXIT_FAILURE;
    } catch (const std::invalid_argument& e) {
      std::cerr << "roam doctor: " << e.what() << "\n";
      return 2;
    }
  }
  return EXIT_SUCCESS;
}
