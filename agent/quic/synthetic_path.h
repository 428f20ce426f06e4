// PathId <-> the socket addresses ngtcp2 sees. ngtcp2 knows paths only as address pairs; the
// owner names paths with PathIds (ICE pairs, TURN relays) whose real addresses may repeat or
// change. Each PathId becomes a pair of unique local-use IPv6 addresses (RFC 4193 fd00::/8):
// both ends carry the id in their low 64 bits, so two PathIds always differ by IP on both ends
// and ngtcp2 never mistakes a switch for a NAT rebinding (notes/ngtcp2-0.12.1.md, quirk 4).
// The addresses never reach the wire; QUIC does not carry them.
#pragma once

#include <cstdint>
#include <optional>

#include <ngtcp2/ngtcp2.h>

namespace roam::agent::quic {

using PathId = std::uint64_t;

// Which end of the connection an address belongs to (its /64 subnet).
enum class PathEnd : std::uint8_t { kClient = 1, kServer = 2 };

// The address of `end` on path `id`.
sockaddr_in6 synthetic_address(PathEnd end, PathId id);

// The ngtcp2 path of `id` seen from `self`: local is self's end, remote the other one.
void make_synthetic_path(ngtcp2_path_storage& out, PathEnd self, PathId id);

// The PathId an address was made for; nullopt when it is not a synthetic address.
std::optional<PathId> synthetic_path_id(const ngtcp2_addr& addr);

}  // namespace roam::agent::quic
