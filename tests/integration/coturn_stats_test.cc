// roam-relay's coturn stats exporter against a real coturn publishing to a real Redis
// (turnserver --redis-statsdb), with the exporter in-process on its own io_context thread and
// the sans-I/O TURN client plus a plain UDP peer making the traffic.
//
// What the counters match (coturn 4.6.1): the peer side exactly the application bytes and
// datagrams; the client side the UDP payloads between client and coturn, i.e. every STUN
// request/response and the 4-byte ChannelData headers too. The test counts what its client
// sent and received on the wire to compare with the latter.
#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <prometheus/registry.h>

#include "common/auth/turn_rest.h"
#include "common/metrics/metrics.h"
#include "common/turn/client.h"
#include "relay/stats/stats_exporter.h"
#include "tests/support/servers.h"
#include "tests/support/udp_socket.h"
#include "tests/support/wait.h"

namespace roam::relay {
namespace {

using namespace std::chrono_literals;
using Labels = std::map<std::string, std::string>;
using test::Coturn;
using test::RedisServer;
using test::UdpSocket;

using test::eventually;

// One TURN client on its own socket, pumped in real time; counts its wire traffic with coturn.
class Session {
 public:
  Session(const Coturn& coturn, turn::Credentials credentials)
      : client_(config(coturn, std::move(credentials)), random_) {}

  static turn::ClientConfig config(const Coturn& coturn, turn::Credentials credentials) {
    turn::ClientConfig c;
    c.server = coturn.address();
    c.credentials = std::move(credentials);
    c.retransmission.initial_rto = 200ms;
    return c;
  }

  void send(ByteSpan datagram) {
    socket_.send_to(client_.config().server, datagram);
    ++sent_packets_;
    sent_bytes_ += datagram.size();
  }

  void flush() {
    while (auto out = client_.poll_transmit())
      send(*out);
    while (auto e = client_.poll_event())
      events_.push_back(*e);
  }

  // Feeds datagrams from coturn until `done()` or `timeout` (returns done()).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5000ms) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      flush();
      if (done()) return true;
      auto now = Clock::now();
      if (now >= deadline) return false;
      auto wait = std::min<Duration>(deadline - now, client_.next_deadline() - now);
      receive_one(std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(wait)));
      if (client_.next_deadline() <= Clock::now()) client_.handle_timeout(Clock::now());
    }
  }

  // Reads whatever coturn sent until the socket stays quiet for `quiet`.
  void drain(std::chrono::milliseconds quiet) {
    while (receive_one(quiet)) {
    }
    flush();
  }

  template <class T>
  bool wait_for(std::chrono::milliseconds timeout = 5000ms) {
    return run_until([&] { return event<T>().has_value(); }, timeout);
  }
  template <class T>
  std::optional<T> event() const {
    for (const auto& e : events_) {
      if (auto* v = std::get_if<T>(&e)) return *v;
    }
    return std::nullopt;
  }

  turn::Client& client() { return client_; }
  std::uint64_t sent_packets() const { return sent_packets_; }
  std::uint64_t sent_bytes() const { return sent_bytes_; }
  std::uint64_t received_packets() const { return received_packets_; }
  std::uint64_t received_bytes() const { return received_bytes_; }
  int data_received() const { return data_received_; }  // relayed peer datagrams

 private:
  bool receive_one(std::chrono::milliseconds timeout) {
    auto d = socket_.receive(timeout);
    if (!d || d->from != client_.config().server) return false;
    ++received_packets_;
    received_bytes_ += d->data.size();
    if (client_.handle_datagram(Clock::now(), d->data)) ++data_received_;
    return true;
  }

  SystemRandom random_;
  UdpSocket socket_;
  turn::Client client_;
  std::vector<turn::Event> events_;
  std::uint64_t sent_packets_ = 0, sent_bytes_ = 0, received_packets_ = 0, received_bytes_ = 0;
  int data_received_ = 0;
};

