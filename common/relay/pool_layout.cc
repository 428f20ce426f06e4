#include "common/relay/pool_layout.h"

#include <charconv>

#include <boost/json.hpp>

#include "common/util/bytes.h"

namespace roam::relay {

bool valid_instance_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxInstanceIdSize) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string instances_key() {
  return "roam:relay:instances";
}
std::string instance_key(std::string_view id) {
  return "roam:relay:{" + std::string(id) + "}:instance";
}
std::string pool_key(std::string_view id) {
  return "roam:relay:{" + std::string(id) + "}:pool";
}

std::string encode_entry(const PoolEntry& e) {
  Bytes token(8);
  store_be32(token.data(), static_cast<std::uint32_t>(e.token >> 32));
  store_be32(token.data() + 4, static_cast<std::uint32_t>(e.token));
  boost::json::object o;
  o["relay"] = e.relay.to_string();
  o["token"] = to_hex(token);
  o["expires_ms"] = e.expires_ms;
  return boost::json::serialize(o);
}

expected<PoolEntry, std::string> decode_entry(std::string_view member) {
  boost::system::error_code ec;
  auto v = boost::json::parse(member, ec);
  if (ec || !v.is_object()) return unexpected(std::string("pool entry is not a JSON object"));
  const auto& o = v.as_object();
  const auto* relay = o.if_contains("relay");
  const auto* token = o.if_contains("token");
  const auto* expires = o.if_contains("expires_ms");
  if (!relay || !relay->is_string() || !token || !token->is_string() || !expires ||
      !expires->is_int64()) {
    return unexpected(std::string("pool entry lacks relay/token/expires_ms"));
  }
  auto address = SocketAddress::parse(relay->as_string());
  if (!address) return unexpected(std::string("pool entry has a bad relay address"));
  auto raw = from_hex(token->as_string());
  if (!raw || raw->size() != 8) return unexpected(std::string("pool entry token is not 8 bytes"));
  PoolEntry e;
  e.relay = *address;
  e.token = (std::uint64_t{load_be32(raw->data())} << 32) | load_be32(raw->data() + 4);
  e.expires_ms = expires->as_int64();
  return e;
}

std::string_view take_token_script() {
  // Redis's own clock (TIME) is the one clock every signaling instance shares.
  return R"lua(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('ZRANGEBYSCORE', KEYS[1], now + tonumber(ARGV[1]), '+inf', 'LIMIT', 0, 1)
if #m == 0 then return false end
redis.call('ZREM', KEYS[1], m[1])
return m[1]
)lua";
}

std::string_view take_tokens_script() {
  return R"lua(local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('ZRANGEBYSCORE', KEYS[1], now + tonumber(ARGV[1]), '+inf', 'WITHSCORES',
                     'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #m, 2 do redis.call('ZREM', KEYS[1], m[i]) end
return m
)lua";
}

}  // namespace roam::relay
