#include "agent/session/runtime.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <ostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "agent/net/server_list.h"
#include "agent/paths/path_engine.h"
#include "agent/paths/path_events.h"
#include "agent/paths/signaling_link.h"
#include "agent/session/agent_metrics.h"
#include "agent/session/status_server.h"

namespace roam::agent {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// After `bye`, CONNECTION_CLOSE and the last events, how long the process lets them drain.
constexpr Duration kExitDrain = milliseconds(200);
// `goodput` events while application data flows (the demo's plot, docs/path-events.md).
constexpr Duration kGoodputInterval = milliseconds(250);
// --to is retried while the peer is not connected yet (peer_unavailable).
constexpr Duration kConnectRetry = seconds(1);
// Exit status when a signal ends the run (shell convention 128 + SIGINT).
constexpr int kInterrupted = 130;

double ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class Runtime final : public SessionContext {
 public:
  Runtime(const AgentOptions& options, Application& app, std::ostream& err)
      : options_(options), app_(app), err_(err) {}

  int run();

  // SessionContext
  asio::any_io_executor executor() override { return io_.get_executor(); }
  QuicSession& quic() override { return *quic_; }
  EventLog& events() override { return *events_; }
  const std::string& peer() const override { return peer_; }
  void stop(int status, const std::string& reason) override {
    status_ = status;
    finish(reason, true);
  }

 private:
  expected<void, std::string> validate();
  void on_message(const signaling::ServerMessage& message);
  void on_session(const signaling::Session& session);
  void finish(const std::string& reason, bool say_bye);
  void send_connect();
  void tick_goodput();
  json::object status_json() const;

  const AgentOptions& options_;
  Application& app_;
  std::ostream& err_;
  asio::io_context io_;
  SystemRandom random_;
  std::unique_ptr<EventLog> events_;
  std::shared_ptr<const quic::TlsIdentity> identity_;
  std::unique_ptr<PathEngine> engine_;
  std::unique_ptr<SignalingLink> link_;
  std::unique_ptr<QuicSession> quic_;
  std::unique_ptr<StatusServer> status_server_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::optional<std::string> session_id_;
  std::string peer_;
  int status_ = 0;
  bool stopping_ = false;
  bool first_byte_ = false;
  std::uint64_t goodput_bytes_ = 0;
  bool goodput_flowing_ = false;
  std::uint64_t sent_reported_ = 0;
  TimePoint last_data_{};                    // the last application byte received
  std::optional<TimePoint> blackout_since_;  // a path switch is waiting for the next byte  //
                                             // QuicSession::bytes_written() already in the metrics
  TimePoint start_ = Clock::now();
  TimePoint session_started_{};
  asio::steady_timer connect_timer_{io_};
  asio::steady_timer deadline_timer_{io_};
  asio::steady_timer exit_timer_{io_};
  asio::steady_timer goodput_timer_{io_};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
};

expected<void, std::string> Runtime::validate() {
  if (options_.signaling_urls.empty()) return unexpected(std::string("--signal is required"));
  for (const auto& url : options_.signaling_urls) {
    if (auto parsed = parse_wss_url(url); !parsed) return unexpected(parsed.error());
  }
  if (options_.token.empty()) {
    return unexpected(std::string("--token, --token-file or ROAM_TOKEN is required"));
  }
  if (options_.relay_only && options_.direct_only) {
    return unexpected(std::string("--relay-only and --direct-only exclude each other"));
  }
  return {};
}

int Runtime::run() {
  const std::string me = "roam " + app_.name() + ": ";
  if (auto v = validate(); !v) {
    err_ << me << v.error() << "\n";
    return 2;
  }
  auto stun = parse_server_addresses(options_.stun_servers, "--stun");
  if (!stun) {
    err_ << me << stun.error() << "\n";
    return 2;
  }
  auto tls = net::make_tls_client_context(options_.ca_file);
  if (!tls) {
    err_ << me << tls.error() << "\n";
    return 2;
  }
  auto log = EventLog::open(options_.events_path, start_);
  if (!log) {
    err_ << me << log.error() << "\n";
    return 1;
  }
  events_ = std::move(*log);
  auto identity = quic::TlsIdentity::generate();
  if (!identity) {
    err_ << me << "TLS identity: " << identity.error() << "\n";
    return 1;
  }
  identity_ = *identity;
  if (!options_.metrics_address.empty()) {
    auto m = AgentMetrics::start(options_.metrics_address);
    if (!m) {
      err_ << me << "--metrics: " << m.error() << "\n";
      return 2;
    }
    metrics_ = std::move(*m);
  }

  const PathEngineOptions engine_options = engine_options_for(options_, *stun);
  PathEngineHandlers handlers;
  handlers.trickle = [this](const std::string& text) {
    if (session_id_ && link_) link_->send(signaling::Candidate{*session_id_, text, std::nullopt});
    if (quic_) quic_->on_local_candidate(text);
  };
  handlers.data = [this](ice::LocalId local, const SocketAddress& from, ByteSpan data) {
    if (quic_) quic_->on_datagram(local, from, data);
  };
  handlers.address_removed = [this](const IpAddress& ip) {
    if (link_) link_->address_removed(ip);
  };
  handlers.selected = [this](const std::optional<ice::PairInfo>& pair, std::string_view reason) {
    if (metrics_) metrics_->selected(pair);
    if (quic_) quic_->on_selected(pair, reason);
  };
  handlers.candidate_removed = [this](const SocketAddress& address) {
    if (quic_) quic_->on_local_candidate_removed(address);
  };
  engine_ = std::make_unique<PathEngine>(io_.get_executor(), engine_options, *events_, random_,
                                         std::move(handlers));

  SignalingLinkOptions link_options = link_options_for(options_, engine_->local_credentials());
  link_options.hello.fingerprint = identity_->fingerprint();
  link_ = std::make_unique<SignalingLink>(
      io_.get_executor(), *tls, link_options,
      [this](const signaling::ServerMessage& m) { on_message(m); },
      [this](const SignalingLink::StateChange& change) {
        json::object fields{{"state", change.connected ? "connected" : "disconnected"},
                            {"url", change.url}};
        fields[change.connected ? "server" : "error"] = change.detail;
        events_->write("signaling", std::move(fields), Clock::now());
        if (change.connected) {
          send_connect();
        } else if (change.fatal) {
          err_ << "roam " << app_.name() << ": signaling: " << change.detail << "\n";
          status_ = 1;
          finish("signaling refused: " + change.detail, false);
        }
      });

  const std::string socket_path =
      options_.status_socket.empty()
          ? status_socket_dir() + "/roam-" + std::to_string(::getpid()) + ".sock"
          : options_.status_socket;
  if (options_.status_socket.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(status_socket_dir(), ec);
    std::filesystem::permissions(status_socket_dir(), std::filesystem::perms::owner_all, ec);
  }
  if (auto s =
          StatusServer::start(io_.get_executor(), socket_path, [this] { return status_json(); })) {
    status_server_ = std::move(*s);
  } else {
    events_->write("error", {{"what", "status_socket"}, {"error", s.error()}}, Clock::now());
  }

  events_->write("started",
                 {{"command", app_.name()},
                  {"ufrag", engine_->local_credentials().ufrag},
                  {"fingerprint", identity_->fingerprint()},
                  {"connect", options_.connect_peer ? *options_.connect_peer : std::string()}},
                 start_);
  if (auto r = engine_->start(); !r) {
    err_ << me << "interface monitoring: " << r.error() << "\n";
    return 1;
  }
  link_->start();
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    status_ = kInterrupted;
    finish(signal == SIGINT ? "interrupted" : "terminated", true);
  });
  if (options_.connect_timeout > Duration::zero()) {
    deadline_timer_.expires_after(options_.connect_timeout);
    deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || (quic_ && quic_->connected())) return;
      err_ << "roam " << app_.name() << ": no QUIC connection with "
           << (options_.connect_peer ? *options_.connect_peer : std::string("a peer")) << " within "
           << std::chrono::duration_cast<std::chrono::seconds>(options_.connect_timeout).count()
           << " s (see --events for the paths tried)\n";
      status_ = 1;
      finish("connect timeout", true);
    });
  }
  io_.run();
  quic_.reset();
  link_.reset();
  engine_.reset();
  status_server_.reset();
  return status_;
}