class CoturnStats : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string skip;
    redis_ = RedisServer::start(&skip);
    if (!redis_) GTEST_SKIP() << skip;
    test::CoturnOptions options;
    options.statsdb_redis_port = redis_->port();
    coturn_ = Coturn::start(options, &skip);
    if (!coturn_) GTEST_SKIP() << skip;

    factory_.emplace(registry_, "relay");
    redis::Options redis_options;
    redis_options.port = redis_->port();
    redis_options.reconnect_min = 50ms;
    redis_options.reconnect_max = 500ms;
    exporter_.emplace(io_.get_executor(),
                      StatsExporterConfig{.redis = redis_options, .own_user = "roam-relay-test"},
                      *factory_);
    exporter_->start();
    io_thread_ = std::thread([this] { io_.run(); });
    ASSERT_TRUE(eventually([&] { return exporter_->connected(); }, 5000ms)) << redis_->log();
  }

  void TearDown() override {
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    exporter_.reset();
  }

  turn::Credentials credentials(const std::string& peer) {
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto c = auth::turn_rest::mint(coturn_->options().secret, peer, now, 600s);
    EXPECT_TRUE(c.has_value());
    return {c->username, c->password};
  }

  double metric(const std::string& name, const Labels& labels = {}) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        Labels have;
        for (const auto& l : m.label)
          have[l.name] = l.value;
        if (have != labels) continue;
        if (family.type == prometheus::MetricType::Counter) return m.counter.value;
        if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
        if (family.type == prometheus::MetricType::Histogram)
          return static_cast<double>(m.histogram.sample_count);
      }
    }
    ADD_FAILURE() << "no metric " << name;
    return -1;
  }
  double messages(const std::string& kind) {
    return metric("roam_relay_coturn_stats_messages_total", {{"kind", kind}});
  }
  double traffic(const std::string& what, const std::string& side, const std::string& direction) {
    return metric("roam_relay_coturn_relayed_" + what + "_total",
                  {{"side", side}, {"direction", direction}});
  }

  // Allocates; returns false on failure.
  bool allocate(Session& s) {
    s.client().allocate(Clock::now(), {});
    return s.wait_for<turn::Allocated>();
  }
  bool deallocate(Session& s) {
    s.client().deallocate(Clock::now());
    return s.wait_for<turn::Deallocated>();
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Coturn> coturn_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(io_)};
  prometheus::Registry registry_;
  std::optional<metrics::Factory> factory_;
  std::optional<StatsExporter> exporter_;
  std::thread io_thread_;
};

TEST_F(CoturnStats, AllocationGaugeTrafficCountersAndLifetime) {
  Session s(*coturn_, credentials("alice"));
  ASSERT_TRUE(allocate(s)) << coturn_->log();
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 1; }, 3000ms));
  EXPECT_EQ(metric("roam_relay_coturn_allocations"), 1);

  UdpSocket peer;
  const SocketAddress relayed = *s.client().relayed_address();
  ASSERT_TRUE(s.client().bind_channel(Clock::now(), peer.local_address()));
  ASSERT_TRUE(s.wait_for<turn::ChannelBound>()) << coturn_->log();

  // 4 × 1100 packets: past coturn's 4096-packet mark (one delta in flight) plus the final one
  // at close. In lock-step batches of 20 each way, so no socket buffer on the way (coturn's
  // included, on a loaded machine) can overflow: every datagram must arrive.
  constexpr int kPackets = 1100;
  constexpr int kBatch = 20;
  constexpr std::size_t kPayload = 64;
  const Bytes payload(kPayload, std::byte{0x5a});
  int peer_received = 0;
  for (int sent = 0; sent < kPackets;) {
    for (int i = 0; i < kBatch && sent < kPackets; ++i, ++sent) {
      auto cd = s.client().wrap(peer.local_address(), payload);
      ASSERT_TRUE(cd);
      s.send(*cd);
      peer.send_to(relayed, payload);
    }
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while ((peer_received < sent || s.data_received() < sent) &&
           std::chrono::steady_clock::now() < deadline) {
      s.drain(1ms);
      while (peer.receive(1ms))
        ++peer_received;
    }
    ASSERT_EQ(peer_received, sent) << "datagrams lost on loopback";
    ASSERT_EQ(s.data_received(), sent) << "datagrams lost on loopback";
  }
  s.drain(50ms);
  // The delta published at coturn's 4096th packet, before any close.
  ASSERT_TRUE(eventually([&] { return messages("traffic") >= 2; }, 3000ms));

  ASSERT_TRUE(deallocate(s));
  s.drain(100ms);
  ASSERT_TRUE(eventually([&] { return messages("total_traffic") == 2; }, 3000ms));
  EXPECT_EQ(exporter_->live_allocations(), 0u);
  EXPECT_EQ(metric("roam_relay_coturn_allocations"), 0);
  EXPECT_EQ(metric("roam_relay_coturn_allocation_lifetime_seconds"), 1);
  EXPECT_EQ(messages("new"), 1);
  EXPECT_EQ(messages("deleted"), 1);
  EXPECT_EQ(messages("traffic"), 4);  // client + peer, at the 4096 mark and at close
  EXPECT_EQ(messages("malformed"), 0);

  // Peer side: exactly the application data.
  EXPECT_EQ(traffic("packets", "peer", "rx"), kPackets);
  EXPECT_EQ(traffic("bytes", "peer", "rx"), kPackets * kPayload);
  EXPECT_EQ(traffic("packets", "peer", "tx"), kPackets);
  EXPECT_EQ(traffic("bytes", "peer", "tx"), kPackets * kPayload);
  // Client side: every UDP payload exchanged with coturn (STUN and ChannelData alike).
  EXPECT_EQ(traffic("packets", "client", "rx"), s.sent_packets());
  EXPECT_EQ(traffic("bytes", "client", "rx"), s.sent_bytes());
  EXPECT_EQ(traffic("packets", "client", "tx"), s.received_packets());
  EXPECT_EQ(traffic("bytes", "client", "tx"), s.received_bytes());
  EXPECT_GE(s.sent_bytes(), kPackets * (kPayload + 4));
  for (auto kind : {"duplicate_new", "unknown_delete", "adopted", "expired", "overflow"}) {
    EXPECT_EQ(metric("roam_relay_coturn_allocation_anomalies_total", {{"kind", kind}}), 0) << kind;
  }
}

