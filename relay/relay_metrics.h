// roam-relay's own metrics (coturn's are in stats/stats_exporter.h). Names follow Prometheus
// conventions: roam_relay_<what>[_unit][_total]; label values come from closed sets.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/metrics/metrics.h"
#include "common/turn/failure.h"

namespace roam::relay {

struct RelayMetrics {
  explicit RelayMetrics(metrics::Factory& factory);

  prometheus::Gauge& pool_tokens;
  prometheus::Gauge& pool_target;
  prometheus::Gauge& pool_in_flight;
  prometheus::Gauge& pool_exhausted;
  prometheus::Counter& tokens_created;
  prometheus::Counter& tokens_expired;
  prometheus::Counter& tokens_taken;
  prometheus::Counter& tokens_discarded;
  prometheus::Histogram& refill_seconds;
  prometheus::Gauge& coturn_up;
  prometheus::Counter& coturn_restarts;
  prometheus::Gauge& redis_connected;
  prometheus::Counter& redis_errors;

  // roam_relay_pool_reservation_failures_total{reason}: one series per turn::Failure.
  prometheus::Counter& reservation_failure(turn::Failure failure);

 private:
  prometheus::Family<prometheus::Counter>& failures_;
};

// Stable, short label value for a failure ("timeout", "insufficient_capacity", ...).
std::string_view failure_label(turn::Failure failure);

}  // namespace roam::relay
