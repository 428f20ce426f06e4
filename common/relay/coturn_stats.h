// coturn's --redis-statsdb publications, as a sans-I/O parser plus the live-allocation
// bookkeeping roam-relay's exporter builds its Prometheus figures from. No sockets, no clock:
// callers pass the Redis pub/sub (channel, payload) and `now`.
//
// What coturn 4.6.1 publishes (recorded on Debian 12; notes/coturn-reservations.md, and
// tests/fuzz/corpus/coturn_stats/ holds the real payloads):
//
//   channel  turn/realm/<realm>/user/<user>/allocation/<id>/<suffix>
//            turn/user/<user>/allocation/<id>/<suffix>        (coturn without a realm)
//   <user>   the STUN USERNAME as sent: for TURN REST credentials "<expiry>:<peer id>"
//   <id>     coturn's session id, printed with %018llu: 18 digits (more once it exceeds them);
//            the leading digits carry the relay thread ("001000000000000002"). Unique within
//            one coturn process only: a restarted coturn counts from 1 again.
//   suffix   payload
//   status   "new lifetime=600, type=UDP, local=127.0.0.1:3478, remote=1.2.3.4:5, ssl=NONE,
//             cipher=NONE"; "refreshed lifetime=<s>, ..." (also SET as a key; a delete by
//             Refresh(LIFETIME=0) first publishes "refreshed lifetime=0, ..."); "deleted" (the
//             key is DELeted) when the allocation closes, by request or by expiry.
//   traffic[/peer]        "rcvp=<n>, rcvb=<n>, sentp=<n>, sentb=<n>": counts since the last
//             publication (a delta). coturn publishes when the sum of the four packet counts
//             of the client and peer sides reaches a multiple of 4096, and once at close.
//   total_traffic[/peer]  same format, once after "deleted": the allocation's whole-life sum,
//             i.e. the sum of its deltas. Adding it as well would count everything twice.
//   Client side: rcv* = what coturn received from the TURN client, sent* = what it sent to
//   it, in UDP payload bytes (TURN framing and every STUN request/response included). Peer
//   side: rcv* = received from peers on the relayed address, sent* = sent to peers: the
//   application bytes exactly.
//
// Also: the keepalive PUBLISH __XXX__ "__YYY__" from every coturn event-loop thread each ~5 s
// (it is also what makes coturn reconnect to a restarted Redis). A reservation made by
// EVEN-PORT(R=1) never appears: only the allocation that made it does, like any other.
//
// Redis pub/sub ignores the database number (coturn's dbname): subscribers see every
// PUBLISH of the server. One coturn per statsdb Redis, or figures mix (and allocation ids of
// two coturns collide).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/util/expected.h"
#include "common/util/time.h"

