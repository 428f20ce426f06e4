// Randomized simulations of the continuous ICE agent: hundreds of scenarios per run, each from a
// fixed seed (so a failure names its seed and replays exactly), with random interfaces, NAT
// types, carrier blocks, IPv6, loss, delays, and a mid-session change (interface removed,
// interface added, silent blackhole of the active path). Invariants:
//   - never a selected pair that is not valid (checked by the simulator after every step);
//   - convergence: when a direct path exists the controlling agent ends on a direct pair,
//     otherwise on the relay when one exists (with a "still relayed" reason), and the
//     controlled agent agrees on the kind;
//   - bounded STUN: ≤ 10 requests in any second on any (local, remote), and ≤ 1 request/s
//     per valid pair over the last 10 s (keepalives).
#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "tests/support/ice_sim.h"

namespace roam::ice::sim {
namespace {

// 300 per run (~1.5 s on an idle core); ROAM_ICE_SCENARIOS=N runs seeds 1..N for a longer soak
// (3000 seeds pass).
int scenario_count() {
  if (const char* n = std::getenv("ROAM_ICE_SCENARIOS")) return std::max(1, std::atoi(n));
  return 300;
}
constexpr Duration kChangeAt = seconds(6);
constexpr Duration kRunFor = seconds(22);

struct Scenario {
  explicit Scenario(std::uint64_t seed)
      : seed(seed),
        r(seed * 7919 + 17),
        sim(seed),
        a(sim.add_endpoint("A", agent_config(Role::kControlling, seed * 2 + 1))),
        b(sim.add_endpoint("B", agent_config(Role::kControlled, seed * 2 + 2))) {
    sim.connect(a, b);
  }

  std::uint64_t seed;
  SeededRandom r;
  Simulator sim;
  Endpoint& a;
  Endpoint& b;
  int next_ip = 1;
  std::vector<std::pair<IpAddress, IpAddress>> blackholed;
  std::string log;

  void add_random_interface(Endpoint& e) {
    const int n = next_ip++;
    InterfaceSpec spec;
    spec.name = "if" + std::to_string(n);
    spec.delay = milliseconds(2 + static_cast<int>(r.uniform(25)));
    static constexpr double kLoss[] = {0, 0, 0, 0.01, 0.03};
    spec.loss = kLoss[r.uniform(5)];
    if (r.uniform(4) == 0) {
      spec.ip = ip("2001:db8:" + std::to_string(n) + "::2");  // IPv6: no NAT
      log += " " + e.name() + ":v6";
    } else {
      spec.ip = ip("10." + std::to_string(n) + ".0.2");
      const auto kind = r.uniform(7);
      NatConfig c;
      switch (kind) {
        case 0:
          spec.ip = ip("198.18." + std::to_string(n) + ".2");  // public IPv4, no NAT
          break;
        case 1:
          c = {Mapping::kEndpointIndependent, Filtering::kEndpointIndependent};
          break;
        case 2:
          c = {Mapping::kEndpointIndependent, Filtering::kAddressDependent};
          break;
        case 3:
          c = {Mapping::kEndpointIndependent, Filtering::kAddressPortDependent};
          break;
        case 4:
          c = {Mapping::kAddressDependent, Filtering::kAddressPortDependent};
          break;
        case 5:
          c = {Mapping::kAddressPortDependent, Filtering::kAddressPortDependent};
          break;
        default:
          c = {Mapping::kEndpointIndependent, Filtering::kAddressPortDependent};
          c.carrier_block = true;
          break;
      }
      if (kind != 0) spec.nat = &sim.add_nat(ip("203.0." + std::to_string(n) + ".1"), c);
      log += " " + e.name() + ":v4nat" + std::to_string(kind);
    }
    if (spec.loss > 0) log += "/loss";
    e.add_interface(spec);
  }

  static bool eim(const Nat* n) {
    return !n || n->config().mapping == Mapping::kEndpointIndependent;
  }

  bool direct_possible(const Endpoint::Iface& x, const Endpoint::Iface& y) const {
    if (x.spec.ip.family() != y.spec.ip.family()) return false;
    const auto px = Simulator::public_ip(x);
    const auto py = Simulator::public_ip(y);
    for (const auto& [p, q] : blackholed) {
      if ((p == px && q == py) || (p == py && q == px)) return false;
    }
    const Nat* nx = x.spec.nat;
    const Nat* ny = y.spec.nat;
    if ((nx && nx->config().carrier_block) || (ny && ny->config().carrier_block)) return false;
    if (!nx || !ny) return true;  // one side public: the NATed side's checks open the way
    if (eim(nx) && eim(ny)) return true;
    if (!eim(nx) && !eim(ny)) return false;
    // One side maps per destination: the other side's filter must let its new port in.
    const Nat* other = eim(nx) ? nx : ny;
    return other->config().filtering != Filtering::kAddressPortDependent;
  }

