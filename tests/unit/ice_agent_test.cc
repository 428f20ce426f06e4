// Unit tests of the continuous ICE agent's parts: the pacer, the selection policy and "still
// relayed" diagnosis, and the agent's STUN behaviour on the wire (check format, answers,
// authentication, peer-reflexive learning, role conflicts, removal, bounds, consent), with two
// agents wired back to back under virtual time. End-to-end behaviour over NATs is in
// ice_agent_sim_test.cc and ice_agent_random_test.cc.
#include <functional>

#include <gtest/gtest.h>

#include "common/ice/agent.h"
#include "common/ice/pacer.h"
#include "common/ice/selection_policy.h"
#include "tests/support/ice_sim.h"

namespace roam::ice {
namespace {

using sim::ip;
namespace attr = stun::attr;

const TimePoint kT0 = TimePoint(seconds(1000));

// --- pacer -----------------------------------------------------------------------------------

TEST(IcePacer, RoundRobinOverLanesThenPriorityWithinLane) {
  Pacer pacer(milliseconds(10));
  const Lane eth4{1, AddressFamily::kIPv4, false};
  const Lane eth6{1, AddressFamily::kIPv6, false};
  const Lane wifi4{2, AddressFamily::kIPv4, false};
  // Every pair of the top interface has a higher priority: a priority order would send all of
  // them first.
  std::vector<PacerChoice> choices = {
      {eth4, 900, 0}, {eth4, 800, 1}, {eth6, 950, 2}, {wifi4, 100, 3}, {wifi4, 200, 4}};
  std::vector<std::size_t> order;
  for (int i = 0; i < 5; ++i) {
    auto pick = pacer.pick(choices);
    ASSERT_TRUE(pick);
    order.push_back(*pick);
    std::erase_if(choices, [&](const PacerChoice& c) { return c.index == *pick; });
  }
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 2, 4, 1, 3}));
  EXPECT_FALSE(pacer.pick(choices));
}

TEST(IcePacer, OneCheckPerTa) {
  Pacer pacer(milliseconds(10));
  EXPECT_TRUE(pacer.ready(kT0));
  pacer.on_sent(kT0);
  EXPECT_FALSE(pacer.ready(kT0 + milliseconds(9)));
  EXPECT_TRUE(pacer.ready(kT0 + milliseconds(10)));
  EXPECT_EQ(pacer.next_slot(), kT0 + milliseconds(10));
}

// --- selection policy ------------------------------------------------------------------------

TEST(IceSelectionPolicy, UnmeteredThenDirectThenRtt) {
  PolicyConfig c;
  const PolicyView relay_wifi{1, true, false, milliseconds(80), 10};
  const PolicyView direct_cell{2, false, true, milliseconds(30), 20};
  const PolicyView direct_wifi{3, false, false, milliseconds(60), 5};
  const PolicyView direct_wifi_fast{4, false, false, milliseconds(20), 1};
  std::vector<PolicyView> all = {relay_wifi, direct_cell, direct_wifi, direct_wifi_fast};
  EXPECT_EQ(*best_pair(all, c), 3u);
  EXPECT_EQ(*best_pair(std::vector<PolicyView>{relay_wifi, direct_cell}, c), 0u);
  c.prefer_unmetered = false;
  EXPECT_EQ(*best_pair(std::vector<PolicyView>{relay_wifi, direct_cell}, c), 1u);
}

TEST(IceSelectionPolicy, HysteresisKeepsTheCurrentPairOnSmallGains) {
  PolicyConfig c;  // max(10 ms, 20 %)
  const PolicyView cur{1, false, false, milliseconds(100), 1};
  EXPECT_FALSE(should_switch(cur, {2, false, false, milliseconds(85), 1}, c));
  EXPECT_EQ(should_switch(cur, {2, false, false, milliseconds(79), 1}, c),
            SelectionReason::kLowerRtt);
  const PolicyView small{1, false, false, milliseconds(20), 1};
  EXPECT_FALSE(should_switch(small, {2, false, false, milliseconds(11), 1}, c));
  EXPECT_EQ(should_switch(small, {2, false, false, milliseconds(9), 1}, c),
            SelectionReason::kLowerRtt);
  // A better class switches whatever the RTT.
  const PolicyView relay{1, true, false, milliseconds(10), 1};
  EXPECT_EQ(should_switch(relay, {2, false, false, milliseconds(300), 1}, c),
            SelectionReason::kBetterClass);
  EXPECT_FALSE(should_switch({2, false, false, milliseconds(300), 1}, relay, c));
}

