#include "agent/paths/path_engine.h"

#include <algorithm>
#include <map>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "agent/net/interface_monitor.h"
#include "agent/net/udp_socket.h"
#include "agent/paths/path_events.h"
#include "common/ice/candidate_text.h"
#include "common/ice/reflexive_gatherer.h"
#include "common/net/endpoint.h"
#include "common/stun/demux.h"
#include "common/turn/client.h"
#include "common/turn/uri.h"

namespace roam::agent {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::ip::udp;

namespace {

// The largest UDP payload (IPv4: 65,535 − 20 − 8).
constexpr std::size_t kMaxDatagram = 65507;
// At most one early STUN query per base per this interval (check_mapping_after()).
constexpr Duration kMappingCheckInterval = seconds(1);
// At most one allocation check (refresh) per this interval (check_relay_after()).
constexpr Duration kRelayCheckInterval = seconds(1);
// Datagrams read per socket readiness before the state machines run (on_batch()).
constexpr int kReceiveBatch = 32;
// Re-allocation after a lost or failed relay: first retry after 1 s, doubling up to 30 s.
constexpr Duration kRelayRetryInitial = seconds(1);
constexpr Duration kRelayRetryMax = seconds(30);
// Interface rank for local preferences (candidate.h): unmetered interfaces first.
constexpr std::uint16_t kMeteredRankOffset = 32;

std::uint64_t parse_token(const std::string& hex) {
  std::uint64_t v = 0;
  for (char c : hex) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<std::uint64_t>(c - '0');
    if (c >= 'a' && c <= 'f') v |= static_cast<std::uint64_t>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') v |= static_cast<std::uint64_t>(c - 'A' + 10);
  }
  return v;
}

}  // namespace

class PathEngine::Impl : public std::enable_shared_from_this<PathEngine::Impl> {
 public:
  Impl(asio::any_io_executor executor, PathEngineOptions options, EventLog& log,
       RandomSource& random, PathEngineHandlers handlers, ice::IceCredentials credentials)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        log_(log),
        random_(random),
        handlers_(std::move(handlers)),
        credentials_(std::move(credentials)),
        timer_(executor_),
        gatherer_(ice::ReflexiveGathererConfig{}, random_) {
    if (!options_.prewarm_server) {
      for (const auto& s : options_.stun_servers) {
        if (s.ip.is_v4()) {
          options_.prewarm_server = s;
          break;
        }
      }
    }
  }

  expected<void, std::string> start() {
    std::weak_ptr<Impl> weak = shared_from_this();
    monitor_ = std::make_unique<InterfaceMonitor>(
        executor_, InterfaceMonitorOptions{.policy = {.loopback = options_.include_loopback}},
        [weak](const std::vector<netlink::InterfaceChange>& changes) {
          if (auto self = weak.lock()) self->on_interface_changes(changes);
        },
        [] {},
        [weak](const std::string& error) {
          if (auto self = weak.lock()) {
            self->log_.write("error", {{"what", "netlink"}, {"error", error}}, Clock::now());
          }
        });
    if (auto r = monitor_->start(); !r) return r;
    next_stats_ = Clock::now() + options_.stats_interval;
    pump();
    return {};
  }

  void stop() {
    stopped_ = true;
    timer_.cancel();
    if (monitor_) monitor_->stop();
    if (relay_ && relay_->client->state() == turn::State::kAllocated) {
      // Release the allocation (RFC 8656 §7); best effort, no waiting for the answer.
      relay_->client->deallocate(Clock::now());
      flush_relay(Clock::now());
    }
    for (auto& [id, s] : sockets_) {
      boost::system::error_code ec;
      s->socket.close(ec);
    }
    sockets_.clear();
  }

  expected<void, std::string> on_session(const signaling::Session& session) {
    if (session_) return unexpected(std::string("a session is running already"));
    if (!session.ice) return unexpected(std::string("the peer sent no ICE credentials"));
    const TimePoint now = Clock::now();
    session_ = session;
    ice::AgentConfig config;
    config.role = session.role == signaling::Role::kControlling ? ice::Role::kControlling
                                                                : ice::Role::kControlled;
    config.local_credentials = credentials_;
    config.path_policy = options_.path_policy;
    config.prefer_unmetered = options_.prefer_unmetered;
    agent_ = std::make_unique<ice::Agent>(config, random_);
    if (auto r = agent_->set_remote_credentials({session.ice->ufrag, session.ice->pwd}); !r) {
      return unexpected("the peer's ICE credentials are invalid: " +
                        std::string(ice::describe(r.error())));
    }
    json::object fields{{"session", session.session},
                        {"role", signaling::to_string(session.role)},
                        {"peer", session.peer},
                        {"relay_token", session.relay && session.relay->token.has_value()},
                        {"reserved", nullptr},
                        {"remote_candidates", session.remote_candidates.size()}};
    if (session.relay && session.relay->address) {
      fields["reserved"] = session.relay->address->to_string();
    }
    log_.write("session", std::move(fields), now);
    for (const auto& [id, local] : locals_) {
      if (agent_->add_local_candidate(local, now)) trickle(local);
    }
    for (const auto& text : session.remote_candidates)
      add_remote(text, now);
    if (session.relay) {
      auto server = turn::parse_turn_uri(session.relay->uri);
      if (!server) {
        log_.write(
            "relay",
            {{"state", "failed"}, {"token", false}, {"error", "bad relay URI: " + server.error()}},
            now);
      } else {
        grant_server_ = *server;
        start_allocation(now, session.relay->token.has_value());
      }
    }
    pump();
    return {};
  }

