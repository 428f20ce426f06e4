#include "common/signaling/peer_info.h"

#include <boost/json.hpp>

namespace roam::signaling {
namespace json = boost::json;

std::string encode_peer_info(const PeerInfo& info) {
  json::object o;
  if (info.fingerprint) o["fingerprint"] = *info.fingerprint;
  if (info.ice) o["ice"] = json::object{{"ufrag", info.ice->ufrag}, {"pwd", info.ice->pwd}};
  if (info.region) o["region"] = *info.region;
  return json::serialize(o);
}

expected<PeerInfo, std::string> decode_peer_info(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 4;
  auto value = json::parse(text, ec, {}, options);
  if (ec || !value.is_object()) return unexpected(std::string("peer info: not a JSON object"));
  const auto& o = value.as_object();
  PeerInfo info;
  auto string_member = [&](const char* name) -> expected<std::optional<std::string>, std::string> {
    auto* v = o.if_contains(name);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return unexpected(std::string("peer info: ") + name + " not a string");
    return std::optional<std::string>(std::string(v->as_string()));
  };
  auto fingerprint = string_member("fingerprint");
  auto region = string_member("region");
  if (!fingerprint) return unexpected(fingerprint.error());
  if (!region) return unexpected(region.error());
  info.fingerprint = *fingerprint;
  info.region = *region;
  if (info.fingerprint && !valid_fingerprint(*info.fingerprint)) {
    return unexpected(std::string("peer info: bad fingerprint"));
  }
  if (auto* ice = o.if_contains("ice")) {
    const auto* io = ice->if_object();
    const json::value* ufrag = io ? io->if_contains("ufrag") : nullptr;
    const json::value* pwd = io ? io->if_contains("pwd") : nullptr;
    if (!ufrag || !pwd || !ufrag->is_string() || !pwd->is_string()) {
      return unexpected(std::string("peer info: bad ice"));
    }
    IceCredentials creds{std::string(ufrag->as_string()), std::string(pwd->as_string())};
    if (!valid_ice_credentials(creds)) return unexpected(std::string("peer info: bad ice"));
    info.ice = std::move(creds);
  }
  return info;
}

}  // namespace roam::signaling
