// rtnetlink (NETLINK_ROUTE) messages as values: a sans-I/O parser over one recv() buffer, which
// may hold several nlmsghdr messages, and builders for the dump requests the interface monitor
// sends. Links (RTM_NEWLINK/RTM_DELLINK), addresses (RTM_NEWADDR/RTM_DELADDR) and the dump
// terminators (NLMSG_DONE, NLMSG_ERROR) are decoded; every other message type is skipped.
//
// Netlink is host byte order and the layouts are the kernel's (<linux/netlink.h>,
// <linux/rtnetlink.h>, <linux/if_addr.h>, netlink(7), rtnetlink(7)). The parser is strict:
// a header, payload or attribute that does not fit in its enclosing length is an error, so a
// corrupt buffer is never half-applied and nothing is read outside `buffer`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/util/bytes.h"
#include "common/util/expected.h"
#include "common/util/socket_address.h"

namespace roam::netlink {

// IFNAMSIZ (<linux/if.h>) includes the terminating NUL: names have at most 15 characters.
inline constexpr std::size_t kMaxInterfaceName = 15;

enum class ParseError : std::uint8_t {
  kTruncatedHeader,     // fewer than sizeof(nlmsghdr) bytes left for the next message
  kBadMessageLength,    // nlmsg_len smaller than the header or larger than the bytes left
  kTruncatedPayload,    // ifinfomsg / ifaddrmsg / nlmsgerr / NLMSG_DONE status cut short
  kTruncatedAttribute,  // an rtattr header or rta_len does not fit in its message
  kBadAttribute,        // wrong size for its type (address, flags, lifetimes) or a name > 15
  kBadPrefixLength,     // prefix length above 32 (IPv4) or 128 (IPv6)
  kMissingAddress,      // RTM_NEWADDR/RTM_DELADDR without IFA_ADDRESS or IFA_LOCAL
};
std::string_view describe(ParseError e);

struct ParseFailure {
  ParseError error;
  std::size_t offset;  // of the offending message within the buffer
};

struct MessageHeader {
  std::uint16_t type = 0;   // RTM_* / NLMSG_*
  std::uint16_t flags = 0;  // NLM_F_*
  std::uint32_t seq = 0;    // the request's sequence number for dump replies, 0 for events
  std::uint32_t pid = 0;    // port id of the sender: 0 for the kernel

  bool multipart() const;         // NLM_F_MULTI: part of a dump, ended by NLMSG_DONE
  bool dump_interrupted() const;  // NLM_F_DUMP_INTR: the table changed during the dump

  bool operator==(const MessageHeader&) const = default;
};

// RTM_NEWLINK / RTM_DELLINK (family AF_UNSPEC; AF_BRIDGE port notifications are skipped).
struct Link {
  bool removed = false;                   // RTM_DELLINK
  std::uint32_t index = 0;                // ifi_index
  std::uint16_t type = 0;                 // ifi_type: ARPHRD_* (ARPHRD_LOOPBACK, ARPHRD_ETHER, ...)
  std::uint32_t flags = 0;                // ifi_flags: IFF_*
  std::uint32_t change = 0;               // ifi_change: which IFF_* bits changed (events only)
  std::string name;                       // IFLA_IFNAME; empty when absent
  std::optional<std::uint32_t> mtu;       // IFLA_MTU
  std::optional<std::uint8_t> operstate;  // IFLA_OPERSTATE: IF_OPER_* (RFC 2863)

  bool up() const;        // IFF_UP: administratively up
  bool running() const;   // IFF_RUNNING: carrier (operationally up)
  bool loopback() const;  // IFF_LOOPBACK

  bool operator==(const Link&) const = default;
};

// RTM_NEWADDR / RTM_DELADDR for AF_INET and AF_INET6 (other families are skipped).
struct Address {
  bool removed = false;     // RTM_DELADDR
  std::uint32_t index = 0;  // ifa_index
  // IFA_LOCAL when present (the local end of a point-to-point link), else IFA_ADDRESS.
  IpAddress address;
  std::uint8_t prefix_length = 0;  // ifa_prefixlen
  std::uint32_t flags = 0;         // IFA_F_*: IFA_FLAGS (32 bits) when present, else ifa_flags
  std::uint8_t scope = 0;          // ifa_scope: RT_SCOPE_UNIVERSE, _LINK, _HOST, ...
  std::string label;               // IFA_LABEL (IPv4 aliases, "eth0:1"); empty when absent
  // IFA_CACHEINFO lifetimes in seconds; 0xFFFFFFFF (INFINITY_LIFE_TIME) = forever.
  std::optional<std::uint32_t> preferred_lifetime;
  std::optional<std::uint32_t> valid_lifetime;

  bool temporary() const;   // IPv6 and IFA_F_TEMPORARY: RFC 8981 privacy address
  bool deprecated() const;  // IFA_F_DEPRECATED: preferred lifetime over (RFC 4862 §5.5.4)
  bool tentative() const;   // IFA_F_TENTATIVE: duplicate address detection still running
  bool dad_failed() const;  // IFA_F_DADFAILED
  // Not yet (or never) bindable: tentative or DAD failed (RFC 4862 §5.4).
  bool unusable() const { return tentative() || dad_failed(); }

  bool operator==(const Address&) const = default;
};

// NLMSG_DONE: the end of a dump. `status` is the dump's return (0, or a negative errno).
struct Done {
  std::int32_t status = 0;
  bool operator==(const Done&) const = default;
};

// NLMSG_ERROR: `error` is 0 for an acknowledgement, else a negative errno for `request`.
struct Error {
  std::int32_t error = 0;
  MessageHeader request;  // the header of the request it answers
  bool operator==(const Error&) const = default;
};

using Body = std::variant<Link, Address, Done, Error>;

struct Message {
  MessageHeader header;
  Body body;
  bool operator==(const Message&) const = default;
};

// Parses every message in one recv() buffer, in order. Unknown message types and families
// are skipped (not an error); any length that does not fit fails the whole buffer. Unknown
// attributes are ignored; NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are masked off the type.
expected<std::vector<Message>, ParseFailure> parse_messages(ByteSpan buffer);

// Dump requests (NLM_F_REQUEST | NLM_F_DUMP, family AF_UNSPEC): every link, every address.
enum class Dump : std::uint8_t { kLinks, kAddresses };
Bytes build_dump_request(Dump what, std::uint32_t seq);

// Appends one message in the kernel's layout (for tests, fuzz round trips and simulated
// kernels). parse_messages() gives back the same value; names longer than 15 characters and
// addresses are written as given, so callers keep them valid.
void encode(const Message& message, Bytes& out);

}  // namespace roam::netlink
