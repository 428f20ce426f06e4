#include "signaling-server/connection.h"

#include <array>
#include <span>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "common/auth/jwt.h"
#include "common/ice/candidate_text.h"
#include "common/log/log.h"
#include "common/net/websocket_frame.h"
#include "common/redis/command.h"
#include "common/util/bytes.h"
#include "common/util/random.h"
#include "signaling-server/redis_layout.h"
#include "signaling-server/router.h"

namespace roam::signaling {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// TLS handshake plus the HTTP upgrade request must complete within this (slowloris bound).
constexpr std::chrono::seconds kHandshakeTimeout{10};
// The upgrade request's header section; browsers send ~1-2 KiB.
constexpr std::uint32_t kMaxUpgradeHeaderBytes = 8 * 1024;
// Messages encrypted before one flush at most (besides TlsStream's own byte limit), so that
// metrics and a slow socket are seen to regularly.
constexpr std::size_t kMaxWriteBatch = 64;
// Yields of a woken writer while the sender of its newest message has more input (write_loop).
constexpr int kMaxCoalescingYields = 8;

// RFC 6455 §7.4.1 close codes, plus the application range (4000-4999) for "replaced".
constexpr std::uint16_t kClosePolicy = 1008;
constexpr std::uint16_t kCloseUnsupportedData = 1003;
constexpr std::uint16_t kCloseServiceRestart = 1012;
constexpr std::uint16_t kCloseReplaced = 4001;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_session_id() {
  std::array<std::byte, kSessionIdSize / 2> bytes{};
  SystemRandom().fill(bytes);
  return to_hex(bytes);
}

// Where a session's participants are stored for peers that reconnect elsewhere.
std::string encode_session_record(const std::string& a, const std::string& b) {
  return json::serialize(json::object{{"a", a}, {"b", b}});
}

std::optional<std::string> other_participant(std::string_view record, const std::string& self) {
  boost::system::error_code ec;
  auto value = json::parse(record, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto* a = value.as_object().if_contains("a");
  const auto* b = value.as_object().if_contains("b");
  if (!a || !b || !a->is_string() || !b->is_string()) return std::nullopt;
  if (a->as_string() == self) return std::string(b->as_string());
  if (b->as_string() == self) return std::string(a->as_string());
  return std::nullopt;
}

// A detached Redis write whose result only matters to metrics (session bookkeeping).
void fire_and_forget(redis::Client& redis, ServerMetrics& metrics, redis::Command command) {
  asio::co_spawn(
      redis.get_executor(),
      [&redis, &metrics, command = std::move(command)]() -> awaitable<void> {
        auto result = co_await redis.command(command);
        if (!result) metrics.redis_errors.Increment();
      },
      asio::detached);
}

}  // namespace

Connection::Connection(ServerContext& context, Shard& shard, asio::ip::tcp::socket socket,
                       ConnectionLimiter::Slot slot)
    : context_(context),
      shard_(shard),
      tls_(context.tls),
      ws_(std::move(socket), *tls_),
      slot_(std::move(slot)),
      wake_writer_(shard.io),
      hello_timer_(shard.io),
      expiry_timer_(shard.io),
      keep_alive_timer_(shard.io),
      closing_timer_(shard.io),
      limiter_(context.config.rate, context.config.burst, context.config.flood_close_after,
               Clock::now()) {
  context_.metrics.connections.Increment();
}

Connection::~Connection() {
  context_.metrics.connections.Decrement();
}

void Connection::start() {
  context_.directory.track(shared_from_this());
  asio::co_spawn(get_executor(), run(), asio::detached);
}

awaitable<bool> Connection::accept() {
  // Slowloris bound: closing the socket ends whichever step is still waiting.
  hello_timer_.expires_after(kHandshakeTimeout);
  hello_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    boost::system::error_code ignored;
    beast::get_lowest_layer(self->ws_).close(ignored);
  });
  auto [tls_ec] =
      co_await ws_.next_layer().async_handshake(asio::ssl::stream_base::server, kUseTuple);
  if (tls_ec) co_return false;

  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(kMaxUpgradeHeaderBytes);
  auto [read_ec, read_n] = co_await http::async_read(ws_.next_layer(), buffer, parser, kUseTuple);
  if (read_ec) co_return false;
  auto request = parser.release();

  auto refuse = [&](http::status status, std::string body) -> awaitable<void> {
    http::response<http::string_body> response{status, request.version()};
    response.set(http::field::server, "roam-signaling");
    response.set(http::field::content_type, "text/plain");
    response.keep_alive(false);
    response.body() = std::move(body);
    response.prepare_payload();
    co_await http::async_write(ws_.next_layer(), response, kUseTuple);
  };
  if (!websocket::is_upgrade(request)) {
    co_await refuse(http::status::upgrade_required,
                    "roam-signaling speaks WebSocket (docs/signaling-protocol.md)\n");
    co_return false;
  }
  auto origin = request.find(http::field::origin);
  if (origin != request.end()) {
    const auto& allowed = context_.config.allowed_origins;
    bool ok = std::find(allowed.begin(), allowed.end(), "*") != allowed.end() ||
              std::find(allowed.begin(), allowed.end(), origin->value()) != allowed.end();
    if (!ok) {
      context_.metrics.forbidden_origin.Increment();
      co_await refuse(http::status::forbidden, "Origin not allowed\n");
      co_return false;
    }
  }

  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kHandshakeTimeout;  // also bounds the closing handshake
  // Idle pings and the idle timeout are KeepAlive's (keep_alive.h says why not Beast's).
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(http::field::server, "roam-signaling");
  }));
  ws_.read_message_max(context_.config.max_message_bytes);
  ws_.auto_fragment(false);
  // Called from within the reader's own operation: `this` is alive (the reader holds `self`).
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::close) on_close_frame();
  });
  auto [accept_ec] = co_await ws_.async_accept(request, kUseTuple);
  hello_timer_.cancel();  // the WebSocket's own timeouts take over (run() arms the hello timeout)
  co_return !accept_ec;
}

