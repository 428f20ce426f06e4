// Runs a sans-I/O turn::Client over a real Asio UDP socket: sends what it queues, feeds it the
// server's datagrams, fires its timers. Shared by `roam doctor` and roam-relay's token pool.
#pragma once

#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>

#include "common/turn/client.h"
#include "common/util/time.h"

namespace roam::net {

enum class DriveResult {
  kStopped,   // on_event returned true
  kDeadline,  // `deadline` passed first
  kSocketError,
};

// Drives `client` until `on_event` returns true for an event, or `deadline`. Relayed peer data
// goes to `on_data` (may be empty: then it is dropped). Datagrams not from the client's server
// are ignored. The socket must be open; it is not closed.
boost::asio::awaitable<DriveResult> drive_turn_client(
    boost::asio::ip::udp::socket& socket, turn::Client& client, TimePoint deadline,
    const std::function<bool(const turn::Event&)>& on_event,
    const std::function<void(const turn::PeerData&)>& on_data = {});

}  // namespace roam::net
