// Options, connection events and the reconnecting connection shared by redis::Client and
// redis::Subscriber.
//
// Thread model (both types): not thread-safe. Construct, use and destroy them on one executor
// that never runs two handlers at once (an io_context run by a single thread, or a strand).
// Every callback and completion handler runs on that executor, never inside a hiredis
// callback and never inside the initiating call, so handlers may freely issue new commands
// or destroy the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/redis/reply.h"
#include "common/util/expected.h"
#include "common/util/time.h"

struct redisAsyncContext;  // hiredis

namespace roam::redis {

struct Options {
  // Where Redis listens. A host name is resolved asynchronously on every connection attempt
  // (hiredis would resolve it with a blocking getaddrinfo); successive attempts rotate
  // through the resolved addresses.
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;

  // One connection attempt (resolve + TCP connect) fails with Errc::kConnectFailed after this.
  Duration connect_timeout = std::chrono::seconds(2);
  // Reconnect backoff: the n-th consecutive retry waits a random delay in [d/2, d] ("equal
  // jitter"), d = min(reconnect_max, reconnect_min * 2^(n-1)), and never less than
  // reconnect_min. Retries continue until the object is destroyed.
  Duration reconnect_min = std::chrono::milliseconds(100);
  Duration reconnect_max = std::chrono::seconds(5);
  // TCP keepalive on the connection (hiredis: idle 15 s), so a silently dead peer is noticed.
  bool tcp_keepalive = true;

  // --- Client only -------------------------------------------------------------------------
  // Default per-command timeout (overridable per command).
  Duration command_timeout = std::chrono::seconds(1);
  // Commands sent and not yet answered, including ones that already timed out (hiredis keeps
  // waiting for their replies). Beyond it commands fail at once with Errc::kTooManyInFlight.
  std::size_t max_in_flight = 1024;
  // Total argument bytes of one command; larger commands fail with Errc::kInvalidArgument.
  std::size_t max_command_bytes = 16u * 1024u * 1024u;
  ReplyLimits reply_limits;

  // --- Subscriber only ---------------------------------------------------------------------
  // Channels plus patterns one Subscriber may hold.
  std::size_t max_subscriptions = 4096;
};

// Reported to the ConnectionObserver, on the object's executor.
struct ConnectionEvent {
  enum class Kind : std::uint8_t {
    kConnected,      // the connection is up and usable (Subscriber: every subscription active)
    kDisconnected,   // an established connection was lost; a reconnect is scheduled
    kConnectFailed,  // a connection attempt failed; another one is scheduled
  };
  Kind kind = Kind::kConnected;
  Error cause;            // why (kDisconnected, kConnectFailed)
  unsigned failures = 0;  // consecutive failed attempts so far (kConnectFailed)
  Duration retry_in{};    // delay before the next attempt (kDisconnected, kConnectFailed)
};
using ConnectionObserver = std::function<void(const ConnectionEvent&)>;

std::string_view to_string(ConnectionEvent::Kind kind);

using VoidResult = roam::expected<void, Error>;

namespace detail {

// A type-erased completion. Always invoked on the connection's executor, outside hiredis.
template <class R>
using Completion = std::move_only_function<void(R)>;

// Wraps an Asio completion handler: keeps its executor busy until it runs and delivers the
// result through its associated executor.
template <class R, class Handler>
Completion<R> make_completion(Handler handler, const boost::asio::any_io_executor& fallback) {
  namespace asio = boost::asio;
  auto work = asio::prefer(asio::get_associated_executor(handler, fallback),
                           asio::execution::outstanding_work.tracked);
  return [handler = std::move(handler), work = std::move(work)](R result) mutable {
    asio::dispatch(work, asio::append(std::move(handler), std::move(result)));
  };
}

// One logical connection: connect with a timeout, reconnect with backoff after failures,
// report events, and hold a hiredis context while connected. Subclasses add the protocol.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor executor, Options options);
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting (the first attempt runs from a posted task). Idempotent.
  void start();
  // Frees the hiredis context (outstanding hiredis callbacks run now, with NULL replies),
  // cancels timers and completes waiters with Errc::kShutdown. Idempotent; no callback of
  // any kind runs afterwards.
  void stop();

  // Connected, and the subclass is in sync (Subscriber: every subscription confirmed).
  bool ready() const { return connected_ && !stopped_ && synced(); }
  bool connected() const { return connected_; }
  const Options& options() const { return options_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }
  void set_observer(ConnectionObserver observer) { observer_ = std::move(observer); }
  // Completes when ready() (at once, posted, if it already is), or with Errc::kTimeout.
  void wait_ready(Duration timeout, Completion<VoidResult> done);
  std::string endpoint() const;  // "host:port", for messages

 protected:
  // hiredis context while connected (and while connecting); null otherwise.
  redisAsyncContext* context() const { return context_; }
  bool stopped() const { return stopped_; }
  // Changes whenever a connection comes up or goes down; events posted from hiredis callbacks
  // carry it so that ones from an older connection can be told apart.
  std::uint64_t generation() const { return attempt_; }
  // Posts `fn` to the executor; it runs only if this object still exists and is not stopped.
  template <class Self, class Fn>
  void post_checked(Fn fn) {
    boost::asio::post(executor_, [weak = weak_from_this(), fn = std::move(fn)]() mutable {
      auto self = weak.lock();
      if (!self || self->stopped_) return;
      fn(static_cast<Self&>(*self));
    });
  }
  // Called (from a posted task) once the TCP connection is up; context() is usable.
  virtual void on_connected() = 0;
  // Called (from a posted task) after an established connection was lost; context() is null.
  virtual void on_disconnected() = 0;
  // Subclass readiness on top of "connected" (Subscriber: subscriptions confirmed).
  virtual bool synced() const { return true; }
  // Call when synced() may have changed: completes waiters if ready(), and announces the
  // first readiness of each connection (ConnectionEvent::kConnected).
  void update_ready();

 private:
  struct Waiter {
    std::uint64_t id;
    Completion<VoidResult> done;
    boost::asio::steady_timer timer;
  };

  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);

  void attempt();
  void connect_to(const boost::asio::ip::address& address);
  void connect_timed_out(std::uint64_t attempt);
  void handle_connected(std::uint64_t attempt);
  void attempt_failed(Error cause);
  void handle_lost(std::uint64_t attempt, Error cause);
  Duration backoff(unsigned n);
  void schedule_retry(Duration delay);
  void notify(const ConnectionEvent& event);

  boost::asio::any_io_executor executor_;
  Options options_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer retry_timer_;
  ConnectionObserver observer_;
  std::list<Waiter> waiters_;
  std::uint64_t next_waiter_ = 0;

  redisAsyncContext* context_ = nullptr;
  std::uint64_t attempt_ = 0;  // id of the current attempt; stale handlers compare with it
  unsigned failures_ = 0;      // consecutive failed attempts
  std::size_t rotation_ = 0;   // which resolved address the next attempt uses
  bool started_ = false;
  bool stopped_ = false;
  bool connected_ = false;  // hiredis connection established (handle_connected ran)
  bool announced_ = false;  // kConnected reported for the current connection
};

}  // namespace detail
}  // namespace roam::redis
