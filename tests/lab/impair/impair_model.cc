#include "impair_model.h"

#include <algorithm>

namespace roam::lab {

ImpairModel::ImpairModel(const ImpairConfig& config) : config_(config), rng_(config.seed) {}

Decision ImpairModel::on_packet(Nanos now, std::size_t bytes) {
  Nanos ready = now;
  if (config_.rate_bps > 0) {
    while (!waiting_.empty() && waiting_.front() <= now)
      waiting_.pop_front();
    if (waiting_.size() >= config_.limit) return {Fate::kOverLimit, 0};
    const Nanos start = std::max(now, link_free_at_);
    const auto bits = static_cast<unsigned __int128>(bytes) * 8u * 1'000'000'000u;
    link_free_at_ = start + static_cast<Nanos>(bits / config_.rate_bps);
    if (start > now) waiting_.push_back(start);
    ready = link_free_at_;
  }
  // Loss is drawn after the queue so a lost packet still used the link (as on a real wire).
  if (config_.loss > 0.0 && unit_(rng_) < config_.loss) return {Fate::kLost, 0};
  Nanos delay = config_.delay;
  if (config_.jitter > 0) {
    delay += static_cast<Nanos>((unit_(rng_) * 2.0 - 1.0) * static_cast<double>(config_.jitter));
    delay = std::max<Nanos>(delay, 0);
  }
  Nanos departure = ready + delay;
  if (!config_.reorder) departure = std::max(departure, last_departure_);
  last_departure_ = std::max(last_departure_, departure);
  return {Fate::kDeliver, departure};
}

}  // namespace roam::lab
