// The per-stream send buffer of the QUIC connection: bounded, ordered, and stable memory for
// bytes ngtcp2 may still retransmit.
#include <array>

#include <gtest/gtest.h>

#include "agent/quic/send_buffer.h"

namespace roam::agent::quic {
namespace {

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i)
    b[i] = std::byte((i * 131 + seed) & 0xff);
  return b;
}

Bytes gather(const SendBuffer& buf) {
  std::array<ByteSpan, 64> pieces;
  Bytes out;
  for (std::size_t i = 0, n = buf.unsent(pieces); i < n; ++i) {
    out.insert(out.end(), pieces[i].begin(), pieces[i].end());
  }
  return out;
}

TEST(QuicSendBuffer, AcceptsUpToTheLimitOfUnacknowledgedBytes) {
  SendBuffer buf(100'000);
  const Bytes data = pattern(150'000, 1);
  EXPECT_EQ(buf.append(data), 100'000u);
  EXPECT_EQ(buf.unacked(), 100'000u);
  EXPECT_EQ(buf.append(data), 0u);
  buf.mark_sent(60'000);
  buf.acknowledge_to(40'000);
  EXPECT_EQ(buf.unacked(), 60'000u);
  EXPECT_EQ(buf.append(ByteSpan(data).subspan(100'000)), 40'000u);
  EXPECT_EQ(buf.end_offset(), 140'000u);
}

TEST(QuicSendBuffer, UnsentBytesComeBackInOrderAcrossChunks) {
  SendBuffer buf(1 << 20);
  const Bytes data = pattern(3 * SendBuffer::kChunkSize + 123, 7);
  ASSERT_EQ(buf.append(ByteSpan(data).first(1000)), 1000u);
  ASSERT_EQ(buf.append(ByteSpan(data).subspan(1000)), data.size() - 1000);
  EXPECT_EQ(gather(buf), data);
  buf.mark_sent(SendBuffer::kChunkSize + 5);
  const Bytes rest = gather(buf);
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), data.begin() + SendBuffer::kChunkSize + 5));
  EXPECT_EQ(rest.size(), data.size() - SendBuffer::kChunkSize - 5);
}

TEST(QuicSendBuffer, SentBytesStayPutUntilAcknowledged) {
  SendBuffer buf(1 << 20);
  const Bytes data = pattern(2 * SendBuffer::kChunkSize, 3);
  buf.append(data);
  std::array<ByteSpan, 4> pieces;
  ASSERT_EQ(buf.unsent(pieces), 2u);
  const std::byte* first = pieces[0].data();
  buf.mark_sent(data.size());
  // More writes never move what was sent (ngtcp2 keeps pointers into it).
  buf.append(pattern(3 * SendBuffer::kChunkSize, 9));
  buf.acknowledge_to(SendBuffer::kChunkSize - 1);
  EXPECT_EQ(first[0], data[0]);
  EXPECT_EQ(first[SendBuffer::kChunkSize - 1], data[SendBuffer::kChunkSize - 1]);
  EXPECT_EQ(buf.acked_offset(), SendBuffer::kChunkSize - 1);
}

TEST(QuicSendBuffer, AcknowledgementsOnlyCoverSentBytesAndNeverGoBack) {
  SendBuffer buf(1000);
  buf.append(pattern(500, 0));
  buf.mark_sent(200);
  buf.acknowledge_to(400);  // beyond what was sent: clamped
  EXPECT_EQ(buf.acked_offset(), 200u);
  buf.acknowledge_to(100);
  EXPECT_EQ(buf.acked_offset(), 200u);
  EXPECT_EQ(buf.unacked(), 300u);
  buf.mark_sent(10'000);
  EXPECT_EQ(buf.sent_offset(), 500u);
  EXPECT_FALSE(buf.has_unsent());
}

TEST(QuicSendBuffer, EmptiesAndRefillsAtChunkBoundaries) {
  SendBuffer buf(SendBuffer::kChunkSize);
  const Bytes a = pattern(SendBuffer::kChunkSize, 1);
  const Bytes b = pattern(SendBuffer::kChunkSize, 2);
  ASSERT_EQ(buf.append(a), a.size());
  buf.mark_sent(a.size());
  buf.acknowledge_to(a.size());
  EXPECT_EQ(buf.unacked(), 0u);
  ASSERT_EQ(buf.append(b), b.size());
  EXPECT_EQ(gather(buf), b);
}

}  // namespace
}  // namespace roam::agent::quic
