// Telling STUN, TURN ChannelData and QUIC apart on one UDP socket.
//
// RFC 7983 demultiplexes by first byte, which is not safe here: ngtcp2 0.12.1 greases the QUIC
// fixed bit (notes/ngtcp2-0.12.1.md), so QUIC packets may start with 0x00–0x3F like STUN, and
// ChannelData (0x40–0x4F) overlaps QUIC short headers. So: STUN is recognised by its top two
// bits, magic cookie and a length that matches the datagram; ChannelData is only considered for
// datagrams from a TURN server we use (callers know the source address); everything else is
// handed to QUIC, which authenticates its own packets.
#pragma once

#include "common/util/bytes.h"

namespace roam::stun {

enum class PacketKind { kStun, kChannelData, kQuic, kInvalid };

// True if `datagram` is exactly one well-formed STUN header + body (cheap; no attribute walk).
bool looks_like_stun(ByteSpan datagram);

// `from_turn_server`: the datagram's source is the address of a TURN server this socket uses.
// From a TURN server: kStun or kChannelData (well-formed) or kInvalid. From anyone else: kStun
// when it looks like STUN, kQuic when it is non-empty, kInvalid when empty.
PacketKind classify(ByteSpan datagram, bool from_turn_server);

}  // namespace roam::stun
