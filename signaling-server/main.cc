// roam-signaling: the WebSocket-over-TLS rendezvous of Roam agents (signaling-server/server.h).
#include <cstdlib>
#include <iostream>

#include "common/log/log.h"
#include "signaling-server/config.h"
#include "signaling-server/server.h"
#include "signaling-server/token_command.h"

int main(int argc, char** argv) {
  std::optional<roam::signaling::ParsedCommand> command;
  int exit_code = EXIT_SUCCESS;
  try {
    command = roam::signaling::parse_command_line(argc, argv, &exit_code);
  } catch (const roam::signaling::ConfigError& e) {
    std::cerr << "roam-signaling: " << e.what() << "\n";
    return 2;
  }
  if (!command) return exit_code;  // --help, or a CLI11 parse error already printed
  if (command->token) return roam::signaling::run_token_command(*command->token);
  auto& config = *command->serve;
  if (!roam::log::init("roam-signaling", config.log_level)) {
    std::cerr << "roam-signaling: --log-level: unknown level '" << config.log_level << "'\n";
    return 2;
  }
  try {
    roam::signaling::Server server(std::move(config));
    server.run();
  } catch (const std::exception& e) {
    // Start-up failures (port taken, unreadable certificate) end the process with the cause.
    std::cerr << "roam-signaling: " << e.what() << "\n";
    return 1;
  }
  return EXIT_SUCCESS;
}
