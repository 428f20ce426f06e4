#include "common/ice/agent.h"

#include <algorithm>
#include <utility>

#include "common/ice/candidate_text.h"
#include "common/ice/selection_policy.h"

namespace roam::ice {
namespace {

using stun::Class;
using stun::Method;
namespace attr = stun::attr;

bool is_timeout_failure(PairFailure f) {
  return f == PairFailure::kTimeout;
}

// RFC 8445 §6.1.2.2: link-local IPv6 (and, by the same reasoning, IPv4 link-local) addresses
// are only paired with addresses of the same scope.
bool same_scope(const IpAddress& a, const IpAddress& b) {
  return a.is_link_local() == b.is_link_local();
}

}  // namespace

std::string_view describe(AgentError e) {
  switch (e) {
    case AgentError::kBadCandidate:
      return "the candidate is malformed (bad foundation, priority, address or port)";
    case AgentError::kUnsupportedComponent:
      return "only component 1 is used; the candidate was ignored";
    case AgentError::kUnsupportedType:
      return "local candidates must be host, relayed, or server-reflexive with a base";
    case AgentError::kDuplicateId:
      return "a local candidate with this id already exists; remove it first";
    case AgentError::kUnknownBase:
      return "the server-reflexive candidate's base is not a known local host candidate";
    case AgentError::kTooManyCandidates:
      return "the candidate limit is reached; remove stale candidates or raise the limit";
    case AgentError::kBadCredentials:
      return "ICE credentials must be ice-chars, ufrag 4..256 and pwd 22..256 characters";
  }
  return "";
}

std::string_view describe(StunDrop d) {
  switch (d) {
    case StunDrop::kUnknownLocal:
      return "no local base with this id";
    case StunDrop::kNotStun:
      return "not a STUN message";
    case StunDrop::kNotBinding:
      return "not a Binding request or response";
    case StunDrop::kBadRequest:
      return "check without USERNAME, MESSAGE-INTEGRITY, PRIORITY or role (answered 400)";
    case StunDrop::kUnauthenticated:
      return "wrong ufrag or message integrity";
    case StunDrop::kUnknownAttributes:
      return "unknown comprehension-required attributes (answered 420)";
    case StunDrop::kRoleConflict:
      return "role conflict, the peer must switch (answered 487)";
    case StunDrop::kUnknownTransaction:
      return "response to no outstanding check";
    case StunDrop::kNoPairRoom:
      return "check list full; check answered but not paired";
  }
  return "";
}

Agent::Agent(AgentConfig config, RandomSource& random)
    : config_(config.sanitized()),
      random_(random),
      role_(config_.role),
      tie_breaker_(config_.tie_breaker ? *config_.tie_breaker : random.next_u64()),
      pacer_(config_.ta) {}

// --- candidates ------------------------------------------------------------------------------

bool Agent::is_base(const LocalCandidate& c) const {
  return c.candidate.type == CandidateType::kHost || c.candidate.type == CandidateType::kRelayed;
}

bool Agent::compatible(const LocalCandidate& local, const Candidate& remote) const {
  const auto& la = local.candidate.address;
  if (la.family() != remote.address.family()) return false;
  if (!same_scope(la.ip, remote.address.ip)) return false;
  const bool relayed =
      local.candidate.type == CandidateType::kRelayed || remote.type == CandidateType::kRelayed;
  if (config_.path_policy == PathPolicy::kRelayOnly && !relayed) return false;
  if (config_.path_policy == PathPolicy::kDirectOnly && relayed) return false;
  return true;
}

std::uint64_t Agent::compute_pair_priority(const LocalCandidate& local,
                                           const Candidate& remote) const {
  // RFC 8445 §6.1.2.3: G is the controlling agent's candidate priority.
  return role_ == Role::kControlling ? pair_priority(local.candidate.priority, remote.priority)
                                     : pair_priority(remote.priority, local.candidate.priority);
}

void Agent::recompute_priorities() {
  for (auto& p : check_list_.pairs()) {
    auto l = locals_.find(p.local);
    auto r = remotes_.find(p.remote);
    if (l != locals_.end() && r != remotes_.end()) {
      p.priority = compute_pair_priority(l->second, r->second.candidate);
    }
  }
}

Pair* Agent::create_pair(const LocalCandidate& local, const Candidate& remote) {
  Pair p;
  p.id = check_list_.next_id();
  p.local = local.id;
  p.remote = remote.address;
  p.relayed =
      local.candidate.type == CandidateType::kRelayed || remote.type == CandidateType::kRelayed;
  p.lane = Lane{local.interface_index, remote.address.family(),
                local.candidate.type == CandidateType::kRelayed};
  p.metered = local.metered;
  p.priority = compute_pair_priority(local, remote);
  std::optional<Pair> evicted;
  const PairId id = p.id;
  Pair* added = check_list_.add(std::move(p), config_.max_pairs, selected_.value_or(0), &evicted);
  if (!added) {
    ++stats_.pairs_refused;
    return nullptr;
  }
  if (evicted) {
    drop_transactions_of(evicted->id);
    PairStateChanged e{info(*evicted), PairState::kFailed, PairFailure::kEvicted, 0, true};
    emit(std::move(e));
  }
  return check_list_.find(id);
}

void Agent::pair_up(const LocalCandidate& local, const Candidate& remote, TimePoint) {
  if (!compatible(local, remote)) return;
  if (check_list_.find(local.id, remote.address)) return;
  create_pair(local, remote);
}

expected<void, AgentError> Agent::add_local_candidate(const LocalCandidate& c, TimePoint now) {
  if (locals_.contains(c.id)) return unexpected(AgentError::kDuplicateId);
  if (locals_.size() >= config_.max_local_candidates) {
    return unexpected(AgentError::kTooManyCandidates);
  }
  if (!validate(c.candidate) || c.candidate.address.ip.is_unspecified() ||
      c.candidate.address.port == 0) {
    return unexpected(AgentError::kBadCandidate);
  }
  if (c.candidate.component != kDefaultComponent) {
    return unexpected(AgentError::kUnsupportedComponent);
  }
  switch (c.candidate.type) {
    case CandidateType::kPeerReflexive:
      return unexpected(AgentError::kUnsupportedType);
    case CandidateType::kServerReflexive: {
      if (!c.base) return unexpected(AgentError::kUnsupportedType);
      auto b = locals_.find(*c.base);
      if (b == locals_.end() || b->second.candidate.type != CandidateType::kHost) {
        return unexpected(AgentError::kUnknownBase);
      }
      break;
    }
    default:
      break;
  }
  const auto& stored = locals_.emplace(c.id, c).first->second;
  if (is_base(stored)) {
    for (const auto& [address, remote] : remotes_) {
      if (remote.learned_on && *remote.learned_on != stored.id) continue;
      pair_up(stored, remote.candidate, now);
    }
  }
  update_relay_reason();
  return {};
}

void Agent::remove_pairs_if(PairFailure reason, TimePoint now, const auto& predicate) {
  std::vector<PairId> doomed;
  for (const auto& p : check_list_.pairs()) {
    if (predicate(p)) doomed.push_back(p.id);
  }
  if (doomed.empty()) return;
  bool selected_gone = false;
  for (PairId id : doomed) {
    const Pair* p = check_list_.find(id);
    emit(PairStateChanged{info(*p), PairState::kFailed, reason, 0, true});
    drop_transactions_of(id);
    if (selected_ == id) selected_gone = true;
    check_list_.erase(id);
  }
  if (selected_gone) {
    reselect(now, SelectionReason::kSelectedRemoved);  // selected_ names a pair that is gone
  } else {
    update_relay_reason();
  }
}

void Agent::remove_local_candidate(LocalId id, TimePoint now) {
  auto it = locals_.find(id);
  if (it == locals_.end()) return;
  remove_pairs_if(PairFailure::kLocalCandidateRemoved, now,
                  [id](const Pair& p) { return p.local == id; });
  std::erase_if(locals_, [id](const auto& kv) { return kv.first == id || kv.second.base == id; });
  update_relay_reason();
}

std::size_t Agent::remove_interface(std::uint32_t interface_index, TimePoint now) {
  std::vector<LocalId> ids;
  for (const auto& [id, c] : locals_) {
    if (c.interface_index == interface_index) ids.push_back(id);
  }
  if (ids.empty()) return 0;
  // All pairs of the interface go in one step, so the selection never lands on a pair of the
  // interface that is going away.
  remove_pairs_if(PairFailure::kLocalCandidateRemoved, now, [&ids](const Pair& p) {
    return std::find(ids.begin(), ids.end(), p.local) != ids.end();
  });
  std::erase_if(locals_, [interface_index](const auto& kv) {
    return kv.second.interface_index == interface_index;
  });
  update_relay_reason();
  return ids.size();
}

expected<void, AgentError> Agent::set_remote_credentials(const IceCredentials& credentials) {
  if (!valid(credentials)) return unexpected(AgentError::kBadCredentials);
  remote_credentials_ = credentials;
  return {};
}

expected<void, AgentError> Agent::add_remote_candidate(const Candidate& c, TimePoint now) {
  if (!validate(c) || c.address.ip.is_unspecified() || c.address.port == 0) {
    return unexpected(AgentError::kBadCandidate);
  }
  if (c.component != kDefaultComponent) return unexpected(AgentError::kUnsupportedComponent);
  auto it = remotes_.find(c.address);
  if (it != remotes_.end()) {
    if (it->second.signaled) {
      // A duplicate. For a relayed candidate it is news all the same: the session carried the
      // peer's reserved relay address before its allocation existed, and the peer trickles it
      // once its allocation (and its permissions for our candidates) is in place. Checks sent
      // to it before then were dropped by the TURN server; check again now rather than after
      // a retransmission timeout.
      if (c.type == CandidateType::kRelayed) {
        for (auto& p : check_list_.pairs()) {
          if (p.remote == c.address && !p.valid()) trigger(p);
        }
      }
      return {};
    }
    // RFC 8838 §11 / RFC 8445 §7.3.1.3: the signaled candidate replaces the learned
    // peer-reflexive one, and is paired with every base from now on.
    it->second = RemoteEntry{c, true, std::nullopt};
    recompute_priorities();
    // A check from the peer's relayed base looks peer-reflexive until its relayed candidate is
    // signaled: correct the pairs' kind now.
    for (auto& p : check_list_.pairs()) {
      if (p.remote != c.address) continue;
      auto l = locals_.find(p.local);
      p.relayed = c.type == CandidateType::kRelayed ||
                  (l != locals_.end() && l->second.candidate.type == CandidateType::kRelayed);
    }
  } else {
    if (remotes_.size() >= config_.max_remote_candidates) {
      return unexpected(AgentError::kTooManyCandidates);
    }
    remotes_.emplace(c.address, RemoteEntry{c, true, std::nullopt});
  }
  for (const auto& [id, local] : locals_) {
    if (is_base(local)) pair_up(local, c, now);
  }
  update_relay_reason();
  return {};
}

void Agent::remove_remote_candidate(const SocketAddress& address, TimePoint now) {
  if (remotes_.erase(address) == 0) return;
  remove_pairs_if(PairFailure::kRemoteCandidateRemoved, now,
                  [&address](const Pair& p) { return p.remote == address; });
  update_relay_reason();
}

// --- checks ----------------------------------------------------------------------------------

stun::TransactionId Agent::new_transaction_id() {
  stun::TransactionId id;
  do {
    random_.fill(id);
  } while (transactions_.contains(id));
  return id;
}

Bytes Agent::build_request(const Pair& pair, bool use_candidate,
                           const stun::TransactionId& id) const {
  const auto& local = locals_.at(pair.local);
  stun::MessageBuilder b(Method::kBinding, Class::kRequest, id);
  // RFC 8445 §7.2.2: USERNAME = "<remote ufrag>:<local ufrag>".
  b.add_string(attr::kUsername, remote_credentials_->ufrag + ":" + config_.local_credentials.ufrag);
  // RFC 8445 §7.1.1: PRIORITY is the priority a peer-reflexive candidate of this base would have.
  const auto local_pref = static_cast<std::uint16_t>((local.candidate.priority >> 8) & 0xFFFF);
  b.add_u32(attr::kPriority,
            compute_priority(kPeerReflexiveTypePreference, local_pref, local.candidate.component));
  if (use_candidate) b.add_flag(attr::kUseCandidate);  // RFC 8445 §7.1.2
  // RFC 8445 §7.1.3: the role and its tie-breaker.
  b.add_u64(role_ == Role::kControlling ? attr::kIceControlling : attr::kIceControlled,
            tie_breaker_);
  // RFC 8445 §7.2.2: short-term credential with the peer's password, and FINGERPRINT.
  const auto key = stun::IntegrityKey::short_term(remote_credentials_->pwd);
  return b.finish(&key, stun::Integrity::kSha1, true);
}

Duration Agent::check_rto() const {
  // RFC 8445 §14.3: RTO = MAX(500 ms, Ta × (Num-Waiting + Num-In-Progress)).
  std::size_t active = 0;
  for (const auto& p : check_list_.pairs()) {
    if (p.state == PairState::kWaiting || p.state == PairState::kInProgress) ++active;
  }
  return std::max(config_.check_retransmission.initial_rto,
                  config_.ta * static_cast<Duration::rep>(active));
}

stun::TransactionId Agent::send_request(Pair& pair, TxnKind kind, bool use_candidate,
                                        stun::RetransmissionSchedule schedule, TimePoint now) {
  const auto id = new_transaction_id();
  Transaction t{.pair = pair.id,
                .kind = kind,
                .request = build_request(pair, use_candidate, id),
                .local = pair.local,
                .destination = pair.remote,
                .first_sent = now,
                .schedule = schedule,
                .use_candidate = use_candidate,
                .as_controlling = role_ == Role::kControlling};
  transmit(pair.local, pair.remote, t.request);
  ++pair.requests_sent;
  ++stats_.requests_sent;
  transactions_.emplace(id, std::move(t));
  return id;
}

void Agent::send_check(Pair& pair, TimePoint now) {
  cancel_check(pair);
  pair.triggered = false;
  const bool use_candidate = role_ == Role::kControlling && pair.nominate;
  pair.nominate = false;
  auto policy = config_.check_retransmission;
  policy.initial_rto = check_rto();
  pair.check_txn = send_request(pair, TxnKind::kCheck, use_candidate,
                                stun::RetransmissionSchedule(policy, now), now);
  set_state(pair, PairState::kInProgress);
}

void Agent::send_nomination(Pair& pair, TimePoint now) {
  pair.triggered = false;
  pair.nominate = false;
  // Its RTT is known: the same RFC 8489 schedule with the 500 ms floor of RFC 8445 §14.3.
  send_request(pair, TxnKind::kNomination, true,
               stun::RetransmissionSchedule(config_.check_retransmission, now), now);
}

Duration Agent::keepalive_interval() {
  // RFC 7675 §5.1: randomized over [0.8, 1.2] × interval so checks do not synchronize.
  const auto base = config_.effective_keepalive_interval();
  const double factor = 1.0 - kKeepaliveJitter +
                        2 * kKeepaliveJitter * static_cast<double>(random_.uniform(1001)) / 1000.0;
  return std::chrono::duration_cast<Duration>(base * factor);
}

void Agent::send_keepalive(Pair& pair, TimePoint now) {
  if (pair.keepalive_txn) {
    transactions_.erase(*pair.keepalive_txn);
    pair.keepalive_txn.reset();
    ++pair.keepalive_misses;
  }
  pair.next_keepalive = now + keepalive_interval();
  if (!remote_credentials_) return;
  // The controlling agent keeps USE-CANDIDATE on the selected pair's keepalives, so a
  // controlled agent that missed the nomination (or saw a stale one) follows again.
  const bool use_candidate = role_ == Role::kControlling && selected_ == pair.id;
  // Never retransmitted: a keepalive that goes unanswered counts as a miss at the next one.
  pair.keepalive_txn =
      send_request(pair, TxnKind::kKeepalive, use_candidate, stun::RetransmissionSchedule(), now);
}

void Agent::trigger(Pair& pair) {
  if (pair.triggered) return;
  pair.triggered = true;
  triggered_.push_back(pair.id);  // at most one entry per pair: bounded by max_pairs
}

void Agent::cancel_check(Pair& pair) {
  if (!pair.check_txn) return;
  // RFC 8445 §7.3.1.4: a cancelled check is not retransmitted and its timeout is no failure,
  // but its answer still counts.
  if (auto it = transactions_.find(*pair.check_txn); it != transactions_.end()) {
    it->second.cancelled = true;
  }
  pair.check_txn.reset();
}

void Agent::drop_transactions_of(PairId id) {
  std::erase_if(transactions_, [id](const auto& kv) { return kv.second.pair == id; });
}

bool Agent::checks_possible() const {
  return remote_credentials_.has_value();
}

void Agent::run_pacer(TimePoint now) {
  if (!checks_possible() || !pacer_.ready(now)) return;
  // RFC 8445 §6.1.4.2: the triggered check queue first.
  while (!triggered_.empty()) {
    const PairId id = triggered_.front();
    triggered_.pop_front();
    Pair* p = check_list_.find(id);
    if (!p || !p->triggered) continue;
    if (p->valid()) {
      p->triggered = false;
      if (!p->nominate || role_ != Role::kControlling) continue;
      send_nomination(*p, now);
    } else {
      send_check(*p, now);
    }
    pacer_.on_sent(now);
    return;
  }
  // Then one ordinary check, round-robin over lanes: Waiting pairs and failed ones due for a
  // recheck.
  std::vector<PacerChoice> choices;
  auto& pairs = check_list_.pairs();
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    if (p.state == PairState::kWaiting || (p.state == PairState::kFailed && p.retry_at <= now)) {
      choices.push_back(PacerChoice{p.lane, p.priority, i});
    }
  }
  if (auto pick = pacer_.pick(choices)) {
    send_check(pairs[*pick], now);
    pacer_.on_sent(now);
  }
}

