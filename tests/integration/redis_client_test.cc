// redis::Client and redis::Subscriber against a real redis-server on a loopback port.
#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "common/redis/client.h"
#include "common/redis/subscriber.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace roam::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Kind = ConnectionEvent::Kind;

// gtest's ASSERT_* return from the function; coroutines must co_return.
#define CO_ASSERT(cond)                               \
  do {                                                \
    if (!(cond)) {                                    \
      ADD_FAILURE() << "assertion failed: " << #cond; \
      co_return;                                      \
    }                                                 \
  } while (0)

std::string show(const Result& r) {
  return r ? r->debug_string() : "error: " + to_string(r.error());
}

bool is_status(const Result& r, std::string_view text) {
  return r && r->as_status() && r->as_status()->text == text;
}
bool is_string(const Result& r, std::string_view text) {
  return r && r->as_string() && *r->as_string() == text;
}
bool is_integer(const Result& r, std::int64_t v) {
  return r && r->as_integer() && *r->as_integer() == v;
}
bool is_error(const Result& r, Errc code) {
  return !r && r.error().code == code;
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

// One-shot event for coroutines: wait() returns true once set(), false on timeout.
class Latch {
 public:
  explicit Latch(asio::any_io_executor ex) : timer_(std::move(ex)) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  asio::awaitable<bool> wait(Duration timeout) {
    if (set_) co_return true;
    timer_.expires_after(timeout);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return set_;
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

asio::awaitable<void> pause(Duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Create the reactor's descriptors (epoll, eventfd, timerfd) up front, so that tests
    // counting open descriptors see only what the client opens.
    asio::steady_timer warm_up(io_);
    std::string skip;
    server_ = test::RedisServer::start(&skip);
    if (!server_) GTEST_SKIP() << skip;
  }

  Options options() const {
    Options o;
    o.host = "127.0.0.1";
    o.port = server_->port();
    o.connect_timeout = 1s;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }

  // Runs the coroutine on io_ until it finishes; fails the test if it takes longer than
  // `limit`. Every test is bounded this way.
  void run(std::function<asio::awaitable<void>()> body, Duration limit = 5s) {
    bool finished = false;
    std::exception_ptr error;
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      finished = true;
      error = e;
    });
    auto deadline = Clock::now() + limit;
    while (!finished && Clock::now() < deadline)
      io_.run_one_for(20ms);
    // Let handlers posted by destructors run.
    io_.poll();
    if (!finished) {
      ADD_FAILURE() << "test body did not finish within " << to_ms(limit) << " ms";
      io_.stop();
    }
    if (error) std::rethrow_exception(error);
  }

  asio::io_context io_;
  std::unique_ptr<test::RedisServer> server_;
};

using RedisClientTest = RedisTest;
using RedisSubscriberTest = RedisTest;

TEST_F(RedisClientTest, SetGetDelWithCoroutinesAndCallbacks) {
  Client client(io_.get_executor(), options());
  std::vector<ConnectionEvent> events;
  client.set_observer([&](const ConnectionEvent& e) { events.push_back(e); });
  Result before = Reply{};
  Command ping = {"PING"};
  client.async_command(ping, [&](Result r) { before = std::move(r); });  // before start()
  client.start();
  run([&]() -> asio::awaitable<void> {
    auto up = co_await client.wait_connected(2s);
    CO_ASSERT(up.has_value());
    EXPECT_TRUE(client.connected());

    Command set = {"SET", "roam:k", "v1"};
    auto r = co_await client.command(set);
    EXPECT_TRUE(is_status(r, "OK")) << show(r);
    Command get = {"GET", "roam:k"};
    r = co_await client.command(get);
    EXPECT_TRUE(is_string(r, "v1")) << show(r);

    // Completion-handler form.
    Latch got(io_.get_executor());
    Result cb_result;
    client.async_command(get, 500ms, [&](Result res) {
      cb_result = std::move(res);
      got.set();
    });
    CO_ASSERT(co_await got.wait(2s));
    EXPECT_TRUE(is_string(cb_result, "v1")) << show(cb_result);

    Command del = {"DEL", "roam:k"};
    r = co_await client.command(del);
    EXPECT_TRUE(is_integer(r, 1)) << show(r);
    r = co_await client.command(get);
    CO_ASSERT(r.has_value());
    EXPECT_TRUE(r->is_nil()) << show(r);
    EXPECT_EQ(client.in_flight(), 0u);
  });
  EXPECT_TRUE(is_error(before, Errc::kNotConnected)) << show(before);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kConnected);
}

