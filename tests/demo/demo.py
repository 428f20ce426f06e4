#!/usr/bin/python3
"""./run demo: one file sent with `roam send` to `roam recv` while the sender's Wi-Fi goes down
and comes back; prints a timeline of the paths the connection used and writes a PNG of goodput
and the active path over time.

As root (network namespaces), in the network lab (tests/lab, topology `multihomed`): alice is
dual-homed, Wi-Fi behind a home NAT and cellular (metered) behind a carrier NAT; bob is behind
his own home NAT; every router's WAN is delayed (10 ms each way by default: 40 ms RTT between
the peers); the real stack (redis, coturn, roam-relay, roam-signaling) runs in the lab's cloud.
alice sends a paced file to bob; a few seconds after the connection went direct, alice's Wi-Fi
goes down (`ip link set wifi down`), and comes back a few seconds later. Expected: the QUIC
handshake on the relay (the first valid pair carries it; when a direct pair wins that race, the
demo says "direct first"), then direct over Wi-Fi, migration to cellular, return to Wi-Fi, and
the received file's SHA-256 equal to the source's. Anything else fails the demo (exit 1, with
both agents' logs).

Without root: the loopback stack (as `./run stack`) and both agents on this machine with
`--loopback --interface lo`: relay first, then direct over loopback. No NATs, no interface
going down, no migration between networks (it says so).

    sudo ./run demo [--out roam-demo.png] [--size-mb 40] [--rate 20] [--delay-ms 10]
    ./run demo --loopback            # the loopback variant, also as root
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "lab"))
sys.path.insert(0, os.path.join(TESTS, "support"))
sys.path.insert(0, HERE)

SETUP_TIMEOUT_S = 20
PACE_MARGIN = 1.6        # the transfer's time limit: this times the paced duration, + 30 s
LEFT_OUT = ("left out without the lab: NATs, WAN delay, a second network, an interface going "
            "down and the migration across networks (both agents share loopback; "
            "run as root for the full demo: sudo ./run demo)")


def say(text=""):
    print(text, flush=True)


class DemoError(Exception):
    """The demo could not run or did not show what it should (message for the user)."""


# ---- the run's record ----------------------------------------------------------------------

class Run:
    """What both variants hand to the report: the agents' events and outputs, the faults."""

    def __init__(self, mode):
        self.mode = mode
        self.sender_events = []
        self.receiver_events = []
        self.faults = []          # (ts, "down" | "up", description)
        self.sender_rc = self.receiver_rc = None
        self.sender_out = self.receiver_out = ""
        self.source_sha = self.received_sha = None
        self.received_path = None
        self.size = 0
        self.rate = None
        self.setup = []           # lines describing the setup
        self.left_out = None
        self.problems = []        # reasons the demo failed
        self.logs = ""            # the agents' logs, printed on failure
        self.started = time.monotonic()


