#include "agent/session/status_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

namespace roam::agent {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {
// A status answer is a few KiB; more means something is wrong with the peer of the socket.
constexpr std::size_t kMaxAnswer = 1 << 20;
// How long `roam status` waits for one agent's answer.
constexpr int kAnswerTimeoutSeconds = 2;
}  // namespace

struct StatusServer::State {
  explicit State(asio::any_io_executor executor) : acceptor(executor) {}
  local::acceptor acceptor;
  Provider provider;
  bool stopped = false;

  void accept(const std::shared_ptr<State>& self) {
    acceptor.async_accept([self](const boost::system::error_code& ec, local::socket socket) {
      if (self->stopped || ec == asio::error::operation_aborted) return;
      if (!ec) {
        auto text = std::make_shared<std::string>(boost::json::serialize(self->provider()) + "\n");
        auto s = std::make_shared<local::socket>(std::move(socket));
        asio::async_write(*s, asio::buffer(*text),
                          [s, text](const boost::system::error_code&, std::size_t) {});
      }
      self->accept(self);
    });
  }
};

expected<std::unique_ptr<StatusServer>, std::string> StatusServer::start(
    asio::any_io_executor executor, const std::string& path, Provider provider) {
  std::unique_ptr<StatusServer> server(new StatusServer());
  server->state_ = std::make_shared<State>(executor);
  server->state_->provider = std::move(provider);
  server->path_ = path;
  ::unlink(path.c_str());
  boost::system::error_code ec;
  auto& acceptor = server->state_->acceptor;
  acceptor.open(local(), ec);
  if (!ec) acceptor.bind(local::endpoint(path), ec);
  if (!ec) ::chmod(path.c_str(), 0600);
  if (!ec) acceptor.listen(8, ec);
  if (ec) return unexpected("status socket " + path + ": " + ec.message());
  server->state_->accept(server->state_);
  return server;
}

StatusServer::~StatusServer() {
  if (!state_) return;
  state_->stopped = true;
  boost::system::error_code ec;
  state_->acceptor.close(ec);
  ::unlink(path_.c_str());
}

expected<std::string, std::string> query_status(const std::string& path) {
  asio::io_context io;
  local::socket socket(io);
  boost::system::error_code ec;
  socket.connect(local::endpoint(path), ec);
  if (ec) return unexpected(path + ": " + ec.message());
  // A stuck agent must not hang `roam status`.
  const timeval timeout{.tv_sec = kAnswerTimeoutSeconds, .tv_usec = 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string text;
  char buffer[4096];
  // Plain recv(): Asio's synchronous read would wait out SO_RCVTIMEO with poll() forever.
  for (;;) {
    const ssize_t n = ::recv(socket.native_handle(), buffer, sizeof buffer, 0);
    if (n == 0) break;  // the agent closed: the answer is complete
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      return unexpected(path + ": " +
                        (e == EAGAIN || e == EWOULDBLOCK
                             ? "no answer within " + std::to_string(kAnswerTimeoutSeconds) + " s"
                             : std::string(std::strerror(e))));
    }
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxAnswer) return unexpected(path + ": answer too large");
  }
  return text;
}

}  // namespace roam::agent