// --- STUN input ------------------------------------------------------------------------------

expected<void, StunDrop> Agent::handle_stun(LocalId local, const SocketAddress& from,
                                            ByteSpan datagram, TimePoint now) {
  auto fail = [this](StunDrop d) -> expected<void, StunDrop> {
    ++stats_.dropped_datagrams;
    return unexpected(d);
  };
  auto lit = locals_.find(local);
  if (lit == locals_.end() || !is_base(lit->second)) return fail(StunDrop::kUnknownLocal);
  auto m = stun::Message::parse(datagram);
  if (!m) return fail(StunDrop::kNotStun);
  if (m->method() != Method::kBinding || m->cls() == Class::kIndication) {
    return fail(StunDrop::kNotBinding);
  }
  const LocalCandidate base = lit->second;  // copy: handlers may remove candidates
  auto r = m->cls() == Class::kRequest ? on_request(base, from, *m, now)
                                       : on_response(base, from, *m, now);
  if (!r) ++stats_.dropped_datagrams;
  return r;
}

void Agent::respond_error(LocalId local, const SocketAddress& to, const stun::Message& request,
                          int code, std::string_view reason,
                          const std::vector<std::uint16_t>& unknown) {
  stun::MessageBuilder b(Method::kBinding, Class::kError, request.transaction_id());
  b.add_error_code(code, reason);
  if (!unknown.empty()) b.add_unknown_attributes(unknown);
  // RFC 8489 §9.1.3: 400/401 answers carry no MESSAGE-INTEGRITY; 487 and 420 to an
  // authenticated request do (with our password).
  const bool authenticated = code == stun::error::kRoleConflict;
  const auto key = stun::IntegrityKey::short_term(config_.local_credentials.pwd);
  transmit(local, to,
           b.finish(authenticated ? &key : nullptr,
                    authenticated ? stun::Integrity::kSha1 : stun::Integrity::kNone, true));
  ++stats_.responses_sent;
}

