#!/usr/bin/python3
"""./run bench ice: `roam ice` between two hosts of the network lab, the real stack in the
cloud, every router's WAN delayed 20 ms each way (40 ms RTT per WAN, so 80 ms between two
NATed peers). Topology `multihomed`: alice on Wi-Fi (home NAT) and cellular (carrier NAT,
metered), bob behind his home NAT.

Each run starts a fresh pair of agents in the same lab and measures, from their event logs:
  - session -> first valid relayed pair, and -> first valid direct pair (target <= 200 ms);
  - keepalive packets per second sent on each backup (valid, not selected) pair, from two
    `stats` events >= 5 s apart (target <= 1 pkt/s/path);
  - interface down: `ip link set wifi down` -> the selected pair's `failed` event, and -> a
    cell pair selected;
  - Wi-Fi back up -> a Wi-Fi pair selected again;
  - silent blackhole of the active path (router drops it both ways, no local signal) -> the
    selection moves to another pair (both agents send a probe on the selected pair every
    --traffic-ms, 20 by default, so data liveness judges the path as under traffic).
Medians with p10/p90 and min/max over the runs. Root only (network namespaces).

    sudo ./run bench ice [--runs N] [--delay-ms D] [--traffic-ms MS] [--keep-logs DIR]
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
from benchlib import delayed_multihomed, lab_ready, log, percentile  # noqa: E402

from roamlab import Lab  # noqa: E402
from roamlab.agents import (AgentError, family, ice_supports, ice_unavailable,  # noqa: E402
                            is_valid_pair, split_endpoint, start_ice_stack, start_pair)

DESCRIPTION = ("roam ice in the lab (40 ms RTT WANs): relay/direct pair times, interface-down "
               "and blackhole detection, keepalive pkt/s per backup pair")

SETUP_TIMEOUT_S = 15
KEEPALIVE_WINDOW_S = 5.0
SETTLE_S = 2.0
BLACKHOLE_TIMEOUT_S = 20

# (key, label, unit, target text)
FIGURES = [
    ("relay_ms", "session -> relay pair valid", "ms", ""),
    ("direct_ms", "session -> direct pair valid", "ms", "<= 200 ms"),
    ("direct_selected_ms", "session -> direct pair selected", "ms", "<= 200 ms"),
    ("rtt_ms", "selected direct pair RTT", "ms", "(80 ms emulated)"),
    ("keepalive_pps", "keepalive sent per backup pair", "pkt/s", "<= 1 pkt/s/path"),
    ("keepalive_mean_pps", "  mean over a run's backup pairs", "pkt/s", "<= 1 pkt/s/path"),
    ("down_failed_ms", "wifi down -> active pair failed", "ms", "blackout <= 50 ms"),
    ("down_switch_ms", "wifi down -> cell pair selected", "ms", "blackout <= 50 ms"),
    ("up_back_ms", "wifi up -> wifi pair selected", "ms", ""),
    ("up_direct_ms", "wifi up -> direct wifi pair selected", "ms", ""),
    ("blackhole_failed_ms", "blackhole -> active pair failed", "ms", "blackout <= 300 ms"),
    ("blackhole_ms", "blackhole -> selection moved", "ms", "blackout <= 300 ms"),
    ("blackhole_settled_ms", "blackhole -> last switch (within 1 s)", "ms", ""),
    ("blackhole_rules_ms", "(blackhole rules installed in)", "ms", ""),
]




topology = delayed_multihomed




def _valid_backups(agent, stats, selected_ids):
    return {p["pair"]: p for p in stats["pairs"]
            if p.get("state") == "succeeded" and p["pair"] not in selected_ids}


def keepalive_rates(agent):
    """Packets/s sent on each pair valid and not selected throughout a >= 5 s window of two
    `stats` events, and the window's length."""
    first = agent.wait_event("stats", 5, since=agent.mark())
    second = agent.wait_event("stats", KEEPALIVE_WINDOW_S + 5,
                              pred=lambda e: e["ts"] >= first["ts"] + KEEPALIVE_WINDOW_S,
                              since=agent.mark())
    selected_ids = {e.get("pair") for e in agent.all("selected")
                    if first["ts"] - 1 <= e["ts"] <= second["ts"]}
    current = agent.selected()
    if current:
        selected_ids.add(current.get("pair"))
    a = _valid_backups(agent, first, selected_ids)
    b = _valid_backups(agent, second, selected_ids)
    span = second["ts"] - first["ts"]
    return [(b[pid]["sent"] - a[pid]["sent"]) / span for pid in a.keys() & b.keys()], span


