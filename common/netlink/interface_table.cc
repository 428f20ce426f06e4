#include "common/netlink/interface_table.h"

#include <linux/rtnetlink.h>

#include <algorithm>
#include <set>

namespace roam::netlink {

std::string_view to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kInterfaceUp:
      return "interface_up";
    case ChangeKind::kInterfaceDown:
      return "interface_down";
    case ChangeKind::kAddressAdded:
      return "address_added";
    case ChangeKind::kAddressRemoved:
      return "address_removed";
  }
  return "unknown";
}

bool InterfaceTable::usable(const Link& link) const {
  if (!link.up() || !link.running()) return false;
  return policy_.loopback || !link.loopback();
}

bool InterfaceTable::usable(const Address& a) const {
  if (a.unusable()) return false;
  if (a.deprecated() && !policy_.deprecated) return false;
  if (a.address.is_v6() && a.address.is_link_local() && !policy_.link_local) return false;
  if ((a.address.is_loopback() || a.scope == RT_SCOPE_HOST) && !policy_.loopback) return false;
  return !a.address.is_unspecified();
}

void InterfaceTable::apply_to(State& state, const Message& message) {
  if (const auto* link = std::get_if<Link>(&message.body)) {
    if (link->removed) {
      state.links.erase(link->index);
      // The kernel drops the addresses with the link; do not wait for (or rely on) RTM_DELADDR.
      std::erase_if(state.addresses, [&](const auto& kv) { return kv.first.index == link->index; });
    } else {
      state.links[link->index] = *link;
    }
  } else if (const auto* a = std::get_if<Address>(&message.body)) {
    const Key key{a->index, a->address, a->prefix_length};
    if (a->removed) {
      state.addresses.erase(key);
    } else {
      state.addresses[key] = *a;
    }
  }
}

std::optional<InterfaceTable::UsableView> InterfaceTable::usable_view(const State& state,
                                                                      std::uint32_t index) const {
  const auto link = state.links.find(index);
  if (link == state.links.end() || !usable(link->second)) return std::nullopt;
  UsableView view{index, link->second.name, {}};
  for (auto it = state.addresses.lower_bound(Key{index, IpAddress{}, 0});
       it != state.addresses.end() && it->first.index == index; ++it) {
    if (usable(it->second)) view.addresses.push_back(it->second);
  }
  return view;
}

void InterfaceTable::diff(const std::optional<UsableView>& before,
                          const std::optional<UsableView>& after, TimePoint now,
                          std::vector<InterfaceChange>& out) {
  const auto contains = [](const std::optional<UsableView>& view, const Address& a) {
    return view && std::any_of(view->addresses.begin(), view->addresses.end(), [&](const auto& b) {
             return b.address == a.address && b.prefix_length == a.prefix_length;
           });
  };
  // A rename is reported as down + up so consumers keyed by name follow.
  const bool renamed = before && after && before->name != after->name;
  if (before) {
    for (const auto& a : before->addresses) {
      if (!contains(after, a) || renamed) {
        out.push_back({ChangeKind::kAddressRemoved, now, before->index, before->name, a});
      }
    }
    if (!after || renamed) {
      out.push_back({ChangeKind::kInterfaceDown, now, before->index, before->name, std::nullopt});
    }
  }
  if (after) {
    if (!before || renamed) {
      out.push_back({ChangeKind::kInterfaceUp, now, after->index, after->name, std::nullopt});
    }
    for (const auto& a : after->addresses) {
      if (!contains(before, a) || renamed) {
        out.push_back({ChangeKind::kAddressAdded, now, after->index, after->name, a});
      }
    }
  }
}

void InterfaceTable::apply(const Message& message, TimePoint now,
                           std::vector<InterfaceChange>& out) {
  std::uint32_t index = 0;
  if (const auto* link = std::get_if<Link>(&message.body)) {
    index = link->index;
  } else if (const auto* a = std::get_if<Address>(&message.body)) {
    index = a->index;
  } else {
    return;
  }
  if (staging_) {
    apply_to(*staging_, message);
    return;
  }
  const auto before = usable_view(state_, index);
  apply_to(state_, message);
  diff(before, usable_view(state_, index), now, out);
}

void InterfaceTable::begin_resync() {
  staging_.emplace();
}

void InterfaceTable::abort_resync() {
  staging_.reset();
}

void InterfaceTable::end_resync(TimePoint now, std::vector<InterfaceChange>& out) {
  if (!staging_) return;
  std::set<std::uint32_t> indexes;
  for (const auto& [index, link] : state_.links)
    indexes.insert(index);
  for (const auto& [index, link] : staging_->links)
    indexes.insert(index);
  std::vector<std::optional<UsableView>> before;
  for (auto index : indexes)
    before.push_back(usable_view(state_, index));
  state_ = std::move(*staging_);
  staging_.reset();
  std::size_t i = 0;
  for (auto index : indexes)
    diff(before[i++], usable_view(state_, index), now, out);
}

std::vector<InterfaceView> InterfaceTable::snapshot(bool all) const {
  std::vector<InterfaceView> out;
  for (const auto& [index, link] : state_.links) {
    InterfaceView view{link, usable(link), {}, {}};
    if (!view.usable && !all) continue;
    for (auto it = state_.addresses.lower_bound(Key{index, IpAddress{}, 0});
         it != state_.addresses.end() && it->first.index == index; ++it) {
      const bool ok = view.usable && usable(it->second);
      if (!ok && !all) continue;
      view.addresses.push_back(it->second);
      view.address_usable.push_back(ok);
    }
    out.push_back(std::move(view));
  }
  return out;
}

}  // namespace roam::netlink