awaitable<void> Connection::run() {
  auto self = shared_from_this();
  if (!co_await accept()) {
    why_ = DisconnectReason::kHandshakeFailed;
    co_await cleanup();
    co_return;
  }
  hello_timer_.expires_after(context_.config.hello_timeout);
  hello_timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec && !self->authenticated_) {
      self->close(kClosePolicy, "hello timeout", DisconnectReason::kHelloTimeout);
    }
  });
  arm_keep_alive();
  if (context_.draining)
    close(kCloseServiceRestart, "server shutting down", DisconnectReason::kShutdown);
  asio::co_spawn(get_executor(), write_loop(), asio::detached);

  beast::flat_buffer buffer;
  while (alive_) {
    auto [ec, n] = co_await ws_.async_read(buffer, kUseTuple);
    if (ec) {
      if (!why_) {
        if (ec == websocket::error::message_too_big) {
          why_ = DisconnectReason::kTooBig;
        } else if (ec == beast::error::timeout) {
          // Beast's only timer left bounds closing handshakes; the server's own closes set why_
          // first, and so does on_close_frame() for the client's.
          why_ = DisconnectReason::kCloseTimeout;
        } else {
          why_ = DisconnectReason::kClientClosed;
        }
      }
      break;
    }
    auto received_at = Clock::now();
    if (!closing_) {
      if (!ws_.got_text()) {
        close(kCloseUnsupportedData, "binary frames are not supported", DisconnectReason::kBinary);
      } else {
        std::string_view text(static_cast<const char*>(buffer.data().data()), buffer.size());
        if (auto message = admit(text, received_at)) {
          if (!handled_now(*message, received_at))
            co_await handle(std::move(*message), received_at);
        }
      }
    }
    buffer.consume(buffer.size());
    // One large message must not pin its buffer for the life of the connection.
    if (buffer.capacity() > 16 * 1024) buffer.shrink_to_fit();
  }
  co_await cleanup();
}

