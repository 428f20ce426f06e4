#include "common/net/wss_client.h"

#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

namespace roam::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

std::string ms_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

bool is_ip_literal(const std::string& name) {
  error_code ec;
  (void)asio::ip::make_address(name, ec);
  return !ec;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// wolfSSL and OpenSSL keep their own error queues; the error_code's message is often terse
// ("unexpected result"), so name the common transport causes in words.
std::string transport_text(const error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
    return "connection closed by the server without a closing handshake";
  }
  if (ec == asio::error::connection_reset) return "connection reset by the server";
  if (ec == asio::error::operation_aborted) return "aborted";
  return ec.message();
}

// X509_verify_cert_error_string(), with OpenSSL's wording for the common chain errors that
// wolfSSL's version calls "unknown error number".
std::string verify_error_text(long code) {
  switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      return "unable to get issuer certificate";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "certificate signature failure";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "certificate is not yet valid";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "certificate has expired";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return "self-signed certificate (not in the CA file)";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return "self-signed certificate in certificate chain (not in the CA file)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      return "unable to get local issuer certificate (the issuer is not in the CA file)";
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "unable to verify the first certificate";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return "certificate chain too long";
    case X509_V_ERR_CERT_REVOKED:
      return "certificate revoked";
    case X509_V_ERR_INVALID_CA:
      return "invalid CA certificate";
    case X509_V_ERR_CERT_UNTRUSTED:
      return "certificate not trusted";
    default:
      break;
  }
  const char* text = ::X509_verify_cert_error_string(code);
  return text ? text : "unknown verification error";
}

}  // namespace

expected<ssl::context, std::string> make_tls_client_context(const std::string& ca_file) {
  ssl::context ctx(ssl::context::tls_client);
  error_code ec;
  // RFC 8996: TLS 1.0 and 1.1 are deprecated.
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                  ec);
  if (ec)
    return unexpected("TLS client context: cannot restrict protocol versions: " + ec.message());
  if (ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec) {
      return unexpected("TLS client context: cannot load the system trust store (" + ec.message() +
                        "); pass a CA file");
    }
  } else {
    // Checked here because wolfSSL's load failure leaves its error queue empty, which Asio's
    // load_verify_file() then reports as success.
    std::ifstream in(ca_file);
    const std::string pem((std::istreambuf_iterator<char>(in)), {});
    if (!in.is_open() || pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return unexpected("TLS client context: cannot read CA certificates from '" + ca_file + "' (" +
                        (in.is_open() ? "no PEM certificate in it" : std::strerror(errno)) + ")");
    }
    if (::SSL_CTX_load_verify_locations(ctx.native_handle(), ca_file.c_str(), nullptr) != 1) {
      return unexpected("TLS client context: cannot load CA certificates from '" + ca_file +
                        "': not valid PEM certificates");
    }
  }
  ctx.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return unexpected("TLS client context: cannot enable verification: " + ec.message());
  return ctx;
}

WssClient::WssClient(asio::any_io_executor executor, ssl::context& tls, WssClientOptions options)
    : executor_(executor), options_(std::move(options)), ws_(executor, tls), watchdog_(executor) {
  if (options_.server_name.empty()) options_.server_name = options_.host;
}

WssClient::~WssClient() = default;

void WssClient::arm_watchdog(TimePoint deadline) {
  watchdog_.expires_at(deadline);
  watchdog_.async_wait([this](error_code ec) {
    if (ec) return;  // cancelled (possibly by the destructor: `this` is not touched then)
    timed_out_ = true;
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
  });
}

