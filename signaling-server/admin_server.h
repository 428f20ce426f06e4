// Plain-HTTP admin endpoint on its own address: GET /healthz (JSON; 503 while draining) and
// GET /metrics (Prometheus text format). One request per connection, small and bounded: it
// is scraped by Prometheus and probed by load balancers, never exposed to clients.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/util/host_port.h"

namespace prometheus {
class Registry;
}

namespace roam::signaling {

struct Health {
  bool serving = true;  // false while draining: load balancers stop sending clients
  std::string body;     // JSON
};

class AdminServer {
 public:
  // Throws std::runtime_error naming the address when it cannot listen.
  AdminServer(boost::asio::io_context& io, const HostPort& listen, std::function<Health()> health,
              std::shared_ptr<prometheus::Registry> registry);
  std::uint16_t port() const;
  void start();
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<Health()> health_;
  std::shared_ptr<prometheus::Registry> registry_;
};

// Opens, binds and listens, or throws std::runtime_error naming `what` and the address.
boost::asio::ip::tcp::acceptor listen_on(boost::asio::io_context& io, const HostPort& address,
                                         const char* what);

}  // namespace roam::signaling