awaitable<void> Connection::write_loop() {
  auto self = shared_from_this();
  auto& tls = ws_.next_layer();
  // What a batch wrote, for the metrics once it is on the wire.
  struct Written {
    std::string_view type;
    Outgoing::Timing timing;
    TimePoint received_at;
    std::int64_t received_unix_us;
  };
  std::vector<Written> batch;  // emptied of its memory before waiting idle
  while (alive_) {
    if (!ws_.is_open()) {
      // Beast's reader has answered a close frame: nothing may follow it on the wire.
      queue_.clear();
      queued_bytes_ = 0;
    }
    if (!queue_.empty()) {
      // A burst from one sender arrives in one recv() and is parsed one frame per completion
      // handler; each frame's delivery would wake this writer for a send() of its own. While
      // the sender still has input buffered, yield to the handlers queued on this thread: the
      // rest of the burst joins this batch, which leaves in one send() (a post costs no system
      // call, a loopback send() several microseconds). A message that arrived alone, as under
      // a paced load, goes out at once: yielding would only queue it behind everyone else.
      // (Only this writer takes from the queue: it stays non-empty across the yields.)
      for (int i = 0; i < kMaxCoalescingYields && queue_.back().sender_has_more &&
                      queue_.size() < kMaxWriteBatch;
           ++i) {
        co_await asio::post(get_executor(), asio::use_awaitable);
      }
      if (!ws_.is_open() || !alive_) continue;  // a close may have been answered meanwhile
      // Everything queued now is framed and encrypted into the TLS buffer here, without
      // waiting, and goes out with one send() per batch. Beast is bypassed for data frames (a
      // chain of three composed operations per message); every frame is one synchronous
      // write_buffered(), so the control frames Beast's reader answers with (pong, close) land
      // between whole frames.
      bool failed = false;
      while (!queue_.empty() && alive_ && batch.size() < kMaxWriteBatch &&
             tls.buffered_output() < net::TlsStream::kCorkLimit) {
        Outgoing message = std::move(queue_.front());
        queue_.pop_front();
        queued_bytes_ -= message.text.size();
        net::ServerFrameHeader header(net::WebSocketOpcode::kText, message.text.size());
        const std::array<asio::const_buffer, 2> frame = {
            asio::buffer(header.view().data(), header.size), asio::buffer(message.text)};
        boost::system::error_code ec;
        tls.write_buffered(frame, ec);
        if (ec) {
          failed = true;
          break;
        }
        batch.push_back(
            {message.type, message.timing, message.received_at, message.received_unix_us});
      }
      if (!failed && alive_) {
        auto [ec, n] = co_await tls.async_flush(kUseTuple);
        failed = static_cast<bool>(ec);
      }
      if (failed) {
        hard_close(why_.value_or(DisconnectReason::kClientClosed));
        break;
      }
      auto now = Clock::now();
      auto now_unix_us = unix_micros_now();
      for (const auto& written : batch) {
        context_.metrics.message(Direction::kOut, written.type).Increment();
        if (written.timing == Outgoing::Timing::kLocal) {
          context_.metrics.forward_local_seconds.Observe(
              std::chrono::duration<double>(now - written.received_at).count());
        } else if (written.timing == Outgoing::Timing::kRemote) {
          context_.metrics.forward_remote_seconds.Observe(
              static_cast<double>(now_unix_us - written.received_unix_us) * 1e-6);
        }
      }
      batch.clear();
      continue;
    }
    if (closing_) {
      websocket::close_reason reason(static_cast<websocket::close_code>(closing_->first),
                                     closing_->second);
      co_await ws_.async_close(reason, kUseTuple);
      break;  // the reader sees the end of the closing handshake
    }
    std::vector<Written>().swap(batch);
    writer_idle_ = true;
    wake_writer_.expires_at(TimePoint::max());
    co_await wake_writer_.async_wait(kUseTuple);
    writer_idle_ = false;
  }
}

void Connection::enqueue(Outgoing message) {
  if (!alive_ || closing_) return;
  if (queue_.size() >= context_.config.send_queue ||
      queued_bytes_ + message.text.size() > context_.config.send_queue_bytes) {
    // A client that does not read is cut off, never buffered for (security.md).
    spdlog::info("peer '{}': send queue full ({} messages, {} bytes): disconnecting a slow reader",
                 peer_, queue_.size(), queued_bytes_);
    hard_close(DisconnectReason::kSlowReader);
    return;
  }
  queued_bytes_ += message.text.size();
  queue_.push_back(std::move(message));
  if (writer_idle_) wake_writer_.cancel();
}