TEST(IceSelectionPolicy, DiagnosisOrder) {
  DirectSummary s;
  s.selected_direct = true;
  EXPECT_EQ(diagnose(s), RelayReason::kNotRelayed);
  s = {};
  EXPECT_EQ(diagnose(s), RelayReason::kNoLocalDirectCandidates);
  s.local_has_direct = true;
  EXPECT_EQ(diagnose(s), RelayReason::kNoRemoteDirectCandidates);
  s.remote_has_direct = true;
  EXPECT_EQ(diagnose(s), RelayReason::kNoCommonAddressFamily);
  s.common_family = true;
  s.any_pair = true;
  s.direct_unsettled = true;
  EXPECT_EQ(diagnose(s), RelayReason::kCheckingDirect);
  s.direct_unsettled = false;
  s.direct_all_timeouts = true;
  EXPECT_EQ(diagnose(s), RelayReason::kDirectBlocked);
  s.remote_has_ipv6 = true;
  EXPECT_EQ(diagnose(s), RelayReason::kDirectBlockedNoIpv6);
  s.inbound_direct_seen = true;
  EXPECT_EQ(diagnose(s), RelayReason::kDirectFailed);
  s.peer_symmetric = true;
  EXPECT_EQ(diagnose(s), RelayReason::kPeerSymmetricNat);
  s.local_symmetric = true;
  EXPECT_EQ(diagnose(s), RelayReason::kLocalSymmetricNat);
  // A NAT-free (IPv6 host↔host) pair that timed out as well, with nothing ever heard directly:
  // the block explains everything, a symmetric NAT cannot explain that pair.
  s.nat_free_direct_timed_out = true;
  EXPECT_EQ(diagnose(s), RelayReason::kLocalSymmetricNat);  // something was heard directly
  s.inbound_direct_seen = false;
  EXPECT_EQ(diagnose(s), RelayReason::kDirectBlocked);
  s.inbound_direct_seen = true;
  s.direct_valid = s.direct_valid_only_metered = true;
  EXPECT_EQ(diagnose(s), RelayReason::kMeteredDirectAvoided);
  s.relay_only_policy = true;
  EXPECT_EQ(diagnose(s), RelayReason::kPolicy);
  for (auto r : {RelayReason::kDirectBlocked, RelayReason::kPeerSymmetricNat}) {
    EXPECT_FALSE(describe(r).empty());
    EXPECT_FALSE(to_string(r).empty());
  }
}

TEST(IceRtt, SmoothingAndLivenessTimeout) {
  RttEstimator rtt;
  EXPECT_EQ(
      liveness_timeout(rtt, milliseconds(25), milliseconds(50), seconds(3), milliseconds(500)),
      milliseconds(1525));  // 3 × fallback + ack delay
  rtt.add_sample(milliseconds(40));
  EXPECT_EQ(*rtt.smoothed(), milliseconds(40));
  EXPECT_EQ(rtt.variation(), milliseconds(20));
  // max(120, 40 + 80) + 25
  EXPECT_EQ(liveness_timeout(rtt, milliseconds(25), milliseconds(50), seconds(3), {}),
            milliseconds(145));
  for (int i = 0; i < 50; ++i)
    rtt.add_sample(milliseconds(40));
  EXPECT_LT(liveness_timeout(rtt, milliseconds(25), milliseconds(50), seconds(3), {}),
            milliseconds(150));
  EXPECT_GE(liveness_timeout(rtt, milliseconds(25), milliseconds(50), seconds(3), {}),
            milliseconds(145));
  RttEstimator tiny;
  tiny.add_sample(milliseconds(1));
  EXPECT_EQ(liveness_timeout(tiny, {}, milliseconds(50), seconds(3), {}), milliseconds(50));
}

// --- the agent on the wire -------------------------------------------------------------------

