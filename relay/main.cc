// roam-relay: the sidecar of one coturn (see relay/relay_service.h).
#include <cstdlib>
#include <iostream>

#include "common/log/log.h"
#include "relay/config.h"
#include "relay/relay_service.h"

int main(int argc, char** argv) {
  std::optional<roam::relay::RelayConfig> config;
  int exit_code = EXIT_SUCCESS;
  try {
    config = roam::relay::parse_config(argc, argv, &exit_code);
  } catch (const roam::relay::ConfigError& e) {
    std::cerr << "roam-relay: " << e.what() << "\n";
    return 2;
  }
  if (!config) return exit_code;  // --help, or a CLI11 parse error already printed
  if (!roam::log::init("roam-relay", config->log_level)) {
    std::cerr << "roam-relay: --log-level: unknown level '" << config->log_level << "'\n";
    return 2;
  }
  try {
    roam::relay::RelayService service(std::move(*config));
    service.run();
  } catch (const std::exception& e) {
    // Start-up failures (e.g. the metrics port is taken) end the daemon with the cause.
    std::cerr << "roam-relay: " << e.what() << "\n";
    return 1;
  }
  return EXIT_SUCCESS;
}
