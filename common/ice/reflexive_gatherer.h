// Server-reflexive gathering (RFC 8445 §5.1.1.2) as a sans-I/O state machine: for every host
// base it asks each STUN server of the base's family for the base's mapping, retransmits per
// RFC 8489 §6.2.1, and asks again every `refresh` for as long as the base lives. Continuous:
// a changed mapping (NAT rebinding, new carrier NAT state) is reported as a new result, so the
// owner replaces the old server-reflexive candidate; a lost one is reported as failed.
//
// The repeated query also keeps the NAT mapping toward the STUN server alive (RFC 8445 §5.1.1.2
// does not require it, but a mapping that expired would make the trickled candidate stale).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "common/ice/agent_types.h"
#include "common/stun/message.h"
#include "common/stun/retransmission.h"
#include "common/util/random.h"
#include "common/util/time.h"

namespace roam::ice {

struct ReflexiveGathererConfig {
  // Short RTO for gathering: a lost Binding on a fresh path costs 250 ms, not 500 ms; 5
  // transmissions (0, 250, 750, 1750, 3750 ms) fail a silent server after about 7.75 s.
  stun::RetransmissionPolicy retransmission{milliseconds(250), 5, 16};
  // Re-query interval. NAT UDP mappings last ≥ 2 min (RFC 4787 REQ-5), often 30 s in practice.
  Duration refresh = seconds(25);
  std::string software = "roam";
};

// The outcome of one query.
struct ReflexiveResult {
  LocalId base = 0;
  SocketAddress server;
  std::optional<SocketAddress> mapped;  // empty: the server did not answer (or answered badly)
  bool changed = false;                 // the mapping differs from the last one reported
};

class ReflexiveGatherer {
 public:
  ReflexiveGatherer(ReflexiveGathererConfig config, RandomSource& random);

  // Starts querying `servers` (only those of `base_address`'s family) from `base`.
  void add_base(LocalId base, const SocketAddress& base_address,
                const std::vector<SocketAddress>& servers, TimePoint now);
  void remove_base(LocalId base);
  // Asks again now from `base` (every server without a query in flight): a path from it just
  // died, and a NAT rebinding would show as a changed mapping within one round trip instead
  // of at the next refresh.
  void refresh_now(LocalId base, TimePoint now);
  // True when `m` (received on `base` from `from`) answered one of our queries; the caller
  // then drops it. Responses from elsewhere than the server asked are not consumed.
  bool handle_response(LocalId base, const SocketAddress& from, const stun::Message& m,
                       TimePoint now);

  std::optional<Transmit> poll_transmit();
  std::optional<ReflexiveResult> poll_result();
  TimePoint next_deadline() const;
  void handle_timeout(TimePoint now);

  // The current mapping of `base` as seen by `server`, if known.
  std::optional<SocketAddress> mapping(LocalId base, const SocketAddress& server) const;

 private:
  struct Query {
    LocalId base = 0;
    SocketAddress server;
    std::optional<stun::TransactionId> outstanding;
    Bytes request;
    stun::RetransmissionSchedule schedule;
    TimePoint next_query = kNever;
    std::optional<SocketAddress> mapped;
  };
  void start_query(Query& q, TimePoint now);

  ReflexiveGathererConfig config_;
  RandomSource& random_;
  std::vector<Query> queries_;
  std::deque<Transmit> transmits_;
  std::deque<ReflexiveResult> results_;
};

}  // namespace roam::ice
