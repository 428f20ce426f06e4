#include "signaling-server/server_metrics.h"

namespace roam::signaling {

std::string_view to_string(DisconnectReason reason) {
  switch (reason) {
    case DisconnectReason::kClientClosed:
      return "client_closed";
    case DisconnectReason::kReplaced:
      return "replaced";
    case DisconnectReason::kSlowReader:
      return "slow_reader";
    case DisconnectReason::kIdle:
      return "idle";
    case DisconnectReason::kCloseTimeout:
      return "close_timeout";
    case DisconnectReason::kFlood:
      return "flood";
    case DisconnectReason::kBadToken:
      return "bad_token";
    case DisconnectReason::kTokenExpired:
      return "token_expired";
    case DisconnectReason::kHelloTimeout:
      return "hello_timeout";
    case DisconnectReason::kTooBig:
      return "too_big";
    case DisconnectReason::kBinary:
      return "binary";
    case DisconnectReason::kBadVersion:
      return "bad_version";
    case DisconnectReason::kShutdown:
      return "shutdown";
    case DisconnectReason::kHandshakeFailed:
      return "handshake_failed";
    case DisconnectReason::kCount:
      break;
  }
  return "unknown";
}

namespace {

// Forwarding and grants take well under a millisecond when all is well (the targets are
// p99 <= 10 ms and <= 5 ms): 50 µs .. ~3.3 s in factors of 2.
std::vector<double> forward_buckets() {
  return metrics::exponential_buckets(50e-6, 2, 17);
}

}  // namespace

ServerMetrics::ServerMetrics(metrics::Factory& f)
    : connections(f.gauge("connections", "TLS connections open").Add({})),
      peers(f.gauge("peers", "authenticated peers connected to this instance").Add({})),
      accepted(f.counter("connections_accepted_total", "TCP connections admitted").Add({})),
      refused_per_ip(f.counter("connections_refused_total", "TCP connections refused")
                         .Add({{"reason", "per_ip_cap"}})),
      refused_full(f.counter("connections_refused_total", "TCP connections refused")
                       .Add({{"reason", "server_full"}})),
      forbidden_origin(f.counter("forbidden_origin_total",
                                 "WebSocket upgrades refused with 403 for their Origin")
                           .Add({})),
      certificate_reloads(
          f.counter("certificate_reloads_total", "SIGHUP reloads of the TLS certificate and key")
              .Add({{"result", "ok"}})),
      certificate_reload_failures(
          f.counter("certificate_reloads_total", "SIGHUP reloads of the TLS certificate and key")
              .Add({{"result", "failed"}})),
      tokens_current_key(
          f.counter("tokens_accepted_total", "hellos admitted, by the key that signed the token")
              .Add({{"key", "current"}})),
      tokens_previous_key(
          f.counter("tokens_accepted_total", "hellos admitted, by the key that signed the token")
              .Add({{"key", "previous"}})),
      sessions(f.counter("sessions_total", "sessions created by connect").Add({})),
      grants_with_token(
          f.counter("relay_grants_total", "relay grants handed out").Add({{"result", "token"}})),
      pool_misses(
          f.counter("pool_misses_total", "relay grants without a reservation token (pool empty)")
              .Add({})),
      no_relay(
          f.counter("relay_grants_total", "relay grants handed out").Add({{"result", "no_relay"}})),
      cached_tokens(f.gauge("cached_tokens",
                            "reservation tokens taken from relay pools ahead of need and held here")
                        .Add({})),
      relay_grant_seconds(
          f.histogram("relay_grant_seconds", "connect received to both session messages sent")
              .Add({}, forward_buckets())),
      forward_local_seconds(
          f.histogram("forward_seconds", "message received to written to the other peer")
              .Add({{"route", "local"}}, forward_buckets())),
      forward_remote_seconds(
          f.histogram("forward_seconds", "message received to written to the other peer")
              .Add({{"route", "remote"}}, forward_buckets())),
      routed_out(f.counter("routed_messages_total", "messages routed between instances")
                     .Add({{"direction", "out"}})),
      routed_in(f.counter("routed_messages_total", "messages routed between instances")
                    .Add({{"direction", "in"}})),
      undeliverable(f.counter("undeliverable_messages_total",
                              "routed messages whose peer had left this instance")
                        .Add({})),
      redis_up(f.gauge("redis_up",
                       "1 while every Redis connection (one per I/O thread, the subscriber) is up")
                   .Add({})),
      redis_outages(f.counter("redis_outages_total", "Redis connection losses").Add({})),
      redis_errors(f.counter("redis_errors_total", "Redis commands that failed").Add({})) {
  auto& messages = f.counter("messages_total", "signaling messages by type and direction");
  for (std::size_t i = 0; i < kInTypes.size(); ++i) {
    in_[i] = &messages.Add({{"direction", "in"}, {"type", std::string(kInTypes[i])}});
  }
  for (std::size_t i = 0; i < kOutTypes.size(); ++i) {
    out_[i] = &messages.Add({{"direction", "out"}, {"type", std::string(kOutTypes[i])}});
  }
  auto& errors = f.counter("errors_total", "error messages sent, by code");
  for (std::size_t i = 0; i < errors_.size(); ++i) {
    errors_[i] = &errors.Add({{"code", std::string(to_string(static_cast<ErrorCode>(i)))}});
  }
  auto& disconnects = f.counter("disconnects_total", "connections ended, by reason");
  for (std::size_t i = 0; i < disconnects_.size(); ++i) {
    disconnects_[i] =
        &disconnects.Add({{"reason", std::string(to_string(static_cast<DisconnectReason>(i)))}});
  }
}

prometheus::Counter& ServerMetrics::message(Direction direction, std::string_view type) {
  const auto& names = direction == Direction::kIn ? kInTypes : kOutTypes;
  auto& series = direction == Direction::kIn ? in_ : out_;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == type) return *series[i];
  }
  return *series[direction == Direction::kIn ? kInTypes.size() - 1 : kOutTypes.size() - 1];
}

prometheus::Counter& ServerMetrics::error(ErrorCode code) {
  return *errors_[static_cast<std::size_t>(code)];
}

prometheus::Counter& ServerMetrics::disconnect(DisconnectReason reason) {
  return *disconnects_[static_cast<std::size_t>(reason)];
}

}  // namespace roam::signaling