  void on_remote_candidate(const signaling::Candidate& c) {
    if (!agent_ || !session_ || c.session != session_->session) return;
    const TimePoint now = Clock::now();
    if (c.end_of_candidates()) {
      agent_->set_remote_end_of_candidates();
      log_.write("end_of_candidates", {{"side", "remote"}}, now);
    } else {
      add_remote(*c.candidate, now);
    }
    pump();
  }

  bool send_on_selected(ByteSpan data, bool expects_answer) {
    if (!agent_) return false;
    auto pair = agent_->selected_pair();
    if (!pair) return false;
    const TimePoint now = Clock::now();
    if (!send_datagram(pair->local, pair->remote, data, now)) return false;
    if (expects_answer) {
      agent_->on_data_expected(pair->local, pair->remote, now);
      pump();
    }
    return true;
  }

  bool send_to(ice::LocalId local, const SocketAddress& to, ByteSpan data, bool expects_answer) {
    const TimePoint now = Clock::now();
    if (!send_datagram(local, to, data, now)) return false;
    if (expects_answer && agent_) {
      // Only starts a timer (no event, nothing to send): arming it is enough.
      agent_->on_data_expected(local, to, now);
      if (!in_batch_) arm_timer();
    }
    return true;
  }

  void on_remote_candidate_removed(const SocketAddress& address) {
    if (!agent_) return;
    const TimePoint now = Clock::now();
    auto it = std::ranges::find(remotes_, address);
    if (it == remotes_.end()) return;
    remotes_.erase(it);
    log_.write("candidate",
               {{"side", "remote"}, {"action", "removed"}, {"address", address.to_string()}}, now);
    agent_->remove_remote_candidate(address, now);
    pump();
  }

  void on_peer_path_failure() {
    if (!agent_) return;
    const TimePoint now = Clock::now();
    log_.write("peer_path_failure", {}, now);
    agent_->fail_selected(ice::PairFailure::kPeerReported, now);
    pump();
  }

  std::vector<std::string> local_candidates() const {
    std::vector<std::string> out;
    for (const auto& [id, l] : locals_)
      out.push_back(ice::to_string(l.candidate));
    return out;
  }

  bool has_local(ice::LocalId id) const { return locals_.contains(id); }

  void data_received(ice::LocalId local, const SocketAddress& from) {
    if (!agent_) return;
    agent_->on_data_received(local, from, Clock::now());
    if (!in_batch_) pump();
  }

  std::optional<ice::PairInfo> selected_pair() const {
    return agent_ ? agent_->selected_pair() : std::nullopt;
  }
  const ice::Agent* agent() const { return agent_.get(); }

  json::array pairs_json() const {
    json::array pairs;
    if (!agent_) return pairs;
    for (const auto& p : agent_->pairs()) {
      json::object o = pair_json(p, interface_name(p));
      auto state = agent_->pair_state(p.id);
      o["state"] = state ? ice::to_string(*state) : "failed";
      auto it = counters_.find({p.local, p.remote});
      o["sent"] = it == counters_.end() ? 0 : it->second.sent;
      o["received"] = it == counters_.end() ? 0 : it->second.received;
      pairs.push_back(std::move(o));
    }
    return pairs;
  }

  void write_stats() {
    const TimePoint now = Clock::now();
    json::object fields{{"pairs", pairs_json()}};
    if (agent_) {
      const auto& s = agent_->stats();
      fields["requests_sent"] = s.requests_sent;
      fields["responses_sent"] = s.responses_sent;
      fields["requests_received"] = s.requests_received;
      fields["responses_received"] = s.responses_received;
      fields["dropped_datagrams"] = s.dropped_datagrams;
    }
    fields["sockets"] = sockets_.size();
    log_.write("stats", std::move(fields), now);
  }

  std::string interface_of(const ice::PairInfo& pair) const { return interface_name(pair); }

 private:
  struct HostSocket {
    HostSocket(ice::LocalId i, udp::socket s) : id(i), socket(std::move(s)) {}
    ice::LocalId id;
    std::string ifname;
    std::uint32_t ifindex = 0;
    SocketAddress address;
    bool metered = false;
    std::uint16_t rank = 0;
    udp::socket socket;
    std::vector<std::byte> buffer = std::vector<std::byte>(kMaxDatagram);
    udp::endpoint sender;
  };
  struct RelaySlot {
    std::unique_ptr<turn::Client> client;
    ice::LocalId socket_id = 0;
    SocketAddress server;
    std::optional<ice::LocalId> relayed_id;
    TimePoint started{};
    bool allocating = false;
    bool with_token = false;
  };
  struct Counter {
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
  };