TEST_F(RedisClientTest, ResolvesHostNames) {
  auto o = options();
  o.host = "localhost";  // may resolve to ::1 first; the client rotates to 127.0.0.1
  Client client(io_.get_executor(), o);
  client.start();
  run([&]() -> asio::awaitable<void> {
    auto up = co_await client.wait_connected(3s);
    CO_ASSERT(up.has_value());
    Command ping = {"PING"};
    auto r = co_await client.command(ping);
    EXPECT_TRUE(is_status(r, "PONG")) << show(r);
  });
}

TEST_F(RedisClientTest, BinarySafeKeysAndValues) {
  Client client(io_.get_executor(), options());
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    const std::string key("roam:\0bin\r\n", 11);
    std::string value;
    for (int i = 0; i < 256; ++i)
      value.push_back(static_cast<char>(i));
    static constexpr char kTricky[] = "\r\n$3\r\nSET\0%s%b";  // RESP framing, NUL, formats
    value += std::string(kTricky, sizeof kTricky - 1);
    Command set = {"SET", key, value};
    auto r = co_await client.command(set);
    EXPECT_TRUE(is_status(r, "OK")) << show(r);
    Command get = {"GET", key};
    r = co_await client.command(get);
    CO_ASSERT(r && r->as_string());
    EXPECT_EQ(*r->as_string(), value);
    Command strlen = {"STRLEN", key};
    r = co_await client.command(strlen);
    EXPECT_TRUE(is_integer(r, static_cast<std::int64_t>(value.size()))) << show(r);
    Command empty = {"SET", "roam:empty", ""};
    r = co_await client.command(empty);
    EXPECT_TRUE(is_status(r, "OK"));
    Command get_empty = {"GET", "roam:empty"};
    r = co_await client.command(get_empty);
    EXPECT_TRUE(is_string(r, "")) << show(r);
  });
}

TEST_F(RedisClientTest, ArraysAndNestedReplies) {
  Client client(io_.get_executor(), options());
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    Command push = {"RPUSH", "roam:list", "a", std::string("b\0b", 3), "c"};
    auto r = co_await client.command(push);
    EXPECT_TRUE(is_integer(r, 3)) << show(r);
    Command range = {"LRANGE", "roam:list", "0", "-1"};
    r = co_await client.command(range);
    CO_ASSERT(r && r->as_array());
    const auto& items = *r->as_array();
    CO_ASSERT(items.size() == 3u);
    EXPECT_EQ(items[0], Reply{std::string("a")});
    EXPECT_EQ(items[1], Reply{std::string("b\0b", 3)});
    EXPECT_EQ(items[2], Reply{std::string("c")});

    Command missing = {"LRANGE", "roam:none", "0", "-1"};
    r = co_await client.command(missing);
    CO_ASSERT(r && r->as_array());
    EXPECT_TRUE(r->as_array()->empty());

    Command hset = {"HSET", "roam:hash", "f1", "v1", "f2", "v2"};
    r = co_await client.command(hset);
    EXPECT_TRUE(is_integer(r, 2)) << show(r);
    Command hgetall = {"HGETALL", "roam:hash"};
    r = co_await client.command(hgetall);
    CO_ASSERT(r && r->as_array());
    CO_ASSERT(r->as_array()->size() == 4u);
    std::map<std::string, std::string> fields;
    for (std::size_t i = 0; i + 1 < 4; i += 2) {
      fields[*(*r->as_array())[i].as_string()] = *(*r->as_array())[i + 1].as_string();
    }
    EXPECT_EQ(fields, (std::map<std::string, std::string>{{"f1", "v1"}, {"f2", "v2"}}));

    // Nested arrays, integers, status and error replies inside an array, nil.
    Command eval = {"EVAL",
                    "return {1, {2, 'x', {false}}, redis.status_reply('FINE'), "
                    "redis.error_reply('ERR inner')}",
                    "0"};
    r = co_await client.command(eval);
    CO_ASSERT(r && r->as_array());
    EXPECT_EQ(r->debug_string(),
              "[(integer) 1, [(integer) 2, \"x\", [(nil)]], FINE, (error) ERR inner]");

    // Reply limits: a nested reply deeper than allowed fails, the connection stays usable.
    Command deep = {"EVAL", "return {{{{1}}}}", "0"};
    Client limited(io_.get_executor(), [&] {
      auto o = options();
      o.reply_limits.max_depth = 3;
      o.reply_limits.max_elements = 2;
      return o;
    }());
    limited.start();
    CO_ASSERT((co_await limited.wait_connected(2s)).has_value());
    r = co_await limited.command(deep);
    EXPECT_TRUE(is_error(r, Errc::kReplyTooLarge)) << show(r);
    r = co_await limited.command(range);
    EXPECT_TRUE(is_error(r, Errc::kReplyTooLarge)) << show(r);
    Command ping = {"PING"};
    r = co_await limited.command(ping);
    EXPECT_TRUE(is_status(r, "PONG")) << show(r);
  });
}

