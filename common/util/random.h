// Randomness is injected so state machines stay deterministic under test.
#pragma once

#include <cstdint>
#include <span>

namespace roam {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::span<std::byte> out) = 0;
  std::uint64_t next_u64();
  // Uniform in [0, bound); bound > 0.
  std::uint64_t uniform(std::uint64_t bound);
};

// Kernel CSPRNG (getrandom). Use for transaction IDs, tokens, ICE credentials.
class SystemRandom final : public RandomSource {
 public:
  void fill(std::span<std::byte> out) override;
};

// Deterministic generator (splitmix64) for tests and simulations only.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<std::byte> out) override;

 private:
  std::uint64_t state_;
};

}  // namespace roam
