#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/socket.h>

#include <cstring>

#include <gtest/gtest.h>

#include "common/netlink/interface_table.h"
#include "common/netlink/rtnetlink.h"

namespace roam::netlink {
namespace {

// Builds messages byte by byte in the kernel's layout, independently of encode().
class Raw {
 public:
  // Starts a message; its nlmsg_len is fixed by end().
  Raw& begin(std::uint16_t type, std::uint16_t flags = 0, std::uint32_t seq = 0) {
    start_ = out_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    return put(&h, sizeof(h));
  }
  Raw& link(int index, std::uint32_t flags, std::uint16_t type = ARPHRD_ETHER,
            std::uint8_t family = AF_UNSPEC) {
    ifinfomsg m{};
    m.ifi_family = family;
    m.ifi_type = type;
    m.ifi_index = index;
    m.ifi_flags = flags;
    return put(&m, sizeof(m));
  }
  Raw& addr(std::uint8_t family, std::uint8_t prefix, std::uint8_t flags, std::uint8_t scope,
            std::uint32_t index) {
    ifaddrmsg m{};
    m.ifa_family = family;
    m.ifa_prefixlen = prefix;
    m.ifa_flags = flags;
    m.ifa_scope = scope;
    m.ifa_index = index;
    return put(&m, sizeof(m));
  }
  Raw& attr(std::uint16_t type, const void* data, std::size_t size) {
    rtattr a{};
    a.rta_len = static_cast<unsigned short>(sizeof(a) + size);
    a.rta_type = type;
    put(&a, sizeof(a));
    put(data, size);
    return pad();
  }
  Raw& str(std::uint16_t type, const char* s) { return attr(type, s, std::strlen(s) + 1); }
  Raw& u32(std::uint16_t type, std::uint32_t v) { return attr(type, &v, 4); }
  Raw& ip(std::uint16_t type, std::string_view text) {
    const auto a = IpAddress::parse(text).value();
    return attr(type, a.bytes().data(), a.size());
  }
  Raw& put(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + size);
    return *this;
  }
  Raw& pad() {
    while (out_.size() % 4 != 0)
      out_.push_back(std::byte{0});
    return *this;
  }
  Raw& end() {
    const auto len = static_cast<std::uint32_t>(out_.size() - start_);
    std::memcpy(out_.data() + start_, &len, 4);
    return *this;
  }
  Bytes& bytes() { return out_; }

 private:
  Bytes out_;
  std::size_t start_ = 0;
};

IpAddress ip(std::string_view text) {
  return IpAddress::parse(text).value();
}

TEST(NetlinkParse, LinkWithNameMtuAndOperstate) {
  Raw r;
  std::uint8_t oper = 6;  // IF_OPER_UP (<linux/if.h>, which clashes with <net/if.h>)
  r.begin(RTM_NEWLINK, NLM_F_MULTI, 7)
      .link(3, IFF_UP | IFF_RUNNING)
      .str(IFLA_IFNAME, "wlan0")
      .u32(IFLA_MTU, 1500)
      .attr(IFLA_OPERSTATE, &oper, 1)
      .u32(IFLA_TXQLEN, 1000)  // unknown to us: ignored
      .end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m) << describe(m.error().error);
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].header.seq, 7u);
  EXPECT_TRUE((*m)[0].header.multipart());
  const auto& link = std::get<Link>((*m)[0].body);
  EXPECT_FALSE(link.removed);
  EXPECT_EQ(link.index, 3u);
  EXPECT_EQ(link.name, "wlan0");
  EXPECT_EQ(link.mtu, 1500u);
  EXPECT_EQ(link.operstate, 6);
  EXPECT_TRUE(link.up());
  EXPECT_TRUE(link.running());
  EXPECT_FALSE(link.loopback());
}