expected<void, StunDrop> Agent::on_request(const LocalCandidate& local, const SocketAddress& from,
                                           const stun::Message& m, TimePoint now) {
  ++stats_.requests_received;
  // RFC 8489 §6.3.1: unknown comprehension-required attributes → 420.
  if (auto unknown = m.unknown_required(); !unknown.empty()) {
    respond_error(local.id, from, m, stun::error::kUnknownAttribute, "Unknown Attribute", unknown);
    return unexpected(StunDrop::kUnknownAttributes);
  }
  // RFC 8445 §7.3 / RFC 8489 §9.1.3: short-term credentials are mandatory.
  auto username = m.string(attr::kUsername);
  if (!username || !m.has(attr::kMessageIntegrity)) {
    respond_error(local.id, from, m, stun::error::kBadRequest, "Bad Request");
    return unexpected(StunDrop::kBadRequest);
  }
  const auto colon = username->find(':');
  if (colon == std::string::npos ||
      std::string_view(*username).substr(0, colon) != config_.local_credentials.ufrag ||
      m.check_integrity(stun::IntegrityKey::short_term(config_.local_credentials.pwd)) !=
          stun::IntegrityResult::kOk) {
    respond_error(local.id, from, m, stun::error::kUnauthorized, "Unauthorized");
    return unexpected(StunDrop::kUnauthenticated);
  }
  auto priority = m.u32(attr::kPriority);
  auto controlling = m.u64(attr::kIceControlling);
  auto controlled = m.u64(attr::kIceControlled);
  if (!priority || *priority < kMinPriority || *priority > kMaxPriority ||
      (!controlling && !controlled)) {
    respond_error(local.id, from, m, stun::error::kBadRequest, "Bad Request");
    return unexpected(StunDrop::kBadRequest);
  }
  // RFC 8445 §7.3.1.1: role conflicts. The larger tie-breaker wins the controlling role.
  if (role_ == Role::kControlling && controlling) {
    if (tie_breaker_ >= *controlling) {
      ++stats_.role_conflicts;
      respond_error(local.id, from, m, stun::error::kRoleConflict, "Role Conflict");
      return unexpected(StunDrop::kRoleConflict);
    }
    switch_role(now);
  } else if (role_ == Role::kControlled && controlled) {
    if (tie_breaker_ < *controlled) {
      ++stats_.role_conflicts;
      respond_error(local.id, from, m, stun::error::kRoleConflict, "Role Conflict");
      return unexpected(StunDrop::kRoleConflict);
    }
    switch_role(now);
  }

  // RFC 8445 §7.3.1.2: the success response, XOR-MAPPED-ADDRESS = the source we saw.
  {
    stun::MessageBuilder b(Method::kBinding, Class::kSuccess, m.transaction_id());
    b.add_xor_address(attr::kXorMappedAddress, from);
    const auto key = stun::IntegrityKey::short_term(config_.local_credentials.pwd);
    transmit(local.id, from, b.finish(&key, stun::Integrity::kSha1, true));
    ++stats_.responses_sent;
  }

  // RFC 8445 §7.3.1.3: a source we do not know is a peer-reflexive remote candidate.
  auto rit = remotes_.find(from);
  if (rit == remotes_.end()) {
    if (remotes_.size() >= config_.max_remote_candidates) {
      ++stats_.pairs_refused;
      return unexpected(StunDrop::kNoPairRoom);
    }
    Candidate c;
    c.foundation = compute_foundation(CandidateType::kPeerReflexive, from.ip, std::nullopt);
    c.priority = *priority;
    c.address = from;
    c.type = CandidateType::kPeerReflexive;
    rit = remotes_.emplace(from, RemoteEntry{c, false, local.id}).first;
    emit(PeerReflexiveLearned{local.id, c});
  }
  Pair* p = check_list_.find(local.id, from);
  if (!p) {
    if (!compatible(local, rit->second.candidate) ||
        !(p = create_pair(local, rit->second.candidate))) {
      return unexpected(StunDrop::kNoPairRoom);
    }
  }
  p->inbound_check_seen = true;
  if (!p->relayed) inbound_direct_seen_ = true;
  // RFC 8445 §7.3.1.4: a triggered check unless the pair is already valid (a Failed pair is
  // checked again; an In-Progress one gets a fresh check, the old one cancelled when it goes).
  if (!p->valid()) trigger(*p);
  // Shared keepalives with a Roam peer: the controlling agent keeps every valid pair warm; the
  // controlled agent counts the controlling agent's authenticated check on a valid pair, which
  // it answers, as its proof of life (the check and answer refresh the same NAT mappings as its
  // own keepalive would) and its own keepalive waits two intervals again: 2 packets per
  // interval on the wire instead of 4 (targets.md: ≤ 1 packet/s per backup path). When those
  // checks stop arriving, its own keepalives resume and the usual misses apply; a path that only
  // works towards it is failed by the controlling agent, whose choice it follows. Only the
  // controlled side defers, so the two never wait for each other. Foreign peers get RFC 7675
  // consent unchanged.
  if (p->valid() && !config_.foreign_peer && role_ == Role::kControlled) {
    p->last_response = now;
    p->keepalive_misses = 0;
    if (p->keepalive_txn) {
      transactions_.erase(*p->keepalive_txn);
      p->keepalive_txn.reset();
    }
    // Two intervals: the controlling agent's next check comes within 1.2 of them (jitter).
    p->next_keepalive = now + 2 * config_.effective_keepalive_interval();
    if (std::exchange(p->suspect, false)) reselect(now);
  }
  // RFC 8445 §7.3.1.5: nomination of the controlled agent.
  if (role_ == Role::kControlled && m.has(attr::kUseCandidate)) {
    if (p->valid()) {
      p->nominated = true;
      if (selected_ != p->id) select(p->id, SelectionReason::kNominated, now);
    } else {
      p->peer_nominated = true;
    }
  }
  update_relay_reason();
  return {};
}

