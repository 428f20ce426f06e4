// roam-signaling's keys, channels and scripts in Redis (docs/signaling-protocol.md "Sessions,
// reconnects and instances"). The relay registry and pool are roam-relay's
// (common/relay/pool_layout.h).
//
//   roam:sig:peer:<peer>        hash {instance, gen, info}; TTL kPeerTtl, refreshed by heartbeat
//   roam:sig:session:<id>       string {"a":peer,"b":peer}; TTL --session-ttl
//   roam:sig:instance:<id>      pub/sub channel of one instance (route envelopes)
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace roam::signaling::layout {

// A peer's registry entry outlives a crashed instance by at most this; live instances refresh
// it every kHeartbeat. Routing to a dead instance fails at once anyway (PUBLISH reaches no
// subscriber), so the TTL only bounds stale keys.
inline constexpr std::chrono::seconds kPeerTtl{30};
inline constexpr std::chrono::seconds kHeartbeat{10};
// Peers per refresh script call: bounds one script's run time (Redis is single-threaded).
inline constexpr std::size_t kRefreshBatch = 500;

std::string peer_key(std::string_view peer);
std::string session_key(std::string_view session);
std::string instance_channel(std::string_view instance);

// KEYS[1] = peer key; ARGV = instance, ttl_ms, info JSON, peer id. Takes the peer over for this
// instance, bumps its generation and, when another instance held it, publishes a kick envelope
// there. Returns the new generation.
std::string_view register_script();
// KEYS[1] = peer key; ARGV = instance, generation. Deletes the entry only while it is still
// this connection's. Returns 1 if deleted.
std::string_view unregister_script();
// KEYS = peer keys; ARGV = instance, ttl_ms, then one info JSON per key. Extends entries this
// instance holds, re-creates missing ones (after a Redis restart), leaves others' alone.
// Returns one generation per key (0 = held by another instance).
std::string_view refresh_script();
// KEYS[1] = peer key; ARGV[1] = envelope. Publishes to the peer's instance. Returns -1 when
// the peer is not registered, else the number of subscribers reached (0 = instance gone).
std::string_view route_script();

}  // namespace roam::signaling::layout
