#include "relay/relay_metrics.h"

namespace roam::relay {

std::string_view failure_label(turn::Failure failure) {
  using F = turn::Failure;
  switch (failure) {
    case F::kTimeout:
      return "timeout";
    case F::kUnauthorized:
      return "unauthorized";
    case F::kStaleNonceLoop:
      return "stale_nonce";
    case F::kForbidden:
      return "forbidden";
    case F::kTokenNotFound:
      return "token_not_found";
    case F::kBadRequest:
      return "bad_request";
    case F::kAllocationMismatch:
      return "allocation_mismatch";
    case F::kAddressFamilyNotSupported:
      return "family_not_supported";
    case F::kWrongCredentials:
      return "wrong_credentials";
    case F::kUnsupportedTransport:
      return "unsupported_transport";
    case F::kPeerAddressFamilyMismatch:
      return "peer_family_mismatch";
    case F::kQuotaReached:
      return "quota_reached";
    case F::kInsufficientCapacity:
      return "insufficient_capacity";
    case F::kServerError:
      return "server_error";
    case F::kTryAlternate:
      return "try_alternate";
    case F::kMalformedResponse:
      return "malformed_response";
    case F::kNotAllocated:
      return "not_allocated";
    case F::kTooManyRequests:
      return "too_many_requests";
    case F::kPayloadTooLarge:
      return "payload_too_large";
  }
  return "other";
}

RelayMetrics::RelayMetrics(metrics::Factory& f)
    : pool_tokens(f.gauge("pool_tokens", "Unexpired reservation tokens in the pool").Add({})),
      pool_target(f.gauge("pool_target_tokens", "Configured pool size").Add({})),
      pool_in_flight(
          f.gauge("pool_reservations_in_flight", "Reservations being created now").Add({})),
      pool_exhausted(f.gauge("pool_exhausted",
                             "1 while coturn refuses reservations for lack of ports or quota")
                         .Add({})),
      tokens_created(f.counter("pool_tokens_created_total", "Reservation tokens created").Add({})),
      tokens_expired(f.counter("pool_tokens_expired_total",
                               "Tokens removed unused at the end of their usable life")
                         .Add({})),
      tokens_taken(
          f.counter("pool_tokens_taken_total", "Tokens taken from the pool by signaling servers")
              .Add({})),
      tokens_discarded(f.counter("pool_tokens_discarded_total",
                                 "Tokens thrown away because coturn restarted or went down")
                           .Add({})),
      refill_seconds(f.histogram("pool_refill_seconds",
                                 "Time to create one reservation (Allocate EVEN-PORT R=1)")
                         .Add({}, metrics::latency_buckets())),
      coturn_up(f.gauge("coturn_up", "1 while coturn answers STUN Binding health checks").Add({})),
      coturn_restarts(f.counter("coturn_restarts_total",
                                "coturn restarts (or outages) detected; each voids the pool")
                          .Add({})),
      redis_connected(f.gauge("redis_connected", "1 while the Redis connection is up").Add({})),
      redis_errors(f.counter("redis_errors_total", "Failed Redis commands").Add({})),
      failures_(
          f.counter("pool_reservation_failures_total", "Failed reservation attempts by reason")) {}

prometheus::Counter& RelayMetrics::reservation_failure(turn::Failure failure) {
  return failures_.Add({{"reason", std::string(failure_label(failure))}});
}

}  // namespace roam::relay