def one_run(lab, stack, traffic_ms):
    r = {}
    notes = []
    common = {"stats_interval": 1}
    if traffic_ms:
        common["traffic_ms"] = traffic_ms
    try:
        alice, bob = start_pair(lab, stack, caller_opts=dict(common, metered=["cell"]),
                                callee_opts=common, timeout=SETUP_TIMEOUT_S)
    except AgentError as e:
        return {"error": str(e)}, [f"FAILED: {str(e).splitlines()[0]}"]
    try:
        sel = alice.wait(lambda e: e["event"] == "selected" and e.get("kind") == "direct"
                         and e.get("interface") == "wifi", SETUP_TIMEOUT_S,
                         "a direct wifi pair selected")
        r["direct_selected_ms"] = alice.since_session_ms(sel)
        relay = alice.wait(lambda e: is_valid_pair(e, kind="relay"), 5, "a valid relay pair")
        r["relay_ms"] = alice.since_session_ms(relay)
        r["direct_ms"] = alice.since_session_ms(
            alice.first("pair", pred=lambda e: is_valid_pair(e, kind="direct")))
        notes.append(f"selected {sel['local_type']}/{sel['remote_type']} "
                     f"IPv{family(sel['remote'])}")

        time.sleep(SETTLE_S)
        (rates_a, span_a), (rates_b, span_b) = keepalive_rates(alice), keepalive_rates(bob)
        rates = rates_a + rates_b
        if rates:
            r["keepalive_pps"] = rates     # every backup pair of both agents
            r["keepalive_mean_pps"] = sum(rates) / len(rates)
            notes.append(f"keepalive windows {span_a:.1f}/{span_b:.1f} s")
        else:
            notes.append("no backup pair for the keepalive figure")
        current = alice.selected()
        if current.get("rtt_ms") is not None:
            r["rtt_ms"] = current["rtt_ms"]

        # Interface down under the active pair.
        if current.get("interface") == "wifi":
            mark = alice.mark()
            down_at = time.time()
            lab.link_down("alice", "wifi")
            failed = alice.wait_event("pair", 5, since=mark, pair=current["pair"],
                                      state="failed")
            r["down_failed_ms"] = (failed["ts"] - down_at) * 1000
            moved = alice.wait_event("selected", 5, since=mark,
                                     pred=lambda e: e.get("interface") == "cell")
            r["down_switch_ms"] = (moved["ts"] - down_at) * 1000
            notes.append(f"down: {failed.get('failure')}, to {moved['kind']} on cell")
            mark = alice.mark()
            up_at = time.time()
            lab.link_up("alice", "wifi")
            back = alice.wait_event("selected", SETUP_TIMEOUT_S, since=mark,
                                    pred=lambda e: e.get("interface") == "wifi")
            r["up_back_ms"] = (back["ts"] - up_at) * 1000
            direct = alice.wait_event("selected", SETUP_TIMEOUT_S, since=mark,
                                      pred=lambda e: e.get("interface") == "wifi"
                                      and e.get("kind") == "direct")
            r["up_direct_ms"] = (direct["ts"] - up_at) * 1000
        else:
            notes.append(f"active pair on {current.get('interface')}, not wifi: no down figure")

        # Silent blackhole of whatever path is active now (needs another valid pair).
        alice.wait_until(lambda a: len(a.valid_pairs()) >= 2, 10, "two valid pairs")
        time.sleep(1.0)
        current = alice.selected()
        remote_ip = split_endpoint(current["remote"])[0]
        mark = alice.mark()
        start = time.time()
        fault = lab.blackhole("alice", current["interface"], at="router", peer=remote_ip)
        r["blackhole_rules_ms"] = (time.time() - start) * 1000
        try:
            moved = alice.wait_event("selected", BLACKHOLE_TIMEOUT_S, since=mark,
                                     pred=lambda e: e.get("pair") != current["pair"])
            r["blackhole_ms"] = (moved["ts"] - start) * 1000
            old = alice.first("pair", since=mark, pair=current["pair"], state="failed")
            if old:
                r["blackhole_failed_ms"] = (old["ts"] - start) * 1000
            notes.append(f"blackhole of {current['kind']} IPv{family(current['remote'])} on "
                         f"{current['interface']}: "
                         f"{old.get('failure') if old else 'pair not failed'}, moved to "
                         f"{moved['kind']} on {moved.get('interface')} ({moved['reason']})")
            time.sleep(1.0)
            switches = alice.all("selected", since=mark,
                                 pred=lambda e: e["ts"] <= moved["ts"] + 1.0)
            r["blackhole_settled_ms"] = (switches[-1]["ts"] - start) * 1000
            if len(switches) > 1:
                notes.append("then " + " -> ".join(
                    f"{e['kind']} on {e.get('interface')} ({e['reason']}, "
                    f"+{(e['ts'] - moved['ts']) * 1000:.0f} ms)" for e in switches[1:]))
        finally:
            fault.clear()
    except AgentError as e:
        notes.append(f"FAILED: {str(e).splitlines()[0]}")
        r["error"] = f"{e}\n{bob.dump()}"
    finally:
        codes = (alice.stop(), bob.stop())
        if codes != (0, 0):
            notes.append(f"exit status alice {codes[0]}, bob {codes[1]}")
    return r, notes