const SocketAddress kHostA = *SocketAddress::parse("192.0.2.10:5000");
const SocketAddress kHostB = *SocketAddress::parse("198.51.100.20:6000");

LocalCandidate host(LocalId id, const SocketAddress& a, std::uint32_t iface = 1) {
  return {id,   sim::make_candidate(CandidateType::kHost, a, 0, a.ip), std::nullopt, "eth0", iface,
          false};
}

AgentConfig config(Role role, std::uint64_t seed, std::uint64_t tie_breaker) {
  auto c = sim::agent_config(role, seed);
  c.tie_breaker = tie_breaker;
  return c;
}

// Two agents with one host candidate each, wired back to back (fixed one-way delay).
AgentConfig tweaked(AgentConfig c, const std::function<void(AgentConfig&)>& tweak) {
  if (tweak) tweak(c);
  return c;
}

struct Pair2 {
  Pair2(Role ra, Role rb, std::uint64_t tba = 1, std::uint64_t tbb = 2,
        const std::function<void(AgentConfig&)>& tweak_a = {})
      : ra_(11),
        rb_(12),
        a(tweaked(config(ra, 1, tba), tweak_a), ra_),
        b(config(rb, 2, tbb), rb_) {}
  SeededRandom ra_, rb_;
  Agent a, b;
  TimePoint now = kT0;
  Duration delay = milliseconds(10);
  bool drop_a_to_b = false;

  void setup() {
    ASSERT_TRUE(a.add_local_candidate(host(1, kHostA), now));
    ASSERT_TRUE(b.add_local_candidate(host(1, kHostB), now));
    ASSERT_TRUE(a.set_remote_credentials(b.config().local_credentials));
    ASSERT_TRUE(b.set_remote_credentials(a.config().local_credentials));
    ASSERT_TRUE(a.add_remote_candidate(
        sim::make_candidate(CandidateType::kHost, kHostB, 0, kHostB.ip), now));
    ASSERT_TRUE(b.add_remote_candidate(
        sim::make_candidate(CandidateType::kHost, kHostA, 0, kHostA.ip), now));
  }

  // Runs both agents for `d`, delivering each datagram after `delay`.
  void run(Duration d) {
    struct InFlight {
      TimePoint at;
      bool to_b;
      SocketAddress from;
      Bytes data;
    };
    std::vector<InFlight> wire;
    const TimePoint end = now + d;
    while (true) {
      while (auto t = a.poll_transmit()) {
        if (!drop_a_to_b) wire.push_back({now + delay, true, kHostA, std::move(t->data)});
      }
      while (auto t = b.poll_transmit())
        wire.push_back({now + delay, false, kHostB, std::move(t->data)});
      TimePoint next = std::min(a.next_deadline(), b.next_deadline());
      for (const auto& w : wire)
        next = std::min(next, w.at);
      if (next > end) break;
      now = std::max(now, next);
      for (auto it = wire.begin(); it != wire.end();) {
        if (it->at > now) {
          ++it;
          continue;
        }
        (void)(it->to_b ? b : a).handle_stun(1, it->from, it->data, now);
        it = wire.erase(it);
      }
      if (a.next_deadline() <= now) a.handle_timeout(now);
      if (b.next_deadline() <= now) b.handle_timeout(now);
    }
    now = end;
  }
};

