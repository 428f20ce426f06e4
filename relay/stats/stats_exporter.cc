#include "relay/stats/stats_exporter.h"

#include <array>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace roam::relay {
namespace {

namespace cs = coturn_stats;

// Message kinds (the `kind` label of messages_total): a closed set.
enum Kind : std::size_t {
  kNew,
  kRefreshed,
  kDeleted,
  kTraffic,
  kTotalTraffic,
  kKeepalive,
  kIgnored,
  kMalformed,
  kKindCount,
};
constexpr std::array<std::string_view, kKindCount> kKindNames{
    "new", "refreshed", "deleted", "traffic", "total_traffic", "keepalive", "ignored", "malformed"};

enum Anomaly : std::size_t {
  kDuplicateNew,
  kUnknownDelete,
  kAdopted,
  kExpired,
  kOverflow,
  kAnomalyCount,
};
constexpr std::array<std::string_view, kAnomalyCount> kAnomalyNames{
    "duplicate_new", "unknown_delete", "adopted", "expired", "overflow"};

// Allocation lifetimes: seconds (a quick connectivity check) to a day (coturn's default cap
// is one hour of lifetime, but refreshes extend an allocation indefinitely).
std::vector<double> lifetime_buckets() {
  return {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400};
}

bool matches_own_user(std::string_view username, std::string_view own_user) {
  return !own_user.empty() && cs::strip_rest_expiry(username) == own_user;
}

}  // namespace

