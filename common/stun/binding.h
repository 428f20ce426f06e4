// STUN Binding transactions (RFC 8489 §3): the request, and the server-reflexive address from
// the response. Used for server-reflexive gathering and by `roam doctor`.
#pragma once

#include <string>

#include "common/stun/message.h"

namespace roam::stun {

// A Binding request with FINGERPRINT (RFC 8489 §14.7 helps tell STUN from other traffic).
Bytes make_binding_request(const TransactionId& id, std::string_view software = "roam");

// The mapped address from a Binding success response to `id`: XOR-MAPPED-ADDRESS, or
// MAPPED-ADDRESS from old servers (RFC 8489 §14.1). A text naming the problem otherwise.
expected<SocketAddress, std::string> binding_result(const Message& response,
                                                    const TransactionId& id);

}  // namespace roam::stun
