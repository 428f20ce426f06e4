#include "agent/session/quic_session.h"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "agent/paths/path_events.h"

namespace roam::agent {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// See arm_timer().
constexpr Duration kTimerSlack = std::chrono::microseconds(1000);
// Transmits sent per turn of the event loop before the socket reads get a turn.
constexpr int kTransmitBurst = 64;
// The server keeps a pair's path identity while it is in use or was used this recently: late
// packets of the old path after a switch keep their identity, while a real return to a pair
// (a client migrating back) gets a fresh one (notes/ngtcp2-0.12.1.md, quirk 3).
constexpr Duration kPathIdentityReuse = milliseconds(500);
// Path identities remembered (each is a binding of a PathId to an ICE pair).
constexpr std::size_t kMaxPathBindings = 16;
// Control-stream pings: keep an idle connection well inside the 30 s idle timeout, measure RTT.
constexpr Duration kPingInterval = seconds(5);
// A switch request that arrives this soon after the client migrated concerns the old path.
constexpr Duration kSwitchRequestGrace = milliseconds(100);
// Local candidates remembered as sent on the control stream (duplicates are not resent).
constexpr std::size_t kMaxAnnounced = 256;

bool same_pair(const ice::PairInfo& a, const ice::PairInfo& b) {
  return a.local == b.local && a.remote == b.remote;
}

// RFC 9000 §17.2.2: a long header (0x80) Initial (type 0) of QUIC version 1.
bool looks_like_initial(ByteSpan data) {
  if (data.size() < 7) return false;
  const auto first = std::to_integer<std::uint8_t>(data[0]);
  if ((first & 0x80) == 0 || ((first & 0x30) >> 4) != 0) return false;
  return std::to_integer<std::uint8_t>(data[1]) == 0 &&
         std::to_integer<std::uint8_t>(data[2]) == 0 &&
         std::to_integer<std::uint8_t>(data[3]) == 0 && std::to_integer<std::uint8_t>(data[4]) == 1;
}

double ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

QuicSession::QuicSession(asio::any_io_executor executor, PathEngine& engine, EventLog& log,
                         RandomSource& random, std::shared_ptr<const quic::TlsIdentity> identity,
                         const signaling::Session& session, QuicSessionHandlers handlers)
    : executor_(executor),
      engine_(engine),
      log_(log),
      random_(random),
      identity_(std::move(identity)),
      session_(session),
      handlers_(std::move(handlers)),
      is_client_(session.role == signaling::Role::kControlling),
      started_(Clock::now()),
      timer_(executor),
      ping_timer_(executor) {
  if (is_client_) {
    if (auto pair = engine_.selected_pair()) on_selected(pair, "first-valid");
  }
}

QuicSession::~QuicSession() {
  *alive_ = false;
  timer_.cancel();
  ping_timer_.cancel();
}

quic::ConnectionHandlers QuicSession::connection_handlers() {
  quic::ConnectionHandlers h;
  h.handshake_completed = [this] {
    connected_ = true;
    const TimePoint now = Clock::now();
    json::object fields{{"role", is_client_ ? "client" : "server"},
                        {"handshake_ms", ms(now - started_)}};
    if (auto pair = active_pair()) fields["path"] = pair_json(*pair, engine_.interface_of(*pair));
    log_.write("quic_connected", std::move(fields), now);
    if (is_client_) open_control_stream();
    send_ping();
    if (handlers_.connected) handlers_.connected();
  };
  h.handshake_confirmed = [this] {
    confirmed_ = true;
    // The selection may have moved during the handshake: follow it now (RFC 9000 §9: no
    // migration before the handshake is confirmed).
    if (is_client_ && wanted_ && !same_pair(*wanted_, paths_.at(current_path_).pair)) {
      migrate_to(*wanted_, wanted_reason_);
    }
  };
  h.stream_opened = [this](quic::StreamId id) {
    if (!control_stream_ && !is_client_ && id == 0) {
      control_stream_ = id;
      for (const auto& text : engine_.local_candidates())
        on_local_candidate(text);
      return;
    }
    if (handlers_.stream_opened) handlers_.stream_opened(id);
  };
  h.stream_data = [this](quic::StreamId id, ByteSpan data, bool fin) {
    if (control_stream_ && id == *control_stream_) {
      on_control_data(data);
      return;
    }
    if (handlers_.stream_data) handlers_.stream_data(id, data, fin);
  };
  h.stream_acked = [this](quic::StreamId id) {
    if (control_stream_ && id == *control_stream_) {
      if (!control_pending_.empty()) {
        const std::size_t n = connection_->write(id, control_pending_);
        control_pending_.erase(control_pending_.begin(), control_pending_.begin() + n);
      }
      return;
    }
    if (handlers_.stream_acked) handlers_.stream_acked(id);
  };
  h.stream_reset = [this](quic::StreamId id, std::uint64_t code) {
    if (handlers_.stream_reset) handlers_.stream_reset(id, code);
  };
  h.path_changed = [this](quic::PathId id) {
    const quic::PathId old = current_path_;
    current_path_ = id;
    if (old != id) switched(old, id, "peer-migrated");
  };
  h.path_validated = [this](quic::PathId id, bool ok) {
    auto it = paths_.find(id);
    json::object fields{{"ok", ok}};
    if (it != paths_.end())
      fields["path"] = pair_json(it->second.pair, engine_.interface_of(it->second.pair));
    log_.write("path_validated", std::move(fields), Clock::now());
  };
  h.closed = [this](const std::string& reason) {
    // Not from inside the connection's own call stack: the owner may destroy everything.
    std::weak_ptr<bool> alive = alive_;
    asio::post(executor_, [this, alive, reason] {
      if (auto a = alive.lock(); a && *a) finish_close(reason);
    });
  };
  return h;
}

// --- from the path engine -------------------------------------------------------------------

void QuicSession::on_selected(const std::optional<ice::PairInfo>& pair, std::string_view reason) {
  if (closed_) return;
  if (!is_client_) {
    // The server follows the client's migrations. When its own end of the active path died,
    // it asks the client to move (the client may not see it for a liveness timeout).
    if (connected_ && (reason == "selected-failed" || reason == "selected-removed")) {
      send_control(session::SwitchRequest{std::string(reason)});
      flush();
    }
    return;
  }
  if (!pair) {
    wanted_.reset();
    return;
  }
  wanted_ = *pair;
  wanted_reason_ = std::string(reason);
  if (!connection_) {
    start_client(*pair);
  } else if (confirmed_ && !same_pair(*pair, paths_.at(current_path_).pair)) {
    migrate_to(*pair, wanted_reason_);
  }
}

void QuicSession::start_client(const ice::PairInfo& pair) {
  if (!session_.fingerprint) {
    finish_close("the peer announced no certificate fingerprint");
    return;
  }
  quic::ConnectionConfig config;
  config.is_client = true;
  config.peer_fingerprint = *session_.fingerprint;
  const quic::PathId id = next_path_++;
  paths_[id] = PathBinding{pair, Clock::now()};
  current_path_ = id;
  auto c = quic::Connection::connect(config, identity_, id, random_, Clock::now(),
                                     connection_handlers());
  if (!c) {
    finish_close("QUIC: " + c.error());
    return;
  }
  connection_ = std::move(*c);
  log_.write("quic_connecting",
             {{"role", "client"}, {"path", pair_json(pair, engine_.interface_of(pair))}},
             Clock::now());
  switched(0, id, "first-valid");
  flush();
}

void QuicSession::accept(ice::LocalId local, const SocketAddress& from, ByteSpan data) {
  if (!looks_like_initial(data)) return;
  if (!session_.fingerprint) {
    finish_close("the peer announced no certificate fingerprint");
    return;
  }
  const TimePoint now = Clock::now();
  quic::ConnectionConfig config;
  config.is_client = false;
  config.peer_fingerprint = *session_.fingerprint;
  const quic::PathId id = server_path_for(local, from, now);
  auto c =
      quic::Connection::accept(config, identity_, id, data, random_, now, connection_handlers());
  if (!c) {
    log_.write("error", {{"what", "quic_accept"}, {"error", c.error()}}, now);
    paths_.erase(id);
    return;
  }
  connection_ = std::move(*c);
  current_path_ = id;
  engine_.data_received(local, from);
  log_.write("quic_accepted",
             {{"role", "server"},
              {"path", pair_json(paths_.at(id).pair, engine_.interface_of(paths_.at(id).pair))}},
             now);
  switched(0, id, "first-valid");
  flush();
}

quic::PathId QuicSession::server_path_for(ice::LocalId local, const SocketAddress& from,
                                          TimePoint now) {
  quic::PathId best = 0;
  for (auto& [id, b] : paths_) {
    if (b.pair.local != local || b.pair.remote != from) continue;
    if (id == current_path_ || now - b.last_used < kPathIdentityReuse) best = std::max(best, id);
  }
  if (best != 0) {
    paths_[best].last_used = now;
    return best;
  }
  // A new pair, or a pair the client returns to: a fresh identity.
  ice::PairInfo pair;
  pair.local = local;
  pair.remote = from;
  if (const ice::Agent* agent = engine_.ice_agent()) {
    for (const auto& p : agent->pairs()) {
      if (p.local == local && p.remote == from) pair = p;
    }
  }
  const quic::PathId id = next_path_++;
  paths_[id] = PathBinding{pair, now};
  trim_paths();
  return id;
}

// Keeps the newest kMaxPathBindings identities (and always the current one).
void QuicSession::trim_paths() {
  while (paths_.size() > kMaxPathBindings) {
    auto oldest = paths_.begin();
    if (oldest->first == current_path_) ++oldest;
    paths_.erase(oldest);
  }
}

void QuicSession::on_datagram(ice::LocalId local, const SocketAddress& from, ByteSpan data) {
  if (closed_) return;
  if (!connection_) {
    if (!is_client_) accept(local, from, data);
    return;
  }
  const TimePoint now = Clock::now();
  // The client hands every packet to its current path: the server may answer on another pair
  // (its end of the path died), and an ngtcp2 client drops packets from unknown paths.
  const quic::PathId path = is_client_ ? current_path_ : server_path_for(local, from, now);
  if (connection_->receive(path, data, now)) engine_.data_received(local, from);
  flush();
}

void QuicSession::on_local_candidate(const std::string& text) {
  if (!control_stream_ || closed_) return;
  if (std::ranges::find(announced_, text) != announced_.end()) return;
  if (announced_.size() >= kMaxAnnounced) announced_.clear();
  announced_.push_back(text);
  send_control(session::Candidate{text});
  flush();
}

void QuicSession::on_local_candidate_removed(const SocketAddress& address) {
  if (!control_stream_ || closed_) return;
  std::erase_if(announced_, [&](const std::string& text) {
    return text.find(" " + address.ip.to_string() + " " + std::to_string(address.port) + " ") !=
           std::string::npos;
  });
  send_control(session::CandidateRemoved{address});
  flush();
}

// --- migration --------------------------------------------------------------------------------

void QuicSession::migrate_to(const ice::PairInfo& pair, const std::string& reason) {
  const TimePoint now = Clock::now();
  const quic::PathId id = next_path_++;
  paths_[id] = PathBinding{pair, now};
  if (auto r = connection_->migrate(id, now); !r) {
    log_.write("error",
               {{"what", "migration"},
                {"error", r.error()},
                {"to", pair_json(pair, engine_.interface_of(pair))}},
               now);
    paths_.erase(id);
    return;
  }
  const quic::PathId old = current_path_;
  current_path_ = id;
  trim_paths();
  switched(old, id, reason);
  flush();
}

void QuicSession::switched(quic::PathId from, quic::PathId to, const std::string& reason) {
  PathSwitch change;
  if (auto it = paths_.find(from); it != paths_.end()) change.from = it->second.pair;
  change.to = paths_.at(to).pair;
  change.reason = reason;
  change.at = Clock::now();
  json::object fields{{"reason", reason},
                      {"kind", ice::to_string(change.to.kind)},
                      {"to", pair_json(change.to, engine_.interface_of(change.to))}};
  fields["from"] = from == 0
                       ? json::value(nullptr)
                       : json::value(pair_json(change.from, engine_.interface_of(change.from)));
  log_.write("path_switched", std::move(fields), change.at);
  if (handlers_.path_switched) handlers_.path_switched(change);
}

// --- output -------------------------------------------------------------------------------------

void QuicSession::send_transmit(const quic::Transmit& t) {
  auto it = paths_.find(t.path);
  if (it == paths_.end()) return;
  const ice::PairInfo* pair = &it->second.pair;
  std::optional<ice::PairInfo> fallback;
  if (!is_client_) {
    // The server's end of the client's path may be dead (its interface went away, or the pair
    // failed): answer on the best pair it has, so the client hears it (and the switch request).
    const ice::Agent* agent = engine_.ice_agent();
    const bool gone =
        !engine_.has_local(pair->local) ||
        (agent && pair->id != 0 &&
         agent->pair_state(pair->id).value_or(ice::PairState::kFailed) == ice::PairState::kFailed);
    if (gone && (fallback = engine_.selected_pair())) pair = &*fallback;
  }
  engine_.send_to(pair->local, pair->remote, t.data, t.ack_eliciting);
}

void QuicSession::flush() {
  if (flush_posted_ || !connection_ || closed_) return;
  flush_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  asio::post(executor_, [this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    flush_posted_ = false;
    flush_now();
  });
}

void QuicSession::flush_now() {
  if (!connection_ || in_flush_ || closed_) return;
  in_flush_ = true;
  const TimePoint now = Clock::now();
  int sent = 0;
  bool more = false;
  while (auto t = connection_->poll_transmit(now)) {
    send_transmit(*t);
    if (++sent == kTransmitBurst) {
      more = true;
      break;
    }
  }
  in_flush_ = false;
  if (more) flush();  // the rest after the socket reads got a turn
  arm_timer();
}

void QuicSession::arm_timer() {
  if (!connection_ || closed_) return;
  TimePoint deadline = connection_->next_deadline();
  // Timer slack: at loopback RTTs ngtcp2's ACK delay is srtt/8 (a few hundred microseconds),
  // and a timer per ACK costs more (timerfd_settime, a wakeup) than the ACK. Deadlines closer
  // than kTimerSlack are rounded up to it; at WAN RTTs the ACK delay is max_ack_delay (5 ms).
  if (deadline != TimePoint::max()) deadline = std::max(deadline, Clock::now() + kTimerSlack);
  // An earlier timer stays armed (it fires, handles nothing yet and re-arms): moving the timer
  // later on every flush would cost a timerfd_settime per packet.
  if (deadline >= armed_) return;
  armed_ = deadline;
  timer_.expires_at(deadline);
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    on_timer();
  });
}

