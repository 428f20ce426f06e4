"""Fault injection takes effect when asked, measured with the probe: link down/up, silent
blackhole, NAT rebinding (same and new ports), mapping expiry, process kill/restart."""

import time

import pytest

from roamlab import Host, LabError, Router, Topology, topologies
from roamlab.measure import p2p_pair, ping, ping_background, reflector, request


def _delta(after, before, key="tx_packets"):
    return after[key] - before[key]


def _operstate(lab, node, iface):
    return lab.run(node, ["cat", f"/sys/class/net/{iface}/operstate"]).stdout.strip()


def test_link_down_moves_traffic_to_the_other_uplink_and_back(make_lab, report):
    lab = make_lab(topologies.get("multihomed"))
    home, mobile = lab.external("home"), lab.external("mobile")
    wifi_addr = lab.addr("alice", "wifi")

    def through(count=30):
        w0, c0 = lab.counters("alice", "wifi"), lab.counters("alice", "cell")
        r = ping(lab, "alice", reflector(lab), count=count, interval_ms=5, wait_ms=300)
        w1, c1 = lab.counters("alice", "wifi"), lab.counters("alice", "cell")
        return r, _delta(w1, w0), _delta(c1, c0)

    # The first contact resolves the gateway's address (ARP): a request, which retries, makes
    # it, so that the 450 ms ping below measures the path and not a lost first ARP request.
    assert request(lab, "alice", reflector(lab))["mapped"].startswith(home + ":")
    r, wifi_tx, cell_tx = through()
    if r["received"] < 30:
        # Before any fault. Once (2026-11-22, 1 run in about 20) this baseline lost all 30
        # echoes with one packet counted on Wi-Fi, right after the request above had passed;
        # the cause was not found. It gets one more try, and what alice's neighbour table held
        # is reported for the next time. A fault the test injects below is never retried.
        neighbours = lab.run("alice", ["ip", "neigh", "show"]).stdout.strip()
        report(f"baseline before any fault lost {30 - r['received']}/30 echoes (wifi tx {wifi_tx},"
               f" cell tx {cell_tx}); alice's neighbours: {neighbours!r}; trying again")
        r, wifi_tx, cell_tx = through()
    assert r["received"] == 30 and wifi_tx >= 30 and cell_tx < 5, (r, wifi_tx, cell_tx)

    # Continuous traffic across the whole sequence (default route, unbound socket).
    thread, flow = ping_background(lab, "alice", reflector(lab), count=200, interval_ms=10,
                                   timeline=True, wait_ms=300)
    time.sleep(0.5)
    lab.link_down("alice", "wifi")
    down_at = time.monotonic()
    assert _operstate(lab, "alice", "wifi") == "down"
    bound = request(lab, "alice", reflector(lab), bind=wifi_addr)
    # A socket bound to the vanished address gets an error (EHOSTUNREACH), it does not leak
    # out through the other uplink with a foreign source address.
    assert not bound["ok"] and bound.get("send_error"), bound
    r, wifi_tx, cell_tx_down = through()
    assert r["received"] == 30 and wifi_tx == 0 and cell_tx_down >= 30, (r, wifi_tx, cell_tx_down)
    assert request(lab, "alice", reflector(lab))["mapped"].startswith(mobile + ":")

    lab.link_up("alice", "wifi")
    up_at = time.monotonic()
    r, wifi_tx, cell_tx = through()
    assert r["received"] == 30 and wifi_tx >= 30 and cell_tx < 5, (r, wifi_tx, cell_tx)
    assert request(lab, "alice", reflector(lab), bind=wifi_addr)["mapped"].startswith(home + ":")
    thread.join(30)
    report(f"link down/up (multihomed): background flow {flow['received']}/{flow['sent']} "
           f"echoes, wifi down for {up_at - down_at:.2f} s; during a 30-ping check while down cell "
           f"sent {cell_tx_down} packets (with the background flow), wifi 0; after up wifi "
           f"{wifi_tx}, cell {cell_tx}")
    assert flow["sent"] == 200 and flow["loss"] < 0.1, flow


