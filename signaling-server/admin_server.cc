#include "signaling-server/admin_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace roam::signaling {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kRequestTimeout{5};
constexpr std::uint32_t kMaxHeaderBytes = 4096;
}  // namespace

asio::ip::tcp::acceptor listen_on(asio::io_context& io, const HostPort& address, const char* what) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.host, ec);
  if (ec) {
    throw std::runtime_error(std::string(what) + ": '" + address.host + "' is not an IP address");
  }
  asio::ip::tcp::endpoint endpoint(ip, address.port);
  asio::ip::tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error(std::string(what) + ": cannot listen on " + address.host + ":" +
                             std::to_string(address.port) + ": " + ec.message());
  }
  return acceptor;
}

AdminServer::AdminServer(asio::io_context& io, const HostPort& listen,
                         std::function<Health()> health,
                         std::shared_ptr<prometheus::Registry> registry)
    : acceptor_(listen_on(io, listen, "--admin-listen")),
      health_(std::move(health)),
      registry_(std::move(registry)) {}

std::uint16_t AdminServer::port() const {
  return acceptor_.local_endpoint().port();
}

void AdminServer::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

void AdminServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

asio::awaitable<void> AdminServer::accept_loop() {
  while (acceptor_.is_open()) {
    auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(asio::ip::tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  stream.expires_after(kRequestTimeout);
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  auto [read_ec, n] = co_await http::async_read(stream, buffer, parser, kUseTuple);
  if (read_ec) co_return;
  const auto& request = parser.get();
  http::response<http::string_body> response{http::status::ok, request.version()};
  response.keep_alive(false);
  response.set(http::field::server, "roam-signaling");
  auto target = request.target();
  if (request.method() != http::verb::get) {
    response.result(http::status::method_not_allowed);
    response.body() = "GET only\n";
  } else if (target == "/healthz") {
    auto health = health_();
    response.result(health.serving ? http::status::ok : http::status::service_unavailable);
    response.set(http::field::content_type, "application/json");
    response.body() = std::move(health.body);
  } else if (target == "/metrics") {
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = prometheus::TextSerializer().Serialize(registry_->Collect());
  } else {
    response.result(http::status::not_found);
    response.body() = "try /healthz or /metrics\n";
  }
  response.prepare_payload();
  co_await http::async_write(stream, response, kUseTuple);
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace roam::signaling
