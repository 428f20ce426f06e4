// The agent's Prometheus metrics (`--metrics HOST:PORT`): stream bytes, path switches by reason,
// the blackout around them, the active path's kind. Optional: an agent on a laptop rarely has a
// Prometheus scraping it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/session/quic_session.h"
#include "common/metrics/metrics.h"
#include "common/util/expected.h"

namespace roam::agent {

class AgentMetrics {
 public:
  // Error: cannot listen there (named).
  static expected<std::unique_ptr<AgentMetrics>, std::string> start(const std::string& listen);

  void received(std::size_t bytes) { received_->Increment(static_cast<double>(bytes)); }
  void sent(std::size_t bytes) { sent_->Increment(static_cast<double>(bytes)); }
  void switched(const PathSwitch& change);
  // Receiver side: last application byte before a path switch -> first one after it.
  void blackout(Duration gap);
  void selected(const std::optional<ice::PairInfo>& pair);

 private:
  AgentMetrics() = default;
  std::unique_ptr<metrics::Server> server_;
  prometheus::Counter* received_ = nullptr;
  prometheus::Counter* sent_ = nullptr;
  prometheus::Family<prometheus::Counter>* switches_ = nullptr;
  prometheus::Gauge* relayed_ = nullptr;
  prometheus::Gauge* direct_ = nullptr;
  prometheus::Histogram* blackout_ = nullptr;
};

}  // namespace roam::agent