void Connection::deliver(Outgoing message) {
  if (message.op == Outgoing::SessionOp::kOpen) {
    sessions_[message.session] = message.peer;
  } else if (message.op == Outgoing::SessionOp::kClose) {
    sessions_.erase(message.session);
  }
  enqueue(std::move(message));
}

void Connection::send(const ServerMessage& message) {
  if (const auto* error = std::get_if<Error>(&message)) {
    context_.metrics.error(error->code).Increment();
  }
  Outgoing out;
  out.text = encode(message);
  out.type = type_name(message);
  enqueue(std::move(out));
}

void Connection::send_error(ErrorCode code, std::string message, std::optional<std::string> request,
                            std::optional<std::string> session) {
  if (message.size() > kMaxErrorMessageSize) message.resize(kMaxErrorMessageSize);
  send(Error{code, std::move(message), std::move(request), std::move(session)});
}

void Connection::close(std::uint16_t code, std::string reason, DisconnectReason why) {
  if (closing_ || !alive_) return;
  why_ = why;
  closing_.emplace(code, std::move(reason));
  wake_writer_.cancel();
}

void Connection::hard_close(DisconnectReason why) {
  if (!why_) why_ = why;
  if (!alive_) return;
  alive_ = false;
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
  wake_writer_.cancel();
}

void Connection::arm_keep_alive() {
  keep_alive_timer_.expires_after(context_.config.idle_timeout / 2);
  keep_alive_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    // A closing handshake has its own bound (Beast's handshake timeout).
    if (ec || !self->alive_ || self->closing_) return;
    switch (self->keep_alive_.on_tick(self->ws_.next_layer().receives())) {
      case KeepAlive::Action::kNone:
        break;
      case KeepAlive::Action::kPing:
        self->ws_.async_ping(
            {}, [self](boost::system::error_code) { self->keep_alive_.on_ping_written(); });
        break;
      case KeepAlive::Action::kTimeOut:
        self->hard_close(DisconnectReason::kIdle);
        return;
    }
    self->arm_keep_alive();
  });
}

void Connection::on_close_frame() {
  // Beast's closing timer is armed only for a close the server begins (async_close); after
  // answering a client's close frame it waits for the client's side of TCP to close with the
  // timer of the open state, which is off here (KeepAlive replaced Beast's idle timeout). Left
  // to KeepAlive, such a connection lived up to 1.5 idle timeouts and was counted as idle.
  if (!alive_) return;
  closing_timer_.expires_after(kHandshakeTimeout);
  closing_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->hard_close(DisconnectReason::kCloseTimeout);
  });
}

void Connection::kick_if_older(std::int64_t generation) {
  if (authenticated_ && generation_ < generation) {
    close(kCloseReplaced, "replaced by a newer connection", DisconnectReason::kReplaced);
  }
}

void Connection::on_registered(std::int64_t generation) {
  if (!authenticated_ || generation <= 0 || generation == generation_) return;
  generation_ = generation;
  context_.directory.set_generation(peer_, this, generation);
}

void Connection::arm_expiry(std::int64_t expires_unix) {
  auto remaining = std::chrono::seconds(std::max<std::int64_t>(0, expires_unix - unix_now()));
  expiry_timer_.expires_after(remaining);
  expiry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    self->send_error(ErrorCode::kTokenExpired, "token expired: reconnect with a fresh token");
    self->close(kClosePolicy, "token expired", DisconnectReason::kTokenExpired);
  });
}