TEST(IceAgent, CheckCarriesIceAttributesAndShortTermIntegrity) {
  Pair2 w(Role::kControlling, Role::kControlled, 0x1111);
  w.setup();
  EXPECT_LE(w.a.next_deadline(), w.now);
  w.a.handle_timeout(w.now);
  auto t = w.a.poll_transmit();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->local, 1u);
  EXPECT_EQ(t->destination, kHostB);
  auto m = stun::Message::parse(t->data);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), stun::Method::kBinding);
  EXPECT_EQ(m->cls(), stun::Class::kRequest);
  EXPECT_TRUE(m->has_fingerprint());
  const auto& ca = w.a.config().local_credentials;
  const auto& cb = w.b.config().local_credentials;
  EXPECT_EQ(*m->string(attr::kUsername), cb.ufrag + ":" + ca.ufrag);  // RFC 8445 §7.2.2
  EXPECT_EQ(m->check_integrity(stun::IntegrityKey::short_term(cb.pwd)), stun::IntegrityResult::kOk);
  EXPECT_EQ(*m->u64(attr::kIceControlling), 0x1111u);
  EXPECT_FALSE(m->has(attr::kIceControlled));
  // PRIORITY: the peer-reflexive type preference with the base's local preference (§7.1.1).
  EXPECT_EQ(*m->u32(attr::kPriority) >> 24, kPeerReflexiveTypePreference);
  EXPECT_FALSE(m->has(attr::kUseCandidate));
  // Only one check per Ta.
  EXPECT_FALSE(w.a.poll_transmit());
  // Nothing else waits: the next deadline is the retransmission (RFC 8445 §14.3: 500 ms).
  EXPECT_EQ(w.a.next_deadline(), w.now + milliseconds(500));
}

TEST(IceAgent, RelayCandidateSignaledAgainIsCheckedAgainAtOnce) {
  // The session hands out the peer's reserved relay address before its allocation exists; a
  // check sent to it then is dropped by the TURN server. The peer trickles the same candidate
  // once allocated: that re-checks the pair now, not at the 500 ms retransmission.
  Pair2 w(Role::kControlling, Role::kControlled);
  ASSERT_TRUE(w.a.add_local_candidate(host(1, kHostA), w.now));
  ASSERT_TRUE(w.a.set_remote_credentials(w.b.config().local_credentials));
  const SocketAddress relay = *SocketAddress::parse("203.0.113.10:50001");
  const Candidate r = sim::make_candidate(CandidateType::kRelayed, relay, 0, relay.ip);
  ASSERT_TRUE(w.a.add_remote_candidate(r, w.now));
  w.a.handle_timeout(w.now);
  auto first = w.a.poll_transmit();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->destination, relay);
  EXPECT_EQ(w.a.next_deadline(), w.now + milliseconds(500));
  w.now += milliseconds(60);
  ASSERT_TRUE(w.a.add_remote_candidate(r, w.now));  // the duplicate: "allocated now"
  EXPECT_LE(w.a.next_deadline(), w.now);
  w.a.handle_timeout(w.now);
  auto again = w.a.poll_transmit();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->destination, relay);
  EXPECT_EQ(w.a.pairs().size(), 1u);
}

TEST(IceAgent, PairBecomesValidNominatedAndSelectedOnBothSides) {
  Pair2 w(Role::kControlling, Role::kControlled);
  w.setup();
  w.run(milliseconds(200));
  auto sa = w.a.selected_pair();
  auto sb = w.b.selected_pair();
  ASSERT_TRUE(sa);
  ASSERT_TRUE(sb);
  EXPECT_EQ(sa->remote, kHostB);
  EXPECT_EQ(sb->remote, kHostA);
  EXPECT_EQ(sa->kind, PathKind::kDirect);
  ASSERT_TRUE(sa->rtt);
  EXPECT_EQ(*sa->rtt, milliseconds(20));
  // The controlled side selected because of the nomination.
  bool nominated = false;
  while (auto e = w.b.poll_event()) {
    if (auto* s = std::get_if<SelectedPairChanged>(&*e)) {
      nominated |= s->reason == SelectionReason::kNominated;
    }
  }
  EXPECT_TRUE(nominated);
}

