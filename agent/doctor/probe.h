// One interface's connectivity probes for `roam doctor`: a STUN Binding (server-reflexive
// address) and a TURN allocation (relayed address), each over the given socket with a bound
// on time. Coroutines on the socket's executor.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "common/turn/client.h"
#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::agent {

struct StunProbeResult {
  std::optional<SocketAddress> mapped;  // server-reflexive address
  Duration rtt{};
  int transmissions = 0;
  std::string error;  // empty on success
};

struct TurnProbeResult {
  std::optional<SocketAddress> relayed;
  std::optional<SocketAddress> mapped;
  int round_trips = 0;
  Duration elapsed{};
  std::string realm;  // as announced by the server
  bool deallocated = false;
  std::string error;  // empty on success
};

boost::asio::awaitable<StunProbeResult> probe_stun(boost::asio::ip::udp::socket& socket,
                                                   SocketAddress server, Duration timeout);

boost::asio::awaitable<TurnProbeResult> probe_turn(boost::asio::ip::udp::socket& socket,
                                                   SocketAddress server,
                                                   turn::Credentials credentials, Duration timeout);

}  // namespace roam::agent
