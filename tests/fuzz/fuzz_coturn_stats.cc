// Fuzzes the coturn --redis-statsdb parser and the allocation tracker. Input: up to 256 lines,
// each "channel<TAB>payload" (no tab: empty payload); the corpus holds publications recorded
// from coturn 4.6.1. Properties: never crashes; an error has a description; every parsed
// event formats back (the way coturn prints it) to a publication that parses to the same
// event; traffic values stay within kMaxTrafficValue; the tracker stays within its bound,
// its deadline is kNever exactly when it tracks nothing, and reported lifetimes are never
// negative.
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/relay/coturn_stats.h"

namespace {

using namespace roam::relay::coturn_stats;

constexpr std::size_t kMaxLines = 256;
constexpr std::size_t kMaxTracked = 8;

void check(bool ok) {
  if (!ok) std::abort();
}

// The channel coturn would publish on (ns_ioalib_engine_impl.c: "%018llu" ids).
std::string channel_of(const AllocationRef& a, std::string_view suffix) {
  char id[32];
  std::snprintf(id, sizeof id, "%018" PRIu64, a.id);
  std::string c = a.realm.empty() ? "turn/user/" : "turn/realm/" + a.realm + "/user/";
  c += a.user;
  c += "/allocation/";
  c += id;
  c += suffix;
  return c;
}

std::string payload_of(const Traffic& t) {
  char text[160];
  std::snprintf(text, sizeof text,
                "rcvp=%" PRIu64 ", rcvb=%" PRIu64 ", sentp=%" PRIu64 ", sentb=%" PRIu64,
                t.rx_packets, t.rx_bytes, t.tx_packets, t.tx_bytes);
  return text;
}

void check_round_trip(const Event& event) {
  std::string channel, payload;
  if (const auto* s = std::get_if<StatusEvent>(&event)) {
    channel = channel_of(s->allocation, "/status");
    if (s->status == Status::kDeleted) {
      check(s->lifetime_seconds == 0);
      payload = "deleted";
    } else {
      payload = (s->status == Status::kNew ? "new lifetime=" : "refreshed lifetime=") +
                std::to_string(s->lifetime_seconds) + ", type=UDP, ssl=NONE, cipher=NONE";
    }
  } else if (const auto* t = std::get_if<TrafficEvent>(&event)) {
    check(t->traffic.rx_packets <= kMaxTrafficValue && t->traffic.rx_bytes <= kMaxTrafficValue &&
          t->traffic.tx_packets <= kMaxTrafficValue && t->traffic.tx_bytes <= kMaxTrafficValue);
    std::string suffix = t->total ? "/total_traffic" : "/traffic";
    if (t->side == Side::kPeer) suffix += "/peer";
    channel = channel_of(t->allocation, suffix);
    payload = payload_of(t->traffic);
  } else {
    return;
  }
  // Formatting can lengthen the channel (zero-padded id, "turn/user/" form): past the bound
  // the refusal is the expected answer.
  auto again = parse(channel, payload);
  if (channel.size() > kMaxChannelSize) {
    check(!again && again.error() == ParseError::kTooLarge);
    return;
  }
  check(again.has_value() && *again == event);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  TrackerConfig config;
  config.max_allocations = kMaxTracked;
  config.expiry_grace = roam::seconds(5);
  config.is_own = [](std::string_view user) { return strip_rest_expiry(user).starts_with("own"); };
  AllocationTracker tracker(config);
  roam::TimePoint now{};

  for (std::size_t line = 0; line < kMaxLines && !input.empty(); ++line) {
    auto end = input.find('\n');
    std::string_view record = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    auto tab = record.find('\t');
    std::string_view channel = record.substr(0, tab);
    std::string_view payload =
        tab == std::string_view::npos ? std::string_view{} : record.substr(tab + 1);

    auto event = parse(channel, payload);
    if (!event) {
      check(!describe(event.error()).empty());
      continue;
    }
    check_round_trip(*event);
    (void)loggable_user(channel);
    (void)strip_rest_expiry(channel);

    // Virtual time moves by a few seconds per record, driven by the input.
    now += roam::seconds(record.size() % 7);
    if (const auto* s = std::get_if<StatusEvent>(&*event)) {
      auto result = tracker.on_status(now, *s);
      check(!to_string(result.outcome).empty());
      if (result.lived) check(*result.lived >= roam::Duration::zero());
    }
    if (record.size() % 3 == 0) tracker.on_timeout(now);
    check(tracker.live() <= kMaxTracked);
    check((tracker.next_deadline() == roam::kNever) == (tracker.live() == 0));
  }
  tracker.on_timeout(roam::kNever - roam::seconds(1));
  check(tracker.live() == 0);
  return 0;
}
