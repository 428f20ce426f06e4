#!/usr/bin/python3
"""./run bench migration: Roam's QUIC sessions in the network lab, topology `multihomed` (alice
on Wi-Fi behind a home NAT and on cellular behind a carrier NAT, cellular metered; bob behind
his home NAT), the real stack in the cloud, every router's WAN delayed --delay-ms each way
(default 10 ms: 20 ms RTT to the cloud, 40 ms RTT between the two peers).

Each run uses fresh agents for three sessions:

  A. `roam perf` alice -> bob at a constant --rate (default 20 Mbit/s), default path policy:
     - time to first byte: alice's `connect_sent` (wall clock) -> bob's `first_byte` (same
       clock in the lab), whatever path carried it (`first_byte.kind` is counted);
     - relay -> direct upgrade, two readings of "session start -> application data flowing on
       a direct pair":
         sender:   alice `session_started` -> alice's first `path_switched` with kind direct
                   (alice's monotonic t_ms): the sender puts its packets on a direct pair (if
                   that is the first path, QUIC's handshake starts there);
         receiver: alice `session_started` -> the moment bob receives application data over a
                   direct pair: bob's `first_byte` when its kind is direct, else bob's first
                   `path_switched` to kind direct after it (the server switches on the first
                   non-probing packet from the new path; at 20 Mbit/s that carries data);
     - Wi-Fi down (`ip link set wifi down` in alice) under the stream: bob's (the perf
       receiver's) blackout around the first switch after the fault = last byte received
       before the switch -> first byte after it, as `roam perf --listen` measures it; also
       fault -> alice's path_switched off Wi-Fi (from just before `ip netns exec ... ip link`
       starts: includes that command's own start-up, ~10-20 ms);
     - Wi-Fi back up: fault -> alice on a direct Wi-Fi pair again, and the largest receiver
       blackout of the switches within 5 s (make-before-break: should be ~0);
     - silent blackhole of the active path (alice's uplink router drops everything between
       alice's interface and the active pair's remote address, both ways, no local signal):
       bob's blackout around the first switch after the fault (same definition as above);
       also fault -> alice's path_switched (from just before the first iptables rule: the
       outbound drop comes first; installing all rules takes tens of ms, reported);
     - peak RSS (VmHWM) of both perf agents (constant-rate stream).
  C. a short `roam perf --rate` alice -> bob, both agents --relay-only:
     - time to first byte on the relay path (the target's definition): alice `connect_sent` ->
       bob `first_byte` (kind relay), broken down into connect -> session_started (signaling),
       -> quic_connecting (first pair selected), -> quic_connected (client handshake), ->
       bob's first_byte (first data);
  B. `roam send` of a --bulk-mib file (default 32 MiB), bulk (no rate), alice -> bob, both
     agents --relay-only:
     - time to first byte on the relay path as the file transfer sees it (same definition);
     - peak RSS (VmHWM, read from /proc every 50 ms until exit) of sender and receiver during
       the bulk transfer; the file's SHA-256 must be verified by the sender.

Prints n, median, p10, p90 and min-max per figure beside Roam's targets and reference figures
measured by others (FaceTime, WhatsApp, a QUIC + continuous ICE research prototype, libwebrtc,
iroh). The time-to-first-byte rows are broken down into signaling, first path, QUIC handshake
and first data. Root only (network namespaces).

    sudo ./run bench migration [--runs N] [--delay-ms D] [--rate MBIT] [--keep-logs DIR]
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
from benchlib import ProcessSampler, delayed_multihomed, lab_ready, log, percentile  # noqa: E402

from roamlab import Lab, LabError  # noqa: E402
from roamlab.lab import bin_dir  # noqa: E402
from roamlab.agents import (AgentError, SessionAgent, session_unavailable,  # noqa: E402
                            split_endpoint, start_ice_stack)

DESCRIPTION = ("roam perf/send in the lab (40 ms RTT between peers): time to first byte, "
               "relay->direct upgrade, blackout on Wi-Fi down and on a silent blackhole, RSS")

SETUP_TIMEOUT_S = 15
SETTLE_S = 1.5
SWITCH_TIMEOUT_S = 10
UP_WINDOW_S = 5.0
MIB = 1024 * 1024

# (key, label, unit, target (value or None), target text, reference text)
FIGURES = [
    ("ttfb_relay_ms", "time to first byte, relay (perf)", "ms", 160, "<= 160 ms (4 RTT)",
     "relay first: FaceTime, WhatsApp (no figure)"),
    ("ttfb_relay_signal_ms", "  connect -> session_started", "ms", None, "(1 cloud RTT: 20)",
     ""),
    ("ttfb_relay_path_ms", "  session -> first pair (relay) selected", "ms", None, "", ""),
    ("ttfb_relay_handshake_ms", "  QUIC handshake (client)", "ms", None, "", ""),
    ("ttfb_relay_data_ms", "  client connected -> receiver 1st byte", "ms", None,
     "(0.5 RTT: 20 ms)", ""),
    ("ttfb_send_ms", "time to first byte, relay (roam send)", "ms", 160, "<= 160 ms (4 RTT)", ""),
    ("ttfb_send_data_ms", "  client connected -> receiver 1st byte", "ms", None,
     "(0.5 RTT: 20 ms)", ""),
    ("ttfb_ms", "time to first byte, default policy (perf)", "ms", None, "(any path)", ""),
    ("ttfb_data_ms", "  client connected -> receiver 1st byte", "ms", None,
     "(0.5 RTT: 20 ms)", ""),
    ("upgrade_sender_ms", "session -> sender on direct pair", "ms", 200, "<= 200 ms",
     "QUIC+ICE proto 533-1104 ms; WhatsApp 400-1000 ms LAN"),
    ("upgrade_receiver_ms", "session -> receiver data via direct", "ms", 200, "<= 200 ms",
     "(same)"),
    ("down_blackout_ms", "blackout, Wi-Fi down (receiver)", "ms", 50, "<= 50 ms",
     "FaceTime ~100 ms; QUIC+ICE proto 160 ms avg; WhatsApp ~500 ms"),
    ("down_switch_ms", "  Wi-Fi down -> sender switched", "ms", None, "", ""),
    ("up_return_ms", "Wi-Fi up -> sender on direct Wi-Fi", "ms", None, "", ""),
    ("up_blackout_ms", "  blackout, Wi-Fi back (receiver, max)", "ms", None, "(~0)", ""),
    ("blackhole_blackout_ms", "blackout, silent blackhole (receiver)", "ms", 300, "<= 300 ms",
     "FaceTime ~3 s to notice; libwebrtc weak 2.5 s; iroh >= 500 ms"),
    ("blackhole_switch_ms", "  blackhole (1st rule) -> sender switched", "ms", None, "", ""),
    ("blackhole_rules_ms", "  (blackhole rules all installed in)", "ms", None, "", ""),
    ("rss_bulk_send_mib", "RSS peak, bulk sender (relay)", "MiB", 32, "<= 32 MiB", ""),
    ("rss_bulk_recv_mib", "RSS peak, bulk receiver (relay)", "MiB", 32, "<= 32 MiB", ""),
    ("rss_perf_send_mib", "RSS peak, perf sender (rate)", "MiB", 32, "<= 32 MiB", ""),
    ("rss_perf_recv_mib", "RSS peak, perf receiver (rate)", "MiB", 32, "<= 32 MiB", ""),
    ("bulk_mbit", "bulk send via relay in the lab", "Mbit/s", None, "(info)", ""),
]

BREAKDOWN = {"ttfb_relay_signal_ms", "ttfb_relay_path_ms", "ttfb_relay_handshake_ms",
             "ttfb_relay_data_ms", "ttfb_data_ms", "ttfb_send_data_ms", "blackhole_rules_ms"}






topology = delayed_multihomed


# ---- memory ------------------------------------------------------------------------------

def sample_rss(*agents):
    return ProcessSampler([a.process.pid for a in agents])


# ---- the perf receiver's switch lines ----------------------------------------------------

def perf_lines(agent, kind):
    """The JSON lines of `roam perf --json` output with "event": kind."""
    out = []
    for raw in agent.output().splitlines():
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue     # the last line may be incomplete
        if line.get("event") == kind:
            out.append(line)
    return out


def receiver_switches(agent):
    """The perf receiver's measured switches, each with the wall-clock `ts` of its
    `path_switched` event: `roam perf` prints a switch line once data resumes after it, with
    `t_s` = switch time - the time the perf stream's first data arrived; that moment is the
    agent's `first_byte` event, so first_byte.t_ms + 1000 t_s is the switch's t_ms in the
    event log (to the microsecond). Returns [{ts, t_ms, blackout_ms, reason, kind, to, from}]."""
    first = agent.first("first_byte")
    if first is None:
        return []
    events = agent.all("path_switched")
    out = []
    for line in perf_lines(agent, "switch"):
        t_ms = first["t_ms"] + line["t_s"] * 1000
        best = min(events, key=lambda e: abs(e["t_ms"] - t_ms), default=None)
        if best is None or abs(best["t_ms"] - t_ms) > 20:
            continue
        out.append({"ts": best["ts"], "t_ms": best["t_ms"], "blackout_ms": line["blackout_ms"],
                    "reason": line.get("reason"), "kind": best.get("kind"),
                    "to": best.get("to"), "from": best.get("from"), "line": line})
    return out


def wait_receiver_switch(receiver, after_ts, timeout, what):
    """The first switch the perf receiver measured whose path_switched came after `after_ts`
    (waits until data resumed after it)."""
    def found(agent):
        for s in receiver_switches(agent):
            if s["ts"] >= after_ts and s["blackout_ms"] >= 0:
                return s
        return None
    return receiver.wait_until(found, timeout, what)


def path_text(p):
    if not p:
        return "-"
    return f"{p.get('kind')} {p.get('interface')} IPv{p.get('family')} " \
           f"{p.get('local_type')}/{p.get('remote_type')}"


def breakdown(sender, connect, started, first, r, prefix):
    """Where the time to first byte goes: connect_sent -> session_started (signaling) ->
    quic_connecting (first pair selected) -> quic_connected (the sender's handshake) ->
    the receiver's first_byte (wall clock across the two hosts)."""
    connecting = sender.first("quic_connecting")
    connected = sender.first("quic_connected")
    if prefix == "ttfb_relay_":
        r[prefix + "signal_ms"] = started["t_ms"] - connect["t_ms"]
        if connecting:
            r[prefix + "path_ms"] = connecting["t_ms"] - started["t_ms"]
        if connecting and connected:
            r[prefix + "handshake_ms"] = connected["t_ms"] - connecting["t_ms"]
    if connected:
        r[prefix + "data_ms"] = (first["ts"] - connected["ts"]) * 1000


def on_direct_wifi(switch):
    return bool(switch) and switch.get("kind") == "direct" and \
        (switch.get("to") or {}).get("interface") == "wifi"


def last_before(agent, name, ts):
    found = [e for e in agent.all(name) if e["ts"] <= ts]
    return found[-1] if found else None


# ---- one run -----------------------------------------------------------------------------

def keep_stdout(agent, keep_dir):
    if keep_dir:
        os.makedirs(keep_dir, exist_ok=True)
        shutil.copyfile(agent.stdout_path, os.path.join(
            keep_dir, f"{agent.lab.run_id}-{os.path.basename(agent.stdout_path)}"))


def stop_all(agents, keep_dir):
    codes = []
    for a in agents:
        codes.append(a.stop())
        keep_stdout(a, keep_dir)
    return codes


def session_a(lab, stack, args, r, notes):
    """The perf session: ttfb, upgrade, Wi-Fi down/up, blackhole, perf RSS."""
    bob = SessionAgent(lab, "bob", stack, "perf", ["--listen", "--once", "--json"])
    alice = None
    sampler = None
    wifi_down = False
    try:
        bob.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
        alice = SessionAgent(lab, "alice", stack, "perf",
                             ["--duration", f"{args.perf_seconds:g}", "--rate",
                              f"{args.rate:g}", "--json"],
                             to="bob", metered=["cell"],
                             extra=["--connect-timeout", str(SETUP_TIMEOUT_S)])
        sampler = sample_rss(alice, bob)

        # Time to first byte.
        first = bob.wait_event("first_byte", SETUP_TIMEOUT_S)
        started = alice.wait_event("session_started", 1)
        connect = last_before(alice, "connect_sent", started["ts"])
        r["ttfb_ms"] = (first["ts"] - connect["ts"]) * 1000
        r["ttfb_kind"] = first.get("kind")
        breakdown(alice, connect, started, first, r, "ttfb_")

        # Relay -> direct upgrade.
        direct = alice.wait(lambda e: e["event"] == "path_switched" and e.get("kind") == "direct",
                            SETUP_TIMEOUT_S, "a path_switched to a direct pair")
        r["upgrade_sender_ms"] = direct["t_ms"] - started["t_ms"]
        r["started_direct"] = direct.get("from") is None
        if first.get("kind") == "direct":
            on_direct = first
        else:
            on_direct = bob.wait_event("path_switched", SETUP_TIMEOUT_S, kind="direct",
                                       pred=lambda e: e["ts"] >= first["ts"])
        r["upgrade_receiver_ms"] = (on_direct["ts"] - started["ts"]) * 1000
        notes.append(f"first byte via {first.get('kind')}, "
                     + ("QUIC started on direct" if r["started_direct"]
                        else f"relay->direct ({direct.get('reason')})"))

        # Settle on a direct Wi-Fi pair.
        alice.wait_until(lambda a: on_direct_wifi(a.last("path_switched")), SETUP_TIMEOUT_S,
                         "the active path on a direct Wi-Fi pair")
        time.sleep(SETTLE_S)

        # Wi-Fi down.
        mark = alice.mark()
        down_at = time.time()
        wifi_down = True
        lab.link_down("alice", "wifi")
        moved = alice.wait_event("path_switched", SWITCH_TIMEOUT_S, since=mark)
        r["down_switch_ms"] = (moved["ts"] - down_at) * 1000
        sw = wait_receiver_switch(bob, down_at, SWITCH_TIMEOUT_S,
                                  "a measured switch after Wi-Fi down")
        r["down_blackout_ms"] = sw["blackout_ms"]
        notes.append(f"down: to {path_text(moved.get('to'))} ({moved.get('reason')})")
        time.sleep(SETTLE_S)

        # Wi-Fi back.
        mark = alice.mark()
        up_at = time.time()
        lab.link_up("alice", "wifi")
        wifi_down = False
        back = alice.wait_event("path_switched", SETUP_TIMEOUT_S, since=mark, kind="direct",
                                pred=on_direct_wifi)
        r["up_return_ms"] = (back["ts"] - up_at) * 1000
        time.sleep(SETTLE_S)
        ups = [s["blackout_ms"] for s in receiver_switches(bob)
               if up_at <= s["ts"] <= up_at + UP_WINDOW_S]
        if ups:
            r["up_blackout_ms"] = max(ups)

        # Silent blackhole of the active path.
        current = alice.last("path_switched")["to"]
        remote_ip = split_endpoint(current["remote"])[0]
        mark = alice.mark()
        start = time.time()
        fault = lab.blackhole("alice", current["interface"], at="router", peer=remote_ip)
        rules_ms = r["blackhole_rules_ms"] = (time.time() - start) * 1000
        try:
            moved = alice.wait_event("path_switched", SWITCH_TIMEOUT_S, since=mark)
            r["blackhole_switch_ms"] = (moved["ts"] - start) * 1000
            sw = wait_receiver_switch(bob, start, SWITCH_TIMEOUT_S,
                                      "a measured switch after the blackhole")
            r["blackhole_blackout_ms"] = sw["blackout_ms"]
            notes.append(f"blackhole of {path_text(current)}: to {path_text(moved.get('to'))} "
                         f"({moved.get('reason')}; rules in {rules_ms:.0f} ms)")
            time.sleep(1.0)
        finally:
            fault.clear()

        # The stream ends on its own: both exit 0, no connection drop.
        remaining = args.perf_seconds - (time.time() - connect["ts"]) + 15
        code_a = alice.wait_exit(max(remaining, 5))
        code_b = bob.wait_exit(10)
        summaries = perf_lines(bob, "summary")
        if code_a != 0 or code_b != 0 or not summaries:
            raise AgentError(f"perf did not end cleanly: alice exit {code_a}, bob exit "
                             f"{code_b}, receiver summary {'present' if summaries else 'missing'}")
        closed = [e for e in alice.all("quic_closed") + bob.all("quic_closed")
                  if "perf done" not in e.get("reason", "")]
        if closed:
            raise AgentError(f"connection dropped: {closed[0]}")
        notes.append(f"perf {summaries[-1]['mbit_s']:.1f} Mbit/s, longest gap "
                     f"{summaries[-1]['max_gap_ms']:.0f} ms")
    except (AgentError, LabError) as e:
        r["error"] = f"session A (perf): {e}\n" + "\n".join(
            a.dump() for a in (alice, bob) if a is not None)
        notes.append(f"FAILED (perf): {str(e).splitlines()[0]}")
    finally:
        if wifi_down:
            lab.link_up("alice", "wifi")
        if sampler:
            sampler.stop()
        codes = stop_all([a for a in (alice, bob) if a is not None], args.keep_logs)
        if sampler and alice is not None:
            r["rss_perf_send_mib"] = sampler.hwm_mib(alice.process.pid, comm="roam")
            r["rss_perf_recv_mib"] = sampler.hwm_mib(bob.process.pid, comm="roam")
        if "error" in r and any(c not in (0, None) for c in codes):
            notes.append(f"exit status {codes}")


def session_b(lab, stack, args, bulk_file, r, notes):
    """The bulk relay-only transfer: time to first byte on the relay path, RSS."""
    out_dir = os.path.join(lab.dir, f"received-{time.time_ns()}")
    os.makedirs(out_dir)
    bob = SessionAgent(lab, "bob", stack, "recv", ["--once", "--out", out_dir],
                       extra=["--relay-only"])
    alice = None
    sampler = None
    try:
        bob.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
        alice = SessionAgent(lab, "alice", stack, "send", [bulk_file], to="bob",
                             metered=["cell"],
                             extra=["--relay-only", "--connect-timeout", str(SETUP_TIMEOUT_S)])
        sampler = sample_rss(alice, bob)
        first = bob.wait_event("first_byte", SETUP_TIMEOUT_S)
        started = alice.wait_event("session_started", 1)
        connect = last_before(alice, "connect_sent", started["ts"])
        if first.get("kind") != "relay":
            raise AgentError(f"the relay-only session's first byte came via "
                             f"{first.get('kind')}")
        r["ttfb_send_ms"] = (first["ts"] - connect["ts"]) * 1000
        breakdown(alice, connect, started, first, r, "ttfb_send_")
        done = alice.wait_event("transfer_complete", args.bulk_timeout)
        code_a = alice.wait_exit(10)
        code_b = bob.wait_exit(10)
        if not done.get("verified") or code_a != 0 or code_b != 0:
            raise AgentError(f"bulk transfer not verified (verified {done.get('verified')}, "
                             f"exit alice {code_a}, bob {code_b})")
        r["bulk_mbit"] = done["bytes"] * 8 / done["seconds"] / 1e6
    except (AgentError, LabError) as e:
        r["error"] = (r.get("error", "") + f"\nsession B (bulk relay-only send): {e}\n"
                      + "\n".join(a.dump() for a in (alice, bob) if a is not None))
        notes.append(f"FAILED (bulk): {str(e).splitlines()[0]}")
    finally:
        if sampler:
            sampler.stop()
        stop_all([a for a in (alice, bob) if a is not None], args.keep_logs)
        shutil.rmtree(out_dir, ignore_errors=True)
        if sampler and alice is not None and "bulk_mbit" in r:
            r["rss_bulk_send_mib"] = sampler.hwm_mib(alice.process.pid, comm="roam")
            r["rss_bulk_recv_mib"] = sampler.hwm_mib(bob.process.pid, comm="roam")


def session_c(lab, stack, args, r, notes):
    """A short relay-only perf stream: time to first byte on the relay path for the transport
    alone (roam perf writes its first bytes as soon as the connection is up)."""
    bob = SessionAgent(lab, "bob", stack, "perf", ["--listen", "--once", "--json"],
                       extra=["--relay-only"])
    alice = None
    try:
        bob.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
        alice = SessionAgent(lab, "alice", stack, "perf",
                             ["--duration", "0.5", "--rate", f"{args.rate:g}", "--json"],
                             to="bob", metered=["cell"],
                             extra=["--relay-only", "--connect-timeout", str(SETUP_TIMEOUT_S)])
        first = bob.wait_event("first_byte", SETUP_TIMEOUT_S)
        started = alice.wait_event("session_started", 1)
        connect = last_before(alice, "connect_sent", started["ts"])
        if first.get("kind") != "relay":
            raise AgentError(f"the relay-only session's first byte came via "
                             f"{first.get('kind')}")
        r["ttfb_relay_ms"] = (first["ts"] - connect["ts"]) * 1000
        breakdown(alice, connect, started, first, r, "ttfb_relay_")
        code_a, code_b = alice.wait_exit(15), bob.wait_exit(10)
        if code_a != 0 or code_b != 0:
            raise AgentError(f"relay-only perf exit status alice {code_a}, bob {code_b}")
    except (AgentError, LabError) as e:
        r["error"] = (r.get("error", "") + f"\nsession C (relay-only perf): {e}\n"
                      + "\n".join(a.dump() for a in (alice, bob) if a is not None))
        notes.append(f"FAILED (relay perf): {str(e).splitlines()[0]}")
    finally:
        stop_all([a for a in (alice, bob) if a is not None], args.keep_logs)


def binary_identity():
    """(mtime, size) of the roam binary, waiting up to 60 s while it is missing (a rebuild
    replacing it); None if it stays missing."""
    path = os.path.join(bin_dir(), "roam")
    deadline = time.monotonic() + 60
    while True:
        try:
            st = os.stat(path)
            if os.access(path, os.X_OK):
                return (st.st_mtime, st.st_size)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(1)


def one_run(lab, stack, args, bulk_file):
    r, notes = {}, []
    session_a(lab, stack, args, r, notes)
    stack.wait_pool(timeout=15)
    session_c(lab, stack, args, r, notes)
    if bulk_file:
        stack.wait_pool(timeout=15)       # every session takes two reservation tokens
        session_b(lab, stack, args, bulk_file, r, notes)
    return {k: v for k, v in r.items() if v is not None}, notes


# ---- output ------------------------------------------------------------------------------

def fmt(value, unit):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"


def table(rows, results, title=None):
    """rows: FIGURES-like tuples; results: list of dicts. Prints the summary table."""
    if title:
        log(title)
    log(f"{'figure':<42} {'n':>3} {'median':>7} {'p10':>7} {'p90':>7} {'min-max':>13}  "
        f"{'unit':<6} {'target':<18} {'met':<11} reference")
    for key, label, unit, target, target_text, reference in rows:
        values = [r[key] for r in results if r.get(key) is not None]
        med, p10, p90 = (percentile(values, p) for p in (0.5, 0.1, 0.9))
        span = f"{fmt(min(values), unit)}-{fmt(max(values), unit)}" if values else "-"
        met = ""
        if target is not None and values:
            met = ("yes" if med <= target else "NO") + ("" if p90 <= target else " (p90 no)")
        log(f"{label:<42} {len(values):>3} {fmt(med, unit):>7} {fmt(p10, unit):>7} "
            f"{fmt(p90, unit):>7} {span:>13}  {unit:<6} {target_text:<18} {met:<11} {reference}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--describe", action="store_true", help="print one line and exit")
    p.add_argument("--runs", type=int, default=20, help="runs, a fresh agent pair per session "
                   "(default 20)")
    p.add_argument("--delay-ms", type=float, default=10.0,
                   help="one-way delay on each router's WAN, each direction (default 10: "
                        "40 ms RTT between the peers)")
    p.add_argument("--rate", type=float, default=20.0,
                   help="perf stream rate in Mbit/s during the faults (default 20)")
    p.add_argument("--perf-seconds", type=float, default=16.0,
                   help="length of the perf stream that carries the faults (default 16)")
    p.add_argument("--bulk-mib", type=int, default=32,
                   help="size of the bulk relay-only `roam send` (default 32; 0: skip session "
                        "B, no relay TTFB or bulk RSS)")
    p.add_argument("--bulk-timeout", type=float, default=120.0,
                   help="seconds allowed for the bulk transfer (default 120)")
    p.add_argument("--keep-logs", metavar="DIR",
                   help="copy every agent's event log, stderr and stdout into DIR")
    p.add_argument("--quiet", action="store_true",
                   help="do not print the agents' event dumps of failed runs")
    args = p.parse_args()
    if args.describe:
        print(DESCRIPTION)
        return 0
    if args.runs < 1:
        p.error("--runs must be at least 1")
    ready = lab_ready("migration", session_unavailable, args.keep_logs)
    if not ready:
        return 1
    if args.keep_logs:
        args.keep_logs = ready

    d = args.delay_ms
    log(f"bench migration: lab multihomed, every router WAN {d:g} ms each way ({2 * d:g} ms RTT "
        f"to the cloud, {4 * d:g} ms between the peers); perf at {args.rate:g} Mbit/s for "
        f"{args.perf_seconds:g} s; bulk {args.bulk_mib} MiB relay-only; {args.runs} runs; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    results = []
    started = time.monotonic()
    with Lab(topology(d)) as lab:
        stack = start_ice_stack(lab)
        bulk_file = None
        if args.bulk_mib > 0:
            bulk_file = os.path.join(lab.dir, f"bulk-{args.bulk_mib}MiB.bin")
            with open(bulk_file, "wb") as f:
                for _ in range(args.bulk_mib):
                    f.write(os.urandom(MIB))
        log(f"lab and stack up in {time.monotonic() - started:.1f} s")
        identity = binary_identity()
        for i in range(args.runs):
            if i:
                stack.wait_pool(timeout=15)
            now = binary_identity()
            if now != identity:
                log(f"note: {os.path.join(bin_dir(), 'roam')} changed before run {i + 1} "
                    f"(rebuilt: mtime {time.ctime(now[0]) if now else 'missing'}); later runs "
                    f"measure the new binary")
                identity = now
            try:
                r, notes = one_run(lab, stack, args, bulk_file)
            except LabError as e:
                r, notes = {"error": str(e)}, [f"FAILED: {str(e).splitlines()[0]}"]
            results.append(r)
            shown = ", ".join(f"{key} {fmt(r[key], unit)}" for key, _, unit, *_ in FIGURES
                              if r.get(key) is not None and key not in BREAKDOWN)
            log(f"run {i + 1}: {shown}; " + "; ".join(notes))
            if "error" in r and not args.quiet:
                log(r["error"])
    log()
    table(FIGURES, results)
    kinds = {}
    for r in results:
        if "ttfb_kind" in r:
            kinds[r["ttfb_kind"]] = kinds.get(r["ttfb_kind"], 0) + 1
    direct_first = sum(1 for r in results if r.get("started_direct"))
    upgraded = sum(1 for r in results if r.get("started_direct") is False)
    log("default-policy first byte via: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + f"; QUIC started on a direct pair in {direct_first} runs, migrated relay->direct in "
          f"{upgraded}")
    log(f"load average at the end {os.getloadavg()[0]:.2f} (other work on the machine "
        f"inflates the tails)")
    failed = sum(1 for r in results if "error" in r)
    log(f"{len(results) - failed}/{len(results)} runs complete in "
        f"{time.monotonic() - started:.0f} s")
    return 1 if failed == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