struct StatsExporter::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor ex, StatsExporterConfig c, metrics::Factory& factory)
      : executor(std::move(ex)),
        config(std::move(c)),
        tracker(tracker_config(config)),
        timer(executor),
        allocations(factory
                        .gauge("coturn_allocations",
                               "Live TURN allocations on this relay's coturn, excluding "
                               "roam-relay's own (reservation pool, health canary).")
                        .Add({})),
        lifetime(factory
                     .histogram("coturn_allocation_lifetime_seconds",
                                "How long TURN allocations lived, from coturn's 'new' to "
                                "'deleted' as seen by roam-relay; own allocations excluded.")
                     .Add({}, lifetime_buckets())),
        connected_gauge(factory
                            .gauge("coturn_stats_connected",
                                   "1 while roam-relay is subscribed to coturn's statistics "
                                   "(--redis-statsdb) Redis, else 0.")
                            .Add({})) {
    auto& bytes = factory.counter("coturn_relayed_bytes_total",
                                  "Bytes coturn relayed, as coturn reports them. side=client: "
                                  "UDP payload between TURN clients and coturn, STUN control "
                                  "included; side=peer: application data to/from peers. "
                                  "direction: rx = received by coturn, tx = sent by coturn.");
    auto& packets = factory.counter("coturn_relayed_packets_total",
                                    "Packets coturn relayed, as coturn reports them; side and "
                                    "direction as for coturn_relayed_bytes_total.");
    for (auto side : {cs::Side::kClient, cs::Side::kPeer}) {
      const std::string side_name = side == cs::Side::kClient ? "client" : "peer";
      auto s = static_cast<std::size_t>(side);
      rx_bytes[s] = &bytes.Add({{"side", side_name}, {"direction", "rx"}});
      tx_bytes[s] = &bytes.Add({{"side", side_name}, {"direction", "tx"}});
      rx_packets[s] = &packets.Add({{"side", side_name}, {"direction", "rx"}});
      tx_packets[s] = &packets.Add({{"side", side_name}, {"direction", "tx"}});
    }
    auto& kinds = factory.counter("coturn_stats_messages_total",
                                  "Messages received from coturn's statistics channels, by "
                                  "kind (ignored: not an allocation publication; malformed: "
                                  "unparsable).");
    for (std::size_t k = 0; k < kKindCount; ++k)
      messages[k] = &kinds.Add({{"kind", std::string(kKindNames[k])}});
    auto& anomaly_family =
        factory.counter("coturn_allocation_anomalies_total",
                        "Allocation bookkeeping repairs after lost or repeated coturn "
                        "messages, by kind (expired: no 'deleted' seen within its lifetime).");
    for (std::size_t a = 0; a < kAnomalyCount; ++a)
      anomalies[a] = &anomaly_family.Add({{"kind", std::string(kAnomalyNames[a])}});
    allocations.Set(0);
    connected_gauge.Set(0);
  }

  static cs::TrackerConfig tracker_config(const StatsExporterConfig& c) {
    cs::TrackerConfig t;
    t.max_allocations = c.max_tracked_allocations;
    t.expiry_grace = c.expiry_grace;
    if (c.is_own_user) {
      t.is_own = c.is_own_user;
    } else if (!c.own_user.empty()) {
      t.is_own = [own = c.own_user](std::string_view user) { return matches_own_user(user, own); };
    }
    return t;
  }

  void make_subscriber() {
    subscriber = std::make_unique<redis::Subscriber>(
        executor, config.redis,
        [this](const redis::Message& m) { handle_message(m.channel, m.payload); });
    subscriber->set_observer([this](const redis::ConnectionEvent& e) { on_connection(e); });
    if (!subscriber->psubscribe(std::string(cs::kPattern))) {
      throw std::logic_error("coturn stats: cannot PSUBSCRIBE " + std::string(cs::kPattern));
    }
    if (config.subscribe_keepalive && !subscriber->subscribe(std::string(cs::kKeepaliveChannel))) {
      throw std::logic_error("coturn stats: cannot SUBSCRIBE " +
                             std::string(cs::kKeepaliveChannel));
    }
  }

  void on_connection(const redis::ConnectionEvent& e) {
    using K = redis::ConnectionEvent::Kind;
    const bool up = e.kind == K::kConnected;
    connected_flag.store(up, std::memory_order_relaxed);
    connected_gauge.Set(up ? 1 : 0);
    switch (e.kind) {
      case K::kConnected:
        // Nothing published during an outage comes back: the allocation set is kept (see
        // coturn_stats.h, AllocationTracker) and repairs itself.
        spdlog::info("coturn stats: subscribed to {} on {}:{} ({} allocations tracked)",
                     cs::kPattern, config.redis.host, config.redis.port, tracker.live());
        break;
      case K::kDisconnected:
        spdlog::warn(
            "coturn stats: lost the statsdb Redis {}:{} ({}); coturn's statistics are lost "
            "until it is back; retrying in {:.0f} ms",
            config.redis.host, config.redis.port, redis::to_string(e.cause), to_ms(e.retry_in));
        break;
      case K::kConnectFailed:
        // Once per outage at warn level; the retries (with backoff) at debug.
        if (e.failures == 1) {
          spdlog::warn(
              "coturn stats: cannot reach the statsdb Redis {}:{} ({}); check coturn's "
              "--redis-statsdb and roam-relay's --stats-redis; retrying",
              config.redis.host, config.redis.port, redis::to_string(e.cause));
        } else {
          spdlog::debug("coturn stats: statsdb Redis still unreachable ({} attempts)", e.failures);
        }
        break;
    }
  }

  void handle_message(std::string_view channel, std::string_view payload) {
    auto parsed = cs::parse(channel, payload);
    if (!parsed) {
      messages[kMalformed]->Increment();
      // Not the channel: it holds a user name (with its REST expiry).
      spdlog::debug("coturn stats: dropped a message: {}", cs::describe(parsed.error()));
      return;
    }
    std::visit([this](const auto& event) { handle(event); }, *parsed);
  }

  void handle(const cs::StatusEvent& e) {
    switch (e.status) {
      case cs::Status::kNew:
        messages[kNew]->Increment();
        break;
      case cs::Status::kRefreshed:
        messages[kRefreshed]->Increment();
        break;
      case cs::Status::kDeleted:
        messages[kDeleted]->Increment();
        break;
    }
    auto result = tracker.on_status(Clock::now(), e);
    using O = cs::AllocationTracker::Outcome;
    switch (result.outcome) {
      case O::kClosed:
        if (result.lived) lifetime.Observe(std::chrono::duration<double>(*result.lived).count());
        break;
      case O::kDuplicateNew:
        anomaly(kDuplicateNew, e);
        break;
      case O::kUnknownDelete:
        anomaly(kUnknownDelete, e);
        break;
      case O::kAdopted:
        anomaly(kAdopted, e);
        break;
      case O::kOverflow:
        anomaly(kOverflow, e);
        break;
      case O::kOpened:
      case O::kRefreshed:
      case O::kOwn:
      case O::kNoop:
        break;
    }
    publish_live();
    arm_timer();
  }

  void handle(const cs::TrafficEvent& e) {
    if (e.total) {
      // The sum of the deltas already counted: never added.
      messages[kTotalTraffic]->Increment();
      return;
    }
    messages[kTraffic]->Increment();
    auto s = static_cast<std::size_t>(e.side);
    rx_bytes[s]->Increment(static_cast<double>(e.traffic.rx_bytes));
    tx_bytes[s]->Increment(static_cast<double>(e.traffic.tx_bytes));
    rx_packets[s]->Increment(static_cast<double>(e.traffic.rx_packets));
    tx_packets[s]->Increment(static_cast<double>(e.traffic.tx_packets));
  }

  void handle(const cs::Keepalive&) { messages[kKeepalive]->Increment(); }
  void handle(const cs::Ignored&) { messages[kIgnored]->Increment(); }

  void anomaly(Anomaly a, const cs::StatusEvent& e) {
    anomalies[a]->Increment();
    spdlog::debug("coturn stats: allocation {} of user {}: {}", e.allocation.id,
                  cs::loggable_user(e.allocation.user), kAnomalyNames[a]);
  }

  void publish_live() {
    const auto live = tracker.live();
    live_count.store(live, std::memory_order_relaxed);
    allocations.Set(static_cast<double>(live));
  }

  // One timer at the tracker's earliest expiry; a generation number tells a stale wake-up
  // (the deadline moved meanwhile) from the current one.
  void arm_timer() {
    const TimePoint next = tracker.next_deadline();
    if (next == armed_for) return;
    armed_for = next;
    ++timer_generation;
    if (next == kNever) {
      timer.cancel();
      return;
    }
    timer.expires_at(next);
    timer.async_wait([weak = weak_from_this(),
                      generation = timer_generation](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || generation != self->timer_generation) return;
      self->on_timer();
    });
  }

  void on_timer() {
    armed_for = kNever;
    const auto expired = tracker.on_timeout(Clock::now());
    if (expired > 0) {
      anomalies[kExpired]->Increment(static_cast<double>(expired));
      spdlog::info(
          "coturn stats: {} allocations outlived their lifetime without a 'deleted' (lost "
          "in a statsdb outage, or coturn restarted); no longer counted",
          expired);
      publish_live();
    }
    arm_timer();
  }

  void forget_all() {
    const auto dropped = tracker.live();
    tracker.clear();
    publish_live();
    arm_timer();
    if (dropped > 0) spdlog::info("coturn stats: coturn restarted; forgot {} allocations", dropped);
  }

  boost::asio::any_io_executor executor;
  StatsExporterConfig config;
  cs::AllocationTracker tracker;
  boost::asio::steady_timer timer;
  TimePoint armed_for = kNever;
  std::uint64_t timer_generation = 0;

  prometheus::Gauge& allocations;
  prometheus::Histogram& lifetime;
  prometheus::Gauge& connected_gauge;
  std::array<prometheus::Counter*, 2> rx_bytes{}, tx_bytes{}, rx_packets{}, tx_packets{};
  std::array<prometheus::Counter*, kKindCount> messages{};
  std::array<prometheus::Counter*, kAnomalyCount> anomalies{};

  std::atomic<std::size_t> live_count{0};
  std::atomic<bool> connected_flag{false};
  // Last member: destroyed first, so no subscriber callback can reach a half-destroyed Impl.
  std::unique_ptr<redis::Subscriber> subscriber;
};

StatsExporter::StatsExporter(boost::asio::any_io_executor executor, StatsExporterConfig config,
                             metrics::Factory& factory)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config), factory)) {
  impl_->make_subscriber();
}

StatsExporter::~StatsExporter() {
  impl_->subscriber.reset();
  impl_->timer.cancel();
}

void StatsExporter::start() {
  impl_->subscriber->start();
}

std::size_t StatsExporter::live_allocations() const {
  return impl_->live_count.load(std::memory_order_relaxed);
}

bool StatsExporter::connected() const {
  return impl_->connected_flag.load(std::memory_order_relaxed);
}

void StatsExporter::coturn_restarted() {
  impl_->forget_all();
}

void StatsExporter::on_message(std::string_view channel, std::string_view payload) {
  impl_->handle_message(channel, payload);
}

const redis::Subscriber& StatsExporter::subscriber() const {
  return *impl_->subscriber;
}

}  // namespace roam::relay
