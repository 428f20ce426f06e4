#include "tests/support/signaling_server.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/auth/jwt.h"
#include "common/util/bytes.h"
#include "tests/support/sync_clients.h"
#include "tests/support/wait.h"

namespace roam::test {

using namespace std::chrono_literals;

std::string mint_token(const std::string& jwt_secret, const std::string& peer,
                       std::chrono::seconds ttl) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto token = auth::jwt::mint(as_bytes(jwt_secret), peer, "roam", now, ttl);
  if (!token) throw std::runtime_error("jwt::mint failed for peer " + peer);
  return *token;
}

long proc_status_kib(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0)
      return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return -1;
}

SignalingServer::SignalingServer(const SignalingServerOptions& o) {
  log_ = o.dir / (o.name + ".log");
  std::vector<std::string> argv;
  if (o.cpus) {  // taskset execs the server in place: same pid, set before its threads exist
    auto taskset = find_program("taskset");
    if (!taskset) throw std::runtime_error("running on chosen CPUs needs taskset (util-linux)");
    argv = {*taskset, "-c", *o.cpus};
  }
  argv.insert(argv.end(),
              {std::string(ROAM_BINARY_DIR) + "/bin/roam-signaling", "--listen", "127.0.0.1:0",
               "--admin-listen", "127.0.0.1:0", "--cert", o.cert.string(), "--key", o.key.string(),
               "--jwt-secret", o.jwt_secret, "--turn-secret", o.turn_secret, "--redis",
               "127.0.0.1:" + std::to_string(o.redis_port), "--instance-id", o.name, "--log-level",
               "warn"});
  argv.insert(argv.end(), o.extra.begin(), o.extra.end());
  process_ = Process::spawn(argv, log_);
  // "ready wss=127.0.0.1:43211 admin=127.0.0.1:39001 instance=sig-1"
  const bool ready = eventually(
      [&] {
        const std::string text = read_file(log_);
        const auto at = text.find("ready wss=");
        if (at == std::string::npos || text.find('\n', at) == std::string::npos) return false;
        std::istringstream line(text.substr(at));
        std::string ready_word, wss, admin;
        line >> ready_word >> wss >> admin;
        if (admin.rfind("admin=", 0) != 0) return false;
        wss_port_ = static_cast<std::uint16_t>(std::stoi(wss.substr(wss.rfind(':') + 1)));
        admin_port_ = static_cast<std::uint16_t>(std::stoi(admin.substr(admin.rfind(':') + 1)));
        return true;
      },
      15s, 50ms);
  if (!ready || !process_.running()) {
    throw std::runtime_error("roam-signaling did not print its ready line within 15 s:\n" +
                             read_file(log_));
  }
}

std::string SignalingServer::metrics() const {
  return http_get(admin_port_, "/metrics", 5000ms).value_or("");
}

std::optional<double> SignalingServer::value(const std::string& metric,
                                             const std::string& labels) const {
  return scrape_value(metrics(), metric, labels);
}

bool SignalingServer::wait_for_relays() const {
  return eventually(
      [&] {
        auto health = http_get(admin_port_, "/healthz", 2000ms).value_or("");
        return health.find("\"relays\":0") == std::string::npos &&
               health.find("\"relays\":") != std::string::npos;
      },
      10s, 50ms);
}

std::string SignalingServer::log_tail() const {
  const std::string text = read_file(log_);
  return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
}

}  // namespace roam::test