std::string WssClient::target() const {
  const bool v6 = options_.host.find(':') != std::string::npos;
  return (v6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(options_.port);
}

asio::awaitable<expected<void, std::string>> WssClient::connect() {
  using namespace asio::experimental::awaitable_operators;
  if (connected_ || failed_) co_return unexpected(std::string("connect: already used"));
  auto& socket = beast::get_lowest_layer(ws_);
  const TimePoint deadline = Clock::now() + options_.handshake_timeout;
  const std::string where = target();

  // 1. Addresses: an IP literal as is, else a bounded DNS lookup.
  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  const auto literal = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, options_.port);
  } else {
    tcp::resolver resolver(executor_);
    asio::steady_timer timer(executor_, deadline);
    auto result =
        co_await (resolver.async_resolve(options_.host, std::to_string(options_.port), kUse) ||
                  timer.async_wait(kUse));
    if (result.index() == 1) {
      co_return unexpected("resolve " + options_.host + ": timed out after " +
                           ms_text(options_.handshake_timeout));
    }
    auto [rec, results] = std::get<0>(std::move(result));
    if (rec) co_return unexpected("resolve " + options_.host + ": " + rec.message());
    for (const auto& entry : results)
      endpoints.push_back(entry.endpoint());
  }

  // 2. TCP, from local_address when set; the first endpoint that answers wins.
  std::string last_error = "no address of the right family";
  bool tcp_up = false;
  arm_watchdog(deadline);
  for (const auto& ep : endpoints) {
    if (socket.is_open()) socket.close(ec);
    if (options_.local_address && options_.local_address->is_v4() != ep.address().is_v4()) {
      continue;
    }
    socket.open(ep.protocol(), ec);
    if (ec) {
      last_error = "socket: " + ec.message();
      continue;
    }
    if (options_.local_address) {
      // Let connect() pick the source port per 4-tuple instead of bind() reserving one per
      // address: a load generator holds tens of thousands of connections (Linux 4.2+).
      const int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket.bind(tcp::endpoint(*options_.local_address, 0), ec);
      if (ec) {
        co_return unexpected("bind to " + options_.local_address->to_string() + ": " +
                             ec.message());
      }
    }
    auto [cec] = co_await socket.async_connect(ep, kUse);
    if (!cec && !timed_out_) {
      tcp_up = true;
      break;
    }
    // Name the address only when the host name resolved to several.
    last_error =
        (endpoints.size() > 1 ? endpoint_text(ep) + ": " : std::string()) +
        (timed_out_ ? "timed out after " + ms_text(options_.handshake_timeout) : cec.message());
    if (timed_out_) break;
  }
  if (tcp_up && options_.stamp_arrivals && !ws_.next_layer().stamp_arrivals()) {
    tcp_up = false;
    last_error = std::string("SO_TIMESTAMPNS: ") + std::strerror(errno);
  }
  if (!tcp_up) {
    watchdog_.cancel();
    failed_ = true;
    co_return unexpected("connect to " + where + ": " + last_error);
  }
  socket.set_option(tcp::no_delay(true), ec);  // small messages, latency matters

  // 3. TLS with SNI and certificate + name verification.
  auto& tls = ws_.next_layer();
  if (!is_ip_literal(options_.server_name)) {
    ::SSL_set_tlsext_host_name(tls.native_handle(), options_.server_name.c_str());
  }
  if (options_.verify_peer) {
    tls.set_verify_mode(ssl::verify_peer);
    tls.set_verify_callback([this, check = ssl::host_name_verification(options_.server_name)](
                                bool preverified, ssl::verify_context& ctx) {
      if (!preverified && !verify_error_) {
        verify_error_ = ::X509_STORE_CTX_get_error(ctx.native_handle());
        verify_error_depth_ = ::X509_STORE_CTX_get_error_depth(ctx.native_handle());
      }
      const bool ok = check(preverified, ctx);
      if (preverified && !ok) {
        name_mismatch_ = "the server's certificate is not valid for '" + options_.server_name +
                         "' (no matching subjectAltName)";
      }
      return ok;
    });
  } else {
    tls.set_verify_mode(ssl::verify_none);
  }
  auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, kUse);
  watchdog_.cancel();  // the WebSocket layer has its own timeouts from here on
  if (hec || timed_out_) {
    failed_ = true;
    co_return unexpected("TLS handshake with " + where + ": " + describe_tls_failure(hec));
  }

  // 4. HTTP Upgrade (RFC 6455 §4.1).
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options_.handshake_timeout;
  timeouts.idle_timeout =
      options_.idle_timeout ? *options_.idle_timeout : websocket::stream_base::none();
  timeouts.keep_alive_pings = options_.idle_timeout.has_value();
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [ua = options_.user_agent, origin = options_.origin](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, ua);
        if (origin) req.set(beast::http::field::origin, *origin);
      }));
  ws_.read_message_max(options_.read_message_limit);
  ws_.auto_fragment(false);  // one message = one frame, as the protocol describes it
  websocket::response_type response;
  auto [wec] = co_await ws_.async_handshake(response, where, options_.path, kUse);
  if (wec) {
    failed_ = true;
    if (wec == websocket::error::upgrade_declined) {
      co_return unexpected("WebSocket upgrade at " + where + options_.path +
                           ": server answered HTTP " + std::to_string(response.result_int()) + " " +
                           std::string(response.reason()));
    }
    co_return unexpected("WebSocket upgrade at " + where + options_.path + ": " +
                         (wec == beast::error::timeout
                              ? "timed out after " + ms_text(options_.handshake_timeout)
                              : transport_text(wec)));
  }
  ws_.text(true);
  // Beast bounds the closing handshake it starts (close()) by handshake_timeout, but after the
  // server's close frame it answers and then waits for the end of TCP under the open state's
  // timer only: without idle_timeout, none. A server that never ends TCP would then hold
  // receive() for ever; the watchdog closes the socket after handshake_timeout instead.
  // (roam-signaling's Connection::on_close_frame bounds the same wait on the server side.)
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind != websocket::frame_type::close) return;
    keep_close_reason();
    arm_watchdog(Clock::now() + options_.handshake_timeout);
  });
  connected_ = true;
  co_return expected<void, std::string>{};
}