TEST(NetlinkParse, SeveralMessagesInOneBufferEndedByDone) {
  Raw r;
  r.begin(RTM_NEWLINK, NLM_F_MULTI, 1)
      .link(1, IFF_UP | IFF_RUNNING | IFF_LOOPBACK, ARPHRD_LOOPBACK)
      .str(IFLA_IFNAME, "lo")
      .end();
  r.begin(RTM_NEWROUTE, NLM_F_MULTI, 1).put("\0\0\0\0\0\0\0\0\0\0\0\0", 12).end();  // skipped
  r.begin(RTM_DELLINK, 0, 0).link(4, 0).str(IFLA_IFNAME, "eth1").end();
  std::int32_t zero = 0;
  r.begin(NLMSG_DONE, NLM_F_MULTI, 1).put(&zero, 4).end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m) << describe(m.error().error);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_TRUE(std::get<Link>((*m)[0].body).loopback());
  EXPECT_EQ(std::get<Link>((*m)[0].body).type, ARPHRD_LOOPBACK);
  EXPECT_TRUE(std::get<Link>((*m)[1].body).removed);
  EXPECT_EQ(std::get<Link>((*m)[1].body).name, "eth1");
  EXPECT_EQ(std::get<Done>((*m)[2].body).status, 0);
}

TEST(NetlinkParse, Ipv4AddressPrefersLocalOverPeer) {
  Raw r;
  r.begin(RTM_NEWADDR)
      .addr(AF_INET, 32, IFA_F_PERMANENT, RT_SCOPE_UNIVERSE, 5)
      .ip(IFA_ADDRESS, "10.0.0.2")  // the point-to-point peer
      .ip(IFA_LOCAL, "10.0.0.1")
      .str(IFA_LABEL, "ppp0")
      .end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m);
  const auto& a = std::get<Address>((*m)[0].body);
  EXPECT_EQ(a.address, ip("10.0.0.1"));
  EXPECT_EQ(a.prefix_length, 32);
  EXPECT_EQ(a.index, 5u);
  EXPECT_EQ(a.label, "ppp0");
  EXPECT_EQ(a.flags, unsigned{IFA_F_PERMANENT});
  EXPECT_FALSE(a.temporary());  // 0x01 on IPv4 is IFA_F_SECONDARY, never "temporary"
}

TEST(NetlinkParse, Ipv6AddressFlagsAndLifetimes) {
  Raw r;
  ifa_cacheinfo info{};
  info.ifa_prefered = 600;
  info.ifa_valid = 3600;
  r.begin(RTM_NEWADDR)
      .addr(AF_INET6, 64, IFA_F_TEMPORARY, RT_SCOPE_UNIVERSE, 2)
      .ip(IFA_ADDRESS, "2001:db8::1234")
      .attr(IFA_CACHEINFO, &info, sizeof(info))
      // IFA_FLAGS carries the full 32 bits and wins over the 8-bit ifa_flags.
      .u32(IFA_FLAGS, IFA_F_TEMPORARY | IFA_F_DEPRECATED | IFA_F_MANAGETEMPADDR)
      .end();
  r.begin(RTM_DELADDR)
      .addr(AF_INET6, 64, IFA_F_TENTATIVE | IFA_F_DADFAILED, RT_SCOPE_LINK, 2)
      .ip(IFA_ADDRESS, "fe80::1")
      .end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 2u);
  const auto& a = std::get<Address>((*m)[0].body);
  EXPECT_EQ(a.address, ip("2001:db8::1234"));
  EXPECT_TRUE(a.temporary());
  EXPECT_TRUE(a.deprecated());
  EXPECT_FALSE(a.tentative());
  EXPECT_EQ(a.preferred_lifetime, 600u);
  EXPECT_EQ(a.valid_lifetime, 3600u);
  const auto& b = std::get<Address>((*m)[1].body);
  EXPECT_TRUE(b.removed);
  EXPECT_TRUE(b.tentative());
  EXPECT_TRUE(b.dad_failed());
  EXPECT_TRUE(b.unusable());
  EXPECT_EQ(b.scope, RT_SCOPE_LINK);
}

TEST(NetlinkParse, ErrorAndAck) {
  Raw r;
  nlmsgerr e{};
  e.error = -EBUSY;
  e.msg.nlmsg_len = 32;
  e.msg.nlmsg_type = RTM_GETADDR;
  e.msg.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  e.msg.nlmsg_seq = 9;
  r.begin(NLMSG_ERROR, 0, 9).put(&e, sizeof(e)).end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m);
  const auto& err = std::get<Error>((*m)[0].body);
  EXPECT_EQ(err.error, -EBUSY);
  EXPECT_EQ(err.request.type, RTM_GETADDR);
  EXPECT_EQ(err.request.seq, 9u);
}