TEST_F(RedisClientTest, ServerErrorsAndRejectedCommands) {
  auto o = options();
  o.max_command_bytes = 1024;
  Client client(io_.get_executor(), o);
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    Command set = {"SET", "roam:str", "x"};
    co_await client.command(set);
    Command lpush = {"LPUSH", "roam:str", "y"};
    auto r = co_await client.command(lpush);
    CO_ASSERT(is_error(r, Errc::kServerError));
    EXPECT_TRUE(r.error().message.starts_with("WRONGTYPE")) << r.error().message;

    Command unknown = {"NOSUCHCOMMAND", "a"};
    r = co_await client.command(unknown);
    CO_ASSERT(is_error(r, Errc::kServerError));
    EXPECT_TRUE(r.error().message.starts_with("ERR unknown command")) << r.error().message;

    Command empty;
    r = co_await client.command(empty);
    EXPECT_TRUE(is_error(r, Errc::kInvalidArgument)) << show(r);
    Command subscribe = {"subscribe", "x"};
    r = co_await client.command(subscribe);
    EXPECT_TRUE(is_error(r, Errc::kInvalidArgument)) << show(r);
    Command huge = {"SET", "roam:huge", std::string(2000, 'z')};
    r = co_await client.command(huge);
    CO_ASSERT(is_error(r, Errc::kInvalidArgument));
    EXPECT_NE(r.error().message.find("max_command_bytes"), std::string::npos);

    Command ping = {"PING"};
    r = co_await client.command(ping);
    EXPECT_TRUE(is_status(r, "PONG")) << show(r);
  });
}

TEST_F(RedisClientTest, EvalShaFallsBackToEvalOnNoscript) {
  Client client(io_.get_executor(), options());
  client.start();
  Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    Command flush = {"SCRIPT", "FLUSH"};
    EXPECT_TRUE(is_status(co_await client.command(flush), "OK"));

    std::vector<std::string> keys = {"roam:counter"};
    std::vector<std::string> five = {"5"};
    auto r = co_await client.eval(script, keys, five);  // NOSCRIPT -> EVAL
    EXPECT_TRUE(is_integer(r, 5)) << show(r);
    Command exists = {"SCRIPT", "EXISTS", script.sha1()};
    r = co_await client.command(exists);
    CO_ASSERT(r && r->as_array() && r->as_array()->size() == 1u);
    EXPECT_EQ((*r->as_array())[0], Reply{std::int64_t{1}}) << "EVAL cached the script";

    std::vector<std::string> seven = {"7"};
    r = co_await client.eval(script, keys, seven);  // EVALSHA hit
    EXPECT_TRUE(is_integer(r, 12)) << show(r);

    Command load = {"SCRIPT", "LOAD", script.source()};
    r = co_await client.command(load);
    EXPECT_TRUE(is_string(r, script.sha1())) << show(r);

    // A script error is a server error, not retried.
    Script broken("return redis.call('NOSUCHCOMMAND')");
    std::vector<std::string> none;
    r = co_await client.eval(broken, none, none);
    EXPECT_TRUE(is_error(r, Errc::kServerError)) << show(r);
  });
}

