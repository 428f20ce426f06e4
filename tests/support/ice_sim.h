// A deterministic network simulator for the continuous ICE agent (common/ice/agent.h), in the
// spirit of ngtcp2's examples/sim.h: virtual clock, one event queue, seeded randomness.
//
// World model:
//   - Endpoints (two ICE agents) own interfaces. An interface has an address, a one-way access
//     delay, a loss rate, an up/down state and optionally sits behind a NAT.
//   - NATs (RFC 4787 behaviours): endpoint-independent, address-dependent or
//     address-and-port-dependent ("symmetric") mapping and filtering, idle mapping timeout, and
//     a carrier mode that drops every UDP datagram not to/from the infrastructure (STUN servers
//     and the TURN relay), like a carrier NAT blocking traffic between subscribers.
//   - The internet: public addresses (NAT outsides, un-NATed interfaces such as IPv6) reachable
//     with a fixed core delay; private addresses are not routed. Blackhole rules drop packets
//     silently between two public addresses.
//   - One TURN relay (IPv4), simulated at the datagram level (an envelope instead of the TURN
//     wire format: the TURN codec is tested elsewhere): allocations per client 5-tuple,
//     permissions by peer IP installed when the client sends to that IP (RFC 8656 §9).
//   - Gathering is synthetic but NAT-faithful: server-reflexive candidates are the mappings the
//     NAT creates towards two STUN servers; relayed candidates come from the relay.
//   - Signaling (credentials, trickled candidates) is delivered with a fixed delay.
//   - Each endpoint's "application" sends a data datagram on its selected pair every
//     data_interval and reports it with on_data_expected(); data arriving is reported with
//     on_data_received() — the way the QUIC layer will drive the agent.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "common/ice/agent.h"
#include "common/util/random.h"

namespace roam::ice::sim {

enum class Mapping { kEndpointIndependent, kAddressDependent, kAddressPortDependent };
enum class Filtering { kEndpointIndependent, kAddressDependent, kAddressPortDependent };

struct NatConfig {
  Mapping mapping = Mapping::kEndpointIndependent;
  Filtering filtering = Filtering::kAddressPortDependent;
  bool carrier_block = false;              // drop UDP to/from anything but the infrastructure
  Duration mapping_timeout = seconds(30);  // idle; refreshed by outbound packets (RFC 4787 REQ-6)
};

struct Datagram {
  SocketAddress src;
  SocketAddress dst;
  Bytes data;
  std::optional<SocketAddress> peer;  // TURN envelope: client→relay: send to; relay→client: from
};

class Nat {
 public:
  Nat(IpAddress public_ip, NatConfig config) : public_ip_(public_ip), config_(config) {}
  // Translates an outbound datagram's source; nullopt when dropped (carrier block).
  std::optional<SocketAddress> outbound(const SocketAddress& internal, const SocketAddress& dst,
                                        TimePoint now, const std::set<IpAddress>& infra);
  // The internal destination of an inbound datagram; nullopt when filtered or unmapped.
  std::optional<SocketAddress> inbound(const SocketAddress& src, const SocketAddress& external,
                                       TimePoint now, const std::set<IpAddress>& infra);
  const IpAddress& public_ip() const { return public_ip_; }
  const NatConfig& config() const { return config_; }
  // Forgets every mapping (NAT rebinding / reboot).
  void flush() { bindings_.clear(); }

 private:
  struct Binding {
    SocketAddress internal;
    SocketAddress external;
    SocketAddress key;  // the destination part that selects the mapping (zeroed as needed)
    std::set<SocketAddress> contacted;
    TimePoint last_out;
  };
  IpAddress public_ip_;
  NatConfig config_;
  std::vector<Binding> bindings_;
  std::uint16_t next_port_ = 20000;
};

struct InterfaceSpec {
  std::string name = "eth0";
  IpAddress ip;
  Nat* nat = nullptr;  // nullptr: the address is public
  bool metered = false;
  Duration delay = milliseconds(10);  // one-way access delay
  double loss = 0.0;
  bool relay = true;  // allocate a relayed candidate through this interface (IPv4 only)
};

class Simulator;

class Endpoint {
 public:
  struct Iface {
    InterfaceSpec spec;
    std::uint32_t index = 0;
    std::uint16_t rank = 0;
    bool up = true;
    LocalId host_id = 0;
    std::optional<LocalId> relay_id;
    std::optional<SocketAddress> relay_client;  // the relay's view of our 5-tuple
    SocketAddress host() const { return {spec.ip, 5000}; }
  };

  Endpoint(Simulator& sim, std::string name, AgentConfig config, std::uint64_t seed);

  // Adds an interface and gathers on it at once (host, then server-reflexive, then relayed one
  // relay round trip later), trickling each candidate to the peer. Returns its index.
  std::uint32_t add_interface(const InterfaceSpec& spec);
  // The interface goes away: link down and the agent told at once (netlink).
  void remove_interface(std::uint32_t index);
  // The link silently stops carrying packets (no local signal).
  void set_link_up(std::uint32_t index, bool up);
  Iface* iface(std::uint32_t index);

