// TlsStream (wolfSSL straight over a TCP socket) and WssClient on it, over real loopback TCP
// with certificates made by the openssl CLI: handshake and verification, both directions, a
// write larger than the socket buffers, corked writes, the two ways a stream ends, and the
// failures a client names (timeout, untrusted certificate, wrong name, not TLS at all).
#include "common/net/tls_stream.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include "common/net/wss_client.h"
#include "tests/support/certificates.h"
#include "tests/support/process.h"

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;
using roam::net::TlsStream;
using namespace std::chrono_literals;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!roam::test::make_self_signed_certificate(dir_.path(), "server", "localhost", &why) ||
        !roam::test::make_self_signed_certificate(dir_.path(), "stranger", "localhost", &why)) {
      GTEST_SKIP() << why;
    }
    server_tls_.use_certificate_chain_file((dir_.path() / "server.pem").string());
    server_tls_.use_private_key_file((dir_.path() / "server.key").string(), ssl::context::pem);
  }

  std::string pem(const std::string& stem) const {
    return (dir_.path() / (stem + ".pem")).string();
  }

  // A connected pair of TCP sockets on loopback: {server side, client side}.
  std::pair<tcp::socket, tcp::socket> tcp_pair() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io_);
    client.connect(acceptor.local_endpoint());
    return {acceptor.accept(), std::move(client)};
  }

  // A server stream and a client stream (trusting `ca`'s certificate) over one TCP connection.
  struct Streams {
    std::unique_ptr<TlsStream> server, client;
  };
  Streams streams(const std::string& ca) {
    auto context = roam::net::make_tls_client_context(pem(ca));
    EXPECT_TRUE(context) << context.error();
    client_tls_.emplace_back(std::move(*context));
    auto [a, b] = tcp_pair();
    return {std::make_unique<TlsStream>(std::move(a), server_tls_),
            std::make_unique<TlsStream>(std::move(b), client_tls_.back())};
  }

  // Runs `body` as a coroutine on io_ until it finishes (bounded).
  template <class Body>
  void run(Body body) {
    bool done = false;
    io_.restart();  // a previous run() may have left it stopped (out of work)
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await body();
          done = true;
        },
        asio::detached);
    for (int i = 0; i < 200 && !done; ++i)
      io_.run_for(50ms);
    ASSERT_TRUE(done) << "the test coroutine did not finish within 10 s";
  }

  // Handshakes a client (verifying against `ca_stem`, for `name`) with the server stream.
  asio::awaitable<std::pair<error_code, error_code>> handshake(TlsStream& server, TlsStream& client,
                                                               const std::string& name) {
    client.set_verify_mode(ssl::verify_peer);
    client.set_verify_callback(ssl::host_name_verification(name));
    error_code server_ec, client_ec;
    bool server_done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          std::tie(server_ec) = co_await server.async_handshake(ssl::stream_base::server, kUse);
          server_done = true;
        },
        asio::detached);
    std::tie(client_ec) = co_await client.async_handshake(ssl::stream_base::client, kUse);
    asio::steady_timer wait(io_);
    for (int i = 0; i < 100 && !server_done; ++i) {
      wait.expires_after(10ms);
      co_await wait.async_wait(kUse);
    }
    co_return std::pair{server_ec, client_ec};
  }

  asio::io_context io_;
  roam::test::TempDir dir_;
  ssl::context server_tls_{ssl::context::tls_server};
  std::list<ssl::context> client_tls_;
};

TEST_F(TlsStreamTest, HandshakeThenBothDirectionsIncludingAWriteLargerThanTheSocketBuffers) {
  auto [server_stream, client_stream] = streams("server");
  TlsStream &server = *server_stream, &client = *client_stream;
  run([&]() -> asio::awaitable<void> {
    auto [server_ec, client_ec] = co_await handshake(server, client, "localhost");
    EXPECT_FALSE(server_ec) << server_ec.message();
    EXPECT_FALSE(client_ec) << client_ec.message();

    auto [wec, wn] = co_await asio::async_write(client, asio::buffer(std::string("hello")), kUse);
    EXPECT_FALSE(wec);
    std::string got(5, '\0');
    auto [rec, rn] = co_await asio::async_read(server, asio::buffer(got), kUse);
    EXPECT_FALSE(rec) << rec.message();
    EXPECT_EQ(got, "hello");

    // 4 MiB at once: the socket fills, the write waits for it to drain while the peer reads.
    std::string big(4 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>(i * 131 % 251);
    std::string received(big.size(), '\0');
    bool written = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto [ec, n] = co_await asio::async_write(server, asio::buffer(big), kUse);
          EXPECT_FALSE(ec) << ec.message();
          EXPECT_EQ(n, big.size());
          written = true;
        },
        asio::detached);
    auto [bec, bn] = co_await asio::async_read(client, asio::buffer(received), kUse);
    EXPECT_FALSE(bec) << bec.message();
    EXPECT_TRUE(received == big) << "the 4 MiB arrived altered";
    EXPECT_TRUE(written);
  });
}

