#!/usr/bin/python3
"""./run bench soak: one long `roam send --rate R` of a large file from alice to bob in the
network lab (topology `multihomed`, every router WAN delayed --delay-ms each way) while
alice's Wi-Fi flaps --flaps times over --minutes (default: 100 flaps in 10 minutes, the
soak reliability target). Not part of CI: it takes the whole time.

Flap k is scheduled at k * period (period = minutes * 60 / flaps): `ip link set wifi down`,
then up again after a down time drawn uniformly from [--down-min, --down-max] seconds (capped
at 60 % of the period; seeded by --seed, so runs are repeatable). The file is sized so that the
paced transfer lasts the whole flapping window plus --tail seconds.

Pass criteria (exit status 1 otherwise):
  - bytes lost 0: the receiver's file has the sender's size and SHA-256 (checked here, and the
    sender's `transfer_complete.verified`);
  - connection drops 0: no `quic_closed` before the transfer completed; both agents exit 0.

Reported: flaps done during the transfer, path switches seen by each agent (by destination),
the blackout distribution of a parallel `roam perf --rate --perf-rate` session between the same
hosts (separate agents, peers alice-perf/bob-perf: the perf receiver measures last byte before
each switch -> first byte after it), and the send session's own 250 ms goodput windows without
data (a coarse stall count for the file stream itself).

    sudo ./run bench soak [--flaps N] [--minutes M] [--rate MBIT] [--keep-logs DIR]
    sudo ./run bench soak --flaps 10 --minutes 1        # a short version
"""

import argparse
import hashlib
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import lab_ready, log  # noqa: E402

from bench_migration import (keep_stdout, percentile, perf_lines, receiver_switches,  # noqa: E402
                             sample_rss, topology)
from roamlab import Lab  # noqa: E402
from roamlab.agents import AgentError, SessionAgent, session_unavailable  # noqa: E402

DESCRIPTION = ("(root, ~10 min, not CI) roam send under 100 Wi-Fi flaps: 0 bytes lost, 0 "
               "connection drops, switches and blackout distribution")

SETUP_TIMEOUT_S = 20
MIB = 1024 * 1024




def make_file(path, size):
    """`size` pseudo-random bytes (a seeded generator: fast, and not compressible)."""
    rng = random.Random(size)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(left, 4 * MIB))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def distribution(values, unit="ms"):
    if not values:
        return "none"
    v = sorted(values)
    return (f"n {len(v)}, median {percentile(v, 0.5):.1f}, p90 {percentile(v, 0.9):.1f}, "
            f"p99 {percentile(v, 0.99):.1f}, min {v[0]:.1f}, max {v[-1]:.1f} {unit}")