std::optional<ClientMessage> Connection::admit(std::string_view text, TimePoint received_at) {
  auto& metrics = context_.metrics;
  switch (limiter_.on_message(received_at)) {
    case RateLimiter::Verdict::kAccept:
      break;
    case RateLimiter::Verdict::kDropAndWarn:
      metrics.message(Direction::kIn, "invalid").Increment();
      send_error(ErrorCode::kRateLimited,
                 "rate limit: at most " + std::to_string(context_.config.rate) +
                     " messages per second (burst " + std::to_string(context_.config.burst) +
                     "); messages are dropped until the rate falls");
      return std::nullopt;
    case RateLimiter::Verdict::kDrop:
      metrics.message(Direction::kIn, "invalid").Increment();
      return std::nullopt;
    case RateLimiter::Verdict::kClose:
      metrics.message(Direction::kIn, "invalid").Increment();
      close(kClosePolicy, "rate limit exceeded", DisconnectReason::kFlood);
      return std::nullopt;
  }
  auto parsed = parse_client_message(text);
  if (!parsed) {
    metrics.message(Direction::kIn, "invalid").Increment();
    auto& e = parsed.error();
    send_error(e.code, e.message, e.request, e.session);
    if (e.code == ErrorCode::kUnsupportedVersion) {
      close(kClosePolicy, "unsupported protocol version", DisconnectReason::kBadVersion);
    }
    return std::nullopt;
  }
  metrics.message(Direction::kIn, type_name(*parsed)).Increment();
  const bool is_hello = std::holds_alternative<Hello>(*parsed);
  if (!authenticated_ && !is_hello) {
    send_error(ErrorCode::kHelloRequired, "send hello with a token first");
    return std::nullopt;
  }
  if (authenticated_ && is_hello) {
    send_error(ErrorCode::kAlreadyAuthenticated, "hello was already accepted on this connection");
    return std::nullopt;
  }
  return std::move(*parsed);
}

bool Connection::handled_now(ClientMessage& message, TimePoint received_at) {
  // The hot path, a candidate within a session whose other peer is on this instance, needs
  // no Redis and so no coroutine frames (one per call level on the slow path).
  auto* candidate = std::get_if<Candidate>(&message);
  if (!candidate) return false;
  auto session = sessions_.find(candidate->session);
  if (session == sessions_.end()) return false;
  auto local = context_.directory.connection_of(session->second);
  if (!local) return false;
  if (auto out = candidate_outgoing(*candidate, received_at)) {
    out->sender_has_more = ws_.next_layer().has_buffered_input();
    post_to(local, std::move(*out));
  }
  return true;
}

awaitable<void> Connection::handle(ClientMessage message, TimePoint received_at) {
  if (auto* hello = std::get_if<Hello>(&message)) {
    co_await on_hello(std::move(*hello));
  } else if (auto* connect = std::get_if<Connect>(&message)) {
    co_await on_connect(std::move(*connect));
  } else if (auto* candidate = std::get_if<Candidate>(&message)) {
    co_await on_candidate(std::move(*candidate), received_at);
  } else if (auto* bye = std::get_if<Bye>(&message)) {
    co_await on_bye(std::move(*bye), received_at);
  }
}