def write_source(path, size):
    """`size` random bytes; returns their SHA-256 (hex)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def transfer_limit(size, rate):
    return size * 8 / (rate * 1e6) * PACE_MARGIN + 30


# ---- lab variant (root) --------------------------------------------------------------------

def run_lab(args, run):
    from roamlab import Impair, Lab, LabError, topologies
    from roamlab.agents import AgentError, SessionAgent, session_unavailable, start_ice_stack

    reason = session_unavailable()
    if reason:
        raise DemoError(reason)
    topo = topologies.multihomed()
    d = args.delay_ms
    for router in topo.routers:
        router.wan_impair = (Impair(delay_ms=d), Impair(delay_ms=d))
    topo.name = "multihomed-demo"
    t0 = time.monotonic()
    say(f"demo: starting the network lab (topology multihomed, every router WAN {d:g} ms each "
        f"way) and the stack in its cloud ...")
    with Lab(topo) as lab:
        stack = start_ice_stack(lab)
        run.setup = [
            f"alice (sender): wifi {lab.addr('alice', 'wifi')} behind home NAT "
            f"{lab.external('home')} (port-restricted), cell {lab.addr('alice', 'cell')} "
            f"behind carrier NAT {lab.external('mobile')} (symmetric, metered)",
            f"bob (receiver): eth0 {lab.addr('bob', 'eth0')} behind home NAT "
            f"{lab.external('home2')} (port-restricted)",
            f"cloud: roam-signaling {stack.signaling[0].url}, coturn + roam-relay "
            f"{stack.coturn.address}, redis",
            f"WAN delay {d:g} ms each way on every router: {4 * d:g} ms RTT between the peers",
        ]
        say(f"demo: lab and stack up in {time.monotonic() - t0:.1f} s")
        src = os.path.join(lab.dir, "roam-demo.bin")
        run.source_sha = write_source(src, run.size)
        inbox = os.path.join(lab.dir, "bob-inbox")
        os.makedirs(inbox)
        bob = alice = None
        try:
            bob = SessionAgent(lab, "bob", stack, "recv", ["--once", "--out", inbox])
            bob.wait_event("signaling", SETUP_TIMEOUT_S, state="connected")
            alice = SessionAgent(lab, "alice", stack, "send", [src, "--rate", f"{run.rate:g}"],
                                 to="bob", metered=["cell"])
            say(f"demo: alice sends {run.size / 1e6:g} MB to bob at {run.rate:g} Mbit/s "
                f"({run.size * 8 / run.rate / 1e6:.0f} s)")
            direct = alice.wait(lambda e: e["event"] == "path_switched"
                                and e.get("kind") == "direct", SETUP_TIMEOUT_S,
                                "a direct path")
            say(f"demo: alice's connection is direct over {direct['to'].get('interface')}; "
                f"Wi-Fi goes down in {args.down_after:g} s")
            time.sleep(max(0.0, direct["ts"] + args.down_after - time.time()))
            if not alice.alive():
                raise DemoError("the transfer ended before the Wi-Fi went down: use a larger "
                                "--size-mb or a lower --rate")
            run.faults.append((time.time(), "down", "alice's Wi-Fi down (ip link set wifi down)"))
            lab.link_down("alice", "wifi")
            say(f"demo: Wi-Fi down; back up in {args.down_for:g} s")
            time.sleep(args.down_for)
            if not alice.alive():
                run.problems.append("the transfer ended while the Wi-Fi was down: use a larger "
                                    "--size-mb or a lower --rate to see the return")
            run.faults.append((time.time(), "up", "alice's Wi-Fi back up"))
            lab.link_up("alice", "wifi")
            say("demo: Wi-Fi up; waiting for the transfer to finish")
            limit = transfer_limit(run.size, run.rate)
            run.sender_rc = alice.wait_exit(limit)
            run.receiver_rc = bob.wait_exit(15)
            if run.sender_rc is None:
                run.problems.append(f"roam send still running after {limit:.0f} s")
            if run.receiver_rc is None:
                run.problems.append("roam recv still running 15 s after the sender exited")
        except (AgentError, LabError) as e:
            run.problems.append(str(e).splitlines()[0])
        finally:
            for agent in (alice, bob):
                if agent is not None:
                    agent.stop()
            if alice is not None:
                run.sender_rc = alice.returncode
                run.sender_events = alice.all()
                run.sender_out = alice.output()
            if bob is not None:
                run.receiver_rc = bob.returncode
                run.receiver_events = bob.all()
                run.receiver_out = bob.output()
            run.logs = "\n".join(a.dump() for a in (alice, bob) if a is not None)
            keep_logs(args, [(a, a.events_path, a.stdout_path) for a in (alice, bob) if a])
            received = [e for e in run.receiver_events if e["event"] == "transfer_complete"]
            if received and received[-1].get("path") and os.path.exists(received[-1]["path"]):
                run.received_path = received[-1]["path"]
                run.received_sha = sha256_file(run.received_path)


# ---- loopback variant ----------------------------------------------------------------------

class LocalAgent:
    """`roam send|recv` on this machine, its JSON-lines event log read back when needed."""

    def __init__(self, name, argv, directory):
        self.name = name
        self.events_path = os.path.join(directory, f"{name}.jsonl")
        self.stdout_path = os.path.join(directory, f"{name}.stdout")
        self.stderr_path = os.path.join(directory, f"{name}.stderr")
        self.argv = argv + ["--events", self.events_path]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def events(self):
        found = []
        try:
            with open(self.events_path, errors="replace") as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(e, dict) and "event" in e and "ts" in e:
                        found.append(e)
        except FileNotFoundError:
            pass
        return found

    def wait_event(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events():
                if pred(e):
                    return e
            if self.proc.poll() is not None:
                raise DemoError(f"{self.name} exited ({self.proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                raise DemoError(f"{self.name}: no {what} within {timeout} s")
            time.sleep(0.05)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM to its process group, SIGKILL after 5 s; returns the exit status."""
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        return self.proc.returncode

    def output(self):
        with open(self.stdout_path, errors="replace") as f:
            return f.read()

    def dump(self, token=None):
        argv = ["<token>" if a == token else a for a in self.argv]
        shown = [e for e in self.events() if e["event"] not in ("stats", "goodput")]
        with open(self.stderr_path, errors="replace") as f:
            err = f.read()
        return "\n".join([f"--- {self.name}: {' '.join(argv)}",
                          f"--- exit status: {self.proc.poll()}"]
                         + [json.dumps(e, separators=(",", ":")) for e in shown[-60:]]
                         + [f"--- stderr:\n{err[-4000:]}", f"--- stdout:\n{self.output()[-2000:]}"])