expected<void, StunDrop> Agent::on_response(const LocalCandidate& local, const SocketAddress& from,
                                            const stun::Message& m, TimePoint now) {
  ++stats_.responses_received;
  auto it = transactions_.find(m.transaction_id());
  if (it == transactions_.end()) return unexpected(StunDrop::kUnknownTransaction);
  // RFC 8489 §9.1.4: a response that fails integrity is discarded (the transaction goes on).
  // Our 487 is authenticated; an unauthenticated error is ignored like any forgery.
  if (!remote_credentials_ || m.check_integrity(stun::IntegrityKey::short_term(
                                  remote_credentials_->pwd)) != stun::IntegrityResult::kOk) {
    return unexpected(StunDrop::kUnauthenticated);
  }
  const Transaction t = std::move(it->second);
  const auto txid = it->first;
  transactions_.erase(it);
  Pair* p = check_list_.find(t.pair);
  if (!p) return {};
  if (p->check_txn == txid) p->check_txn.reset();
  if (p->keepalive_txn == txid) p->keepalive_txn.reset();
  // RFC 8445 §7.2.5.2.1: the response must come from where the request went, to the base
  // it left from.
  if (from != t.destination || local.id != t.local) {
    fail_pair(p->id, PairFailure::kNonSymmetric, now);
    return {};
  }
  if (m.cls() == Class::kError) {
    const auto ec = m.error_code();
    const int code = ec ? ec->code : 0;
    if (code == stun::error::kRoleConflict) {
      // RFC 8445 §7.2.5.1: switch role (unless a conflict already switched it) and retry.
      if ((role_ == Role::kControlling) == t.as_controlling) switch_role(now);
      if (Pair* again = check_list_.find(t.pair)) {
        if (t.kind == TxnKind::kCheck && !again->valid()) trigger(*again);
      }
      return {};
    }
    fail_pair(p->id, PairFailure::kErrorResponse, now, code);
    return {};
  }
  on_check_success(*p, t, m, now);
  return {};
}