awaitable<void> Connection::on_hello(Hello hello) {
  const auto& config = context_.config;
  auth::jwt::VerifyOptions options;
  options.audience = config.audience;
  const std::array<ByteSpan, 2> jwt_keys{as_bytes(config.jwt_secret),
                                         as_bytes(config.jwt_previous_secret)};
  std::size_t signed_by = 0;
  auto claims =
      auth::jwt::verify_any(std::span(jwt_keys).first(config.jwt_previous_secret.empty() ? 1 : 2),
                            hello.token, unix_now(), options, &signed_by);
  if (claims &&
      (!valid_peer_id(claims->subject) || claims->subject.find(':') != std::string::npos)) {
    // ':' would make the TURN REST username ambiguous (draft-uberti-behave-turn-rest §2.2).
    claims = unexpected(auth::jwt::JwtError::kBadSubject);
  }
  // The JWT leeway absorbs clock skew for nbf, but a connection lives only until exp (the
  // expiry timer below): a token already past exp is refused here rather than welcomed and
  // closed a moment later.
  if (claims && claims->expires_at <= unix_now()) {
    claims = unexpected(auth::jwt::JwtError::kExpired);
  }
  if (!claims) {
    bool expired = claims.error() == auth::jwt::JwtError::kExpired;
    send_error(expired ? ErrorCode::kTokenExpired : ErrorCode::kBadToken,
               std::string(auth::jwt::describe(claims.error())));
    close(kClosePolicy, expired ? "token expired" : "bad token",
          expired ? DisconnectReason::kTokenExpired : DisconnectReason::kBadToken);
    co_return;
  }
  authenticated_ = true;
  (signed_by == 0 ? context_.metrics.tokens_current_key : context_.metrics.tokens_previous_key)
      .Increment();
  hello_timer_.cancel();
  peer_ = claims->subject;
  info_ = PeerInfo{hello.fingerprint, hello.ice, hello.region};
  auto self = shared_from_this();
  if (auto replaced = context_.directory.add(peer_, self, info_)) {
    asio::post(replaced->get_executor(), [replaced] {
      replaced->close(kCloseReplaced, "replaced by a newer connection",
                      DisconnectReason::kReplaced);
    });
  }
  context_.metrics.peers.Increment();
  arm_expiry(claims->expires_at);

  // Registered before `welcome`, so a peer on another instance can reach us once we are told
  // we are in. Without Redis we serve local peers; the heartbeat registers us later.
  std::vector<std::string> keys{layout::peer_key(peer_)};
  auto ttl_ms = std::to_string(std::chrono::milliseconds(layout::kPeerTtl).count());
  std::vector<std::string> args{config.instance_id, ttl_ms, encode_peer_info(info_), peer_};
  auto registered =
      co_await shard_.redis->eval(context_.register_script, std::move(keys), std::move(args));
  if (registered && registered->as_integer()) {
    generation_ = *registered->as_integer();
    context_.directory.set_generation(peer_, this, generation_);
  } else {
    context_.metrics.redis_errors.Increment();
  }
  Welcome welcome;
  welcome.peer = peer_;
  welcome.server = config.instance_id;
  welcome.token_expires = claims->expires_at;
  welcome.limits.max_message_bytes = config.max_message_bytes;
  welcome.limits.messages_per_second = config.rate;
  welcome.limits.burst = config.burst;
  welcome.limits.max_sessions = config.max_sessions;
  welcome.limits.idle_timeout_s = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(config.idle_timeout).count());
  welcome.limits.hello_timeout_s = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(config.hello_timeout).count());
  send(welcome);
}