void WssClient::keep_close_reason() {
  const auto& reason = ws_.reason();
  close_info_ = CloseInfo{reason.code, std::string(reason.reason.c_str())};
}

std::string WssClient::describe_tls_failure(const error_code& ec) {
  if (timed_out_) return "timed out after " + ms_text(options_.handshake_timeout);
  if (!name_mismatch_.empty()) return "certificate verification failed: " + name_mismatch_;
  if (options_.verify_peer) {
    const long result = ::SSL_get_verify_result(ws_.next_layer().native_handle());
    if (result != X509_V_OK || verify_error_) {
      const long code = verify_error_ ? *verify_error_ : result;
      return "certificate verification failed: " + verify_error_text(code) + " (X509 error " +
             std::to_string(code) + " at chain depth " + std::to_string(verify_error_depth_) +
             "; is the CA file the one that issued the server's certificate?)";
    }
  }
  return transport_text(ec);
}

std::string WssClient::describe_close() const {
  std::string text =
      closing_ ? "closed: the server answered our close with code " : "closed by server: code ";
  text += std::to_string(close_info_->code);
  if (!close_info_->reason.empty()) text += " (" + close_info_->reason + ")";
  return text;
}

std::string WssClient::describe_read_failure(const error_code& ec) {
  if (ec == websocket::error::closed) {
    keep_close_reason();
    return describe_close();
  }
  if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) {
    return "message larger than " + std::to_string(options_.read_message_limit) +
           " bytes: closed with 1009";
  }
  if (closing_ && (ec == asio::error::operation_aborted || ec == asio::error::eof)) {
    return "closed by this client";
  }
  if (close_info_ && timed_out_) {
    return describe_close() + ", then TCP not ended within " + ms_text(options_.handshake_timeout) +
           " (closed by this client)";
  }
  if (ec == beast::error::timeout) {
    return "no traffic from the server for " +
           ms_text(options_.idle_timeout.value_or(options_.handshake_timeout)) + " (timeout)";
  }
  return transport_text(ec);
}

