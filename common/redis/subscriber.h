// roam::redis::Subscriber — SUBSCRIBE/PSUBSCRIBE on a dedicated, reconnecting connection.
//
// A subscribed hiredis connection cannot carry ordinary commands, so publishing and every
// other command go through a redis::Client; a server typically owns one of each.
//
// Contracts:
// - Thread model: see connection.h (one executor, no concurrent handlers, not thread-safe).
// - The subscription set (channels and patterns) is the state: subscribe() adds to it and
//   sends SUBSCRIBE when connected; after every reconnect the whole set is subscribed again.
//   Messages published while the connection is down are lost (Redis pub/sub is
//   fire-and-forget): consumers must tolerate gaps (coturn statistics, routing hints).
// - synced(): connected and every subscription in the set confirmed by the server. The
//   ConnectionEvent::kConnected of each connection is reported only once the set is synced,
//   so "publish after kConnected" is delivered.
// - Messages are delivered in the order the server sent them, each once per matching
//   subscription (a message matching a channel and a pattern arrives twice, as in Redis),
//   on the executor, never inside hiredis. Once unsubscribe()/punsubscribe() returns, no
//   message for that channel/pattern is delivered any more (queued ones are dropped).
// - Bounds: Options::max_subscriptions names. Messages are handed to the executor as hiredis
//   parses them from one socket read (at most 16 KiB each), so the backlog is bounded by the
//   executor keeping up with the socket.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/redis/connection.h"

namespace roam::redis {

struct Message {
  std::string channel;
  std::string pattern;  // the PSUBSCRIBE pattern that matched; empty for SUBSCRIBE deliveries
  std::string payload;  // binary safe
};
using MessageHandler = std::function<void(const Message&)>;

class Subscriber {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Does not connect yet: call start().
  Subscriber(executor_type executor, Options options, MessageHandler on_message);
  // Closes the connection; no handler runs afterwards; waiters complete with kShutdown.
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void set_observer(ConnectionObserver observer);
  // Starts connecting; retries forever (with backoff) until destroyed. Idempotent.
  void start();

  // Adds a channel (exact name) or a glob pattern (PSUBSCRIBE syntax) to the set. Adding one
  // that is already there does nothing. Fails with kInvalidArgument for an empty name or
  // beyond Options::max_subscriptions; never fails for lack of a connection.
  VoidResult subscribe(std::string channel);
  VoidResult psubscribe(std::string pattern);
  void unsubscribe(const std::string& channel);
  void punsubscribe(const std::string& pattern);

  bool connected() const;  // TCP connection up (subscriptions may still be pending)
  bool synced() const;     // connected and every subscription confirmed
  std::size_t subscriptions() const;

  // Completes when synced() (at once if it is), or with kTimeout. Signature: void(VoidResult).
  template <boost::asio::completion_token_for<void(VoidResult)> Token>
  auto async_wait_synced(Duration timeout, Token&& token) {
    return boost::asio::async_initiate<Token, void(VoidResult)>(
        [this](auto handler, Duration timeout) {
          wait_synced(timeout, detail::make_completion<VoidResult>(std::move(handler), executor_));
        },
        token, timeout);
  }
  boost::asio::awaitable<VoidResult> wait_synced(Duration timeout);

 private:
  class Impl;
  void wait_synced(Duration timeout, detail::Completion<VoidResult> done);

  executor_type executor_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace roam::redis
