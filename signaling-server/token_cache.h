// Reservation tokens a shard has taken from relays' pools ahead of need, so that a relay grant
// costs no Redis round trip. Without it every connect waits for two take-token scripts; under
// concurrent connects on a busy machine that wait dominated the grant latency (p99 ~5 ms
// against the 0.2 ms of the rest of the grant).
//
// Only under load: below `min_grants_per_second` on this shard a grant takes its token from the
// pool directly (the round trip is short when nothing queues), and a fetch never takes more than
// a quarter of what the pool held at the last refresh, so small pools and other instances are
// not starved. Sans-I/O: the caller fetches batches from Redis (relay::take_tokens_script) and
// gives the clock. Bounds: at most `batch` tokens per relay per shard, each held at most
// `max_hold`.
// Tokens are fetched only with min_remaining + max_hold of reservation left (by Redis's clock),
// so one handed out after max_hold in the cache still has min_remaining left even if this
// machine's clock disagrees with Redis's. Tokens that outstay max_hold go back to the pool
// (stale()), as do all of them at shutdown (take_all()).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/relay/pool_layout.h"
#include "common/util/time.h"

namespace roam::signaling {

class TokenCache {
 public:
  struct Limits {
    // Tokens fetched at once, and held at most, per relay. A connect takes two at once, so 32
    // cover a burst of 16 concurrent connects on one shard between two fetches. With 16 (8
    // connects) the rest of such a burst waited for Redis: in ./run bench signaling phase (c),
    // 16 pairs at once, the server's grant p99 was 3.1-7.5 ms (median 5.7 ms, 7 runs) against
    // 1.5-2.9 ms (median 2.5 ms, 7 runs) with 32.
    std::size_t batch = 32;
    std::size_t low_water = 16;  // fetch again when fewer than this are left
    Duration max_hold = std::chrono::seconds(20);
    Duration retry_after_empty = std::chrono::seconds(1);  // after a fetch found the pool empty
    std::size_t min_grants_per_second = 20;                // fetch ahead only at this load
  };
  // A token with its pool score (the Unix ms until which the pool hands it out), which is what
  // goes back into the pool with it.
  struct Held {
    relay::PoolEntry entry;
    std::int64_t score = 0;
    TimePoint fetched_at{};
  };

  explicit TokenCache(Limits limits) : limits_(limits) {}

  // The longest-held token of `relay` held no longer than max_hold, if any (older ones are set
  // aside for stale()).
  std::optional<relay::PoolEntry> take(std::string_view relay, TimePoint now);

  // Counts a grant (cached or not) for the load gate.
  void note_grant(TimePoint now);
  // How many tokens to fetch for `relay` now, whose pool held `pool_size` at the last refresh:
  // 0 below the load gate, while a fetch is in flight, while enough are held, or shortly after
  // a fetch found the pool empty. Non-zero marks a fetch in flight; end it with add() (also
  // with no tokens) or fetch_failed().
  std::size_t start_fetch(std::string_view relay, TimePoint now, std::int64_t pool_size);
  void add(std::string_view relay, std::vector<Held> tokens, TimePoint now);
  void fetch_failed(std::string_view relay);

  // Tokens held longer than max_hold, removed from the cache: return them to their pools.
  std::vector<std::pair<std::string, Held>> stale(TimePoint now);
  // Everything, removed from the cache, which fetches no more (shutdown).
  std::vector<std::pair<std::string, Held>> take_all();

  std::size_t held(std::string_view relay) const;
  std::size_t held() const;
  const Limits& limits() const { return limits_; }

 private:
  struct PerRelay {
    std::deque<Held> tokens;
    bool fetching = false;
    TimePoint empty_until{};
  };
  PerRelay& of(std::string_view relay);

  Limits limits_;
  std::map<std::string, PerRelay, std::less<>> relays_;
  std::vector<std::pair<std::string, Held>> aged_;  // set aside by take(), handed out by stale()
  bool closed_ = false;
  // Grants per second: the count of the current 1 s window and of the one before.
  TimePoint window_start_{};
  std::size_t grants_this_window_ = 0;
  std::size_t grants_last_window_ = 0;
};

}  // namespace roam::signaling