TEST_F(RedisClientTest, CommandTimeoutDiscardsLateReply) {
  Client client(io_.get_executor(), options());
  Client admin(io_.get_executor(), options());
  client.start();
  admin.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    CO_ASSERT((co_await admin.wait_connected(2s)).has_value());
    Command set = {"SET", "roam:late", "late-value"};
    EXPECT_TRUE(is_status(co_await client.command(set), "OK"));

    Command pause_all = {"CLIENT", "PAUSE", "700", "ALL"};
    auto r = co_await admin.command(pause_all);
    CO_ASSERT(is_status(r, "OK"));

    Command get = {"GET", "roam:late"};
    auto start = Clock::now();
    r = co_await client.command(get, 200ms);
    auto took = Clock::now() - start;
    CO_ASSERT(is_error(r, Errc::kTimeout));
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 600ms);
    EXPECT_EQ(client.in_flight(), 1u) << "the timed-out command still awaits its reply";

    // After the pause the GET's late reply arrives first and must be discarded, not handed
    // to the next command.
    Command echo = {"ECHO", "marker"};
    r = co_await client.command(echo, 3s);
    EXPECT_TRUE(is_string(r, "marker")) << show(r);
    EXPECT_EQ(client.in_flight(), 0u);
    EXPECT_TRUE(client.connected());
  });
}

TEST_F(RedisClientTest, InFlightBoundFailsFast) {
  auto o = options();
  o.max_in_flight = 4;
  Client client(io_.get_executor(), o);
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    std::vector<Result> results(6);
    int completed = 0;
    Latch all(io_.get_executor());
    for (int i = 0; i < 6; ++i) {
      Command incr = {"INCR", "roam:n"};
      client.async_command(incr, [&, i](Result r) {
        results[i] = std::move(r);
        if (++completed == 6) all.set();
      });
    }
    EXPECT_EQ(client.in_flight(), 4u);
    CO_ASSERT(co_await all.wait(2s));
    for (int i = 0; i < 4; ++i)
      EXPECT_TRUE(is_integer(results[i], i + 1)) << show(results[i]);
    for (int i = 4; i < 6; ++i) {
      CO_ASSERT(is_error(results[i], Errc::kTooManyInFlight));
      EXPECT_NE(results[i].error().message.find("max_in_flight = 4"), std::string::npos)
          << results[i].error().message;
    }
    Command get = {"GET", "roam:n"};
    EXPECT_TRUE(is_string(co_await client.command(get), "4"));
  });
}

TEST_F(RedisClientTest, ClosedPortFailsAndRetriesWithBackoff) {
  auto fds_before = open_fds();
  {
    auto o = options();
    o.port = test::free_tcp_port();  // nothing listens there
    o.reconnect_min = 10ms;
    o.reconnect_max = 40ms;
    Client client(io_.get_executor(), o);
    std::vector<ConnectionEvent> events;
    Latch three(io_.get_executor());
    client.set_observer([&](const ConnectionEvent& e) {
      events.push_back(e);
      if (events.size() == 3) three.set();
    });
    client.start();
    run([&]() -> asio::awaitable<void> {
      CO_ASSERT(co_await three.wait(3s));
      for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(events[i].kind, Kind::kConnectFailed);
        EXPECT_EQ(events[i].cause.code, Errc::kConnectFailed);
        EXPECT_EQ(events[i].failures, i + 1);
        EXPECT_GE(events[i].retry_in, 10ms);
        EXPECT_LE(events[i].retry_in, 40ms);
      }
      EXPECT_NE(events[0].cause.message.find("refused"), std::string::npos)
          << events[0].cause.message;
      Command ping = {"PING"};
      auto r = co_await client.command(ping);
      EXPECT_TRUE(is_error(r, Errc::kNotConnected)) << show(r);
      auto up = co_await client.wait_connected(50ms);
      CO_ASSERT(!up);
      EXPECT_EQ(up.error().code, Errc::kTimeout);
      EXPECT_FALSE(client.connected());
    });
  }
  io_.poll();
  EXPECT_EQ(open_fds(), fds_before) << "a failed attempt leaked its socket";
}