def test_blackhole_is_silent_and_clears(make_lab, report):
    lab = make_lab(topologies.get("multihomed"))
    wifi, cell = lab.addr("alice", "wifi"), lab.addr("alice", "cell")
    assert ping(lab, "alice", reflector(lab), bind=wifi, count=20, interval_ms=5)["received"] == 20
    with lab.blackhole("alice", "wifi"):
        w0 = lab.counters("alice", "wifi")
        r = ping(lab, "alice", reflector(lab), bind=wifi, count=20, interval_ms=5, wait_ms=300)
        w1 = lab.counters("alice", "wifi")
        assert r["received"] == 0 and r["send_errors"] == {}, r   # no local signal at all
        assert _operstate(lab, "alice", "wifi") == "up"
        assert _delta(w1, w0) >= 20                                  # packets did leave
        assert _delta(w1, w0, "rx_packets") < 3                      # nothing came back
        # The other uplink is untouched; wifi's IPv6 path is dead as well.
        other = ping(lab, "alice", reflector(lab), bind=cell, count=20, interval_ms=5)
        assert other["received"] == 20
        r6 = ping(lab, "alice", reflector(lab, family=6), bind=lab.addr("alice", "wifi", 6),
                  count=10, interval_ms=5, wait_ms=300)
        assert r6["received"] == 0, r6
    r = ping(lab, "alice", reflector(lab), bind=wifi, count=20, interval_ms=5)
    report(f"blackhole: 0/20 echoes while active, interface up, no send error; "
           f"{r['received']}/20 after clear")
    assert r["received"] == 20


def test_host_blackhole_cuts_lan_peers_too_silently(make_lab, report):
    """at="host": the fault sits in alice's own namespace, so even bob on the same LAN bridge
    loses her (a router blackhole does not touch LAN traffic); peer= narrows it to one
    address. No send error, interface up, ARP/ND keep working."""
    lab = make_lab(topologies.get("lan"))
    a4, b4 = f"{lab.addr('alice')}:48000", f"{lab.addr('bob')}:48000"
    a6 = f"[{lab.addr('alice', family=6)}]:48000"
    b6 = f"[{lab.addr('bob', family=6)}]:48000"

    def pair(a=a4, b=b4, count=20):
        ra, rb = p2p_pair(lab, "alice", a, "bob", b, count=count)
        assert not ra["send_errors"] and not rb["send_errors"], (ra, rb)
        return ra["received"], rb["received"]

    assert pair() == (20, 20)
    with lab.blackhole("alice"):                  # in the router: the LAN is not affected
        assert pair() == (20, 20)
    with lab.blackhole("alice", at="host") as fault:
        c0 = lab.counters("alice", "eth0")
        got4, got6 = pair(), pair(a6, b6)
        c1 = lab.counters("alice", "eth0")
        cloud = ping(lab, "alice", reflector(lab), count=20, interval_ms=5, wait_ms=300)
        assert got4 == (0, 0) and got6 == (0, 0), (got4, got6)
        assert cloud["received"] == 0 and cloud["send_errors"] == {}, cloud
        assert _operstate(lab, "alice", "eth0") == "up"
        assert _delta(c1, c0) < 5      # alice's packets die inside her own namespace
        dropped = fault.dropped()
        assert dropped >= 100, dropped  # 20 each way in both pairs, 20 pings
    with lab.blackhole("alice", at="host", peer=lab.addr("bob")) as only_bob:
        got = pair()
        cloud = ping(lab, "alice", reflector(lab), count=20, interval_ms=5, wait_ms=300)
        assert got == (0, 0) and cloud["received"] == 20, (got, cloud)
        assert pair(a6, b6, count=10) == (10, 10)   # bob's IPv6 address is another path
    after = pair()
    report(f"host blackhole (lan): alice<->bob 20/20 under a router blackhole; at the host "
           f"IPv4 {got4}, IPv6 {got6}, cloud {cloud['received']}/20 with the peer-only one, "
           f"{dropped} packets dropped silently; peer-only blackhole dropped "
           f"{only_bob.dropped()}; after clear {after}")
    assert after == (20, 20)


