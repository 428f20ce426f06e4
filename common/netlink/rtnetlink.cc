#include "common/netlink/rtnetlink.h"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>

namespace roam::netlink {
namespace {

// The buffer may be unaligned (fuzz inputs, copies): every struct is read with memcpy.
template <class T>
T load(ByteSpan bytes, std::size_t at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  return value;
}

constexpr std::size_t align4(std::size_t n) {
  return (n + 3) & ~std::size_t{3};  // NLMSG_ALIGN and RTA_ALIGN are both 4
}

struct Attribute {
  std::uint16_t type;
  ByteSpan data;
};

// Splits an attribute area (after the fixed payload) into rtattrs. The last attribute's
// padding may be absent; anything else that does not fit is an error.
expected<std::vector<Attribute>, ParseError> split_attributes(ByteSpan area) {
  std::vector<Attribute> out;
  std::size_t at = 0;
  while (at < area.size()) {
    if (area.size() - at < sizeof(rtattr)) return unexpected(ParseError::kTruncatedAttribute);
    const auto rta = load<rtattr>(area, at);
    if (rta.rta_len < sizeof(rtattr) || rta.rta_len > area.size() - at) {
      return unexpected(ParseError::kTruncatedAttribute);
    }
    out.push_back({static_cast<std::uint16_t>(rta.rta_type & NLA_TYPE_MASK),
                   area.subspan(at + sizeof(rtattr), rta.rta_len - sizeof(rtattr))});
    at += std::min(align4(rta.rta_len), area.size() - at);
  }
  return out;
}

// IFLA_IFNAME / IFA_LABEL: NUL-terminated, at most IFNAMSIZ bytes with the NUL.
expected<std::string, ParseError> name_attribute(ByteSpan data) {
  const auto chars = as_chars(data);
  const auto name = chars.substr(0, chars.find('\0'));
  if (name.size() > kMaxInterfaceName) return unexpected(ParseError::kBadAttribute);
  return std::string(name);
}

expected<std::uint32_t, ParseError> u32_attribute(ByteSpan data) {
  if (data.size() != sizeof(std::uint32_t)) return unexpected(ParseError::kBadAttribute);
  return load<std::uint32_t>(data, 0);
}

expected<Link, ParseError> parse_link(std::uint16_t type, ByteSpan payload, bool& skip) {
  if (payload.size() < sizeof(ifinfomsg)) return unexpected(ParseError::kTruncatedPayload);
  const auto ifi = load<ifinfomsg>(payload, 0);
  auto attributes = split_attributes(payload.subspan(align4(sizeof(ifinfomsg))));
  if (!attributes) return unexpected(attributes.error());
  // AF_BRIDGE (bridge port state) and other families describe something else than the link.
  skip = ifi.ifi_family != AF_UNSPEC;
  Link link;
  link.removed = type == RTM_DELLINK;
  link.index = static_cast<std::uint32_t>(ifi.ifi_index);
  link.type = ifi.ifi_type;
  link.flags = ifi.ifi_flags;
  link.change = ifi.ifi_change;
  for (const auto& a : *attributes) {
    if (a.type == IFLA_IFNAME) {
      auto name = name_attribute(a.data);
      if (!name) return unexpected(name.error());
      link.name = std::move(*name);
    } else if (a.type == IFLA_MTU) {
      auto mtu = u32_attribute(a.data);
      if (!mtu) return unexpected(mtu.error());
      link.mtu = *mtu;
    } else if (a.type == IFLA_OPERSTATE) {
      if (a.data.size() != 1) return unexpected(ParseError::kBadAttribute);
      link.operstate = std::to_integer<std::uint8_t>(a.data[0]);
    }
  }
  return link;
}

expected<Address, ParseError> parse_address(std::uint16_t type, ByteSpan payload, bool& skip) {
  if (payload.size() < sizeof(ifaddrmsg)) return unexpected(ParseError::kTruncatedPayload);
  const auto ifa = load<ifaddrmsg>(payload, 0);
  auto attributes = split_attributes(payload.subspan(align4(sizeof(ifaddrmsg))));
  if (!attributes) return unexpected(attributes.error());
  std::size_t length = 0;
  if (ifa.ifa_family == AF_INET) {
    length = 4;
  } else if (ifa.ifa_family == AF_INET6) {
    length = 16;
  } else {
    skip = true;
    return Address{};
  }
  if (ifa.ifa_prefixlen > length * 8) return unexpected(ParseError::kBadPrefixLength);
  Address address;
  address.removed = type == RTM_DELADDR;
  address.index = ifa.ifa_index;
  address.prefix_length = ifa.ifa_prefixlen;
  address.flags = ifa.ifa_flags;
  address.scope = ifa.ifa_scope;
  std::optional<IpAddress> ifa_address;
  std::optional<IpAddress> ifa_local;
  for (const auto& a : *attributes) {
    if (a.type == IFA_ADDRESS || a.type == IFA_LOCAL) {
      if (a.data.size() != length) return unexpected(ParseError::kBadAttribute);
      std::array<std::uint8_t, 16> raw{};
      std::memcpy(raw.data(), a.data.data(), length);
      const auto ip =
          length == 4 ? IpAddress::v4({raw[0], raw[1], raw[2], raw[3]}) : IpAddress::v6(raw);
      (a.type == IFA_ADDRESS ? ifa_address : ifa_local) = ip;
    } else if (a.type == IFA_FLAGS) {
      auto flags = u32_attribute(a.data);
      if (!flags) return unexpected(flags.error());
      address.flags = *flags;
    } else if (a.type == IFA_LABEL) {
      auto label = name_attribute(a.data);
      if (!label) return unexpected(label.error());
      address.label = std::move(*label);
    } else if (a.type == IFA_CACHEINFO) {
      if (a.data.size() != sizeof(ifa_cacheinfo)) return unexpected(ParseError::kBadAttribute);
      const auto info = load<ifa_cacheinfo>(a.data, 0);
      address.preferred_lifetime = info.ifa_prefered;
      address.valid_lifetime = info.ifa_valid;
    }
  }
  if (ifa_local) {
    address.address = *ifa_local;
  } else if (ifa_address) {
    address.address = *ifa_address;
  } else {
    return unexpected(ParseError::kMissingAddress);
  }
  return address;
}

void put_header(Bytes& out, std::size_t start, const MessageHeader& h) {
  nlmsghdr nh{};
  nh.nlmsg_len = static_cast<std::uint32_t>(out.size() - start);
  nh.nlmsg_type = h.type;
  nh.nlmsg_flags = h.flags;
  nh.nlmsg_seq = h.seq;
  nh.nlmsg_pid = h.pid;
  std::memcpy(out.data() + start, &nh, sizeof(nh));
}

template <class T>
void put_struct(Bytes& out, const T& value) {
  const auto at = out.size();
  out.resize(at + align4(sizeof(T)));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void put_attribute(Bytes& out, std::uint16_t type, const void* data, std::size_t size) {
  rtattr rta{};
  rta.rta_len = static_cast<unsigned short>(sizeof(rtattr) + size);
  rta.rta_type = type;
  const auto at = out.size();
  out.resize(at + align4(sizeof(rtattr) + size));
  std::memcpy(out.data() + at, &rta, sizeof(rta));
  if (size > 0) std::memcpy(out.data() + at + sizeof(rtattr), data, size);
}

void put_string(Bytes& out, std::uint16_t type, const std::string& s) {
  std::string with_nul = s;
  with_nul.push_back('\0');
  put_attribute(out, type, with_nul.data(), with_nul.size());
}

}  // namespace

std::string_view describe(ParseError e) {
  switch (e) {
    case ParseError::kTruncatedHeader:
      return "truncated netlink header";
    case ParseError::kBadMessageLength:
      return "netlink message length outside the buffer";
    case ParseError::kTruncatedPayload:
      return "netlink message shorter than its fixed payload";
    case ParseError::kTruncatedAttribute:
      return "rtnetlink attribute does not fit in its message";
    case ParseError::kBadAttribute:
      return "rtnetlink attribute has the wrong size for its type";
    case ParseError::kBadPrefixLength:
      return "address prefix length longer than the address";
    case ParseError::kMissingAddress:
      return "address message without IFA_ADDRESS or IFA_LOCAL";
  }
  return "unknown netlink parse error";
}

bool MessageHeader::multipart() const {
  return (flags & NLM_F_MULTI) != 0;
}
bool MessageHeader::dump_interrupted() const {
  return (flags & NLM_F_DUMP_INTR) != 0;
}

bool Link::up() const {
  return (flags & IFF_UP) != 0;
}
bool Link::running() const {
  return (flags & IFF_RUNNING) != 0;
}
bool Link::loopback() const {
  return (flags & IFF_LOOPBACK) != 0;
}

bool Address::temporary() const {
  // The same bit is IFA_F_SECONDARY for IPv4 (an alias within an existing prefix).
  return address.is_v6() && (flags & IFA_F_TEMPORARY) != 0;
}
bool Address::deprecated() const {
  return (flags & IFA_F_DEPRECATED) != 0;
}
bool Address::tentative() const {
  return (flags & IFA_F_TENTATIVE) != 0;
}
bool Address::dad_failed() const {
  return (flags & IFA_F_DADFAILED) != 0;
}

expected<std::vector<Message>, ParseFailure> parse_messages(ByteSpan buffer) {
  std::vector<Message> out;
  std::size_t at = 0;
  while (at < buffer.size()) {
    const auto fail = [at](ParseError e) { return unexpected(ParseFailure{e, at}); };
    if (buffer.size() - at < sizeof(nlmsghdr)) return fail(ParseError::kTruncatedHeader);
    const auto nh = load<nlmsghdr>(buffer, at);
    if (nh.nlmsg_len < sizeof(nlmsghdr) || nh.nlmsg_len > buffer.size() - at) {
      return fail(ParseError::kBadMessageLength);
    }
    const auto payload = buffer.subspan(at + sizeof(nlmsghdr), nh.nlmsg_len - sizeof(nlmsghdr));
    const MessageHeader header{nh.nlmsg_type, nh.nlmsg_flags, nh.nlmsg_seq, nh.nlmsg_pid};
    bool skip = false;
    switch (nh.nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK: {
        auto link = parse_link(nh.nlmsg_type, payload, skip);
        if (!link) return fail(link.error());
        if (!skip) out.push_back({header, std::move(*link)});
        break;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR: {
        auto address = parse_address(nh.nlmsg_type, payload, skip);
        if (!address) return fail(address.error());
        if (!skip) out.push_back({header, std::move(*address)});
        break;
      }
      case NLMSG_DONE: {
        if (payload.size() < sizeof(std::int32_t)) return fail(ParseError::kTruncatedPayload);
        out.push_back({header, Done{load<std::int32_t>(payload, 0)}});
        break;
      }
      case NLMSG_ERROR: {
        if (payload.size() < sizeof(nlmsgerr)) return fail(ParseError::kTruncatedPayload);
        const auto err = load<nlmsgerr>(payload, 0);
        out.push_back({header, Error{err.error,
                                     {err.msg.nlmsg_type, err.msg.nlmsg_flags, err.msg.nlmsg_seq,
                                      err.msg.nlmsg_pid}}});
        break;
      }
      default:
        break;  // NLMSG_NOOP, NLMSG_OVERRUN, routes, neighbours, ...: not ours
    }
    at += std::min(align4(nh.nlmsg_len), buffer.size() - at);
  }
  return out;
}

Bytes build_dump_request(Dump what, std::uint32_t seq) {
  Bytes out(sizeof(nlmsghdr));
  MessageHeader h{
      .type = what == Dump::kLinks ? std::uint16_t{RTM_GETLINK} : std::uint16_t{RTM_GETADDR},
      .flags = NLM_F_REQUEST | NLM_F_DUMP,
      .seq = seq};
  if (what == Dump::kLinks) {
    put_struct(out, ifinfomsg{.ifi_family = AF_UNSPEC});
  } else {
    put_struct(out, ifaddrmsg{.ifa_family = AF_UNSPEC});
  }
  put_header(out, 0, h);
  return out;
}

void encode(const Message& message, Bytes& out) {
  const auto start = out.size();
  out.resize(start + sizeof(nlmsghdr));
  MessageHeader h = message.header;
  if (const auto* link = std::get_if<Link>(&message.body)) {
    h.type = link->removed ? RTM_DELLINK : RTM_NEWLINK;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_type = link->type;
    ifi.ifi_index = static_cast<int>(link->index);
    ifi.ifi_flags = link->flags;
    ifi.ifi_change = link->change;
    put_struct(out, ifi);
    if (!link->name.empty()) put_string(out, IFLA_IFNAME, link->name);
    if (link->mtu) put_attribute(out, IFLA_MTU, &*link->mtu, sizeof(std::uint32_t));
    if (link->operstate) put_attribute(out, IFLA_OPERSTATE, &*link->operstate, 1);
  } else if (const auto* a = std::get_if<Address>(&message.body)) {
    h.type = a->removed ? RTM_DELADDR : RTM_NEWADDR;
    ifaddrmsg ifa{};
    ifa.ifa_family = a->address.is_v4() ? AF_INET : AF_INET6;
    ifa.ifa_prefixlen = a->prefix_length;
    ifa.ifa_flags = static_cast<std::uint8_t>(a->flags & 0xff);
    ifa.ifa_scope = a->scope;
    ifa.ifa_index = a->index;
    put_struct(out, ifa);
    put_attribute(out, IFA_ADDRESS, a->address.bytes().data(), a->address.size());
    if (a->address.is_v4()) {
      put_attribute(out, IFA_LOCAL, a->address.bytes().data(), a->address.size());
    }
    put_attribute(out, IFA_FLAGS, &a->flags, sizeof(a->flags));
    if (!a->label.empty()) put_string(out, IFA_LABEL, a->label);
    if (a->preferred_lifetime || a->valid_lifetime) {
      ifa_cacheinfo info{};
      info.ifa_prefered = a->preferred_lifetime.value_or(0);
      info.ifa_valid = a->valid_lifetime.value_or(0);
      put_attribute(out, IFA_CACHEINFO, &info, sizeof(info));
    }
  } else if (const auto* done = std::get_if<Done>(&message.body)) {
    h.type = NLMSG_DONE;
    put_struct(out, done->status);
  } else if (const auto* error = std::get_if<Error>(&message.body)) {
    h.type = NLMSG_ERROR;
    nlmsgerr err{};
    err.error = error->error;
    err.msg.nlmsg_len = sizeof(nlmsghdr);
    err.msg.nlmsg_type = error->request.type;
    err.msg.nlmsg_flags = error->request.flags;
    err.msg.nlmsg_seq = error->request.seq;
    err.msg.nlmsg_pid = error->request.pid;
    put_struct(out, err);
  }
  put_header(out, start, h);
}

}  // namespace roam::netlink