void Agent::on_check_success(Pair& pair, const Transaction& t, const stun::Message& m,
                             TimePoint now) {
  if (auto mapped = m.xor_address(attr::kXorMappedAddress)) pair.mapped = *mapped;
  // Karn's rule: a retransmitted request's answer does not say which copy it answers.
  if (t.schedule.transmissions() <= 1) pair.rtt.add_sample(now - t.first_sent);
  pair.last_response = now;
  pair.keepalive_misses = 0;
  if (pair.suspect) {
    pair.suspect = false;  // it answered: it did not share the failed pair's fate
    pair.data_expected_since = kNever;
  }
  const PairId id = pair.id;
  if (!pair.valid()) {
    if (t.kind != TxnKind::kCheck) return;  // a late keepalive/nomination of a failed pair
    mark_valid(pair, now);
  }
  if (t.use_candidate && role_ == Role::kControlling) pair.nominated = true;
  Pair* p = check_list_.find(id);
  if (p && role_ == Role::kControlled && p->peer_nominated) {
    p->peer_nominated = false;
    p->nominated = true;
    if (selected_ != id) select(id, SelectionReason::kNominated, now);
  }
  reselect(now);
}

void Agent::switch_role(TimePoint now) {
  role_ = role_ == Role::kControlling ? Role::kControlled : Role::kControlling;
  ++stats_.role_conflicts;
  recompute_priorities();  // RFC 8445 §7.2.5.1: pair priorities depend on the role
  for (auto& p : check_list_.pairs()) {
    p.nominate = false;
    p.nominated = false;
    p.peer_nominated = false;
  }
  emit(RoleChanged{role_});
  if (role_ == Role::kControlling) reselect(now, SelectionReason::kRoleChanged);
}

// --- pair life -------------------------------------------------------------------------------

void Agent::set_state(Pair& pair, PairState state) {
  if (pair.state == state) return;
  pair.state = state;
  emit(PairStateChanged{info(pair), state,
                        state == PairState::kFailed ? pair.failure : PairFailure::kNone,
                        state == PairState::kFailed ? pair.error_code : 0, false});
}