TEST_F(RedisClientTest, ConnectTimeoutWhenServerNeverAccepts) {
  // A listener whose accept queue is full: further SYNs are dropped and connect(2) hangs.
  asio::ip::tcp::acceptor acceptor(io_,
                                   asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acceptor.listen(0);
  auto endpoint = acceptor.local_endpoint();
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> fillers;
  for (int i = 0; i < 4; ++i) {
    auto s = std::make_unique<asio::ip::tcp::socket>(io_, asio::ip::tcp::v4());
    s->non_blocking(true);
    // Raw connect(2): Asio's synchronous connect would wait for it. EINPROGRESS is expected.
    [[maybe_unused]] int rc =
        ::connect(s->native_handle(), endpoint.data(), static_cast<socklen_t>(endpoint.size()));
    fillers.push_back(std::move(s));
  }
  auto o = options();
  o.port = endpoint.port();
  o.connect_timeout = 150ms;
  o.reconnect_min = 1s;
  Client client(io_.get_executor(), o);
  std::vector<ConnectionEvent> events;
  Latch failed(io_.get_executor());
  client.set_observer([&](const ConnectionEvent& e) {
    events.push_back(e);
    failed.set();
  });
  auto start = Clock::now();
  Duration took{};
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT(co_await failed.wait(2s));
    took = Clock::now() - start;
  });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kConnectFailed);
  EXPECT_NE(events[0].cause.message.find("within 150 ms"), std::string::npos)
      << events[0].cause.message;
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 1s);
}

TEST_F(RedisClientTest, ReconnectsAfterServerRestart) {
  Client client(io_.get_executor(), options());
  Client watcher(io_.get_executor(), options());
  std::vector<ConnectionEvent> events;
  Latch lost(io_.get_executor());
  Latch back(io_.get_executor());
  client.set_observer([&](const ConnectionEvent& e) {
    events.push_back(e);
    if (e.kind == Kind::kDisconnected) lost.set();
    if (e.kind == Kind::kConnected && lost.is_set()) back.set();
  });
  client.start();
  watcher.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    CO_ASSERT((co_await watcher.wait_connected(2s)).has_value());
    Command set = {"SET", "roam:volatile", "1"};
    EXPECT_TRUE(is_status(co_await client.command(set), "OK"));

    // A command blocked on the server when it dies completes with kConnectionLost.
    Result blocked;
    Latch blocked_done(io_.get_executor());
    Command blpop = {"BLPOP", "roam:nothing", "10"};
    client.async_command(blpop, 5s, [&](Result r) {
      blocked = std::move(r);
      blocked_done.set();
    });
    // Wait until the server has it (polling the server's own view of its clients).
    bool seen = false;
    for (int i = 0; i < 100 && !seen; ++i) {
      Command list = {"CLIENT", "LIST"};
      auto r = co_await watcher.command(list);
      seen = r && r->as_string() && r->as_string()->find("cmd=blpop") != std::string::npos;
      if (!seen) co_await pause(10ms);
    }
    CO_ASSERT(seen);

    server_->kill(/*restart=*/true);  // SIGKILL, then a fresh redis-server on the same port

    CO_ASSERT(co_await blocked_done.wait(2s));
    EXPECT_TRUE(is_error(blocked, Errc::kConnectionLost)) << show(blocked);
    CO_ASSERT(co_await lost.wait(2s));
    CO_ASSERT(co_await back.wait(3s));
    EXPECT_TRUE(client.connected());

    Command get = {"GET", "roam:volatile"};
    auto r = co_await client.command(get);
    CO_ASSERT(r.has_value());
    EXPECT_TRUE(r->is_nil()) << "fresh server, no persistence: " << show(r);
    EXPECT_TRUE(is_status(co_await client.command(set), "OK"));
    EXPECT_TRUE(is_string(co_await client.command(get), "1"));
  });
  // connected, disconnected, [connect failed...], connected
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().kind, Kind::kConnected);
  EXPECT_EQ(events[1].kind, Kind::kDisconnected);
  EXPECT_EQ(events[1].cause.code, Errc::kConnectionLost);
  EXPECT_EQ(events.back().kind, Kind::kConnected);
}