def run_loopback(args, run):
    from roamtest.process import find_binary
    from roamtest.stack import Stack

    roam = find_binary("roam")
    work = tempfile.mkdtemp(prefix="roam-demo-")
    stack_args = argparse.Namespace(listen="127.0.0.1:0", admin_listen="127.0.0.1:0",
                                    pool_target=4, token_ttl=3600, peer=None)
    stack = Stack(stack_args)
    agents = []
    tokens = {}
    try:
        t0 = time.monotonic()
        say("demo: starting the stack on loopback (redis, coturn, roam-relay, roam-signaling) ...")
        stack.start()
        stack.relay.wait_pool(stack_args.pool_target)
        time.sleep(1.5)   # roam-signaling re-reads the relay registry every second
        sig = stack.signaling
        run.setup = [
            "alice (sender) and bob (receiver): both on this machine, --loopback --interface lo",
            f"stack: roam-signaling {sig.url}, coturn {stack.coturn.address} + roam-relay, "
            f"redis {stack.redis.address}",
        ]
        say(f"demo: stack up in {time.monotonic() - t0:.1f} s")
        src = os.path.join(work, "roam-demo.bin")
        run.source_sha = write_source(src, run.size)
        inbox = os.path.join(work, "bob-inbox")
        os.makedirs(inbox)
        tokens.update({peer: sig.mint_token(peer) for peer in ("alice", "bob")})

        def common(peer):
            return ["--signal", sig.url, "--ca", sig.ca_file, "--token", tokens[peer],
                    "--stun", stack.coturn.address, "--loopback", "--interface", "lo"]

        bob = LocalAgent("bob", [roam, "recv", "--once", "--out", inbox] + common("bob"), work)
        agents.append(bob)
        bob.wait_event(lambda e: e["event"] == "signaling" and e.get("state") == "connected",
                       SETUP_TIMEOUT_S, "signaling connected")
        alice = LocalAgent("alice", [roam, "send", src, "--to", "bob", "--rate", f"{run.rate:g}"]
                           + common("alice"), work)
        agents.append(alice)
        say(f"demo: alice sends {run.size / 1e6:g} MB to bob at {run.rate:g} Mbit/s "
            f"({run.size * 8 / run.rate / 1e6:.0f} s)")
        limit = transfer_limit(run.size, run.rate)
        run.sender_rc = alice.wait(limit)
        run.receiver_rc = bob.wait(15)
        if run.sender_rc is None:
            run.problems.append(f"roam send still running after {limit:.0f} s")
        if run.receiver_rc is None:
            run.problems.append("roam recv still running 15 s after the sender exited")
    except (DemoError, RuntimeError, TimeoutError, FileNotFoundError) as e:
        run.problems.append(str(e).splitlines()[0])
    finally:
        for a in agents:
            a.stop()
        names = {a.name: a for a in agents}
        if "alice" in names:
            run.sender_rc = names["alice"].proc.returncode
            run.sender_events = names["alice"].events()
            run.sender_out = names["alice"].output()
        if "bob" in names:
            run.receiver_rc = names["bob"].proc.returncode
            run.receiver_events = names["bob"].events()
            run.receiver_out = names["bob"].output()
        run.logs = "\n".join(a.dump(tokens.get(a.name)) for a in agents)
        keep_logs(args, [(a, a.events_path, a.stdout_path) for a in agents])
        received = [e for e in run.receiver_events if e["event"] == "transfer_complete"]
        if received and received[-1].get("path") and os.path.exists(received[-1]["path"]):
            run.received_path = received[-1]["path"]
            run.received_sha = sha256_file(run.received_path)
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