TEST(NetlinkParse, SkipsOtherFamilies) {
  Raw r;
  r.begin(RTM_NEWLINK).link(3, IFF_UP, ARPHRD_ETHER, AF_BRIDGE).str(IFLA_IFNAME, "br0").end();
  r.begin(RTM_NEWADDR).addr(AF_PACKET, 0, 0, 0, 3).end();
  r.begin(NLMSG_NOOP).end();
  auto m = parse_messages(r.bytes());
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->empty());
  EXPECT_TRUE(parse_messages({}).value().empty());
}

TEST(NetlinkParse, RejectsTruncationsAndBadLengths) {
  Raw r;
  r.begin(RTM_NEWADDR)
      .addr(AF_INET, 24, 0, 0, 2)
      .ip(IFA_ADDRESS, "192.0.2.1")
      .str(IFA_LABEL, "eth0")
      .end();
  const Bytes full = r.bytes();
  ASSERT_TRUE(parse_messages(full));
  // Every cut of a valid message fails: nothing is read past the buffer.
  for (std::size_t n = 1; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto m = parse_messages(cut);
    ASSERT_FALSE(m) << n;
    EXPECT_EQ(m.error().offset, 0u);
  }
  // nlmsg_len below the header size, and beyond the buffer.
  Bytes bad = full;
  std::uint32_t len = 8;
  std::memcpy(bad.data(), &len, 4);
  EXPECT_EQ(parse_messages(bad).error().error, ParseError::kBadMessageLength);
  len = static_cast<std::uint32_t>(full.size() + 4);
  std::memcpy(bad.data(), &len, 4);
  EXPECT_EQ(parse_messages(bad).error().error, ParseError::kBadMessageLength);
  // A second message cut short is reported at its own offset.
  Bytes two = full;
  two.insert(two.end(), full.begin(), full.begin() + 10);
  EXPECT_EQ(parse_messages(two).error().error, ParseError::kTruncatedHeader);
  EXPECT_EQ(parse_messages(two).error().offset, full.size());
}

TEST(NetlinkParse, RejectsBadAttributes) {
  {
    Raw r;  // IPv4 address attribute with 16 bytes
    r.begin(RTM_NEWADDR).addr(AF_INET, 24, 0, 0, 2).ip(IFA_ADDRESS, "2001:db8::1").end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kBadAttribute);
  }
  {
    Raw r;
    r.begin(RTM_NEWADDR).addr(AF_INET, 33, 0, 0, 2).ip(IFA_ADDRESS, "192.0.2.1").end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kBadPrefixLength);
  }
  {
    Raw r;
    r.begin(RTM_NEWADDR).addr(AF_INET6, 64, 0, 0, 2).end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kMissingAddress);
  }
  {
    Raw r;  // 16 characters do not fit IFNAMSIZ
    r.begin(RTM_NEWLINK).link(2, 0).str(IFLA_IFNAME, "abcdefghijklmnop").end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kBadAttribute);
  }
  {
    Raw r;  // rta_len beyond the message
    rtattr a{};
    a.rta_len = 64;
    a.rta_type = IFLA_IFNAME;
    r.begin(RTM_NEWLINK).link(2, 0).put(&a, sizeof(a)).end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kTruncatedAttribute);
  }
  {
    Raw r;  // rta_len smaller than the rtattr header
    rtattr a{};
    a.rta_len = 2;
    r.begin(RTM_NEWLINK).link(2, 0).put(&a, sizeof(a)).end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kTruncatedAttribute);
  }
  {
    Raw r;  // NLMSG_DONE without its status
    r.begin(NLMSG_DONE).end();
    EXPECT_EQ(parse_messages(r.bytes()).error().error, ParseError::kTruncatedPayload);
  }
}