TEST(IceAgent, AnswersChecksAndLearnsPeerReflexiveCandidates) {
  Pair2 w(Role::kControlling, Role::kControlled);
  ASSERT_TRUE(w.a.add_local_candidate(host(1, kHostA), w.now));
  ASSERT_TRUE(w.b.add_local_candidate(host(1, kHostB), w.now));
  ASSERT_TRUE(w.a.set_remote_credentials(w.b.config().local_credentials));
  ASSERT_TRUE(w.a.add_remote_candidate(
      sim::make_candidate(CandidateType::kHost, kHostB, 0, kHostB.ip), w.now));
  // B knows nothing about A (not even its credentials) and still answers A's check.
  w.a.handle_timeout(w.now);
  auto check = w.a.poll_transmit();
  ASSERT_TRUE(check);
  const SocketAddress mapped = *SocketAddress::parse("203.0.113.7:40000");  // A behind a NAT
  ASSERT_TRUE(w.b.handle_stun(1, mapped, check->data, w.now));
  auto answer = w.b.poll_transmit();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->destination, mapped);
  auto m = stun::Message::parse(answer->data);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls(), stun::Class::kSuccess);
  EXPECT_EQ(*m->xor_address(attr::kXorMappedAddress), mapped);
  EXPECT_EQ(m->check_integrity(stun::IntegrityKey::short_term(w.b.config().local_credentials.pwd)),
            stun::IntegrityResult::kOk);
  bool learned = false;
  while (auto e = w.b.poll_event()) {
    if (auto* p = std::get_if<PeerReflexiveLearned>(&*e)) {
      learned =
          p->candidate.address == mapped && p->candidate.type == CandidateType::kPeerReflexive;
    }
  }
  EXPECT_TRUE(learned);
  // The triggered check waits for A's credentials (RFC 8838), then goes at once.
  w.b.handle_timeout(w.now);
  EXPECT_FALSE(w.b.poll_transmit());
  ASSERT_TRUE(w.b.set_remote_credentials(w.a.config().local_credentials));
  EXPECT_LE(w.b.next_deadline(), w.now);
  w.b.handle_timeout(w.now);
  auto triggered = w.b.poll_transmit();
  ASSERT_TRUE(triggered);
  EXPECT_EQ(triggered->destination, mapped);
  // A's answer to it makes B's pair valid.
  ASSERT_TRUE(w.a.handle_stun(1, kHostB, triggered->data, w.now + milliseconds(5)));
  auto back = w.a.poll_transmit();
  ASSERT_TRUE(back);
  ASSERT_TRUE(w.b.handle_stun(1, mapped, back->data, w.now + milliseconds(10)));
  bool valid = false;
  for (const auto& p : w.b.pairs()) {
    valid |= p.remote == mapped && w.b.pair_state(p.id) == PairState::kSucceeded;
  }
  EXPECT_TRUE(valid);
}

TEST(IceAgent, RejectsUnauthenticatedAndMalformedChecks) {
  Pair2 w(Role::kControlling, Role::kControlled);
  w.setup();
  w.a.handle_timeout(w.now);
  auto check = w.a.poll_transmit();
  ASSERT_TRUE(check);
  // Wrong password: B's view with another pwd.
  Bytes tampered = check->data;
  tampered[tampered.size() - 30] ^= std::byte{1};  // inside MESSAGE-INTEGRITY (before FINGERPRINT)
  auto r = w.b.handle_stun(1, kHostA, tampered, w.now);
  // The fingerprint no longer matches either: not even STUN for the parser.
  EXPECT_FALSE(r);
  // A request built with the wrong password.
  stun::MessageBuilder bad(stun::Method::kBinding, stun::Class::kRequest, stun::TransactionId{});
  bad.add_string(attr::kUsername, w.b.config().local_credentials.ufrag + ":x");
  bad.add_u32(attr::kPriority, 1000);
  bad.add_u64(attr::kIceControlling, 5);
  const auto wrong = stun::IntegrityKey::short_term("not-the-password-at-all!");
  r = w.b.handle_stun(1, kHostA, bad.finish(&wrong, stun::Integrity::kSha1, true), w.now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StunDrop::kUnauthenticated);
  auto answer = w.b.poll_transmit();
  ASSERT_TRUE(answer);
  EXPECT_EQ(stun::Message::parse(answer->data)->error_code()->code, 401);
  // Missing PRIORITY → 400.
  stun::MessageBuilder nopri(stun::Method::kBinding, stun::Class::kRequest, stun::TransactionId{});
  nopri.add_string(attr::kUsername, w.b.config().local_credentials.ufrag + ":x");
  nopri.add_u64(attr::kIceControlling, 5);
  const auto right = stun::IntegrityKey::short_term(w.b.config().local_credentials.pwd);
  r = w.b.handle_stun(1, kHostA, nopri.finish(&right, stun::Integrity::kSha1, true), w.now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), StunDrop::kBadRequest);
  EXPECT_EQ(stun::Message::parse(w.b.poll_transmit()->data)->error_code()->code, 400);
  // Garbage and unknown locals.
  EXPECT_EQ(w.b.handle_stun(1, kHostA, to_bytes("hello"), w.now).error(), StunDrop::kNotStun);
  EXPECT_EQ(w.b.handle_stun(9, kHostA, check->data, w.now).error(), StunDrop::kUnknownLocal);
  EXPECT_EQ(w.b.stats().dropped_datagrams, 5u);
}

