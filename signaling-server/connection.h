// One client connection: TLS, the HTTP upgrade (Origin allowlist), the WebSocket, and the
// protocol (docs/signaling-protocol.md). A reader and a writer coroutine on the shard's
// thread; everything else reaches the connection by posting to that thread.
//
// Bounds (style.md "bounded everything"): handshake and hello timeouts, idle timeout with
// pings, read size (close 1009), token-bucket rate limit (error, then close 1008 on a flood),
// sessions per connection, and a send queue bounded in messages and bytes: a client that
// does not read is disconnected, never buffered for.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/net/tls_stream.h"
#include "common/signaling/message.h"
#include "signaling-server/keep_alive.h"
#include "signaling-server/outgoing.h"
#include "signaling-server/rate_limiter.h"
#include "signaling-server/server_context.h"

namespace roam::signaling {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  Connection(ServerContext& context, Shard& shard, boost::asio::ip::tcp::socket socket,
             ConnectionLimiter::Slot slot);
  ~Connection();

  // Runs the connection until it ends.
  void start();
  executor_type get_executor() { return shard_.io.get_executor(); }

  // --- on this connection's thread only ----------------------------------------------------
  void deliver(Outgoing message);
  // Sends a close frame with `code` after what is queued; `why` is counted once.
  void close(std::uint16_t code, std::string reason, DisconnectReason why);
  // 4001 if this connection's registry generation is older than `generation`.
  void kick_if_older(std::int64_t generation);
  // The heartbeat (re-)registered this peer in Redis with `generation`.
  void on_registered(std::int64_t generation);

 private:
  using Stream = boost::beast::websocket::stream<net::TlsStream>;

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<bool> accept();
  boost::asio::awaitable<void> write_loop();
  // Rate limit, parse, and the hello gate: the message to act on, or nothing (already answered).
  std::optional<ClientMessage> admit(std::string_view text, TimePoint received_at);
  // Acts on `message` at once when that needs no waiting (true); otherwise handle() does.
  bool handled_now(ClientMessage& message, TimePoint received_at);
  boost::asio::awaitable<void> handle(ClientMessage message, TimePoint received_at);
  boost::asio::awaitable<void> on_hello(Hello hello);
  boost::asio::awaitable<void> on_connect(Connect connect);
  // `cached` when from_cache() had it, otherwise a grant from the pool (one Redis round trip).
  boost::asio::awaitable<GrantOutcome> grant_for(std::optional<GrantOutcome> cached,
                                                 const std::vector<RelayInstance>& ranked,
                                                 const std::string& peer, std::int64_t now_unix);
  boost::asio::awaitable<void> on_candidate(Candidate candidate, TimePoint received_at);
  boost::asio::awaitable<void> on_bye(Bye bye, TimePoint received_at);
  // The forwarded form of `candidate` (its request id dropped), or nothing after answering a
  // malformed candidate with an error.
  std::optional<Outgoing> candidate_outgoing(Candidate& candidate, TimePoint received_at);
  // The other peer of `session` if this peer belongs to it (cache, then Redis).
  struct Lookup {
    std::optional<std::string> other;
    bool redis_failed = false;
  };
  boost::asio::awaitable<Lookup> other_side(const std::string& session);
  boost::asio::awaitable<void> forward(const std::string& other, Outgoing message,
                                       const std::optional<std::string>& request,
                                       const std::string& session);
  void send(const ServerMessage& message);
  void send_error(ErrorCode code, std::string message, std::optional<std::string> request = {},
                  std::optional<std::string> session = {});
  void enqueue(Outgoing message);
  void hard_close(DisconnectReason why);
  void arm_expiry(std::int64_t expires_unix);
  // The next keep-alive tick, idle_timeout / 2 from now (keep_alive.h).
  void arm_keep_alive();
  // A close frame from the client: Beast answers it and waits for the client to close TCP.
  void on_close_frame();
  boost::asio::awaitable<void> cleanup();

  ServerContext& context_;
  Shard& shard_;
  // The certificate this connection was accepted with: a reload must not free it under ws_.
  std::shared_ptr<boost::asio::ssl::context> tls_;
  Stream ws_;
  ConnectionLimiter::Slot slot_;
  boost::asio::steady_timer wake_writer_;
  boost::asio::steady_timer hello_timer_;
  boost::asio::steady_timer expiry_timer_;
  boost::asio::steady_timer keep_alive_timer_;
  boost::asio::steady_timer closing_timer_;
  KeepAlive keep_alive_;
  RateLimiter limiter_;
  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  bool writer_idle_ = false;  // the writer waits on wake_writer_ (only then is a wake-up due)
  bool alive_ = true;         // false once the stream failed or was torn down
  std::optional<std::pair<std::uint16_t, std::string>> closing_;
  std::optional<DisconnectReason> why_;
  bool authenticated_ = false;
  std::string peer_;
  PeerInfo info_;
  std::int64_t generation_ = 0;
  // session id → the other peer, for the sessions this connection takes part in.
  std::unordered_map<std::string, std::string> sessions_;
};

}  // namespace roam::signaling
