// A WebSocket-over-TLS client (RFC 6455 over TLS 1.2/1.3, wolfSSL via TlsStream), for the
// agent's signaling connection and for tests and benchmarks that talk to roam-signaling.
// Text messages only: it carries the JSON of docs/signaling-protocol.md but knows nothing of it.
//
// Contracts:
// - Thread model: one executor. Every member function must be called, and every returned
//   awaitable run, on the executor given to the constructor (a single-threaded io_context or
//   a strand). Nothing here is thread-safe.
// - At most one receive() may be pending at a time. Keep one pending while the connection is
//   idle: Beast answers the server's pings (and the closing handshake) only while it reads.
// - send() and close() may be called from any number of coroutines at once: the class queues
//   them (FIFO, at most WssClientOptions::max_queued_sends waiting behind the write in
//   progress). send() completes when its own message has been handed to TCP, or fails.
// - Errors are human text naming the cause (TLS verification failures name the certificate
//   problem, a server close names its code and reason). After a server close, close_info()
//   holds the code and reason for programs that act on them (1008, 1009, 4001, 1012, ...).
// - Any failed operation except a refused send (queue full, not connected) leaves the client
//   unusable; make a new one to reconnect. abort() closes the socket at once, making every
//   pending operation complete with an error. Destroy the client only when none is pending.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/net/tls_stream.h"
#include "common/util/expected.h"
#include "common/util/time.h"

namespace roam::net {

// A TLS client context for WSS connections: TLS 1.2 minimum, peers verified against the PEM
// certificates in `ca_file` (empty: the system trust store). Share one context among all
// connections of a process. Errors name the file and why it could not be loaded.
expected<boost::asio::ssl::context, std::string> make_tls_client_context(
    const std::string& ca_file);

struct WssClientOptions {
  std::string host;  // IP literal or DNS name to connect to
  std::uint16_t port = 443;
  std::string path = "/";
  // Name the certificate must match (DNS name or IP literal) and, unless it is an IP literal,
  // the SNI host name (RFC 6066 §3 forbids literals there). Empty: `host`.
  std::string server_name;
  // false only for benchmarks: accepts any certificate (no chain or name check).
  bool verify_peer = true;
  // Sent as the Origin header (what a browser would send); native clients send none.
  std::optional<std::string> origin;
  // Source address of the TCP connection (the kernel picks the port at connect time).
  std::optional<boost::asio::ip::address> local_address;
  // Larger incoming messages fail receive() and close the connection with 1009 (RFC 6455
  // §7.4.1 "message too big"). 64 KiB = the protocol's limits.max_message_bytes.
  std::size_t read_message_limit = 64 * 1024;
  // Bound on name resolution + TCP connect + TLS handshake, and separately on the HTTP
  // Upgrade and on the closing handshake.
  Duration handshake_timeout = seconds(10);
  // When set, the client pings after half of it without traffic and fails the connection
  // when nothing arrives for the whole of it. The server pings too, so this is optional.
  std::optional<Duration> idle_timeout;
  // Writes that may wait behind the one in progress before send() is refused.
  std::size_t max_queued_sends = 256;
  std::string user_agent = "roam-wss-client";
  // The kernel stamps arriving segments: see last_arrival_unix_ns() (benchmarks).
  bool stamp_arrivals = false;
};

// The close frame the server sent (RFC 6455 §7.1.5, §7.1.6).
struct CloseInfo {
  std::uint16_t code = 0;  // 1005 ("no status") when the frame carried none
  std::string reason;
};

class WssClient {
 public:
  // `tls` must outlive the client.
  WssClient(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
            WssClientOptions options);
  WssClient(const WssClient&) = delete;
  WssClient& operator=(const WssClient&) = delete;
  ~WssClient();

  // Resolves, connects (from local_address if set), TLS handshake with verification, then the
  // WebSocket Upgrade. Errors name the step: "connect to 127.0.0.1:8443: Connection refused",
  // "TLS handshake with 127.0.0.1:8443: certificate verification failed: certificate has
  // expired", "WebSocket upgrade: server answered HTTP 403 Forbidden", "... timed out after N ms".
  boost::asio::awaitable<expected<void, std::string>> connect();

  // Sends one text message. Errors: "not connected", "send queue full (N waiting)", or the
  // write failure (which ends the connection). A server that closes while a large message is
  // still being written (e.g. 1009 for an oversize one) may reset the TCP connection: the send
  // then fails with "Broken pipe"/"connection reset" and the close code is lost with it.
  //
  // `more`: another send() follows at once. The message is then only encrypted into the TLS
  // buffer (up to TlsStream::kCorkLimit bytes) and goes out with the next send() without
  // `more`, so a burst costs one TCP send. The caller must end a burst with such a send.
  boost::asio::awaitable<expected<void, std::string>> send(std::string text, bool more = false);

  // The next text message. Errors: "closed by server: code 4001 (replaced)" (close_info() is
  // set; also when the server then fails to end TCP within handshake_timeout, "..., then TCP
  // not ended within N ms"), "message larger than 65536 bytes: closed with 1009", "received a
  // binary message" (the connection stays open), or a transport error ("connection reset by
  // server: ...").
  boost::asio::awaitable<expected<std::string, std::string>> receive();

  // Closing handshake with `code` (RFC 6455 §7.4.1; 1000 = normal). A pending receive()
  // completes with the server's answering close. Fails if the connection is not open.
  boost::asio::awaitable<expected<void, std::string>> close(std::uint16_t code = 1000,
                                                            std::string reason = {});

  // Closes the TCP socket now, without any closing handshake.
  void abort();

  bool is_open() const { return ws_.is_open() && !failed_; }
  // The TCP connection's local address (after connect()); empty when not connected.
  std::optional<boost::asio::ip::address> local_address() const;
  const std::optional<CloseInfo>& close_info() const { return close_info_; }
  // With options().stamp_arrivals: right after receive(), no earlier than the moment the
  // message reached this host's TCP stack (TlsStream::last_arrival_unix_ns()); else 0.
  std::int64_t last_arrival_unix_ns() const { return ws_.next_layer().last_arrival_unix_ns(); }
  const WssClientOptions& options() const { return options_; }
  boost::asio::any_io_executor get_executor() { return executor_; }

 private:
  using Stream = boost::beast::websocket::stream<TlsStream>;

  boost::asio::awaitable<expected<void, std::string>> acquire_writer();
  void release_writer();
  std::string describe_tls_failure(const boost::system::error_code& ec);
  std::string describe_read_failure(const boost::system::error_code& ec);
  // "closed by server: code 4001 (replaced)", from close_info_ (which must be set).
  std::string describe_close() const;
  std::string target() const;
  // Closes the socket at `deadline` (ending whatever step waits on it) and notes the timeout.
  void arm_watchdog(TimePoint deadline);
  // Keeps the code and reason of the close frame Beast has read (RFC 6455 §5.5.1).
  void keep_close_reason();

  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& ex) : timer(ex, TimePoint::max()) {}
    boost::asio::steady_timer timer;
    bool granted = false;
  };

  boost::asio::any_io_executor executor_;
  WssClientOptions options_;
  Stream ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer watchdog_;
  bool timed_out_ = false;
  bool connected_ = false;
  bool failed_ = false;
  bool writing_ = false;
  bool closing_ = false;  // close() sent our close frame
  std::deque<Waiter*> waiters_;
  std::optional<CloseInfo> close_info_;
  std::string name_mismatch_;         // set by the verify callback when the name check fails
  std::optional<long> verify_error_;  // the first chain error the verify callback saw
  int verify_error_depth_ = 0;
};

}  // namespace roam::net
