#include "common/redis/client.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <deque>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <hiredis/async.h>

#include "common/crypto/digest.h"
#include "common/util/bytes.h"

namespace roam::redis {

namespace asio = boost::asio;

namespace {

std::string ms_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// hiredis treats these specially (callbacks per channel, subscribed mode); on a command
// connection they would break the reply order.
bool is_pubsub_command(std::string_view name) {
  for (std::string_view c : {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                             "sunsubscribe", "monitor"}) {
    if (iequals(name, c)) return true;
  }
  return false;
}

}  // namespace

Script::Script(std::string source)
    : source_(std::move(source)), sha1_(to_hex(crypto::sha1(as_bytes(source_)))) {}

class Client::Impl final : public detail::Connection {
 public:
  using Connection::Connection;
  ~Impl() override { stop(); }

  void submit(Command command, Duration timeout, detail::Completion<Result> done);
  void submit_eval(Script script, std::vector<std::string> keys, std::vector<std::string> args,
                   Duration timeout, detail::Completion<Result> done);
  std::size_t in_flight() const { return pending_.size(); }

 private:
  struct Pending {
    std::uint64_t id;
    detail::Completion<Result> done;  // empty once completed early (timeout)
    asio::steady_timer timer;
  };

  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
  void on_timeout(std::uint64_t id, Duration timeout);
  void fail(detail::Completion<Result> done, Errc code, std::string message);
  void finish(detail::Completion<Result> done, Result result);

  void on_connected() override {}
  void on_disconnected() override {}

