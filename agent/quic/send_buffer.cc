#include "agent/quic/send_buffer.h"

#include <algorithm>
#include <cstring>

namespace roam::agent::quic {

std::size_t SendBuffer::append(ByteSpan data) {
  const std::size_t room = limit_ > unacked() ? limit_ - unacked() : 0;
  const std::size_t n = std::min(room, data.size());
  std::size_t done = 0;
  while (done < n) {
    const std::uint64_t in_chunk = (end_ - first_chunk_offset_) % kChunkSize;
    const std::uint64_t chunk = (end_ - first_chunk_offset_) / kChunkSize;
    if (chunk == chunks_.size()) chunks_.push_back(std::make_unique<std::byte[]>(kChunkSize));
    const std::size_t take = std::min<std::size_t>(n - done, kChunkSize - in_chunk);
    std::memcpy(chunks_[chunk].get() + in_chunk, data.data() + done, take);
    done += take;
    end_ += take;
  }
  return n;
}

std::size_t SendBuffer::unsent(std::span<ByteSpan> out) const {
  std::size_t count = 0;
  std::uint64_t at = sent_;
  while (at < end_ && count < out.size()) {
    const std::uint64_t chunk = (at - first_chunk_offset_) / kChunkSize;
    const std::uint64_t in_chunk = (at - first_chunk_offset_) % kChunkSize;
    const std::size_t len =
        static_cast<std::size_t>(std::min<std::uint64_t>(end_ - at, kChunkSize - in_chunk));
    out[count++] = ByteSpan(chunks_[chunk].get() + in_chunk, len);
    at += len;
  }
  return count;
}

void SendBuffer::mark_sent(std::uint64_t n) {
  sent_ = std::min(end_, sent_ + n);
}

void SendBuffer::acknowledge_to(std::uint64_t offset) {
  offset = std::min(offset, sent_);
  if (offset <= acked_) return;
  acked_ = offset;
  while (!chunks_.empty() && first_chunk_offset_ + kChunkSize <= acked_) {
    chunks_.pop_front();
    first_chunk_offset_ += kChunkSize;
  }
}

}  // namespace roam::agent::quic