  // --- interfaces and host candidates ------------------------------------------------------

  bool wanted(const std::string& ifname) const {
    return options_.interfaces.empty() ||
           std::ranges::find(options_.interfaces, ifname) != options_.interfaces.end();
  }
  bool metered(const std::string& ifname) const {
    return std::ranges::find(options_.metered, ifname) != options_.metered.end();
  }

  void on_interface_changes(const std::vector<netlink::InterfaceChange>& changes) {
    if (stopped_) return;
    const TimePoint now = Clock::now();
    for (const auto& c : changes) {
      json::object fields{
          {"change", netlink::to_string(c.kind)}, {"interface", c.name}, {"index", c.index}};
      if (c.address) fields["address"] = c.address->address.to_string();
      log_.write("interface", std::move(fields), now);
      switch (c.kind) {
        case netlink::ChangeKind::kInterfaceDown:
          remove_interface(c.index, now);
          break;
        case netlink::ChangeKind::kAddressRemoved:
          if (c.address) remove_address(c.index, c.address->address, now);
          break;
        case netlink::ChangeKind::kAddressAdded:
          if (c.address && wanted(c.name)) add_address(c.name, c.index, c.address->address, now);
          break;
        case netlink::ChangeKind::kInterfaceUp:
          break;  // its addresses follow as kAddressAdded
      }
    }
    pump();
  }

  void add_address(const std::string& ifname, std::uint32_t ifindex, const IpAddress& ip,
                   TimePoint now) {
    for (const auto& [id, s] : sockets_) {
      if (s->ifindex == ifindex && s->address.ip == ip) return;
    }
    std::uint16_t address_index = 0;
    for (const auto& [id, s] : sockets_) {
      if (s->ifindex == ifindex && s->address.family() == ip.family()) ++address_index;
    }
    const bool is_metered = metered(ifname);
    const std::uint16_t rank =
        static_cast<std::uint16_t>((is_metered ? kMeteredRankOffset : 0) + std::min(ifindex, 31u));
    auto preference = ice::local_preference(rank, ip.family(), address_index);
    if (!preference) {
      log_.write("error",
                 {{"what", "gather"},
                  {"interface", ifname},
                  {"error", "too many addresses on this interface; ignored " + ip.to_string()}},
                 now);
      return;
    }
    auto opened = open_udp_socket(executor_, ifname, SocketAddress{ip, 0});
    if (!opened) {
      log_.write("error", {{"what", "socket"}, {"interface", ifname}, {"error", opened.error()}},
                 now);
      return;
    }
    boost::system::error_code ec;
    opened->socket.non_blocking(true, ec);
    auto bound = net::from_endpoint(opened->socket.local_endpoint(ec));
    const ice::LocalId id = next_id_++;
    auto s = std::make_shared<HostSocket>(id, std::move(opened->socket));
    s->ifname = ifname;
    s->ifindex = ifindex;
    s->address = SocketAddress{ip, bound.port};
    s->metered = is_metered;
    s->rank = rank;
    sockets_[id] = s;
    interface_names_[ifindex] = ifname;
    receive(s);

    ice::Candidate c;
    c.type = ice::CandidateType::kHost;
    c.address = s->address;
    c.priority = ice::compute_priority(ice::CandidateType::kHost, *preference);
    c.foundation = ice::compute_foundation(ice::CandidateType::kHost, ip, std::nullopt);
    add_local(ice::LocalCandidate{id, c, std::nullopt, ifname, ifindex, is_metered}, now);
    gatherer_.add_base(id, s->address, options_.stun_servers, now);
  }

  void remove_address(std::uint32_t ifindex, const IpAddress& ip, TimePoint now) {
    std::vector<ice::LocalId> gone;
    for (const auto& [id, s] : sockets_) {
      if (s->ifindex == ifindex && s->address.ip == ip) gone.push_back(id);
    }
    for (auto id : gone)
      remove_base(id, now);
    if (handlers_.address_removed) handlers_.address_removed(ip);
  }

  void remove_interface(std::uint32_t ifindex, TimePoint now) {
    std::vector<ice::LocalId> gone;
    std::vector<IpAddress> addresses;
    for (const auto& [id, s] : sockets_) {
      if (s->ifindex != ifindex) continue;
      gone.push_back(id);
      addresses.push_back(s->address.ip);
    }
    for (auto id : gone)
      remove_base(id, now);
    if (handlers_.address_removed) {
      for (const auto& ip : addresses)
        handlers_.address_removed(ip);
    }
  }

  // The socket `id` is gone (its address or link): its candidates, their pairs, the relay
  // allocation if it ran on it.
  void remove_base(ice::LocalId id, TimePoint now) {
    gatherer_.remove_base(id);
    last_mapping_check_.erase(id);
    std::vector<ice::LocalId> derived;
    for (const auto& [lid, l] : locals_) {
      if (l.base == id) derived.push_back(lid);
    }
    for (auto lid : derived)
      remove_local(lid, now);
    // The socket goes first: a relay re-allocation started from here must not pick it.
    if (auto it = sockets_.find(id); it != sockets_.end()) {
      boost::system::error_code ec;
      it->second->socket.close(ec);
      sockets_.erase(it);
    }
    if (relay_ && relay_->socket_id == id) drop_relay(now, "its interface went away", true);
    remove_local(id, now);
  }