def test_rebinding_flushes_mappings_and_can_change_ports(make_lab, report):
    lab = make_lab(topologies.get("multihomed"))
    bind = f"{lab.addr('alice', 'wifi')}:41000"
    first = request(lab, "alice", reflector(lab), bind=bind)
    assert first["mapped"] == f"{lab.external('home')}:41000", first
    assert lab.nat_status("home")["mappings"]

    lab.rebind("home")
    assert lab.nat_status("home")["mappings"] == []
    assert not [line for line in lab.conntrack("home") if "41000" in line]
    same = request(lab, "alice", reflector(lab), bind=bind)
    assert same["mapped"] == first["mapped"], same   # port preservation picks it again

    # Mid-flow rebinding with a new port: the flow goes on, the server sees a new source.
    thread, flow = ping_background(lab, "alice", reflector(lab), bind=bind, count=100,
                                   interval_ms=10, wait_ms=300)
    time.sleep(0.4)
    lab.rebind("home", new_ports=True)
    moved = request(lab, "alice", reflector(lab), bind=bind)
    thread.join(30)
    ip, _, port = moved["mapped"].rpartition(":")
    report(f"rebinding: {first['mapped']} -> flush -> {same['mapped']} -> flush with new port "
           f"-> {moved['mapped']}; flow across it {flow['received']}/{flow['sent']}")
    assert ip == lab.external("home") and int(port) != 41000, moved
    assert flow["received"] >= 90, flow

    # A symmetric NAT picks a random port for the next flow anyway.
    cell_bind = f"{lab.addr('alice', 'cell')}:41001"
    s1 = request(lab, "alice", reflector(lab), bind=cell_bind)
    lab.rebind("mobile")
    s2 = request(lab, "alice", reflector(lab), bind=cell_bind)
    assert s1["ok"] and s2["ok"] and s1["mapped"] != s2["mapped"], (s1, s2)


def test_masquerade_refuses_port_changing_rebind(make_lab):
    lab = make_lab(topologies.get("nat-masquerade"), reflector=False)
    lab.rebind("nat")  # a flush is fine
    with pytest.raises(LabError, match="preserves source ports"):
        lab.rebind("nat", new_ports=True)


def test_full_cone_mapping_expires_with_conntrack_timeout(make_lab, report):
    topo = Topology("short-timeout", routers=[Router("nat", nat="full-cone", udp_timeout=2)],
                    hosts=[Host("alice", {"eth0": "nat"})])
    lab = make_lab(topo)
    port = 42000
    mapped = request(lab, "alice", reflector(lab), bind=f"{lab.addr('alice')}:{port}")["mapped"]
    stranger = f"{lab.cloud(4, 1)}:3499"

    def unsolicited():
        _, listener = p2p_pair(lab, "cloud", stranger, "alice", f"{lab.addr('alice')}:{port}",
                               count=5, interval_ms=20, b_sends=False, a_peer=mapped)
        return listener["received"]

    got_open = unsolicited()          # full cone: anyone may send to a live mapping
    deadline = time.monotonic() + 10
    while lab.nat_status("nat")["mappings"] and time.monotonic() < deadline:
        time.sleep(0.5)
    idle = 10 - (deadline - time.monotonic())
    got_expired = unsolicited()
    report(f"full-cone mapping {mapped}: stranger got in {got_open}/5 while live; mapping "
           f"expired after {idle:.1f} s idle (udp timeout 2 s); then {got_expired}/5")
    assert got_open == 5
    assert lab.nat_status("nat")["mappings"] == [] or got_expired == 0
    assert got_expired == 0


def test_process_kill_and_restart(make_lab):
    lab = make_lab(topologies.get("nat-port-restricted"), reflector=False)
    from roamlab.measure import start_reflector
    server = start_reflector(lab)
    assert request(lab, "alice", reflector(lab))["ok"]
    assert server.kill() == -9
    assert not request(lab, "alice", reflector(lab), timeout=0.2, tries=2)["ok"]
    server.start().wait_line("ready")
    assert request(lab, "alice", reflector(lab))["ok"]
