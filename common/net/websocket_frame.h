// The header of an unmasked, unfragmented WebSocket frame (RFC 6455 §5.2), as a server sends
// it (§5.1: a server never masks). roam-signaling writes its data frames with it straight into
// the TLS stream's buffer, one record per frame, instead of through Beast's write operation
// (a chain of three composed operations per message); Beast still reads, and still writes the
// control frames it answers on its own (pong, close).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace roam::net {

enum class WebSocketOpcode : std::uint8_t {  // RFC 6455 §5.2 / §11.8
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Two bytes, plus 2 or 8 of extended payload length (§5.2).
inline constexpr std::size_t kMaxServerFrameHeader = 10;

// Writes the header of a final (FIN) frame of `opcode` carrying `payload_size` bytes into `out`;
// returns its length (2, 4 or 10).
std::size_t encode_server_frame_header(WebSocketOpcode opcode, std::uint64_t payload_size,
                                       std::span<std::uint8_t, kMaxServerFrameHeader> out);

// A header with its own storage, for a writer that frames one message at a time.
struct ServerFrameHeader {
  std::array<std::uint8_t, kMaxServerFrameHeader> bytes{};
  std::size_t size = 0;

  ServerFrameHeader(WebSocketOpcode opcode, std::uint64_t payload_size)
      : size(encode_server_frame_header(opcode, payload_size, bytes)) {}
  std::span<const std::uint8_t> view() const { return {bytes.data(), size}; }
};

}  // namespace roam::net
