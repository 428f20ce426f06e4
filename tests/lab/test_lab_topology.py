"""Topologies come up as described, and nothing in them touches the machine's network."""

import json
import subprocess

from roamlab import Host, Router, Topology, plan, topologies
from roamlab.measure import p2p_pair, ping, reflector, request


def test_plan_assigns_the_documented_addresses():
    p = plan(topologies.get("multihomed"))
    assert p.nodes == ["inet", "cloud", "home", "mobile", "home2", "alice", "bob"]
    wifi, cell = p.attachment("alice", "wifi"), p.attachment("alice", "cell")
    assert (str(wifi.addr4), str(wifi.gw4), str(wifi.addr6)) == \
        ("10.1.0.2/24", "10.1.0.1", "fd00:1::2/64")
    assert (str(cell.addr4), str(cell.gw4), cell.isolated) == ("100.64.2.2/32", "100.64.2.1", True)
    assert str(p.attachment("home", "wan").addr4) == "198.51.100.2/24"
    assert [str(a) for a in p.cloud4] == ["203.0.113.10", "203.0.113.11"]
    # IPv6 LANs are routed (no NAT): the core knows every LAN /64.
    assert ("fd00:1::/64", "fd00:ffff::2") in p.routes6["inet"]
    dn = plan(topologies.get("double-nat"))
    assert ("fd00:2::/64", "fd00:1::2") in dn.routes6["mobile"]     # home's LAN via home's WAN
    assert ("fd00:2::/64", "fd00:ffff::2") in dn.routes6["inet"]    # ... and via mobile above


def _root_links():
    r = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    return sorted((link["ifname"], link.get("link_type")) for link in json.loads(r.stdout))


def test_lab_is_isolated_from_the_machine(make_lab, lab_allowed):
    before = _root_links()
    lab = make_lab(topologies.get("multihomed"), reflector=False)
    assert _root_links() == before            # not one interface in the machine's namespace
    veth_ends = 0
    for node in lab.nodes:
        links = json.loads(lab.run(node, ["ip", "-d", "-j", "link", "show"]).stdout)
        for link in links:
            kind = link.get("linkinfo", {}).get("info_kind")
            assert link["ifname"] == "lo" or kind in ("veth", "bridge"), (node, link)
            veth_ends += kind == "veth"
    # Every veth pair was created between two lab namespaces: both ends are inside the lab.
    assert veth_ends == 2 * len(lab.plan.attachments)
    # The core has no default route: no address outside the lab is routable from anywhere
    # (a route lookup only; nothing is sent).
    for family, outside in ((4, "192.0.2.1"), (6, "2001:db8::1")):
        r = lab.run("inet", ["ip", f"-{family}", "route", "get", outside], check=False)
        assert r.returncode != 0 and "unreachable" in r.stderr.lower(), r
        routes = lab.run("inet", ["ip", f"-{family}", "route", "show", "default"]).stdout
        assert routes.strip() == ""


def test_lan_hosts_talk_directly_over_the_bridge(make_lab):
    lab = make_lab(topologies.get("lan"), reflector=False)
    wan0 = lab.counters("home", "wan")
    port0 = lab.counters("home", "alice-eth0")
    a, b = p2p_pair(lab, "alice", f"{lab.addr('alice')}:48000", "bob",
                    f"{lab.addr('bob')}:48000", count=20)
    assert a["received"] == 20 and b["received"] == 20, (a, b)
    assert a["from"] == {f"{lab.addr('bob')}:48000": a["received"]}  # host addresses as-is
    wan1 = lab.counters("home", "wan")
    port1 = lab.counters("home", "alice-eth0")
    assert wan1["tx_packets"] - wan0["tx_packets"] < 3       # nothing went out to the WAN
    assert port1["rx_packets"] - port0["rx_packets"] >= 20   # alice's bridge port carried it


def test_multihomed_host_uses_the_uplink_of_its_source_address(make_lab):
    lab = make_lab(topologies.get("multihomed"))
    for iface, router in (("wifi", "home"), ("cell", "mobile")):
        before = {i: lab.counters("alice", i)["tx_packets"] for i in ("wifi", "cell")}
        r = ping(lab, "alice", reflector(lab), bind=lab.addr("alice", iface), count=20,
                 interval_ms=5)
        after = {i: lab.counters("alice", i)["tx_packets"] for i in ("wifi", "cell")}
        other = "cell" if iface == "wifi" else "wifi"
        assert r["received"] == 20
        assert after[iface] - before[iface] >= 20 and after[other] - before[other] < 3
        mapped = request(lab, "alice", reflector(lab), bind=lab.addr("alice", iface))["mapped"]
        assert mapped.startswith(lab.external(router) + ":")


def test_double_nat_maps_to_the_carrier_address(make_lab):
    lab = make_lab(topologies.get("double-nat"))
    r = request(lab, "alice", reflector(lab))
    assert r["mapped"].startswith(lab.external("mobile") + ":"), r
    inner = lab.nat_status("home")["mappings"]
    assert [m["external"].rpartition(":")[0] for m in inner] == [lab.external("home")]
    assert lab.external("home").startswith("100.64.")


def test_capture_on_a_lab_interface(make_lab):
    lab = make_lab(topologies.get("nat-port-restricted"))
    cap = lab.capture("nat", "wan", bpf="udp port 3490")
    r = ping(lab, "alice", reflector(lab), count=5, interval_ms=20)
    cap.stop()
    lines = subprocess.run(["tcpdump", "-n", "-r", cap.pcap], capture_output=True,
                           text=True).stdout.splitlines()
    assert r["received"] == 5
    # Outbound after NAT (external address) and the echoes, nothing else (capture filter).
    assert len([x for x in lines if f"{lab.external('nat')}." in x]) == 10, lines


def test_router_without_nat_routes_the_lan(make_lab):
    topo = Topology("routed", routers=[Router("r", nat=None, firewall6=False)],
                    hosts=[Host("alice", {"eth0": "r"})])
    lab = make_lab(topo)
    r = request(lab, "alice", reflector(lab))
    assert r["mapped"].rpartition(":")[0] == lab.addr("alice"), r   # no translation
    r6 = request(lab, "alice", reflector(lab, family=6))
    assert r6["mapped"].startswith(f"[{lab.addr('alice', family=6)}]:"), r6
