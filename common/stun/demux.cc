#include "common/stun/demux.h"

#include "common/stun/channel_data.h"
#include "common/stun/message.h"

namespace roam::stun {

bool looks_like_stun(ByteSpan datagram) {
  const std::size_t size = datagram.size();
  if (size < kHeaderSize || size > kMaxMessageSize) return false;
  const std::byte* p = datagram.data();
  // RFC 8489 §5: top two bits zero, magic cookie, and (one message per datagram) a length that
  // is a multiple of 4 and accounts for every byte. The first byte alone is not enough: greased
  // QUIC packets use 0x00-0x3F too (notes/ngtcp2-0.12.1.md, quirk 1).
  if ((std::to_integer<unsigned>(p[0]) & 0xC0) != 0) return false;
  if (load_be32(p + 4) != kMagicCookie) return false;
  const std::size_t length = load_be16(p + 2);
  return length % 4 == 0 && kHeaderSize + length == size;
}

PacketKind classify(ByteSpan datagram, bool from_turn_server) {
  if (datagram.empty()) return PacketKind::kInvalid;
  if (looks_like_stun(datagram)) return PacketKind::kStun;
  if (from_turn_server) {
    // RFC 8656 §12.6: a TURN server sends us only STUN and ChannelData; QUIC from a peer
    // through the relay arrives inside one of them.
    return parse_channel_data(datagram) ? PacketKind::kChannelData : PacketKind::kInvalid;
  }
  // ChannelData-looking bytes from anyone else are QUIC short headers (0x40-0x4F overlap);
  // QUIC authenticates its own packets, so handing it garbage is safe.
  return PacketKind::kQuic;
}

}  // namespace roam::stun