  void add_local(const ice::LocalCandidate& local, TimePoint now) {
    locals_[local.id] = local;
    log_.write("candidate", candidate_json("local", "added", local.candidate, local.interface_name),
               now);
    if (!agent_) return;
    if (auto r = agent_->add_local_candidate(local, now); !r) {
      log_.write("error",
                 {{"what", "candidate"},
                  {"error", std::string(ice::describe(r.error()))},
                  {"candidate", ice::to_string(local.candidate)}},
                 now);
      return;
    }
    trickle(local);
  }

  void remove_local(ice::LocalId id, TimePoint now) {
    auto it = locals_.find(id);
    if (it == locals_.end()) return;
    log_.write("candidate",
               candidate_json("local", "removed", it->second.candidate, it->second.interface_name),
               now);
    const SocketAddress address = it->second.candidate.address;
    if (agent_) agent_->remove_local_candidate(id, now);
    locals_.erase(it);
    if (session_ && handlers_.candidate_removed) handlers_.candidate_removed(address);
  }

  void trickle(const ice::LocalCandidate& local) {
    if (!session_ || !handlers_.trickle) return;
    // A relayed candidate equal to the reserved address the peer already got in its session.
    handlers_.trickle(ice::to_string(local.candidate));
  }

  void add_remote(const std::string& text, TimePoint now) {
    auto parsed = ice::parse_candidate(text);
    if (!parsed) {
      log_.write(
          "error",
          {{"what", "remote_candidate"}, {"error", std::string(ice::describe(parsed.error()))}},
          now);
      return;
    }
    if (auto r = agent_->add_remote_candidate(*parsed, now); !r) {
      log_.write("error",
                 {{"what", "remote_candidate"}, {"error", std::string(ice::describe(r.error()))}},
                 now);
      return;
    }
    if (std::ranges::find(remotes_, parsed->address) != remotes_.end()) return;  // duplicate
    log_.write("candidate", candidate_json("remote", "added", *parsed, {}), now);
    remotes_.push_back(parsed->address);
    permit(parsed->address, now);
  }

  std::string interface_name(ice::LocalId id) const {
    auto it = locals_.find(id);
    return it == locals_.end() ? std::string() : it->second.interface_name;
  }
  // By index: still known after the interface's candidates are gone (their pairs' last events).
  std::string interface_name(const ice::PairInfo& pair) const {
    auto it = interface_names_.find(pair.interface_index);
    return it == interface_names_.end() ? std::string() : it->second;
  }

  // --- relay -------------------------------------------------------------------------------

  HostSocket* relay_socket_for(const SocketAddress& server) {
    HostSocket* best = nullptr;
    for (const auto& [id, s] : sockets_) {
      if (s->address.family() != server.family()) continue;
      if (!best || s->rank < best->rank) best = s.get();
    }
    return best;
  }

  void start_allocation(TimePoint now, bool use_token) {
    if (!grant_server_ || !session_ || !session_->relay) return;
    const auto& grant = *session_->relay;
    turn::Credentials credentials{grant.username, grant.password};
    const bool reuse = relay_ && !relay_->allocating && relay_->server == *grant_server_ &&
                       sockets_.contains(relay_->socket_id);
    if (!reuse) {
      drop_relay(now, {}, false);
      HostSocket* s = relay_socket_for(*grant_server_);
      if (!s) {
        relay_retry_at_ = now + relay_backoff_;  // no socket of that family yet
        return;
      }
      relay_.emplace();
      relay_->socket_id = s->id;
      relay_->server = *grant_server_;
      turn::ClientConfig config;
      config.server = *grant_server_;
      relay_->client = std::make_unique<turn::Client>(config, random_);
    }
    relay_->client->set_credentials(credentials);
    relay_->allocating = true;
    relay_->started = now;
    relay_->with_token = use_token && grant.token.has_value();
    turn::AllocateOptions o;
    if (relay_->with_token) o.reservation_token = parse_token(*grant.token);
    relay_->client->allocate(now, o);
    relay_retry_at_ = kNever;
  }

  void drop_relay(TimePoint now, const std::string& why, bool retry) {
    if (!relay_) return;
    if (relay_->relayed_id) remove_local(*relay_->relayed_id, now);
    if (!why.empty())
      log_.write("relay", {{"state", "lost"}, {"token", false}, {"error", why}}, now);
    relay_.reset();
    if (retry && session_) {
      // The first retry is immediate: another interface can usually allocate at once, and the
      // relay is the backup path of last resort.
      relay_retry_at_ = relay_backoff_ == kRelayRetryInitial ? now : now + relay_backoff_;
      relay_backoff_ = std::min(relay_backoff_ * 2, kRelayRetryMax);
    }
  }