TEST_F(RedisClientTest, DestroyWithCommandsInFlightIsSafe) {
  constexpr int kCommands = 200;
  int completed = 0, shutdown = 0, ok = 0;
  run([&]() -> asio::awaitable<void> {
    auto client = std::make_unique<Client>(io_.get_executor(), options());
    client->start();
    CO_ASSERT((co_await client->wait_connected(2s)).has_value());
    Latch first(io_.get_executor());
    for (int i = 0; i < kCommands; ++i) {
      Command set = {"SET", "roam:d" + std::to_string(i), std::string(1000, 'x')};
      client->async_command(set, [&](Result r) {
        ++completed;
        if (r) ++ok;
        if (is_error(r, Errc::kShutdown)) ++shutdown;
        // Destroy the client from inside a completion, with replies still queued.
        first.set();
      });
    }
    CO_ASSERT(co_await first.wait(2s));
    client.reset();
    // And right after submitting, before anything was even written.
    auto other = std::make_unique<Client>(io_.get_executor(), options());
    other->start();
    CO_ASSERT((co_await other->wait_connected(2s)).has_value());
    Result pending;
    Latch pending_done(io_.get_executor());
    Command ping = {"PING"};
    other->async_command(ping, [&](Result r) {
      pending = std::move(r);
      pending_done.set();
    });
    other.reset();
    CO_ASSERT(co_await pending_done.wait(1s));
    EXPECT_TRUE(is_error(pending, Errc::kShutdown)) << show(pending);
    // Let every posted completion run.
    for (int i = 0; i < 50 && completed < kCommands; ++i)
      co_await pause(5ms);
  });
  EXPECT_EQ(completed, kCommands) << "every command completes exactly once";
  EXPECT_EQ(ok + shutdown, kCommands);
  EXPECT_GT(ok, 0);
}

TEST_F(RedisClientTest, DestroyWhileReconnectingIsSafe) {
  auto fds_before = open_fds();
  run([&]() -> asio::awaitable<void> {
    auto client = std::make_unique<Client>(io_.get_executor(), options());
    Latch lost(io_.get_executor());
    client->set_observer([&](const ConnectionEvent& e) {
      if (e.kind == Kind::kDisconnected) lost.set();
    });
    client->start();
    CO_ASSERT((co_await client->wait_connected(2s)).has_value());
    server_->kill(/*restart=*/false);
    CO_ASSERT(co_await lost.wait(2s));
    Result waited;
    Latch done(io_.get_executor());
    client->async_wait_connected(5s, [&](VoidResult r) {
      waited = r ? Result{} : Result{roam::unexpected(r.error())};
      done.set();
    });
    co_await pause(50ms);  // a few failed attempts
    client.reset();
    CO_ASSERT(co_await done.wait(1s));
    EXPECT_TRUE(is_error(waited, Errc::kShutdown)) << show(waited);
  });
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_F(RedisSubscriberTest, SubscribeAndPsubscribeDeliverChannelAndPattern) {
  std::vector<Message> messages;
  Latch two(io_.get_executor());
  Latch four(io_.get_executor());
  Subscriber subscriber(io_.get_executor(), options(), [&](const Message& m) {
    messages.push_back(m);
    if (messages.size() == 2) two.set();
    if (messages.size() == 4) four.set();
  });
  ASSERT_TRUE(subscriber.subscribe("roam.a").has_value());
  ASSERT_TRUE(subscriber.psubscribe("roam.*").has_value());
  ASSERT_TRUE(subscriber.subscribe("roam.a").has_value());  // no-op
  EXPECT_EQ(subscriber.subscriptions(), 2u);
  Client client(io_.get_executor(), options());
  subscriber.start();
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await subscriber.wait_synced(2s)).has_value());
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    const std::string payload("hello\0world\r\n", 13);
    Command publish = {"PUBLISH", "roam.a", payload};
    auto r = co_await client.command(publish);
    EXPECT_TRUE(is_integer(r, 2)) << "channel + pattern receivers: " << show(r);
    CO_ASSERT(co_await two.wait(2s));
    int by_channel = 0, by_pattern = 0;
    for (const auto& m : messages) {
      EXPECT_EQ(m.channel, "roam.a");
      EXPECT_EQ(m.payload, payload);
      if (m.pattern.empty()) ++by_channel;
      if (m.pattern == "roam.*") ++by_pattern;
    }
    EXPECT_EQ(by_channel, 1);
    EXPECT_EQ(by_pattern, 1);

    // After unsubscribe only the pattern delivers.
    subscriber.unsubscribe("roam.a");
    Command publish_b = {"PUBLISH", "roam.b", "to-b"};
    EXPECT_TRUE(is_integer(co_await client.command(publish_b), 1));
    Command publish_a = {"PUBLISH", "roam.a", "to-a"};
    co_await client.command(publish_a);
    CO_ASSERT(co_await four.wait(2s));
    EXPECT_EQ(messages[2].channel, "roam.b");
    EXPECT_EQ(messages[2].pattern, "roam.*");
    EXPECT_EQ(messages[2].payload, "to-b");
    EXPECT_EQ(messages[3].channel, "roam.a");
    EXPECT_EQ(messages[3].pattern, "roam.*");
    EXPECT_EQ(messages[3].payload, "to-a");
    // Nothing more arrives for the dropped channel subscription.
    co_await pause(50ms);
    EXPECT_EQ(messages.size(), 4u);
    EXPECT_TRUE(subscriber.synced());
  });
}

