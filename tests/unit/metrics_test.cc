// metrics::Server serves the Prometheus text format on loopback; Factory enforces our names.
#include "common/metrics/metrics.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace roam::metrics {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

// Plain HTTP/1.1 GET over a loopback TCP socket.
Response http_get(std::uint16_t port, const std::string& target) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  request.set(http::field::connection, "close");
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(4 * 1024 * 1024);
  http::read(socket, buffer, parser);
  auto& response = parser.get();
  return {response.result_int(), std::string(response[http::field::content_type]), response.body()};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Metrics, ServerExposesCounterGaugeHistogram) {
  Server server(ServerOptions{.listen = "127.0.0.1:0", .threads = 1, .path = "/metrics"});
  ASSERT_NE(server.port(), 0);
  ASSERT_EQ(server.ports().size(), 1u);

  auto factory = server.factory("test");
  auto& requests = factory.counter("requests_total", "Requests handled, by result.");
  requests.Add({{"result", "ok"}}).Increment(3);
  requests.Add({{"result", "error"}}).Increment();
  auto& depth =
      factory.gauge("queue_depth", "Messages waiting in the send queue.", {{"instance", "a"}});
  depth.Add({}).Set(7);
  auto& latency = factory.histogram("request_duration_seconds", "Time to answer a request.");
  auto& h = latency.Add({}, latency_buckets());
  h.Observe(0.003);
  h.Observe(0.2);

  auto response = http_get(server.port(), "/metrics");
  EXPECT_EQ(response.status, 200u);
  EXPECT_TRUE(contains(response.content_type, "text/plain")) << response.content_type;
  const auto& text = response.body;
  EXPECT_TRUE(contains(text, "# HELP roam_test_requests_total Requests handled, by result.\n"))
      << text;
  EXPECT_TRUE(contains(text, "# TYPE roam_test_requests_total counter\n")) << text;
  EXPECT_TRUE(contains(text, "roam_test_requests_total{result=\"ok\"} 3\n")) << text;
  EXPECT_TRUE(contains(text, "roam_test_requests_total{result=\"error\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "# TYPE roam_test_queue_depth gauge\n")) << text;
  EXPECT_TRUE(contains(text, "roam_test_queue_depth{instance=\"a\"} 7\n")) << text;
  EXPECT_TRUE(contains(text, "# TYPE roam_test_request_duration_seconds histogram\n")) << text;
  EXPECT_TRUE(contains(text, "roam_test_request_duration_seconds_count 2\n")) << text;
  EXPECT_TRUE(contains(text, "roam_test_request_duration_seconds_bucket{le=\"0.005\"} 1\n"))
      << text;
  EXPECT_TRUE(contains(text, "roam_test_request_duration_seconds_bucket{le=\"+Inf\"} 2\n")) << text;

  // Values are read at scrape time.
  requests.Add({{"result", "ok"}}).Increment();
  EXPECT_TRUE(contains(http_get(server.port(), "/metrics").body,
                       "roam_test_requests_total{result=\"ok\"} 4\n"));
  EXPECT_EQ(http_get(server.port(), "/nothing").status, 404u);
}

TEST(Metrics, CustomPathAndPortInUse) {
  Server first(ServerOptions{.listen = "127.0.0.1:0", .threads = 1, .path = "/m"});
  first.factory("test").gauge("up", "Whether the test is up.").Add({}).Set(1);
  EXPECT_TRUE(contains(http_get(first.port(), "/m").body, "roam_test_up 1\n"));

  auto taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    Server second(ServerOptions{.listen = taken, .threads = 1});
    ADD_FAILURE() << "a second server bound " << taken;
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), taken)) << e.what();
  }
  EXPECT_THROW(Server(ServerOptions{.listen = "", .threads = 1}), std::invalid_argument);
  EXPECT_THROW(Server(ServerOptions{.listen = "127.0.0.1:0", .threads = 1, .path = "metrics"}),
               std::invalid_argument);
}

TEST(Metrics, NamingRules) {
  EXPECT_EQ(metric_name("relay", "tokens_taken_total", "counter"), "roam_relay_tokens_taken_total");
  EXPECT_EQ(metric_name("signaling", "session_setup_seconds", "histogram"),
            "roam_signaling_session_setup_seconds");

  prometheus::Registry registry;
  Factory f(registry, "relay");
  EXPECT_THROW(f.counter("tokens_taken", "help"), std::invalid_argument);   // no _total
  EXPECT_THROW(f.gauge("tokens_total", "help"), std::invalid_argument);     // _total on a gauge
  EXPECT_THROW(f.histogram("rtt_ms", "help"), std::invalid_argument);       // not a base unit
  EXPECT_THROW(f.counter("sent_kb_total", "help"), std::invalid_argument);  // not a base unit
  EXPECT_THROW(f.gauge("Pool", "help"), std::invalid_argument);             // upper case
  EXPECT_THROW(f.gauge("pool__size", "help"), std::invalid_argument);
  EXPECT_THROW(f.gauge("pool_", "help"), std::invalid_argument);
  EXPECT_THROW(f.gauge("pool_size", ""), std::invalid_argument);  // help required
  EXPECT_THROW(f.gauge("pool_size", "help", {{"__reserved", "x"}}), std::invalid_argument);
  EXPECT_THROW(f.gauge("pool_size", "help", {{"Bad-Label", "x"}}), std::invalid_argument);
  EXPECT_THROW(Factory(registry, "Relay"), std::invalid_argument);
  EXPECT_THROW(Factory(registry, ""), std::invalid_argument);

  auto& a = f.gauge("pool_size", "Tokens in the pool.");
  auto& b = f.gauge("pool_size", "Tokens in the pool.");
  EXPECT_EQ(&a, &b) << "same name and labels: the existing family";
}

TEST(Metrics, Buckets) {
  auto b = exponential_buckets(0.001, 2, 4);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_DOUBLE_EQ(b[0], 0.001);
  EXPECT_DOUBLE_EQ(b[3], 0.008);
  EXPECT_THROW(exponential_buckets(0, 2, 4), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(1, 1, 4), std::invalid_argument);
  auto l = latency_buckets();
  EXPECT_TRUE(std::is_sorted(l.begin(), l.end()));
}

}  // namespace
}  // namespace roam::metrics