void Runtime::send_connect() {
  if (options_.connect_peer && !session_id_ && link_ && !stopping_) {
    link_->send(signaling::Connect{"connect-1", *options_.connect_peer});
    events_->write("connect_sent", {{"peer", *options_.connect_peer}}, Clock::now());
  }
}

void Runtime::on_message(const signaling::ServerMessage& message) {
  if (auto* s = std::get_if<signaling::Session>(&message)) {
    on_session(*s);
  } else if (auto* c = std::get_if<signaling::Candidate>(&message)) {
    engine_->on_remote_candidate(*c);
  } else if (auto* b = std::get_if<signaling::Bye>(&message)) {
    if (session_id_ && b->session == *session_id_) {
      events_->write("bye", {{"reason", b->reason}}, Clock::now());
      // The QUIC connection decides: a peer that said bye closes it (or its idle timeout does).
      if (!quic_ || !quic_->connected()) {
        status_ = app_.connection_closed("peer said bye: " + b->reason);
        finish("peer said bye: " + b->reason, false);
      }
    }
  } else if (auto* e = std::get_if<signaling::Error>(&message)) {
    events_->write("signaling_error",
                   {{"code", signaling::to_string(e->code)}, {"message", e->message}},
                   Clock::now());
    if (e->request && *e->request == "connect-1" && !session_id_) {
      connect_timer_.expires_after(kConnectRetry);
      connect_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) send_connect();
      });
    }
  }
}

