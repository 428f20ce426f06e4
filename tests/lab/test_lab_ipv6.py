"""IPv6 between two homes: no NAT, stateful firewalls. Direct UDP works only once both sides
have sent (simultaneous open), never unsolicited."""

from roamlab import topologies
from roamlab.measure import p2p_pair


def test_ipv6_direct_needs_simultaneous_open(make_lab, report):
    lab = make_lab(topologies.get("two-nats"), reflector=False)
    a = f"[{lab.addr('alice', family=6)}]:47000"
    b = f"[{lab.addr('bob', family=6)}]:47000"
    # Unsolicited: alice sends, bob only listens. Bob's firewall drops everything.
    alone_a, alone_b = p2p_pair(lab, "alice", a, "bob", b, count=20, b_sends=False)
    assert alone_a["sent"] == 20 and not alone_a["send_errors"]
    assert alone_b["received"] == 0, alone_b
    # Simultaneous open: bob starts sending 200 ms after alice. Alice's packets die at bob's
    # firewall until bob's own first packet opened it (and bob's first packet passes alice's
    # firewall because alice already sent to him): from then on both directions flow.
    sim_a, sim_b = p2p_pair(lab, "alice", a, "bob", b, count=30, interval_ms=20, b_delay_s=0.2)
    report(f"IPv6 two homes: unsolicited received {alone_b['received']}/20; simultaneous open "
           f"alice got {sim_a['received']}/{sim_b['sent']}, bob got {sim_b['received']}/"
           f"{sim_a['sent']} (bob first heard alice after {sim_b['first_received_s']} s)")
    assert sim_a["received"] >= 25, sim_a
    assert 10 <= sim_b["received"] < 30, sim_b  # alice's early packets were dropped
    assert sim_b["from"] == {a: sim_b["received"]}
    # And nothing is translated: each side sees the other's own address.
    assert sim_a["from"] == {b: sim_a["received"]}


def test_ipv4_direct_between_port_restricted_nats_needs_hole_punching(make_lab, report):
    """The IPv4 counterpart (scenario 2): each side sends to the other's external mapping
    (port preservation makes it external:port, known in advance here)."""
    lab = make_lab(topologies.get("two-nats"), reflector=False)
    port = 47100
    a_bind, b_bind = f"{lab.addr('alice')}:{port}", f"{lab.addr('bob')}:{port}"
    a_ext, b_ext = f"{lab.external('home1')}:{port}", f"{lab.external('home2')}:{port}"
    alone_a, alone_b = p2p_pair(lab, "alice", a_bind, "bob", b_bind, count=10, b_sends=False,
                                a_peer=b_ext)
    assert alone_b["received"] == 0, alone_b
    ra, rb = p2p_pair(lab, "alice", a_bind, "bob", b_bind, count=30, a_peer=b_ext, b_peer=a_ext)
    report(f"IPv4 two port-restricted NATs: unsolicited {alone_b['received']}/10; hole punching "
           f"alice got {ra['received']}, bob got {rb['received']} of 30")
    assert ra["received"] >= 25 and rb["received"] >= 25, (ra, rb)
    assert ra["from"] == {b_ext: ra["received"]}
    assert rb["from"] == {a_ext: rb["received"]}
