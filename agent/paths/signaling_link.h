// The agent's connection to roam-signaling (docs/signaling-protocol.md): connects to the first
// reachable URL, says `hello`, and keeps the connection up: after a drop (network change,
// instance restart 1012, kill) it retries the same URL at once, then every other URL at once,
// then backs off exponentially between rounds over the URLs, and says `hello` again; sessions
// survive on the server side. Messages sent while disconnected wait in a bounded queue and go out
// after the next `welcome`.
//
// Fatal answers end the link instead of retrying: a refused token (1008 bad_token /
// token_expired / unsupported_version) and being replaced by another login of the same peer
// (4001). Thread model: one executor; every call on it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/net/wss_client.h"
#include "common/signaling/message.h"
#include "common/util/expected.h"
#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::agent {

// "wss://host:port/path" → WssClientOptions (host, port, path). Port defaults to 443; "ws://"
// is refused (the protocol requires TLS).
expected<net::WssClientOptions, std::string> parse_wss_url(const std::string& url);

struct SignalingLinkOptions {
  std::vector<std::string> urls;  // tried in order
  signaling::Hello hello;         // sent after every connect (token, ice, fingerprint, ...)
  Duration backoff_initial = milliseconds(250);
  Duration backoff_max = seconds(5);
  // Detects a silently dead connection (the server also pings after 30 s idle by default).
  Duration idle_timeout = seconds(20);
  std::size_t max_queued = 256;  // messages waiting while disconnected
};

class SignalingLink {
 public:
  using MessageHandler = std::function<void(const signaling::ServerMessage&)>;
  // connected = true after each welcome (with the URL and the server's name), false after each
  // drop (with the reason). `fatal` is true when the link gives up (see above).
  struct StateChange {
    bool connected = false;
    std::string url;
    std::string detail;  // server name when connected, the error otherwise
    bool fatal = false;
  };
  using StateHandler = std::function<void(const StateChange&)>;

  SignalingLink(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
                SignalingLinkOptions options, MessageHandler on_message, StateHandler on_state);
  ~SignalingLink();
  SignalingLink(const SignalingLink&) = delete;
  SignalingLink& operator=(const SignalingLink&) = delete;

  void start();
  // Sends now when connected, else queues (the oldest queued message is dropped when full;
  // returns false then).
  bool send(const signaling::ClientMessage& message);
  // Drops the connection (no closing handshake: the process is going away) and stops
  // reconnecting. `on_stopped` (if given) is posted once the link's coroutines have ended and
  // no operation of its connection is pending, at once if it never started or already ended.
  // Wait for it before stopping the io_context: a coroutine still suspended then would be
  // destroyed by ~io_context, after services its connection's destructor still uses.
  void stop(std::function<void()> on_stopped = {});
  bool connected() const;
  // An interface address went away: if the connection uses it, it is dead (its packets can
  // neither leave nor arrive), so reconnect now instead of waiting for TCP to time out.
  void address_removed(const IpAddress& address);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace roam::agent
