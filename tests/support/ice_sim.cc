#include "tests/support/ice_sim.h"

#include <algorithm>

#include "common/stun/demux.h"

namespace roam::ice::sim {

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

Candidate make_candidate(CandidateType type, const SocketAddress& address, std::uint16_t rank,
                         const IpAddress& base_ip, std::optional<SocketAddress> related,
                         std::optional<IpAddress> server) {
  Candidate c;
  c.type = type;
  c.address = address;
  c.priority = compute_priority(type, local_preference(rank, address.family()).value_or(0));
  c.foundation = compute_foundation(type, base_ip, server);
  c.related = related;
  return c;
}

AgentConfig agent_config(Role role, std::uint64_t seed) {
  SeededRandom r(seed ^ 0x5EED);
  AgentConfig c;
  c.role = role;
  c.local_credentials = generate_credentials(r);
  return c;
}

// --- NAT -------------------------------------------------------------------------------------

std::optional<SocketAddress> Nat::outbound(const SocketAddress& internal, const SocketAddress& dst,
                                           TimePoint now, const std::set<IpAddress>& infra) {
  if (config_.carrier_block && !infra.contains(dst.ip)) return std::nullopt;
  std::erase_if(bindings_,
                [&](const Binding& b) { return now - b.last_out >= config_.mapping_timeout; });
  SocketAddress key;  // RFC 4787 §4.1: what part of the destination selects the mapping
  switch (config_.mapping) {
    case Mapping::kEndpointIndependent:
      break;
    case Mapping::kAddressDependent:
      key.ip = dst.ip;
      break;
    case Mapping::kAddressPortDependent:
      key = dst;
      break;
  }
  for (auto& b : bindings_) {
    if (b.internal == internal && b.key == key) {
      b.last_out = now;
      b.contacted.insert(dst);
      return b.external;
    }
  }
  Binding b{internal, SocketAddress{public_ip_, next_port_++}, key, {dst}, now};
  bindings_.push_back(b);
  return b.external;
}

std::optional<SocketAddress> Nat::inbound(const SocketAddress& src, const SocketAddress& external,
                                          TimePoint now, const std::set<IpAddress>& infra) {
  if (config_.carrier_block && !infra.contains(src.ip)) return std::nullopt;
  for (const auto& b : bindings_) {
    if (b.external != external) continue;
    if (now - b.last_out >= config_.mapping_timeout) return std::nullopt;
    switch (config_.filtering) {  // RFC 4787 §5
      case Filtering::kEndpointIndependent:
        return b.internal;
      case Filtering::kAddressDependent:
        for (const auto& c : b.contacted) {
          if (c.ip == src.ip) return b.internal;
        }
        return std::nullopt;
      case Filtering::kAddressPortDependent:
        if (b.contacted.contains(src)) return b.internal;
        return std::nullopt;
    }
  }
  return std::nullopt;
}

// --- Endpoint --------------------------------------------------------------------------------

Endpoint::Endpoint(Simulator& sim, std::string name, AgentConfig config, std::uint64_t seed)
    : sim_(sim), name_(std::move(name)), random_(seed) {
  agent_ = std::make_unique<Agent>(std::move(config), random_);
}

Endpoint::Iface* Endpoint::iface(std::uint32_t index) {
  for (auto& i : ifaces_) {
    if (i.index == index) return &i;
  }
  return nullptr;
}

void Endpoint::trickle(const Candidate& c) {
  if (!peer_) {
    pending_.push_back(c);  // sent when connected
    return;
  }
  Endpoint* peer = peer_;
  sim_.at(sim_.now() + sim_.signaling_delay,
          [peer, c, this] { (void)peer->agent().add_remote_candidate(c, sim_.now()); });
}

std::uint32_t Endpoint::add_interface(const InterfaceSpec& spec) {
  Iface f;
  f.spec = spec;
  f.index = next_index_++;
  f.rank = static_cast<std::uint16_t>(std::min<std::size_t>(ifaces_.size(), kMaxInterfaces - 1));
  f.host_id = next_id_++;
  ifaces_.push_back(f);
  const std::uint32_t index = f.index;
  const TimePoint now = sim_.now();
  const SocketAddress host = f.host();

  auto add = [&](const Candidate& c, LocalId id, std::optional<LocalId> base) {
    LocalCandidate lc{id, c, base, spec.name, index, spec.metered};
    if (agent_->add_local_candidate(lc, now)) trickle(c);
  };
  add(make_candidate(CandidateType::kHost, host, f.rank, spec.ip), f.host_id, std::nullopt);
  if (spec.nat) {
    std::vector<SocketAddress> seen;
    for (const auto& server : {sim_.stun_server_1, sim_.stun_server_2}) {
      auto mapped = spec.nat->outbound(host, server, now, sim_.infra_);
      if (!mapped || std::find(seen.begin(), seen.end(), *mapped) != seen.end()) continue;
      seen.push_back(*mapped);
      add(make_candidate(CandidateType::kServerReflexive, *mapped, f.rank, spec.ip, host,
                         server.ip),
          next_id_++, f.host_id);
    }
  }
  if (spec.relay && sim_.relay_enabled && spec.ip.is_v4()) {
    std::optional<SocketAddress> client = host;
    if (spec.nat) client = spec.nat->outbound(host, sim_.relay_server, now, sim_.infra_);
    if (client) {
      const SocketAddress relayed = sim_.allocate(*client);
      const LocalId id = next_id_++;
      const std::uint16_t rank = f.rank;
      const SocketAddress related = *client;
      // The Allocate round trip.
      sim_.at(now + 2 * (spec.delay + sim_.relay_leg_delay),
              [this, index, id, relayed, rank, related] {
                Iface* i = iface(index);
                if (!i || !i->up) return;
                i->relay_id = id;
                i->relay_client = related;
                Candidate c = make_candidate(CandidateType::kRelayed, relayed, rank, i->spec.ip,
                                             related, sim_.relay_server.ip);
                LocalCandidate lc{id, c, std::nullopt, i->spec.name, index, i->spec.metered};
                if (agent_->add_local_candidate(lc, sim_.now())) trickle(c);
              });
      // The TURN client's refreshes keep its NAT mapping towards the relay alive.
      auto refresh = std::make_shared<std::function<void()>>();
      *refresh = [this, index, refresh] {
        Iface* i = iface(index);
        if (!i || !i->up || !i->spec.nat) return;
        (void)i->spec.nat->outbound(i->host(), sim_.relay_server, sim_.now(), sim_.infra_);
        sim_.at(sim_.now() + seconds(10), *refresh);
      };
      sim_.at(now + seconds(10), *refresh);
    }
  }
  return index;
}

void Endpoint::remove_interface(std::uint32_t index) {
  Iface* i = iface(index);
  if (!i) return;
  i->up = false;
  agent_->remove_interface(index, sim_.now());
  std::erase_if(ifaces_, [index](const Iface& f) { return f.index == index; });
}

void Endpoint::set_link_up(std::uint32_t index, bool up) {
  if (Iface* i = iface(index)) i->up = up;
}

void Endpoint::send(LocalId local, const SocketAddress& to, Bytes data) {
  for (auto& i : ifaces_) {
    if (i.host_id != local && i.relay_id != local) continue;
    if (stun::looks_like_stun(data)) ++stun_sent;
    if (data.size() >= 2 && data[0] == std::byte{0} && data[1] == std::byte{1}) {
      const auto second = std::chrono::duration_cast<seconds>(sim_.elapsed()).count();
      ++requests_per_second[{local, to}][second];
    }
    Datagram d;
    d.src = i.host();
    d.data = std::move(data);
    if (i.host_id == local) {
      d.dst = to;
    } else {
      d.dst = sim_.relay_server;
      d.peer = to;
    }
    sim_.send_from(*this, i, std::move(d));
    return;
  }
}

void Endpoint::deliver(Iface& i, Datagram d) {
  if (!i.up || sim_.lossy(i.spec.loss)) return;
  ++sim_.datagrams_delivered;
  LocalId local = i.host_id;
  SocketAddress from = d.src;
  if (d.peer) {
    if (!i.relay_id) return;
    local = *i.relay_id;
    from = *d.peer;
  }
  if (stun::looks_like_stun(d.data)) {
    (void)agent_->handle_stun(local, from, d.data, sim_.now());
  } else {
    ++data_received;
    last_data_received = sim_.now();
    agent_->on_data_received(local, from, sim_.now());
  }
}

void Endpoint::data_tick() {
  if (send_data) {
    if (auto sel = agent_->selected_pair()) {
      send(sel->local, sel->remote, to_bytes("DATA"));
      agent_->on_data_expected(sel->local, sel->remote, sim_.now());
      ++data_sent;
    }
  }
  sim_.at(sim_.now() + sim_.data_interval, [this] { data_tick(); });
}

// --- Simulator -------------------------------------------------------------------------------

Simulator::Simulator(std::uint64_t seed)
    : start_(TimePoint(seconds(1'000'000))), now_(start_), random_(seed) {
  infra_ = {relay_server.ip, stun_server_1.ip, stun_server_2.ip};
}

Nat& Simulator::add_nat(IpAddress public_ip, NatConfig config) {
  nats_.push_back(std::make_unique<Nat>(public_ip, config));
  return *nats_.back();
}

Endpoint& Simulator::add_endpoint(std::string name, AgentConfig config) {
  const std::uint64_t seed = random_.next_u64();
  endpoints_.push_back(std::make_unique<Endpoint>(*this, std::move(name), std::move(config), seed));
  return *endpoints_.back();
}

void Simulator::connect(Endpoint& a, Endpoint& b) {
  a.peer_ = &b;
  b.peer_ = &a;
  for (Endpoint* e : {&a, &b}) {
    for (const auto& c : e->pending_)
      e->trickle(c);
    e->pending_.clear();
  }
  at(now_ + signaling_delay, [&a, &b] {
    (void)a.agent().set_remote_credentials(b.agent().config().local_credentials);
    (void)b.agent().set_remote_credentials(a.agent().config().local_credentials);
  });
  at(now_ + data_interval, [&a] { a.data_tick(); });
  at(now_ + data_interval + milliseconds(3), [&b] { b.data_tick(); });
}

void Simulator::at(TimePoint t, std::function<void()> fn) {
  queue_.push(Scheduled{t, seq_++, std::move(fn)});
}

void Simulator::blackhole(const IpAddress& a, const IpAddress& b) {
  blackholes_.emplace_back(a, b);
}

IpAddress Simulator::public_ip(const Endpoint::Iface& iface) {
  return iface.spec.nat ? iface.spec.nat->public_ip() : iface.spec.ip;
}

bool Simulator::lossy(double p) {
  return p > 0 && static_cast<double>(random_.uniform(1'000'000)) < p * 1'000'000;
}

bool Simulator::blackholed(const Datagram& d) const {
  for (const auto& [a, b] : blackholes_) {
    if ((d.src.ip == a && d.dst.ip == b) || (d.src.ip == b && d.dst.ip == a)) return true;
  }
  return false;
}

void Simulator::send_from(Endpoint& e, Endpoint::Iface& iface, Datagram d) {
  if (!iface.up || lossy(iface.spec.loss)) return;
  const Duration access = iface.spec.delay;
  // Same LAN (behind the same NAT): delivered without leaving it.
  if (iface.spec.nat) {
    for (auto& ep : endpoints_) {
      for (auto& other : ep->ifaces_) {
        if (other.spec.nat == iface.spec.nat && other.host() == d.dst) {
          Endpoint* target = ep.get();
          const std::uint32_t index = other.index;
          at(now_ + access + other.spec.delay, [target, index, d]() mutable {
            if (auto* i = target->iface(index)) target->deliver(*i, std::move(d));
          });
          return;
        }
      }
    }
    auto src = iface.spec.nat->outbound(d.src, d.dst, now_, infra_);
    if (!src) return;
    d.src = *src;
  }
  (void)e;
  if (blackholed(d)) return;
  const Duration core = d.dst.ip == relay_server.ip ? relay_leg_delay : core_delay;
  at(now_ + access + core, [this, d]() mutable { route(std::move(d)); });
}

void Simulator::route(Datagram d) {
  if (d.dst.ip == relay_server.ip) {
    relay_receive(std::move(d));
    return;
  }
  auto deliver_to = [this](Endpoint* ep, std::uint32_t index, Datagram d, Duration delay) {
    at(now_ + delay, [ep, index, d]() mutable {
      if (auto* i = ep->iface(index)) ep->deliver(*i, std::move(d));
    });
  };
  for (const auto& nat : nats_) {
    if (nat->public_ip() != d.dst.ip) continue;
    auto internal = nat->inbound(d.src, d.dst, now_, infra_);
    if (!internal) return;
    for (auto& ep : endpoints_) {
      for (auto& i : ep->ifaces_) {
        if (i.spec.nat == nat.get() && i.host() == *internal) {
          d.dst = *internal;
          deliver_to(ep.get(), i.index, std::move(d), i.spec.delay);
          return;
        }
      }
    }
    return;
  }
  for (auto& ep : endpoints_) {
    for (auto& i : ep->ifaces_) {
      if (!i.spec.nat && i.host() == d.dst) {
        deliver_to(ep.get(), i.index, std::move(d), i.spec.delay);
        return;
      }
    }
  }
  // Private or unknown destination: not routed.
}

SocketAddress Simulator::allocate(const SocketAddress& client) {
  Allocation a{client, SocketAddress{relay_server.ip, next_relay_port_++}, {}};
  allocations_.push_back(a);
  return a.relayed;
}

void Simulator::relay_receive(Datagram d) {
  if (d.dst == relay_server && d.peer) {
    for (auto& a : allocations_) {
      if (a.client != d.src) continue;
      a.permissions.insert(d.peer->ip);  // RFC 8656 §9 (installed by the client's TURN layer)
      Datagram out{a.relayed, *d.peer, std::move(d.data), std::nullopt};
      if (blackholed(out)) return;
      const Duration leg = out.dst.ip == relay_server.ip ? Duration::zero() : relay_leg_delay;
      at(now_ + leg, [this, out]() mutable { route(std::move(out)); });
      return;
    }
    return;
  }
  for (auto& a : allocations_) {
    if (a.relayed != d.dst) continue;
    if (!a.permissions.contains(d.src.ip)) return;  // RFC 8656 §9: no permission, dropped
    Datagram out{relay_server, a.client, std::move(d.data), d.src};
    at(now_ + relay_leg_delay, [this, out]() mutable { route(std::move(out)); });
    return;
  }
}

void Simulator::check_invariants(Endpoint& e) {
  if (auto sel = e.agent().selected_pair()) {
    auto state = e.agent().pair_state(sel->id);
    if (state != PairState::kSucceeded) {
      violations.push_back(e.name() + ": selected pair " + std::to_string(sel->id) +
                           " is not valid at t=" + std::to_string(to_ms(elapsed())) + " ms");
    }
  }
}

void Simulator::flush() {
  for (bool more = true; more;) {
    more = false;
    for (auto& ep : endpoints_) {
      Endpoint& e = *ep;
      while (auto t = e.agent().poll_transmit()) {
        more = true;
        e.send(t->local, t->destination, std::move(t->data));
      }
      while (auto ev = e.agent().poll_event()) {
        more = true;
        if (auto* s = std::get_if<SelectedPairChanged>(&*ev)) {
          e.selections.emplace_back(now_, *s);
          if (s->pair && e.agent().pair_state(s->pair->id) != PairState::kSucceeded) {
            violations.push_back(e.name() + ": selected a pair that is not valid");
          }
        }
        e.events.emplace_back(now_, std::move(*ev));
      }
      check_invariants(e);
    }
  }
}

void Simulator::run_until(TimePoint end) {
  int spins = 0;
  for (;;) {
    flush();
    TimePoint next = queue_.empty() ? kNever : queue_.top().at;
    for (auto& ep : endpoints_)
      next = std::min(next, ep->agent().next_deadline());
    if (next > end) {
      now_ = std::max(now_, end);
      return;
    }
    if (next <= now_) {
      if (++spins > 100'000) {
        violations.push_back("simulation stuck at t=" + std::to_string(to_ms(elapsed())));
        return;
      }
    } else {
      spins = 0;
      now_ = next;
    }
    while (!queue_.empty() && queue_.top().at <= now_) {
      auto fn = queue_.top().fn;
      queue_.pop();
      fn();
      flush();
    }
    for (auto& ep : endpoints_) {
      if (ep->agent().next_deadline() <= now_) ep->agent().handle_timeout(now_);
    }
  }
}

bool Simulator::run_until(const std::function<bool()>& pred, Duration limit) {
  const TimePoint end = now_ + limit;
  // Advance in 1 ms slices so the predicate is checked often without a per-step hook.
  while (!pred()) {
    if (now_ >= end) return false;
    run_until(std::min(end, now_ + milliseconds(1)));
  }
  return true;
}

}  // namespace roam::ice::sim
