// roam-signaling's process: N I/O threads (one Shard each), the WSS listener handing
// connections to shards round-robin, the admin endpoint, the instance's Redis channel, the
// registry heartbeat and graceful shutdown (SIGTERM/SIGINT: stop accepting, close 1012,
// hard stop after --shutdown-grace; a second signal stops at once).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/redis/subscriber.h"
#include "signaling-server/admin_server.h"
#include "signaling-server/config.h"
#include "signaling-server/router.h"
#include "signaling-server/server_context.h"
#include "signaling-server/server_metrics.h"

namespace prometheus {
class Registry;
}

namespace roam::signaling {

class Server {
 public:
  // Binds both listeners and loads the TLS files; throws std::runtime_error with the cause.
  explicit Server(ServerConfig config);
  ~Server();
  // Prints the ready line, serves until shut down, returns when every thread has stopped.
  void run();

 private:
  Shard& shard0() { return *shards_.front(); }
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> heartbeat_loop();
  boost::asio::awaitable<void> refresh_registrations();
  // Reservation tokens the shards hold back into the pools: those held too long, or `all`.
  void return_cached_tokens(bool all);
  boost::asio::awaitable<void> drain();
  void begin_shutdown();
  // SIGHUP: loads --cert and --key again for the connections accepted from now on (certificate
  // rotation without dropping anyone); on failure the current pair stays and the error is
  // logged and counted.
  void reload_certificate();
  void await_reload_signal();
  void stop_all();
  Health health() const;
  // A Redis connection (link < shards: that shard's client; the last: the subscriber) came up
  // or went down; keeps roam_signaling_redis_up = 1 only while all of them are up.
  void on_redis_link(std::size_t link, const redis::ConnectionEvent& event);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<ServerContext> context_;
  std::unique_ptr<Router> router_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::unique_ptr<redis::Subscriber> subscriber_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::unique_ptr<boost::asio::signal_set> reload_signals_;
  std::size_t next_shard_ = 0;
  std::mutex redis_links_mutex_;  // the shards' observers run on their own threads
  std::vector<bool> redis_link_up_;
};

// Raises RLIMIT_NOFILE towards `wanted` (soft to hard; as root also the hard limit, up to
// fs.nr_open). Returns the soft limit in effect.
std::uint64_t raise_fd_limit(std::uint64_t wanted);

}  // namespace roam::signaling
