"""File transfers with `roam send` / `roam recv --once` between two lab hosts, and what their
event logs say about them (paths, switches, connection drops, receive gaps).

    t = Transfer(lab, stack, "alice", "bob", size=4 << 20, rate=8)   # starts recv, then send
    t.sender.wait_event("path_switched", 10, kind="direct")
    ...fault...
    t.finish(60)          # both exit; AgentError with both logs otherwise
    t.verify()            # exit 0, SHA-256 printed by both == the file's == the file on disk

The source file is random (os.urandom) in the lab's directory; the receiver writes into its own
directory there, so everything goes with the lab at teardown.
"""

import hashlib
import os
import re
import time

from .agents import AgentError, SessionAgent, compact

SENT = re.compile(r"^sent (\S+) (\d+) bytes sha256 ([0-9a-f]{64}) .*receiver verified\s*$", re.M)
RECEIVED = re.compile(r"^received (\S+) (\d+) bytes sha256 ([0-9a-f]{64}) in \S+ s -> (.+)$",
                      re.M)
# A pause in the receiver's goodput events longer than this is a receive gap (they come every
# 250 ms while data flows, plus one empty interval after data stops).
GOODPUT_INTERVAL_S = 0.25


def random_file(directory, size, name=None):
    """Writes `size` random bytes to directory/name; returns (path, sha256 hex)."""
    name = name or f"payload-{size}-{time.time_ns()}.bin"
    path = os.path.join(directory, name)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Transfer:
    """`roam recv --once --out DIR` in `receiver` (started first, waited for until its signaling
    is connected), then `roam send FILE --to receiver [--rate MBIT]` in `sender`."""

    def __init__(self, lab, stack, sender="alice", receiver="bob", *, size=2 << 20, rate=None,
                 sender_opts=None, receiver_opts=None, sender_extra=(), receiver_extra=(),
                 connect_timeout=30, ready_timeout=10):
        self.lab, self.stack = lab, stack
        self.size, self.rate = size, rate
        self.path, self.sha256 = random_file(lab.dir, size)
        self.out_dir = os.path.join(lab.dir, f"received-{receiver}-{time.time_ns()}")
        os.makedirs(self.out_dir)
        common = ["--connect-timeout", str(connect_timeout)]
        self.receiver = SessionAgent(lab, receiver, stack, "recv",
                                     ["--once", "--out", self.out_dir],
                                     extra=tuple(receiver_extra), **(receiver_opts or {}))
        try:
            self.receiver.wait_event("signaling", ready_timeout, state="connected")
        except AgentError:
            self.receiver.stop()
            raise
        args = [self.path] + (["--rate", str(rate)] if rate else [])
        self.sender = SessionAgent(lab, sender, stack, "send", args, to=receiver,
                                   extra=tuple(common) + tuple(sender_extra),
                                   **(sender_opts or {}))
        self.agents = (self.sender, self.receiver)
        self.codes = None

    # -- running ---------------------------------------------------------------------------
    def dump(self):
        return "\n".join(a.dump() for a in self.agents)

    def fail(self, message=""):
        """AgentError with both agents' logs."""
        return AgentError(f"{message}\n{self.dump()}")

    def wait(self, agent, pred, timeout, what, since=0):
        """agent.wait() whose failure message carries both logs."""
        try:
            return agent.wait(pred, timeout, what, since)
        except AgentError as e:
            other = self.receiver if agent is self.sender else self.sender
            raise AgentError(f"{e}\n{other.dump()}") from None

    def wait_event(self, agent, name, timeout, since=0, pred=None, **fields):
        what = f"`{name}` event" + (f" with {fields}" if fields else "")
        return self.wait(agent, lambda e: e.get("event") == name
                         and all(e.get(k) == v for k, v in fields.items())
                         and (pred is None or pred(e)), timeout, what, since)

    def finish(self, timeout):
        """Waits for both to exit on their own (the sender after the receiver's verdict, the
        receiver once its verdict is acknowledged); stops whichever is still running after
        `timeout` s and raises. Returns (sender status, receiver status)."""
        deadline = time.monotonic() + timeout
        codes = []
        for agent in self.agents:
            code = agent.wait_exit(max(0.1, deadline - time.monotonic()))
            codes.append(code)
        self.codes = tuple(codes)
        if None in codes:
            for agent in self.agents:
                agent.stop()
            raise self.fail(f"transfer not finished within {timeout} s (exit statuses "
                            f"{codes}: None = still running)")
        return self.codes

    def stop(self):
        for agent in self.agents:
            agent.stop()

    # -- verdict ---------------------------------------------------------------------------
    def verify(self):
        """Both exited 0; the sender printed "receiver verified" with the source's SHA-256,
        the receiver printed the same, and the file it wrote has that size and hash; both
        logged transfer_complete with that hash; no malformed event lines. Returns the path of
        the received file."""
        sender, receiver = self.agents
        if self.codes is None:
            self.finish(60)
        assert self.codes == (0, 0), self.fail(f"exit statuses (send, recv) = {self.codes}")
        sent = SENT.search(sender.output())
        assert sent, self.fail("the sender did not print `sent ... receiver verified`")
        got = RECEIVED.search(receiver.output())
        assert got, self.fail("the receiver did not print `received ...`")
        name = os.path.basename(self.path)
        assert sent.group(1) == name and got.group(1) == name, self.fail("file names differ")
        assert int(sent.group(2)) == self.size and int(got.group(2)) == self.size, \
            self.fail(f"sizes: sent {sent.group(2)}, received {got.group(2)}, file {self.size}")
        assert sent.group(3) == self.sha256, self.fail(
            f"sender's sha256 {sent.group(3)} != source file's {self.sha256}")
        assert got.group(3) == self.sha256, self.fail(
            f"receiver's sha256 {got.group(3)} != source file's {self.sha256}")
        written = got.group(4).strip()
        assert os.path.dirname(written) == self.out_dir, self.fail(f"written to {written}")
        assert os.path.getsize(written) == self.size, self.fail(
            f"{written}: {os.path.getsize(written)} bytes, expected {self.size}")
        assert sha256_of(written) == self.sha256, self.fail(f"{written}: different content")
        for agent, direction in ((sender, "sent"), (receiver, "received")):
            done = agent.first("transfer_complete", direction=direction)
            assert done and done["sha256"] == self.sha256 and done["bytes"] == self.size, \
                self.fail(f"{agent.name}: transfer_complete {done}")
            assert not agent.bad_lines, self.fail(f"{agent.name}: malformed event lines")
        assert sender.first("transfer_complete")["verified"] is True, self.fail("not verified")
        return written

    def assert_no_drop(self):
        """Each side has exactly one QUIC connection (one quic_connected) and logged no
        quic_closed before its transfer_complete; the sender stopped with reason "done"."""
        for agent in self.agents:
            connected = agent.all("quic_connected")
            assert len(connected) == 1, self.fail(f"{agent.name}: {len(connected)} "
                                                  "quic_connected events")
            done = self.index(agent, "transfer_complete")
            closed = self.index(agent, "quic_closed")
            assert done is not None, self.fail(f"{agent.name}: no transfer_complete")
            assert closed is None or closed > done, self.fail(
                f"{agent.name}: quic_closed before transfer_complete: "
                f"{compact(agent.events[closed])}")
        stopped = self.sender.last("stopped")
        assert stopped and stopped["reason"] == "done", self.fail(f"sender stopped: {stopped}")

    @staticmethod
    def index(agent, name):
        agent.poll()
        for i, e in enumerate(agent.events):
            if e["event"] == name:
                return i
        return None

    def elapsed(self):
        """Seconds the sender reported for the transfer (transfer_complete), or None."""
        done = self.sender.first("transfer_complete")
        return done["seconds"] if done else None


