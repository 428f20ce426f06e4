#include "signaling-server/relay_grants.h"

#include <cstdlib>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "common/auth/turn_rest.h"
#include "common/ice/candidate_text.h"
#include "common/log/log.h"
#include "common/relay/pool_layout.h"

namespace roam::signaling {

GrantIssuer::GrantIssuer(std::string turn_secret, std::chrono::seconds credential_ttl,
                         prometheus::Gauge& cached_tokens)
    : turn_secret_(std::move(turn_secret)),
      credential_ttl_(credential_ttl),
      take_token_(std::string(relay::take_token_script())),
      take_tokens_(std::string(relay::take_tokens_script())),
      cached_tokens_(cached_tokens) {}

void GrantIssuer::top_up(redis::Client& redis, TokenCache& cache, const RelayInstance& instance) {
  const auto wanted = cache.start_fetch(instance.id, Clock::now(), instance.pool);
  if (wanted == 0) return;
  const std::string relay = instance.id;
  boost::asio::co_spawn(
      redis.get_executor(),
      [this, &redis, &cache, relay, wanted]() -> boost::asio::awaitable<void> {
        // Enough reservation left to outlast the cache's hold and still give the agent
        // kTokenMinRemaining (TokenCache's header).
        const auto remaining =
            kTokenMinRemaining +
            std::chrono::duration_cast<std::chrono::milliseconds>(cache.limits().max_hold);
        std::vector<std::string> keys{relay::pool_key(relay)};
        std::vector<std::string> args{std::to_string(remaining.count()), std::to_string(wanted)};
        auto taken = co_await redis.eval(take_tokens_, std::move(keys), std::move(args));
        const auto* members = taken ? taken->as_array() : nullptr;
        if (!members) {
          cache.fetch_failed(relay);
          co_return;
        }
        std::vector<TokenCache::Held> held;
        for (std::size_t i = 0; i + 1 < members->size(); i += 2) {
          const auto* member = (*members)[i].as_string();
          const auto* score = (*members)[i + 1].as_string();
          if (!member || !score) continue;
          auto decoded = relay::decode_entry(*member);
          if (!decoded) {
            spdlog::warn("relay {}: undecodable pool member skipped: {}", relay, decoded.error());
            continue;
          }
          held.push_back({*decoded, std::strtoll(score->c_str(), nullptr, 10), {}});
        }
        cached_tokens_.Increment(static_cast<double>(held.size()));
        cache.add(relay, std::move(held), Clock::now());
      },
      boost::asio::detached);
}

boost::asio::awaitable<void> GrantIssuer::give_back(
    redis::Client& redis, std::vector<std::pair<std::string, TokenCache::Held>> tokens) {
  cached_tokens_.Decrement(static_cast<double>(tokens.size()));
  std::map<std::string, redis::Command> by_pool;
  for (const auto& [relay, held] : tokens) {
    auto& command = by_pool[relay];
    if (command.empty()) command = {"ZADD", relay::pool_key(relay)};
    command.push_back(std::to_string(held.score));
    command.push_back(relay::encode_entry(held.entry));
  }
  for (auto& [relay, command] : by_pool) {
    auto result = co_await redis.command(std::move(command));
    if (!result) spdlog::warn("relay {}: cached tokens not returned to the pool", relay);
  }
}

std::optional<GrantOutcome> GrantIssuer::from_cache(redis::Client& redis, TokenCache& cache,
                                                    const std::vector<RelayInstance>& ranked,
                                                    std::string_view peer, std::int64_t now_unix) {
  const auto now = Clock::now();
  cache.note_grant(now);
  if (ranked.empty()) return GrantOutcome{};
  for (std::size_t i = 0; i < ranked.size() && i < 2; ++i) {
    if (auto cached = cache.take(ranked[i].id, now)) {
      cached_tokens_.Decrement();
      top_up(redis, cache, ranked[i]);
      return outcome(ranked[i], cached, peer, now_unix);
    }
  }
  return std::nullopt;
}

boost::asio::awaitable<GrantOutcome> GrantIssuer::issue(redis::Client& redis, TokenCache& cache,
                                                        const std::vector<RelayInstance>& ranked,
                                                        std::string_view peer,
                                                        std::int64_t now_unix) {
  if (ranked.empty()) co_return GrantOutcome{};
  const RelayInstance* chosen = &ranked.front();
  std::optional<relay::PoolEntry> entry;
  int attempts = 0;
  for (const auto& relay : ranked) {
    if (attempts == 2) break;
    if (auto cached = cache.take(relay.id, Clock::now())) {  // a top-up may have landed
      cached_tokens_.Decrement();
      entry = *cached;
      chosen = &relay;
      top_up(redis, cache, relay);
      break;
    }
    if (relay.pool <= 0) continue;  // as of the last refresh; skip a round trip
    ++attempts;
    top_up(redis, cache, relay);  // runs beside this take: the next grant finds tokens
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
  co_return outcome(*chosen, entry, peer, now_unix);
}

GrantOutcome GrantIssuer::outcome(const RelayInstance& chosen,
                                  const std::optional<relay::PoolEntry>& entry,
                                  std::string_view peer, std::int64_t now_unix) const {
  GrantOutcome out;
  auto credentials = auth::turn_rest::mint(turn_secret_, peer, now_unix, credential_ttl_);
  if (!credentials) {
    spdlog::error("cannot mint TURN credentials: {}",
                  auth::turn_rest::describe(credentials.error()));
    return out;
  }
  RelayGrant grant;
  grant.uri = chosen.turn_uri;
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
  out.turn_server = chosen.turn_address;
  return out;
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
