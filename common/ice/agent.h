// Continuous ICE agent (RFC 8445 full agent with Trickle ICE, RFC 8838, and RFC 7675 consent) as
// a sans-I/O state machine: no sockets, no clocks, no threads. The owner feeds it candidates,
// STUN datagrams and timer expiries with the current time, sends what poll_transmit() returns
// and reacts to what poll_event() returns (pair valid/failed, consent lost, selected pair
// changed with kind and reason, "still relayed" reason).
//
// Continuous: local candidates come and go at any time (netlink), remote candidates are trickled
// at any time, end-of-candidates never ends checking, failed pairs are rechecked with backoff,
// valid pairs are kept warm; no ICE restart is needed for a network change.
//
// Design choices (details and RFC references at each constant in agent_config.h):
//  - No Frozen state (RFC 8445 §6.1.2.6): it exists to spread checks over components and data
//    streams sharing foundations; with one component, one stream and Ta pacing over a bounded
//    list, every pair starts Waiting, as RFC 8838 trickling in arbitrary order also suggests.
//  - Pacing: one new check per Ta = 10 ms, triggered checks first (RFC 8445 §6.1.4.2), ordinary
//    checks round-robin over (interface, family, relayed) lanes (pacer.h). Retransmissions
//    follow their own RTO (RFC 8489 §6.2.1) and keepalives their jittered schedule.
//  - Nomination: regular nomination (RFC 8445 §8.1.1), repeated ("renomination"): the
//    controlling agent selects by its policy among valid pairs as soon as any is valid (data may
//    flow at once) and nominates the selected pair with a USE-CANDIDATE check; it keeps
//    USE-CANDIDATE on that pair's keepalives, and nominates again when its policy switches. The
//    controlled agent follows the latest nomination. Aggressive nomination (USE-CANDIDATE on
//    every check, RFC 5245 §8.1.1.2) was dropped by RFC 8445 and would make the controlled
//    side select whichever pair answered first, typically the relay or a worse interface.
//  - Keepalive: every valid pair (selected or backup) gets one check per keepalive interval
//    (2.5 s Roam-to-Roam, 5 s RFC 7675 pace for foreign peers) ±20 %; the pair fails after
//    keepalive_misses consecutive unanswered ones, and consent (30 s) is the hard floor.
//  - Liveness of the data path: the owner reports data it received (on_data_received) and data
//    it expects an answer to (on_data_expected, e.g. on sending an ack-eliciting QUIC packet).
//    A pair with an expectation older than the liveness timeout (≈ 3 RTT + max_ack_delay) and
//    no data since fails with kDataTimeout and the selection moves to the best warm backup.
//
// Errors and drops: the agent never throws; every input it refuses is reported by the return
// value (AgentError, StunDrop) and counted in stats().
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "common/ice/agent_config.h"
#include "common/ice/agent_types.h"
#include "common/ice/check_list.h"
#include "common/ice/pacer.h"
#include "common/stun/retransmission.h"
#include "common/util/expected.h"

namespace roam::ice {

enum class AgentError {
  kBadCandidate,          // fails ice::validate() or has an unspecified address or port 0
  kUnsupportedComponent,  // component other than 1 (Roam uses one component, candidate.h)
  kUnsupportedType,       // local peer-reflexive candidate, or a reflexive one without a base
  kDuplicateId,           // a local candidate with this id exists
  kUnknownBase,           // a server-reflexive candidate whose base is not a local host
  kTooManyCandidates,     // max_local_candidates / max_remote_candidates reached
  kBadCredentials,        // not valid() (RFC 8445 §5.3 sizes, ice-chars)
};
std::string_view describe(AgentError e);

// Why handle_stun() did not use a datagram.
enum class StunDrop {
  kUnknownLocal,        // no local base with that id
  kNotStun,             // not a STUN message (the caller's demux should not have sent it)
  kNotBinding,          // another method, or a Binding indication (RFC 8445 §11 keepalives)
  kBadRequest,          // a request without USERNAME/MESSAGE-INTEGRITY/PRIORITY/role (answered 400)
  kUnauthenticated,     // wrong ufrag or MESSAGE-INTEGRITY (answered 401; responses dropped)
  kUnknownAttributes,   // comprehension-required attributes we do not know (answered 420)
  kRoleConflict,        // answered 487 (RFC 8445 §7.3.1.1)
  kUnknownTransaction,  // a response to nothing outstanding (late, duplicate or spoofed)
  kNoPairRoom,          // a valid check from a new address, but the check list is full
};
std::string_view describe(StunDrop d);

struct AgentStats {
  std::uint64_t requests_sent = 0;  // checks, retransmissions, keepalives
  std::uint64_t responses_sent = 0;
  std::uint64_t requests_received = 0;
  std::uint64_t responses_received = 0;
  std::uint64_t dropped_datagrams = 0;
  std::uint64_t dropped_transmits = 0;  // transmit queue full
  std::uint64_t dropped_events = 0;     // event queue full
  std::uint64_t pairs_refused = 0;      // check list full
  std::uint64_t role_conflicts = 0;
};

class Agent {
 public:
  // `config` is sanitized (agent_config.h). `random` must outlive the agent; it draws the
  // tie-breaker, transaction IDs and keepalive jitter.
  Agent(AgentConfig config, RandomSource& random);

