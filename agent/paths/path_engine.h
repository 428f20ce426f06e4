// The agent's path engine: the real transport around the sans-I/O continuous ICE agent
// (common/ice/agent.h). It owns
//  - one UDP socket per usable (interface, address), bound to the address and, where allowed,
//    to the interface (SO_BINDTODEVICE), so each candidate really egresses where it claims;
//  - live interface monitoring (rtnetlink): a new address is a new host candidate, gathered
//    and trickled at once; a removed address or a link going down kills its pairs at once;
//  - server-reflexive gathering on every socket, repeated for as long as it lives;
//  - one TURN allocation (relayed candidate) from the session's relay grant, redeeming the
//    reservation token, on a socket whose nonce was pre-warmed when the relay was known;
//  - demultiplexing on every socket: our STUN Binding answers, TURN (from the TURN server
//    only), ICE checks, and everything else as application data (QUIC) for the owner.
// Every change is written to the path event log (docs/path-events.md).
//
// Thread model: one executor; every call on it. The engine is driven by socket completions,
// rtnetlink and one timer armed at the earliest deadline of the state machines it drives.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/array.hpp>

#include "agent/paths/event_log.h"
#include "common/ice/agent.h"
#include "common/signaling/message.h"
#include "common/util/bytes.h"
#include "common/util/expected.h"
#include "common/util/random.h"

namespace roam::agent {

struct PathEngineOptions {
  std::vector<SocketAddress> stun_servers;  // server-reflexive gathering (one per family)
  std::vector<std::string> interfaces;      // only these (empty: every usable one)
  std::vector<std::string> metered;         // cellular and other metered interfaces
  bool prefer_unmetered = true;
  // Gather on loopback too (127.0.0.1, ::1): two agents on one machine, tests, `./run demo`
  // without root. Never useful between machines.
  bool include_loopback = false;
  ice::PathPolicy path_policy = ice::PathPolicy::kAll;
  Duration stats_interval = seconds(1);  // "stats" events; zero disables them
  // Pre-warm the nonce of this TURN server while no session exists (notes/coturn-reservations.md:
  // saves one round trip of the relay allocation). Empty: the first IPv4 STUN server, which in a
  // Roam deployment is the coturn that also relays.
  std::optional<SocketAddress> prewarm_server;
  // coturn forgets an unauthenticated 5-tuple after --max-allocate-timeout (60 s): pre-warm again.
  Duration prewarm_refresh = seconds(45);
};

// What the owner gets.
struct PathEngineHandlers {
  // A local candidate to trickle to the peer (RFC 8839 text).
  std::function<void(const std::string&)> trickle;
  // Application data (not STUN, not TURN) that arrived on `local` from `from`.
  std::function<void(ice::LocalId local, const SocketAddress& from, ByteSpan data)> data;
  // A local address went away (its candidates are removed already).
  std::function<void(const IpAddress&)> address_removed;
  // The selected pair changed (empty: none), with the ICE agent's reason (ice::to_string).
  std::function<void(const std::optional<ice::PairInfo>&, std::string_view reason)> selected;
  // A local candidate the peer may know was removed (its address or link went away), with the
  // address the peer knows it by: tell the peer (QUIC control stream) so its pairs fail at once.
  std::function<void(const SocketAddress&)> candidate_removed;
};

class PathEngine {
 public:
  PathEngine(boost::asio::any_io_executor executor, PathEngineOptions options, EventLog& log,
             RandomSource& random, PathEngineHandlers handlers);
  ~PathEngine();
  PathEngine(const PathEngine&) = delete;
  PathEngine& operator=(const PathEngine&) = delete;

  // Starts interface monitoring (and so gathering). Error: netlink is unavailable.
  expected<void, std::string> start();
  void stop();

  // The credentials to announce in `hello` (RFC 8445 §5.3).
  const ice::IceCredentials& local_credentials() const { return credentials_; }

  // A session from signaling: creates the ICE agent with the session's role and the peer's
  // credentials, adds the peer's relay candidate, allocates the relay from the grant and
  // trickles every local candidate gathered so far. Error: the session is unusable (no peer
  // credentials). One session per engine; later ones are refused.
  expected<void, std::string> on_session(const signaling::Session& session);
  // A trickled remote candidate or end-of-candidates.
  void on_remote_candidate(const signaling::Candidate& candidate);
  // The peer removed one of its candidates (QUIC control stream): its pairs fail at once.
  void on_remote_candidate_removed(const SocketAddress& address);
  // The peer says its end of the selected pair died (QUIC control stream): the pair fails and
  // the selection moves to the best warm backup.
  void on_peer_path_failure();
  // Every local candidate the agent has now (RFC 8839 text), e.g. to send them again over
  // another channel.
  std::vector<std::string> local_candidates() const;
  // Every pair as in the `stats` event (pair members, state, datagrams sent and received).
  boost::json::array pairs_json() const;
  // The interface name of a pair's local side ("" when unknown), for logs and status.
  std::string interface_of(const ice::PairInfo& pair) const;
  // Whether `local` still exists (its socket or relay allocation).
  bool has_local(ice::LocalId local) const;

  // Sends application data on the selected pair. False when no pair is selected. When
  // `expects_answer`, the liveness timer of the pair starts (ice::Agent::on_data_expected).
  bool send_on_selected(ByteSpan data, bool expects_answer);
  // Sends application data from `local` to `to` (e.g. an answer on the pair it came from).
  // `expects_answer` as for send_on_selected, on that pair.
  bool send_to(ice::LocalId local, const SocketAddress& to, ByteSpan data,
               bool expects_answer = false);
  // Authenticated application data arrived on (local, from): proof of life for that pair.
  void data_received(ice::LocalId local, const SocketAddress& from);

  std::optional<ice::PairInfo> selected_pair() const;
  const ice::Agent* ice_agent() const;

  // Writes a "stats" event now (also done every stats_interval).
  void write_stats();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
  ice::IceCredentials credentials_;
};

}  // namespace roam::agent