  Agent& agent() { return *agent_; }
  const std::string& name() const { return name_; }
  std::vector<Iface>& ifaces() { return ifaces_; }
  std::optional<PairInfo> selected() const { return agent_->selected_pair(); }

  // Events with the time they were polled.
  std::vector<std::pair<TimePoint, Event>> events;
  // Every SelectedPairChanged, in order.
  std::vector<std::pair<TimePoint, SelectedPairChanged>> selections;
  // STUN requests sent per (local, destination) per whole virtual second since start.
  std::map<std::pair<LocalId, SocketAddress>, std::map<std::int64_t, int>> requests_per_second;
  std::uint64_t stun_sent = 0;  // requests and responses
  std::uint64_t data_sent = 0;
  std::uint64_t data_received = 0;
  TimePoint last_data_received{};
  bool send_data = true;

 private:
  friend class Simulator;
  void trickle(const Candidate& c);
  void send(LocalId local, const SocketAddress& to, Bytes data);
  void deliver(Iface& iface, Datagram d);
  void data_tick();

  Simulator& sim_;
  std::string name_;
  SeededRandom random_;
  std::unique_ptr<Agent> agent_;
  std::vector<Iface> ifaces_;
  Endpoint* peer_ = nullptr;
  std::vector<Candidate> pending_;  // gathered before connect()
  LocalId next_id_ = 1;
  std::uint32_t next_index_ = 1;
};

class Simulator {
 public:
  explicit Simulator(std::uint64_t seed);

  TimePoint now() const { return now_; }
  TimePoint start() const { return start_; }
  Duration elapsed() const { return now_ - start_; }

  Nat& add_nat(IpAddress public_ip, NatConfig config);
  // The two agents; `a` is created controlling, `b` controlled (unless configs say otherwise).
  Endpoint& add_endpoint(std::string name, AgentConfig config);
  // Exchanges credentials over signaling and starts the data applications.
  void connect(Endpoint& a, Endpoint& b);

  // Runs the world until `end` (or for `d`).
  void run_until(TimePoint end);
  void run_for(Duration d) { run_until(now_ + d); }
  // Runs until `pred()` holds (checked after every step) or `limit` passes; true if it held.
  bool run_until(const std::function<bool()>& pred, Duration limit);

  // Schedules `fn` at `at`.
  void at(TimePoint at, std::function<void()> fn);

  // Drops every packet between the two public addresses' IPs (both directions), silently.
  void blackhole(const IpAddress& a, const IpAddress& b);
  void clear_blackholes() { blackholes_.clear(); }
  // The public IP an interface's traffic appears from.
  static IpAddress public_ip(const Endpoint::Iface& iface);

  bool relay_enabled = true;
  Duration signaling_delay = milliseconds(30);
  Duration core_delay = milliseconds(5);        // one-way, between any two public sites
  Duration relay_leg_delay = milliseconds(15);  // one-way, between the relay and a public site
  Duration data_interval = milliseconds(20);
  const SocketAddress relay_server{*IpAddress::parse("192.0.2.1"), 3478};
  const SocketAddress stun_server_1{*IpAddress::parse("192.0.2.2"), 3478};
  const SocketAddress stun_server_2{*IpAddress::parse("192.0.2.3"), 3478};

  // Invariant violations seen while running (tests assert this stays empty).
  std::vector<std::string> violations;
  std::uint64_t datagrams_delivered = 0;

 private:
  friend class Endpoint;
  struct Scheduled {
    TimePoint at;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Scheduled& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Allocation {
    SocketAddress client;
    SocketAddress relayed;
    std::set<IpAddress> permissions;
  };

  void flush();
  void check_invariants(Endpoint& e);
  bool lossy(double p);
  // From an interface (after NAT) into the internet.
  void send_from(Endpoint& e, Endpoint::Iface& iface, Datagram d);
  void route(Datagram d);  // a datagram arriving at its public destination
  void relay_receive(Datagram d);
  SocketAddress allocate(const SocketAddress& client);
  bool blackholed(const Datagram& d) const;

  TimePoint start_;
  TimePoint now_;
  std::uint64_t seq_ = 0;
  SeededRandom random_;
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue_;
  std::vector<std::unique_ptr<Nat>> nats_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Allocation> allocations_;
  std::uint16_t next_relay_port_ = 50000;
  std::set<IpAddress> infra_;
  std::vector<std::pair<IpAddress, IpAddress>> blackholes_;
};

// Convenience builders.
IpAddress ip(std::string_view text);
// A host candidate/priority helper shared by the simulator and tests.
Candidate make_candidate(CandidateType type, const SocketAddress& address, std::uint16_t rank,
                         const IpAddress& base_ip, std::optional<SocketAddress> related = {},
                         std::optional<IpAddress> server = {});
AgentConfig agent_config(Role role, std::uint64_t seed);

}  // namespace roam::ice::sim
