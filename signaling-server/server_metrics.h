// roam-signaling's metrics: roam_signaling_<what>[_unit][_total]. Every labelled series is
// created at start-up (label values come from closed sets), so the hot path only increments.
#pragma once

#include <array>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "common/metrics/metrics.h"
#include "common/signaling/message.h"

namespace roam::signaling {

// Why a connection ended (label `reason` of roam_signaling_disconnects_total).
enum class DisconnectReason {
  kClientClosed,     // the client closed or the TCP connection dropped
  kReplaced,         // 4001: the same peer connected again
  kSlowReader,       // send queue over its bound
  kIdle,             // no pong / no traffic within the idle timeout
  kCloseTimeout,     // the client began a closing handshake and did not finish it in time
  kFlood,            // rate limit ignored
  kBadToken,         // malformed token, bad signature, audience or subject
  kTokenExpired,     // token past its exp, at hello or during the connection
  kHelloTimeout,     // no hello in time
  kTooBig,           // frame over max_message_bytes (1009)
  kBinary,           // binary frame (1003)
  kBadVersion,       // unsupported protocol version
  kShutdown,         // 1012
  kHandshakeFailed,  // TLS or HTTP upgrade failed / refused (403 Origin, not an upgrade)
  kCount,
};
std::string_view to_string(DisconnectReason reason);

// Message types counted by direction; kInvalid = a frame that did not parse.
enum class Direction { kIn, kOut };

struct ServerMetrics {
  explicit ServerMetrics(metrics::Factory& factory);

  prometheus::Gauge& connections;  // TLS connections open (authenticated or not)
  prometheus::Gauge& peers;        // authenticated peers on this instance
  prometheus::Counter& accepted;
  prometheus::Counter& refused_per_ip;
  prometheus::Counter& refused_full;
  prometheus::Counter& forbidden_origin;
  prometheus::Counter& certificate_reloads;          // SIGHUP: --cert/--key loaded anew
  prometheus::Counter& certificate_reload_failures;  // ... or refused (the old one stays)
  prometheus::Counter& tokens_current_key;   // hellos admitted, token signed by --jwt-secret
  prometheus::Counter& tokens_previous_key;  // ... by --jwt-previous-secret (rotation under way)
  prometheus::Counter& sessions;
  prometheus::Counter& grants_with_token;
  prometheus::Counter& pool_misses;  // grant without a reservation token
  prometheus::Counter& no_relay;     // no healthy relay registered at all
  prometheus::Gauge& cached_tokens;  // reservation tokens the shards fetched ahead (token_cache.h)
  prometheus::Histogram& relay_grant_seconds;
  prometheus::Histogram& forward_local_seconds;
  prometheus::Histogram& forward_remote_seconds;
  prometheus::Counter& routed_out;     // messages published to another instance
  prometheus::Counter& routed_in;      // messages received from another instance
  prometheus::Counter& undeliverable;  // routed here for a peer that is gone
  prometheus::Gauge& redis_up;
  prometheus::Counter& redis_outages;
  prometheus::Counter& redis_errors;

  prometheus::Counter& message(Direction direction, std::string_view type);
  prometheus::Counter& error(ErrorCode code);
  prometheus::Counter& disconnect(DisconnectReason reason);

 private:
  static constexpr std::array<std::string_view, 5> kInTypes{"hello", "connect", "candidate", "bye",
                                                            "invalid"};
  static constexpr std::array<std::string_view, 5> kOutTypes{"welcome", "session", "candidate",
                                                             "bye", "error"};
  std::array<prometheus::Counter*, kInTypes.size()> in_{};
  std::array<prometheus::Counter*, kOutTypes.size()> out_{};
  std::array<prometheus::Counter*, static_cast<std::size_t>(ErrorCode::kInternal) + 1> errors_{};
  std::array<prometheus::Counter*, static_cast<std::size_t>(DisconnectReason::kCount)>
      disconnects_{};
};

}  // namespace roam::signaling
