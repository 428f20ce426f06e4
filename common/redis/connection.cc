#include "common/redis/connection.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <hiredis/async.h>
#include <spdlog/spdlog.h>

#include "common/redis/asio_adapter.h"
#include "common/util/random.h"

namespace roam::redis {

std::string_view to_string(ConnectionEvent::Kind kind) {
  switch (kind) {
    case ConnectionEvent::Kind::kConnected:
      return "connected";
    case ConnectionEvent::Kind::kDisconnected:
      return "disconnected";
    case ConnectionEvent::Kind::kConnectFailed:
      return "connect failed";
  }
  return "unknown";
}

namespace detail {

namespace asio = boost::asio;

namespace {

std::string ms_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// hiredis keeps the last error text inside the context; copy it before the context is freed.
std::string context_error(const redisAsyncContext* context, std::string_view fallback) {
  if (context != nullptr && context->c.err != 0 && context->c.errstr[0] != '\0') {
    return context->c.errstr;
  }
  return std::string(fallback);
}

}  // namespace

Connection::Connection(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      resolver_(executor_),
      connect_timer_(executor_),
      retry_timer_(executor_) {
  options_.reconnect_min = std::max(options_.reconnect_min, Duration(std::chrono::milliseconds(1)));
  options_.reconnect_max = std::max(options_.reconnect_max, options_.reconnect_min);
}

Connection::~Connection() {
  // Subclasses call stop() from their facade's destructor; this only catches misuse, and
  // must not free a context whose callbacks would reach the destroyed subclass.
  if (context_ != nullptr) {
    spdlog::error("redis: connection to {} destroyed without stop()", endpoint());
  }
}

std::string Connection::endpoint() const {
  if (options_.host.find(':') != std::string::npos) {
    return "[" + options_.host + "]:" + std::to_string(options_.port);
  }
  return options_.host + ":" + std::to_string(options_.port);
}

void Connection::start() {
  if (started_ || stopped_) return;
  started_ = true;
  post_checked<Connection>([](Connection& self) { self.attempt(); });
}

void Connection::stop() {
  if (stopped_) return;
  stopped_ = true;
  connected_ = false;
  ++attempt_;
  connect_timer_.cancel();
  retry_timer_.cancel();
  resolver_.cancel();
  if (auto* context = std::exchange(context_, nullptr)) {
    // Runs every pending reply callback with a NULL reply (subclasses complete their
    // commands with kShutdown), then on_disconnect, which sees a stale context and returns.
    redisAsyncFree(context);
  }
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) {
    w.timer.cancel();
    asio::post(executor_, [done = std::move(w.done)]() mutable {
      done(roam::unexpected(Error{Errc::kShutdown, "destroyed while waiting for the connection"}));
    });
  }
}

void Connection::wait_ready(Duration timeout, Completion<VoidResult> done) {
  if (stopped_ || ready()) {
    VoidResult result;
    if (stopped_) result = roam::unexpected(Error{Errc::kShutdown, "already stopped"});
    asio::post(executor_, [done = std::move(done), result]() mutable { done(result); });
    return;
  }
  auto id = next_waiter_++;
  auto& w = waiters_.emplace_back(Waiter{id, std::move(done), asio::steady_timer(executor_)});
  w.timer.expires_after(timeout);
  w.timer.async_wait([weak = weak_from_this(), id, timeout](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_) return;
    auto it = std::find_if(self->waiters_.begin(), self->waiters_.end(),
                           [id](const Waiter& x) { return x.id == id; });
    if (it == self->waiters_.end()) return;
    auto done = std::move(it->done);
    self->waiters_.erase(it);
    done(roam::unexpected(Error{
        Errc::kTimeout, "not connected to " + self->endpoint() + " within " + ms_text(timeout)}));
  });
}

void Connection::update_ready() {
  if (!ready()) return;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) {
    w.timer.cancel();
    asio::post(executor_, [done = std::move(w.done)]() mutable { done(VoidResult{}); });
  }
  if (announced_) return;
  announced_ = true;
  failures_ = 0;
  spdlog::debug("redis: connected to {}", endpoint());
  notify(ConnectionEvent{ConnectionEvent::Kind::kConnected, {}, 0, {}});
}

void Connection::attempt() {
  if (stopped_) return;
  auto id = ++attempt_;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([weak = weak_from_this(), id](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_ || self->attempt_ != id) return;
    self->connect_timed_out(id);
  });

  boost::system::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    connect_to(address);
    return;
  }
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [weak = weak_from_this(), id](const boost::system::error_code& ec,
                                    const asio::ip::tcp::resolver::results_type& results) {
        auto self = weak.lock();
        if (!self || self->stopped_ || self->attempt_ != id) return;
        if (ec || results.empty()) {
          self->attempt_failed(Error{
              Errc::kConnectFailed, "cannot resolve " + self->options_.host + ": " + ec.message()});
          return;
        }
        // Successive attempts rotate through the addresses ("localhost" may yield ::1 first
        // while Redis listens on 127.0.0.1 only).
        auto it = results.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(self->rotation_++ % results.size()));
        self->connect_to(it->endpoint().address());
      });
}

