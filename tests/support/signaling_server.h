// A real roam-signaling process for tests and benchmarks: started from the build's bin/ on
// free loopback ports, found ready by its "ready wss=... admin=..." line, stopped (SIGTERM,
// then SIGKILL) when the object dies.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace roam::test {

struct SignalingServerOptions {
  std::filesystem::path dir;  // its log goes here, as `name`.log
  std::filesystem::path cert, key;
  std::string jwt_secret, turn_secret;
  std::uint16_t redis_port = 0;
  std::string name = "sig";         // --instance-id
  std::vector<std::string> extra;   // further flags
  std::optional<std::string> cpus;  // taskset CPU list to run it on
};

// An HS256 token for `peer` (audience "roam", roam-signaling's default) signed with
// `jwt_secret`, valid from now for `ttl`. Throws std::runtime_error if it cannot be minted.
std::string mint_token(const std::string& jwt_secret, const std::string& peer,
                       std::chrono::seconds ttl);

// Value of a "Field:  N kB" line of /proc/PID/status (VmRSS:, VmHWM:, ...) in KiB; -1 if absent.
long proc_status_kib(pid_t pid, const char* field);

class SignalingServer {
 public:
  // Throws std::runtime_error with the log's text when the server is not ready within 15 s.
  explicit SignalingServer(const SignalingServerOptions& options);

  std::uint16_t wss_port() const { return wss_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  pid_t pid() const { return process_.pid(); }
  long rss_kib() const { return proc_status_kib(process_.pid(), "VmRSS:"); }
  std::string metrics() const;
  std::optional<double> value(const std::string& metric, const std::string& labels = "") const;
  // Until the server's relay cache (refreshed every second from Redis) lists a relay: grants
  // measured before that would all be "no relay".
  bool wait_for_relays() const;
  void terminate() { process_.signal(SIGTERM); }
  bool running() { return process_.running(); }
  void stop() { process_.stop(std::chrono::milliseconds(10000)); }
  std::string log_tail() const;

 private:
  std::filesystem::path log_;
  Process process_;
  std::uint16_t wss_port_ = 0, admin_port_ = 0;
};

}  // namespace roam::test