void Runtime::on_session(const signaling::Session& s) {
  if (session_id_ || stopping_) return;  // one session per run
  if (options_.connect_peer && s.peer != *options_.connect_peer) return;
  session_id_ = s.session;
  peer_ = s.peer;
  session_started_ = Clock::now();
  events_->write("session_started",
                 {{"session", s.session},
                  {"peer", s.peer},
                  {"role", signaling::to_string(s.role)},
                  {"peer_fingerprint", s.fingerprint ? *s.fingerprint : std::string()}},
                 session_started_);
  if (auto r = engine_->on_session(s); !r) {
    err_ << "roam " << app_.name() << ": session " << s.session << ": " << r.error() << "\n";
    status_ = 1;
    finish("unusable session: " + r.error(), true);
    return;
  }
  QuicSessionHandlers h;
  h.connected = [this] { app_.connected(*this); };
  h.stream_opened = [this](quic::StreamId id) { app_.stream_opened(id); };
  h.stream_data = [this](quic::StreamId id, ByteSpan data, bool fin) {
    if (!first_byte_ && !data.empty()) {
      first_byte_ = true;
      json::object fields{{"stream", id},
                          {"since_session_ms", ms(Clock::now() - session_started_)}};
      if (auto pair = quic_->active_pair()) fields["kind"] = ice::to_string(pair->kind);
      events_->write("first_byte", std::move(fields), Clock::now());
    }
    if (metrics_) metrics_->received(data.size());
    if (!data.empty()) {
      const TimePoint now = Clock::now();
      if (blackout_since_ && metrics_) metrics_->blackout(now - *blackout_since_);
      blackout_since_.reset();
      last_data_ = now;
    }
    goodput_bytes_ += data.size();
    app_.stream_data(id, data, fin);
  };
  h.stream_acked = [this](quic::StreamId id) { app_.stream_acked(id); };
  h.stream_reset = [this](quic::StreamId id, std::uint64_t code) { app_.stream_reset(id, code); };
  h.path_switched = [this](const PathSwitch& change) {
    if (metrics_) metrics_->switched(change);
    // One blackout per silence, however many switches it holds (measured at the next byte).
    if (!blackout_since_ && last_data_ != TimePoint{}) blackout_since_ = last_data_;
    app_.path_switched(change);
  };
  h.closed = [this](const std::string& reason) {
    if (stopping_) return;
    status_ = app_.connection_closed(reason);
    finish("connection closed: " + reason, true);
  };
  quic_ = std::make_unique<QuicSession>(io_.get_executor(), *engine_, *events_, random_, identity_,
                                        s, std::move(h));
  tick_goodput();
}