awaitable<void> Connection::on_connect(Connect connect) {
  auto started = Clock::now();
  auto& metrics = context_.metrics;
  if (connect.peer == peer_) {
    send_error(ErrorCode::kSelfConnect, "cannot connect to yourself", connect.request);
    co_return;
  }
  if (sessions_.size() >= context_.config.max_sessions) {
    send_error(ErrorCode::kTooManySessions,
               "at most " + std::to_string(context_.config.max_sessions) +
                   " sessions per connection: send bye for finished ones",
               connect.request);
    co_return;
  }
  PeerInfo other;
  if (auto local = context_.directory.find(connect.peer)) {
    other = local->info;
  } else {
    auto key = layout::peer_key(connect.peer);
    auto found = co_await redis::run(*shard_.redis, "HGET", key, "info");
    if (!found) {
      metrics.redis_errors.Increment();
      send_error(ErrorCode::kRoutingUnavailable,
                 "peer '" + connect.peer + "' is not on this instance and Redis is unreachable",
                 connect.request);
      co_return;
    }
    if (!found->as_string()) {
      send_error(ErrorCode::kPeerUnavailable, "peer '" + connect.peer + "' is not connected",
                 connect.request);
      co_return;
    }
    if (auto info = decode_peer_info(*found->as_string())) other = std::move(*info);
  }

  auto now = unix_now();
  const auto& relays = shard_.relays->relays();
  auto own_region = info_.region ? std::optional<std::string_view>(*info_.region) : std::nullopt;
  auto other_region = other.region ? std::optional<std::string_view>(*other.region) : std::nullopt;
  // Both sides' grants: from the shard's token cache under load, without waiting; otherwise
  // the take-token scripts of both sides share one Redis round trip.
  const auto own_ranked = rank_relays(relays, own_region);
  const auto other_ranked = rank_relays(relays, other_region);
  auto& grants = context_.grants;
  auto own_cached = grants.from_cache(*shard_.redis, shard_.tokens, own_ranked, peer_, now);
  auto other_cached =
      grants.from_cache(*shard_.redis, shard_.tokens, other_ranked, connect.peer, now);
  GrantOutcome own_grant, other_grant;
  if (own_cached && other_cached) {
    own_grant = std::move(*own_cached);
    other_grant = std::move(*other_cached);
  } else {
    std::tie(own_grant, other_grant) =
        co_await (grant_for(std::move(own_cached), own_ranked, peer_, now) &&
                  grant_for(std::move(other_cached), other_ranked, connect.peer, now));
  }
  for (const auto* g : {&own_grant, &other_grant}) {
    switch (g->kind) {
      case GrantOutcome::Kind::kToken:
        metrics.grants_with_token.Increment();
        break;
      case GrantOutcome::Kind::kNoToken:
        metrics.pool_misses.Increment();
        break;
      case GrantOutcome::Kind::kNoRelay:
        metrics.no_relay.Increment();
        break;
    }
  }
  auto candidates_of = [](const GrantOutcome& g) {
    std::vector<std::string> out;
    if (g.grant && g.grant->address) {
      out.push_back(relay_candidate_text(*g.grant->address, g.turn_server));
    }
    return out;
  };

  auto session_id = new_session_id();
  Session theirs;
  theirs.session = session_id;
  theirs.role = Role::kControlled;
  theirs.peer = peer_;
  theirs.fingerprint = info_.fingerprint;
  theirs.ice = info_.ice;
  theirs.relay = other_grant.grant;
  theirs.remote_candidates = candidates_of(own_grant);
  Outgoing to_other;
  to_other.text = encode(ServerMessage{theirs});
  to_other.type = "session";
  to_other.op = Outgoing::SessionOp::kOpen;
  to_other.session = session_id;
  to_other.peer = peer_;
  auto delivery =
      co_await context_.router->deliver(*shard_.redis, connect.peer, std::move(to_other));
  if (delivery == Delivery::kPeerUnavailable || delivery == Delivery::kRoutingUnavailable) {
    bool no_redis = delivery == Delivery::kRoutingUnavailable;
    send_error(no_redis ? ErrorCode::kRoutingUnavailable : ErrorCode::kPeerUnavailable,
               "peer '" + connect.peer +
                   (no_redis ? "' is not on this instance and Redis is unreachable"
                             : "' is not connected"),
               connect.request);
    co_return;
  }

  Session mine;
  mine.session = session_id;
  mine.request = connect.request;
  mine.role = Role::kControlling;
  mine.peer = connect.peer;
  mine.fingerprint = other.fingerprint;
  mine.ice = other.ice;
  mine.relay = own_grant.grant;
  mine.remote_candidates = candidates_of(other_grant);
  sessions_[session_id] = connect.peer;
  send(mine);
  metrics.sessions.Increment();
  metrics.relay_grant_seconds.Observe(
      std::chrono::duration<double>(Clock::now() - started).count());

  auto ttl_ms = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(context_.config.session_ttl).count());
  redis::Command store{"SET", layout::session_key(session_id),
                       encode_session_record(peer_, connect.peer), "PX", ttl_ms};
  fire_and_forget(*shard_.redis, metrics, std::move(store));
}

awaitable<GrantOutcome> Connection::grant_for(std::optional<GrantOutcome> cached,
                                              const std::vector<RelayInstance>& ranked,
                                              const std::string& peer, std::int64_t now_unix) {
  if (cached) co_return std::move(*cached);
  co_return co_await context_.grants.issue(*shard_.redis, shard_.tokens, ranked, peer, now_unix);
}

awaitable<Connection::Lookup> Connection::other_side(const std::string& session) {
  if (auto it = sessions_.find(session); it != sessions_.end()) co_return Lookup{it->second};
  auto key = layout::session_key(session);
  auto record = co_await redis::run(*shard_.redis, "GET", key);
  if (!record) {
    context_.metrics.redis_errors.Increment();
    co_return Lookup{std::nullopt, true};
  }
  if (!record->as_string()) co_return Lookup{};
  auto other = other_participant(*record->as_string(), peer_);
  // A reconnected peer learns its sessions back from Redis; the cache keeps the same bound.
  if (other && sessions_.size() < context_.config.max_sessions) sessions_[session] = *other;
  co_return Lookup{other};
}

