#include "agent/session/agent_metrics.h"

#include <stdexcept>

namespace roam::agent {

expected<std::unique_ptr<AgentMetrics>, std::string> AgentMetrics::start(
    const std::string& listen) {
  std::unique_ptr<AgentMetrics> m(new AgentMetrics());
  try {
    m->server_ = std::make_unique<metrics::Server>(metrics::ServerOptions{.listen = listen});
  } catch (const std::exception& e) {
    return unexpected(std::string(e.what()));
  }
  auto factory = m->server_->factory("agent");
  m->received_ = &factory
                      .counter("stream_received_bytes_total",
                               "Application stream bytes received from the peer")
                      .Add({});
  m->sent_ =
      &factory.counter("stream_sent_bytes_total", "Application stream bytes queued to the peer")
           .Add({});
  m->switches_ = &factory.counter("path_switches_total",
                                  "Changes of the QUIC connection's path, by ICE reason");
  auto& active = factory.gauge("active_path", "1 for the kind of the active path (relay, direct)");
  m->relayed_ = &active.Add({{"kind", "relay"}});
  m->direct_ = &active.Add({{"kind", "direct"}});
  m->blackout_ = &factory
                      .histogram("path_switch_blackout_seconds",
                                 "Receive gap around a path switch: last application byte "
                                 "before it to the first after it")
                      .Add({}, metrics::exponential_buckets(0.001, 2, 14));  // 1 ms .. 8 s
  return m;
}

void AgentMetrics::switched(const PathSwitch& change) {
  switches_->Add({{"reason", change.reason}}).Increment();
}

void AgentMetrics::blackout(Duration gap) {
  blackout_->Observe(std::chrono::duration<double>(gap).count());
}

void AgentMetrics::selected(const std::optional<ice::PairInfo>& pair) {
  relayed_->Set(pair && pair->kind == ice::PathKind::kRelay ? 1 : 0);
  direct_->Set(pair && pair->kind == ice::PathKind::kDirect ? 1 : 0);
}

}  // namespace roam::agent
