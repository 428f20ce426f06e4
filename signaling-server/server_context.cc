#include "signaling-server/server_context.h"

#include "signaling-server/redis_layout.h"

namespace roam::signaling {

ServerContext::ServerContext(ServerConfig c, ServerMetrics& m, boost::asio::ssl::context t)
    : config(std::move(c)),
      metrics(m),
      limiter(std::make_shared<ConnectionLimiter>(config.max_connections,
                                                  config.max_connections_per_ip)),
      tls(std::make_shared<boost::asio::ssl::context>(std::move(t))),
      grants(config.turn_secret,
             std::chrono::duration_cast<std::chrono::seconds>(config.credential_ttl),
             m.cached_tokens),
      register_script(std::string(layout::register_script())),
      unregister_script(std::string(layout::unregister_script())),
      refresh_script(std::string(layout::refresh_script())),
      route_script(std::string(layout::route_script())) {}

}  // namespace roam::signaling