awaitable<void> Connection::forward(const std::string& other, Outgoing message,
                                    const std::optional<std::string>& request,
                                    const std::string& session) {
  auto delivery = co_await context_.router->deliver(*shard_.redis, other, std::move(message));
  if (delivery == Delivery::kPeerUnavailable) {
    send_error(ErrorCode::kPeerUnavailable, "peer '" + other + "' is not connected", request,
               session);
  } else if (delivery == Delivery::kRoutingUnavailable) {
    send_error(ErrorCode::kRoutingUnavailable,
               "peer '" + other + "' is not on this instance and Redis is unreachable", request,
               session);
  }
}

awaitable<void> Connection::on_candidate(Candidate candidate, TimePoint received_at) {
  auto lookup = co_await other_side(candidate.session);
  if (!lookup.other) {
    if (lookup.redis_failed) {
      send_error(ErrorCode::kRoutingUnavailable,
                 "session not known on this instance and Redis is unreachable", candidate.request,
                 candidate.session);
    } else {
      send_error(ErrorCode::kUnknownSession, "no such session for this peer", candidate.request,
                 candidate.session);
    }
    co_return;
  }
  auto request = candidate.request;
  if (auto out = candidate_outgoing(candidate, received_at)) {
    co_await forward(*lookup.other, std::move(*out), request, candidate.session);
  }
}

std::optional<Outgoing> Connection::candidate_outgoing(Candidate& candidate,
                                                       TimePoint received_at) {
  if (candidate.candidate) {
    auto parsed = ice::parse_candidate(*candidate.candidate);
    if (!parsed) {
      send_error(ErrorCode::kBadCandidate, std::string(ice::describe(parsed.error())),
                 candidate.request, candidate.session);
      return std::nullopt;
    }
  }
  candidate.request.reset();  // request ids are the sender's business
  Outgoing out;
  out.text = encode(ServerMessage{candidate});
  out.type = "candidate";
  out.timing = Outgoing::Timing::kLocal;
  out.received_at = received_at;
  return out;
}

awaitable<void> Connection::on_bye(Bye bye, TimePoint received_at) {
  auto lookup = co_await other_side(bye.session);
  if (!lookup.other) {
    send_error(lookup.redis_failed ? ErrorCode::kRoutingUnavailable : ErrorCode::kUnknownSession,
               "no such session for this peer", std::nullopt, bye.session);
    co_return;
  }
  sessions_.erase(bye.session);
  Outgoing out;
  out.text = encode(ServerMessage{bye});
  out.type = "bye";
  out.op = Outgoing::SessionOp::kClose;
  out.session = bye.session;
  out.peer = peer_;
  out.timing = Outgoing::Timing::kLocal;
  out.received_at = received_at;
  co_await forward(*lookup.other, std::move(out), std::nullopt, bye.session);
  redis::Command erase{"DEL", layout::session_key(bye.session)};
  fire_and_forget(*shard_.redis, context_.metrics, std::move(erase));
}

awaitable<void> Connection::cleanup() {
  auto self = shared_from_this();
  alive_ = false;
  hello_timer_.cancel();
  expiry_timer_.cancel();
  keep_alive_timer_.cancel();
  closing_timer_.cancel();
  wake_writer_.cancel();
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);  // ends a write stuck on a dead peer
  context_.directory.untrack(this);
  context_.metrics.disconnect(why_.value_or(DisconnectReason::kClientClosed)).Increment();
  if (!authenticated_) co_return;
  context_.metrics.peers.Decrement();
  bool was_current = context_.directory.remove(peer_, this);
  if (was_current && generation_ > 0) {
    std::vector<std::string> keys{layout::peer_key(peer_)};
    std::vector<std::string> args{context_.config.instance_id, std::to_string(generation_)};
    auto removed =
        co_await shard_.redis->eval(context_.unregister_script, std::move(keys), std::move(args));
    if (!removed) context_.metrics.redis_errors.Increment();
  }
}

}  // namespace roam::signaling
