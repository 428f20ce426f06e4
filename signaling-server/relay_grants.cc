#include "signaling-server/relay_grants.h"

#include "common/auth/turn_rest.h"
#include "common/ice/candidate_text.h"
#include "common/log/log.h"
#include "common/relay/pool_layout.h"

namespace roam::signaling {

GrantIssuer::GrantIssuer(std::string turn_secret, std::chrono::seconds credential_ttl)
    : turn_secret_(std::move(turn_secret)),
      credential_ttl_(credential_ttl),
      take_token_(std::string(relay::take_token_script())) {}

boost::asio::awaitable<GrantOutcome> GrantIssuer::issue(redis::Client& redis,
                                                        const std::vector<RelayInstance>& ranked,
                                                        std::string_view peer,
                                                        std::int64_t now_unix) {
  GrantOutcome out;
  if (ranked.empty()) co_return out;
  const RelayInstance* chosen = &ranked.front();
  std::optional<relay::PoolEntry> entry;
  int attempts = 0;
  for (const auto& relay : ranked) {
    if (attempts == 2) break;
    if (relay.pool <= 0) continue;  // as of the last refresh; skip a round trip
    ++attempts;
    std::vector<std::string> keys{relay::pool_key(relay.id)};
    std::vector<std::string> args{std::to_string(kTokenMinRemaining.count())};
    auto taken = co_await redis.eval(take_token_, std::move(keys), std::move(args));
    if (!taken) break;  // Redis trouble: do not wait for a second timeout
    const auto* member = taken->as_string();
    if (!member) continue;  // nil: this pool is empty now
    auto decoded = relay::decode_entry(*member);
    if (!decoded) {
      spdlog::warn("relay {}: undecodable pool member skipped: {}", relay.id, decoded.error());
      continue;
    }
    entry = *decoded;
    chosen = &relay;
    break;
  }
  auto credentials = auth::turn_rest::mint(turn_secret_, peer, now_unix, credential_ttl_);
  if (!credentials) {
    spdlog::error("cannot mint TURN credentials: {}",
                  auth::turn_rest::describe(credentials.error()));
    co_return out;
  }
  RelayGrant grant;
  grant.uri = chosen->turn_uri;
  grant.username = credentials->username;
  grant.password = credentials->password;
  grant.expires = credentials->expires_at_unix;
  if (entry) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(entry->token));
    grant.token = hex;
    grant.address = entry->relay;
  }
  out.kind = entry ? GrantOutcome::Kind::kToken : GrantOutcome::Kind::kNoToken;
  out.grant = std::move(grant);
  out.turn_server = chosen->turn_address;
  co_return out;
}

std::string relay_candidate_text(const SocketAddress& relay, const SocketAddress& turn_server) {
  ice::Candidate c;
  c.type = ice::CandidateType::kRelayed;
  c.foundation = ice::compute_foundation(c.type, relay.ip, turn_server.ip);
  c.priority = ice::compute_priority(c.type, ice::kMaxLocalPreference);
  c.address = relay;
  c.related = SocketAddress{relay.ip.is_v4() ? IpAddress() : *IpAddress::parse("::"), 0};
  return ice::to_string(c);
}

}  // namespace roam::signaling