void QuicSession::on_timer() {
  armed_ = TimePoint::max();
  if (!connection_ || closed_) return;
  connection_->handle_timeout(Clock::now());
  flush_now();
}

// --- control stream
// -------------------------------------------------------------------------------

void QuicSession::open_control_stream() {
  auto id = connection_->open_stream();
  if (!id) {
    log_.write("error", {{"what", "control_stream"}, {"error", id.error()}}, Clock::now());
    return;
  }
  control_stream_ = *id;
  for (const auto& text : engine_.local_candidates())
    on_local_candidate(text);
}

void QuicSession::send_control(const session::ControlFrame& frame) {
  if (!control_stream_ || !connection_) return;
  Bytes bytes = session::encode(frame);
  if (!control_pending_.empty()) {
    control_pending_.insert(control_pending_.end(), bytes.begin(), bytes.end());
    return;
  }
  const std::size_t n = connection_->write(*control_stream_, bytes);
  control_pending_.assign(bytes.begin() + n, bytes.end());
}

void QuicSession::on_control_data(ByteSpan data) {
  if (auto r = control_reader_.feed(data); !r) {
    log_.write("error", {{"what", "control_stream"}, {"error", r.error()}}, Clock::now());
    close(1, "control stream: " + r.error());
    return;
  }
  while (auto frame = control_reader_.next())
    on_control_frame(*frame);
}

