// Fuzz target for the rtnetlink parser and the interface table it feeds: a parse either fails
// at an offset inside the buffer or yields messages that re-encode and parse to the same values;
// the table stays consistent (snapshots only list what its policy calls usable) whatever the
// kernel appears to say. Any violated invariant aborts so libFuzzer records the input.
#include <cstddef>
#include <cstdint>

#include "common/netlink/interface_table.h"
#include "common/netlink/rtnetlink.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace roam;
using namespace roam::netlink;

void check_message(const Message& m) {
  if (const auto* link = std::get_if<Link>(&m.body)) {
    FUZZ_CHECK(link->name.size() <= kMaxInterfaceName);
    FUZZ_CHECK(link->name.find('\0') == std::string::npos);
  } else if (const auto* a = std::get_if<Address>(&m.body)) {
    FUZZ_CHECK(a->prefix_length <= a->address.size() * 8);
    FUZZ_CHECK(a->label.size() <= kMaxInterfaceName);
    FUZZ_CHECK(a->preferred_lifetime.has_value() == a->valid_lifetime.has_value());
  }
}

void check_table(const InterfaceTable& table, const std::vector<InterfaceChange>& changes) {
  for (const auto& c : changes) {
    const bool address_change =
        c.kind == ChangeKind::kAddressAdded || c.kind == ChangeKind::kAddressRemoved;
    FUZZ_CHECK(c.address.has_value() == address_change);
    if (c.kind == ChangeKind::kAddressAdded) FUZZ_CHECK(table.usable(*c.address));
  }
  for (const auto& view : table.snapshot(false)) {
    FUZZ_CHECK(view.usable && table.usable(view.link));
    FUZZ_CHECK(view.addresses.size() == view.address_usable.size());
    for (const auto& a : view.addresses) {
      FUZZ_CHECK(table.usable(a));
      FUZZ_CHECK(a.index == view.link.index);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_messages(in);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().offset < size);
    FUZZ_CHECK(!describe(parsed.error().error).empty());
    return 0;
  }
  for (const auto& m : *parsed)
    check_message(m);

  Bytes again;
  for (const auto& m : *parsed)
    encode(m, again);
  auto reparsed = parse_messages(again);
  FUZZ_CHECK(reparsed.has_value());
  FUZZ_CHECK(*reparsed == *parsed);

  // The first byte picks the policy; a Done message ends a resync opened by the first dump-part.
  const auto policy = size > 0 ? data[0] : 0;
  InterfaceTable table({.loopback = (policy & 1) != 0,
                        .link_local = (policy & 2) != 0,
                        .deprecated = (policy & 4) != 0});
  std::vector<InterfaceChange> changes;
  const TimePoint now{};
  for (const auto& m : *parsed) {
    if (m.header.multipart() && !table.resyncing()) table.begin_resync();
    if (std::holds_alternative<Done>(m.body)) table.end_resync(now, changes);
    table.apply(m, now, changes);
    check_table(table, changes);
    changes.clear();
  }
  table.end_resync(now, changes);
  check_table(table, changes);
  return 0;
}
