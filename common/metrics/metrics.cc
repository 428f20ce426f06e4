#include "common/metrics/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <prometheus/exposer.h>

namespace roam::metrics {
namespace {

bool valid_word_chars(std::string_view s) {
  if (s.empty() || s.front() < 'a' || s.front() > 'z' || s.back() == '_') return false;
  if (s.find("__") != std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Unit words that are scaled or not the base unit Prometheus recommends.
constexpr std::array<std::string_view, 22> kNonBaseUnits = {
    "ms",          "millis",  "milliseconds", "us",        "micros", "microseconds", "ns", "nanos",
    "nanoseconds", "minutes", "hours",        "days",      "kb",     "kib",          "mb", "mib",
    "gb",          "gib",     "kilobytes",    "megabytes", "bits",   "percent"};

std::string_view last_word(std::string_view s) {
  auto pos = s.rfind('_');
  return pos == std::string_view::npos ? s : s.substr(pos + 1);
}

[[noreturn]] void reject(std::string_view what, std::string_view name, std::string_view rule) {
  throw std::invalid_argument("metric " + std::string(what) + " '" + std::string(name) +
                              "': " + std::string(rule));
}

void check_labels(const std::string& full, const prometheus::Labels& labels) {
  for (const auto& [key, value] : labels) {
    bool ok = !key.empty() && !key.starts_with("__") &&
              std::all_of(key.begin(), key.end(),
                          [](char c) {
                            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                          }) &&
              !(key.front() >= '0' && key.front() <= '9');
    if (!ok) reject("label of", full, "label name '" + key + "' must match [a-z_][a-z0-9_]*");
  }
}

}  // namespace

std::string metric_name(std::string_view component, std::string_view name, std::string_view type) {
  if (!valid_word_chars(component)) {
    reject("component", component, "must match [a-z][a-z0-9_]* without '__' or a trailing '_'");
  }
  if (!valid_word_chars(name)) {
    reject("name", name, "must match [a-z][a-z0-9_]* without '__' or a trailing '_'");
  }
  bool total = name.ends_with("_total") || name == "total";
  if (type == "counter" && !total) reject("name", name, "counter names end in _total");
  if (type != "counter" && total) reject("name", name, "only counter names end in _total");
  auto base = total ? name.substr(0, name.size() - std::string_view("_total").size()) : name;
  auto unit = last_word(base);
  if (std::find(kNonBaseUnits.begin(), kNonBaseUnits.end(), unit) != kNonBaseUnits.end()) {
    reject("name", name, "use base units (_seconds, _bytes, _ratio), not _" + std::string(unit));
  }
  return "roam_" + std::string(component) + "_" + std::string(name);
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0) || !(factor > 1) || count == 0 || count > 64) {
    throw std::invalid_argument("exponential_buckets: need start > 0, factor > 1, 1..64 buckets");
  }
  std::vector<double> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(start * std::pow(factor, double(i)));
  return out;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Factory::Factory(prometheus::Registry& registry, std::string component)
    : registry_(registry), component_(std::move(component)) {
  if (!valid_word_chars(component_)) {
    reject("component", component_, "must match [a-z][a-z0-9_]* without '__' or a trailing '_'");
  }
}

namespace {

template <class Builder>
auto& build(Builder builder, prometheus::Registry& registry, const std::string& full,
            std::string_view help, const prometheus::Labels& labels) {
  if (help.empty()) reject("", full, "help text is required");
  check_labels(full, labels);
  return builder.Name(full).Help(std::string(help)).Labels(labels).Register(registry);
}

}  // namespace

prometheus::Family<prometheus::Counter>& Factory::counter(std::string_view name,
                                                          std::string_view help,
                                                          const prometheus::Labels& labels) {
  return build(prometheus::BuildCounter(), registry_, metric_name(component_, name, "counter"),
               help, labels);
}

prometheus::Family<prometheus::Gauge>& Factory::gauge(std::string_view name, std::string_view help,
                                                      const prometheus::Labels& labels) {
  return build(prometheus::BuildGauge(), registry_, metric_name(component_, name, "gauge"), help,
               labels);
}

prometheus::Family<prometheus::Histogram>& Factory::histogram(std::string_view name,
                                                              std::string_view help,
                                                              const prometheus::Labels& labels) {
  return build(prometheus::BuildHistogram(), registry_, metric_name(component_, name, "histogram"),
               help, labels);
}

Server::Server(const ServerOptions& options)
    : registry_(std::make_shared<prometheus::Registry>()),
      path_(options.path),
      listen_(options.listen) {
  if (options.listen.empty()) throw std::invalid_argument("metrics: empty listen address");
  if (path_.empty() || path_.front() != '/') {
    throw std::invalid_argument("metrics: path must start with '/' (got '" + path_ + "')");
  }
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(options.listen,
                                                     std::max<std::size_t>(1, options.threads));
  } catch (const std::exception& e) {
    throw std::runtime_error("metrics: cannot listen on " + options.listen + " (" + e.what() +
                             "); is the port in use? change the metrics listen address");
  }
  exposer_->RegisterCollectable(registry_, path_);
}

namespace {

// The address to reach a listener bound to `listen` ("host:port", "[v6]:port", "port") from
// this host: wildcards become loopback. `len` is 0 when the address cannot be parsed.
sockaddr_storage wake_address(const std::string& listen, std::uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  len = 0;
  std::string host;
  if (!listen.empty() && listen.front() == '[') {
    host = listen.substr(1, listen.find(']') - 1);
  } else if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  }
  return ss;
}

// Opens and at once closes a connection (non-blocking: never waits on a full backlog).
void poke(const sockaddr_storage& address, socklen_t len) {
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  [[maybe_unused]] int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), len);
  ::close(fd);
}

}  // namespace

Server::~Server() {
  // civetweb's listener thread polls in 2 s quanta and checks its stop flag only between
  // polls, so a plain ~Exposer takes up to 2 s after the first scrape. Wake it with
  // short-lived loopback connections while it stops (each is closed at once, so a worker
  // that picks one up sees EOF immediately).
  socklen_t len = 0;
  auto address = wake_address(listen_, port(), len);
  if (len == 0 || port() == 0) return;  // exposer_ stops the slow way
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load()) {
      poke(address, len);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
}

std::vector<std::uint16_t> Server::ports() const {
  std::vector<std::uint16_t> out;
  for (int p : exposer_->GetListeningPorts())
    out.push_back(static_cast<std::uint16_t>(p));
  return out;
}

std::uint16_t Server::port() const {
  auto all = ports();
  return all.empty() ? 0 : all.front();
}

}  // namespace roam::metrics
