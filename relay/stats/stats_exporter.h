// roam-relay's exporter of coturn's statistics: subscribes to what coturn publishes with
// --redis-statsdb (common/relay/coturn_stats.h has the formats) and keeps Prometheus figures.
// Debian's coturn 4.6.1 has no Prometheus exporter of its own.
//
// Metrics (names from the factory's component; roam-relay passes "relay"):
//   roam_relay_coturn_allocations                     gauge: live client allocations
//   roam_relay_coturn_allocation_lifetime_seconds     histogram: new → deleted, own clock
//   roam_relay_coturn_relayed_bytes_total{side,direction}    counters, side = client|peer,
//   roam_relay_coturn_relayed_packets_total{side,direction}  direction = rx|tx (seen from
//       coturn: rx = received by coturn). Client side: UDP payload bytes between the TURN
//       client and coturn, STUN control messages included; peer side: application bytes.
//   roam_relay_coturn_stats_messages_total{kind}      kind = new|refreshed|deleted|traffic|
//       total_traffic|keepalive|ignored|malformed
//   roam_relay_coturn_allocation_anomalies_total{kind}  kind = duplicate_new|unknown_delete|
//       adopted|expired|overflow: the bookkeeping repaired a gap (see AllocationTracker)
//   roam_relay_coturn_stats_connected                 gauge: 1 while subscribed to coturn's
//       statsdb Redis
// No label carries a user name (cardinality); usernames are logged without their REST expiry.
//
// Own allocations (roam-relay's reservation pool and health canary: REST username
// "<expiry>:<own_user>") are left out of the allocations gauge and lifetime histogram: they
// are made and deleted within milliseconds and would swamp the figures. Their traffic counts.
//
// Gaps: Redis pub/sub drops what is published while the subscriber is disconnected. Traffic
// in that window is lost for good (counters under-count; coturn's whole-life total at close
// is deliberately not used to fill gaps: it would need per-allocation delta sums). The
// allocation set is kept across reconnects and repaired as AllocationTracker describes.
//
// coturn and a Redis restart: coturn 4.6.1 reconnects to its statsdb Redis by itself. Each of
// its event-loop threads owns a connection, notices the close when Redis goes away, and opens
// a new one on its next publication — at the latest its keepalive every ~5 s. Publications
// made before that are lost; nothing is re-published (and the status keys are gone if Redis
// kept no data).
//
// Thread model: construct, start, call coturn_restarted()/on_message() and destroy on the
// executor's thread (like redis::Subscriber); live_allocations() and connected() may be read
// from any thread, and the metrics are scraped from the exposer's threads.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "common/metrics/metrics.h"
#include "common/redis/connection.h"
#include "common/redis/subscriber.h"
#include "common/relay/coturn_stats.h"
#include "common/util/time.h"

namespace roam::relay {

struct StatsExporterConfig {
  // coturn's --redis-statsdb server. Its database number does not matter (pub/sub ignores
  // it), which is also why that Redis must not serve another coturn.
  redis::Options redis;
  // Peer id of own allocations: a username "<expiry>:<own_user>" (or exactly <own_user>) is
  // own. Empty: none.
  std::string own_user;
  // Replaces the own_user test when set: gets the username as coturn printed it.
  std::function<bool(std::string_view username)> is_own_user;
  // Bound on tracked allocations (memory: ~100 bytes each); beyond it new ones are not
  // counted (anomaly "overflow").
  std::size_t max_tracked_allocations = 65536;
  // How long past its lifetime an allocation whose "deleted" never came stays counted.
  Duration expiry_grace = seconds(60);
  // Also SUBSCRIBE to coturn's keepalive channel (counted as kind="keepalive"): shows that
  // coturn is publishing to this Redis while no allocation changes.
  bool subscribe_keepalive = true;
};

class StatsExporter {
 public:
  // Builds the metric families (throws std::invalid_argument only on a naming bug) and the
  // subscriber; does not connect yet: call start().
  StatsExporter(boost::asio::any_io_executor executor, StatsExporterConfig config,
                metrics::Factory& factory);
  // Closes the subscription; no handler runs afterwards.
  ~StatsExporter();
  StatsExporter(const StatsExporter&) = delete;
  StatsExporter& operator=(const StatsExporter&) = delete;

  // Connects and subscribes; reconnects and resubscribes forever. Idempotent.
  void start();

  // Live client allocations (the gauge's value): roam-relay's registry heartbeat reports it
  // as the instance's load. Thread-safe.
  std::size_t live_allocations() const;
  // Subscribed (the connected gauge). Thread-safe.
  bool connected() const;

  // coturn restarted (CoturnMonitor's epoch moved): every allocation died with it, and none
  // of them gets a "deleted". Forgets them all; the gauge drops to 0.
  void coturn_restarted();

  // Handles one publication as if the subscriber had delivered it (tests feed recorded
  // messages through it; the subscriber calls it too).
  void on_message(std::string_view channel, std::string_view payload);

  const redis::Subscriber& subscriber() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace roam::relay