def keep_logs(args, agents):
    if not args.keep_logs:
        return
    os.makedirs(args.keep_logs, exist_ok=True)
    for agent, events, stdout in agents:
        role = "alice-send" if agent.name.startswith("alice") else "bob-recv"
        for path, ext in ((events, "jsonl"), (stdout, "stdout")):
            if path and os.path.exists(path):
                shutil.copyfile(path, os.path.join(args.keep_logs, f"{role}.{ext}"))


# ---- the report ----------------------------------------------------------------------------

def path_label(p):
    """"relay via wifi", "direct wifi", "direct cell", "direct lo": the sender's view."""
    if not p:
        return "none"
    iface = p.get("interface") or "?"
    if p.get("kind") == "relay":
        return f"relay via {iface}"
    return f"{p.get('kind', '?')} {iface}"


def describe_path(p):
    """One pair: local -> remote, family, candidate types, RTT."""
    if not p:
        return "none"
    text = (f"{p.get('local')} -> {p.get('remote')} (IPv{p.get('family')}, "
            f"{p.get('local_type')}/{p.get('remote_type')}")
    if p.get("rtt_ms") is not None:
        text += f", rtt {p['rtt_ms']:.0f} ms"
    return text + ")"


def first(events, name, pred=None, after=None):
    for e in events:
        if e["event"] == name and (after is None or e["ts"] >= after) and (pred is None or pred(e)):
            return e
    return None


