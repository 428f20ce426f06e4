"""Declarative lab topologies: which hosts, routers (with which NAT) and links exist.

A topology is plain data; `Lab` (lab.py) turns it into namespaces, veth links, addresses,
routes, firewall/NAT rules and daemons, and `plan()` computes every address up front so a test
can name them before the lab is up.

Address plan (all of it exists only inside the lab's namespaces):
  internet core   198.51.100.0/24 (routers' public WAN addresses, inet = .1)  fd00:ffff::/64
  cloud segment   203.0.113.0/24  (cloud = .10, .11, ...; inet = .1)          fd00:c::/64
  router number i LAN 10.i.0.0/24 (home) or 100.64.i.0/24 (carrier, /32 per subscriber)
                  fd00:i::/64 (routed, no NAT; stateful firewall by default)
198.51.100.0/24 and 203.0.113.0/24 are documentation ranges (RFC 5737), fd00::/8 is
unique-local (RFC 4193): none of them is routable on the real Internet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

INTERNET = "inet"   # core router node name; every router's upstream by default
CLOUD = "cloud"     # cloud host node name

CORE4 = ipaddress.ip_network("198.51.100.0/24")
CORE6 = ipaddress.ip_network("fd00:ffff::/64")
CLOUD4 = ipaddress.ip_network("203.0.113.0/24")
CLOUD6 = ipaddress.ip_network("fd00:c::/64")
CGN4 = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space

# NAT behaviours (RFC 4787 terms). "mapping/filtering":
NAT_KINDS = {
    # endpoint-independent mapping + endpoint-independent filtering ("full cone")
    "full-cone": ("endpoint-independent", "endpoint-independent"),
    # endpoint-independent mapping + address-dependent filtering ("restricted cone")
    "restricted-cone": ("endpoint-independent", "address-dependent"),
    # endpoint-independent mapping + address-and-port-dependent filtering ("port-restricted")
    "port-restricted": ("endpoint-independent", "address-and-port-dependent"),
    # address-and-port-dependent mapping and filtering ("symmetric"): SNAT --random-fully
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent"),
    # plain Linux MASQUERADE, as on a stock Linux/OpenWrt home router; measured behaviour is
    # port-restricted (EIM with port preservation + conntrack's 5-tuple filtering)
    "masquerade": ("endpoint-independent", "address-and-port-dependent"),
}
DAEMON_NAT_KINDS = ("full-cone", "restricted-cone", "port-restricted")

IFNAMSIZ = 15


@dataclass(frozen=True)
class Impair:
    """One direction of a link: user-space delay/jitter/loss/rate (impair/ NFQUEUE tool)."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0   # uniform in [-jitter, +jitter] around delay
    loss: float = 0.0        # probability in [0, 1)
    rate_kbit: int = 0       # 0: unlimited
    limit: int = 1000        # packets waiting for the rate limiter before tail drop
    reorder: bool = False    # with jitter: let packets overtake (netem-like) instead of FIFO
    seed: int = 1

    def args(self):
        a = [f"--delay-ms={self.delay_ms}", f"--jitter-ms={self.jitter_ms}",
             f"--loss={self.loss}", f"--rate-kbit={self.rate_kbit}", f"--limit={self.limit}",
             f"--seed={self.seed}"]
        if self.reorder:
            a.append("--reorder")
        return a


@dataclass
class Router:
    """A namespace routing between its LAN (a bridge) and its upstream (WAN interface "wan").

    nat: one of NAT_KINDS, or None for a plain router (its LAN is routed, no translation).
    upstream: INTERNET or the name of another router (its WAN then sits on that router's LAN:
        double NAT, e.g. a home router behind a carrier).
    udp_allow: IPv4 UDP policy of a carrier: when not None, every forwarded UDP packet whose
        far end is not in the list is dropped (entries are CIDRs or "cloud"). None: no policy.
    udp_allow6: the same for IPv6 (None: IPv6 UDP unrestricted).
    firewall6: stateful IPv6 firewall (established/related in, anything out, unsolicited
        inbound dropped) — what home routers and carriers do instead of NAT.
    isolate: subscribers cannot reach each other on the link layer (carrier access network);
        they get /32 (/128) addresses and everything goes through the router.
    firewall6_subscribers: the stateful IPv6 firewall also stands between subscribers of this
        router (each host's own state: simultaneous open needed, as between two homes).
        None (default): on when both isolate and firewall6 are set (carriers), off otherwise
        (a home LAN is one trust domain).
    udp_timeout: conntrack UDP timeouts (seconds) for mapping-lifetime tests (default 30/120).
    wan_impair: (egress, ingress) impairment of the WAN interface, both directions.
    """
    name: str
    nat: str | None = "port-restricted"
    upstream: str = INTERNET
    udp_allow: list[str] | None = None
    udp_allow6: list[str] | None = None
    firewall6: bool = True
    isolate: bool = False
    firewall6_subscribers: bool | None = None
    carrier: bool = False
    udp_timeout: int | None = None
    wan_impair: tuple[Impair | None, Impair | None] | None = None