void Agent::mark_valid(Pair& pair, TimePoint now) {
  cancel_check(pair);  // an older cancelled check answered: the newer one must not fail it
  pair.failure = PairFailure::kNone;
  pair.error_code = 0;
  pair.retry_at = kNever;
  pair.retry_backoff = Duration::zero();
  pair.keepalive_misses = 0;
  pair.last_response = now;
  pair.next_keepalive = now + keepalive_interval();
  pair.data_expected_since = kNever;
  set_state(pair, PairState::kSucceeded);
}

void Agent::fail_pair(PairId id, PairFailure reason, TimePoint now, int error_code) {
  Pair* p = check_list_.find(id);
  if (!p) return;
  drop_transactions_of(id);
  p->check_txn.reset();
  p->keepalive_txn.reset();
  p->nominate = p->nominated = p->peer_nominated = false;
  p->data_expected_since = kNever;
  p->next_keepalive = kNever;
  p->failure = reason;
  p->error_code = error_code;
  ++p->failures;
  p->retry_backoff = p->retry_backoff == Duration::zero()
                         ? config_.recheck_initial
                         : std::min(p->retry_backoff * 2, config_.recheck_max);
  p->retry_at = now + p->retry_backoff;
  const bool was_valid = p->valid();
  set_state(*p, PairState::kFailed);
  // Both mean the peer stopped answering consent checks on a pair we may be sending on.
  if (was_valid &&
      (reason == PairFailure::kConsentExpired || reason == PairFailure::kKeepaliveTimeout)) {
    emit(ConsentLost{info(*p)});
  }
  p->suspect = false;
  if (selected_ == id) {
    if (reason == PairFailure::kDataTimeout) suspect_fate_sharers(*p, now);
    reselect(now, SelectionReason::kSelectedFailed);
  } else {
    update_relay_reason();
  }
}

void Agent::fail_selected(PairFailure reason, TimePoint now) {
  if (!selected_) return;
  const PairId id = *selected_;
  if (Pair* p = check_list_.find(id)) {
    // Like a data timeout: whatever killed it may have taken its fate sharers too.
    suspect_fate_sharers(*p, now);
  }
  fail_pair(id, reason, now);
}

// The selected pair's data stopped while its keepalives may still have looked fine seconds ago.
// Its likeliest cause (a dead Wi-Fi link or backhaul, the peer's dead uplink) takes every pair
// on the same local interface or to the same remote address with it: falling over to them one
// by one would cost one liveness timeout each. They are probed now, with the liveness timeout
// armed, and passed over by the selection until they answer.
void Agent::suspect_fate_sharers(const Pair& failed, TimePoint now) {
  std::vector<PairId> probes;
  for (auto& q : check_list_.pairs()) {
    if (q.id == failed.id || !q.valid()) continue;
    if (q.lane.interface_index == failed.lane.interface_index || q.remote == failed.remote) {
      q.suspect = true;
      probes.push_back(q.id);
    }
  }
  for (PairId id : probes) {
    Pair* q = check_list_.find(id);
    if (!q) continue;
    send_keepalive(*q, now);
    if (q->data_expected_since == kNever) q->data_expected_since = now;
  }
}

// The selected pair's incoming data stopped for a liveness timeout. This side may expect
// nothing (a receiver only acknowledges), so no data timeout fires here; but its own NAT may
// have rebound, leaving every pair the peer knows dead while the peer checks the old mapping
// (and its port-restricted NAT would drop a direct check from the new one). One check on every
// valid pair now, from the new mapping, reaches the peer at least through its relay, where it
// learns the mapping (a peer-reflexive candidate, RFC 8445 §7.3.1.3) and moves at once instead
// of at the next keepalive. Once per silence.
void Agent::probe_silent_selected(TimePoint now) {
  if (!selected_) return;
  Pair* p = check_list_.find(*selected_);
  if (!p || !p->valid() || p->last_data == kNever || p->silence_probed) return;
  if (now < p->last_data + *liveness_timeout_of(p->id)) return;
  p->silence_probed = true;
  for (auto& q : check_list_.pairs()) {
    if (q.valid() && !q.keepalive_txn) send_keepalive(q, now);
  }
}

// --- timers ----------------------------------------------------------------------------------

void Agent::handle_timeout(TimePoint now) {
  // Retransmissions and transaction timeouts (RFC 8489 §6.2.1).
  std::vector<PairId> timed_out;
  for (auto it = transactions_.begin(); it != transactions_.end();) {
    Transaction& t = it->second;
    if (t.kind == TxnKind::kKeepalive || t.schedule.deadline() > now) {
      ++it;
      continue;
    }
    if (t.schedule.on_deadline(now)) {
      if (!t.cancelled) {
        transmit(t.local, t.destination, t.request);
        ++stats_.requests_sent;
        if (Pair* p = check_list_.find(t.pair)) ++p->requests_sent;
      }
      ++it;
      continue;
    }
    if (!t.cancelled) {
      Pair* p = check_list_.find(t.pair);
      if (p && (t.kind == TxnKind::kNomination || p->check_txn == it->first)) {
        timed_out.push_back(t.pair);
      }
    }
    it = transactions_.erase(it);
  }
  for (PairId id : timed_out)
    fail_pair(id, PairFailure::kTimeout, now);

  // Consent, data liveness and keepalives of valid pairs.
  std::vector<std::pair<PairId, PairFailure>> failing;
  std::vector<PairId> keepalives;
  for (const auto& p : check_list_.pairs()) {
    if (!p.valid()) continue;
    if (now >= p.last_response + config_.consent_timeout) {
      failing.emplace_back(p.id, PairFailure::kConsentExpired);
    } else if (p.data_expected_since != kNever &&
               now >= p.data_expected_since + *liveness_timeout_of(p.id)) {
      failing.emplace_back(p.id, PairFailure::kDataTimeout);
    } else if (now >= p.next_keepalive) {
      if (p.keepalive_txn && p.keepalive_misses + 1 >= config_.keepalive_misses) {
        failing.emplace_back(p.id, PairFailure::kKeepaliveTimeout);
      } else {
        keepalives.push_back(p.id);
      }
    }
  }
  for (PairId id : keepalives) {
    if (Pair* p = check_list_.find(id)) send_keepalive(*p, now);
  }
  for (const auto& [id, reason] : failing)
    fail_pair(id, reason, now);
  probe_silent_selected(now);

  run_pacer(now);
}

