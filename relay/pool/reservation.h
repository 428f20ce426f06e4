// Makes one reservation the way notes/coturn-reservations.md describes: a fresh socket,
// Allocate with EVEN-PORT(R=1), keep the RESERVATION-TOKEN for port E+1, delete the
// allocation at once (the reservation survives it).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/turn/client.h"
#include "common/util/expected.h"

namespace roam::relay {

struct Reservation {
  SocketAddress relayed;  // E+1 on coturn's relay address: what the token redeems to
  std::uint64_t token = 0;
  Duration latency{};  // first request → Allocate success
};

struct ReservationError {
  turn::Failure failure;
  int code = 0;
  std::string reason;
};

struct ReservationRequest {
  SocketAddress coturn;
  turn::Credentials credentials;
  Duration timeout = seconds(5);
};

boost::asio::awaitable<expected<Reservation, ReservationError>> make_reservation(
    boost::asio::any_io_executor executor, ReservationRequest request);

}  // namespace roam::relay
