// SignalingLink's stop() against a real roam-signaling (and the redis-server it registers in):
// once its on_stopped callback has run, none of the link's coroutines is left suspended, so the
// io_context runs out of work by itself. The agent's commands wait for that callback before they
// stop their io_context; a coroutine still suspended then would be destroyed by ~io_context after
// services its WebSocket stream's destructor uses.
#include "agent/paths/signaling_link.h"

#include <chrono>
#include <string>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "tests/support/certificates.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"
#include "tests/support/signaling_server.h"

namespace roam::agent {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const std::string kJwtSecret = "signaling-link-test-jwt-secret-0123456789";

class SignalingLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!test::make_self_signed_certificate(dir_.path(), "server", "localhost", &why)) {
      GTEST_SKIP() << why;
    }
    auto tls = net::make_tls_client_context((dir_.path() / "server.pem").string());
    ASSERT_TRUE(tls) << tls.error();
    tls_.emplace(std::move(*tls));
  }

  void start_server() {
    std::string skip;
    redis_ = test::RedisServer::start(&skip);
    if (!redis_) GTEST_SKIP() << skip;
    server_.emplace(test::SignalingServerOptions{dir_.path(),
                                                 dir_.path() / "server.pem",
                                                 dir_.path() / "server.key",
                                                 kJwtSecret,
                                                 "signaling-link-test-turn-secret",
                                                 redis_->port(),
                                                 "sig-link",
                                                 {},
                                                 std::nullopt});
  }

  SignalingLinkOptions options(std::uint16_t port, const std::string& peer) {
    SignalingLinkOptions o;
    o.urls = {"wss://127.0.0.1:" + std::to_string(port) + "/"};
    o.hello.token = test::mint_token(kJwtSecret, peer, 600s);
    o.backoff_initial = 5s;  // a stop during the backoff must not wait for it
    return o;
  }

  // Runs io_ until `done` holds (bounded); false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
    }
    return done();
  }

  // After on_stopped: runs io_ without anyone calling stop() and expects it to run out of work
  // (no coroutine of the link still waits on an operation).
  void expect_io_runs_out_of_work() {
    io_.restart();
    const auto start = std::chrono::steady_clock::now();
    io_.run_for(3s);
    EXPECT_TRUE(io_.stopped()) << "the io_context still has work 3 s after on_stopped";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  }

  test::TempDir dir_;
  std::optional<asio::ssl::context> tls_;
  std::unique_ptr<test::RedisServer> redis_;
  std::optional<test::SignalingServer> server_;
  asio::io_context io_;
};

TEST_F(SignalingLinkTest, StopWhileConnectedWithSendsInFlightEndsEveryCoroutine) {
  start_server();
  if (IsSkipped()) return;
  int connected = 0, stopped_calls = 0;
  std::string last_error;
  auto link = std::make_unique<SignalingLink>(
      io_.get_executor(), *tls_, options(server_->wss_port(), "alice"),
      [](const signaling::ServerMessage&) {},
      [&](const SignalingLink::StateChange& change) {
        if (change.connected) {
          ++connected;
        } else {
          last_error = change.detail;
        }
      });
  link->start();
  ASSERT_TRUE(run_until([&] { return connected == 1; })) << "not connected: " << last_error;
  // A burst of sends, each its own coroutine, then stop() before any of them has run.
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(link->send(signaling::Connect{"r" + std::to_string(i), "nobody"}));
  }
  link->stop([&] { ++stopped_calls; });
  ASSERT_TRUE(run_until([&] { return stopped_calls > 0; }, 3s));
  expect_io_runs_out_of_work();
  EXPECT_EQ(stopped_calls, 1);
  EXPECT_FALSE(link->connected());
  link.reset();
  EXPECT_TRUE(server_->running());
}

TEST_F(SignalingLinkTest, StopDuringTheBackoffEndsAtOnce) {
  int disconnected = 0, stopped_calls = 0;
  SignalingLink link(
      io_.get_executor(), *tls_, options(test::free_tcp_port(), "bob"),
      [](const signaling::ServerMessage&) {},
      [&](const SignalingLink::StateChange& change) {
        if (!change.connected) ++disconnected;
        EXPECT_FALSE(change.fatal) << change.detail;
      });
  link.start();
  ASSERT_TRUE(run_until([&] { return disconnected == 1; }));  // refused, now backing off 5 s
  const auto start = std::chrono::steady_clock::now();
  link.stop([&] { ++stopped_calls; });
  ASSERT_TRUE(run_until([&] { return stopped_calls > 0; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  expect_io_runs_out_of_work();
  EXPECT_EQ(disconnected, 1);
}

TEST_F(SignalingLinkTest, StopOfALinkThatNeverStartedCallsBack) {
  SignalingLink link(
      io_.get_executor(), *tls_, options(test::free_tcp_port(), "carol"),
      [](const signaling::ServerMessage&) {}, [](const SignalingLink::StateChange&) {});
  int stopped_calls = 0;
  link.stop([&] { ++stopped_calls; });
  EXPECT_EQ(stopped_calls, 0);  // posted, not called from inside stop()
  expect_io_runs_out_of_work();
  EXPECT_EQ(stopped_calls, 1);
  link.start();  // after stop(): does nothing
  expect_io_runs_out_of_work();
}

}  // namespace
}  // namespace roam::agent
