#include "common/net/websocket_frame.h"

namespace roam::net {
namespace {

constexpr std::uint8_t kFin = 0x80;
// §5.2 payload length: 0-125 in the 7 bits; 126 = a 16-bit length follows; 127 = a 64-bit one
// (most significant bit 0), both in network byte order.
constexpr std::uint64_t kMaxShortLength = 125;
constexpr std::uint8_t kLength16 = 126;
constexpr std::uint8_t kLength64 = 127;

}  // namespace

std::size_t encode_server_frame_header(WebSocketOpcode opcode, std::uint64_t payload_size,
                                       std::span<std::uint8_t, kMaxServerFrameHeader> out) {
  out[0] = static_cast<std::uint8_t>(kFin | static_cast<std::uint8_t>(opcode));
  if (payload_size <= kMaxShortLength) {
    out[1] = static_cast<std::uint8_t>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = kLength16;
    out[2] = static_cast<std::uint8_t>(payload_size >> 8);
    out[3] = static_cast<std::uint8_t>(payload_size);
    return 4;
  }
  out[1] = kLength64;
  for (int i = 0; i < 8; ++i) {
    out[2 + i] = static_cast<std::uint8_t>(payload_size >> (56 - 8 * i));
  }
  return 10;
}

}  // namespace roam::net
