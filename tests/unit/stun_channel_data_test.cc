#include <gtest/gtest.h>

#include "common/stun/channel_data.h"

namespace roam::stun {
namespace {

Bytes hex(std::string_view text) {
  return from_hex(text).value();
}

TEST(ChannelData, ParsesWithoutPadding) {
  Bytes d = hex("40 00 00 05 68 65 6c 6c 6f");
  auto v = parse_channel_data(d);
  ASSERT_TRUE(v) << describe(v.error());
  EXPECT_EQ(v->channel, 0x4000);
  EXPECT_EQ(as_chars(v->data), "hello");
  EXPECT_EQ(v->data.data(), d.data() + 4);  // a view into the datagram, no copy
}

TEST(ChannelData, AcceptsPaddingToFourIgnoringItsContent) {
  // RFC 8656 §12.5: over UDP the padding is optional; its content is ignored.
  const Bytes d = hex("4f ff 00 05 68 65 6c 6c 6f ff ff ff");
  auto v = parse_channel_data(d);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->channel, 0x4fff);
  EXPECT_EQ(as_chars(v->data), "hello");
  for (std::size_t len = 0; len < 12; ++len) {
    Bytes d;
    encode_channel_data(0x4123, Bytes(len, std::byte{0xAB}), d);
    const std::size_t pad = (4 - len % 4) % 4;
    d.insert(d.end(), pad, std::byte{0x20});
    auto p = parse_channel_data(d);
    ASSERT_TRUE(p) << len;
    EXPECT_EQ(p->data.size(), len);
  }
}

TEST(ChannelData, RejectsExtraTrailingBytes) {
  // Not padding to a multiple of 4: 1 data byte + 1 or 2 trailing bytes.
  EXPECT_EQ(parse_channel_data(hex("40 00 00 01 aa bb")).error(), ChannelDataError::kTrailingBytes);
  EXPECT_EQ(parse_channel_data(hex("40 00 00 01 aa bb cc")).error(),
            ChannelDataError::kTrailingBytes);
  // 4 data bytes need no padding, so any trailing byte is extra.
  EXPECT_EQ(parse_channel_data(hex("40 00 00 04 aa bb cc dd 00")).error(),
            ChannelDataError::kTrailingBytes);
  EXPECT_EQ(parse_channel_data(hex("40 00 00 00 00 00 00 00")).error(),
            ChannelDataError::kTrailingBytes);
  // Two messages in one datagram are not one message.
  EXPECT_EQ(parse_channel_data(hex("40 00 00 01 aa 00 00 00 40 00 00 00")).error(),
            ChannelDataError::kTrailingBytes);
}

TEST(ChannelData, RejectsChannelsOutsideTheRange) {
  for (std::uint16_t ch : {0x0000, 0x0001, 0x3fff, 0x5000, 0x7fff, 0x8000, 0xffff}) {
    Bytes d = hex("00 00 00 00");
    store_be16(d.data(), ch);
    EXPECT_EQ(parse_channel_data(d).error(), ChannelDataError::kBadChannel) << ch;
  }
  EXPECT_TRUE(parse_channel_data(hex("40 00 00 00")));
  EXPECT_TRUE(parse_channel_data(hex("4f ff 00 00")));
}

TEST(ChannelData, RejectsLengthOverflowAndShortInput) {
  EXPECT_EQ(parse_channel_data(hex("40 00 00 06 68 65 6c 6c 6f")).error(),
            ChannelDataError::kLengthOverflow);
  EXPECT_EQ(parse_channel_data(hex("40 00 ff ff 00 00 00 00")).error(),
            ChannelDataError::kLengthOverflow);
  for (std::size_t n = 0; n < kChannelDataHeaderSize; ++n) {
    Bytes d(n, std::byte{0x40});
    EXPECT_EQ(parse_channel_data(d).error(), ChannelDataError::kTooShort) << n;
  }
  // Every truncation of a valid message fails cleanly.
  Bytes full;
  encode_channel_data(0x4001, to_bytes("some relayed payload"), full);
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_FALSE(parse_channel_data(ByteSpan(full).first(n))) << n;
  }
}

TEST(ChannelData, EncodeRoundTrips) {
  Bytes out = to_bytes("prefix");
  encode_channel_data(0x4abc, to_bytes("abc"), out);
  // Appends, and adds no padding over UDP (RFC 8656 §12.5).
  EXPECT_EQ(to_hex(out), to_hex(to_bytes("prefix")) + "4abc0003616263");
  auto v = parse_channel_data(ByteSpan(out).subspan(6));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->channel, 0x4abc);
  EXPECT_EQ(as_chars(v->data), "abc");

  Bytes empty;
  encode_channel_data(0x4000, {}, empty);
  EXPECT_EQ(to_hex(empty), "40000000");
  EXPECT_TRUE(parse_channel_data(empty)->data.empty());

  Bytes max;
  encode_channel_data(0x4000, Bytes(0xFFFF, std::byte{1}), max);
  ASSERT_EQ(max.size(), 4u + 0xFFFF);
  EXPECT_EQ(parse_channel_data(max)->data.size(), 0xFFFFu);
}

TEST(ChannelData, EncodeRefusesInvalidArguments) {
  Bytes out;
  encode_channel_data(0x4000, Bytes(0x10000, std::byte{1}), out);
  EXPECT_TRUE(out.empty());
  encode_channel_data(0x3fff, to_bytes("x"), out);
  EXPECT_TRUE(out.empty());
  encode_channel_data(0x5000, to_bytes("x"), out);
  EXPECT_TRUE(out.empty());
}

TEST(ChannelData, DescribeEveryError) {
  for (auto e : {ChannelDataError::kTooShort, ChannelDataError::kBadChannel,
                 ChannelDataError::kLengthOverflow, ChannelDataError::kTrailingBytes}) {
    EXPECT_FALSE(describe(e).empty());
  }
}

}  // namespace
}  // namespace roam::stun