def Carrier(name, nat="symmetric", ipv6_p2p=False, **kw):
    """A mobile carrier: CGN address space, isolated subscribers, UDP only to the cloud.

    ipv6_p2p=True is the "carrier blocks IPv4 P2P but IPv6 works" variant: IPv4 UDP is
    restricted to the cloud, IPv6 is open behind the stateful firewall.
    """
    return Router(name, nat=nat, udp_allow=["cloud"], udp_allow6=None if ipv6_p2p else ["cloud"],
                  isolate=True, carrier=True, **kw)


@dataclass
class Host:
    """An endpoint. uplinks: interface name -> router, in order of preference (the first one
    carries the default route with the lowest metric; each address also has a source route)."""
    name: str
    uplinks: dict[str, str]
    ipv6: bool = True


@dataclass
class Topology:
    name: str
    routers: list[Router] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    cloud_addresses: int = 2   # 203.0.113.10, .11, ... (the NAT probe needs two)
    description: str = ""

    def router(self, name):
        for r in self.routers:
            if r.name == name:
                return r
        raise KeyError(f"no router {name!r} in topology {self.name!r}")

    def host(self, name):
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no host {name!r} in topology {self.name!r}")


# ---- the computed plan ------------------------------------------------------------------

@dataclass
class Attachment:
    """One end of a link on a LAN: node's interface, its addresses and gateway."""
    node: str
    iface: str
    router: str          # the LAN's router (INTERNET for the core)
    port: str            # the bridge port's name inside the router's namespace
    addr4: ipaddress.IPv4Interface | None
    addr6: ipaddress.IPv6Interface | None
    gw4: ipaddress.IPv4Address | None
    gw6: ipaddress.IPv6Address | None
    isolated: bool = False


@dataclass
class Plan:
    topology: Topology
    nodes: list[str]                              # every namespace, creation order
    kinds: dict[str, str]                         # node -> "router" | "host" | "core" | "cloud"
    lan4: dict[str, ipaddress.IPv4Interface]      # router -> its LAN address (with prefix)
    lan6: dict[str, ipaddress.IPv6Interface]
    attachments: list[Attachment]                 # every link
    routes4: dict[str, list[tuple[str, str]]]     # node -> [(prefix, via)] extra routes
    routes6: dict[str, list[tuple[str, str]]]
    cloud4: list[ipaddress.IPv4Address]
    cloud6: list[ipaddress.IPv6Address]

    def attachment(self, node, iface=None):
        for a in self.attachments:
            if a.node == node and (iface is None or a.iface == iface):
                return a
        raise KeyError(f"{node!r} has no interface {iface!r}" if iface else f"no node {node!r}")

    def uplinks(self, node):
        return [a for a in self.attachments if a.node == node]


def _check_name(name, what):
    if not name or len(name) > IFNAMSIZ or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"{what} {name!r}: use 1-{IFNAMSIZ} letters, digits, '-' or '_'")


