#include "signaling-server/router.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "common/log/log.h"
#include "common/signaling/route_envelope.h"
#include "signaling-server/connection.h"
#include "signaling-server/redis_layout.h"

namespace roam::signaling {

std::int64_t unix_micros_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view static_type_name(std::string_view type) {
  static constexpr std::string_view kTypes[] = {"welcome", "session", "candidate", "bye", "error"};
  for (auto t : kTypes) {
    if (t == type) return t;
  }
  return "error";
}

// Inline when the connection lives on this thread (a pair on the same shard: no queueing, no
// wake-up); otherwise queued to its thread. Either way one sender's messages stay in order.
void post_to(const std::shared_ptr<Connection>& connection, Outgoing message) {
  boost::asio::dispatch(connection->get_executor(),
                        [connection, message = std::move(message)]() mutable {
                          connection->deliver(std::move(message));
                        });
}

boost::asio::awaitable<Delivery> Router::deliver(redis::Client& redis, const std::string& peer,
                                                 Outgoing message) {
  if (auto local = context_.directory.connection_of(peer)) {
    post_to(local, std::move(message));
    co_return Delivery::kLocal;
  }
  // Across instances the steady clock means nothing: restate the arrival time in Unix time.
  if (message.timing == Outgoing::Timing::kLocal) {
    message.received_unix_us =
        unix_micros_now() -
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - message.received_at)
            .count();
    message.timing = Outgoing::Timing::kRemote;
  }
  RoutedMessage routed{message.text, std::string(message.type), message.op, message.session,
                       message.peer, message.received_unix_us};
  std::vector<std::string> keys{layout::peer_key(peer)};
  std::vector<std::string> args{encode_delivery(peer, routed)};
  auto published = co_await redis.eval(context_.route_script, std::move(keys), std::move(args));
  if (!published || !published->as_integer()) {
    context_.metrics.redis_errors.Increment();
    co_return Delivery::kRoutingUnavailable;
  }
  if (*published->as_integer() <= 0) co_return Delivery::kPeerUnavailable;
  context_.metrics.routed_out.Increment();
  co_return Delivery::kRemote;
}

void Router::on_published(const redis::Message& published) {
  auto envelope = decode_envelope(published.payload);
  if (!envelope) {
    spdlog::warn("{}: ignoring a malformed envelope: {}", published.channel, envelope.error());
    return;
  }
  auto local = context_.directory.connection_of(envelope->peer);
  if (envelope->kind == Envelope::Kind::kKick) {
    if (!local) return;
    auto generation = envelope->generation;
    boost::asio::post(local->get_executor(),
                      [connection = local, generation] { connection->kick_if_older(generation); });
    return;
  }
  context_.metrics.routed_in.Increment();
  if (!local) {
    // The peer left (or moved) after the sender looked it up; it will learn its sessions back
    // from Redis when it reconnects, and candidates are trickled again by ICE restarts.
    context_.metrics.undeliverable.Increment();
    return;
  }
  auto& routed = envelope->message;
  Outgoing message;
  message.text = std::move(routed.text);
  message.type = static_type_name(routed.type);
  message.op = routed.op;
  message.session = std::move(routed.session);
  message.peer = std::move(routed.peer);
  message.timing = Outgoing::Timing::kRemote;
  message.received_unix_us = routed.received_unix_us;
  post_to(local, std::move(message));
}

}  // namespace roam::signaling
