#include "common/stun/channel_data.h"

namespace roam::stun {

std::string_view describe(ChannelDataError e) {
  switch (e) {
    case ChannelDataError::kTooShort:
      return "shorter than the 4-byte ChannelData header";
    case ChannelDataError::kBadChannel:
      return "ChannelData channel number outside 0x4000-0x4FFF";
    case ChannelDataError::kLengthOverflow:
      return "ChannelData length larger than the datagram";
    case ChannelDataError::kTrailingBytes:
      return "bytes after the ChannelData payload beyond its padding";
  }
  return "unknown ChannelData error";
}

expected<ChannelDataView, ChannelDataError> parse_channel_data(ByteSpan datagram) {
  if (datagram.size() < kChannelDataHeaderSize) return unexpected(ChannelDataError::kTooShort);
  const std::uint16_t channel = load_be16(datagram.data());
  // RFC 8656 §12: only 0x4000-0x4FFF are channels; 0x5000-0x7FFF are reserved and the rest of
  // the first-byte space belongs to STUN and other protocols.
  if (channel < kMinChannel || channel > kMaxChannel) {
    return unexpected(ChannelDataError::kBadChannel);
  }
  const std::size_t length = load_be16(datagram.data() + 2);
  const std::size_t available = datagram.size() - kChannelDataHeaderSize;
  if (length > available) return unexpected(ChannelDataError::kLengthOverflow);
  // RFC 8656 §12.5: over UDP a sender may pad to a multiple of 4. Accept no padding or exactly
  // that padding (0-3 bytes, content ignored); anything else is not one ChannelData message.
  const std::size_t trailing = available - length;
  const std::size_t padding = (4 - length % 4) % 4;
  if (trailing != 0 && trailing != padding) return unexpected(ChannelDataError::kTrailingBytes);
  return ChannelDataView{channel, datagram.subspan(kChannelDataHeaderSize, length)};
}

void encode_channel_data(std::uint16_t channel, ByteSpan data, Bytes& out) {
  // Preconditions (valid channel, data fits the 16-bit length field of RFC 8656 §12.4).
  // Violations append nothing rather than a frame whose length or channel would be wrong.
  if (channel < kMinChannel || channel > kMaxChannel || data.size() > 0xFFFF) return;
  ByteWriter w(out);
  w.u16(channel);
  w.u16(static_cast<std::uint16_t>(data.size()));
  w.bytes(data);
}

}  // namespace roam::stun