TEST(IceAgent, RoleConflictResolvedByTieBreaker) {
  // Both think they are controlling; A has the larger tie-breaker and stays controlling
  // (RFC 8445 §7.3.1.1 / §7.2.5.1).
  Pair2 w(Role::kControlling, Role::kControlling, 0xFFFF'0000, 0x0000'FFFF);
  w.setup();
  w.run(milliseconds(600));
  EXPECT_EQ(w.a.role(), Role::kControlling);
  EXPECT_EQ(w.b.role(), Role::kControlled);
  ASSERT_TRUE(w.a.selected_pair());
  ASSERT_TRUE(w.b.selected_pair());
  // Both controlled: the larger tie-breaker takes control.
  Pair2 v(Role::kControlled, Role::kControlled, 5, 7);
  v.setup();
  v.run(milliseconds(600));
  EXPECT_EQ(v.a.role(), Role::kControlled);
  EXPECT_EQ(v.b.role(), Role::kControlling);
  EXPECT_TRUE(v.a.selected_pair());
  EXPECT_TRUE(v.b.selected_pair());
}

TEST(IceAgent, RemovingTheLocalCandidateKillsItsPairsAtOnce) {
  Pair2 w(Role::kControlling, Role::kControlled);
  w.setup();
  w.run(milliseconds(200));
  ASSERT_TRUE(w.a.selected_pair());
  while (w.a.poll_event()) {
  }
  EXPECT_EQ(w.a.remove_interface(1, w.now), 1u);
  EXPECT_TRUE(w.a.pairs().empty());
  EXPECT_FALSE(w.a.selected_pair());
  auto e1 = w.a.poll_event();
  ASSERT_TRUE(e1);
  auto* c = std::get_if<PairStateChanged>(&*e1);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->removed);
  EXPECT_EQ(c->failure, PairFailure::kLocalCandidateRemoved);
  auto e2 = w.a.poll_event();
  ASSERT_TRUE(e2);
  auto* s = std::get_if<SelectedPairChanged>(&*e2);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->pair);
  EXPECT_EQ(s->reason, SelectionReason::kNoValidPair);
  // A new candidate later is paired again and checked (continuous: no restart).
  ASSERT_TRUE(w.a.add_local_candidate(host(2, *SocketAddress::parse("192.0.2.11:5000"), 2), w.now));
  EXPECT_EQ(w.a.pairs().size(), 1u);
}

TEST(IceAgent, PeerGoingSilentLosesConsent) {
  Pair2 w(Role::kControlling, Role::kControlled);
  w.setup();
  w.run(milliseconds(200));
  ASSERT_TRUE(w.a.selected_pair());
  while (w.a.poll_event()) {
  }
  w.drop_a_to_b = true;  // B never hears A again, so A gets no answers
  w.run(seconds(15));
  // Keepalive misses (4 × 2.5 s ± 20 %) end it well before RFC 7675's 30 s.
  bool consent_lost = false;
  for (auto e = w.a.poll_event(); e; e = w.a.poll_event()) {
    if (std::holds_alternative<ConsentLost>(*e)) consent_lost = true;
  }
  EXPECT_TRUE(consent_lost);
  EXPECT_FALSE(w.a.selected_pair());
}