  void maybe_prewarm(TimePoint now) {
    if (session_ || !options_.prewarm_server) return;
    if (relay_ && now - relay_->started < options_.prewarm_refresh &&
        sockets_.contains(relay_->socket_id)) {
      return;
    }
    relay_.reset();
    HostSocket* s = relay_socket_for(*options_.prewarm_server);
    if (!s) return;
    relay_.emplace();
    relay_->socket_id = s->id;
    relay_->server = *options_.prewarm_server;
    relay_->started = now;
    turn::ClientConfig config;
    config.server = *options_.prewarm_server;
    relay_->client = std::make_unique<turn::Client>(config, random_);
    relay_->client->prewarm(now);
  }

  // Installs the permission (through a channel, RFC 8656 §12) the peer's packets to our
  // relayed address need, and which sending to it needs.
  void permit(const SocketAddress& peer, TimePoint now) {
    if (!relay_ || !relay_->relayed_id) return;
    auto& client = *relay_->client;
    if (client.channel_for(peer)) return;
    if (!client.bind_channel(now, peer)) client.create_permission(now, peer.ip);
  }

  void flush_relay(TimePoint now) {
    if (!relay_) return;
    auto it = sockets_.find(relay_->socket_id);
    if (it == sockets_.end()) {
      drop_relay(now, "its socket is gone", true);
      return;
    }
    while (auto d = relay_->client->poll_transmit())
      send_raw(*it->second, relay_->server, *d);
  }

  bool drain_relay(TimePoint now) {
    if (!relay_) return false;
    bool work = false;
    flush_relay(now);
    while (relay_) {
      auto e = relay_->client->poll_event();
      if (!e) break;
      work = true;
      if (auto* a = std::get_if<turn::Allocated>(&*e)) {
        on_allocated(*a, now);
      } else if (auto* f = std::get_if<turn::AllocationFailed>(&*e)) {
        const bool had_token = relay_->with_token;
        log_.write("relay",
                   {{"state", "failed"},
                    {"token", had_token},
                    {"error", std::to_string(f->code) + " " + f->reason}},
                   now);
        relay_.reset();
        // A token that no longer redeems (expired, taken) is no reason to stay without a
        // relay: allocate normally at once; other failures back off.
        if (had_token) {
          start_allocation(now, false);
        } else {
          relay_retry_at_ = now + relay_backoff_;
          relay_backoff_ = std::min(relay_backoff_ * 2, kRelayRetryMax);
        }
      } else if (auto* l = std::get_if<turn::AllocationLost>(&*e)) {
        drop_relay(now, std::to_string(l->code) + " " + l->reason, true);
      } else if (std::holds_alternative<turn::NoncePrewarmed>(*e)) {
        log_.write("relay", {{"state", "prewarmed"}, {"server", relay_->server.to_string()}}, now);
      }
    }
    if (relay_) flush_relay(now);
    return work;
  }

  void on_allocated(const turn::Allocated& a, TimePoint now) {
    auto sock = sockets_.find(relay_->socket_id);
    if (sock == sockets_.end()) return;
    const HostSocket& s = *sock->second;
    relay_backoff_ = kRelayRetryInitial;
    log_.write("relay",
               {{"state", "allocated"},
                {"relayed", a.relayed.to_string()},
                {"mapped", a.mapped.to_string()},
                {"round_trips", a.round_trips},
                {"token", relay_->with_token},
                {"elapsed_ms", to_ms(now - relay_->started)},
                {"interface", s.ifname}},
               now);
    const ice::LocalId id = next_id_++;
    relay_->relayed_id = id;
    ice::Candidate c;
    c.type = ice::CandidateType::kRelayed;
    c.address = a.relayed;
    c.related = a.mapped;
    c.priority =
        ice::compute_priority(ice::CandidateType::kRelayed,
                              ice::local_preference(s.rank, a.relayed.family()).value_or(0));
    c.foundation =
        ice::compute_foundation(ice::CandidateType::kRelayed, a.relayed.ip, relay_->server.ip);
    add_local(ice::LocalCandidate{id, c, std::nullopt, s.ifname, s.ifindex, s.metered}, now);
    for (const auto& r : remotes_)
      permit(r, now);
  }

  // --- reflexive gathering ------------------------------------------------------------------

  bool drain_gatherer(TimePoint now) {
    bool work = false;
    while (auto t = gatherer_.poll_transmit()) {
      work = true;
      auto it = sockets_.find(t->local);
      if (it != sockets_.end()) send_raw(*it->second, t->destination, t->data);
    }
    while (auto r = gatherer_.poll_result()) {
      work = true;
      if (!r->changed) continue;
      auto key = std::pair{r->base, r->server};
      if (auto old = srflx_.find(key); old != srflx_.end()) {
        remove_local(old->second, now);
        srflx_.erase(old);
      }
      if (!r->mapped) continue;
      auto base = locals_.find(r->base);
      auto sock = sockets_.find(r->base);
      if (base == locals_.end() || sock == sockets_.end()) continue;
      if (*r->mapped == base->second.candidate.address) continue;  // no NAT: same as the host
      // Two servers seeing one mapping give one candidate (RFC 8445 §5.1.3 redundancy).
      bool duplicate = false;
      for (const auto& [k, lid] : srflx_) {
        if (k.first == r->base && locals_.at(lid).candidate.address == *r->mapped) duplicate = true;
      }
      const ice::LocalId id = next_id_++;
      if (!duplicate) srflx_[key] = id;
      ice::Candidate c;
      c.type = ice::CandidateType::kServerReflexive;
      c.address = *r->mapped;
      c.related = base->second.candidate.address;
      c.priority = ice::compute_priority(
          ice::CandidateType::kServerReflexive,
          ice::local_preference(sock->second->rank, r->mapped->family()).value_or(0));
      c.foundation = ice::compute_foundation(ice::CandidateType::kServerReflexive,
                                             base->second.candidate.address.ip, r->server.ip);
      if (duplicate) continue;
      add_local(ice::LocalCandidate{id, c, r->base, base->second.interface_name,
                                    base->second.interface_index, base->second.metered},
                now);
    }
    return work;
  }

