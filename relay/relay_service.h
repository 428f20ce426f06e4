// roam-relay as one object: Redis connection, coturn monitor, token pool, registry heartbeat,
// coturn stats exporter and the Prometheus endpoint, all on one io_context thread.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "relay/config.h"

namespace roam::relay {

class RelayService {
 public:
  explicit RelayService(RelayConfig config);
  ~RelayService();

  // Runs until SIGINT/SIGTERM (or stop()); then deregisters, drops the pool and returns.
  void run();
  void stop();
  std::uint16_t metrics_port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace roam::relay
