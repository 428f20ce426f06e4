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

#include "common/redis/client.h"
#include "common/signaling/message.h"
#include "signaling-server/relay_directory.h"

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
  GrantIssuer(std::string turn_secret, std::chrono::seconds credential_ttl);

  // `ranked` comes from rank_relays(). Tokens are tried at the first two relays whose pool is
  // not known to be empty; without any, the credentials are for the first relay.
  boost::asio::awaitable<GrantOutcome> issue(redis::Client& redis,
                                             const std::vector<RelayInstance>& ranked,
                                             std::string_view peer, std::int64_t now_unix);

 private:
  std::string turn_secret_;
  std::chrono::seconds credential_ttl_;
  redis::Script take_token_;
};

// The RFC 8839 text of a relayed candidate at `relay` (type preference 0, RFC 8445 §5.1.2.2),
// with the related address hidden as RFC 8839 §5.1 allows.
std::string relay_candidate_text(const SocketAddress& relay, const SocketAddress& turn_server);

}  // namespace roam::signaling
