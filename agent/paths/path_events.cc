#include "agent/paths/path_events.h"

#include "common/ice/candidate_text.h"

namespace roam::agent {

namespace json = boost::json;

json::object candidate_json(std::string_view side, std::string_view action,
                            const ice::Candidate& candidate, const std::string& interface) {
  json::object o{{"side", side},
                 {"action", action},
                 {"type", ice::to_string(candidate.type)},
                 {"address", candidate.address.to_string()},
                 {"family", static_cast<int>(candidate.address.family())}};
  if (!interface.empty()) o["interface"] = interface;
  o["candidate"] = ice::to_string(candidate);
  return o;
}

json::object pair_json(const ice::PairInfo& pair, const std::string& interface) {
  json::object o{{"pair", pair.id},
                 {"kind", ice::to_string(pair.kind)},
                 {"local_type", ice::to_string(pair.local_type)},
                 {"remote_type", ice::to_string(pair.remote_type)},
                 {"local", pair.local_address.to_string()},
                 {"remote", pair.remote.to_string()},
                 {"family", static_cast<int>(pair.remote.family())},
                 {"interface", interface},
                 {"metered", pair.metered}};
  if (pair.rtt) o["rtt_ms"] = to_ms(*pair.rtt);
  return o;
}

json::object pair_state_json(const ice::PairStateChanged& change, const std::string& interface) {
  json::object o = pair_json(change.pair, interface);
  o["state"] = ice::to_string(change.state);
  if (change.failure != ice::PairFailure::kNone) o["failure"] = ice::to_string(change.failure);
  if (change.error_code != 0) o["error_code"] = change.error_code;
  o["removed"] = change.removed;
  return o;
}

json::object selected_json(const ice::SelectedPairChanged& change, const std::string& interface) {
  json::object o;
  if (change.pair) o = pair_json(*change.pair, interface);
  o["kind"] = ice::to_string(change.kind);
  o["reason"] = ice::to_string(change.reason);
  o["relay_reason"] = ice::to_string(change.relay_reason);
  return o;
}

}  // namespace roam::agent
