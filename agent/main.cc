// roam: the endpoint agent. Each subcommand parses its options and hands over to its module.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/commands/agent_cli.h"
#include "agent/commands/ice.h"
#include "agent/commands/interfaces.h"
#include "agent/commands/perf.h"
#include "agent/commands/pipe.h"
#include "agent/commands/status.h"
#include "agent/commands/transfer.h"
#include "agent/doctor/doctor.h"

int main(int argc, char** argv) {
  CLI::App app{
      "roam: one encrypted QUIC connection between two endpoints, relay-first, "
      "upgraded to direct paths and migrated across networks"};
  app.require_subcommand(1);
  app.set_config("--config", "", "TOML file with option values (see README)");

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

  roam::agent::IceOptions ice;
  double duration_s = 0, stats_s = 1.0, traffic_ms = 0;
  auto* icecmd = app.add_subcommand(
      "ice",
      "Run continuous ICE with one peer through roam-signaling and log every path event "
      "(no QUIC): gathering on every interface, checks, keepalives, selection and why");
  icecmd->add_option("--signaling", ice.signaling_urls, "wss://HOST:PORT/ (repeatable, in order)")
      ->required();
  icecmd->add_option("--ca", ice.ca_file, "PEM CA file that signs the signaling certificate");
  icecmd->add_option("--token", ice.token, "signaling JWT")->envname("ROAM_TOKEN");
  icecmd->add_option("--connect", ice.connect_peer,
                     "start a session with this peer (else wait for one)");
  icecmd->add_option("--stun", ice.stun_servers,
                     "STUN server IP:PORT for server-reflexive candidates ([v6]:port; repeatable)");
  icecmd->add_option("--events", ice.events_path, "write path events as JSON lines (- = stdout)");
  icecmd->add_option("--duration", duration_s, "stop after this many seconds")
      ->check(CLI::PositiveNumber);
  icecmd->add_option("--interface", ice.interfaces, "use only these interfaces (repeatable)");
  icecmd->add_option("--metered", ice.metered, "metered (cellular) interfaces (repeatable)");
  icecmd->add_flag("--prefer-metered", ice.prefer_metered,
                   "do not avoid metered interfaces when choosing the path");
  icecmd->add_flag("--relay-only", ice.relay_only, "never use direct paths");
  icecmd->add_flag("--direct-only", ice.direct_only, "never use the relay");
  icecmd->add_option("--stats-interval", stats_s, "seconds between stats events (0: none)")
      ->check(CLI::Range(0.0, 3600.0));
  icecmd
      ->add_option("--traffic-interval", traffic_ms,
                   "send a request/answer probe on the selected pair every MS milliseconds, so "
                   "liveness is judged as under application traffic")
      ->check(CLI::Range(1.0, 60000.0));
  icecmd->add_option("--region", ice.region, "relay region hint for the signaling server");

  roam::agent::AgentCli send_cli;
  roam::agent::SendOptions send;
  auto* sendcmd = app.add_subcommand(
      "send",
      "Send a file to a peer over one QUIC connection (relay first, then direct, migrating "
      "across networks); prints its size and SHA-256 as verified by the receiver");
  sendcmd->add_option("FILE", send.file, "the file to send")->required();
  sendcmd->add_option("--to", send_cli.options.connect_peer, "the peer's id")->required();
  double send_rate = 0;
  sendcmd
      ->add_option("--rate", send_rate,
                   "pace the file at this many Mbit/s (default: as fast as the path allows)")
      ->check(CLI::PositiveNumber);
  roam::agent::add_agent_options(*sendcmd, send_cli);

  roam::agent::AgentCli recv_cli;
  roam::agent::RecvOptions recv;
  auto* recvcmd = app.add_subcommand(
      "recv", "Receive files from peers into a directory (each verified by SHA-256)");
  recvcmd->add_option("--out", recv.out_dir, "directory for received files")->envname("ROAM_OUT");
  recvcmd->add_flag("--once", recv.once, "exit after the first complete file");
  roam::agent::add_agent_options(*recvcmd, recv_cli);

  roam::agent::AgentCli pipe_cli;
  roam::agent::PipeOptions pipe;
  auto* pipecmd = app.add_subcommand(
      "pipe", "Join stdin/stdout with a peer's over one QUIC stream, like netcat");
  pipecmd->add_option("--to", pipe_cli.options.connect_peer, "the peer's id");
  pipecmd->add_flag("--listen", pipe.listen, "wait for a peer to connect");
  roam::agent::add_agent_options(*pipecmd, pipe_cli);

  roam::agent::AgentCli perf_cli;
  roam::agent::PerfOptions perf;
  double rate_mbit = 0;
  auto* perfcmd = app.add_subcommand(
      "perf", "Measure goodput, RTT and the blackout around every path switch with a peer");
  perfcmd->add_option("--to", perf_cli.options.connect_peer, "send to this peer");
  perfcmd->add_flag("--listen", perf.listen, "receive (serves test after test unless --once)");
  perfcmd->add_flag("--once", perf.once, "--listen: exit after one test");
  perfcmd->add_option("--duration", perf.duration_s, "seconds to send")
      ->check(CLI::Range(0.1, 86400.0));
  perfcmd->add_option("--rate", rate_mbit, "constant rate in Mbit/s (default: bulk)")
      ->check(CLI::PositiveNumber);
  perfcmd->add_flag("--json", perf.json, "JSON lines instead of text");
  roam::agent::add_agent_options(*perfcmd, perf_cli);

  roam::agent::StatusOptions status;
  auto* statuscmd = app.add_subcommand(
      "status",
      "Show the running agents' sessions, pairs with state and RTT, the active path "
      "and why it is relayed");
  statuscmd->add_option("--socket", status.socket, "ask only this agent's status socket");
  statuscmd->add_flag("--json", status.json, "one JSON object per agent");

  CLI11_PARSE(app, argc, argv);
  auto session_options = [](roam::agent::AgentCli& cli) -> bool {
    if (auto r = roam::agent::finish_agent_options(cli); !r) {
      std::cerr << "roam: " << r.error() << "\n";
      return false;
    }
    return true;
  };
  if (sendcmd->parsed()) {
    if (!session_options(send_cli)) return 2;
    send.agent = send_cli.options;
    if (send_rate > 0) send.rate_mbit = send_rate;
    return roam::agent::run_send(send, std::cout, std::cerr);
  }
  if (pipecmd->parsed()) {
    if (!session_options(pipe_cli)) return 2;
    pipe.agent = pipe_cli.options;
    return roam::agent::run_pipe(pipe, std::cerr);
  }
  if (perfcmd->parsed()) {
    if (!session_options(perf_cli)) return 2;
    perf.agent = perf_cli.options;
    if (rate_mbit > 0) perf.rate_mbit = rate_mbit;
    return roam::agent::run_perf(perf, std::cout, std::cerr);
  }
  if (statuscmd->parsed()) return roam::agent::run_status(status, std::cout, std::cerr);
  if (recvcmd->parsed()) {
    if (!session_options(recv_cli)) return 2;
    recv.agent = recv_cli.options;
    return roam::agent::run_recv(recv, std::cout, std::cerr);
  }
  if (icecmd->parsed()) {
    auto to_duration = [](double s) {
      return std::chrono::duration_cast<roam::Duration>(std::chrono::duration<double>(s));
    };
    if (duration_s > 0) ice.duration = to_duration(duration_s);
    ice.stats_interval = to_duration(stats_s);
    if (traffic_ms > 0) ice.traffic_interval = to_duration(traffic_ms / 1000.0);
    return roam::agent::run_ice(ice, std::cout, std::cerr);
  }
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
