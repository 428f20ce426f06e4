#include "relay/pool/reservation.h"

#include <boost/asio/ip/udp.hpp>

#include "common/net/endpoint.h"
#include "common/net/turn_driver.h"
#include "common/util/random.h"

namespace roam::relay {

namespace asio = boost::asio;
using asio::ip::udp;

asio::awaitable<expected<Reservation, ReservationError>> make_reservation(
    asio::any_io_executor executor, ReservationRequest request) {
  // A fresh socket per entry: one allocation per 5-tuple, and re-allocating on a socket right
  // after a delete gets 437 for about a second (notes/coturn-reservations.md).
  udp::socket socket(executor);
  boost::system::error_code ec;
  auto family = request.coturn.ip.is_v4() ? udp::v4() : udp::v6();
  socket.open(family, ec);
  if (!ec) socket.bind(udp::endpoint(family, 0), ec);
  if (ec) {
    co_return unexpected(ReservationError{turn::Failure::kServerError, 0,
                                          "cannot open a UDP socket: " + ec.message()});
  }
  thread_local SystemRandom random;
  turn::ClientConfig config;
  config.server = request.coturn;
  config.credentials = std::move(request.credentials);
  config.software = "roam-relay";
  // Loopback or LAN to its own coturn: a lost request should cost 100 ms, not 500.
  config.retransmission.initial_rto = milliseconds(100);
  config.retransmission.max_transmissions = 5;
  config.retransmission.final_wait_rtos = 8;
  turn::Client client(config, random);
  const TimePoint start = Clock::now();
  client.allocate(start, {.even_port = true, .reserve_next = true});

  std::optional<Reservation> made;
  std::optional<ReservationError> failed;
  auto result = co_await net::drive_turn_client(
      socket, client, start + request.timeout, [&](const turn::Event& event) {
        if (auto* a = std::get_if<turn::Allocated>(&event)) {
          if (!a->reservation_token || a->relayed.port % 2 != 0) {
            failed = ReservationError{turn::Failure::kMalformedResponse, 0,
                                      "coturn did not reserve an even/odd port pair"};
          } else {
            SocketAddress next = a->relayed;
            next.port = static_cast<std::uint16_t>(next.port + 1);
            made = Reservation{next, *a->reservation_token, Clock::now() - start};
          }
          client.deallocate(Clock::now());
          return false;
        }
        if (auto* f = std::get_if<turn::AllocationFailed>(&event)) {
          failed = ReservationError{f->failure, f->code, f->reason};
          return true;
        }
        return std::holds_alternative<turn::Deallocated>(event);
      });
  if (made && !failed) co_return *made;
  if (failed) co_return unexpected(*failed);
  (void)result;
  co_return unexpected(ReservationError{turn::Failure::kTimeout, 0, "no answer in time"});
}

}  // namespace roam::relay