TEST_F(CoturnStats, OwnAllocationsAreLeftOutOfGaugeAndLifetimeButTheirTrafficCounts) {
  Session client(*coturn_, credentials("alice"));
  ASSERT_TRUE(allocate(client));
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 1; }, 3000ms));

  // The pool's way: EVEN-PORT(R=1), delete at once; the reservation never shows in Redis.
  Session own(*coturn_, credentials("roam-relay-test"));
  own.client().allocate(Clock::now(), {.even_port = true, .reserve_next = true});
  ASSERT_TRUE(own.wait_for<turn::Allocated>()) << coturn_->log();
  ASSERT_TRUE(eventually([&] { return messages("new") == 2; }, 3000ms));
  EXPECT_EQ(exporter_->live_allocations(), 1u);
  ASSERT_TRUE(deallocate(own));
  ASSERT_TRUE(eventually([&] { return messages("total_traffic") == 2; }, 3000ms));
  EXPECT_EQ(exporter_->live_allocations(), 1u);
  EXPECT_EQ(metric("roam_relay_coturn_allocation_lifetime_seconds"), 0);
  EXPECT_EQ(metric("roam_relay_coturn_allocation_anomalies_total", {{"kind", "unknown_delete"}}),
            0);
  EXPECT_EQ(traffic("bytes", "client", "rx"), own.sent_bytes());
  EXPECT_EQ(traffic("packets", "client", "rx"), own.sent_packets());

  ASSERT_TRUE(deallocate(client));
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 0; }, 3000ms));
  EXPECT_EQ(metric("roam_relay_coturn_allocation_lifetime_seconds"), 1);
}

TEST_F(CoturnStats, RedisRestartBothReconnectAndCountingGoesOn) {
  Session first(*coturn_, credentials("alice"));
  ASSERT_TRUE(allocate(first));
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 1; }, 3000ms));

  // An outage of about a second, with an allocation made while Redis is down.
  redis_->kill(/*restart=*/false);
  ASSERT_TRUE(eventually([&] { return !exporter_->connected(); }, 3000ms));
  EXPECT_EQ(metric("roam_relay_coturn_stats_connected"), 0);
  Session unseen(*coturn_, credentials("carol"));
  ASSERT_TRUE(allocate(unseen));
  std::this_thread::sleep_for(500ms);
  redis_->kill(/*restart=*/true);
  const double keepalives = messages("keepalive");
  ASSERT_TRUE(eventually([&] { return exporter_->connected(); }, 3000ms));
  EXPECT_EQ(metric("roam_relay_coturn_stats_connected"), 1);
  // Nothing is reset on reconnect: the allocation from before the outage is still counted;
  // the one made during it was never seen.
  EXPECT_EQ(exporter_->live_allocations(), 1u);

  // coturn 4.6.1 reconnects by itself: each thread's statsdb connection notices the close at
  // once, and the thread's next PUBLISH opens a new connection and is queued on it. So
  // events are lost only while Redis is down.
  Session second(*coturn_, credentials("bob"));
  ASSERT_TRUE(allocate(second));
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 2; }, 3000ms))
      << coturn_->log();
  ASSERT_TRUE(deallocate(unseen));
  ASSERT_TRUE(deallocate(second));
  ASSERT_TRUE(deallocate(first));
  ASSERT_TRUE(eventually([&] { return exporter_->live_allocations() == 0; }, 3000ms));
  EXPECT_TRUE(eventually([&] { return messages("total_traffic") == 6; }, 3000ms));
  EXPECT_EQ(metric("roam_relay_coturn_allocation_lifetime_seconds"), 2);
  EXPECT_EQ(messages("new"), 2);
  EXPECT_EQ(messages("deleted"), 3);
  EXPECT_EQ(metric("roam_relay_coturn_allocation_anomalies_total", {{"kind", "unknown_delete"}}),
            1);
  // Without allocation events, coturn's keepalive (each event loop, every ~5 s) reconnects
  // it as well.
  EXPECT_TRUE(eventually([&] { return messages("keepalive") > keepalives; }, 7000ms));
}

}  // namespace
}  // namespace roam::relay