def fmt(value, unit):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}" if unit == "pkt/s" else f"{value:.0f}"


def summarize(results):
    log(f"\n{'figure':<38} {'n':>3} {'median':>8} {'p10':>8} {'p90':>8} {'min':>8} "
        f"{'max':>8}  unit   target")
    for key, label, unit, target in FIGURES:
        values = []
        for r in results:
            v = r.get(key)
            if isinstance(v, list):
                values.extend(v)
            elif v is not None:
                values.append(v)
        cells = [percentile(values, 0.5), percentile(values, 0.1), percentile(values, 0.9),
                 min(values) if values else None, max(values) if values else None]
        log(f"{label:<38} {len(values):>3} " + " ".join(f"{fmt(c, unit):>8}" for c in cells)
            + f"  {unit:<6} {target}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--describe", action="store_true", help="print one line and exit")
    p.add_argument("--runs", type=int, default=5, help="agent pairs to measure (default 5)")
    p.add_argument("--delay-ms", type=float, default=20.0,
                   help="one-way delay on each router's WAN, each direction (default 20)")
    p.add_argument("--traffic-ms", type=float, default=20.0,
                   help="roam ice --traffic-interval: a probe on the selected pair every MS, "
                        "as application traffic would (default 20; 0: none, keepalives only)")
    p.add_argument("--keep-logs", metavar="DIR",
                   help="copy every agent's event log and stderr into DIR")
    p.add_argument("--verbose", action="store_true", help="print the logs of failed runs")
    args = p.parse_args()
    if args.describe:
        print(DESCRIPTION)
        return 0
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if not lab_ready("ice", ice_unavailable, args.keep_logs):
        return 1
    if args.traffic_ms and not ice_supports("--traffic-interval"):
        print("bench ice: this roam ice has no --traffic-interval; use --traffic-ms 0",
              file=sys.stderr)
        return 1

    d = args.delay_ms
    for i, (key, label, unit, target) in enumerate(FIGURES):
        if key == "rtt_ms":
            FIGURES[i] = (key, label, unit, f"({4 * d:g} ms emulated)")
    traffic = (f"a probe on the selected pair every {args.traffic_ms:g} ms" if args.traffic_ms
               else "no traffic (keepalives only)")
    log(f"bench ice: lab multihomed, every router WAN {d:g} ms each way ({2 * d:g} ms RTT to "
        f"the cloud, {4 * d:g} ms between the peers); {traffic}; {args.runs} runs")
    results = []
    started = time.monotonic()
    with Lab(topology(d)) as lab:
        stack = start_ice_stack(lab)
        log(f"lab and stack up in {time.monotonic() - started:.1f} s")
        for i in range(args.runs):
            if i:
                stack.wait_pool(timeout=15)   # every session takes two tokens
            r, notes = one_run(lab, stack, args.traffic_ms)
            results.append(r)
            shown = ", ".join(f"{key} {fmt(r[key], unit)}" for key, _, unit, _ in FIGURES
                              if key in r and not isinstance(r[key], list))
            if "keepalive_pps" in r:
                rates = r["keepalive_pps"]
                shown += (f", keepalive {min(rates):.2f}-{max(rates):.2f} pkt/s on "
                          f"{len(rates)} backups")
            log(f"run {i + 1}: {shown}; " + "; ".join(notes))
            if "error" in r and args.verbose:
                log(r["error"])
    summarize(results)
    failed = sum(1 for r in results if "error" in r)
    log(f"{len(results) - failed}/{len(results)} runs complete in "
        f"{time.monotonic() - started:.0f} s")
    return 1 if failed == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