TEST(IceAgent, ConsentExpiresAfterThirtySecondsAtTheLatest) {
  Pair2 w(Role::kControlling, Role::kControlled, 1, 2, [](AgentConfig& c) {
    c.keepalive_misses = 1000;  // only the RFC 7675 floor remains
    c.foreign_peer = true;      // consent checks every 5 s ± 20 %
  });
  w.setup();
  w.run(seconds(1));
  ASSERT_TRUE(w.a.selected_pair());
  while (w.a.poll_event()) {
  }
  // Nobody answers from now on.
  const TimePoint silent = w.now;
  TimePoint t = w.now;
  std::optional<TimePoint> expired;
  bool consent_lost = false;
  std::vector<TimePoint> sends;
  while (t < silent + seconds(40) && !expired) {
    t = std::max(t, w.a.next_deadline());
    w.a.handle_timeout(t);
    while (w.a.poll_transmit())
      sends.push_back(t);
    while (auto e = w.a.poll_event()) {
      if (auto* s = std::get_if<PairStateChanged>(&*e)) {
        if (s->failure == PairFailure::kConsentExpired) expired = t;
      }
      consent_lost |= std::holds_alternative<ConsentLost>(*e);
    }
  }
  ASSERT_TRUE(expired);
  EXPECT_TRUE(consent_lost);
  // 30 s after the last answer, which came within the first second.
  EXPECT_GE(*expired - silent, seconds(29));
  EXPECT_LE(*expired - silent, seconds(30));
  // Consent checks were never closer than 4 s (security.md).
  for (std::size_t i = 1; i < sends.size(); ++i) {
    EXPECT_GE(sends[i] - sends[i - 1], seconds(4));
  }
  EXPECT_GE(sends.size(), 5u);
}

TEST(IceAgent, BoundsOnCandidatesAndPairs) {
  SeededRandom r(5);
  auto c = sim::agent_config(Role::kControlling, 5);
  c.max_remote_candidates = 3;
  c.max_pairs = 4;
  c.max_local_candidates = 2;
  Agent a(c, r);
  const TimePoint now = kT0;
  ASSERT_TRUE(a.add_local_candidate(host(1, kHostA, 1), now));
  ASSERT_TRUE(a.add_local_candidate(host(2, *SocketAddress::parse("192.0.2.11:5000"), 2), now));
  EXPECT_EQ(
      a.add_local_candidate(host(3, *SocketAddress::parse("192.0.2.12:5000"), 3), now).error(),
      AgentError::kTooManyCandidates);
  EXPECT_EQ(a.add_local_candidate(host(1, kHostA, 1), now).error(), AgentError::kDuplicateId);
  for (int i = 0; i < 3; ++i) {
    SocketAddress ra{ip("198.51.100.1"), static_cast<std::uint16_t>(7000 + i)};
    ASSERT_TRUE(a.add_remote_candidate(
        sim::make_candidate(CandidateType::kHost, ra, static_cast<std::uint16_t>(i), ra.ip), now));
  }
  EXPECT_LE(a.pairs().size(), 4u);
  EXPECT_GT(a.stats().pairs_refused + 0u, 0u);
  SocketAddress extra{ip("198.51.100.1"), 7100};
  EXPECT_EQ(
      a.add_remote_candidate(sim::make_candidate(CandidateType::kHost, extra, 0, extra.ip), now)
          .error(),
      AgentError::kTooManyCandidates);
  Candidate bad = sim::make_candidate(CandidateType::kHost, extra, 0, extra.ip);
  bad.component = 2;
  EXPECT_EQ(a.add_remote_candidate(bad, now).error(), AgentError::kUnsupportedComponent);
  EXPECT_EQ(a.set_remote_credentials({"ab", "short"}).error(), AgentError::kBadCredentials);
}

TEST(IceAgent, ConfigIsSanitized) {
  AgentConfig c;
  c.ta = milliseconds(1);
  c.consent_timeout = seconds(90);
  c.check_retransmission.initial_rto = milliseconds(50);
  c.foreign_peer = true;
  c.keepalive_interval = milliseconds(500);
  const auto s = c.sanitized();
  EXPECT_EQ(s.ta, kMinTa);                                      // RFC 8445 §14.2
  EXPECT_EQ(s.consent_timeout, kConsentTimeout);                // RFC 7675 §5.1
  EXPECT_EQ(s.check_retransmission.initial_rto, kMinCheckRto);  // RFC 8445 §14.3
  EXPECT_EQ(s.effective_keepalive_interval(), kForeignConsentInterval);
}

}  // namespace
}  // namespace roam::ice
