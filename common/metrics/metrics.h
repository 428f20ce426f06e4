// Prometheus metrics for Roam's servers: an HTTP exposer and family builders that enforce
// our naming rules. prometheus-cpp core + pull only: never `push`, whose libcurl pulls
// OpenSSL into our wolfSSL processes (notes/platform.md).
//
// Naming rules (checked at start-up; violations throw std::invalid_argument, because they are
// programming errors, not runtime conditions):
// - Full name: roam_<component>_<name>; component and name are [a-z][a-z0-9_]*, no "__", no
//   trailing "_".
// - Counters end in _total; other types must not.
// - Base units only: durations in _seconds, sizes in _bytes, fractions as _ratio (0..1). A
//   name whose unit word (its last word, or the one before _total) is a scaled or non-base
//   unit (ms, milliseconds, us, microseconds, ns, minutes, hours, days, kb, kib, mb, mib,
//   gb, kilobytes, megabytes, bits, percent, ...) is rejected.
// - Help text is required (non-empty).
// - Label names are [a-z_][a-z0-9_]* and do not start with "__".
//
// Thread safety: prometheus-cpp metrics are atomic and safe to update from any thread; the
// exposer serves scrapes from its own civetweb threads. Build families at start-up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace prometheus {
class Exposer;
}

namespace roam::metrics {

// Returns "roam_<component>_<name>" or throws std::invalid_argument naming the broken rule.
// `type` is "counter", "gauge" or "histogram".
std::string metric_name(std::string_view component, std::string_view name, std::string_view type);

// Buckets (seconds) for network round trips and request latency: 0.5 ms .. 10 s.
std::vector<double> latency_buckets();
// start, start*factor, ... (count values); throws std::invalid_argument on bad arguments.
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

// Builds families named roam_<component>_<name> in a registry.
class Factory {
 public:
  // Throws std::invalid_argument if `component` breaks the naming rules.
  Factory(prometheus::Registry& registry, std::string component);

  const std::string& component() const { return component_; }

  // `constant_labels` are attached to every metric of the family. Adding a family that
  // already exists with the same labels returns it (prometheus-cpp's Merge behaviour).
  prometheus::Family<prometheus::Counter>& counter(std::string_view name, std::string_view help,
                                                   const prometheus::Labels& constant_labels = {});
  prometheus::Family<prometheus::Gauge>& gauge(std::string_view name, std::string_view help,
                                               const prometheus::Labels& constant_labels = {});
  // Histograms need buckets when a metric is added: family.Add(labels, buckets).
  prometheus::Family<prometheus::Histogram>& histogram(
      std::string_view name, std::string_view help, const prometheus::Labels& constant_labels = {});

 private:
  prometheus::Registry& registry_;
  std::string component_;
};

struct ServerOptions {
  // "host:port"; "127.0.0.1:0" picks a free port (see Server::port()). "[::1]:9100" for IPv6.
  std::string listen = "127.0.0.1:9100";
  std::size_t threads = 2;  // civetweb worker threads serving scrapes
  std::string path = "/metrics";
};

// Serves GET <path> in the Prometheus text format from its own registry.
class Server {
 public:
  // Throws std::runtime_error naming the address and the cause when it cannot listen (port
  // in use, bad address), std::invalid_argument for an empty address or path.
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the real one when the options asked for port 0).
  std::uint16_t port() const;
  std::vector<std::uint16_t> ports() const;
  const std::string& path() const { return path_; }
  prometheus::Registry& registry() { return *registry_; }
  const std::shared_ptr<prometheus::Registry>& shared_registry() const { return registry_; }
  // A factory for this server's registry.
  Factory factory(std::string component) { return Factory(*registry_, std::move(component)); }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string path_;
  std::string listen_;
};

}  // namespace roam::metrics