def destinations(agent):
    """'kind interface' -> count of the agent's path_switched events (first path left out)."""
    out = {}
    for e in agent.all("path_switched"):
        if e.get("from") is None:
            continue
        to = e.get("to") or {}
        key = f"{e.get('kind')} {to.get('interface')} IPv{to.get('family')}"
        out[key] = out.get(key, 0) + 1
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--describe", action="store_true", help="print one line and exit")
    p.add_argument("--flaps", type=int, default=100, help="Wi-Fi down/up cycles (default 100)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="length of the flapping window (default 10)")
    p.add_argument("--rate", type=float, default=8.0,
                   help="roam send --rate, Mbit/s (default 8; sets the file size)")
    p.add_argument("--perf-rate", type=float, default=2.0,
                   help="rate of the parallel perf session that measures blackouts, Mbit/s "
                        "(default 2; 0: no perf session)")
    p.add_argument("--down-min", type=float, default=0.5, help="shortest down time, s (0.5)")
    p.add_argument("--down-max", type=float, default=3.0, help="longest down time, s (3.0)")
    p.add_argument("--tail", type=float, default=10.0,
                   help="seconds the transfer lasts past the last flap (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the down times (default 1)")
    p.add_argument("--delay-ms", type=float, default=10.0,
                   help="one-way delay on each router's WAN (default 10: 40 ms RTT peers)")
    p.add_argument("--runs", type=int, default=1,
                   help="soak runs, each with fresh agents (default 1)")
    p.add_argument("--keep-logs", metavar="DIR",
                   help="copy every agent's event log, stderr and stdout into DIR")
    args = p.parse_args()
    if args.describe:
        print(DESCRIPTION)
        return 0
    if args.flaps < 1 or args.minutes <= 0 or args.rate <= 0 or args.runs < 1:
        p.error("--flaps, --minutes, --rate and --runs must be positive")
    if not 0 < args.down_min <= args.down_max:
        p.error("need 0 < --down-min <= --down-max")
    ready = lab_ready("soak", session_unavailable, args.keep_logs)
    if not ready:
        return 1
    if args.keep_logs:
        args.keep_logs = ready

    window = args.minutes * 60
    period = window / args.flaps
    down_max = min(args.down_max, 0.6 * period)
    down_min = min(args.down_min, down_max)
    size = int((window + period + args.tail) * args.rate * 1e6 / 8)
    log(f"bench soak: lab multihomed, WAN {args.delay_ms:g} ms each way ({4 * args.delay_ms:g} ms "
        f"RTT between the peers); roam send of {size / MIB:.0f} MiB at {args.rate:g} Mbit/s; "
        f"{args.flaps} Wi-Fi flaps over {args.minutes:g} min (one every {period:.1f} s, down "
        f"{down_min:g}-{down_max:g} s); perf side session at {args.perf_rate:g} Mbit/s; load "
        f"average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    failures = 0
    with Lab(topology(args.delay_ms)) as lab:
        from roamlab.agents import start_ice_stack
        stack = start_ice_stack(lab)
        path = os.path.join(lab.dir, "soak.bin")
        t0 = time.monotonic()
        digest = make_file(path, size)
        log(f"file written in {time.monotonic() - t0:.1f} s, sha256 {digest[:16]}...")
        for run in range(args.runs):
            if run:
                stack.wait_pool(timeout=15)
            ok = soak_run(lab, stack, args, path, size, digest, window, period,
                          down_min, down_max, random.Random(args.seed + run))
            failures += 0 if ok else 1
    log(f"{args.runs - failures}/{args.runs} soak runs passed")
    return 1 if failures else 0


def soak_run(lab, stack, args, path, size, digest, window, period, down_min, down_max, rng):
    out_dir = os.path.join(lab.dir, f"received-{time.time_ns()}")
    os.makedirs(out_dir)
    agents = []
    problems = []
    flaps = []
    perf_a = perf_b = alice = bob = None
    sampler = None
    dumped = False
    try:
        bob = SessionAgent(lab, "bob", stack, "recv", ["--once", "--out", out_dir])
        agents.append(bob)
        if args.perf_rate > 0:
            perf_b = SessionAgent(lab, "bob", stack, "perf", ["--listen", "--once", "--json"],
                                  peer="bob-perf")
            agents.append(perf_b)
            perf_b.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
        bob.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
        alice = SessionAgent(lab, "alice", stack, "send", [path, "--rate", f"{args.rate:g}"],
                             to="bob", metered=["cell"],
                             extra=["--connect-timeout", str(SETUP_TIMEOUT_S)])
        agents.append(alice)
        alice.wait_event("quic_connected", SETUP_TIMEOUT_S)
        if perf_b:
            stack.wait_pool(size=2, timeout=15)
            perf_a = SessionAgent(lab, "alice", stack, "perf",
                                  ["--duration", f"{window + period + args.tail:g}", "--rate",
                                   f"{args.perf_rate:g}", "--json"],
                                  peer="alice-perf", to="bob-perf", metered=["cell"],
                                  extra=["--connect-timeout", str(SETUP_TIMEOUT_S)])
            agents.append(perf_a)
            perf_a.wait_event("quic_connected", SETUP_TIMEOUT_S)
        sampler = sample_rss(*agents)
        # Let both streams reach a direct Wi-Fi path before the first flap.
        time.sleep(3)
        start = time.monotonic()
        for k in range(args.flaps):
            due = start + k * period
            time.sleep(max(0.0, due - time.monotonic()))
            for a in agents:
                if not a.alive():
                    raise AgentError(f"{a.name} exited (status {a.wait_exit(1)}) before flap "
                                     f"{k + 1}")
            down_s = rng.uniform(down_min, down_max)
            down_at = time.time()
            lab.link_down("alice", "wifi")
            time.sleep(down_s)
            up_at = time.time()
            lab.link_up("alice", "wifi")
            flaps.append((down_at, up_at))
            if (k + 1) % max(1, args.flaps // 10) == 0:
                got = sum(e["bytes"] for e in bob.all("goodput"))
                log(f"  flap {k + 1}/{args.flaps} at {time.monotonic() - start:.0f} s: receiver "
                    f"has {got / MIB:.1f}/{size / MIB:.1f} MiB, sender switched "
                    f"{len(alice.all('path_switched')) - 1} times")
        remaining = size * 8 / (args.rate * 1e6) - (time.time() - alice.first(
            "quic_connected")["ts"]) + 60
        done = alice.wait_event("transfer_complete", max(remaining, 60))
        code_a = alice.wait_exit(15)
        code_b = bob.wait_exit(15)
        if code_a != 0 or code_b != 0:
            problems.append(f"exit status: sender {code_a}, receiver {code_b}")
        if not done.get("verified"):
            problems.append("the sender's transfer_complete says the receiver's hash differs")
        received = os.path.join(out_dir, os.path.basename(path))
        if not os.path.exists(received):
            problems.append(f"no received file at {received}: {os.listdir(out_dir)}")
            lost = size
        else:
            got = os.path.getsize(received)
            same = sha256_of(received) == digest
            lost = size - got
            if not same or got != size:
                problems.append(f"received {got} of {size} bytes, sha256 "
                                f"{'matches' if same else 'DIFFERS'}")
        dropped = [e for e in alice.all("quic_closed") + bob.all("quic_closed")
                   if e["ts"] < done["ts"]]
        if dropped:
            problems.append(f"connection dropped before completion: {dropped[0]}")
        during = sum(1 for d, u in flaps if d < done["ts"])
        log(f"transfer: {size} bytes in {done['seconds']:.1f} s, sha256 "
            f"{'match' if not problems else 'see problems'}; bytes lost {lost}; connection "
            f"drops {len(dropped)}; flaps during the transfer {during}/{len(flaps)}")
        for a in (alice, bob):
            n = len([e for e in a.all("path_switched") if e.get("from") is not None])
            log(f"  {a.name} ({'sender' if a is alice else 'receiver'}): {n} path switches: "
                + ", ".join(f"{k} {v}" for k, v in sorted(destinations(a).items())))
        stalls = [e for e in bob.all("goodput") if e["bytes"] == 0]
        reconnects = len(alice.all("signaling", state="connected")) - 1
        log(f"  send stream: {len(stalls)} goodput windows (250 ms) without data at the "
            f"receiver; sender's signaling reconnects {reconnects}")
        if perf_b:
            if perf_a.wait_exit(window + period + args.tail + 30) != 0 or perf_b.wait_exit(15) != 0:
                log(f"  perf side session did not end cleanly (exit {perf_a.returncode}, "
                    f"{perf_b.returncode}); blackouts so far:")
            # Switches that follow each other with no data between them are measured at the
            # same first byte, with the same blackout: count such a burst once.
            switches = []
            for s in receiver_switches(perf_b):
                if switches and s["blackout_ms"] == switches[-1]["blackout_ms"]:
                    switches[-1]["burst"] += 1
                    continue
                s["burst"] = 1
                switches.append(s)
            gaps = [s["blackout_ms"] for s in switches]
            after_down = []
            after_up = []
            for s in switches:
                last = [f for f in flaps if f[0] <= s["ts"]]
                if not last:
                    continue
                d, u = last[-1]
                (after_down if s["ts"] < u else after_up).append(s["blackout_ms"])
            summary = perf_lines(perf_b, "summary")
            bursts = sum(1 for s in switches if s["burst"] > 1)
            log(f"  perf side session blackouts, one per interruption ({bursts} of them spanned "
                f"several switches): {distribution(gaps)}")
            log(f"    while Wi-Fi down (switch off Wi-Fi): {distribution(after_down)}")
            log(f"    after Wi-Fi up (switch back):        {distribution(after_up)}")
            if summary:
                log(f"    perf summary: {summary[-1]['mbit_s']:.2f} Mbit/s, longest receive gap "
                    f"{summary[-1]['max_gap_ms']:.0f} ms")
        if sampler:
            sampler.stop()
            peaks = ", ".join(f"{a.name} {sampler.hwm_mib(a.process.pid, comm='roam') or 0:.1f}"
                              for a in agents)
            log(f"  RSS peak (VmHWM, MiB): {peaks}")
    except AgentError as e:
        problems.append(f"{str(e).splitlines()[0]}")
        dumped = True
        log("\n".join(a.dump() for a in agents))
    finally:
        if sampler:
            sampler.stop()
        for a in agents:
            a.stop()
            keep_stdout(a, args.keep_logs)
        shutil.rmtree(out_dir, ignore_errors=True)
    if problems:
        log("SOAK FAILED: " + "; ".join(problems))
        if not dumped and alice is not None and bob is not None:
            log("\n".join(a.dump() for a in (alice, bob)))
        return False
    log("soak passed: 0 bytes lost, 0 connection drops")
    return True


if __name__ == "__main__":
    sys.exit(main())
