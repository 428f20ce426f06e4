#include "common/relay/coturn_stats.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

namespace roam::relay::coturn_stats {
namespace {

constexpr std::string_view kTurnPrefix = "turn/";
constexpr std::string_view kRealmPrefix = "turn/realm/";
constexpr std::string_view kUserPrefix = "turn/user/";
constexpr std::string_view kUserInfix = "/user/";
constexpr std::string_view kAllocationInfix = "/allocation/";
// A uint64 has at most 20 decimal digits.
constexpr std::size_t kMaxIdDigits = 20;
constexpr std::size_t kMaxLoggedUser = 64;

struct Suffix {
  std::string_view text;
  bool status;
  bool total;
  Side side;
};
// Longest first: ".../total_traffic/peer" must not be taken for ".../traffic/peer" (it is
// not: the character before "traffic" is '_', but the order makes that obvious).
constexpr std::array<Suffix, 5> kSuffixes{{
    {"/total_traffic/peer", false, true, Side::kPeer},
    {"/total_traffic", false, true, Side::kClient},
    {"/traffic/peer", false, false, Side::kPeer},
    {"/traffic", false, false, Side::kClient},
    {"/status", true, false, Side::kClient},
}};

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal digits only (no sign, no space), the whole view, no overflow.
std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (!all_digits(s) || s.size() > kMaxIdDigits) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "new lifetime=600, type=UDP, ..." / "refreshed lifetime=0, ..." / "deleted".
expected<StatusEvent, ParseError> parse_status(AllocationRef allocation, std::string_view payload) {
  StatusEvent e{std::move(allocation), Status::kDeleted, 0};
  if (payload == "deleted") return e;
  std::string_view rest;
  if (payload.starts_with("new ")) {
    e.status = Status::kNew;
    rest = payload.substr(4);
  } else if (payload.starts_with("refreshed ")) {
    e.status = Status::kRefreshed;
    rest = payload.substr(10);
  } else {
    return unexpected(ParseError::kBadPayload);
  }
  constexpr std::string_view kLifetime = "lifetime=";
  if (!rest.starts_with(kLifetime)) return unexpected(ParseError::kBadPayload);
  rest.remove_prefix(kLifetime.size());
  // The other fields (type, local, remote, ssl, cipher) are not used: not checked either.
  auto value = parse_u64(rest.substr(0, rest.find(',')));
  if (!value || *value > std::numeric_limits<std::uint32_t>::max()) {
    return unexpected(ParseError::kBadPayload);
  }
  e.lifetime_seconds = static_cast<std::uint32_t>(*value);
  return e;
}

// "rcvp=2048, rcvb=212984, sentp=3, sentb=288": each of the four once, in any order; other
// keys are skipped (a later coturn may add some).
expected<Traffic, ParseError> parse_traffic(std::string_view payload) {
  Traffic t;
  unsigned seen = 0;
  while (!payload.empty()) {
    auto comma = payload.find(',');
    auto field = payload.substr(0, comma);
    payload = comma == std::string_view::npos ? std::string_view{} : payload.substr(comma + 1);
    while (payload.starts_with(' '))
      payload.remove_prefix(1);
    auto eq = field.find('=');
    if (eq == std::string_view::npos) return unexpected(ParseError::kBadPayload);
    auto key = field.substr(0, eq);
    auto value = parse_u64(field.substr(eq + 1));
    if (!value || *value > kMaxTrafficValue) return unexpected(ParseError::kBadPayload);
    std::uint64_t* slot = nullptr;
    unsigned bit = 0;
    if (key == "rcvp") {
      slot = &t.rx_packets, bit = 1;
    } else if (key == "rcvb") {
      slot = &t.rx_bytes, bit = 2;
    } else if (key == "sentp") {
      slot = &t.tx_packets, bit = 4;
    } else if (key == "sentb") {
      slot = &t.tx_bytes, bit = 8;
    } else {
      continue;
    }
    if (seen & bit) return unexpected(ParseError::kBadPayload);
    seen |= bit;
    *slot = *value;
  }
  if (seen != 15) return unexpected(ParseError::kBadPayload);
  return t;
}

}  // namespace

std::string_view describe(ParseError e) {
  switch (e) {
    case ParseError::kTooLarge:
      return "coturn stats message too large (channel > 1024 or payload > 1024 bytes): not "
             "from coturn";
    case ParseError::kBadChannel:
      return "coturn stats channel has no valid allocation id after /allocation/";
    case ParseError::kBadPayload:
      return "coturn stats payload is not in coturn 4.6's format for its channel";
  }
  return "unknown coturn stats error";
}

expected<Event, ParseError> parse(std::string_view channel, std::string_view payload) {
  if (channel.size() > kMaxChannelSize || payload.size() > kMaxPayloadSize) {
    return unexpected(ParseError::kTooLarge);
  }
  if (channel == kKeepaliveChannel) {
    return payload == kKeepalivePayload ? Event{Keepalive{}} : Event{Ignored{}};
  }
  if (!channel.starts_with(kTurnPrefix)) return Event{Ignored{}};

  const Suffix* suffix = nullptr;
  for (const auto& s : kSuffixes) {
    if (channel.ends_with(s.text)) {
      suffix = &s;
      break;
    }
  }
  if (!suffix) return Event{Ignored{}};
  std::string_view head = channel.substr(0, channel.size() - suffix->text.size());
  // head = "turn/.../allocation/<id>"
  auto slash = head.rfind('/');  // npos only for "turn/status" itself: then before_id is ""
  std::string_view before_id = head.substr(0, slash + 1);
  if (!before_id.ends_with(kAllocationInfix)) return Event{Ignored{}};
  auto id = parse_u64(head.substr(slash + 1));
  if (!id) return unexpected(ParseError::kBadChannel);
  head = before_id.substr(0, before_id.size() - kAllocationInfix.size());

  AllocationRef allocation;
  allocation.id = *id;
  if (head.starts_with(kRealmPrefix)) {
    auto realm_and_user = head.substr(kRealmPrefix.size());
    auto at = realm_and_user.find(kUserInfix);
    if (at == std::string_view::npos) return unexpected(ParseError::kBadChannel);
    allocation.realm = std::string(realm_and_user.substr(0, at));
    allocation.user = std::string(realm_and_user.substr(at + kUserInfix.size()));
  } else if (head.starts_with(kUserPrefix)) {
    allocation.user = std::string(head.substr(kUserPrefix.size()));
  } else {
    return unexpected(ParseError::kBadChannel);
  }

  if (suffix->status) {
    auto status = parse_status(std::move(allocation), payload);
    if (!status) return unexpected(status.error());
    return Event{std::move(*status)};
  }
  auto traffic = parse_traffic(payload);
  if (!traffic) return unexpected(traffic.error());
  return Event{TrafficEvent{std::move(allocation), suffix->side, suffix->total, *traffic}};
}

std::string_view strip_rest_expiry(std::string_view username) {
  auto colon = username.find(':');
  if (colon == std::string_view::npos || !all_digits(username.substr(0, colon))) return username;
  return username.substr(colon + 1);
}

std::string loggable_user(std::string_view username) {
  auto name = strip_rest_expiry(username);
  std::string out;
  std::size_t shown = 0;
  for (char c : name) {
    if (shown == kMaxLoggedUser) {
      out += "...";
      break;
    }
    auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7f && b != '\\') {
      out += c;
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
    ++shown;
  }
  return out;
}

// --- AllocationTracker -------------------------------------------------------------------

AllocationTracker::AllocationTracker(TrackerConfig config) : config_(std::move(config)) {}

TimePoint AllocationTracker::expiry(TimePoint now, std::uint32_t lifetime_seconds) const {
  Duration lifetime = std::min<Duration>(seconds(lifetime_seconds), config_.max_lifetime);
  return now + lifetime + config_.expiry_grace;
}

void AllocationTracker::set_expiry(std::uint64_t id, Entry& entry, TimePoint expires) {
  deadlines_.erase({entry.expires, id});
  entry.expires = expires;
  deadlines_.insert({expires, id});
}

AllocationTracker::Result AllocationTracker::on_status(TimePoint now, const StatusEvent& event) {
  if (config_.is_own && config_.is_own(event.allocation.user)) return {Outcome::kOwn, {}};
  const std::uint64_t id = event.allocation.id;
  auto it = entries_.find(id);
  switch (event.status) {
    case Status::kNew:
      if (it != entries_.end()) {
        it->second.opened = now;
        set_expiry(id, it->second, expiry(now, event.lifetime_seconds));
        return {Outcome::kDuplicateNew, {}};
      }
      if (entries_.size() >= config_.max_allocations) return {Outcome::kOverflow, {}};
      it = entries_.emplace(id, Entry{now, expiry(now, event.lifetime_seconds)}).first;
      deadlines_.insert({it->second.expires, id});
      return {Outcome::kOpened, {}};
    case Status::kRefreshed:
      if (it != entries_.end()) {
        // Refresh(LIFETIME=0) is a delete: "deleted" follows at once; the grace covers it.
        set_expiry(id, it->second, expiry(now, event.lifetime_seconds));
        return {Outcome::kRefreshed, {}};
      }
      if (event.lifetime_seconds == 0) return {Outcome::kNoop, {}};
      if (entries_.size() >= config_.max_allocations) return {Outcome::kOverflow, {}};
      it = entries_.emplace(id, Entry{std::nullopt, expiry(now, event.lifetime_seconds)}).first;
      deadlines_.insert({it->second.expires, id});
      return {Outcome::kAdopted, {}};
    case Status::kDeleted: {
      if (it == entries_.end()) return {Outcome::kUnknownDelete, {}};
      Result r{Outcome::kClosed, {}};
      if (it->second.opened) r.lived = now - *it->second.opened;
      deadlines_.erase({it->second.expires, id});
      entries_.erase(it);
      return r;
    }
  }
  return {Outcome::kNoop, {}};
}

std::size_t AllocationTracker::on_timeout(TimePoint now) {
  std::size_t expired = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    entries_.erase(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
    ++expired;
  }
  return expired;
}

TimePoint AllocationTracker::next_deadline() const {
  return deadlines_.empty() ? kNever : deadlines_.begin()->first;
}

void AllocationTracker::clear() {
  entries_.clear();
  deadlines_.clear();
}

std::string_view to_string(AllocationTracker::Outcome outcome) {
  using O = AllocationTracker::Outcome;
  switch (outcome) {
    case O::kOpened:
      return "opened";
    case O::kDuplicateNew:
      return "duplicate_new";
    case O::kRefreshed:
      return "refreshed";
    case O::kAdopted:
      return "adopted";
    case O::kClosed:
      return "closed";
    case O::kUnknownDelete:
      return "unknown_delete";
    case O::kOwn:
      return "own";
    case O::kOverflow:
      return "overflow";
    case O::kNoop:
      return "noop";
  }
  return "unknown";
}

}  // namespace roam::relay::coturn_stats
