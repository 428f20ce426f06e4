#include "signaling-server/token_cache.h"

#include <algorithm>

namespace roam::signaling {

TokenCache::PerRelay& TokenCache::of(std::string_view relay) {
  auto it = relays_.find(relay);
  if (it == relays_.end()) it = relays_.emplace(std::string(relay), PerRelay{}).first;
  return it->second;
}

std::optional<relay::PoolEntry> TokenCache::take(std::string_view relay, TimePoint now) {
  auto it = relays_.find(relay);
  if (it == relays_.end()) return std::nullopt;
  auto& tokens = it->second.tokens;
  while (!tokens.empty() && now - tokens.front().fetched_at > limits_.max_hold) {
    aged_.emplace_back(it->first, std::move(tokens.front()));
    tokens.pop_front();
  }
  if (tokens.empty()) return std::nullopt;
  auto entry = tokens.front().entry;
  tokens.pop_front();
  return entry;
}

void TokenCache::note_grant(TimePoint now) {
  constexpr auto kWindow = std::chrono::seconds(1);
  if (now - window_start_ >= kWindow) {
    grants_last_window_ = now - window_start_ < 2 * kWindow ? grants_this_window_ : 0;
    grants_this_window_ = 0;
    window_start_ = now;
  }
  ++grants_this_window_;
}

std::size_t TokenCache::start_fetch(std::string_view relay, TimePoint now, std::int64_t pool_size) {
  const auto load = std::max(grants_this_window_, grants_last_window_);
  if (closed_ || load < limits_.min_grants_per_second) return 0;
  auto& r = of(relay);
  if (r.fetching || now < r.empty_until || r.tokens.size() >= limits_.low_water) return 0;
  const auto share = static_cast<std::size_t>(std::max<std::int64_t>(0, pool_size / 4));
  const auto wanted = std::min(limits_.batch - r.tokens.size(), share);
  if (wanted == 0) return 0;
  r.fetching = true;
  return wanted;
}

void TokenCache::add(std::string_view relay, std::vector<Held> tokens, TimePoint now) {
  auto& r = of(relay);
  r.fetching = false;
  if (tokens.empty()) r.empty_until = now + limits_.retry_after_empty;
  for (auto& held : tokens) {
    held.fetched_at = now;
    r.tokens.push_back(std::move(held));
  }
}

void TokenCache::fetch_failed(std::string_view relay) {
  of(relay).fetching = false;
}

std::vector<std::pair<std::string, TokenCache::Held>> TokenCache::stale(TimePoint now) {
  auto out = std::move(aged_);
  aged_.clear();
  for (auto& [id, r] : relays_) {
    while (!r.tokens.empty() && now - r.tokens.front().fetched_at > limits_.max_hold) {
      out.emplace_back(id, std::move(r.tokens.front()));
      r.tokens.pop_front();
    }
  }
  return out;
}

std::vector<std::pair<std::string, TokenCache::Held>> TokenCache::take_all() {
  closed_ = true;
  auto out = std::move(aged_);
  aged_.clear();
  for (auto& [id, r] : relays_) {
    for (auto& held : r.tokens)
      out.emplace_back(id, std::move(held));
    r.tokens.clear();
  }
  return out;
}

std::size_t TokenCache::held(std::string_view relay) const {
  auto it = relays_.find(relay);
  return it == relays_.end() ? 0 : it->second.tokens.size();
}

std::size_t TokenCache::held() const {
  std::size_t n = 0;
  for (const auto& [id, r] : relays_)
    n += r.tokens.size();
  return n;
}

}  // namespace roam::signaling
