// The Redis contract between roam-relay (writes the registry and the reservation-token pool)
// and roam-signaling (reads the registry, takes tokens). Documented in docs/relay-pool.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::relay {

// coturn keeps an unused reservation for a fixed 300 s (RTCP_TIMEOUT in coturn 4.6.1, see
// notes/coturn-reservations.md); entries stop being handed out 20 s before that.
inline constexpr std::chrono::milliseconds kReservationLifetime{300'000};
inline constexpr std::chrono::milliseconds kDefaultExpiryMargin{20'000};
// Instance ids appear in key names: bounded, no braces or spaces.
inline constexpr std::size_t kMaxInstanceIdSize = 64;

bool valid_instance_id(std::string_view id);

// Key names (the `{id}` hash tag keeps one instance's keys on one Redis Cluster slot).
std::string instances_key();
std::string instance_key(std::string_view id);
std::string pool_key(std::string_view id);

// One reservation in the pool.
struct PoolEntry {
  SocketAddress relay;          // the address the token redeems to
  std::uint64_t token = 0;      // RESERVATION-TOKEN
  std::int64_t expires_ms = 0;  // Unix ms when coturn forgets it
  bool operator==(const PoolEntry&) const = default;
};

// Member text: {"relay":"ip:port","token":"16 hex","expires_ms":N}.
std::string encode_entry(const PoolEntry& e);
expected<PoolEntry, std::string> decode_entry(std::string_view member);

// Lua source of the atomic take (KEYS[1] = pool key, ARGV[1] = minimum remaining ms).
std::string_view take_token_script();
// The same for up to ARGV[2] tokens at once; answers [member, score, member, score, ...].
std::string_view take_tokens_script();

}  // namespace roam::relay
