// Real servers for integration tests, each on free loopback ports in its own temp dir.
// Tests call GTEST_SKIP() with the returned reason when a server binary is not installed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/util/socket_address.h"
#include "tests/support/process.h"

namespace roam::test {

struct CoturnOptions {
  std::string secret = "roam-test-secret";
  std::string realm = "roam.test";
  int relay_ports = 40;              // size of the relay port range (each reservation needs a pair)
  bool allow_loopback_peers = true;  // tests relay to 127.0.0.1 peers; production denies it
  std::string config_file;           // passed with -c; command-line options override it
  // Publish allocation stats to this local Redis (coturn's --redis-statsdb).
  std::optional<std::uint16_t> statsdb_redis_port;
  std::vector<std::string> extra_args;
};

class Coturn {
 public:
  // Starts `turnserver` on 127.0.0.1 with loopback peers allowed (tests only) and REST
  // (use-auth-secret) authentication; waits until it answers a STUN Binding request.
  // Returns nullptr and sets `skip_reason` when turnserver is not installed.
  static std::unique_ptr<Coturn> start(const CoturnOptions& options, std::string* skip_reason);
  ~Coturn();

  SocketAddress address() const { return {*IpAddress::parse("127.0.0.1"), port_}; }
  std::uint16_t min_relay_port() const { return min_port_; }
  std::uint16_t max_relay_port() const { return max_port_; }
  const CoturnOptions& options() const { return options_; }
  std::string log() const;
  // Kills it (SIGKILL) and, with `restart`, starts it again on the same ports.
  void kill(bool restart);

 private:
  Coturn() = default;
  bool launch();
  CoturnOptions options_;
  TempDir dir_;
  Process process_;
  std::string binary_;
  std::uint16_t port_ = 0, min_port_ = 0, max_port_ = 0;
};

class RedisServer {
 public:
  static std::unique_ptr<RedisServer> start(std::string* skip_reason);
  ~RedisServer();
  std::uint16_t port() const { return port_; }
  std::string log() const;
  void kill(bool restart);

 private:
  RedisServer() = default;
  bool launch();
  TempDir dir_;
  Process process_;
  std::string binary_;
  std::uint16_t port_ = 0;
};

// Debian's `prometheus` server scraping the given loopback ports every 500 ms.
class PrometheusServer {
 public:
  static std::unique_ptr<PrometheusServer> start(const std::vector<std::uint16_t>& targets,
                                                 std::string* skip_reason);
  ~PrometheusServer();
  std::uint16_t port() const { return port_; }
  // Result of an instant query (the JSON text), or nullopt on HTTP failure.
  std::optional<std::string> query(const std::string& promql) const;
  std::string log() const;

 private:
  PrometheusServer() = default;
  TempDir dir_;
  Process process_;
  std::uint16_t port_ = 0;
};

// Sends a bare STUN Binding request to `server` from a fresh socket and waits for any STUN
// response; true if one arrived within `timeout_ms`.
bool stun_ping(const SocketAddress& server, int timeout_ms);

}  // namespace roam::test
