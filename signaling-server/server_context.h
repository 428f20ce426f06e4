// What every connection of one roam-signaling process shares: configuration, metrics, the
// local peer directory, admission control, TLS, relay grants and the Redis scripts; plus the
// per-thread Shard each connection lives on (one io_context per thread, style.md).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "common/redis/client.h"
#include "signaling-server/config.h"
#include "signaling-server/connection_limiter.h"
#include "signaling-server/peer_directory.h"
#include "signaling-server/relay_directory.h"
#include "signaling-server/relay_grants.h"
#include "signaling-server/server_metrics.h"

namespace roam::signaling {

class Router;

// One I/O thread: its io_context, its Redis connection and its relay cache. Everything a
// connection on this shard does runs on `io`, so none of it needs a lock.
struct Shard {
  explicit Shard(std::size_t index) : index(index), io(1) {}
  std::size_t index;
  boost::asio::io_context io;
  std::unique_ptr<redis::Client> redis;
  std::unique_ptr<RelayDirectory> relays;
  TokenCache tokens{
      TokenCache::Limits{}};  // reservation tokens fetched ahead (no lock: one thread)
};

struct ServerContext {
  ServerContext(ServerConfig config, ServerMetrics& metrics, boost::asio::ssl::context tls);

  const ServerConfig config;
  ServerMetrics& metrics;
  PeerDirectory directory;
  std::shared_ptr<ConnectionLimiter> limiter;
  // The certificate and key new connections are served with. Read and replaced (SIGHUP,
  // Server::reload_certificate) on shard 0's thread only, where connections are accepted; each
  // connection keeps the one it began with.
  std::shared_ptr<boost::asio::ssl::context> tls;
  GrantIssuer grants;
  const redis::Script register_script;
  const redis::Script unregister_script;
  const redis::Script refresh_script;
  const redis::Script route_script;
  Router* router = nullptr;
  std::atomic<bool> draining{false};
};

}  // namespace roam::signaling
