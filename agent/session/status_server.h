// The running agent's status socket (`roam status`): a Unix stream socket that answers every
// connection with one JSON object (sessions, pairs with state and RTT, the active path and why
// it is relayed) and a newline, then closes. Local only: the socket file is created mode 0600
// in a directory that is the user's own.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "common/util/expected.h"

namespace roam::agent {

class StatusServer {
 public:
  using Provider = std::function<boost::json::object()>;
  // Listens on `path` (an existing stale socket file there is replaced).
  static expected<std::unique_ptr<StatusServer>, std::string> start(
      boost::asio::any_io_executor executor, const std::string& path, Provider provider);
  ~StatusServer();  // stops listening and removes the socket file
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;
  const std::string& path() const { return path_; }

 private:
  StatusServer() = default;
  struct State;
  std::shared_ptr<State> state_;
  std::string path_;
};

// Asks one status socket; the JSON text it answered, or why not.
expected<std::string, std::string> query_status(const std::string& path);

}  // namespace roam::agent