class Report:
    def __init__(self, run):
        self.run = run
        s, r = run.sender_events, run.receiver_events
        connect = first(s, "connect_sent") or first(s, "started") or (s[0] if s else None)
        self.t0 = connect["ts"] if connect else (run.faults[0][0] if run.faults else time.time())
        self.rows = []   # (ts, who, text)
        self.switches = [e for e in s if e["event"] == "path_switched"]
        self.figures = {}
        self.checks = []   # (ok, text)

    def ms(self, ts):
        return (ts - self.t0) * 1000

    def add(self, event_or_ts, who, text):
        if event_or_ts is None:
            return
        ts = event_or_ts if isinstance(event_or_ts, (int, float)) else event_or_ts["ts"]
        self.rows.append((ts, who, text))

    def build(self):
        run, s, r = self.run, self.run.sender_events, self.run.receiver_events
        e = first(s, "connect_sent")
        self.add(e, "alice", "connect sent: asks roam-signaling for a session with bob")
        e = first(s, "session")
        if e:
            grant = "with a relay grant (reservation token)" if e.get("relay_token") else \
                "without a relay token"
            self.add(e, "alice", f"session {e.get('session', '')[:8]} started {grant}")
        e = first(s, "relay", lambda e: e.get("state") == "allocated")
        if e:
            trips = e.get("round_trips")
            self.add(e, "alice", f"relay allocated {e.get('relayed')} on "
                                 f"{e.get('interface')} in {trips} round "
                                 f"trip{'' if trips == 1 else 's'}"
                                 f"{' (reservation token)' if e.get('token') else ''}")
        e = first(s, "quic_connected")
        if e:
            self.add(e, "alice", f"QUIC connected on {path_label(e.get('path'))} "
                                 f"(handshake {e.get('handshake_ms', 0):.0f} ms): "
                                 f"{describe_path(e.get('path'))}")
            self.figures["quic_ms"] = self.ms(e["ts"])
        e = first(r, "first_byte")
        if e:
            self.add(e, "bob", f"first data byte arrives (on the {e.get('kind')} path)")

        down = next((f for f in run.faults if f[1] == "down"), None)
        up = next((f for f in run.faults if f[1] == "up"), None)
        for f in run.faults:
            self.add(f[0], "lab", f[2])

        prev = None
        for sw in self.switches:
            to = sw.get("to") or {}
            label = path_label(to)
            if prev is None:
                text = f"first path: {label}: {describe_path(to)}"
            else:
                text = f"switched to {label} ({sw.get('reason')}): {describe_path(to)}"
            if down and sw["ts"] >= down[0] and (not up or sw["ts"] < up[0]):
                text += f"  [{(sw['ts'] - down[0]) * 1000:.0f} ms after Wi-Fi down]"
            elif up and sw["ts"] >= up[0]:
                text += f"  [{(sw['ts'] - up[0]) * 1000:.0f} ms after Wi-Fi up]"
            self.add(sw, "alice", text)
            prev = sw

        direct = next((sw for sw in self.switches if sw.get("kind") == "direct"), None)
        if direct:
            self.figures["direct_ms"] = self.ms(direct["ts"])
        if down:
            moved = next((sw for sw in self.switches if sw["ts"] >= down[0]
                          and (sw.get("to") or {}).get("interface") != "wifi"), None)
            if moved:
                self.figures["down_switch_ms"] = (moved["ts"] - down[0]) * 1000
                self.figures["down_to"] = path_label(moved.get("to"))
            # The receiver's side: the first packet on the new path (QUIC sees the peer
            # migrate) ends the blackout that began when the Wi-Fi went down.
            seen = first(r, "path_switched", after=down[0])
            if seen:
                self.figures["blackout_ms"] = (seen["ts"] - down[0]) * 1000
                self.add(seen, "bob", f"first packet from alice's new path ({seen.get('kind')}, "
                                      f"from {(seen.get('to') or {}).get('remote')}): blackout "
                                      f"<= {self.figures['blackout_ms']:.0f} ms since Wi-Fi "
                                      f"down{self.goodput_note(down[0])}")
        if up:
            back = next((sw for sw in self.switches if sw["ts"] >= up[0]
                         and (sw.get("to") or {}).get("interface") == "wifi"), None)
            if back:
                self.figures["up_back_ms"] = (back["ts"] - up[0]) * 1000
                self.figures["up_to"] = path_label(back.get("to"))
                seen = first(r, "path_switched", after=back["ts"] - 0.001)
                if seen:
                    self.add(seen, "bob", f"first packet from alice's Wi-Fi again "
                                          f"({seen.get('kind')}){self.goodput_note(up[0])}")
            direct_back = next((sw for sw in self.switches if sw["ts"] >= up[0]
                                and sw.get("kind") == "direct"
                                and (sw.get("to") or {}).get("interface") == "wifi"), None)
            if direct_back and direct_back is not back:
                self.figures["up_direct_ms"] = (direct_back["ts"] - up[0]) * 1000

        got = first(r, "transfer_complete")
        if got:
            secs = got.get("seconds") or 0
            self.add(got, "bob", f"received {got.get('bytes')} bytes in {secs:.1f} s "
                                 f"({got.get('bytes', 0) * 8 / secs / 1e6 if secs else 0:.1f} "
                                 f"Mbit/s), sha256 {got.get('sha256', '')[:16]}...")
            self.figures["received_s"] = secs
        sent = first(s, "transfer_complete")
        if sent:
            self.add(sent, "alice", f"transfer complete: receiver "
                                    f"{'verified' if sent.get('verified') else 'did NOT verify'}"
                                    f" sha256 {sent.get('sha256', '')[:16]}...")
        self.rows.sort(key=lambda row: row[0])
        self.check()

    def check(self):
        run = self.run
        kinds = [sw.get("kind") for sw in self.switches]
        relay_valid = first(run.sender_events, "pair",
                            lambda e: e.get("kind") == "relay" and e.get("state") == "succeeded")
        if not kinds:
            self.checks.append((False, "relay first (no path event)"))
        elif kinds[0] == "relay":
            self.checks.append((True, "relay first: the QUIC handshake ran on the relay"))
        else:
            # Not a failure: the first valid pair carries the handshake, and a direct check can
            # succeed before the relayed one (whose first check waits for the peer's TURN
            # permission).
            note = (f", a relayed pair at {self.ms(relay_valid['ts']):.0f} ms"
                    if relay_valid else "")
            self.checks.append((None, f"direct first: a direct pair was valid before any "
                                      f"relayed one (direct at "
                                      f"{self.figures.get('direct_ms', 0):.0f} ms{note}); the "
                                      f"relay stayed ready as the backup"))
        self.checks.append(("direct_ms" in self.figures, "then direct"))
        if run.mode == "lab":
            self.checks.append(("down_switch_ms" in self.figures,
                                "Wi-Fi down: migration to the cellular network"))
            self.checks.append(("up_back_ms" in self.figures, "Wi-Fi up: return to Wi-Fi"))
        # SHA-256: source, received file, both agents' events and printed lines.
        hashes = {"source": run.source_sha, "received file": run.received_sha}
        got = first(run.receiver_events, "transfer_complete")
        sent = first(run.sender_events, "transfer_complete")
        hashes["bob's event"] = got.get("sha256") if got else None
        hashes["alice's event"] = sent.get("sha256") if sent else None
        for who, out in (("bob", run.receiver_out), ("alice", run.sender_out)):
            m = re.search(r"sha256 ([0-9a-f]{64})", out)
            hashes[f"{who}'s output"] = m.group(1) if m else None
        missing = [k for k, v in hashes.items() if not v]
        differ = len({v for v in hashes.values() if v}) > 1
        self.sha_ok = not missing and not differ
        if self.sha_ok:
            self.checks.append((True, f"SHA-256 match: source = received file = bob's and "
                                      f"alice's events and output = {run.source_sha}"))
        else:
            detail = ", ".join(f"{k} {v[:16] + '...' if v else 'missing'}"
                               for k, v in hashes.items())
            self.checks.append((False, f"SHA-256: {detail}"))
        if sent is not None:
            self.checks.append((bool(sent.get("verified")), "alice: receiver verified the hash"))
        self.checks.append((run.sender_rc == 0 and run.receiver_rc == 0,
                            f"exit status: roam send {run.sender_rc}, roam recv "
                            f"{run.receiver_rc}"))
        for p in run.problems:
            self.checks.append((False, p))

    def goodput_note(self, ts):
        """The receiver's lowest 250 ms goodput in the second after `ts`, as a suffix."""
        window = [g.get("mbit_s", 0) for g in self.run.receiver_events
                  if g["event"] == "goodput" and ts < g["ts"] <= ts + 1.0]
        if not window:
            return ""
        return f"; goodput in the next second >= {min(window):.1f} Mbit/s"

    @property
    def ok(self):
        return all(ok is not False for ok, _ in self.checks)

    def print(self):
        run = self.run
        say()
        say("setup:")
        for line in run.setup:
            say(f"  {line}")
        say()
        say("timeline (t = ms since alice asked roam-signaling for bob):")
        for ts, who, text in self.rows:
            say(f"  {self.ms(ts):8.0f}  {who:<5}  {text}")
        say()
        say("checks:")
        for ok, text in self.checks:
            say(f"  {'note' if ok is None else 'ok  ' if ok else 'FAIL'}  {text}")
        say()
        say("summary: " + self.summary())
        if run.left_out:
            say(run.left_out)

    def summary(self):
        f = self.figures
        parts = []
        first_kind = self.switches[0].get("kind") if self.switches else None
        if first_kind == "relay" and "quic_ms" in f:
            parts.append(f"relay first (QUIC up at {f['quic_ms']:.0f} ms)")
        if "direct_ms" in f:
            parts.append(f"direct {'first ' if first_kind == 'direct' else ''}at "
                         f"{f['direct_ms']:.0f} ms")
        if "down_switch_ms" in f:
            text = f"Wi-Fi down: {f['down_to']} in {f['down_switch_ms']:.0f} ms"
            if "blackout_ms" in f:
                text += f" (receiver blackout {f['blackout_ms']:.0f} ms)"
            parts.append(text)
        if "up_back_ms" in f:
            text = f"Wi-Fi up: {f['up_to']} in {f['up_back_ms']:.0f} ms"
            if "up_direct_ms" in f:
                text += f", direct wifi in {f['up_direct_ms']:.0f} ms"
            parts.append(text)
        totals = []
        if f.get("received_s"):
            secs = f["received_s"]
            totals.append(f"{self.run.size / 1e6:g} MB in {secs:.1f} s "
                          f"({self.run.size * 8 / secs / 1e6:.1f} Mbit/s, paced at "
                          f"{self.run.rate:g})")
        totals.append("SHA-256 match" if self.sha_ok else "SHA-256 MISMATCH")
        return "; ".join([" -> ".join(parts)] + totals) if parts else "; ".join(totals)

    def plot(self, path):
        from plot import write_png
        run = self.run
        r = run.receiver_events
        goodput = [((g["ts"] - self.t0), g.get("interval_ms", 250) / 1000, g.get("mbit_s", 0))
                   for g in r if g["event"] == "goodput"]
        ends = [e["ts"] for e in run.sender_events + r
                if e["event"] in ("transfer_complete", "quic_closed", "stopped")]
        end_ts = min(ends) if ends else max([e["ts"] for e in run.sender_events + r] or
                                            [self.t0])
        segments = []
        for i, sw in enumerate(self.switches):
            stop = self.switches[i + 1]["ts"] if i + 1 < len(self.switches) else end_ts
            segments.append((sw["ts"] - self.t0, stop - self.t0, path_label(sw.get("to"))))
        markers = []
        for ts, kind, _ in run.faults:
            markers.append((ts - self.t0, "Wi-Fi down" if kind == "down" else "Wi-Fi up",
                            "#d62728" if kind == "down" else "#2ca02c"))
        got = first(r, "transfer_complete")
        if got:
            markers.append((got["ts"] - self.t0, "complete", "#555555"))
        span = max([end_ts - self.t0] + [g[0] for g in goodput]) * 1.02
        if run.mode == "lab":
            title = (f"roam send: {run.size / 1e6:g} MB alice -> bob (alice: Wi-Fi + cellular "
                     f"behind NATs), Wi-Fi down and up")
        else:
            title = (f"roam send: {run.size / 1e6:g} MB alice -> bob on loopback "
                     f"(no NATs, no interface change)")
        write_png(path, title, goodput, segments, markers, span, pace_mbit=run.rate)


