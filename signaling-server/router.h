// Delivers server messages to peers wherever they are connected: on this instance through the
// PeerDirectory (posted to the connection's thread), on another through its Redis channel
// (layout::route_script), and receives what other instances publish to this one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "common/redis/client.h"
#include "common/redis/subscriber.h"
#include "signaling-server/outgoing.h"
#include "signaling-server/server_context.h"

namespace roam::signaling {

enum class Delivery : std::uint8_t {
  kLocal,               // handed to a connection of this instance
  kRemote,              // published to the peer's instance, which had a subscriber
  kPeerUnavailable,     // the peer is not connected anywhere (or its instance just died)
  kRoutingUnavailable,  // the peer is not here and Redis cannot be asked
};

// Posts `message` to `connection`'s thread and enqueues it there.
void post_to(const std::shared_ptr<Connection>& connection, Outgoing message);

class Router {
 public:
  explicit Router(ServerContext& context) : context_(context) {}

  // `redis` is the calling shard's client.
  boost::asio::awaitable<Delivery> deliver(redis::Client& redis, const std::string& peer,
                                           Outgoing message);
  // The instance channel's subscriber hands every message here (on its own thread).
  void on_published(const redis::Message& message);

 private:
  ServerContext& context_;
};

std::int64_t unix_micros_now();
// The static string for a server message type name (Outgoing::type must outlive the message).
std::string_view static_type_name(std::string_view type);

}  // namespace roam::signaling
