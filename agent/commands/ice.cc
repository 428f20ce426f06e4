#include "agent/commands/ice.h"

#include <array>
#include <csignal>
#include <cstring>
#include <ostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/net/server_list.h"
#include "agent/paths/event_log.h"
#include "agent/paths/path_engine.h"
#include "agent/paths/signaling_link.h"

namespace roam::agent {

namespace asio = boost::asio;

namespace {

// --traffic-interval probes: 4-byte magic + 8-byte sequence number. 'R' (0x52) has the top
// bits 01, so a probe is never taken for STUN (00) by the demultiplexer.
constexpr std::array<std::byte, 4> kProbeRequest{std::byte{'R'}, std::byte{'M'}, std::byte{'P'},
                                                 std::byte{'Q'}};
constexpr std::array<std::byte, 4> kProbeAnswer{std::byte{'R'}, std::byte{'M'}, std::byte{'P'},
                                                std::byte{'A'}};
constexpr std::size_t kProbeSize = 12;
// After `bye` and the last events, how long the process lets the WebSocket write drain.
constexpr Duration kExitDrain = milliseconds(200);
// --connect is retried while the peer is not connected yet (peer_unavailable).
constexpr Duration kConnectRetry = seconds(1);

bool starts_with(ByteSpan data, const std::array<std::byte, 4>& magic) {
  return data.size() == kProbeSize && std::equal(magic.begin(), magic.end(), data.begin());
}

}  // namespace

int run_ice(const IceOptions& options, std::ostream& out, std::ostream& err) {
  if (options.signaling_urls.empty()) {
    err << "roam ice: --signaling is required\n";
    return 2;
  }
  for (const auto& url : options.signaling_urls) {
    if (auto parsed = parse_wss_url(url); !parsed) {
      err << "roam ice: " << parsed.error() << "\n";
      return 2;
    }
  }
  if (options.token.empty()) {
    err << "roam ice: --token (or ROAM_TOKEN) is required\n";
    return 2;
  }
  auto stun = parse_server_addresses(options.stun_servers, "--stun");
  if (!stun) {
    err << "roam ice: " << stun.error() << "\n";
    return 2;
  }
  if (options.relay_only && options.direct_only) {
    err << "roam ice: --relay-only and --direct-only exclude each other\n";
    return 2;
  }
  auto tls = net::make_tls_client_context(options.ca_file);
  if (!tls) {
    err << "roam ice: " << tls.error() << "\n";
    return 2;
  }
  const TimePoint start = Clock::now();
  auto log = EventLog::open(options.events_path, start);
  if (!log) {
    err << "roam ice: " << log.error() << "\n";
    return 1;
  }
  EventLog& events = **log;

  asio::io_context io;
  SystemRandom random;
  int status = 0;
  bool stopping = false;
  std::optional<std::string> session_id;
  std::uint64_t probe_sequence = 0;

  const PathEngineOptions engine_options = engine_options_for(options, *stun);

  std::unique_ptr<SignalingLink> link;
  std::unique_ptr<PathEngine> engine;
  asio::steady_timer duration_timer(io);
  asio::steady_timer connect_timer(io);
  asio::steady_timer traffic_timer(io);
  asio::steady_timer exit_timer(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);

  auto finish = [&](const std::string& reason, bool send_bye) {
    if (stopping) return;
    stopping = true;
    if (send_bye && session_id && link) link->send(signaling::Bye{*session_id, reason});
    if (engine) engine->write_stats();
    events.write("stopped", {{"reason", reason}}, Clock::now());
    if (engine) engine->stop();
    duration_timer.cancel();
    connect_timer.cancel();
    traffic_timer.cancel();
    signals.cancel();
    exit_timer.expires_after(kExitDrain);
    exit_timer.async_wait([&](const boost::system::error_code&) {
      if (!link) return io.stop();
      link->stop([&] { io.stop(); });
    });
  };

  PathEngineHandlers handlers;
  handlers.trickle = [&](const std::string& text) {
    if (session_id && link) link->send(signaling::Candidate{*session_id, text, std::nullopt});
  };
  handlers.data = [&](ice::LocalId local, const SocketAddress& from, ByteSpan data) {
    if (starts_with(data, kProbeRequest)) {
      engine->data_received(local, from);
      std::array<std::byte, kProbeSize> answer;
      std::copy(kProbeAnswer.begin(), kProbeAnswer.end(), answer.begin());
      std::copy(data.begin() + 4, data.end(), answer.begin() + 4);
      engine->send_to(local, from, answer);
    } else if (starts_with(data, kProbeAnswer)) {
      engine->data_received(local, from);
    }
  };
  handlers.address_removed = [&](const IpAddress& ip) {
    if (link) link->address_removed(ip);
  };
  engine = std::make_unique<PathEngine>(io.get_executor(), engine_options, events, random,
                                        std::move(handlers));

  const SignalingLinkOptions link_options = link_options_for(options, engine->local_credentials());

  std::function<void()> send_connect = [&] {
    if (options.connect_peer && !session_id && link && !stopping) {
      link->send(signaling::Connect{"connect-1", *options.connect_peer});
    }
  };

  link = std::make_unique<SignalingLink>(
      io.get_executor(), *tls, link_options,
      [&](const signaling::ServerMessage& message) {
        if (auto* s = std::get_if<signaling::Session>(&message)) {
          if (session_id) return;  // one session per run
          if (options.connect_peer && s->peer != *options.connect_peer) return;
          session_id = s->session;
          if (auto r = engine->on_session(*s); !r) {
            err << "roam ice: session " << s->session << ": " << r.error() << "\n";
            status = 1;
            finish("unusable session: " + r.error(), true);
          }
        } else if (auto* c = std::get_if<signaling::Candidate>(&message)) {
          engine->on_remote_candidate(*c);
        } else if (auto* b = std::get_if<signaling::Bye>(&message)) {
          if (session_id && b->session == *session_id) {
            events.write("bye", {{"reason", b->reason}}, Clock::now());
            finish("peer said bye: " + b->reason, false);
          }
        } else if (auto* e = std::get_if<signaling::Error>(&message)) {
          events.write("signaling_error",
                       {{"code", signaling::to_string(e->code)}, {"message", e->message}},
                       Clock::now());
          if (e->request && *e->request == "connect-1" && !session_id) {
            connect_timer.expires_after(kConnectRetry);
            connect_timer.async_wait([&](const boost::system::error_code& ec) {
              if (!ec) send_connect();
            });
          }
        }
      },
      [&](const SignalingLink::StateChange& change) {
        boost::json::object fields{{"state", change.connected ? "connected" : "disconnected"},
                                   {"url", change.url}};
        if (change.connected) {
          fields["server"] = change.detail;
        } else {
          fields["error"] = change.detail;
        }
        events.write("signaling", std::move(fields), Clock::now());
        if (change.connected) {
          send_connect();
        } else if (change.fatal) {
          err << "roam ice: signaling: " << change.detail << "\n";
          status = 1;
          finish("signaling refused: " + change.detail, false);
        }
      });

  events.write("started",
               {{"ufrag", engine->local_credentials().ufrag},
                {"connect", options.connect_peer ? *options.connect_peer : std::string()}},
               start);
  if (auto r = engine->start(); !r) {
    err << "roam ice: interface monitoring: " << r.error() << "\n";
    return 1;
  }
  link->start();

  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec) finish(signal == SIGINT ? "interrupted" : "terminated", true);
  });
  if (options.duration) {
    duration_timer.expires_after(*options.duration);
    duration_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) finish("duration reached", true);
    });
  }
  std::function<void()> traffic;
  if (options.traffic_interval) {
    traffic = [&] {
      std::array<std::byte, kProbeSize> probe;
      std::copy(kProbeRequest.begin(), kProbeRequest.end(), probe.begin());
      ++probe_sequence;
      for (int i = 0; i < 8; ++i) {
        probe[4 + i] = static_cast<std::byte>(probe_sequence >> (8 * (7 - i)));
      }
      engine->send_on_selected(probe, true);
      traffic_timer.expires_after(*options.traffic_interval);
      traffic_timer.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) traffic();
      });
    };
    traffic();
  }
  io.run();
  link.reset();
  engine.reset();
  (void)out;
  return status;
}

}  // namespace roam::agent
