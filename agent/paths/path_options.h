// The options `roam ice` and the session commands (send, recv, pipe, perf) share: where to
// signal, what to gather on and which paths to allow; and the path engine's and the signaling
// link's settings made from them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/paths/path_engine.h"
#include "agent/paths/signaling_link.h"
#include "common/ice/agent_types.h"
#include "common/util/time.h"

namespace roam::agent {

struct PathOptions {
  std::vector<std::string> signaling_urls;
  std::string ca_file;
  std::string token;
  std::optional<std::string> connect_peer;  // start a session with this peer (else wait)
  std::vector<std::string> stun_servers;    // HOST:PORT with IP literals
  std::string events_path;
  std::vector<std::string> interfaces;
  std::vector<std::string> metered;
  bool prefer_metered = false;
  bool relay_only = false;
  bool direct_only = false;
  bool loopback = false;  // gather on loopback too (two agents on one machine)
  std::optional<std::string> region;
  Duration stats_interval = seconds(1);
};

// `stun` is options.stun_servers parsed (parse_server_addresses).
PathEngineOptions engine_options_for(const PathOptions& options, std::vector<SocketAddress> stun);

// The hello every connect sends: the token, the region hint and the local ICE credentials.
SignalingLinkOptions link_options_for(const PathOptions& options, const ice::IceCredentials& local);

}  // namespace roam::agent