TEST_F(TlsStreamTest, CorkedWritesWaitForOneFlush) {
  auto [server_stream, client_stream] = streams("server");
  TlsStream &server = *server_stream, &client = *client_stream;
  run([&]() -> asio::awaitable<void> {
    auto [server_ec, client_ec] = co_await handshake(server, client, "localhost");
    EXPECT_FALSE(server_ec || client_ec);
    // What the handshake left unread at the client (TLS 1.3 NewSessionTicket records).
    asio::steady_timer settle(io_, 20ms);
    co_await settle.async_wait(kUse);
    const auto unread_before = client.next_layer().available();
    server.set_corked(true);
    std::string all;
    for (int i = 0; i < 10; ++i) {
      std::string message = "message " + std::to_string(i) + ";";
      all += message;
      auto [ec, n] = co_await asio::async_write(server, asio::buffer(message), kUse);
      EXPECT_FALSE(ec);
      EXPECT_EQ(n, message.size());
    }
    EXPECT_GT(server.buffered_output(), all.size());  // records, not yet on the socket
    settle.expires_after(20ms);
    co_await settle.async_wait(kUse);
    EXPECT_EQ(client.next_layer().available(), unread_before) << "corked records reached TCP";

    server.set_corked(false);
    auto [fec, fn] = co_await server.async_flush(kUse);
    EXPECT_FALSE(fec);
    EXPECT_EQ(server.buffered_output(), 0u);
    std::string got(all.size(), '\0');
    auto [rec, rn] = co_await asio::async_read(client, asio::buffer(got), kUse);
    EXPECT_FALSE(rec);
    EXPECT_EQ(got, all);
  });
}

// The stamp is the kernel's, taken when the bytes reached the socket: a reader that comes 200 ms
// later still sees when they arrived (what the signaling benchmark's latency "up to the arrival
// at the client" relies on).
TEST_F(TlsStreamTest, ArrivalStampsAreWhenTheBytesArrivedNotWhenTheyWereRead) {
  auto [server_stream, client_stream] = streams("server");
  TlsStream &server = *server_stream, &client = *client_stream;
  auto unix_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  EXPECT_EQ(client.last_arrival_unix_ns(), 0) << "no stamps before stamp_arrivals()";
  ASSERT_TRUE(client.stamp_arrivals()) << std::strerror(errno);
  run([&]() -> asio::awaitable<void> {
    auto [server_ec, client_ec] = co_await handshake(server, client, "localhost");
    EXPECT_FALSE(server_ec || client_ec);
    // Without it Nagle's algorithm holds "ping" until the client acknowledges the handshake's
    // last records (a delayed ACK, ~30 ms here), and the stamp says so.
    server.next_layer().set_option(tcp::no_delay(true));
    // The kernel turns stamping on for all sockets from a work queue, a moment after the first
    // socket asks: exchange bytes until they come stamped.
    asio::steady_timer settle(io_);
    for (int i = 0; i < 100 && client.last_arrival_unix_ns() == 0; ++i) {
      settle.expires_after(10ms);
      co_await settle.async_wait(kUse);
      co_await asio::async_write(server, asio::buffer(std::string("w")), kUse);
      char byte = 0;
      co_await asio::async_read(client, asio::buffer(&byte, 1), kUse);
    }
    EXPECT_NE(client.last_arrival_unix_ns(), 0) << "no stamp after 1 s";
    const auto sent_at = unix_ns();
    auto [wec, wn] = co_await asio::async_write(server, asio::buffer(std::string("ping")), kUse);
    EXPECT_FALSE(wec);
    asio::steady_timer later(io_, 200ms);
    co_await later.async_wait(kUse);
    std::string got(4, '\0');
    auto [rec, rn] = co_await asio::async_read(client, asio::buffer(got), kUse);
    const auto read_at = unix_ns();
    EXPECT_FALSE(rec) << rec.message();
    EXPECT_EQ(got, "ping");
    const auto arrived_at = client.last_arrival_unix_ns();
    EXPECT_GE(arrived_at, sent_at);
    EXPECT_LT(arrived_at, sent_at + 60'000'000) << "the stamp is not the arrival";
    EXPECT_GE(read_at - arrived_at, 140'000'000)
        << "arrived after " << (arrived_at - sent_at) << " ns, read after " << (read_at - sent_at);
  });
}