void QuicSession::on_control_frame(const session::ControlFrame& frame) {
  const TimePoint now = Clock::now();
  std::visit(
      [&](const auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, session::Candidate>) {
          engine_.on_remote_candidate(signaling::Candidate{session_.session, f.text, std::nullopt});
        } else if constexpr (std::is_same_v<T, session::EndOfCandidates>) {
          // Recorded by the engine only for the diagnosis; nothing to do here.
        } else if constexpr (std::is_same_v<T, session::CandidateRemoved>) {
          engine_.on_remote_candidate_removed(f.address);
        } else if constexpr (std::is_same_v<T, session::SwitchRequest>) {
          log_.write("switch_request", {{"reason", f.reason}}, now);
          if (!is_client_) return;
          auto it = paths_.find(current_path_);
          if (it != paths_.end() && now - it->second.last_used < kSwitchRequestGrace) return;
          engine_.on_peer_path_failure();
        } else if constexpr (std::is_same_v<T, session::Ping>) {
          send_control(session::Pong{f.nonce});
        } else if constexpr (std::is_same_v<T, session::Pong>) {
          if (f.nonce == ping_nonce_) control_rtt_ = now - ping_sent_;
        }
      },
      frame);
  flush();
}

void QuicSession::send_ping() {
  if (closed_) return;
  if (control_stream_) {
    ping_nonce_ = random_.next_u64();
    ping_sent_ = Clock::now();
    send_control(session::Ping{ping_nonce_});
    flush();
  }
  ping_timer_.expires_after(kPingInterval);
  std::weak_ptr<bool> alive = alive_;
  ping_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    auto a = alive.lock();
    if (!ec && a && *a) send_ping();
  });
}

