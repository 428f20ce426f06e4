#include <gtest/gtest.h>

#include "common/stun/channel_data.h"
#include "common/stun/demux.h"
#include "common/stun/message.h"
#include "common/util/random.h"

namespace roam::stun {
namespace {

Bytes hex(std::string_view text) {
  return from_hex(text).value();
}

// RFC 5769 §2.2 sample IPv4 response.
const Bytes kStun =
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
        "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
        "00 20 00 08 00 01 a1 47 e1 12 a6 43"
        "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
        "80 28 00 04 c0 7d 4c 96");

TEST(Demux, StunFromAnySource) {
  EXPECT_TRUE(looks_like_stun(kStun));
  EXPECT_EQ(classify(kStun, false), PacketKind::kStun);
  EXPECT_EQ(classify(kStun, true), PacketKind::kStun);
  // A header-only Binding request (the smallest STUN message) too.
  TransactionId id{};
  Bytes bare = MessageBuilder(Method::kBinding, Class::kRequest, id).finish();
  EXPECT_EQ(classify(bare, false), PacketKind::kStun);
}

TEST(Demux, ChannelDataOnlyFromTheTurnServer) {
  Bytes cd;
  encode_channel_data(0x4001, to_bytes("quic packet inside"), cd);
  EXPECT_FALSE(looks_like_stun(cd));
  EXPECT_EQ(classify(cd, true), PacketKind::kChannelData);
  // The same bytes from a peer are a QUIC short header (first byte 0x40-0x4F).
  EXPECT_EQ(classify(cd, false), PacketKind::kQuic);
  // Malformed ChannelData from the TURN server is not passed on.
  Bytes bad = cd;
  store_be16(bad.data() + 2, 0x0100);
  EXPECT_EQ(classify(bad, true), PacketKind::kInvalid);
  EXPECT_EQ(classify(bad, false), PacketKind::kQuic);
}

TEST(Demux, QuicLongAndShortHeaders) {
  // Long header (Initial, version 1): first byte 0xC0-0xFF.
  Bytes initial = hex("c3 00 00 00 01 08 01 02 03 04 05 06 07 08 00 00 44 d0");
  initial.resize(1200, std::byte{0});
  EXPECT_EQ(classify(initial, false), PacketKind::kQuic);
  EXPECT_EQ(classify(initial, true), PacketKind::kInvalid);
  // Short header with the fixed bit set.
  Bytes short_header = hex("41 aa bb cc dd ee ff 00 11 22 33 44 55 66 77 88 99");
  EXPECT_EQ(classify(short_header, false), PacketKind::kQuic);
}

TEST(Demux, GreasedQuicShortHeadersAreNotStun) {
  // ngtcp2 0.12.1 greases the fixed bit (notes/ngtcp2-0.12.1.md quirk 1): short headers can
  // start with 0x00-0x3F, STUN's first-byte range. Random packets with every such first byte
  // and realistic sizes must all go to QUIC.
  SeededRandom rng(5769);
  for (unsigned first = 0; first <= 0x3F; ++first) {
    for (std::size_t size : {21u, 40u, 64u, 100u, 1200u, 1252u}) {
      Bytes pkt(size);
      rng.fill(pkt);
      pkt[0] = std::byte(first);
      EXPECT_FALSE(looks_like_stun(pkt)) << first << " " << size;
      EXPECT_EQ(classify(pkt, false), PacketKind::kQuic);
    }
  }
  // Even with the magic cookie at bytes 4-7 (a DCID can contain anything), a length field that
  // does not match the datagram keeps it QUIC.
  Bytes tricky = hex("00 01 00 10 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00");
  tricky.resize(44, std::byte{0x5a});  // 24 bytes of body, header says 16
  EXPECT_EQ(classify(tricky, false), PacketKind::kQuic);
  // Length matches but is not a multiple of 4.
  Bytes odd = hex("00 01 00 03 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00 01 02 03");
  EXPECT_EQ(classify(odd, false), PacketKind::kQuic);
  // Cookie and length right but a top bit set: the 0x40 fixed bit makes it a QUIC short header.
  Bytes top = hex("40 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00");
  EXPECT_EQ(classify(top, false), PacketKind::kQuic);
  // Only a packet that really has STUN's header, cookie and exact length counts as STUN (a QUIC
  // packet would have to match 32 cookie bits and the 16-bit length by chance).
  Bytes real = hex("00 01 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00");
  EXPECT_EQ(classify(real, false), PacketKind::kStun);
}

TEST(Demux, TruncatedStunIsNotStun) {
  for (std::size_t n = 1; n < kStun.size(); ++n) {
    ByteSpan cut = ByteSpan(kStun).first(n);
    EXPECT_FALSE(looks_like_stun(cut)) << n;
    EXPECT_EQ(classify(cut, false), PacketKind::kQuic) << n;
    EXPECT_EQ(classify(cut, true), PacketKind::kInvalid) << n;  // 0x01 is no channel
  }
}

TEST(Demux, EmptyAndOversized) {
  EXPECT_EQ(classify({}, false), PacketKind::kInvalid);
  EXPECT_EQ(classify({}, true), PacketKind::kInvalid);
  EXPECT_FALSE(looks_like_stun({}));
  Bytes huge(kMaxMessageSize + 4, std::byte{0});
  store_be32(huge.data() + 4, kMagicCookie);
  EXPECT_FALSE(looks_like_stun(huge));
}

TEST(Demux, GarbageFromTheTurnServerIsInvalid) {
  EXPECT_EQ(classify(hex("ff ff ff ff ff"), true), PacketKind::kInvalid);
  EXPECT_EQ(classify(hex("00"), true), PacketKind::kInvalid);
}

}  // namespace
}  // namespace roam::stun
