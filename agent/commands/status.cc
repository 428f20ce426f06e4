#include "agent/commands/status.h"

#include <cstdio>
#include <filesystem>
#include <ostream>

#include <boost/json.hpp>

#include "agent/session/runtime.h"
#include "agent/session/status_server.h"

namespace roam::agent {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string text(const json::value* v) {
  if (!v) return "-";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_null()) return "-";
  if (v->is_double()) {
    char t[32];
    std::snprintf(t, sizeof t, "%.1f", v->as_double());
    return t;
  }
  return json::serialize(*v);
}

const json::value* field(const json::object& o, std::string_view key) {
  return o.if_contains(key);
}

std::string describe_pair(const json::object& p) {
  std::string s = text(field(p, "kind")) + " " + text(field(p, "interface")) + " " +
                  text(field(p, "local")) + " -> " + text(field(p, "remote"));
  if (auto* rtt = field(p, "rtt_ms"); rtt && rtt->is_number()) {
    char t[32];
    std::snprintf(t, sizeof t, "  rtt %.1f ms", rtt->to_number<double>());
    s += t;
  }
  return s;
}

void print(const json::object& status, std::ostream& out) {
  out << "agent pid " << text(field(status, "pid")) << " (roam " << text(field(status, "command"))
      << "), up " << text(field(status, "uptime_s")) << " s\n";
  const auto* session = field(status, "session");
  if (!session || !session->is_object() || !session->as_object().contains("id")) {
    out << "  no session yet\n";
    return;
  }
  const auto& s = session->as_object();
  out << "  session " << text(field(s, "id")) << " with " << text(field(s, "peer")) << " (ICE "
      << text(field(s, "ice_role")) << ")\n";
  if (auto* q = field(s, "quic"); q && q->is_object()) {
    const auto& quic = q->as_object();
    out << "  QUIC "
        << (quic.contains("connected") && quic.at("connected").as_bool() ? "connected"
                                                                         : "connecting")
        << " as " << text(field(quic, "role")) << ", rtt " << text(field(quic, "rtt_ms"))
        << " ms, migrations " << text(field(quic, "migrations")) << "\n";
    if (auto* a = field(quic, "active_path"); a && a->is_object()) {
      out << "  active path: " << describe_pair(a->as_object()) << "\n";
    }
  }
  const std::string reason = text(field(s, "relay_reason"));
  if (reason != "not-relayed" && reason != "-") {
    out << "  relayed because: " << reason << " — " << text(field(s, "relay_reason_description"))
        << "\n";
  }
  if (auto* pairs = field(s, "pairs"); pairs && pairs->is_array()) {
    out << "  pairs:\n";
    for (const auto& p : pairs->as_array()) {
      if (!p.is_object()) continue;
      char state[16];
      std::snprintf(state, sizeof state, "%-11s", text(field(p.as_object(), "state")).c_str());
      out << "    " << state << " " << describe_pair(p.as_object()) << "\n";
    }
  }
}

}  // namespace

int run_status(const StatusOptions& options, std::ostream& out, std::ostream& err) {
  std::vector<std::string> sockets;
  if (!options.socket.empty()) {
    sockets.push_back(options.socket);
  } else {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(status_socket_dir(), ec)) {
      if (entry.is_socket()) sockets.push_back(entry.path().string());
    }
    std::sort(sockets.begin(), sockets.end());
  }
  int answered = 0;
  for (const auto& path : sockets) {
    auto answer = query_status(path);
    if (!answer) {
      if (!options.socket.empty()) err << "roam status: " << answer.error() << "\n";
      continue;  // a dead agent's socket
    }
    boost::system::error_code ec;
    auto value = json::parse(*answer, ec);
    if (ec || !value.is_object()) {
      err << "roam status: " << path << ": unreadable answer\n";
      continue;
    }
    ++answered;
    if (options.json) {
      out << json::serialize(value) << "\n";
    } else {
      print(value.as_object(), out);
    }
  }
  if (answered == 0) {
    err << "roam status: no running agent answered (looked in "
        << (options.socket.empty() ? status_socket_dir() : options.socket) << ")\n";
    return 1;
  }
  return 0;
}

}  // namespace roam::agent