// --- application API
// ----------------------------------------------------------------------------------

expected<quic::StreamId, std::string> QuicSession::open_stream() {
  if (!connection_ || !connected_) return unexpected(std::string("not connected"));
  return connection_->open_stream();
}

std::size_t QuicSession::write(quic::StreamId stream, ByteSpan data) {
  if (!connection_ || closed_) return 0;
  const std::size_t n = connection_->write(stream, data);
  bytes_written_ += n;
  return n;
}

void QuicSession::finish(quic::StreamId stream) {
  if (connection_ && !closed_) connection_->finish(stream);
}

void QuicSession::reset(quic::StreamId stream, std::uint64_t app_error) {
  if (connection_ && !closed_) connection_->reset(stream, app_error);
}

std::size_t QuicSession::unacked(quic::StreamId stream) const {
  return connection_ ? connection_->unacked(stream) : 0;
}

void QuicSession::close(std::uint64_t app_error, const std::string& reason) {
  if (closed_) return;
  if (!connection_) {
    finish_close(reason);
    return;
  }
  connection_->close(app_error, reason, Clock::now());
  flush();
}

void QuicSession::finish_close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  ping_timer_.cancel();
  log_.write("quic_closed", {{"reason", reason}}, Clock::now());
  if (handlers_.closed) handlers_.closed(reason);
}

std::optional<quic::ConnectionStats> QuicSession::stats() const {
  if (!connection_) return std::nullopt;
  return connection_->stats();
}

std::optional<ice::PairInfo> QuicSession::active_pair() const {
  auto it = paths_.find(current_path_);
  if (it == paths_.end()) return std::nullopt;
  return it->second.pair;
}

json::object QuicSession::status() const {
  json::object o{
      {"role", is_client_ ? "client" : "server"}, {"connected", connected_}, {"closed", closed_}};
  if (auto pair = active_pair()) o["active_path"] = pair_json(*pair, engine_.interface_of(*pair));
  if (auto s = stats()) {
    o["rtt_ms"] = ms(s->smoothed_rtt);
    o["min_rtt_ms"] = ms(s->min_rtt);
    o["cwnd"] = s->cwnd;
    o["bytes_in_flight"] = s->bytes_in_flight;
    o["migrations"] = s->migrations;
    o["datagrams_sent"] = s->datagrams_sent;
    o["datagrams_received"] = s->datagrams_received;
  }
  if (control_rtt_) o["control_rtt_ms"] = ms(*control_rtt_);
  return o;
}

}  // namespace roam::agent
