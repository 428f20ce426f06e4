#include "agent/doctor/doctor.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <future>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "agent/net/interfaces.h"
#include "agent/net/udp_socket.h"
#include "common/auth/turn_rest.h"
#include "common/net/endpoint.h"

namespace roam::agent {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

// TURN REST credentials for the probe live only as long as the probe needs them.
constexpr auto kDoctorCredentialLifetime = std::chrono::seconds(300);

struct ResolvedServer {
  std::string text;
  std::optional<SocketAddress> v4, v6;
  const std::optional<SocketAddress>& for_family(AddressFamily f) const {
    return f == AddressFamily::kIPv4 ? v4 : v6;
  }
};

ResolvedServer resolve(asio::io_context& io, const std::string& text, const char* option) {
  std::string host, port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument(std::string(option) + ": expected [IPv6]:PORT, got '" + text +
                                  "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument(std::string(option) + ": expected HOST:PORT, got '" + text + "'");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc{} || end != port.data() + port.size() || number == 0 || number > 65535) {
    throw std::invalid_argument(std::string(option) + ": bad port in '" + text + "'");
  }
  udp::resolver resolver(io);
  boost::system::error_code rec;
  auto results = resolver.resolve(host, port, rec);
  if (rec) {
    throw std::invalid_argument(std::string(option) + ": cannot resolve '" + host +
                                "': " + rec.message());
  }
  ResolvedServer out{text, {}, {}};
  for (const auto& r : results) {
    auto a = net::from_endpoint(r.endpoint());
    if (a.ip.is_v4() && !out.v4) out.v4 = a;
    if (a.ip.is_v6() && !out.v6) out.v6 = a;
  }
  return out;
}

std::string family_name(const IpAddress& a) {
  return a.is_v4() ? "IPv4" : "IPv6";
}

std::string ms(Duration d) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << to_ms(d) << " ms";
  return s.str();
}

std::string verdict_for(const InterfaceReport& r, bool turn_asked) {
  if (!r.skipped.empty()) return "not probed: " + r.skipped;
  std::string v;
  if (!r.stun.mapped) {
    v = "STUN failed (" + r.stun.error + ")";
  } else if (r.stun.mapped->ip == r.local) {
    v = r.stun.mapped->port == 0 ? "no NAT" : "no NAT on this path: direct UDP from this address";
  } else {
    v = "behind NAT: " + r.local.to_string() + " is seen as " + r.stun.mapped->ip.to_string() +
        " (peers need server-reflexive candidates or a relay)";
  }
  if (turn_asked && r.turn) {
    v += r.turn->relayed ? "; relay works" : "; relay FAILED: " + r.turn->error;
  }
  return v;
}

asio::awaitable<void> probe_interface(InterfaceReport& report, const ResolvedServer& stun,
                                      const std::optional<ResolvedServer>& turn,
                                      const DoctorOptions& options) {
  auto executor = co_await asio::this_coro::executor;
  auto socket = open_udp_socket(executor, report.interface, SocketAddress{report.local, 0});
  if (!socket) {
    report.skipped = socket.error();
    co_return;
  }
  report.bound_to_device = socket->bound_to_device;
  const auto family = report.local.family();
  report.stun = co_await probe_stun(socket->socket, *stun.for_family(family), options.timeout);
  if (turn) {
    const auto& server = turn->for_family(family);
    if (!server) {
      report.turn =
          TurnProbeResult{.error = "TURN server has no " + family_name(report.local) + " address"};
    } else {
      auto now = static_cast<std::int64_t>(std::time(nullptr));
      auto credentials =
          auth::turn_rest::mint(options.turn_secret, "roam-doctor", now, kDoctorCredentialLifetime);
      if (!credentials) {
        report.turn =
            TurnProbeResult{.error = std::string(auth::turn_rest::describe(credentials.error()))};
      } else {
        // A named variable, not a braced temporary inside co_await: GCC 12 destroys such
        // temporaries twice (notes/platform.md).
        turn::Credentials turn_credentials{credentials->username, credentials->password};
        report.turn = co_await probe_turn(socket->socket, *server, std::move(turn_credentials),
                                          options.timeout);
        if (report.turn->relayed && !options.realm.empty() && report.turn->realm != options.realm) {
          report.turn->error = "server realm is '" + report.turn->realm + "', not '" +
                               options.realm + "' as configured";
        }
      }
    }
  }
}

}  // namespace