# ---- what the logs say --------------------------------------------------------------------

def switches(agent, since_ts=None):
    """The agent's path_switched events (with ts >= since_ts)."""
    return [e for e in agent.all("path_switched")
            if since_ts is None or e["ts"] >= since_ts]


def describe(path):
    """"direct wifi 10.1.0.2:5000 -> 198.51.100.4:6000" for a pair's members."""
    if not path:
        return "-"
    return (f"{path.get('kind')} {path.get('interface', '?')} IPv{path.get('family', '?')} "
            f"{path.get('local_type', '?')}/{path.get('remote_type', '?')} "
            f"{path.get('local')} -> {path.get('remote')}")


def bytes_by_kind(agent):
    """{path kind: bytes} from the agent's goodput events (the kind of the active path at
    each 250 ms tick)."""
    out = {}
    for e in agent.all("goodput"):
        if e.get("bytes", 0) > 0:
            out[e.get("kind")] = out.get(e.get("kind"), 0) + e["bytes"]
    return out


def active_path(agent, ts=None):
    """The `to` of the agent's last path_switched (at or before ts when given)."""
    found = [e for e in agent.all("path_switched") if ts is None or e["ts"] <= ts]
    return found[-1]["to"] if found else None


def receive_gaps(agent, start_ts=None, end_ts=None, min_gap=0.1):
    """Pauses in the data the agent received, from its goodput events (one every 250 ms while
    data flows, an empty one after it stops): a list of (from ts, to ts, seconds) where from
    is the end of the last interval with bytes and to is the start of the next interval with
    bytes. Resolution: one interval (250 ms): a pause shorter than an interval shows only when
    it spans a whole one; `min_gap` leaves out the timer's jitter (a few ms)."""
    events = [e for e in agent.all("goodput")
              if (start_ts is None or e["ts"] >= start_ts)
              and (end_ts is None or e["ts"] <= end_ts)]
    gaps = []
    last_data = None
    for e in events:
        if e.get("bytes", 0) <= 0:
            continue
        interval = e.get("interval_ms", 250) / 1000
        begin = e["ts"] - interval
        if last_data is not None and begin - last_data >= min_gap:
            gaps.append((last_data, begin, begin - last_data))
        last_data = e["ts"]
    return gaps