def plan(topology: Topology) -> Plan:
    """Checks the description and assigns every address; raises ValueError naming the problem."""
    routers = {r.name: r for r in topology.routers}
    names = [INTERNET, CLOUD] + list(routers) + [h.name for h in topology.hosts]
    if len(set(names)) != len(names):
        raise ValueError(f"topology {topology.name!r}: node names must be unique "
                         f"({INTERNET!r} and {CLOUD!r} are taken)")
    for n in names:
        _check_name(n, "node name")
    for r in topology.routers:
        if r.nat is not None and r.nat not in NAT_KINDS:
            raise ValueError(f"router {r.name!r}: nat {r.nat!r} is not one of "
                             f"{', '.join(NAT_KINDS)} or None")
        if r.upstream != INTERNET and r.upstream not in routers:
            raise ValueError(f"router {r.name!r}: upstream {r.upstream!r} is not a router")
    # Routers are created parents first; a cycle in upstreams is an error.
    order, seen = [], set()

    def visit(name, stack=()):
        if name in seen:
            return
        if name in stack:
            raise ValueError(f"routers {' -> '.join(stack + (name,))} form a cycle")
        up = routers[name].upstream
        if up != INTERNET:
            visit(up, stack + (name,))
        seen.add(name)
        order.append(name)

    for name in routers:
        visit(name)

    lan4, lan6 = {}, {}
    lan4[INTERNET] = ipaddress.ip_interface("198.51.100.1/24")
    lan6[INTERNET] = ipaddress.ip_interface("fd00:ffff::1/64")
    for i, r in enumerate(topology.routers, start=1):
        if i > 250:
            raise ValueError("at most 250 routers")
        base = f"100.64.{i}.1/24" if r.carrier else f"10.{i}.0.1/24"
        lan4[r.name] = ipaddress.ip_interface(base)
        lan6[r.name] = ipaddress.ip_interface(f"fd00:{i:x}::1/64")
    next_host = {name: 2 for name in lan4}
    ports = {name: set() for name in lan4}
    attachments = []

    def attach(node, iface, router_name, isolated):
        net4, net6 = lan4[router_name].network, lan6[router_name].network
        n = next_host[router_name]
        next_host[router_name] += 1
        if n > 250:
            raise ValueError(f"too many attachments on {router_name!r}")
        a4 = net4.network_address + n
        a6 = net6.network_address + n
        port = f"{node}-{iface}" if len(node) + len(iface) + 1 <= IFNAMSIZ else f"port{n}"
        if router_name == INTERNET:
            port = node if len(node) <= IFNAMSIZ else f"port{n}"
        ports[router_name].add(port)
        attachments.append(Attachment(
            node=node, iface=iface, router=router_name, port=port,
            addr4=ipaddress.ip_interface(f"{a4}/{32 if isolated else net4.prefixlen}"),
            addr6=ipaddress.ip_interface(f"{a6}/{128 if isolated else net6.prefixlen}"),
            gw4=lan4[router_name].ip, gw6=lan6[router_name].ip, isolated=isolated))

    # The cloud: its own subnet behind the core router, on the core's bridge.
    cloud4 = [CLOUD4.network_address + 10 + k for k in range(topology.cloud_addresses)]
    cloud6 = [CLOUD6.network_address + 0x10 + k for k in range(topology.cloud_addresses)]
    attachments.append(Attachment(
        node=CLOUD, iface="eth0", router=INTERNET, port="cloud",
        addr4=ipaddress.ip_interface(f"{cloud4[0]}/24"),
        addr6=ipaddress.ip_interface(f"{cloud6[0]}/64"),
        gw4=CLOUD4.network_address + 1, gw6=CLOUD6.network_address + 1))
    ports[INTERNET].add("cloud")
    for name in order:
        r = routers[name]
        up = routers.get(r.upstream)
        attach(name, "wan", r.upstream, isolated=bool(up and up.isolate))
    for h in topology.hosts:
        if not h.uplinks:
            raise ValueError(f"host {h.name!r} has no uplink")
        for iface, router_name in h.uplinks.items():
            _check_name(iface, f"host {h.name!r} interface")
            if router_name not in routers:
                raise ValueError(f"host {h.name!r}: uplink {iface!r} names unknown router "
                                 f"{router_name!r}")
            attach(h.name, iface, router_name, isolated=routers[router_name].isolate)

    # Routes toward LANs that are not translated: IPv6 always, IPv4 when nat is None. Every
    # router above the LAN needs a route to it via the next hop down.
    routes4 = {n: [] for n in names}
    routes6 = {n: [] for n in names}
    for name in order:
        r = routers[name]
        child, parent = name, r.upstream
        while True:
            wan = next(a for a in attachments if a.node == child and a.iface == "wan")
            routes6[parent].append((str(lan6[name].network), str(wan.addr6.ip)))
            if r.nat is None:
                routes4[parent].append((str(lan4[name].network), str(wan.addr4.ip)))
            if parent == INTERNET:
                break
            child, parent = parent, routers[parent].upstream

    kinds = {INTERNET: "core", CLOUD: "cloud"}
    kinds.update({n: "router" for n in routers})
    kinds.update({h.name: "host" for h in topology.hosts})
    nodes = [INTERNET, CLOUD] + order + [h.name for h in topology.hosts]
    return Plan(topology=topology, nodes=nodes,
                kinds=kinds, lan4=lan4, lan6=lan6, attachments=attachments, routes4=routes4,
                routes6=routes6, cloud4=cloud4, cloud6=cloud6)


def expand_allow(entries, plan_: Plan, family):
    """CIDR strings for an allow-list; "cloud" is the cloud segment of that family."""
    out = []
    for e in entries or []:
        if e == "cloud":
            out.append(str(CLOUD4 if family == 4 else CLOUD6))
        else:
            net = ipaddress.ip_network(e, strict=False)
            if net.version == family:
                out.append(str(net))
    return out
