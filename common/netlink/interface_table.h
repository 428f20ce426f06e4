// The current interfaces and addresses as rtnetlink reports them, and which of them are usable
// for ICE host candidates. Sans-I/O: fed parsed messages (common/netlink/rtnetlink.h) and a
// `now`, it reports changes of the usable set as diffs; the socket lives in
// agent/net/interface_monitor.h.
//
// Usable interface: administratively up and running (IFF_UP and IFF_RUNNING), and not loopback
// unless the policy says so. Usable address: on a usable interface, neither tentative nor
// DAD-failed (it cannot be bound yet; RFC 4862 §5.4), not deprecated (RFC 4862 §5.5.4: no new
// flows), not IPv6 link-local (needs a scope id, rarely routable to a peer) and not scope host
// unless the policy allows them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/netlink/rtnetlink.h"
#include "common/util/time.h"

namespace roam::netlink {

struct UsablePolicy {
  bool loopback = false;    // lo and its 127.0.0.0/8, ::1
  bool link_local = false;  // fe80::/10 (169.254/16 IPv4 link-local is always kept)
  bool deprecated = false;  // addresses whose preferred lifetime is over
};

enum class ChangeKind : std::uint8_t {
  kInterfaceUp,
  kInterfaceDown,
  kAddressAdded,
  kAddressRemoved
};
std::string_view to_string(ChangeKind kind);  // "interface_up", "address_added", ...

struct InterfaceChange {
  ChangeKind kind;
  TimePoint at;  // the `now` the causing message was applied with (monotonic)
  std::uint32_t index = 0;
  std::string name;
  std::optional<Address> address;  // kAddressAdded / kAddressRemoved
};

// One interface in a snapshot; `usable` and the address list follow the policy unless the
// snapshot was asked for everything.
struct InterfaceView {
  Link link;
  bool usable = false;
  std::vector<Address> addresses;    // sorted, IPv4 first
  std::vector<bool> address_usable;  // parallel to `addresses`
};

class InterfaceTable {
 public:
  explicit InterfaceTable(UsablePolicy policy = {}) : policy_(policy) {}

  // Applies one message (Done/Error are ignored) and appends the changes of the usable set it
  // caused, in this order: removed addresses, interface down, interface up, added addresses.
  // While a resync is open the message goes to the new table instead and reports nothing.
  void apply(const Message& message, TimePoint now, std::vector<InterfaceChange>& out);

  // Resynchronisation after lost events (ENOBUFS) or an interrupted dump: begin_resync(),
  // apply the messages of a full link dump and a full address dump, then end_resync(), which
  // swaps in the new table and reports the difference. abort_resync() keeps the old table.
  void begin_resync();
  void end_resync(TimePoint now, std::vector<InterfaceChange>& out);
  void abort_resync();
  bool resyncing() const { return staging_.has_value(); }

  // Every interface, by index; with `all` false only usable interfaces and addresses.
  std::vector<InterfaceView> snapshot(bool all = false) const;

  bool usable(const Link& link) const;
  bool usable(const Address& address) const;
  const UsablePolicy& policy() const { return policy_; }

 private:
  struct Key {
    std::uint32_t index;
    IpAddress address;
    std::uint8_t prefix_length;
    auto operator<=>(const Key&) const = default;
  };
  struct State {
    std::map<std::uint32_t, Link> links;
    std::map<Key, Address> addresses;
  };
  struct UsableView {
    std::uint32_t index;
    std::string name;
    std::vector<Address> addresses;
  };

  std::optional<UsableView> usable_view(const State& state, std::uint32_t index) const;
  static void apply_to(State& state, const Message& message);
  static void diff(const std::optional<UsableView>& before, const std::optional<UsableView>& after,
                   TimePoint now, std::vector<InterfaceChange>& out);

  UsablePolicy policy_;
  State state_;
  std::optional<State> staging_;
};

}  // namespace roam::netlink
