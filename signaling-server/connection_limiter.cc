#include "signaling-server/connection_limiter.h"

namespace roam::signaling {

ConnectionLimiter::Slot::Slot(std::shared_ptr<ConnectionLimiter> owner, IpAddress ip)
    : owner_(std::move(owner)), ip_(ip) {}

ConnectionLimiter::Slot::~Slot() {
  if (owner_) owner_->release(ip_);
}

ConnectionLimiter::ConnectionLimiter(std::uint32_t max_total, std::uint32_t max_per_ip)
    : max_total_(max_total), max_per_ip_(max_per_ip) {}

ConnectionLimiter::Slot ConnectionLimiter::admit(const IpAddress& ip, Refusal* refusal) {
  std::lock_guard lock(mutex_);
  if (total_ >= max_total_) {
    *refusal = Refusal::kServerFull;
    return {};
  }
  auto& count = per_ip_[ip];
  if (count >= max_per_ip_) {
    if (count == 0) per_ip_.erase(ip);
    *refusal = Refusal::kPerIpCap;
    return {};
  }
  ++count;
  ++total_;
  *refusal = Refusal::kNone;
  return Slot(shared_from_this(), ip);
}

void ConnectionLimiter::release(const IpAddress& ip) {
  std::lock_guard lock(mutex_);
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
  if (total_ > 0) --total_;
}

std::uint32_t ConnectionLimiter::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::uint32_t ConnectionLimiter::from(const IpAddress& ip) const {
  std::lock_guard lock(mutex_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second;
}

}  // namespace roam::signaling
