// TURN ChannelData framing (RFC 8656 §12.4): 2-byte channel number, 2-byte length, data.
#pragma once

#include <cstdint>

#include "common/util/bytes.h"
#include "common/util/expected.h"

namespace roam::stun {

// RFC 8656 §12: valid channel numbers.
inline constexpr std::uint16_t kMinChannel = 0x4000;
inline constexpr std::uint16_t kMaxChannel = 0x4FFF;
inline constexpr std::size_t kChannelDataHeaderSize = 4;

enum class ChannelDataError {
  kTooShort,        // fewer than 4 bytes
  kBadChannel,      // channel number outside 0x4000–0x4FFF
  kLengthOverflow,  // length field larger than the bytes present
  kTrailingBytes,   // more than 3 bytes of padding after the data (not one ChannelData message)
};
std::string_view describe(ChannelDataError e);

struct ChannelDataView {
  std::uint16_t channel;
  ByteSpan data;  // points into the parsed datagram
};

// Parses one datagram. Up to 3 bytes of padding after the data are accepted (RFC 8656 §12.5
// lets senders pad over UDP); the padding content is ignored.
expected<ChannelDataView, ChannelDataError> parse_channel_data(ByteSpan datagram);

// Appends a ChannelData message to `out`. Over UDP no padding is added (RFC 8656 §12.5).
// `data` must be at most 65535 bytes.
void encode_channel_data(std::uint16_t channel, ByteSpan data, Bytes& out);

}  // namespace roam::stun