asio::awaitable<expected<void, std::string>> WssClient::acquire_writer() {
  if (!writing_) {
    writing_ = true;
    co_return expected<void, std::string>{};
  }
  if (waiters_.size() >= options_.max_queued_sends) {
    co_return unexpected("send queue full (" + std::to_string(waiters_.size()) + " waiting)");
  }
  Waiter waiter(executor_);
  waiters_.push_back(&waiter);
  co_await waiter.timer.async_wait(kUse);  // release_writer() cancels it to hand over the turn
  if (!waiter.granted) {
    std::erase(waiters_, &waiter);
    co_return unexpected(std::string("send cancelled"));
  }
  co_return expected<void, std::string>{};
}

void WssClient::release_writer() {
  if (waiters_.empty()) {
    writing_ = false;
    return;
  }
  Waiter* next = waiters_.front();
  waiters_.pop_front();
  next->granted = true;  // writing_ stays true: the turn passes directly
  next->timer.cancel();
}

asio::awaitable<expected<void, std::string>> WssClient::send(std::string text, bool more) {
  if (!connected_ || !is_open()) co_return unexpected(std::string("send: not connected"));
  auto turn = co_await acquire_writer();
  if (!turn) co_return unexpected("send: " + turn.error());
  if (!is_open()) {
    release_writer();
    co_return unexpected(std::string("send: connection closed"));
  }
  // With sends queued behind this one (or announced by `more`), only encrypt: the last of the
  // burst sends them all.
  auto& tls = ws_.next_layer();
  tls.set_corked(more || !waiters_.empty());
  auto [ec, n] = co_await ws_.async_write(asio::buffer(text), kUse);
  tls.set_corked(false);
  if (!ec && !more && waiters_.empty() && tls.buffered_output() > 0) {
    std::tie(ec, n) = co_await tls.async_flush(kUse);
  }
  release_writer();
  if (ec) {
    failed_ = true;
    co_return unexpected("send: " + transport_text(ec));
  }
  co_return expected<void, std::string>{};
}

asio::awaitable<expected<std::string, std::string>> WssClient::receive() {
  if (!connected_) co_return unexpected(std::string("receive: not connected"));
  if (failed_ && !ws_.is_open()) {
    co_return unexpected(close_info_ ? describe_close()
                                     : std::string("receive: connection closed"));
  }
  auto [ec, n] = co_await ws_.async_read(buffer_, kUse);
  if (ec) {
    failed_ = true;
    co_return unexpected(describe_read_failure(ec));
  }
  if (!ws_.got_text()) {
    buffer_.consume(buffer_.size());
    co_return unexpected("received a binary message (" + std::to_string(n) + " bytes)");
  }
  std::string text(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  co_return text;
}

asio::awaitable<expected<void, std::string>> WssClient::close(std::uint16_t code,
                                                              std::string reason) {
  if (!connected_ || !is_open()) co_return unexpected(std::string("close: not connected"));
  auto turn = co_await acquire_writer();
  if (!turn) co_return unexpected("close: " + turn.error());
  if (!is_open()) {
    release_writer();
    co_return unexpected(std::string("close: connection already closed"));
  }
  closing_ = true;
  websocket::close_reason frame;
  frame.code = code;
  // RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the code.
  const auto size = std::min(reason.size(), frame.reason.max_size());
  frame.reason.assign(reason.data(), size);
  auto [ec] = co_await ws_.async_close(frame, kUse);
  release_writer();
  if (ec) {
    failed_ = true;
    co_return unexpected("close: " + transport_text(ec));
  }
  co_return expected<void, std::string>{};
}

void WssClient::abort() {
  failed_ = true;
  error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
}

std::optional<boost::asio::ip::address> WssClient::local_address() const {
  boost::system::error_code ec;
  auto endpoint = boost::beast::get_lowest_layer(ws_).local_endpoint(ec);
  if (ec) return std::nullopt;
  return endpoint.address();
}

}  // namespace roam::net
