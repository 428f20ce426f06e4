#include "agent/paths/signaling_link.h"

#include <charconv>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace roam::agent {

namespace asio = boost::asio;

namespace {
// stop() aborts the connection, which completes every pending operation at once; this bound on
// waiting for the coroutines to end only keeps a process from hanging at exit on a bug.
constexpr Duration kStopLimit = seconds(1);
}  // namespace

expected<net::WssClientOptions, std::string> parse_wss_url(const std::string& url) {
  constexpr std::string_view kScheme = "wss://";
  if (!url.starts_with(kScheme)) {
    return unexpected("signaling URL must start with wss:// (got '" + url + "')");
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  net::WssClientOptions o;
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  o.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view port_text;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return unexpected("bad IPv6 host in " + url);
    o.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return unexpected("bad port in " + url);
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    o.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (o.host.empty()) return unexpected("no host in " + url);
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return unexpected("bad port in " + url);
    }
    o.port = static_cast<std::uint16_t>(port);
  }
  return o;
}

struct SignalingLink::State : std::enable_shared_from_this<SignalingLink::State> {
  State(asio::any_io_executor ex, asio::ssl::context& t, SignalingLinkOptions o, MessageHandler m,
        StateHandler s)
      : executor(std::move(ex)),
        tls(t),
        options(std::move(o)),
        on_message(std::move(m)),
        on_state(std::move(s)),
        backoff_timer(executor),
        sends_done(executor),
        stop_limit(executor) {}

  asio::any_io_executor executor;
  asio::ssl::context& tls;
  SignalingLinkOptions options;
  MessageHandler on_message;
  StateHandler on_state;
  std::unique_ptr<net::WssClient> client;
  bool connected = false;
  TimePoint welcomed_at{};  // a connection that drops within 1 s of its welcome backs off
  bool stopped = false;
  std::deque<std::string> queue;
  asio::steady_timer backoff_timer;
  bool running = false;             // run() was spawned and has not ended
  std::size_t sends_in_flight = 0;  // send_now() coroutines not yet ended
  asio::steady_timer sends_done;    // cancelled when sends_in_flight falls to 0
  std::vector<std::function<void()>> on_stopped;
  asio::steady_timer stop_limit;

  void send_now(std::string text) {
    auto self = shared_from_this();
    net::WssClient* c = client.get();
    ++sends_in_flight;
    asio::co_spawn(
        executor,
        [self, c, text = std::move(text)]() mutable -> asio::awaitable<void> {
          auto r = co_await c->send(std::move(text));
          // A failed send ends the connection; the reader notices and reconnects.
          if (!r && self->client.get() == c && c->is_open()) c->abort();
          if (--self->sends_in_flight == 0) self->sends_done.cancel();
        },
        asio::detached);
  }

