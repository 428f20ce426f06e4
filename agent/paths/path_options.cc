#include "agent/paths/path_options.h"

#include <utility>

namespace roam::agent {

PathEngineOptions engine_options_for(const PathOptions& options, std::vector<SocketAddress> stun) {
  PathEngineOptions engine;
  engine.stun_servers = std::move(stun);
  engine.interfaces = options.interfaces;
  engine.metered = options.metered;
  engine.prefer_unmetered = !options.prefer_metered;
  engine.include_loopback = options.loopback;
  engine.stats_interval = options.stats_interval;
  engine.path_policy = options.relay_only    ? ice::PathPolicy::kRelayOnly
                       : options.direct_only ? ice::PathPolicy::kDirectOnly
                                             : ice::PathPolicy::kAll;
  return engine;
}

SignalingLinkOptions link_options_for(const PathOptions& options,
                                      const ice::IceCredentials& local) {
  SignalingLinkOptions link;
  link.urls = options.signaling_urls;
  link.hello.token = options.token;
  link.hello.client = "roam/0.1.0";
  link.hello.capabilities = {"trickle"};
  link.hello.region = options.region;
  link.hello.ice = signaling::IceCredentials{local.ufrag, local.pwd};
  return link;
}

}  // namespace roam::agent