void Runtime::tick_goodput() {
  goodput_timer_.expires_after(kGoodputInterval);
  goodput_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    if (metrics_ && quic_) {
      metrics_->sent(quic_->bytes_written() - sent_reported_);
      sent_reported_ = quic_->bytes_written();
    }
    if (goodput_bytes_ > 0 || goodput_flowing_) {
      const double seconds = std::chrono::duration<double>(kGoodputInterval).count();
      json::object fields{{"bytes", goodput_bytes_},
                          {"interval_ms", ms(kGoodputInterval)},
                          {"mbit_s", static_cast<double>(goodput_bytes_) * 8 / seconds / 1e6}};
      if (auto pair = quic_ ? quic_->active_pair() : std::nullopt) {
        fields["kind"] = ice::to_string(pair->kind);
        fields["interface"] = engine_->interface_of(*pair);
      }
      events_->write("goodput", std::move(fields), Clock::now());
    }
    goodput_flowing_ = goodput_bytes_ > 0;
    goodput_bytes_ = 0;
    tick_goodput();
  });
}

void Runtime::finish(const std::string& reason, bool say_bye) {
  if (stopping_) return;
  stopping_ = true;
  if (quic_ && !quic_->is_closed()) quic_->close(status_ == 0 ? 0 : 1, reason);
  if (say_bye && session_id_ && link_) link_->send(signaling::Bye{*session_id_, reason});
  if (engine_) engine_->write_stats();
  events_->write("stopped", {{"reason", reason}, {"status", status_}}, Clock::now());
  connect_timer_.cancel();
  deadline_timer_.cancel();
  goodput_timer_.cancel();
  signals_.cancel();
  exit_timer_.expires_after(kExitDrain);
  exit_timer_.async_wait([this](const boost::system::error_code&) {
    if (engine_) engine_->stop();
    if (!link_) return io_.stop();
    link_->stop([this] { io_.stop(); });
  });
}

json::object Runtime::status_json() const {
  json::object o{{"pid", ::getpid()},
                 {"command", app_.name()},
                 {"uptime_s", std::chrono::duration<double>(Clock::now() - start_).count()},
                 {"fingerprint", identity_ ? identity_->fingerprint() : std::string()}};
  json::object session;
  if (session_id_) {
    session["id"] = *session_id_;
    session["peer"] = peer_;
  }
  if (quic_) session["quic"] = quic_->status();
  if (const ice::Agent* agent = engine_ ? engine_->ice_agent() : nullptr) {
    session["ice_role"] = ice::to_string(agent->role());
    session["relay_reason"] = ice::to_string(agent->relay_reason());
    session["relay_reason_description"] = ice::describe(agent->relay_reason());
    session["pairs"] = engine_->pairs_json();
    if (auto sel = agent->selected_pair()) {
      session["selected"] = pair_json(*sel, engine_->interface_of(*sel));
    }
  }
  o["session"] = std::move(session);
  o["app"] = app_.status();
  return o;
}

}  // namespace

std::string status_socket_dir() {
  if (const char* dir = std::getenv("ROAM_STATUS_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
    return std::string(xdg) + "/roam";
  }
  return "/tmp/roam-" + std::to_string(::getuid());
}

int run_agent(const AgentOptions& options, Application& application, std::ostream& err) {
  Runtime runtime(options, application, err);
  return runtime.run();
}

}  // namespace roam::agent
