// Why a TURN transaction failed, in words that name the cause and the fix.
#pragma once

#include <string>
#include <string_view>

namespace roam::turn {

enum class Failure {
  kTimeout,             // no answer after every retransmission (RFC 8489 §6.2.1)
  kUnauthorized,        // 401 after sending credentials: wrong secret/realm, or expired
  kStaleNonceLoop,      // 438 again and again (RFC 8489 §9.2.5 allows a retry, not a loop)
  kForbidden,           // 403: peer address denied by server policy (RFC 8656 §9.1)
  kTokenNotFound,       // 404 on Allocate with RESERVATION-TOKEN (coturn: unknown/used/expired)
  kBadRequest,          // 400
  kAllocationMismatch,  // 437: an allocation exists (or not) for this 5-tuple (RFC 8656 §6.2)
  kAddressFamilyNotSupported,  // 440
  kWrongCredentials,           // 441: request credentials differ from the allocation's
  kUnsupportedTransport,       // 442
  kPeerAddressFamilyMismatch,  // 443
  kQuotaReached,               // 486
  kInsufficientCapacity,       // 508: server out of relay ports
  kServerError,                // 500 or any other error code
  kTryAlternate,               // 300 (ALTERNATE-SERVER is not followed)
  kMalformedResponse,          // a success response without the attributes it must carry
  kNotAllocated,               // operation needs an allocation and there is none
  kTooManyRequests,            // local bound on requests in flight, permissions or channels hit
  kPayloadTooLarge,            // data does not fit one ChannelData message / Send indication
};

std::string_view describe(Failure f);

// Maps a STUN/TURN error code from an error response to a failure (401/438 are handled by the
// challenge flow before they reach this).
Failure failure_from_error_code(int code);

}  // namespace roam::turn
