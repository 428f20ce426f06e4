#include "signaling-server/relay_directory.h"

#include <algorithm>
#include <charconv>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log/log.h"
#include "common/redis/command.h"
#include "common/relay/pool_layout.h"

namespace roam::signaling {
namespace {

std::int64_t to_int(const std::string& text) {
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

}  // namespace

std::optional<RelayInstance> parse_relay_instance(const std::vector<std::string>& fields) {
  RelayInstance r;
  bool have_address = false;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    const auto& name = fields[i];
    const auto& value = fields[i + 1];
    if (name == "id") {
      r.id = value;
    } else if (name == "region") {
      r.region = value;
    } else if (name == "turn_uri") {
      r.turn_uri = value;
    } else if (name == "turn_address") {
      if (auto a = SocketAddress::parse(value)) {
        r.turn_address = *a;
        have_address = true;
      }
    } else if (name == "healthy") {
      r.healthy = value == "1";
    } else if (name == "allocations") {
      r.allocations = to_int(value);
    } else if (name == "pool") {
      r.pool = to_int(value);
    }
  }
  if (r.id.empty() || r.turn_uri.empty() || !have_address) return std::nullopt;
  return r;
}

std::vector<RelayInstance> rank_relays(std::vector<RelayInstance> relays,
                                       std::optional<std::string_view> region) {
  std::erase_if(relays, [](const RelayInstance& r) { return !r.healthy; });
  std::sort(relays.begin(), relays.end(), [&](const RelayInstance& a, const RelayInstance& b) {
    bool a_local = region && a.region == *region;
    bool b_local = region && b.region == *region;
    if (a_local != b_local) return a_local;
    if (a.allocations != b.allocations) return a.allocations < b.allocations;
    if (a.pool != b.pool) return a.pool > b.pool;
    return a.id < b.id;
  });
  return relays;
}

boost::asio::awaitable<bool> RelayDirectory::refresh() {
  auto members = co_await redis::run(redis_, "SMEMBERS", relay::instances_key());
  if (!members || !members->as_array()) co_return false;
  std::vector<RelayInstance> found;
  for (const auto& member : *members->as_array()) {
    const auto* id = member.as_string();
    if (!id || !relay::valid_instance_id(*id)) continue;
    if (found.size() >= kMaxInstances) break;
    auto hash = co_await redis::run(redis_, "HGETALL", relay::instance_key(*id));
    if (!hash) co_return false;
    const auto* items = hash->as_array();
    if (!items || items->empty()) continue;  // expired: the sidecar is gone
    std::vector<std::string> fields;
    for (const auto& item : *items) {
      if (const auto* s = item.as_string()) fields.push_back(*s);
    }
    if (auto r = parse_relay_instance(fields)) found.push_back(std::move(*r));
  }
  relays_ = std::move(found);
  co_return true;
}

boost::asio::awaitable<void> RelayDirectory::run() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    // Until Redis answers (e.g. right after start), retry quickly so the first sessions
    // already get grants.
    bool ok = co_await refresh();
    timer.expires_after(ok ? kRefreshInterval : kRetryInterval);
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace roam::signaling
