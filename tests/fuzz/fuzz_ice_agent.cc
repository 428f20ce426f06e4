// Fuzzes the continuous ICE agent's STUN input (common/ice/agent.h): a hostile peer sends any
// datagrams, from any of several addresses, to any local base, interleaved with time passing
// and data-path liveness reports. Properties: never crashes; the selected pair is always valid;
// the transmit and event queues stay within their bounds; every transmit goes from a known
// local candidate and is non-empty; the timer loop always makes progress.
//
// Input: records of [flags:1][length:2, big-endian][datagram:length]. flags bits 0–1 pick the
// source address, bit 2 the local base (host or relayed), bit 3 advances the clock by 50 ms
// first, bit 4 reports data received on that pair, bit 5 reports data expected on it.
// The corpus holds real check/answer exchanges with the credentials below.
#include <array>
#include <cstddef>
#include <cstdint>

#include "common/ice/agent.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace roam;
using namespace roam::ice;

constexpr std::string_view kLocalUfrag = "fzA1";
constexpr std::string_view kLocalPwd = "fuzzfuzzfuzzfuzzfuzzfuzzA";
constexpr std::string_view kRemoteUfrag = "fzB1";
constexpr std::string_view kRemotePwd = "fuzzfuzzfuzzfuzzfuzzfuzzB";

Candidate candidate(CandidateType type, std::string_view address) {
  Candidate c;
  c.type = type;
  c.address = *SocketAddress::parse(address);
  c.priority = compute_priority(type, 65535);
  c.foundation = compute_foundation(type, c.address.ip, std::nullopt);
  return c;
}

void drain(Agent& agent) {
  std::size_t transmits = 0;
  while (auto t = agent.poll_transmit()) {
    FUZZ_CHECK(!t->data.empty());
    FUZZ_CHECK(t->local == 1 || t->local == 2);
    ++transmits;
  }
  FUZZ_CHECK(transmits <= agent.config().max_transmits);
  std::size_t events = 0;
  while (agent.poll_event())
    ++events;
  FUZZ_CHECK(events <= agent.config().max_events);
  if (auto sel = agent.selected_pair()) {
    FUZZ_CHECK(agent.pair_state(sel->id) == PairState::kSucceeded);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SeededRandom random(size);
  AgentConfig config;
  config.role = Role::kControlled;
  config.tie_breaker = 42;
  config.local_credentials = {std::string(kLocalUfrag), std::string(kLocalPwd)};
  config.max_remote_candidates = 8;
  config.max_pairs = 12;
  Agent agent(config, random);
  TimePoint now = TimePoint(seconds(1000));
  FUZZ_CHECK(agent.add_local_candidate(
      {1, candidate(CandidateType::kHost, "192.0.2.1:5000"), std::nullopt, "eth0", 1, false}, now));
  FUZZ_CHECK(agent.add_local_candidate(
      {2, candidate(CandidateType::kRelayed, "198.51.100.1:50000"), std::nullopt, "eth0", 1, false},
      now));
  FUZZ_CHECK(agent.set_remote_credentials({std::string(kRemoteUfrag), std::string(kRemotePwd)}));
  FUZZ_CHECK(agent.add_remote_candidate(candidate(CandidateType::kHost, "192.0.2.2:6000"), now));
  FUZZ_CHECK(agent.add_remote_candidate(
      candidate(CandidateType::kServerReflexive, "203.0.113.2:7000"), now));
  const std::array<SocketAddress, 4> from = {
      *SocketAddress::parse("192.0.2.2:6000"), *SocketAddress::parse("203.0.113.2:7000"),
      *SocketAddress::parse("203.0.113.9:7001"), *SocketAddress::parse("[2001:db8::9]:7002")};

  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::uint8_t flags = data[at];
    const std::size_t length = (std::size_t{data[at + 1]} << 8) | data[at + 2];
    at += 3;
    const std::size_t n = std::min(length, size - at);
    const ByteSpan datagram(reinterpret_cast<const std::byte*>(data + at), n);
    at += n;
    if (flags & 8) now += milliseconds(50);
    if (agent.next_deadline() <= now) agent.handle_timeout(now);
    const LocalId local = (flags & 4) ? 2 : 1;
    const auto& source = from[flags & 3];
    auto r = agent.handle_stun(local, source, datagram, now);
    if (!r) FUZZ_CHECK(!describe(r.error()).empty());
    if (flags & 16) agent.on_data_received(local, source, now);
    if (flags & 32) agent.on_data_expected(local, source, now);
    drain(agent);
  }
  // Let every timer run out: retransmissions, failures, keepalives, consent, rechecks.
  for (int i = 0; i < 2000; ++i) {
    const TimePoint next = agent.next_deadline();
    if (next == kNever || next > TimePoint(seconds(1000 + 120))) break;
    now = std::max(now, next);
    agent.handle_timeout(now);
    FUZZ_CHECK(agent.next_deadline() > now);  // timers always make progress
    drain(agent);
  }
  return 0;
}