namespace roam::relay::coturn_stats {

// What to subscribe to: PSUBSCRIBE kPattern (and SUBSCRIBE kKeepaliveChannel to see coturn's
// statsdb connection alive while no allocation changes).
inline constexpr std::string_view kPattern = "turn/*";
inline constexpr std::string_view kKeepaliveChannel = "__XXX__";
inline constexpr std::string_view kKeepalivePayload = "__YYY__";

// Bounds. coturn formats a publication into 513-byte buffers (so it truncates longer keys);
// anything beyond these is not from coturn.
inline constexpr std::size_t kMaxChannelSize = 1024;
inline constexpr std::size_t kMaxPayloadSize = 1024;
// A traffic figure above this (2^48: 256 TiB in one delta) is refused as malformed, so one
// corrupt message cannot throw a counter off by more.
inline constexpr std::uint64_t kMaxTrafficValue = std::uint64_t{1} << 48;

struct AllocationRef {
  std::string realm;  // empty for "turn/user/..." channels
  std::string user;   // as coturn printed it (REST: "<expiry>:<peer id>"); may be empty
  std::uint64_t id = 0;
  bool operator==(const AllocationRef&) const = default;
};

enum class Status : std::uint8_t { kNew, kRefreshed, kDeleted };

struct StatusEvent {
  AllocationRef allocation;
  Status status = Status::kNew;
  std::uint32_t lifetime_seconds = 0;  // 0 for kDeleted
  bool operator==(const StatusEvent&) const = default;
};

enum class Side : std::uint8_t {
  kClient,  // coturn ↔ TURN client (".../traffic", ".../total_traffic")
  kPeer,    // coturn ↔ peers via the relayed address (".../traffic/peer", "...total.../peer")
};

// Directions are seen from coturn: rx = received by coturn, tx = sent by coturn.
struct Traffic {
  std::uint64_t rx_packets = 0;  // rcvp
  std::uint64_t rx_bytes = 0;    // rcvb
  std::uint64_t tx_packets = 0;  // sentp
  std::uint64_t tx_bytes = 0;    // sentb
  bool operator==(const Traffic&) const = default;
};

struct TrafficEvent {
  AllocationRef allocation;
  Side side = Side::kClient;
  // false: a delta (".../traffic[/peer]") to add to counters; true: the whole-life total
  // (".../total_traffic[/peer]") published after "deleted": never add it.
  bool total = false;
  Traffic traffic;
  bool operator==(const TrafficEvent&) const = default;
};

struct Keepalive {
  bool operator==(const Keepalive&) const = default;
};
// Well-formed but not an allocation publication (another channel under turn/, another
// payload on the keepalive channel): nothing to do.
struct Ignored {
  bool operator==(const Ignored&) const = default;
};

using Event = std::variant<StatusEvent, TrafficEvent, Keepalive, Ignored>;

enum class ParseError : std::uint8_t {
  kTooLarge,    // channel longer than kMaxChannelSize or payload longer than kMaxPayloadSize
  kBadChannel,  // an allocation channel whose id is not a decimal uint64
  kBadPayload,  // an allocation channel whose payload is not the format above (unknown
                // status word, missing/duplicate/non-numeric field, value > kMaxTrafficValue
                // or a lifetime beyond 32 bits)
};
std::string_view describe(ParseError e);

// Parses one publication. Never throws; reads only the two views. A channel is an
// allocation channel when it starts with "turn/" and ends with "/allocation/<digits>/" plus
// one of the five suffixes; <user> is what lies between "/user/" (the first one after the
// realm) and that tail, so user names containing '/' parse correctly.
expected<Event, ParseError> parse(std::string_view channel, std::string_view payload);

// "<digits>:<rest>" (a TURN REST username) → "<rest>"; anything else unchanged. Strip the
// expiry before logging or comparing users: it changes with every credential.
std::string_view strip_rest_expiry(std::string_view username);
// For logs: strip_rest_expiry, bytes outside printable ASCII as \xNN, at most 64 characters
// of name (then "..."). Usernames are client-chosen text.
std::string loggable_user(std::string_view username);

// ---------------------------------------------------------------------------------------
// Live allocations of one coturn, from its status events.
//
// Why not simply +1/−1: Redis pub/sub loses whatever is published while a subscriber is
// disconnected, and coturn re-publishes nothing after an outage. So:
// - Allocations are tracked by id in a bounded set: a duplicate "new" or a "deleted" for an
//   unknown id changes nothing (the gauge cannot drift below zero or above the set).
// - A "refreshed" (lifetime > 0) for an unknown id adopts it: it is evidently alive and its
//   "new" was missed (outage, or the exporter started after it). Its age is unknown, so its
//   lifetime is not observed when it closes.
// - Every entry expires at (last new/refresh) + lifetime + expiry_grace: coturn publishes
//   "deleted" when an allocation expires, so an entry outliving that lost its "deleted" (or
//   coturn was restarted/killed: it publishes nothing for allocations that die with it).
// - A reconnect of the subscriber therefore resets nothing: a reset would under-count every
//   allocation still alive until it refreshes, for up to a lifetime; keeping the set
//   over-counts only allocations that ended during the gap, until their lifetime runs out.
//   clear() is for a coturn known to have restarted (every allocation is gone).
// - Own allocations (`is_own`, e.g. roam-relay's reservation pool and health canary) are
//   neither tracked nor reported as anomalies.
struct TrackerConfig {
  std::size_t max_allocations = 65536;
  Duration expiry_grace = seconds(60);
  // Lifetimes in messages are capped at this for the expiry (coturn's default
  // max-allocate-lifetime is 3600 s).
  Duration max_lifetime = std::chrono::hours(24);
  std::function<bool(std::string_view username)> is_own;  // empty: nothing is own
};

class AllocationTracker {
 public:
  enum class Outcome : std::uint8_t {
    kOpened,         // new: now tracked (+1)
    kDuplicateNew,   // new for a tracked id: its clock restarts (a restarted coturn reuses ids)
    kRefreshed,      // tracked: expiry pushed back
    kAdopted,        // refreshed, unknown: now tracked (+1) without a start time
    kClosed,         // deleted: no longer tracked (−1)
    kUnknownDelete,  // deleted, not tracked: nothing changes
    kOwn,            // an own allocation: ignored
    kOverflow,       // new/adoption with max_allocations tracked: not tracked
    kNoop,           // refreshed with lifetime 0 for an unknown id ("deleted" follows)
  };
  struct Result {
    Outcome outcome = Outcome::kNoop;
    // kClosed of an allocation whose "new" was seen: how long it lived (now − new).
    std::optional<Duration> lived;
  };

  explicit AllocationTracker(TrackerConfig config);

  Result on_status(TimePoint now, const StatusEvent& event);
  // Drops entries whose expiry has passed; returns how many.
  std::size_t on_timeout(TimePoint now);
  // The earliest expiry, or kNever.
  TimePoint next_deadline() const;
  // Forgets every allocation (coturn restarted).
  void clear();

  std::size_t live() const { return entries_.size(); }
  bool tracking(std::uint64_t id) const { return entries_.contains(id); }
  const TrackerConfig& config() const { return config_; }

 private:
  struct Entry {
    std::optional<TimePoint> opened;
    TimePoint expires;
  };
  TimePoint expiry(TimePoint now, std::uint32_t lifetime_seconds) const;
  void set_expiry(std::uint64_t id, Entry& entry, TimePoint expires);

  TrackerConfig config_;
  std::map<std::uint64_t, Entry> entries_;
  std::set<std::pair<TimePoint, std::uint64_t>> deadlines_;
};

std::string_view to_string(AllocationTracker::Outcome outcome);

}  // namespace roam::relay::coturn_stats