void Connection::connect_to(const asio::ip::address& address) {
  // Non-blocking connect(2): hiredis returns at once; completion is signalled by the first
  // write readiness (redisAsyncSetConnectCallback arms it through the adapter).
  redisAsyncContext* context = redisAsyncConnect(address.to_string().c_str(), options_.port);
  if (context == nullptr) {
    attempt_failed(Error{Errc::kConnectFailed, "out of memory creating the hiredis context"});
    return;
  }
  if (context->err != 0) {
    auto cause = endpoint() + ": " + context_error(context, "connect failed");
    redisAsyncFree(context);
    attempt_failed(Error{Errc::kConnectFailed, cause});
    return;
  }
  if (!attach_asio(context, executor_)) {
    redisAsyncFree(context);
    attempt_failed(Error{Errc::kConnectFailed, "cannot register the socket with the reactor"});
    return;
  }
  context->data = this;
  context_ = context;
  redisAsyncSetDisconnectCallback(context, &Connection::on_disconnect);
  redisAsyncSetConnectCallback(context, &Connection::on_connect);
}

// hiredis callback: only record state and post; never call user code from here.
void Connection::on_connect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<Connection*>(context->data);
  if (self == nullptr || self->context_ != context) return;
  if (status == REDIS_OK) {
    // A new attempt id makes a connect timeout that already fired (and is queued) stale.
    auto id = ++self->attempt_;
    self->connect_timer_.cancel();
    self->post_checked<Connection>([id](Connection& s) { s.handle_connected(id); });
    return;
  }
  auto id = self->attempt_;
  // hiredis frees the context right after this callback returns.
  self->context_ = nullptr;
  Error cause{Errc::kConnectFailed,
              self->endpoint() + ": " + context_error(context, "connect failed")};
  self->post_checked<Connection>([id, cause = std::move(cause)](Connection& s) mutable {
    if (s.attempt_ == id) s.attempt_failed(std::move(cause));
  });
}

// hiredis callback, after the pending reply callbacks ran with NULL replies; the context is
// freed right after it returns.
void Connection::on_disconnect(const redisAsyncContext* context, int /*status*/) {
  auto* self = static_cast<Connection*>(context->data);
  if (self == nullptr || self->context_ != context) return;  // our own redisAsyncFree
  self->context_ = nullptr;
  self->connected_ = false;
  self->announced_ = false;
  auto id = self->attempt_;
  Error cause{Errc::kConnectionLost,
              self->endpoint() + ": " + context_error(context, "connection closed")};
  self->post_checked<Connection>([id, cause = std::move(cause)](Connection& s) mutable {
    s.handle_lost(id, std::move(cause));
  });
}

void Connection::connect_timed_out(std::uint64_t id) {
  if (attempt_ != id) return;
  resolver_.cancel();
  if (auto* context = std::exchange(context_, nullptr)) redisAsyncFree(context);
  attempt_failed(Error{Errc::kConnectFailed, "no connection to " + endpoint() + " within " +
                                                 ms_text(options_.connect_timeout)});
}

void Connection::handle_connected(std::uint64_t id) {
  if (attempt_ != id || context_ == nullptr) return;  // lost again before this ran
  if (options_.tcp_keepalive) redisEnableKeepAlive(&context_->c);
  connected_ = true;
  auto self = shared_from_this();  // subclasses may run user code (none today); stay alive
  on_connected();
  if (stopped_) return;
  update_ready();
}

void Connection::attempt_failed(Error cause) {
  if (stopped_) return;
  ++attempt_;  // the attempt is over: its timers and callbacks are stale now
  connect_timer_.cancel();
  ++failures_;
  auto delay = backoff(failures_);
  spdlog::debug("redis: connecting to {} failed ({}); retry in {}", endpoint(), to_string(cause),
                ms_text(delay));
  schedule_retry(delay);
  notify(
      ConnectionEvent{ConnectionEvent::Kind::kConnectFailed, std::move(cause), failures_, delay});
}

void Connection::handle_lost(std::uint64_t id, Error cause) {
  if (attempt_ != id) return;
  ++attempt_;
  connected_ = false;
  announced_ = false;
  auto self = shared_from_this();
  on_disconnected();
  if (stopped_) return;
  auto delay = backoff(1);
  spdlog::debug("redis: connection to {} lost ({}); reconnect in {}", endpoint(), to_string(cause),
                ms_text(delay));
  schedule_retry(delay);
  notify(ConnectionEvent{ConnectionEvent::Kind::kDisconnected, std::move(cause), 0, delay});
}

Duration Connection::backoff(unsigned n) {
  auto d = options_.reconnect_min;
  for (unsigned i = 1; i < n && d < options_.reconnect_max; ++i)
    d *= 2;
  d = std::min(d, options_.reconnect_max);
  auto half = d / 2;
  static thread_local SystemRandom random;
  auto span = static_cast<std::uint64_t>((d - half).count()) + 1;
  auto jittered = half + Duration(static_cast<Duration::rep>(random.uniform(span)));
  return std::max(jittered, options_.reconnect_min);
}

void Connection::schedule_retry(Duration delay) {
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_) return;
    self->attempt();
  });
}

void Connection::notify(const ConnectionEvent& event) {
  if (!observer_) return;
  // The observer may destroy the owner; keep this alive until the call returns and touch
  // nothing afterwards.
  auto self = shared_from_this();
  auto observer = observer_;
  observer(event);
}

}  // namespace detail
}  // namespace roam::redis
