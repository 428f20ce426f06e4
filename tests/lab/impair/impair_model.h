// The network-impairment model of roam-lab-impair: for each packet, given the time it arrived
// and its size, whether it is lost and when it leaves. Pure (no clock, no I/O): main.cc feeds
// it NFQUEUE packets and real time, the unit test feeds it virtual time.
//
// Order of effects, as in netem with a rate: a tail-drop queue in front of a serializer of
// `rate_bps` (skipped when 0), then random loss, then a fixed delay plus uniform jitter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>

namespace roam::lab {

using Nanos = std::int64_t;  // monotonic nanoseconds

struct ImpairConfig {
  Nanos delay = 0;
  Nanos jitter = 0;            // departure uniformly in [delay - jitter, delay + jitter]
  double loss = 0.0;           // Bernoulli probability per packet, in [0, 1)
  std::uint64_t rate_bps = 0;  // 0: no serialization limit
  std::size_t limit = 1000;    // packets waiting for the serializer before tail drop
  bool reorder = false;        // false: a packet never leaves before one that arrived earlier
  std::uint64_t seed = 1;
};

enum class Fate { kDeliver, kLost, kOverLimit };

struct Decision {
  Fate fate = Fate::kDeliver;
  Nanos departure = 0;  // when the verdict is due (kDeliver only)
};

class ImpairModel {
 public:
  explicit ImpairModel(const ImpairConfig& config);

  Decision on_packet(Nanos now, std::size_t bytes);

 private:
  ImpairConfig config_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  Nanos link_free_at_ = 0;     // when the serializer finishes its current backlog
  Nanos last_departure_ = 0;   // FIFO floor when reorder is off
  std::deque<Nanos> waiting_;  // serializer start times of queued packets, ascending
};

}  // namespace roam::lab