DoctorReport run_doctor(const DoctorOptions& options) {
  asio::io_context io;
  if (options.stun.empty())
    throw std::invalid_argument("--stun: a STUN server HOST:PORT is required");
  ResolvedServer stun = resolve(io, options.stun, "--stun");
  std::optional<ResolvedServer> turn;
  if (options.turn || !options.turn_secret.empty()) {
    if (options.turn_secret.empty()) {
      throw std::invalid_argument(
          "--turn-secret: needed with --turn (coturn's static-auth-secret)");
    }
    turn = resolve(io, options.turn.value_or(options.stun), "--turn");
  }
  DoctorReport report;
  report.stun_server = stun.text;
  report.turn_server = turn ? turn->text : "";

  // A loopback server is only reachable from loopback addresses and vice versa.
  const bool server_is_loopback =
      (stun.v4 && stun.v4->ip.is_loopback()) || (stun.v6 && stun.v6->ip.is_loopback());
  for (const auto& a : list_interface_addresses()) {
    if (!options.interfaces.empty() &&
        std::find(options.interfaces.begin(), options.interfaces.end(), a.interface) ==
            options.interfaces.end()) {
      continue;
    }
    if (a.loopback != server_is_loopback) continue;
    InterfaceReport r{.interface = a.interface, .local = a.address};
    if (!a.up) {
      r.skipped = "interface is down";
    } else if (a.address.is_v6() && a.address.is_link_local()) {
      r.skipped = "IPv6 link-local address (reaches only the local link)";
    } else if (!stun.for_family(a.address.family())) {
      r.skipped = "the STUN server has no " + family_name(a.address) + " address";
    }
    report.interfaces.push_back(std::move(r));
  }

  // All interfaces are probed at once: a dead one costs its timeout once, not once each.
  std::vector<std::future<void>> probes;
  for (auto& r : report.interfaces) {
    if (!r.skipped.empty()) continue;
    probes.push_back(asio::co_spawn(io, probe_interface(r, stun, turn, options), asio::use_future));
  }
  io.run();
  for (auto& p : probes)
    p.get();

  int probed = 0, direct = 0, natted = 0, relayed = 0;
  for (auto& r : report.interfaces) {
    r.verdict = verdict_for(r, turn.has_value());
    if (!r.skipped.empty()) continue;
    ++probed;
    if (r.stun.mapped) (r.stun.mapped->ip == r.local ? direct : natted)++;
    if (r.turn && r.turn->relayed && r.turn->error.empty()) ++relayed;
  }
  const bool stun_ok = direct + natted > 0;
  const bool turn_ok = !turn || relayed > 0;
  report.ok = stun_ok && turn_ok;
  std::ostringstream s;
  if (probed == 0) {
    s << "nothing to probe: no usable interface address for this server";
  } else {
    s << "STUN answered on " << (direct + natted) << " of " << probed << " address(es)";
    if (natted > 0) s << " (" << natted << " behind NAT)";
    if (turn) s << "; TURN relay works on " << relayed << " of " << probed;
    if (!stun_ok)
      s << ". No STUN answer anywhere: UDP to " << stun.text << " is blocked or the server is down";
    else if (turn && !turn_ok)
      s << ". The relay fails: see the errors above";
  }
  report.summary = s.str();
  return report;
}

void print_text(const DoctorReport& report, std::ostream& out) {
  out << "roam doctor: STUN " << report.stun_server;
  if (!report.turn_server.empty()) out << ", TURN " << report.turn_server;
  out << "\n";
  for (const auto& r : report.interfaces) {
    out << "\n" << r.interface << " " << family_name(r.local) << " " << r.local.to_string();
    if (r.skipped.empty())
      out << (r.bound_to_device ? " (bound to device)" : " (bound by address)");
    out << "\n";
    if (r.skipped.empty()) {
      if (r.stun.mapped) {
        out << "  server-reflexive  " << r.stun.mapped->to_string() << "  (rtt " << ms(r.stun.rtt)
            << ", " << r.stun.transmissions << " transmission(s))\n";
      } else {
        out << "  server-reflexive  none: " << r.stun.error << "\n";
      }
      if (r.turn) {
        if (r.turn->relayed) {
          out << "  relay             " << r.turn->relayed->to_string() << "  ("
              << r.turn->round_trips << " round trip(s), " << ms(r.turn->elapsed) << ", realm "
              << r.turn->realm << ")\n";
        } else {
          out << "  relay             none: " << r.turn->error << "\n";
        }
      }
    }
    out << "  verdict           " << r.verdict << "\n";
  }
  out << "\nsummary: " << report.summary << "\n";
}

void print_json(const DoctorReport& report, std::ostream& out) {
  namespace json = boost::json;
  json::array interfaces;
  for (const auto& r : report.interfaces) {
    json::object o;
    o["interface"] = r.interface;
    o["family"] = r.local.is_v4() ? "ipv4" : "ipv6";
    o["local"] = r.local.to_string();
    o["probed"] = r.skipped.empty();
    if (!r.skipped.empty()) o["skipped"] = r.skipped;
    if (r.skipped.empty()) {
      o["bound_to_device"] = r.bound_to_device;
      json::object stun;
      stun["ok"] = r.stun.mapped.has_value();
      if (r.stun.mapped) stun["mapped"] = r.stun.mapped->to_string();
      stun["rtt_ms"] = to_ms(r.stun.rtt);
      stun["transmissions"] = r.stun.transmissions;
      if (!r.stun.error.empty()) stun["error"] = r.stun.error;
      stun["nat"] =
          r.stun.mapped ? json::value(r.stun.mapped->ip != r.local) : json::value(nullptr);
      o["stun"] = std::move(stun);
      if (r.turn) {
        json::object turn;
        turn["ok"] = r.turn->relayed.has_value() && r.turn->error.empty();
        if (r.turn->relayed) turn["relayed"] = r.turn->relayed->to_string();
        if (r.turn->mapped) turn["mapped"] = r.turn->mapped->to_string();
        turn["round_trips"] = r.turn->round_trips;
        turn["elapsed_ms"] = to_ms(r.turn->elapsed);
        turn["realm"] = r.turn->realm;
        turn["deallocated"] = r.turn->deallocated;
        if (!r.turn->error.empty()) turn["error"] = r.turn->error;
        o["turn"] = std::move(turn);
      }
    }
    o["verdict"] = r.verdict;
    interfaces.push_back(std::move(o));
  }
  json::object root;
  root["stun_server"] = report.stun_server;
  if (!report.turn_server.empty()) root["turn_server"] = report.turn_server;
  root["interfaces"] = std::move(interfaces);
  root["summary"] = report.summary;
  root["ok"] = report.ok;
  out << json::serialize(root) << "\n";
}

}  // namespace roam::agent
