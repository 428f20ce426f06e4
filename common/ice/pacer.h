// Check pacing (RFC 8445 §6.1.4.2, §14.2): at most one new check per Ta, and ordinary checks
// taken ROUND-ROBIN over "lanes" — (interface, address family, relayed or not) — so every
// interface and family is probed in turn. A plain priority order sends every check out of the
// best interface first, which is how field tests ended up never probing the others
// (architecture.md); RFC 8421 §4 asks for interleaved families as well.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>

#include "common/util/socket_address.h"
#include "common/util/time.h"

namespace roam::ice {

struct Lane {
  std::uint32_t interface_index = 0;
  AddressFamily family = AddressFamily::kIPv4;
  bool relayed = false;
  auto operator<=>(const Lane&) const = default;
};

// One pair that may be checked now.
struct PacerChoice {
  Lane lane;
  std::uint64_t priority = 0;  // pair priority; higher first within a lane
  std::size_t index = 0;       // the caller's handle
};

class Pacer {
 public:
  explicit Pacer(Duration ta) : ta_(ta) {}

  // True when a new check may go out at `now`.
  bool ready(TimePoint now) const { return now >= next_slot_; }
  // The earliest time the next check may go out.
  TimePoint next_slot() const { return next_slot_; }
  // Records that a check went out at `now`; the next slot opens Ta later.
  void on_sent(TimePoint now) { next_slot_ = now + ta_; }

  // Picks the ordinary check to send: the lane after the previously served one (cyclically, in
  // Lane order), and within it the highest priority (lowest index on ties). Returns the chosen
  // choice's `index`, or nullopt when `choices` is empty. Remembers the lane.
  std::optional<std::size_t> pick(std::span<const PacerChoice> choices);

 private:
  Duration ta_;
  TimePoint next_slot_ = TimePoint::min();
  std::optional<Lane> last_lane_;
};

}  // namespace roam::ice
