#include "common/net/turn_driver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/net/endpoint.h"

namespace roam::net {

namespace asio = boost::asio;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<DriveResult> drive_turn_client(
    udp::socket& socket, turn::Client& client, TimePoint deadline,
    const std::function<bool(const turn::Event&)>& on_event,
    const std::function<void(const turn::PeerData&)>& on_data) {
  const auto server = to_endpoint(client.config().server);
  Bytes buffer(65536);
  asio::steady_timer timer(socket.get_executor());
  for (;;) {
    while (auto out = client.poll_transmit()) {
      auto [ec, n] = co_await socket.async_send_to(asio::buffer(*out), server,
                                                   asio::as_tuple(asio::use_awaitable));
      (void)n;
      // ICMP errors from an earlier send surface here on Linux: the retransmission timer
      // handles a lost request, so only a closed socket ends the drive.
      if (ec == asio::error::bad_descriptor || ec == asio::error::operation_aborted) {
        co_return DriveResult::kSocketError;
      }
    }
    while (auto event = client.poll_event()) {
      if (on_event(*event)) co_return DriveResult::kStopped;
    }
    if (client.has_transmit()) continue;
    TimePoint now = Clock::now();
    if (now >= deadline) co_return DriveResult::kDeadline;
    timer.expires_at(std::min(client.next_deadline(), deadline));
    udp::endpoint from;
    auto result = co_await (socket.async_receive_from(asio::buffer(buffer), from,
                                                      asio::as_tuple(asio::use_awaitable)) ||
                            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    now = Clock::now();
    if (result.index() == 0) {
      auto [ec, size] = std::get<0>(result);
      if (ec == asio::error::bad_descriptor || ec == asio::error::operation_aborted) {
        co_return DriveResult::kSocketError;
      }
      // connection_refused (ICMP port unreachable) just means no answer this time.
      if (!ec && from == server) {
        auto data = client.handle_datagram(now, ByteSpan(buffer).first(size));
        if (data && on_data) on_data(*data);
      }
    }
    if (client.next_deadline() <= now) client.handle_timeout(now);
  }
}

}  // namespace roam::net