TimePoint Agent::next_deadline() const {
  TimePoint d = kNever;
  for (const auto& [id, t] : transactions_) {
    if (t.kind != TxnKind::kKeepalive) d = std::min(d, t.schedule.deadline());
  }
  bool work_now = false;
  TimePoint earliest_recheck = kNever;
  for (const auto& p : check_list_.pairs()) {
    if (p.valid()) {
      d = std::min({d, p.next_keepalive, p.last_response + config_.consent_timeout});
      if (p.data_expected_since != kNever) {
        d = std::min(d, p.data_expected_since + *liveness_timeout_of(p.id));
      }
      if (selected_ == p.id && p.last_data != kNever && !p.silence_probed) {
        d = std::min(d, p.last_data + *liveness_timeout_of(p.id));
      }
    } else if (p.state == PairState::kWaiting) {
      work_now = true;
    } else if (p.state == PairState::kFailed) {
      earliest_recheck = std::min(earliest_recheck, p.retry_at);
    }
    if (p.triggered) work_now = true;
  }
  if (checks_possible()) {
    if (work_now) d = std::min(d, pacer_.next_slot());
    if (earliest_recheck != kNever) d = std::min(d, std::max(earliest_recheck, pacer_.next_slot()));
  }
  return d;
}

// --- liveness from data ----------------------------------------------------------------------

void Agent::on_data_received(LocalId local, const SocketAddress& from, TimePoint now) {
  Pair* p = check_list_.find(local, from);
  if (!p) return;
  p->last_data = now;
  p->silence_probed = false;
  p->data_expected_since = kNever;
  if (p->valid()) {
    p->keepalive_misses = 0;
    if (std::exchange(p->suspect, false)) reselect(now);
  } else if (p->state == PairState::kFailed) {
    trigger(*p);  // the path carries data again: confirm it with a check right away
  }
}

void Agent::on_data_expected(LocalId local, const SocketAddress& to, TimePoint now) {
  Pair* p = check_list_.find(local, to);
  if (!p || !p->valid() || p->data_expected_since != kNever) return;
  p->data_expected_since = now;
}

std::optional<Duration> Agent::liveness_timeout_of(PairId id) const {
  const Pair* p = check_list_.find(id);
  if (!p) return std::nullopt;
  return liveness_timeout(p->rtt, config_.max_ack_delay, config_.min_liveness_timeout,
                          config_.max_liveness_timeout, config_.check_retransmission.initial_rto);
}

// --- selection -------------------------------------------------------------------------------

void Agent::reselect(TimePoint now, std::optional<SelectionReason> hint) {
  const PolicyConfig policy{config_.prefer_unmetered, config_.hysteresis_min,
                            config_.hysteresis_fraction};
  std::vector<PolicyView> views;
  bool any_unsuspected = false;
  for (const auto& p : check_list_.pairs()) {
    if (p.valid() && !p.suspect) any_unsuspected = true;
  }
  for (const auto& p : check_list_.pairs()) {
    if (!p.valid() || (p.suspect && any_unsuspected)) continue;
    views.push_back({p.id, p.relayed, p.metered, p.rtt.smoothed(), p.priority});
  }
  const Pair* current = selected_ ? check_list_.find(*selected_) : nullptr;
  const bool current_ok = current && current->valid();
  const auto best = best_pair(views, policy);
  if (!best) {
    if (selected_) select(std::nullopt, SelectionReason::kNoValidPair, now);
    update_relay_reason();
    return;
  }
  if (!current_ok) {
    // The controlled agent only picks on its own when its selected pair is gone (a stand-in
    // until the next nomination); before any nomination it waits.
    if (role_ == Role::kControlled && !selected_) {
      update_relay_reason();
      return;
    }
    select(views[*best].id,
           selected_ ? hint.value_or(SelectionReason::kSelectedFailed)
                     : hint.value_or(SelectionReason::kFirstValid),
           now);
    return;
  }
  if (role_ == Role::kControlling) {
    const PolicyView cur{current->id, current->relayed, current->metered, current->rtt.smoothed(),
                         current->priority};
    if (auto reason = should_switch(cur, views[*best], policy)) {
      select(views[*best].id, *reason, now);
      return;
    }
    if (hint == SelectionReason::kRoleChanged) {
      // Now controlling: nominate what we use, so the peer follows us.
      if (Pair* p = check_list_.find(current->id)) {
        p->nominate = true;
        trigger(*p);
      }
    }
  }
  update_relay_reason();
}

void Agent::select(std::optional<PairId> id, SelectionReason reason, TimePoint) {
  // Data expected on the pair we leave will arrive on the new one: its timer must not run on.
  if (selected_ && selected_ != id) {
    if (Pair* old = check_list_.find(*selected_)) old->data_expected_since = kNever;
  }
  selected_ = id;
  SelectedPairChanged e;
  e.reason = reason;
  if (id) {
    Pair* p = check_list_.find(*id);
    if (role_ == Role::kControlling) {
      // RFC 8445 §8.1.1: nominate with a USE-CANDIDATE check, as the next triggered check.
      p->nominate = true;
      trigger(*p);
    }
    e.pair = info(*p);
    e.kind = p->relayed ? PathKind::kRelay : PathKind::kDirect;
  }
  relay_reason_ = compute_relay_reason();
  e.relay_reason = relay_reason_;
  emit(std::move(e));
}

void Agent::update_relay_reason() {
  const auto r = compute_relay_reason();
  if (r == relay_reason_) return;
  relay_reason_ = r;
  emit(RelayReasonChanged{r});
}