  // --- ICE agent ---------------------------------------------------------------------------

  bool drain_agent(TimePoint now) {
    if (!agent_) return false;
    bool work = false;
    while (auto t = agent_->poll_transmit()) {
      work = true;
      send_datagram(t->local, t->destination, t->data, now);
    }
    while (auto e = agent_->poll_event()) {
      work = true;
      on_agent_event(*e, now);
    }
    return work;
  }

  // A working pair through a relay died. If our TURN server restarted (or our NAT rebound,
  // which moves us to a 5-tuple it does not know), nothing else would tell: the allocation is
  // only refreshed minutes later. Refresh it now: a 437 answer (RFC 8656 §7.3) means it is gone,
  // and the engine allocates again at once and trickles the new relayed candidate.
  // A direct pair that worked died: our NAT may have rebound. Ask STUN again from its base now
  // (at most once per kMappingCheckInterval per base): a changed mapping becomes a new
  // server-reflexive candidate, trickled at once, instead of at the next 25 s refresh.
  void check_mapping_after(const ice::PairStateChanged& ev, TimePoint now) {
    if (ev.state != ice::PairState::kFailed || ev.pair.local_type == ice::CandidateType::kRelayed)
      return;
    if (ev.failure != ice::PairFailure::kKeepaliveTimeout &&
        ev.failure != ice::PairFailure::kDataTimeout &&
        ev.failure != ice::PairFailure::kPeerReported) {
      return;
    }
    auto it = locals_.find(ev.pair.local);
    if (it == locals_.end()) return;
    const ice::LocalId base = it->second.base.value_or(ev.pair.local);
    TimePoint& last = last_mapping_check_[base];
    if (now - last < kMappingCheckInterval) return;
    last = now;
    gatherer_.refresh_now(base, now);
  }

  void check_relay_after(const ice::PairStateChanged& ev, TimePoint now) {
    if (ev.state != ice::PairState::kFailed || !relay_) return;
    if (relay_->client->state() != turn::State::kAllocated) return;
    if (ev.failure != ice::PairFailure::kKeepaliveTimeout &&
        ev.failure != ice::PairFailure::kConsentExpired &&
        ev.failure != ice::PairFailure::kDataTimeout &&
        ev.failure != ice::PairFailure::kPeerReported) {
      return;
    }
    if (ev.pair.local_type != ice::CandidateType::kRelayed &&
        ev.pair.remote_type != ice::CandidateType::kRelayed) {
      return;
    }
    if (now - last_relay_check_ < kRelayCheckInterval) return;
    last_relay_check_ = now;
    log_.write("relay", {{"state", "checking"}, {"why", "a relayed pair failed"}}, now);
    relay_->client->refresh(now);
  }