TEST(NetlinkParse, EncodeRoundTrips) {
  std::vector<Message> messages{
      {{RTM_NEWLINK, NLM_F_MULTI, 3, 0},
       Link{.index = 2, .type = ARPHRD_ETHER, .flags = IFF_UP, .name = "eth0", .mtu = 9000}},
      {{RTM_DELADDR, 0, 0, 0},
       Address{.removed = true,
               .index = 2,
               .address = ip("2001:db8::5"),
               .prefix_length = 64,
               .flags = IFA_F_TEMPORARY | IFA_F_MANAGETEMPADDR,
               .preferred_lifetime = 1,
               .valid_lifetime = 2}},
      {{NLMSG_DONE, NLM_F_MULTI, 3, 0}, Done{-4}},
      {{NLMSG_ERROR, 0, 4, 0}, Error{-16, {RTM_GETLINK, NLM_F_REQUEST, 4, 99}}},
  };
  Bytes buffer;
  for (const auto& m : messages)
    encode(m, buffer);
  auto parsed = parse_messages(buffer);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, messages);
}

TEST(NetlinkParse, DumpRequests) {
  const auto links = build_dump_request(Dump::kLinks, 42);
  ASSERT_EQ(links.size(), NLMSG_LENGTH(sizeof(ifinfomsg)));
  nlmsghdr h{};
  std::memcpy(&h, links.data(), sizeof(h));
  EXPECT_EQ(h.nlmsg_len, links.size());
  EXPECT_EQ(h.nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(h.nlmsg_seq, 42u);
  const auto addrs = build_dump_request(Dump::kAddresses, 43);
  ASSERT_EQ(addrs.size(), NLMSG_LENGTH(sizeof(ifaddrmsg)));
  std::memcpy(&h, addrs.data(), sizeof(h));
  EXPECT_EQ(h.nlmsg_type, RTM_GETADDR);
  EXPECT_EQ(h.nlmsg_len, addrs.size());
  ifaddrmsg m{};
  std::memcpy(&m, addrs.data() + NLMSG_HDRLEN, sizeof(m));
  EXPECT_EQ(m.ifa_family, AF_UNSPEC);
}

// --- InterfaceTable ---------------------------------------------------------------------------

Message link_msg(std::uint32_t index, const char* name, std::uint32_t flags, bool removed = false) {
  return {{}, Link{.removed = removed, .index = index, .flags = flags, .name = name}};
}
Message addr_msg(std::uint32_t index, const char* text, std::uint8_t prefix,
                 std::uint32_t flags = 0, bool removed = false) {
  return {{},
          Address{.removed = removed,
                  .index = index,
                  .address = ip(text),
                  .prefix_length = prefix,
                  .flags = flags}};
}

std::vector<std::string> describe(const std::vector<InterfaceChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    std::string s = std::string(to_string(c.kind)) + " " + c.name;
    if (c.address) s += " " + c.address->address.to_string();
    out.push_back(s);
  }
  return out;
}

constexpr std::uint32_t kUp = IFF_UP | IFF_RUNNING;

TEST(NetlinkInterfaceTable, ReportsUsableChangesInOrder) {
  InterfaceTable t;
  const TimePoint now{seconds(5)};
  std::vector<InterfaceChange> c;
  t.apply(link_msg(3, "dummy0", IFF_UP), now, c);  // no carrier yet
  EXPECT_TRUE(c.empty());
  t.apply(addr_msg(3, "10.9.0.1", 24), now, c);
  EXPECT_TRUE(c.empty());
  t.apply(link_msg(3, "dummy0", kUp), now, c);
  EXPECT_EQ(describe(c),
            (std::vector<std::string>{"interface_up dummy0", "address_added dummy0 10.9.0.1"}));
  EXPECT_EQ(c[0].at, now);
  c.clear();
  t.apply(addr_msg(3, "fd00::1", 64, IFA_F_TENTATIVE), now, c);
  EXPECT_TRUE(c.empty());  // not bindable until DAD finishes
  t.apply(addr_msg(3, "fd00::1", 64), now, c);
  EXPECT_EQ(describe(c), std::vector<std::string>{"address_added dummy0 fd00::1"});
  c.clear();
  t.apply(addr_msg(3, "fe80::1", 64), now, c);  // link-local: skipped by default
  t.apply(addr_msg(3, "fd00::1", 64, IFA_F_DEPRECATED), now, c);
  EXPECT_EQ(describe(c), std::vector<std::string>{"address_removed dummy0 fd00::1"});
  c.clear();
  t.apply(link_msg(3, "dummy0", IFF_UP), now, c);  // carrier lost
  EXPECT_EQ(describe(c),
            (std::vector<std::string>{"address_removed dummy0 10.9.0.1", "interface_down dummy0"}));
  c.clear();
  t.apply(link_msg(3, "dummy0", kUp), now, c);
  t.apply(link_msg(3, "dummy0", 0, true), now, c);
  EXPECT_EQ(describe(c),
            (std::vector<std::string>{"interface_up dummy0", "address_added dummy0 10.9.0.1",
                                      "address_removed dummy0 10.9.0.1", "interface_down dummy0"}));
  EXPECT_TRUE(t.snapshot(true).empty());  // the link's addresses went with it
}