  bool any_direct() {
    for (const auto& x : a.ifaces()) {
      for (const auto& y : b.ifaces()) {
        if (direct_possible(x, y)) return true;
      }
    }
    return false;
  }

  bool any_relay() {
    if (!sim.relay_enabled) return false;
    auto has_relay = [](Endpoint& e) {
      for (const auto& i : e.ifaces()) {
        if (i.relay_id) return true;
      }
      return false;
    };
    auto has_v4 = [](Endpoint& e) {
      for (const auto& i : e.ifaces()) {
        if (i.spec.ip.is_v4()) return true;
      }
      return false;
    };
    return (has_relay(a) && has_v4(b)) || (has_relay(b) && has_v4(a));
  }

  void change() {
    const auto what = r.uniform(4);
    if (what == 1 && a.ifaces().size() > 1) {
      log += " | remove A iface";
      a.remove_interface(a.ifaces()[r.uniform(a.ifaces().size())].index);
    } else if (what == 2) {
      log += " | add B iface";
      add_random_interface(b);
    } else if (what == 3) {
      auto sel = a.selected();
      if (sel && sel->kind == PathKind::kDirect) {
        for (const auto& i : a.ifaces()) {
          if (i.index != sel->interface_index) continue;
          log += " | blackhole active";
          blackholed.emplace_back(Simulator::public_ip(i), sel->remote.ip);
          sim.blackhole(Simulator::public_ip(i), sel->remote.ip);
        }
      }
    }
  }

  void run() {
    sim.relay_enabled = r.uniform(10) != 0;
    if (!sim.relay_enabled) log += " norelay";
    const int na = 1 + static_cast<int>(r.uniform(2));
    const int nb = 1 + static_cast<int>(r.uniform(2));
    for (int i = 0; i < na; ++i)
      add_random_interface(a);
    for (int i = 0; i < nb; ++i)
      add_random_interface(b);
    sim.run_for(kChangeAt);
    change();
    sim.run_for(kRunFor - kChangeAt);
  }

  void check() {
    SCOPED_TRACE("seed " + std::to_string(seed) + ":" + log);
    for (const auto& v : sim.violations)
      ADD_FAILURE() << v;
    const bool direct = any_direct();
    const bool relay = any_relay();
    auto sa = a.selected();
    auto sb = b.selected();
    if (direct) {
      ASSERT_TRUE(sa) << "no selection although a direct path exists";
      EXPECT_EQ(sa->kind, PathKind::kDirect) << to_string(a.agent().relay_reason());
      ASSERT_TRUE(sb);
      EXPECT_EQ(sb->kind, PathKind::kDirect);
    } else if (relay) {
      ASSERT_TRUE(sa) << "no selection although the relay works";
      EXPECT_EQ(sa->kind, PathKind::kRelay);
      EXPECT_NE(a.agent().relay_reason(), RelayReason::kNotRelayed);
      ASSERT_TRUE(sb);
      EXPECT_EQ(sb->kind, PathKind::kRelay);
    } else {
      EXPECT_FALSE(sa) << "selected " << to_string(sa->kind) << " with no path in the model";
    }
    const std::int64_t last = std::chrono::duration_cast<seconds>(kRunFor).count();
    for (Endpoint* e : {&a, &b}) {
      for (const auto& [key, per_second] : e->requests_per_second) {
        int recent = 0;
        for (const auto& [second, n] : per_second) {
          EXPECT_LE(n, 10) << e->name() << " " << key.second.to_string() << " at " << second;
          if (second >= last - 10) recent += n;
        }
        // Valid pairs at the end: keepalives only (2.5 s ± 20 %) plus a nomination.
        for (const auto& p : e->agent().pairs()) {
          if (p.local == key.first && p.remote == key.second &&
              e->agent().pair_state(p.id) == PairState::kSucceeded) {
            EXPECT_LE(recent, 10) << e->name() << " pair " << p.id;
          }
        }
      }
    }
  }
};

TEST(IceRandom, HundredsOfScenariosConvergeAndKeepInvariants) {
  const int scenarios = scenario_count();
  int direct = 0, relayed = 0, none = 0;
  for (int seed = 1; seed <= scenarios; ++seed) {
    Scenario s(static_cast<std::uint64_t>(seed));
    s.run();
    s.check();
    auto sel = s.a.selected();
    (sel ? (sel->kind == PathKind::kDirect ? direct : relayed) : none)++;
    if (::testing::Test::HasFailure()) break;  // one seed's story at a time
  }
  // The mix must exercise both outcomes.
  EXPECT_GT(direct, scenarios / 5);
  EXPECT_GT(relayed, scenarios / 10);
  RecordProperty("direct", direct);
  RecordProperty("relayed", relayed);
  RecordProperty("none", none);
}

}  // namespace
}  // namespace roam::ice::sim