  // --- candidates (any time; nothing here ends checking) ---------------------------------
  // Adds a local candidate (see LocalCandidate for what each type means). A base is paired at
  // once with every compatible remote candidate (same family; IPv6 link-local only with
  // link-local, RFC 8445 §6.1.2.2; filtered by the path policy).
  expected<void, AgentError> add_local_candidate(const LocalCandidate& candidate, TimePoint now);
  // Removes one local candidate: its pairs fail with kLocalCandidateRemoved and are erased at
  // once; the selection moves if it was on one of them. Unknown ids are ignored.
  void remove_local_candidate(LocalId id, TimePoint now);
  // Removes every local candidate on the interface (link down or address gone). Returns how many.
  std::size_t remove_interface(std::uint32_t interface_index, TimePoint now);

  // The peer's ufrag/pwd (signaling). Checks wait for them (RFC 8838 §5: triggered checks are
  // queued); incoming checks are answered before, as they only need our own credentials. New
  // credentials replace the old ones (no ICE restart semantics here).
  expected<void, AgentError> set_remote_credentials(const IceCredentials& credentials);
  // A trickled remote candidate; paired at once with every compatible local base. A candidate
  // with the address of a learned peer-reflexive one replaces it (RFC 8838 §11) and corrects
  // its pairs' kind: a check from the peer's relayed base counts as direct until its relayed
  // candidate is signaled. Component must be 1. Duplicates are ignored.
  expected<void, AgentError> add_remote_candidate(const Candidate& candidate, TimePoint now);
  // The peer says this address is gone: its pairs fail with kRemoteCandidateRemoved, erased.
  void remove_remote_candidate(const SocketAddress& address, TimePoint now);
  // RFC 8838 §13 end-of-candidates: recorded for the diagnosis only; checking continues.
  void set_remote_end_of_candidates() { remote_end_of_candidates_ = true; }

  // --- I/O -------------------------------------------------------------------------------
  // A STUN datagram that arrived on local candidate `local` from `from` (for a relayed base,
  // `from` is the peer address the TURN client reported). Requests are answered (through
  // poll_transmit) and may trigger checks; responses advance checks and keepalives.
  expected<void, StunDrop> handle_stun(LocalId local, const SocketAddress& from, ByteSpan datagram,
                                       TimePoint now);
  std::optional<Transmit> poll_transmit();
  std::optional<Event> poll_event();
  // When handle_timeout() must be called next (kNever if nothing is scheduled). It may be in
  // the past right after an input (e.g. a new candidate with the pacer slot open): call
  // handle_timeout(now) at once then.
  TimePoint next_deadline() const;
  void handle_timeout(TimePoint now);

  // --- liveness from the data path ---------------------------------------------------------
  // Authenticated data (e.g. a decrypted QUIC packet) arrived on (local, from). Clears the
  // pending expectation and counts as proof of life for keepalive misses.
  void on_data_received(LocalId local, const SocketAddress& from, TimePoint now);
  // The owner sent something on (local, to) that the peer will answer (an ack-eliciting QUIC
  // packet). Starts the liveness timer unless one is running.
  void on_data_expected(LocalId local, const SocketAddress& to, TimePoint now);
  // The selected pair is dead for a reason the owner learned elsewhere (e.g. the peer reported
  // that its end died): it fails like a data timeout (its fate sharers become suspects) and the
  // selection moves to the best warm backup. No-op without a selected pair.
  void fail_selected(PairFailure reason, TimePoint now);

  // --- introspection ---------------------------------------------------------------------
  Role role() const { return role_; }
  std::optional<PairInfo> selected_pair() const;
  RelayReason relay_reason() const { return relay_reason_; }
  std::vector<PairInfo> pairs() const;
  std::optional<PairState> pair_state(PairId id) const;
  std::optional<PairInfo> pair(PairId id) const;
  // The liveness timeout the pair currently gets (agent_config.h).
  std::optional<Duration> liveness_timeout_of(PairId id) const;
  const AgentStats& stats() const { return stats_; }
  const AgentConfig& config() const { return config_; }
  std::uint64_t tie_breaker() const { return tie_breaker_; }

