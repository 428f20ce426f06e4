#include "common/ice/reflexive_gatherer.h"

#include <algorithm>

#include "common/stun/binding.h"

namespace roam::ice {

ReflexiveGatherer::ReflexiveGatherer(ReflexiveGathererConfig config, RandomSource& random)
    : config_(std::move(config)), random_(random) {}

void ReflexiveGatherer::add_base(LocalId base, const SocketAddress& base_address,
                                 const std::vector<SocketAddress>& servers, TimePoint now) {
  for (const auto& server : servers) {
    if (server.family() != base_address.family()) continue;
    auto same = [&](const Query& q) { return q.base == base && q.server == server; };
    if (std::ranges::any_of(queries_, same)) continue;
    Query q;
    q.base = base;
    q.server = server;
    queries_.push_back(std::move(q));
    start_query(queries_.back(), now);
  }
}

void ReflexiveGatherer::remove_base(LocalId base) {
  std::erase_if(queries_, [&](const Query& q) { return q.base == base; });
  std::erase_if(transmits_, [&](const Transmit& t) { return t.local == base; });
}

void ReflexiveGatherer::start_query(Query& q, TimePoint now) {
  stun::TransactionId id;
  random_.fill(id);
  q.outstanding = id;
  q.request = stun::make_binding_request(id, config_.software);
  q.schedule = stun::RetransmissionSchedule(config_.retransmission, now);
  q.next_query = kNever;
  transmits_.push_back(Transmit{q.base, q.server, q.request});
}

bool ReflexiveGatherer::handle_response(LocalId base, const SocketAddress& from,
                                        const stun::Message& m, TimePoint now) {
  if (m.cls() != stun::Class::kSuccess && m.cls() != stun::Class::kError) return false;
  for (auto& q : queries_) {
    if (q.base != base || !q.outstanding || *q.outstanding != m.transaction_id()) continue;
    if (from != q.server) return false;  // RFC 8489 §6.3.1 ... only the server asked answers
    auto mapped = stun::binding_result(m, *q.outstanding);
    q.outstanding.reset();
    q.next_query = now + config_.refresh;
    ReflexiveResult r{base, q.server, std::nullopt, false};
    if (mapped) r.mapped = *mapped;
    r.changed = r.mapped != q.mapped;
    q.mapped = r.mapped;
    results_.push_back(r);
    return true;
  }
  return false;
}

std::optional<Transmit> ReflexiveGatherer::poll_transmit() {
  if (transmits_.empty()) return std::nullopt;
  Transmit t = std::move(transmits_.front());
  transmits_.pop_front();
  return t;
}

std::optional<ReflexiveResult> ReflexiveGatherer::poll_result() {
  if (results_.empty()) return std::nullopt;
  ReflexiveResult r = results_.front();
  results_.pop_front();
  return r;
}

TimePoint ReflexiveGatherer::next_deadline() const {
  TimePoint t = kNever;
  for (const auto& q : queries_) {
    t = std::min(t, q.outstanding ? q.schedule.deadline() : q.next_query);
  }
  return t;
}

void ReflexiveGatherer::refresh_now(LocalId base, TimePoint now) {
  for (auto& q : queries_) {
    if (q.base == base && !q.outstanding) q.next_query = now;
  }
}

void ReflexiveGatherer::handle_timeout(TimePoint now) {
  for (auto& q : queries_) {
    if (q.outstanding) {
      if (q.schedule.deadline() > now) continue;
      if (q.schedule.on_deadline(now)) {
        transmits_.push_back(Transmit{q.base, q.server, q.request});
        continue;
      }
      // Timed out: the mapping is unknown now; try again at the next refresh.
      q.outstanding.reset();
      q.next_query = now + config_.refresh;
      ReflexiveResult r{q.base, q.server, std::nullopt, q.mapped.has_value()};
      q.mapped.reset();
      results_.push_back(r);
    } else if (q.next_query <= now) {
      start_query(q, now);
    }
  }
}

std::optional<SocketAddress> ReflexiveGatherer::mapping(LocalId base,
                                                        const SocketAddress& server) const {
  for (const auto& q : queries_) {
    if (q.base == base && q.server == server) return q.mapped;
  }
  return std::nullopt;
}

}  // namespace roam::ice
