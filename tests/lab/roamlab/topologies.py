"""Named topologies: the scenarios of design/targets.md plus one per NAT kind.

`get(name)` returns a fresh Topology; `names()` lists them with a one-line description.
Every topology has the cloud (203.0.113.10 and .11, fd00:c::10 and ::11) behind the core.
"""

from .topology import NAT_KINDS, Carrier, Host, Router, Topology


def lan():
    return Topology("lan", description="scenario 1: alice and bob on the same home LAN",
                    routers=[Router("home", nat="port-restricted")],
                    hosts=[Host("alice", {"eth0": "home"}), Host("bob", {"eth0": "home"})])


def two_nats():
    return Topology("two-nats",
                    description="scenario 2: alice and bob behind their own endpoint-independent "
                                "(port-restricted) NATs",
                    routers=[Router("home1", nat="port-restricted"),
                             Router("home2", nat="port-restricted")],
                    hosts=[Host("alice", {"eth0": "home1"}), Host("bob", {"eth0": "home2"})])


def symmetric():
    return Topology("symmetric",
                    description="scenario 3: alice behind a symmetric NAT, bob behind a "
                                "port-restricted one",
                    routers=[Router("sym", nat="symmetric"), Router("home", nat="port-restricted")],
                    hosts=[Host("alice", {"eth0": "sym"}), Host("bob", {"eth0": "home"})])


def carrier():
    return Topology("carrier",
                    description="scenario 4: alice and bob on a carrier that drops all UDP "
                                "except to the cloud (IPv4 and IPv6), carol at home",
                    routers=[Carrier("mobile", ipv6_p2p=False),
                             Router("home", nat="port-restricted")],
                    hosts=[Host("alice", {"cell": "mobile"}), Host("bob", {"cell": "mobile"}),
                           Host("carol", {"eth0": "home"})])


def carrier_v6():
    return Topology("carrier-v6",
                    description="scenario 5: alice and bob on carriers that block IPv4 P2P UDP "
                                "while IPv6 works behind stateful firewalls; carol shares "
                                "alice's carrier",
                    routers=[Carrier("mobile1", ipv6_p2p=True), Carrier("mobile2", ipv6_p2p=True)],
                    hosts=[Host("alice", {"cell": "mobile1"}), Host("bob", {"cell": "mobile2"}),
                           Host("carol", {"cell": "mobile1"})])


def multihomed():
    return Topology("multihomed",
                    description="scenarios 6-8: alice on Wi-Fi (home NAT) and cellular (carrier "
                                "NAT, UDP allowed), bob behind his home NAT",
                    routers=[Router("home", nat="port-restricted"),
                             Router("mobile", nat="symmetric", isolate=True, carrier=True),
                             Router("home2", nat="port-restricted")],
                    hosts=[Host("alice", {"wifi": "home", "cell": "mobile"}),
                           Host("bob", {"eth0": "home2"})])


def double_nat():
    return Topology("double-nat",
                    description="alice behind a home NAT that is itself behind a carrier NAT",
                    routers=[Router("mobile", nat="symmetric", isolate=True, carrier=True),
                             Router("home", nat="port-restricted", upstream="mobile")],
                    hosts=[Host("alice", {"eth0": "home"})])


def single_nat(kind):
    def make():
        return Topology(f"nat-{kind}", description=f"alice behind one {kind} NAT",
                        routers=[Router("nat", nat=kind)], hosts=[Host("alice", {"eth0": "nat"})])
    return make


_REGISTRY = {
    "lan": lan, "two-nats": two_nats, "symmetric": symmetric, "carrier": carrier,
    "carrier-v6": carrier_v6, "multihomed": multihomed, "double-nat": double_nat,
}
for _kind in NAT_KINDS:
    _REGISTRY[f"nat-{_kind}"] = single_nat(_kind)


def get(name):
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(f"no topology {name!r}; known: {', '.join(_REGISTRY)}") from None


def names():
    return {name: make().description for name, make in _REGISTRY.items()}
