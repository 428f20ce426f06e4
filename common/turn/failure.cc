#include "common/turn/failure.h"

#include "common/stun/message.h"

namespace roam::turn {

std::string_view describe(Failure f) {
  switch (f) {
    case Failure::kTimeout:
      return "no answer from the TURN server after every retransmission: check the server "
             "address and that UDP to it is not blocked";
    case Failure::kUnauthorized:
      return "TURN server rejected the credentials (401): check the shared secret and realm, "
             "and that the REST username has not expired";
    case Failure::kStaleNonceLoop:
      return "TURN server kept answering 438 Stale Nonce: its nonce handling is broken or the "
             "clock of the REST credentials is off";
    case Failure::kForbidden:
      return "TURN server refused the peer address (403): it is in the server's denied peer "
             "ranges";
    case Failure::kTokenNotFound:
      return "reservation token unknown, already used or expired (404): ask for a new relay "
             "grant";
    case Failure::kBadRequest:
      return "TURN server rejected the request as malformed (400)";
    case Failure::kAllocationMismatch:
      return "allocation mismatch (437): an allocation already exists for this local port, "
             "or none does; rebind to a fresh local port and retry";
    case Failure::kAddressFamilyNotSupported:
      return "TURN server does not support the requested address family (440)";
    case Failure::kWrongCredentials:
      return "credentials differ from the ones that created the allocation (441)";
    case Failure::kUnsupportedTransport:
      return "TURN server does not support UDP relaying (442)";
    case Failure::kPeerAddressFamilyMismatch:
      return "peer address family differs from the relayed address family (443)";
    case Failure::kQuotaReached:
      return "allocation quota reached for this user (486): release allocations or raise "
             "user-quota";
    case Failure::kInsufficientCapacity:
      return "TURN server is out of relay ports (508): widen min-port/max-port or use another "
             "relay";
    case Failure::kServerError:
      return "TURN server error";
    case Failure::kTryAlternate:
      return "TURN server redirects to an alternate server (300), which is not supported";
    case Failure::kMalformedResponse:
      return "TURN success response lacks a required attribute";
    case Failure::kNotAllocated:
      return "no TURN allocation: allocate first";
    case Failure::kTooManyRequests:
      return "too many TURN requests, permissions or channels at once (local bound)";
    case Failure::kPayloadTooLarge:
      return "payload too large for one TURN message (max 65535 bytes)";
  }
  return "unknown TURN failure";
}

Failure failure_from_error_code(int code) {
  namespace e = stun::error;
  switch (code) {
    case e::kTryAlternate:
      return Failure::kTryAlternate;
    case e::kBadRequest:
      return Failure::kBadRequest;
    case e::kUnauthorized:
      return Failure::kUnauthorized;
    case e::kForbidden:
      return Failure::kForbidden;
    case e::kNotFound:
      return Failure::kTokenNotFound;
    case e::kAllocationMismatch:
      return Failure::kAllocationMismatch;
    case e::kStaleNonce:
      return Failure::kStaleNonceLoop;
    case e::kAddressFamilyNotSupported:
      return Failure::kAddressFamilyNotSupported;
    case e::kWrongCredentials:
      return Failure::kWrongCredentials;
    case e::kUnsupportedTransportProtocol:
      return Failure::kUnsupportedTransport;
    case e::kPeerAddressFamilyMismatch:
      return Failure::kPeerAddressFamilyMismatch;
    case e::kAllocationQuotaReached:
      return Failure::kQuotaReached;
    case e::kInsufficientCapacity:
      return Failure::kInsufficientCapacity;
    default:
      return Failure::kServerError;
  }
}

}  // namespace roam::turn