  // Commands handed to hiredis, in order; hiredis answers them FIFO, so a reply always
  // belongs to the front entry. ids are consecutive: an entry's index is id - front().id.
  std::deque<Pending> pending_;
  std::uint64_t next_id_ = 0;
};

void Client::Impl::finish(detail::Completion<Result> done, Result result) {
  // Posted: never run user code inside hiredis or inside the initiating call.
  asio::post(executor(), [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void Client::Impl::fail(detail::Completion<Result> done, Errc code, std::string message) {
  finish(std::move(done), roam::unexpected(Error{code, std::move(message)}));
}

void Client::Impl::submit(Command command, Duration timeout, detail::Completion<Result> done) {
  if (stopped()) return fail(std::move(done), Errc::kShutdown, "client stopped");
  if (command.empty()) return fail(std::move(done), Errc::kInvalidArgument, "empty command");
  if (is_pubsub_command(command.front())) {
    return fail(std::move(done), Errc::kInvalidArgument,
                command.front() + " needs a dedicated connection: use redis::Subscriber");
  }
  std::size_t bytes = 0;
  for (const auto& arg : command)
    bytes += arg.size();
  if (bytes > options().max_command_bytes || command.size() > INT_MAX) {
    return fail(std::move(done), Errc::kInvalidArgument,
                "command of " + std::to_string(bytes) + " bytes exceeds " +
                    std::to_string(options().max_command_bytes) + " (Options::max_command_bytes)");
  }
  if (!ready() || context() == nullptr) {
    return fail(std::move(done), Errc::kNotConnected,
                "not connected to " + endpoint() + " (reconnecting)");
  }
  if (pending_.size() >= options().max_in_flight) {
    return fail(std::move(done), Errc::kTooManyInFlight,
                std::to_string(pending_.size()) +
                    " commands await replies (Options::max_in_flight = " +
                    std::to_string(options().max_in_flight) + ")");
  }

  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(command.size());
  lengths.reserve(command.size());
  for (const auto& arg : command) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  // Appends to hiredis's output buffer and arms a write wait; never calls back synchronously.
  if (redisAsyncCommandArgv(context(), &Impl::on_reply, this, static_cast<int>(argv.size()),
                            argv.data(), lengths.data()) != REDIS_OK) {
    return fail(std::move(done), Errc::kNotConnected,
                "connection to " + endpoint() + " is closing");
  }

  auto id = next_id_++;
  auto& entry = pending_.emplace_back(Pending{id, std::move(done), asio::steady_timer(executor())});
  entry.timer.expires_after(timeout);
  entry.timer.async_wait(
      [weak = weak_from_this(), id, timeout](const boost::system::error_code& ec) {
        if (ec) return;  // answered (the entry and its timer are gone) or stopped
        auto self = std::static_pointer_cast<Impl>(weak.lock());
        if (!self || self->stopped()) return;
        self->on_timeout(id, timeout);
      });
}

void Client::Impl::on_timeout(std::uint64_t id, Duration timeout) {
  if (pending_.empty() || id < pending_.front().id) return;
  auto index = id - pending_.front().id;
  if (index >= pending_.size()) return;
  auto& entry = pending_[index];
  if (!entry.done) return;
  // The entry stays: hiredis will still deliver (and we will discard) the late reply.
  fail(std::move(entry.done), Errc::kTimeout, "no reply within " + ms_text(timeout));
  entry.done = nullptr;
}

// hiredis callback (inside redisAsyncHandleRead or redisAsyncFree): copy, post, return.
void Client::Impl::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  auto* self = static_cast<Impl*>(privdata);
  if (self->pending_.empty()) return;  // cannot happen: one entry per accepted command
  auto done = std::move(self->pending_.front().done);
  self->pending_.pop_front();  // destroys the timer: its wait completes with operation_aborted
  if (!done) return;           // timed out earlier: discard the late reply
  if (reply != nullptr) {
    self->finish(std::move(done),
                 convert_reply(static_cast<redisReply*>(reply), self->options().reply_limits));
  } else if (self->stopped()) {
    self->fail(std::move(done), Errc::kShutdown, "client destroyed with the command in flight");
  } else {
    std::string cause = context->c.err != 0 ? context->c.errstr : "connection closed";
    self->fail(std::move(done), Errc::kConnectionLost,
               "connection to " + self->endpoint() + " lost before the reply: " + cause);
  }
}

void Client::Impl::submit_eval(Script script, std::vector<std::string> keys,
                               std::vector<std::string> args, Duration timeout,
                               detail::Completion<Result> done) {
  Command command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(script.sha1());
  command.push_back(std::to_string(keys.size()));
  for (auto& k : keys)
    command.push_back(std::move(k));
  for (auto& a : args)
    command.push_back(std::move(a));
  auto retry = command;
  auto weak = std::weak_ptr<Impl>(std::static_pointer_cast<Impl>(shared_from_this()));
  submit(std::move(command), timeout,
         [weak, retry = std::move(retry), script = std::move(script), timeout,
          done = std::move(done)](Result result) mutable {
           auto self = weak.lock();
           if (!result && result.error().code == Errc::kServerError &&
               result.error().message.starts_with("NOSCRIPT") && self) {
             retry[0] = "EVAL";
             retry[1] = script.source();
             self->submit(std::move(retry), timeout, std::move(done));
             return;
           }
           done(std::move(result));
         });
}

Client::Client(executor_type executor, Options options)
    : executor_(executor), impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

Client::~Client() {
  impl_->stop();
}

void Client::set_observer(ConnectionObserver observer) {
  impl_->set_observer(std::move(observer));
}
void Client::start() {
  impl_->start();
}
bool Client::connected() const {
  return impl_->ready();
}
std::size_t Client::in_flight() const {
  return impl_->in_flight();
}
const Options& Client::options() const {
  return impl_->options();
}

void Client::submit(Command command, Duration timeout, detail::Completion<Result> done) {
  impl_->submit(std::move(command), timeout, std::move(done));
}

void Client::submit_eval(Script script, std::vector<std::string> keys,
                         std::vector<std::string> args, Duration timeout,
                         detail::Completion<Result> done) {
  impl_->submit_eval(std::move(script), std::move(keys), std::move(args), timeout, std::move(done));
}

void Client::wait_connected(Duration timeout, detail::Completion<VoidResult> done) {
  impl_->wait_ready(timeout, std::move(done));
}

asio::awaitable<Result> Client::command(Command cmd) {
  co_return co_await async_command(std::move(cmd), options().command_timeout, asio::use_awaitable);
}

asio::awaitable<Result> Client::command(Command cmd, Duration timeout) {
  co_return co_await async_command(std::move(cmd), timeout, asio::use_awaitable);
}

asio::awaitable<Result> Client::eval(Script script, std::vector<std::string> keys,
                                     std::vector<std::string> args) {
  co_return co_await async_eval(script, std::move(keys), std::move(args), options().command_timeout,
                                asio::use_awaitable);
}

asio::awaitable<VoidResult> Client::wait_connected(Duration timeout) {
  co_return co_await async_wait_connected(timeout, asio::use_awaitable);
}

}  // namespace roam::redis
