// The check list (RFC 8445 §6.1.2): candidate pairs with their check, keepalive and liveness
// state, bounded by max_pairs (RFC 8445 §6.1.2.5). One component, one data stream: a pair is
// identified by (local base id, remote address); the valid pair a check produces is always the
// checked pair itself because checks are sent from bases and reflexive local candidates are
// never paired (RFC 8445 §6.1.2.4, §7.2.5.3.2).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/ice/agent_types.h"
#include "common/ice/pacer.h"
#include "common/ice/rtt_estimator.h"
#include "common/stun/message.h"

namespace roam::ice {

struct Pair {
  PairId id = 0;
  LocalId local = 0;
  SocketAddress remote;
  Lane lane;
  bool relayed = false;  // either candidate is relayed
  bool metered = false;  // the local candidate's interface is metered
  std::uint64_t priority = 0;

  PairState state = PairState::kWaiting;
  PairFailure failure = PairFailure::kNone;
  int error_code = 0;
  int failures = 0;  // how many times it failed (0: its first check has not finished)

  bool triggered = false;           // queued in the triggered check queue (RFC 8445 §6.1.4.1)
  bool nominate = false;            // controlling: send USE-CANDIDATE on its next check
  bool nominated = false;           // controlling: a USE-CANDIDATE check succeeded
  bool peer_nominated = false;      // controlled: USE-CANDIDATE received before it was valid
  bool inbound_check_seen = false;  // the peer's checks reach us on it
  // Shares fate with a selected pair whose data just stopped (same local interface or same
  // remote address): probed at once and passed over by the selection until it answers.
  bool suspect = false;

  std::optional<stun::TransactionId> check_txn;  // outstanding ordinary/triggered check
  std::optional<stun::TransactionId> keepalive_txn;

  RttEstimator rtt;
  std::optional<SocketAddress> mapped;  // XOR-MAPPED-ADDRESS of the last success
  TimePoint last_response = kNever;     // consent freshness (RFC 7675)
  TimePoint next_keepalive = kNever;
  int keepalive_misses = 0;
  TimePoint retry_at = kNever;  // Failed: when it may be rechecked
  Duration retry_backoff{};

  TimePoint data_expected_since = kNever;  // first unanswered expectation of data
  TimePoint last_data = kNever;
  bool silence_probed = false;  // a check went out after its data stopped (Agent::handle_timeout)

  std::uint64_t requests_sent = 0;
  std::uint64_t responses_sent = 0;

  bool valid() const { return state == PairState::kSucceeded; }
};

class CheckList {
 public:
  std::vector<Pair>& pairs() { return pairs_; }
  const std::vector<Pair>& pairs() const { return pairs_; }
  std::size_t size() const { return pairs_.size(); }

  Pair* find(PairId id);
  const Pair* find(PairId id) const;
  Pair* find(LocalId local, const SocketAddress& remote);

  // Adds a pair in state Waiting and returns it. With `max_pairs` pairs already, evicts the
  // lowest-priority pair that is neither valid nor `protect` if its priority is lower than the
  // new one's (its id is reported through `evicted`); returns nullptr when nothing can go.
  Pair* add(Pair pair, std::size_t max_pairs, PairId protect, std::optional<Pair>* evicted);

  // Removes the pair (no-op if absent).
  void erase(PairId id);

  PairId next_id() { return ++last_id_; }

 private:
  std::vector<Pair> pairs_;
  PairId last_id_ = 0;
};

}  // namespace roam::ice