TEST(NetlinkInterfaceTable, PolicyAndSnapshot) {
  InterfaceTable strict;
  InterfaceTable all({.loopback = true, .link_local = true, .deprecated = true});
  std::vector<InterfaceChange> c;
  for (auto* t : {&strict, &all}) {
    t->apply(link_msg(1, "lo", kUp | IFF_LOOPBACK), {}, c);
    t->apply(addr_msg(1, "127.0.0.1", 8), {}, c);
    t->apply(link_msg(2, "eth0", kUp), {}, c);
    t->apply(addr_msg(2, "fe80::2", 64), {}, c);
    t->apply(addr_msg(2, "2001:db8::2", 64, IFA_F_DEPRECATED), {}, c);
    t->apply(link_msg(4, "eth1", 0), {}, c);
  }
  auto s = strict.snapshot();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].link.name, "eth0");
  EXPECT_TRUE(s[0].addresses.empty());
  auto everything = strict.snapshot(true);
  ASSERT_EQ(everything.size(), 3u);
  EXPECT_FALSE(everything[0].usable);  // lo
  EXPECT_EQ(everything[1].addresses.size(), 2u);
  EXPECT_FALSE(everything[1].address_usable[0]);
  auto relaxed = all.snapshot();
  ASSERT_EQ(relaxed.size(), 2u);
  EXPECT_EQ(relaxed[0].addresses.size(), 1u);
  EXPECT_EQ(relaxed[1].addresses.size(), 2u);
}

TEST(NetlinkInterfaceTable, ResyncReportsOnlyTheDifference) {
  InterfaceTable t;
  std::vector<InterfaceChange> c;
  t.apply(link_msg(2, "eth0", kUp), {}, c);
  t.apply(addr_msg(2, "192.0.2.1", 24), {}, c);
  t.apply(addr_msg(2, "192.0.2.2", 24), {}, c);
  t.apply(link_msg(3, "wlan0", kUp), {}, c);
  c.clear();
  // Events were lost: eth0 lost .2 and gained .3, wlan0 is gone, wwan0 appeared.
  t.begin_resync();
  EXPECT_TRUE(t.resyncing());
  t.apply(link_msg(2, "eth0", kUp), {}, c);
  t.apply(link_msg(5, "wwan0", kUp), {}, c);
  t.apply(addr_msg(2, "192.0.2.1", 24), {}, c);
  t.apply(addr_msg(2, "192.0.2.3", 24), {}, c);
  EXPECT_TRUE(c.empty());  // nothing is reported before the dump is complete
  t.end_resync({}, c);
  EXPECT_EQ(describe(c), (std::vector<std::string>{"address_removed eth0 192.0.2.2",
                                                   "address_added eth0 192.0.2.3",
                                                   "interface_down wlan0", "interface_up wwan0"}));
  c.clear();
  t.begin_resync();
  t.apply(link_msg(2, "eth0", 0), {}, c);
  t.abort_resync();  // an interrupted dump changes nothing
  EXPECT_EQ(t.snapshot().size(), 2u);
  EXPECT_TRUE(c.empty());
}

TEST(NetlinkInterfaceTable, RenameIsDownThenUp) {
  InterfaceTable t;
  std::vector<InterfaceChange> c;
  t.apply(link_msg(2, "eth0", kUp), {}, c);
  t.apply(addr_msg(2, "192.0.2.1", 24), {}, c);
  c.clear();
  t.apply(link_msg(2, "lan0", kUp), {}, c);
  EXPECT_EQ(describe(c),
            (std::vector<std::string>{"address_removed eth0 192.0.2.1", "interface_down eth0",
                                      "interface_up lan0", "address_added lan0 192.0.2.1"}));
}

}  // namespace
}  // namespace roam::netlink
