// The JSON shapes of the path event log (docs/path-events.md) for ICE values: candidates,
// pairs, pair state changes and selection changes.
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "common/ice/agent_types.h"

namespace roam::agent {

// {side, action, type, address, family, interface?, candidate}
boost::json::object candidate_json(std::string_view side, std::string_view action,
                                   const ice::Candidate& candidate, const std::string& interface);
// {pair, kind, local_type, remote_type, local, remote, interface, metered, rtt_ms?}
boost::json::object pair_json(const ice::PairInfo& pair, const std::string& interface);
// pair_json + {state, failure?, error_code?, removed}
boost::json::object pair_state_json(const ice::PairStateChanged& change,
                                    const std::string& interface);
// {kind, reason, relay_reason} + pair_json of the new pair when there is one
boost::json::object selected_json(const ice::SelectedPairChanged& change,
                                  const std::string& interface);

}  // namespace roam::agent
