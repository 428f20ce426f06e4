"""Carrier NAT: UDP between subscribers (and to anything but the cloud) dies; the cloud works.
And the "carrier blocks IPv4 P2P but IPv6 works" variant."""

from roamlab import topologies
from roamlab.measure import p2p_pair, reflector, request


def _ep(lab, host, iface=None, family=4, port=45000):
    a = lab.addr(host, iface, family)
    return f"[{a}]:{port}" if family == 6 else f"{a}:{port}"


def test_carrier_drops_udp_between_subscribers_but_passes_the_cloud(make_lab, report):
    lab = make_lab(topologies.get("carrier"))
    # The cloud is allow-listed: requests work and show the carrier's external address.
    for host in ("alice", "bob"):
        r = request(lab, host, reflector(lab))
        assert r["ok"], r
        assert r["mapped"].rpartition(":")[0] == lab.external("mobile"), r
    drops_before = lab.udp_policy_drops("mobile")
    # Direct UDP between two subscribers, both sending (what ICE connectivity checks do).
    a, b = p2p_pair(lab, "alice", _ep(lab, "alice"), "bob", _ep(lab, "bob"), count=25)
    # Subscriber and a home user hole-punching toward each other's public mappings (learnt
    # from the reflector, as STUN would): the carrier drops alice's packets to carol, and
    # carol's never match a mapping on the carrier (nor its policy).
    carol_map = request(lab, "carol", reflector(lab), bind=_ep(lab, "carol", port=46000))
    alice_map = request(lab, "alice", reflector(lab), bind=_ep(lab, "alice", port=46000))
    assert carol_map["ok"] and alice_map["ok"], (carol_map, alice_map)
    c, d = p2p_pair(lab, "carol", _ep(lab, "carol", port=46000), "alice",
                    _ep(lab, "alice", port=46000), count=25, a_peer=alice_map["mapped"],
                    b_peer=carol_map["mapped"])
    drops = lab.udp_policy_drops("mobile") - drops_before
    report(f"carrier: alice<->bob received {a['received']}/{b['sent']} and "
           f"{b['received']}/{a['sent']}; carol<->alice {c['received']}, {d['received']}; "
           f"policy drops {drops}")
    assert a["sent"] == b["sent"] == 25
    assert a["received"] == 0 and b["received"] == 0
    assert c["received"] == 0 and d["received"] == 0
    assert not a["send_errors"] and not b["send_errors"]  # silent: no local error
    assert drops >= 75  # alice->bob, bob->alice, alice->carol
    # IPv6 is blocked as well in this carrier (only the cloud is allowed).
    e, f = p2p_pair(lab, "alice", _ep(lab, "alice", family=6), "carol",
                    _ep(lab, "carol", family=6), count=10)
    assert e["received"] == 0 and f["received"] == 0
    r6 = request(lab, "alice", reflector(lab, family=6))
    assert r6["ok"], r6


def test_carrier_v6_blocks_ipv4_p2p_while_ipv6_works(make_lab, report):
    lab = make_lab(topologies.get("carrier-v6"))
    # Hole punching toward each other's carrier mapping (symmetric CGNs, but the policy drops
    # the packets before that matters).
    a4, b4 = p2p_pair(lab, "alice", _ep(lab, "alice"), "bob", _ep(lab, "bob"), count=20,
                      a_peer=f"{lab.external('mobile2')}:45000",
                      b_peer=f"{lab.external('mobile1')}:45000")
    assert a4["received"] == 0 and b4["received"] == 0
    assert lab.udp_policy_drops("mobile1") >= 20 and lab.udp_policy_drops("mobile2") >= 20
    a6, b6 = p2p_pair(lab, "alice", _ep(lab, "alice", family=6), "bob",
                      _ep(lab, "bob", family=6), count=20)
    report(f"carrier-v6: IPv4 hole punching received {a4['received']} and {b4['received']} of "
           f"20; IPv6 simultaneous open received {a6['received']} and {b6['received']} of 20")
    assert a6["received"] >= 15 and b6["received"] >= 15, (a6, b6)
    assert request(lab, "alice", reflector(lab))["ok"]


def test_carrier_v6_firewall_stands_between_subscribers_of_one_carrier(make_lab, report):
    """alice and carol on the same carrier: their IPv6 packets hairpin through it, and each
    one's firewall state must be opened by her own packets, as between two homes."""
    lab = make_lab(topologies.get("carrier-v6"), reflector=False)
    a = _ep(lab, "alice", family=6, port=47000)
    c = _ep(lab, "carol", family=6, port=47000)
    alone_a, alone_c = p2p_pair(lab, "alice", a, "carol", c, count=20, b_sends=False)
    assert alone_a["sent"] == 20 and not alone_a["send_errors"]
    assert alone_c["received"] == 0, alone_c
    dropped = lab.subscriber_firewall_drops("carol")
    assert dropped >= 20, dropped
    # Simultaneous open, carol 200 ms after alice: alice's early packets die at carol's
    # firewall, carol's first packet passes alice's (alice already sent to her) and opens both.
    sim_a, sim_c = p2p_pair(lab, "alice", a, "carol", c, count=30, interval_ms=20,
                            b_delay_s=0.2)
    report(f"carrier-v6, alice and carol on one carrier: unsolicited IPv6 received "
           f"{alone_c['received']}/20 ({dropped} dropped by carol's firewall); simultaneous "
           f"open alice got {sim_a['received']}/{sim_c['sent']}, carol got "
           f"{sim_c['received']}/{sim_a['sent']}")
    assert sim_a["received"] >= 25, sim_a
    assert 10 <= sim_c["received"] < 30, sim_c
    assert sim_a["from"] == {c: sim_a["received"]}   # no translation: own addresses
    assert sim_c["from"] == {a: sim_c["received"]}
    # IPv4 between them stays blocked by the carrier's UDP policy.
    a4, c4 = p2p_pair(lab, "alice", _ep(lab, "alice"), "carol", _ep(lab, "carol"), count=10)
    assert a4["received"] == 0 and c4["received"] == 0
