// Live interface monitoring: an Asio-driven NETLINK_ROUTE socket subscribed to link and
// address changes (RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR). It dumps every link
// and address once, then streams kernel notifications into a netlink::InterfaceTable and
// reports each change of the usable set (interface up/down, address added/removed) with a
// monotonic timestamp. Lost notifications (ENOBUFS: the socket's receive buffer overflowed),
// interrupted dumps and corrupt buffers trigger a full re-dump whose difference to the old
// table is reported, so consumers never have to re-read everything themselves.
//
// The ICE layer maps kInterfaceDown to Agent::remove_interface, kAddressAdded to a new host
// candidate and kAddressRemoved to remove_local_candidate (architecture.md, "Continuous ICE").
// One object per thread: every handler runs on the executor given at construction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/netlink/interface_table.h"
#include "common/util/expected.h"
#include "common/util/time.h"

namespace roam::agent {

struct InterfaceMonitorOptions {
  netlink::UsablePolicy policy;
  // SO_RCVBUF(FORCE) of the netlink socket: a burst of changes larger than this is lost
  // (ENOBUFS) and costs a re-dump. 1 MiB holds thousands of notifications.
  int receive_buffer_bytes = 1 << 20;
  // A dump that has not finished after this long is abandoned and started again.
  Duration dump_timeout = seconds(3);
  // Called after each re-dump that followed lost events (its changes were reported first),
  // with the number of re-dumps so far; for logs and tests.
  std::function<void(std::uint64_t)> on_resync;
};

class InterfaceMonitor {
 public:
  using ChangeHandler = std::function<void(const std::vector<netlink::InterfaceChange>&)>;
  // Called once when the first full dump has been applied (its changes were reported first).
  using ReadyHandler = std::function<void()>;
  // A fatal socket error after start(); the monitor has stopped. The text names the cause.
  using ErrorHandler = std::function<void(const std::string&)>;

  InterfaceMonitor(boost::asio::any_io_executor executor, InterfaceMonitorOptions options,
                   ChangeHandler on_change, ReadyHandler on_ready = {}, ErrorHandler on_error = {});
  ~InterfaceMonitor();  // stops; no handler runs afterwards
  InterfaceMonitor(const InterfaceMonitor&) = delete;
  InterfaceMonitor& operator=(const InterfaceMonitor&) = delete;

  // Opens and binds the netlink socket and sends the first dump request. Errors: the socket
  // cannot be created or bound (text with errno's message), e.g. outside Linux or when
  // netlink is filtered by a seccomp policy.
  expected<void, std::string> start();
  // Closes the socket; pending handlers are dropped. Idempotent.
  void stop();

  bool ready() const;
  const netlink::InterfaceTable& table() const;
  // Full re-dumps done after the first (ENOBUFS, interrupted dumps, corrupt buffers, timeouts).
  std::uint64_t resyncs() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace roam::agent
