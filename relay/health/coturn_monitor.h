// Watches one coturn for roam-relay: is it up (a STUN Binding is answered), and is it still
// the same process (a long-lived "canary" allocation is refreshed every check; a restarted
// coturn has forgotten it and answers 437). Reservation tokens live only in the memory of the
// coturn process that made them, so every restart or outage starts a new pool epoch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/turn/client.h"
#include "common/util/random.h"
#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::relay {

struct CoturnStatus {
  bool healthy = false;
  // Increments when coturn comes (back) up or is found restarted: tokens of older epochs are
  // void.
  std::uint64_t epoch = 0;
};

struct CoturnMonitorConfig {
  SocketAddress coturn;
  Duration interval = seconds(1);
  int failures_before_down = 3;
  // TURN REST credentials for a new canary. They must stay valid for `canary_lifetime`: an
  // allocation keeps the username it was made with (another one gets 441), so the canary is
  // replaced, not re-credentialed, before they expire.
  std::function<turn::Credentials()> credentials;
  Duration canary_lifetime = std::chrono::minutes(30);
};

class CoturnMonitor {
 public:
  CoturnMonitor(boost::asio::any_io_executor executor, CoturnMonitorConfig config);
  ~CoturnMonitor();

  // Checks every interval until stop(); calls `on_change` whenever healthy or epoch changes.
  boost::asio::awaitable<void> run(std::function<void(const CoturnStatus&)> on_change);
  // Ends run() after the current check and releases the canary allocation.
  void stop();
  const CoturnStatus& status() const { return status_; }

 private:
  boost::asio::awaitable<bool> stun_check();
  enum class Canary { kAlive, kMade, kNotMade, kNoAnswer, kLost };
  // Refreshes the canary allocation, or makes it when there is none.
  boost::asio::awaitable<Canary> canary_check();
  boost::asio::awaitable<void> release_canary();

  boost::asio::any_io_executor executor_;
  CoturnMonitorConfig config_;
  CoturnStatus status_;
  SystemRandom random_;
  int consecutive_failures_ = 0;
  bool stopping_ = false;
  std::unique_ptr<boost::asio::ip::udp::socket> canary_socket_;
  std::unique_ptr<turn::Client> canary_;
  TimePoint canary_made_at_{};
  std::shared_ptr<boost::asio::steady_timer> sleeper_;
};

}  // namespace roam::relay