TEST_F(TlsStreamTest, CloseNotifyEndsTheStreamAndABareTcpCloseIsTruncation) {
  for (bool close_notify : {true, false}) {
    auto [server_stream, client_stream] = streams("server");
    TlsStream &server = *server_stream, &client = *client_stream;
    run([&]() -> asio::awaitable<void> {
      auto [server_ec, client_ec] = co_await handshake(server, client, "localhost");
      EXPECT_FALSE(server_ec || client_ec);
      if (close_notify) {
        auto [ec, n] = co_await server.async_shutdown(kUse);
        EXPECT_FALSE(ec) << ec.message();
      } else {
        server.next_layer().close();
      }
      char byte = 0;
      auto [rec, rn] = co_await client.async_read_some(asio::buffer(&byte, 1), kUse);
      if (close_notify) {
        EXPECT_EQ(rec, asio::error::eof) << rec.message();
      } else {
        EXPECT_EQ(rec, ssl::error::stream_truncated) << rec.message();
      }
    });
  }
}

TEST_F(TlsStreamTest, AnUntrustedCertificateFailsBothSidesOfTheHandshake) {
  auto [server_stream, client_stream] = streams("stranger");
  TlsStream &server = *server_stream, &client = *client_stream;
  run([&]() -> asio::awaitable<void> {
    auto [server_ec, client_ec] = co_await handshake(server, client, "localhost");
    EXPECT_TRUE(client_ec);
    EXPECT_FALSE(client_ec.message().empty());
    EXPECT_TRUE(server_ec) << "the server finished a handshake the client refused";
  });
}

TEST_F(TlsStreamTest, APeerThatIsNotTlsFailsTheHandshakeWithoutHanging) {
  auto client_tls = roam::net::make_tls_client_context(pem("server"));
  ASSERT_TRUE(client_tls) << client_tls.error();
  auto [a, b] = tcp_pair();
  TlsStream client(std::move(b), *client_tls);
  run([&]() -> asio::awaitable<void> {
    std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    asio::write(a, asio::buffer(answer));
    a.close();
    auto [ec] = co_await client.async_handshake(ssl::stream_base::client, kUse);
    EXPECT_TRUE(ec);
  });
}

// ---- WssClient over TlsStream --------------------------------------------------------------

// One WebSocket-over-TLS server connection that echoes every message.
asio::awaitable<void> echo_server(tcp::acceptor& acceptor, ssl::context& tls) {
  auto [aec, socket] = co_await acceptor.async_accept(kUse);
  if (aec) co_return;
  websocket::stream<TlsStream> ws(std::move(socket), tls);
  auto [hec] = co_await ws.next_layer().async_handshake(ssl::stream_base::server, kUse);
  if (hec) co_return;
  auto [wec] = co_await ws.async_accept(kUse);
  if (wec) co_return;
  boost::beast::flat_buffer buffer;
  for (;;) {
    auto [rec, n] = co_await ws.async_read(buffer, kUse);
    if (rec) co_return;
    ws.text(true);
    auto [sec, m] = co_await ws.async_write(buffer.data(), kUse);
    if (sec) co_return;
    buffer.consume(buffer.size());
  }
}

class WssClientTest : public TlsStreamTest {
 protected:
  roam::net::WssClientOptions options(std::uint16_t port) {
    roam::net::WssClientOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = "localhost";
    o.handshake_timeout = 500ms;
    return o;
  }
};

TEST_F(WssClientTest, BurstWithMoreArrivesWholeAndInOrder) {
  auto client_tls = roam::net::make_tls_client_context(pem("server"));
  ASSERT_TRUE(client_tls) << client_tls.error();
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io_, echo_server(acceptor, server_tls_), asio::detached);
  roam::net::WssClient client(io_.get_executor(), *client_tls,
                              options(acceptor.local_endpoint().port()));
  run([&]() -> asio::awaitable<void> {
    auto connected = co_await client.connect();
    EXPECT_TRUE(connected) << connected.error();
    for (int i = 0; i < 5; ++i) {
      auto sent = co_await client.send("m" + std::to_string(i), i < 4);
      EXPECT_TRUE(sent) << sent.error();
    }
    for (int i = 0; i < 5; ++i) {
      auto got = co_await client.receive();
      EXPECT_TRUE(got) << got.error();
      if (got) {
        EXPECT_EQ(*got, "m" + std::to_string(i));
      }
    }
    auto closed = co_await client.close();
    EXPECT_TRUE(closed) << closed.error();
  });
}