 private:
  enum class TxnKind { kCheck, kNomination, kKeepalive };
  struct Transaction {
    PairId pair = 0;
    TxnKind kind = TxnKind::kCheck;
    Bytes request;
    LocalId local = 0;
    SocketAddress destination;
    TimePoint first_sent{};
    stun::RetransmissionSchedule schedule;  // kCheck / kNomination (kKeepalive: never due)
    bool use_candidate = false;
    bool as_controlling = false;  // our role when it was sent (a late 487 must not flip twice)
    bool cancelled = false;       // RFC 8445 §7.3.1.4: no retransmission, no failure on timeout
  };
  struct RemoteEntry {
    Candidate candidate;
    bool signaled = true;               // false: learned peer-reflexive (§7.3.1.3)
    std::optional<LocalId> learned_on;  // peer-reflexive: pair only with this base
  };

  // Candidates and pairs.
  bool is_base(const LocalCandidate& c) const;
  bool compatible(const LocalCandidate& local, const Candidate& remote) const;
  void pair_up(const LocalCandidate& local, const Candidate& remote, TimePoint now);
  Pair* create_pair(const LocalCandidate& local, const Candidate& remote);
  std::uint64_t compute_pair_priority(const LocalCandidate& local, const Candidate& remote) const;
  void recompute_priorities();
  void remove_pairs_if(PairFailure reason, TimePoint now, const auto& predicate);

  // Checks.
  stun::TransactionId new_transaction_id();
  Bytes build_request(const Pair& pair, bool use_candidate, const stun::TransactionId& id) const;
  // Builds, sends and records one Binding request on `pair` (the three kinds below); its id.
  stun::TransactionId send_request(Pair& pair, TxnKind kind, bool use_candidate,
                                   stun::RetransmissionSchedule schedule, TimePoint now);
  void send_check(Pair& pair, TimePoint now);
  void send_nomination(Pair& pair, TimePoint now);
  void send_keepalive(Pair& pair, TimePoint now);
  void trigger(Pair& pair);
  void cancel_check(Pair& pair);
  void drop_transactions_of(PairId id);
  Duration check_rto() const;
  Duration keepalive_interval();
  void run_pacer(TimePoint now);
  bool checks_possible() const;

  // STUN input.
  expected<void, StunDrop> on_request(const LocalCandidate& local, const SocketAddress& from,
                                      const stun::Message& m, TimePoint now);
  expected<void, StunDrop> on_response(const LocalCandidate& local, const SocketAddress& from,
                                       const stun::Message& m, TimePoint now);
  void respond_error(LocalId local, const SocketAddress& to, const stun::Message& request, int code,
                     std::string_view reason, const std::vector<std::uint16_t>& unknown = {});
  void on_check_success(Pair& pair, const Transaction& t, const stun::Message& m, TimePoint now);
  void switch_role(TimePoint now);

  // Pair life.
  void set_state(Pair& pair, PairState state);
  void mark_valid(Pair& pair, TimePoint now);
  void fail_pair(PairId id, PairFailure reason, TimePoint now, int error_code = 0);
  void probe_silent_selected(TimePoint now);
  void suspect_fate_sharers(const Pair& failed, TimePoint now);

  // Selection.
  void reselect(TimePoint now, std::optional<SelectionReason> hint = std::nullopt);
  void select(std::optional<PairId> id, SelectionReason reason, TimePoint now);
  void update_relay_reason();
  RelayReason compute_relay_reason() const;

  // Output.
  PairInfo info(const Pair& pair) const;
  void emit(Event e);
  void transmit(LocalId local, const SocketAddress& to, Bytes data);

  AgentConfig config_;
  RandomSource& random_;
  Role role_;
  std::uint64_t tie_breaker_;
  std::optional<IceCredentials> remote_credentials_;
  bool remote_end_of_candidates_ = false;

  std::map<LocalId, LocalCandidate> locals_;
  std::map<SocketAddress, RemoteEntry> remotes_;
  CheckList check_list_;
  std::map<stun::TransactionId, Transaction> transactions_;
  std::deque<PairId> triggered_;
  Pacer pacer_;

  std::optional<PairId> selected_;
  RelayReason relay_reason_ = RelayReason::kNoPath;
  bool inbound_direct_seen_ = false;

  std::deque<Transmit> transmits_;
  std::deque<Event> events_;
  AgentStats stats_;
};

}  // namespace roam::ice
