// The agent runtime shared by the user commands (send, recv, pipe, perf): signaling link,
// path engine (continuous ICE), one QUIC session with the peer, the path event log, the status
// socket (`roam status`) and optional Prometheus metrics. A command is an Application: it gets
// the connected session and stream events, and says when it is done.
#pragma once

#include <iosfwd>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "agent/paths/event_log.h"
#include "agent/paths/path_options.h"
#include "agent/quic/connection.h"
#include "agent/session/quic_session.h"
#include "common/util/time.h"

namespace roam::agent {

// Options every session command shares (flags, ROAM_* environment, TOML config file).
struct AgentOptions : PathOptions {
  std::string metrics_address;  // host:port for Prometheus; empty: none
  std::string status_socket;    // empty: the default (status_socket_dir()/roam-<pid>.sock)
  // Give up when the QUIC connection is not up this long after start (0: wait forever).
  Duration connect_timeout = seconds(30);
};

// Where running agents put their status sockets: $ROAM_STATUS_DIR, else
// $XDG_RUNTIME_DIR/roam, else /tmp/roam-<uid>.
std::string status_socket_dir();

// What an application can do with the running session.
class SessionContext {
 public:
  virtual ~SessionContext() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  virtual QuicSession& quic() = 0;
  virtual EventLog& events() = 0;
  virtual const std::string& peer() const = 0;
  // Ends the run with this exit status: closes QUIC (error 0 when status is 0), says bye.
  virtual void stop(int status, const std::string& reason) = 0;
};

class Application {
 public:
  virtual ~Application() = default;
  virtual std::string name() const = 0;  // the command, for messages and status
  // The QUIC connection is up (streams may be opened).
  virtual void connected(SessionContext& context) = 0;
  virtual void stream_opened(quic::StreamId) {}
  virtual void stream_data(quic::StreamId, ByteSpan, bool /*fin*/) {}
  virtual void stream_acked(quic::StreamId) {}
  virtual void stream_reset(quic::StreamId, std::uint64_t /*app_error*/) {}
  virtual void path_switched(const PathSwitch&) {}
  // The connection closed before the application stopped the run. Return the exit status.
  virtual int connection_closed(const std::string& reason) = 0;
  // The command's part of `roam status`.
  virtual boost::json::object status() const { return {}; }
};

// Runs until the application stops, the connection closes, SIGINT/SIGTERM or a fatal error.
// Returns the exit status (2: bad options).
int run_agent(const AgentOptions& options, Application& application, std::ostream& err);

}  // namespace roam::agent