  void on_agent_event(const ice::Event& e, TimePoint now) {
    std::visit(
        [&](const auto& ev) {
          using T = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<T, ice::PairStateChanged>) {
            log_.write("pair", pair_state_json(ev, interface_name(ev.pair)), now);
            check_relay_after(ev, now);
            check_mapping_after(ev, now);
          } else if constexpr (std::is_same_v<T, ice::SelectedPairChanged>) {
            log_.write("selected", selected_json(ev, ev.pair ? interface_name(*ev.pair) : ""), now);
            if (handlers_.selected) handlers_.selected(ev.pair, ice::to_string(ev.reason));
          } else if constexpr (std::is_same_v<T, ice::RelayReasonChanged>) {
            log_.write(
                "relay_reason",
                {{"reason", ice::to_string(ev.reason)}, {"description", ice::describe(ev.reason)}},
                now);
          } else if constexpr (std::is_same_v<T, ice::ConsentLost>) {
            log_.write("consent_lost", pair_json(ev.pair, interface_name(ev.pair)), now);
          } else if constexpr (std::is_same_v<T, ice::RoleChanged>) {
            log_.write("role", {{"role", ice::to_string(ev.role)}}, now);
          } else if constexpr (std::is_same_v<T, ice::PeerReflexiveLearned>) {
            json::object o = candidate_json("remote", "added", ev.candidate, {});
            o["learned_on"] = interface_name(ev.local);
            log_.write("candidate", std::move(o), now);
            if (std::ranges::find(remotes_, ev.candidate.address) == remotes_.end()) {
              remotes_.push_back(ev.candidate.address);
            }
            permit(ev.candidate.address, now);
          }
        },
        e);
  }

  // --- sockets -----------------------------------------------------------------------------

  void send_raw(HostSocket& s, const SocketAddress& to, ByteSpan data) {
    boost::system::error_code ec;
    s.socket.send_to(asio::buffer(data.data(), data.size()), net::to_endpoint(to), 0, ec);
    // Errors (EAGAIN on a full buffer, ENETUNREACH while a route is missing) lose this one
    // datagram, which every sender here tolerates: STUN retransmits, QUIC recovers.
  }

  bool send_datagram(ice::LocalId local, const SocketAddress& to, ByteSpan data, TimePoint now) {
    ++counters_[{local, to}].sent;
    if (relay_ && relay_->relayed_id == local) {
      permit(to, now);
      auto wrapped = relay_->client->wrap(to, data);
      if (!wrapped) return false;
      auto it = sockets_.find(relay_->socket_id);
      if (it == sockets_.end()) return false;
      flush_relay(now);  // a ChannelBind goes before the ChannelData that uses it
      send_raw(*it->second, relay_->server, *wrapped);
      return true;
    }
    auto it = sockets_.find(local);
    if (it == sockets_.end()) return false;
    send_raw(*it->second, to, data);
    return true;
  }

  void receive(const std::shared_ptr<HostSocket>& s) {
    std::weak_ptr<Impl> weak = shared_from_this();
    s->socket.async_receive_from(asio::buffer(s->buffer), s->sender,
                                 [weak, s](const boost::system::error_code& ec, std::size_t n) {
                                   auto self = weak.lock();
                                   if (!self || self->stopped_ || !s->socket.is_open()) return;
                                   if (!ec) self->on_batch(*s, n);
                                   // Errors such as ECONNREFUSED (an ICMP port unreachable for an
                                   // earlier send) do not end a UDP socket: keep reading unless it
                                   // was closed.
                                   if (ec == asio::error::operation_aborted || !s->socket.is_open())
                                     return;
                                   self->receive(s);
                                 });
  }

  // The datagram that completed an asynchronous receive and every one queued behind it (up to
  // kReceiveBatch), read without waiting; the state machines are pumped once for the batch, so
  // a burst of QUIC packets costs one timer update and one QUIC flush, not one per datagram.
  void on_batch(HostSocket& s, std::size_t first) {
    in_batch_ = true;
    on_datagram(s, ByteSpan(s.buffer.data(), first));
    for (int i = 1; i < kReceiveBatch && s.socket.is_open() && !stopped_; ++i) {
      boost::system::error_code ec;
      s.socket.non_blocking(true, ec);
      const std::size_t n = s.socket.receive_from(asio::buffer(s.buffer), s.sender, 0, ec);
      if (ec) break;  // would_block: drained (other errors: the next asynchronous read sees them)
      on_datagram(s, ByteSpan(s.buffer.data(), n));
    }
    in_batch_ = false;
    pump();
  }

  void on_datagram(HostSocket& s, ByteSpan data) {
    const TimePoint now = Clock::now();
    const SocketAddress from = net::from_endpoint(s.sender);
    const bool from_turn = relay_ && relay_->socket_id == s.id && from == relay_->server;
    if (stun::looks_like_stun(data)) {
      auto m = stun::Message::parse(data);
      if (m && gatherer_.handle_response(s.id, from, *m, now)) {
        if (!in_batch_) pump();
        return;
      }
    }
    if (from_turn) {
      auto kind = stun::classify(data, true);
      if (kind == stun::PacketKind::kStun || kind == stun::PacketKind::kChannelData) {
        if (auto peer = relay_->client->handle_datagram(now, data)) {
          if (relay_->relayed_id) deliver(*relay_->relayed_id, peer->peer, peer->data, now);
        }
      }
      if (!in_batch_) pump();
      return;
    }
    deliver(s.id, from, data, now);
    if (!in_batch_) pump();
  }

  void deliver(ice::LocalId local, const SocketAddress& from, ByteSpan data, TimePoint now) {
    if (stun::looks_like_stun(data)) {
      if (!agent_) return;  // no session yet: nobody can have our credentials
      ++counters_[{local, from}].received;
      (void)agent_->handle_stun(local, from, data, now);
      return;
    }
    if (handlers_.data) handlers_.data(local, from, data);
  }

  // --- the loop ----------------------------------------------------------------------------

  TimePoint next_deadline() const {
    TimePoint t = gatherer_.next_deadline();
    if (agent_) t = std::min(t, agent_->next_deadline());
    if (relay_) t = std::min(t, relay_->client->next_deadline());
    t = std::min(t, relay_retry_at_);
    if (options_.stats_interval > Duration::zero()) t = std::min(t, next_stats_);
    if (!session_ && relay_) t = std::min(t, relay_->started + options_.prewarm_refresh);
    return t;
  }

  void pump() {
    if (stopped_) return;
    for (int round = 0; round < 64; ++round) {
      const TimePoint now = Clock::now();
      if (gatherer_.next_deadline() <= now) gatherer_.handle_timeout(now);
      if (relay_ && relay_->client->next_deadline() <= now) relay_->client->handle_timeout(now);
      if (agent_ && agent_->next_deadline() <= now) agent_->handle_timeout(now);
      if (relay_retry_at_ <= now) {
        relay_retry_at_ = kNever;
        start_allocation(now, false);
      }
      maybe_prewarm(now);
      if (options_.stats_interval > Duration::zero() && next_stats_ <= now) {
        next_stats_ = now + options_.stats_interval;
        if (session_) write_stats();
      }
      bool work = drain_gatherer(now);
      work = drain_relay(now) || work;
      work = drain_agent(now) || work;
      if (!work && next_deadline() > Clock::now()) break;
    }
    arm_timer();
  }

  void arm_timer() {
    const TimePoint deadline = next_deadline();
    // A timer armed earlier than needed stays: it fires, pumps and re-arms. Re-arming on every
    // later deadline would cost a timerfd_settime per datagram under QUIC traffic (the data
    // liveness deadline moves with every packet sent and received).
    if (armed_for_ <= deadline) return;
    armed_for_ = deadline;
    timer_.cancel();
    timer_.expires_at(deadline);
    std::weak_ptr<Impl> weak = shared_from_this();
    timer_.async_wait([weak](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->armed_for_ = kNever;
        self->pump();
      }
    });
  }

  asio::any_io_executor executor_;
  PathEngineOptions options_;
  EventLog& log_;
  RandomSource& random_;
  PathEngineHandlers handlers_;
  ice::IceCredentials credentials_;
  asio::steady_timer timer_;
  TimePoint armed_for_ = kNever;
  bool stopped_ = false;
  bool in_batch_ = false;  // inside on_batch(): pump once at its end
  TimePoint last_relay_check_{};
  std::map<ice::LocalId, TimePoint> last_mapping_check_;  // check_mapping_after()

  std::unique_ptr<InterfaceMonitor> monitor_;
  std::map<ice::LocalId, std::shared_ptr<HostSocket>> sockets_;
  std::map<ice::LocalId, ice::LocalCandidate> locals_;
  std::map<std::pair<ice::LocalId, SocketAddress>, ice::LocalId> srflx_;
  std::map<std::uint32_t, std::string> interface_names_;  // every interface ever seen
  std::vector<SocketAddress> remotes_;
  ice::LocalId next_id_ = 1;
  ice::ReflexiveGatherer gatherer_;

  std::optional<RelaySlot> relay_;
  std::optional<SocketAddress> grant_server_;
  TimePoint relay_retry_at_ = kNever;
  Duration relay_backoff_ = kRelayRetryInitial;

  std::optional<signaling::Session> session_;
  std::unique_ptr<ice::Agent> agent_;
  std::map<std::pair<ice::LocalId, SocketAddress>, Counter> counters_;
  TimePoint next_stats_ = kNever;
};

