#include "common/ice/pacer.h"

namespace roam::ice {

std::optional<std::size_t> Pacer::pick(std::span<const PacerChoice> choices) {
  if (choices.empty()) return std::nullopt;
  // The next lane strictly after the last one served, else the smallest lane (wrap around).
  std::optional<Lane> after;
  std::optional<Lane> smallest;
  for (const auto& c : choices) {
    if (!smallest || c.lane < *smallest) smallest = c.lane;
    if (last_lane_ && c.lane > *last_lane_ && (!after || c.lane < *after)) after = c.lane;
  }
  const Lane lane = after ? *after : *smallest;
  const PacerChoice* best = nullptr;
  for (const auto& c : choices) {
    if (c.lane != lane) continue;
    if (!best || c.priority > best->priority ||
        (c.priority == best->priority && c.index < best->index)) {
      best = &c;
    }
  }
  last_lane_ = lane;
  return best->index;
}

}  // namespace roam::ice