RelayReason Agent::compute_relay_reason() const {
  DirectSummary s;
  const Pair* sel = selected_ ? check_list_.find(*selected_) : nullptr;
  s.selected_direct = sel && !sel->relayed;
  s.any_pair = check_list_.size() > 0;
  s.relay_only_policy = config_.path_policy == PathPolicy::kRelayOnly;
  s.inbound_direct_seen = inbound_direct_seen_;
  bool local_v4 = false, local_v6 = false, remote_v4 = false, remote_v6 = false;
  for (const auto& [id, c] : locals_) {
    if (c.candidate.type != CandidateType::kHost) continue;
    s.local_has_direct = true;
    (c.candidate.address.ip.is_v6() ? local_v6 : local_v4) = true;
  }
  std::map<SocketAddress, std::vector<SocketAddress>> remote_mappings;  // by related address
  for (const auto& [address, r] : remotes_) {
    if (r.candidate.type == CandidateType::kRelayed) continue;
    s.remote_has_direct = true;
    (address.ip.is_v6() ? remote_v6 : remote_v4) = true;
    if (r.candidate.type == CandidateType::kServerReflexive && r.candidate.related) {
      remote_mappings[*r.candidate.related].push_back(address);
    }
  }
  s.local_has_ipv6 = local_v6;
  s.remote_has_ipv6 = remote_v6;
  s.common_family = (local_v4 && remote_v4) || (local_v6 && remote_v6);
  // The peer's NAT maps per destination when two STUN servers saw two mappings of one base,
  // or when a check came from a port of a server-reflexive address's IP that is not that
  // address (the mapping towards us differs from the one towards the STUN server).
  for (const auto& [related, mapped] : remote_mappings) {
    if (mapped.size() > 1) s.peer_symmetric = true;
  }
  for (const auto& [address, r] : remotes_) {
    if (r.signaled) continue;
    for (const auto& [other, o] : remotes_) {
      if (o.candidate.type == CandidateType::kServerReflexive && other.ip == address.ip &&
          other.port != address.port) {
        s.peer_symmetric = true;
      }
    }
  }
  // Our NAT maps per destination when two mappings of one host base differ (two STUN servers,
  // or the XOR-MAPPED-ADDRESS our direct checks came back with).
  std::map<LocalId, std::vector<SocketAddress>> local_mappings;
  for (const auto& [id, c] : locals_) {
    if (c.candidate.type == CandidateType::kServerReflexive && c.base) {
      local_mappings[*c.base].push_back(c.candidate.address);
    }
  }
  s.direct_all_timeouts = true;
  bool unmetered_direct_valid = false;
  for (const auto& p : check_list_.pairs()) {
    if (p.relayed) continue;
    if (p.mapped && !p.mapped->ip.is_private()) local_mappings[p.local].push_back(*p.mapped);
    if (p.valid()) {
      s.direct_valid = true;
      if (!p.metered || !config_.prefer_unmetered) unmetered_direct_valid = true;
    }
    if (p.failures == 0 && !p.valid()) s.direct_unsettled = true;
    if (p.failures > 0 && !is_timeout_failure(p.failure)) s.direct_all_timeouts = false;
    if (p.failures > 0 && is_timeout_failure(p.failure) && p.remote.ip.is_v6()) {
      auto l = locals_.find(p.local);
      auto r = remotes_.find(p.remote);
      s.nat_free_direct_timed_out |= l != locals_.end() && r != remotes_.end() &&
                                     l->second.candidate.type == CandidateType::kHost &&
                                     r->second.candidate.type == CandidateType::kHost &&
                                     !p.remote.ip.is_link_local();
    }
  }
  s.direct_valid_only_metered = s.direct_valid && !unmetered_direct_valid;
  for (auto& [id, mapped] : local_mappings) {
    std::sort(mapped.begin(), mapped.end());
    mapped.erase(std::unique(mapped.begin(), mapped.end()), mapped.end());
    if (mapped.size() > 1) s.local_symmetric = true;
  }
  return diagnose(s);
}

// --- output ----------------------------------------------------------------------------------

PairInfo Agent::info(const Pair& p) const {
  PairInfo i;
  i.id = p.id;
  i.local = p.local;
  if (auto l = locals_.find(p.local); l != locals_.end()) {
    i.local_type = l->second.candidate.type;
    i.local_address = l->second.candidate.address;
    i.interface_index = l->second.interface_index;
  }
  i.remote = p.remote;
  if (auto r = remotes_.find(p.remote); r != remotes_.end())
    i.remote_type = r->second.candidate.type;
  i.metered = p.metered;
  i.kind = p.relayed ? PathKind::kRelay : PathKind::kDirect;
  i.priority = p.priority;
  i.rtt = p.rtt.smoothed();
  return i;
}

void Agent::emit(Event e) {
  if (events_.size() >= config_.max_events) {
    events_.pop_front();  // the newest state matters most
    ++stats_.dropped_events;
  }
  events_.push_back(std::move(e));
}

void Agent::transmit(LocalId local, const SocketAddress& to, Bytes data) {
  if (data.empty()) return;
  if (transmits_.size() >= config_.max_transmits) {
    ++stats_.dropped_transmits;
    return;
  }
  transmits_.push_back(Transmit{local, to, std::move(data)});
}

std::optional<Transmit> Agent::poll_transmit() {
  if (transmits_.empty()) return std::nullopt;
  auto t = std::move(transmits_.front());
  transmits_.pop_front();
  return t;
}

std::optional<Event> Agent::poll_event() {
  if (events_.empty()) return std::nullopt;
  auto e = std::move(events_.front());
  events_.pop_front();
  return e;
}

// --- introspection ---------------------------------------------------------------------------

std::optional<PairInfo> Agent::selected_pair() const {
  if (!selected_) return std::nullopt;
  const Pair* p = check_list_.find(*selected_);
  if (!p) return std::nullopt;
  return info(*p);
}

std::vector<PairInfo> Agent::pairs() const {
  std::vector<PairInfo> out;
  out.reserve(check_list_.size());
  for (const auto& p : check_list_.pairs())
    out.push_back(info(p));
  return out;
}

std::optional<PairState> Agent::pair_state(PairId id) const {
  const Pair* p = check_list_.find(id);
  if (!p) return std::nullopt;
  return p->state;
}

std::optional<PairInfo> Agent::pair(PairId id) const {
  const Pair* p = check_list_.find(id);
  if (!p) return std::nullopt;
  return info(*p);
}

}  // namespace roam::ice