PathEngine::PathEngine(asio::any_io_executor executor, PathEngineOptions options, EventLog& log,
                       RandomSource& random, PathEngineHandlers handlers)
    : credentials_(ice::generate_credentials(random)) {
  impl_ = std::make_shared<Impl>(std::move(executor), std::move(options), log, random,
                                 std::move(handlers), credentials_);
}

PathEngine::~PathEngine() {
  impl_->stop();
}

expected<void, std::string> PathEngine::start() {
  return impl_->start();
}
void PathEngine::stop() {
  impl_->stop();
}
expected<void, std::string> PathEngine::on_session(const signaling::Session& session) {
  return impl_->on_session(session);
}
void PathEngine::on_remote_candidate(const signaling::Candidate& candidate) {
  impl_->on_remote_candidate(candidate);
}
bool PathEngine::send_on_selected(ByteSpan data, bool expects_answer) {
  return impl_->send_on_selected(data, expects_answer);
}
bool PathEngine::send_to(ice::LocalId local, const SocketAddress& to, ByteSpan data,
                         bool expects_answer) {
  return impl_->send_to(local, to, data, expects_answer);
}
void PathEngine::on_remote_candidate_removed(const SocketAddress& address) {
  impl_->on_remote_candidate_removed(address);
}
void PathEngine::on_peer_path_failure() {
  impl_->on_peer_path_failure();
}
std::vector<std::string> PathEngine::local_candidates() const {
  return impl_->local_candidates();
}
bool PathEngine::has_local(ice::LocalId local) const {
  return impl_->has_local(local);
}
boost::json::array PathEngine::pairs_json() const {
  return impl_->pairs_json();
}
std::string PathEngine::interface_of(const ice::PairInfo& pair) const {
  return impl_->interface_of(pair);
}
void PathEngine::data_received(ice::LocalId local, const SocketAddress& from) {
  impl_->data_received(local, from);
}
std::optional<ice::PairInfo> PathEngine::selected_pair() const {
  return impl_->selected_pair();
}
const ice::Agent* PathEngine::ice_agent() const {
  return impl_->agent();
}
void PathEngine::write_stats() {
  impl_->write_stats();
}

}  // namespace roam::agent
