// roam::redis::Client — commands over one reconnecting hiredis connection, on Boost.Asio.
//
// Contracts:
// - Thread model: see connection.h (one executor, no concurrent handlers, not thread-safe).
// - Commands are argv vectors sent with redisAsyncCommandArgv: binary safe (arguments may
//   hold NUL bytes), no format strings. Pub/sub commands (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE,
//   their UNSUBSCRIBE forms, MONITOR) are rejected with Errc::kInvalidArgument: use
//   redis::Subscriber, which owns a connection of its own.
// - Every command completes exactly once, on the client's executor and never inside the
//   initiating call: with a Reply, or with an Error:
//     kNotConnected     submitted while (re)connecting: nothing was sent; nothing is queued
//     kTooManyInFlight  Options::max_in_flight commands already await replies; nothing sent
//     kInvalidArgument  empty, larger than Options::max_command_bytes, or pub/sub
//     kTimeout          no reply within the timeout. The command stays sent: it may still
//                       run; its reply, if it arrives later, is discarded; it keeps counting
//                       against max_in_flight until that reply (or a disconnect) arrives.
//     kConnectionLost   the connection broke after sending; the command may have run
//     kServerError      Redis answered with an error ("WRONGTYPE ...", "NOSCRIPT ...")
//     kReplyTooLarge    the reply exceeded Options::reply_limits
//     kShutdown         the Client was destroyed first (in-flight commands complete with it)
// - Order: commands are written in submission order and Redis answers them in that order, so
//   replies complete in submission order too; a timeout completes its command early.
// - There is no offline queue: while disconnected commands fail fast (kNotConnected), and the
//   client reconnects by itself with exponential backoff + jitter (Options::reconnect_*).
//   Watch ConnectionEvents to count outages.
// - Cancellation slots of completion handlers are not supported; use the timeout.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include "common/redis/connection.h"
#include "common/redis/reply.h"

namespace roam::redis {

// One command: {"SET", key, value}. Build it in a named variable before co_await (GCC 12
// miscompiles braced lists inside co_await expressions).
using Command = std::vector<std::string>;

// A Lua script run with EVALSHA, falling back to EVAL (which also caches it on the server)
// when Redis answers NOSCRIPT (after a restart, SCRIPT FLUSH or failover).
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lower-case hex, as SCRIPT LOAD returns

 private:
  std::string source_;
  std::string sha1_;
};

class Client {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Does not connect yet: call start() (after set_observer, to see the first events).
  Client(executor_type executor, Options options);
  // Stops reconnecting, closes the connection; commands in flight complete with kShutdown.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void set_observer(ConnectionObserver observer);
  // Starts connecting; retries forever (with backoff) until destroyed. Idempotent.
  void start();
  bool connected() const;
  // Commands sent and not yet answered (including timed-out ones still awaiting replies).
  std::size_t in_flight() const;
  const Options& options() const;
  const executor_type& get_executor() const { return executor_; }

  // Completion signature: void(Result).
  template <boost::asio::completion_token_for<void(Result)> Token>
  auto async_command(Command command, Duration timeout, Token&& token) {
    return boost::asio::async_initiate<Token, void(Result)>(
        [this](auto handler, Command command, Duration timeout) {
          submit(std::move(command), timeout,
                 detail::make_completion<Result>(std::move(handler), executor_));
        },
        token, std::move(command), timeout);
  }
  template <boost::asio::completion_token_for<void(Result)> Token>
  auto async_command(Command command, Token&& token) {
    return async_command(std::move(command), options().command_timeout, std::forward<Token>(token));
  }

  // EVALSHA sha numkeys keys... args...; on NOSCRIPT, EVAL with the source. Each of the (at
  // most two) round trips gets `timeout`.
  template <boost::asio::completion_token_for<void(Result)> Token>
  auto async_eval(const Script& script, std::vector<std::string> keys,
                  std::vector<std::string> args, Duration timeout, Token&& token) {
    return boost::asio::async_initiate<Token, void(Result)>(
        [this](auto handler, Script script, std::vector<std::string> keys,
               std::vector<std::string> args, Duration timeout) {
          submit_eval(std::move(script), std::move(keys), std::move(args), timeout,
                      detail::make_completion<Result>(std::move(handler), executor_));
        },
        token, script, std::move(keys), std::move(args), timeout);
  }

  // Completes when connected (at once if already), or with kTimeout. Completion signature:
  // void(VoidResult).
  template <boost::asio::completion_token_for<void(VoidResult)> Token>
  auto async_wait_connected(Duration timeout, Token&& token) {
    return boost::asio::async_initiate<Token, void(VoidResult)>(
        [this](auto handler, Duration timeout) {
          wait_connected(timeout,
                         detail::make_completion<VoidResult>(std::move(handler), executor_));
        },
        token, timeout);
  }

  // C++20 coroutine forms of the above.
  boost::asio::awaitable<Result> command(Command command);
  boost::asio::awaitable<Result> command(Command command, Duration timeout);
  // Arguments are taken by value: the coroutine starts only when awaited.
  boost::asio::awaitable<Result> eval(Script script, std::vector<std::string> keys,
                                      std::vector<std::string> args);
  boost::asio::awaitable<VoidResult> wait_connected(Duration timeout);

 private:
  class Impl;
  void submit(Command command, Duration timeout, detail::Completion<Result> done);
  void submit_eval(Script script, std::vector<std::string> keys, std::vector<std::string> args,
                   Duration timeout, detail::Completion<Result> done);
  void wait_connected(Duration timeout, detail::Completion<VoidResult> done);

  executor_type executor_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace roam::redis
