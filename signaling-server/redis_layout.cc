#include "signaling-server/redis_layout.h"

namespace roam::signaling::layout {

std::string peer_key(std::string_view peer) {
  return "roam:sig:peer:" + std::string(peer);
}
std::string session_key(std::string_view session) {
  return "roam:sig:session:" + std::string(session);
}
std::string instance_channel(std::string_view instance) {
  return "roam:sig:instance:" + std::string(instance);
}

std::string_view register_script() {
  return R"lua(
local old = redis.call('HGET', KEYS[1], 'instance')
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'info', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if old and old ~= ARGV[1] then
  redis.call('PUBLISH', 'roam:sig:instance:' .. old,
             cjson.encode({k = 'kick', peer = ARGV[4], gen = gen}))
end
return gen
)lua";
}

std::string_view unregister_script() {
  return R"lua(
if redis.call('HGET', KEYS[1], 'instance') == ARGV[1] and
   redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";
}

std::string_view refresh_script() {
  return R"lua(
local gens = {}
for i, key in ipairs(KEYS) do
  local inst = redis.call('HGET', key, 'instance')
  if not inst then
    gens[i] = redis.call('HINCRBY', key, 'gen', 1)
    redis.call('HSET', key, 'instance', ARGV[1], 'info', ARGV[2 + i])
    redis.call('PEXPIRE', key, ARGV[2])
  elseif inst == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    gens[i] = tonumber(redis.call('HGET', key, 'gen'))
  else
    gens[i] = 0
  end
end
return gens
)lua";
}

std::string_view route_script() {
  return R"lua(
local inst = redis.call('HGET', KEYS[1], 'instance')
if not inst then return -1 end
return redis.call('PUBLISH', 'roam:sig:instance:' .. inst, ARGV[1])
)lua";
}

}  // namespace roam::signaling::layout
