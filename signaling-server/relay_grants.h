// Relay grants for `session` messages (architecture.md "Call setup", docs/relay-pool.md): a
// TURN REST credential for the peer at the chosen relay plus, when that relay's pool has one,
// a reservation token taken atomically, so the peer can hand its relay address out before
// allocating.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <prometheus/gauge.h>

#include "common/redis/client.h"
#include "common/signaling/message.h"
#include "signaling-server/relay_directory.h"
#include "signaling-server/token_cache.h"

namespace roam::signaling {

// A token is handed out only if coturn keeps its reservation at least this much longer: the
// agent must allocate within it (it does so on receipt, typically in one or two RTTs).
inline constexpr std::chrono::milliseconds kTokenMinRemaining{10'000};

struct GrantOutcome {
  enum class Kind : std::uint8_t { kToken, kNoToken, kNoRelay } kind = Kind::kNoRelay;
  std::optional<RelayGrant> grant;  // absent only for kNoRelay
  SocketAddress turn_server;        // the relay's TURN address (for the candidate foundation)
};

class GrantIssuer {
 public:
  // `cached_tokens` follows the tokens held in every shard's TokenCache.
  GrantIssuer(std::string turn_secret, std::chrono::seconds credential_ttl,
              prometheus::Gauge& cached_tokens);

  // `ranked` comes from rank_relays(). First from_cache(): the grant, when it needs no Redis
  // (a token of one of the first two relays is in `cache`, or there is no relay at all); it
  // counts the grant for the cache's load gate. Otherwise issue(): tokens are tried at the first
  // two relays whose pool is not known to be empty; without any, the credentials are for the
  // first relay. Either way the cache is topped up in the background.
  std::optional<GrantOutcome> from_cache(redis::Client& redis, TokenCache& cache,
                                         const std::vector<RelayInstance>& ranked,
                                         std::string_view peer, std::int64_t now_unix);
  boost::asio::awaitable<GrantOutcome> issue(redis::Client& redis, TokenCache& cache,
                                             const std::vector<RelayInstance>& ranked,
                                             std::string_view peer, std::int64_t now_unix);

  // Puts tokens back into their pools (ZADD with their scores): those held too long, or at
  // shutdown all of them. Completes when Redis has answered.
  boost::asio::awaitable<void> give_back(
      redis::Client& redis, std::vector<std::pair<std::string, TokenCache::Held>> tokens);

 private:
  void top_up(redis::Client& redis, TokenCache& cache, const RelayInstance& relay);
  // The grant at `chosen` with `entry`'s token if any (TURN REST credentials minted here).
  GrantOutcome outcome(const RelayInstance& chosen, const std::optional<relay::PoolEntry>& entry,
                       std::string_view peer, std::int64_t now_unix) const;

  std::string turn_secret_;
  std::chrono::seconds credential_ttl_;
  redis::Script take_token_;
  redis::Script take_tokens_;
  prometheus::Gauge& cached_tokens_;
};

// The RFC 8839 text of a relayed candidate at `relay` (type preference 0, RFC 8445 §5.1.2.2),
// with the related address hidden as RFC 8839 §5.1 allows.
std::string relay_candidate_text(const SocketAddress& relay, const SocketAddress& turn_server);

}  // namespace roam::signaling