def longest_gap(agent, start_ts=None, end_ts=None):
    """The longest receive_gaps() pause in seconds (0.0 when none)."""
    gaps = receive_gaps(agent, start_ts, end_ts)
    return max((g[2] for g in gaps), default=0.0)


def ipv4_only(lab, node):
    """Disables IPv6 in the node (net.ipv6.conf.all/default.disable_ipv6=1: its IPv6 addresses
    go), so its paths must cross the IPv4 NATs instead of the lab's routed IPv6."""
    lab.run(node, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                  "net.ipv6.conf.default.disable_ipv6=1")


class Perf:
    """`roam perf --listen --once --json` in `receiver`, then `roam perf --to receiver
    --duration S [--rate MBIT] --json` in `sender`; their JSON-lines stdout parsed."""

    def __init__(self, lab, stack, sender="alice", receiver="bob", *, duration=5, rate=None,
                 sender_opts=None, receiver_opts=None, connect_timeout=30, ready_timeout=10):
        self.receiver = SessionAgent(lab, receiver, stack, "perf", ["--listen", "--once", "--json"],
                                     **(receiver_opts or {}))
        try:
            self.receiver.wait_event("signaling", ready_timeout, state="connected")
        except AgentError:
            self.receiver.stop()
            raise
        args = ["--duration", str(duration), "--json"] + (["--rate", str(rate)] if rate else [])
        self.sender = SessionAgent(lab, sender, stack, "perf", args, to=receiver,
                                   extra=("--connect-timeout", str(connect_timeout)),
                                   **(sender_opts or {}))
        self.agents = (self.sender, self.receiver)
        self.codes = None

    dump = Transfer.dump
    fail = Transfer.fail
    wait = Transfer.wait
    wait_event = Transfer.wait_event
    finish = Transfer.finish
    stop = Transfer.stop

    @staticmethod
    def lines(agent, kind=None):
        """The agent's JSON stdout lines (interval, switch, summary), of `kind` when given."""
        import json
        out = []
        for raw in agent.output().splitlines():
            try:
                o = json.loads(raw)
            except ValueError:
                continue
            if isinstance(o, dict) and (kind is None or o.get("event") == kind):
                out.append(o)
        return out

    def summary(self, agent=None):
        """The receiver's (default) `summary` line: bytes, seconds, mbit_s, max_gap_ms,
        switch_gaps_ms."""
        found = self.lines(agent or self.receiver, "summary")
        if not found:
            raise self.fail(f"{(agent or self.receiver).name}: no perf summary")
        return found[-1]
