#include "common/signaling/route_envelope.h"

#include <array>

#include <boost/json.hpp>

namespace roam::signaling {
namespace json = boost::json;
namespace {

constexpr std::array<std::string_view, 5> kTypes{"welcome", "session", "candidate", "bye", "error"};

std::string_view op_name(SessionOp op) {
  switch (op) {
    case SessionOp::kOpen:
      return "open";
    case SessionOp::kClose:
      return "close";
    case SessionOp::kNone:
      break;
  }
  return "";
}

const json::string* string_member(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  return v ? v->if_string() : nullptr;
}

}  // namespace

std::string encode_delivery(std::string_view peer, const RoutedMessage& m) {
  json::object o;
  o["k"] = "m";
  o["peer"] = peer;
  o["type"] = m.type;
  if (m.op != SessionOp::kNone) {
    o["op"] = op_name(m.op);
    o["s"] = m.session;
    o["p"] = m.peer;
  }
  o["us"] = m.received_unix_us;
  o["text"] = m.text;
  return json::serialize(o);
}

expected<Envelope, std::string> decode_envelope(std::string_view text) {
  if (text.size() > kMaxEnvelopeSize) return unexpected(std::string("envelope too large"));
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 4;
  json::monotonic_resource resource;
  auto value = json::parse(text, ec, &resource, options);
  if (ec || !value.is_object()) return unexpected(std::string("envelope: not a JSON object"));
  const auto& o = value.as_object();
  const auto* kind = string_member(o, "k");
  const auto* peer = string_member(o, "peer");
  if (!kind || !peer) return unexpected(std::string("envelope: missing k or peer"));
  if (!valid_peer_id(*peer)) return unexpected(std::string("envelope: bad peer id"));
  Envelope e;
  e.peer = std::string(*peer);
  if (*kind == "kick") {
    auto* gen = o.if_contains("gen");
    if (!gen || !gen->is_int64() || gen->as_int64() <= 0) {
      return unexpected(std::string("kick: gen must be a positive integer"));
    }
    e.kind = Envelope::Kind::kKick;
    e.generation = gen->as_int64();
    return e;
  }
  if (*kind != "m") return unexpected(std::string("envelope: unknown kind"));
  const auto* type = string_member(o, "type");
  const auto* body = string_member(o, "text");
  auto* us = o.if_contains("us");
  if (!type || !body || !us || !us->is_int64()) {
    return unexpected(std::string("envelope: missing type, text or us"));
  }
  if (std::find(kTypes.begin(), kTypes.end(), std::string_view(*type)) == kTypes.end()) {
    return unexpected(std::string("envelope: unknown message type"));
  }
  if (body->size() > kMaxMessageSize) return unexpected(std::string("envelope: text too large"));
  auto& m = e.message;
  m.type = std::string(*type);
  m.text = std::string(*body);
  m.received_unix_us = us->as_int64();
  if (const auto* op = string_member(o, "op")) {
    const auto* s = string_member(o, "s");
    const auto* p = string_member(o, "p");
    if (!s || !p || !valid_session_id(*s) || !valid_peer_id(*p)) {
      return unexpected(std::string("envelope: op needs a valid s and p"));
    }
    if (*op == "open") {
      m.op = SessionOp::kOpen;
    } else if (*op == "close") {
      m.op = SessionOp::kClose;
    } else {
      return unexpected(std::string("envelope: unknown op"));
    }
    m.session = std::string(*s);
    m.peer = std::string(*p);
  } else if (o.contains("s") || o.contains("p")) {
    return unexpected(std::string("envelope: s/p without op"));
  }
  return e;
}

}  // namespace roam::signaling