TEST_F(RedisSubscriberTest, BoundsSubscriptions) {
  auto o = options();
  o.max_subscriptions = 2;
  Subscriber subscriber(io_.get_executor(), o, nullptr);
  EXPECT_TRUE(subscriber.subscribe("a").has_value());
  EXPECT_TRUE(subscriber.psubscribe("b*").has_value());
  auto r = subscriber.subscribe("c");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("max_subscriptions"), std::string::npos);
  EXPECT_FALSE(subscriber.subscribe("").has_value());
  subscriber.unsubscribe("a");
  EXPECT_TRUE(subscriber.subscribe("c").has_value());
}

TEST_F(RedisSubscriberTest, ResubscribesAfterServerRestart) {
  std::vector<Message> messages;
  Latch got(io_.get_executor());
  Subscriber subscriber(io_.get_executor(), options(), [&](const Message& m) {
    messages.push_back(m);
    got.set();
  });
  std::vector<ConnectionEvent> events;
  Latch lost(io_.get_executor());
  Latch back(io_.get_executor());
  subscriber.set_observer([&](const ConnectionEvent& e) {
    events.push_back(e);
    if (e.kind == Kind::kDisconnected) lost.set();
    if (e.kind == Kind::kConnected && lost.is_set()) back.set();
  });
  ASSERT_TRUE(subscriber.subscribe("roam.events").has_value());
  ASSERT_TRUE(subscriber.psubscribe("turn/*/status").has_value());
  Client client(io_.get_executor(), options());
  subscriber.start();
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await subscriber.wait_synced(2s)).has_value());
    server_->kill(/*restart=*/true);
    CO_ASSERT(co_await lost.wait(2s));
    EXPECT_FALSE(subscriber.synced());
    CO_ASSERT(co_await back.wait(3s));  // kConnected only once re-subscribed
    EXPECT_TRUE(subscriber.synced());
    CO_ASSERT((co_await client.wait_connected(3s)).has_value());
    Command publish = {"PUBLISH", "roam.events", "after-restart"};
    auto r = co_await client.command(publish);
    EXPECT_TRUE(is_integer(r, 1)) << show(r);
    CO_ASSERT(co_await got.wait(2s));
    EXPECT_EQ(messages[0].channel, "roam.events");
    EXPECT_EQ(messages[0].payload, "after-restart");
    Command publish_p = {"PUBLISH", "turn/realm/x/status", "new"};
    r = co_await client.command(publish_p, 1s);
    EXPECT_TRUE(is_integer(r, 1)) << show(r);
  });
}

TEST_F(RedisSubscriberTest, DestroyFromMessageHandlerIsSafe) {
  auto subscriber = std::make_unique<Subscriber>(io_.get_executor(), options(), nullptr);
  int delivered = 0;
  Latch destroyed(io_.get_executor());
  subscriber = std::make_unique<Subscriber>(io_.get_executor(), options(), [&](const Message&) {
    ++delivered;
    subscriber.reset();  // inside the handler, with more messages already read
    destroyed.set();
  });
  ASSERT_TRUE(subscriber->subscribe("roam.x").has_value());
  Client client(io_.get_executor(), options());
  subscriber->start();
  client.start();
  run([&]() -> asio::awaitable<void> {
    CO_ASSERT((co_await subscriber->wait_synced(2s)).has_value());
    CO_ASSERT((co_await client.wait_connected(2s)).has_value());
    for (int i = 0; i < 20; ++i) {
      Command publish = {"PUBLISH", "roam.x", std::to_string(i)};
      client.async_command(publish, [](Result) {});
    }
    CO_ASSERT(co_await destroyed.wait(2s));
    co_await pause(50ms);
    EXPECT_EQ(delivered, 1);
  });
}

}  // namespace
}  // namespace roam::redis