TEST_F(WssClientTest, ASilentServerTimesOutTheHandshake) {
  auto client_tls = roam::net::make_tls_client_context(pem("server"));
  ASSERT_TRUE(client_tls) << client_tls.error();
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket held(io_);  // accepted, never answered
  acceptor.async_accept(held, [](error_code) {});
  roam::net::WssClient client(io_.get_executor(), *client_tls,
                              options(acceptor.local_endpoint().port()));
  run([&]() -> asio::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    auto connected = co_await client.connect();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(connected);
    if (connected) co_return;
    EXPECT_NE(connected.error().find("TLS handshake with 127.0.0.1:"), std::string::npos)
        << connected.error();
    EXPECT_NE(connected.error().find("timed out after 500 ms"), std::string::npos)
        << connected.error();
    EXPECT_LT(took, 3s);
  });
}

TEST_F(WssClientTest, CertificateProblemsAreNamed) {
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  struct Case {
    std::string ca, name, expected;
  };
  for (const auto& c : {Case{"stranger", "localhost", "certificate verification failed"},
                        Case{"server", "other.example", "not valid for 'other.example'"}}) {
    auto client_tls = roam::net::make_tls_client_context(pem(c.ca));
    ASSERT_TRUE(client_tls) << client_tls.error();
    asio::co_spawn(io_, echo_server(acceptor, server_tls_), asio::detached);
    auto o = options(port);
    o.server_name = c.name;
    roam::net::WssClient client(io_.get_executor(), *client_tls, o);
    run([&]() -> asio::awaitable<void> {
      auto connected = co_await client.connect();
      EXPECT_FALSE(connected);
      if (connected) co_return;
      EXPECT_NE(connected.error().find(c.expected), std::string::npos) << connected.error();
    });
  }
}

// A server that sends its close frame and then neither reads nor ends TCP: the client answers
// and waits for TCP's end, which Beast bounds only by the idle timeout. Without one, the
// client's handshake_timeout must end the wait.
TEST_F(WssClientTest, AServerThatClosesButNeverEndsTcpCannotHoldTheClient) {
  auto client_tls = roam::net::make_tls_client_context(pem("server"));
  ASSERT_TRUE(client_tls) << client_tls.error();
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::unique_ptr<websocket::stream<TlsStream>> held;  // the server side, kept open
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        auto [aec, socket] = co_await acceptor.async_accept(kUse);
        if (aec) co_return;
        held = std::make_unique<websocket::stream<TlsStream>>(std::move(socket), server_tls_);
        auto [hec] = co_await held->next_layer().async_handshake(ssl::stream_base::server, kUse);
        if (hec) co_return;
        auto [wec] = co_await held->async_accept(kUse);
        if (wec) co_return;
        // RFC 6455 §5.5.1: FIN + opcode 8, unmasked (server to client), code 1001 "away".
        const std::string close_frame{
            "\x88\x06\x03\xe9"
            "away",
            8};
        co_await asio::async_write(held->next_layer(), asio::buffer(close_frame), kUse);
      },
      asio::detached);
  roam::net::WssClient client(io_.get_executor(), *client_tls,
                              options(acceptor.local_endpoint().port()));
  ASSERT_FALSE(client.options().idle_timeout);
  run([&]() -> asio::awaitable<void> {
    auto connected = co_await client.connect();
    EXPECT_TRUE(connected) << connected.error();
    if (!connected) co_return;
    const auto start = std::chrono::steady_clock::now();
    auto got = co_await client.receive();
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(got);
    if (got) co_return;
    EXPECT_NE(got.error().find("closed by server: code 1001 (away), then TCP"), std::string::npos)
        << got.error();
    EXPECT_NE(got.error().find("not ended within 500 ms"), std::string::npos) << got.error();
    EXPECT_GE(took, 400ms);
    EXPECT_LT(took, 3s);
    EXPECT_TRUE(client.close_info());
    if (!client.close_info()) co_return;
    EXPECT_EQ(client.close_info()->code, 1001);
    EXPECT_EQ(client.close_info()->reason, "away");
    EXPECT_FALSE(client.is_open());
  });
}

}  // namespace