# ---- main ----------------------------------------------------------------------------------

def choose_mode(args):
    """("lab" | "loopback", note)."""
    if args.loopback:
        return "loopback", "loopback variant (--loopback)"
    if os.geteuid() != 0:
        return "loopback", "not root: loopback variant"
    from roamlab import can_run
    reason = can_run()
    if reason:
        return "loopback", f"the network lab {reason}: loopback variant"
    return "lab", None


def main():
    p = argparse.ArgumentParser(prog="./run demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="roam-demo.png", help="the PNG (default %(default)s)")
    p.add_argument("--loopback", action="store_true",
                   help="the loopback variant even as root")
    p.add_argument("--size-mb", type=float, default=None,
                   help="file size in MB (default 40 in the lab, 16 on loopback)")
    p.add_argument("--rate", type=float, default=20.0,
                   help="roam send --rate, Mbit/s (default %(default)s)")
    p.add_argument("--delay-ms", type=float, default=10.0,
                   help="lab: one-way delay on each router's WAN, each direction "
                        "(default %(default)s: 40 ms RTT between the peers)")
    p.add_argument("--down-after", type=float, default=4.0,
                   help="lab: seconds on the direct path before the Wi-Fi goes down "
                        "(default %(default)s)")
    p.add_argument("--down-for", type=float, default=4.0,
                   help="lab: seconds the Wi-Fi stays down (default %(default)s)")
    p.add_argument("--keep-logs", metavar="DIR",
                   help="copy both agents' event logs and output into DIR")
    args = p.parse_args()
    if args.rate <= 0:
        p.error("--rate must be positive")
    if args.keep_logs:
        args.keep_logs = os.path.abspath(args.keep_logs)
    out = os.path.abspath(args.out)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        say("demo: python3-matplotlib is not installed (./run deps, or apt-get install "
            "python3-matplotlib)")
        return 1

    mode, note = choose_mode(args)
    run = Run(mode)
    run.rate = args.rate
    run.size = int((args.size_mb if args.size_mb else (40 if mode == "lab" else 16)) * 1e6)
    if note:
        say(f"demo: {note}" + (" (no NATs, no interface going down; sudo ./run demo for the "
                               "full demo)" if mode == "loopback" else ""))
    if mode == "loopback":
        run.left_out = LEFT_OUT
    try:
        if mode == "lab":
            run_lab(args, run)
        else:
            run_loopback(args, run)
    except (DemoError, FileNotFoundError, RuntimeError, TimeoutError) as e:
        run.problems.append(str(e))   # LabError is a RuntimeError
    except KeyboardInterrupt:         # Ctrl-C, or SIGTERM in the lab: everything was stopped
        say("demo: interrupted")
        return 130
    if not run.sender_events and not run.receiver_events:
        say(f"demo: FAILED before the agents ran: {'; '.join(run.problems) or 'no events'}")
        if run.logs:
            say(run.logs)
        return 1
    report = Report(run)
    report.build()
    report.print()
    try:
        report.plot(out)
        say(f"plot: {out}")
    except Exception as e:  # a plot failure must not hide the result
        report.checks.append((False, f"plot: {e}"))
        say(f"plot: FAILED: {e}")
    say(f"demo: {'done' if report.ok else 'FAILED'} in {time.monotonic() - run.started:.0f} s")
    if not report.ok:
        say("\n--- agents' logs ---")
        say(run.logs)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