  // Ends the connection and destroys the client once none of its sends is pending (a WssClient
  // must not be destroyed with an operation pending; the sends hold a plain pointer to it).
  // abort() makes every pending operation complete at once.
  asio::awaitable<void> retire_client() {
    if (!client) co_return;
    client->abort();
    while (sends_in_flight > 0) {
      sends_done.expires_at(kNever);
      boost::system::error_code ec;
      co_await sends_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    client.reset();
  }

  void notify_stopped() {
    stop_limit.cancel();
    for (auto& f : std::exchange(on_stopped, {}))
      asio::post(executor, std::move(f));
  }

  // One connection: connect, hello, welcome, then read until it fails. Returns the reason it
  // ended and whether that is fatal.
  asio::awaitable<std::pair<std::string, bool>> session(const std::string& url) {
    auto parsed = parse_wss_url(url);
    if (!parsed) co_return std::pair{parsed.error(), true};
    parsed->idle_timeout = options.idle_timeout;
    client = std::make_unique<net::WssClient>(executor, tls, *parsed);
    net::WssClient* c = client.get();
    auto connected_ok = co_await c->connect();
    if (!connected_ok) co_return std::pair{connected_ok.error(), false};
    auto sent = co_await c->send(signaling::encode(signaling::ClientMessage{options.hello}));
    if (!sent) co_return std::pair{sent.error(), false};
    bool welcomed = false;
    for (;;) {
      auto text = co_await c->receive();
      if (!text) {
        bool fatal = false;
        if (auto info = c->close_info()) {
          fatal = info->code == 4001 || (!welcomed && info->code == 1008);
        }
        co_return std::pair{text.error(), fatal};
      }
      auto message = signaling::parse_server_message(*text);
      if (!message) continue;  // a newer server's message this version cannot read
      if (!welcomed) {
        if (auto* w = std::get_if<signaling::Welcome>(&*message)) {
          welcomed = true;
          connected = true;
          welcomed_at = Clock::now();
          on_state(StateChange{true, url, w->server, false});
          while (!queue.empty()) {
            send_now(std::move(queue.front()));
            queue.pop_front();
          }
          continue;
        }
        if (auto* e = std::get_if<signaling::Error>(&*message)) {
          const bool fatal = e->code == signaling::ErrorCode::kBadToken ||
                             e->code == signaling::ErrorCode::kTokenExpired ||
                             e->code == signaling::ErrorCode::kUnsupportedVersion;
          if (fatal) {
            c->abort();
            co_return std::pair{
                "refused: " + std::string(signaling::to_string(e->code)) + ": " + e->message, true};
          }
        }
        continue;
      }
      on_message(*message);
      if (stopped) co_return std::pair{std::string("stopped"), true};
    }
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    Duration backoff = options.backoff_initial;
    std::size_t next = 0;
    std::size_t failed_in_round = 0;  // failed attempts since the last backoff or welcome
    while (!stopped) {
      const std::string url = options.urls[next % options.urls.size()];
      auto [reason, fatal] = co_await session(url);
      const bool was_connected = connected;
      connected = false;
      co_await retire_client();
      if (stopped) break;
      on_state(StateChange{false, url, reason, fatal});
      if (fatal) {
        stopped = true;
        break;
      }
      if (was_connected && Clock::now() - welcomed_at > seconds(1)) {
        // It worked until now (a network change, a restarting instance): retry the same URL
        // at once, then back off from the start.
        backoff = options.backoff_initial;
        failed_in_round = 0;
        continue;
      }
      ++next;
      if (was_connected) failed_in_round = 0;
      // Every URL gets one immediate attempt before the backoff: a killed instance costs one
      // failed connect, not a backoff interval, when another instance is listed.
      if (++failed_in_round < options.urls.size()) continue;
      failed_in_round = 0;
      backoff_timer.expires_after(backoff);
      boost::system::error_code ec;
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, options.backoff_max);
    }
    co_await retire_client();
    running = false;
    notify_stopped();
  }
};

SignalingLink::SignalingLink(asio::any_io_executor executor, asio::ssl::context& tls,
                             SignalingLinkOptions options, MessageHandler on_message,
                             StateHandler on_state)
    : state_(std::make_shared<State>(std::move(executor), tls, std::move(options),
                                     std::move(on_message), std::move(on_state))) {}

SignalingLink::~SignalingLink() {
  stop();
}

void SignalingLink::start() {
  if (state_->options.urls.empty() || state_->running || state_->stopped) return;
  state_->running = true;
  asio::co_spawn(state_->executor, state_->run(), asio::detached);
}

bool SignalingLink::send(const signaling::ClientMessage& message) {
  std::string text = signaling::encode(message);
  if (state_->connected && state_->client) {
    state_->send_now(std::move(text));
    return true;
  }
  bool fits = state_->queue.size() < state_->options.max_queued;
  if (!fits) state_->queue.pop_front();
  state_->queue.push_back(std::move(text));
  return fits;
}

void SignalingLink::stop(std::function<void()> on_stopped) {
  if (on_stopped) state_->on_stopped.push_back(std::move(on_stopped));
  if (!state_->stopped) {
    state_->stopped = true;
    state_->backoff_timer.cancel();
    if (state_->client) state_->client->abort();
  }
  if (!state_->running) {
    state_->notify_stopped();
  } else if (!state_->on_stopped.empty()) {
    state_->stop_limit.expires_after(kStopLimit);
    state_->stop_limit.async_wait([state = state_](const boost::system::error_code& ec) {
      if (!ec) state->notify_stopped();
    });
  }
}

bool SignalingLink::connected() const {
  return state_->connected;
}

void SignalingLink::address_removed(const IpAddress& address) {
  if (!state_->client || !state_->client->is_open()) return;
  boost::system::error_code ec;
  const auto removed = boost::asio::ip::make_address(address.to_string(), ec);
  if (!ec && state_->client->local_address() == removed) state_->client->abort();
}

}  // namespace roam::agent
