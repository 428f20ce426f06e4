// The outgoing bytes of one QUIC stream, from the oldest unacknowledged one to the newest one
// written. ngtcp2 does not copy stream data: it keeps pointers into what it sent until the peer
// acknowledges it (to retransmit), so bytes live in fixed-size chunks that never move and a
// chunk is freed only once every byte in it is acknowledged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>

#include "common/util/bytes.h"

namespace roam::agent::quic {

class SendBuffer {
 public:
  static constexpr std::size_t kChunkSize = 64 * 1024;

  // `limit`: the most bytes held at once (written and not yet acknowledged).
  explicit SendBuffer(std::size_t limit) : limit_(limit) {}

  // Copies as much of `data` as the limit allows; returns how much.
  std::size_t append(ByteSpan data);
  // Written and not yet acknowledged.
  std::size_t unacked() const { return static_cast<std::size_t>(end_ - acked_); }
  bool has_unsent() const { return sent_ < end_; }
  std::uint64_t unsent_size() const { return end_ - sent_; }
  // Views of the unsent bytes in order, starting at the send offset (at most out.size() pieces,
  // one per chunk). Returns how many pieces were filled.
  std::size_t unsent(std::span<ByteSpan> out) const;
  // The first `n` unsent bytes were handed to the transport.
  void mark_sent(std::uint64_t n);
  // Every byte before stream offset `offset` is acknowledged (offsets only grow).
  void acknowledge_to(std::uint64_t offset);

  std::uint64_t sent_offset() const { return sent_; }
  std::uint64_t end_offset() const { return end_; }
  std::uint64_t acked_offset() const { return acked_; }

 private:
  std::size_t limit_;
  std::deque<std::unique_ptr<std::byte[]>> chunks_;
  std::uint64_t first_chunk_offset_ = 0;  // stream offset of chunks_.front()[0]
  std::uint64_t acked_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace roam::agent::quic
