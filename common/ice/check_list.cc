#include "common/ice/check_list.h"

#include <algorithm>

namespace roam::ice {

Pair* CheckList::find(PairId id) {
  for (auto& p : pairs_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const Pair* CheckList::find(PairId id) const {
  for (const auto& p : pairs_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

Pair* CheckList::find(LocalId local, const SocketAddress& remote) {
  for (auto& p : pairs_) {
    if (p.local == local && p.remote == remote) return &p;
  }
  return nullptr;
}

Pair* CheckList::add(Pair pair, std::size_t max_pairs, PairId protect,
                     std::optional<Pair>* evicted) {
  if (pairs_.size() >= max_pairs) {
    auto victim = pairs_.end();
    for (auto it = pairs_.begin(); it != pairs_.end(); ++it) {
      if (it->valid() || it->id == protect) continue;
      if (victim == pairs_.end() || it->priority < victim->priority) victim = it;
    }
    if (victim == pairs_.end() || victim->priority >= pair.priority) return nullptr;
    if (evicted) *evicted = std::move(*victim);
    pairs_.erase(victim);
  }
  pairs_.push_back(std::move(pair));
  return &pairs_.back();
}

void CheckList::erase(PairId id) {
  std::erase_if(pairs_, [id](const Pair& p) { return p.id == id; });
}

}  // namespace roam::ice
