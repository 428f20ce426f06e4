// Piece sizes for feeding a streaming decoder its input in pieces, so that a fuzz target checks
// the decoder gives the same result however the bytes are split. Deterministic per input: the
// sequence is xorshift32 seeded from the input's first byte.
#pragma once

#include <cstddef>
#include <cstdint>

class SeededPieceSizes {
 public:
  explicit SeededPieceSizes(std::uint8_t seed) : state_(0x9e3779b9u ^ seed) {}

  // 0..16 bytes, and now and then SIZE_MAX (the whole rest).
  std::size_t operator()() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_ % 64 == 0 ? SIZE_MAX : state_ % 17;
  }

 private:
  std::uint32_t state_;
};
