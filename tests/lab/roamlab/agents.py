"""`roam ice` agents in the lab: start one in a host against the lab's stack, follow its
JSON-lines event log, wait for events, and stop it.

    stack = start_ice_stack(lab)                      # coturn also listening on IPv6 for STUN
    bob = IceAgent(lab, "bob", stack)
    bob.wait_event("signaling", state="connected")
    alice = IceAgent(lab, "alice", stack, connect="bob", metered=["cell"])
    alice.wait(lambda e: is_selected(e, kind="direct"), 15, "a direct pair selected")
    alice.stop()

Every event is a dict with `ts` (Unix seconds, the lab's and the agent's shared clock), `t_ms`
(milliseconds since the agent started, monotonic) and `event`. Waiting methods raise
AgentError, whose message carries the agent's command line, exit status, its last events and
its stderr: the lab's directory is removed at teardown, so failure messages hold the logs.
With ROAMLAB_KEEP_LOGS=DIR every agent's event log and stderr are also copied into DIR when
it stops or its logs are dumped into a failure message.
"""

import ipaddress
import json
import os
import shutil
import subprocess
import time

from .lab import LabError, binary
from .services import Coturn, Redis, RoamRelay, Signaling, Stack, SIGNALING_PORT

# relay_reason values meaning "a direct path cannot work here" (selection_policy.h diagnose()).
BLOCKED_REASONS = ("direct-blocked", "direct-blocked-no-ipv6")
POLL_S = 0.02
STOP_GRACE_S = 5.0


class AgentError(AssertionError):
    """An agent did not do what a test waited for (AssertionError: pytest shows the message)."""


def _ice_help():
    """(exit status, text) of `roam ice --help`; LabError when roam is not built."""
    r = subprocess.run([binary("roam"), "ice", "--help"], capture_output=True, text=True,
                       timeout=10)
    return r.returncode, r.stdout


def ice_unavailable():
    """None when `roam ice` exists in the build, else the reason (missing binary or an agent
    built without the `ice` subcommand)."""
    try:
        code, text = _ice_help()
    except LabError as e:
        return str(e)
    # Without the subcommand, CLI11 prints the top-level help (exit 0): look for its options.
    if code != 0 or "--signaling" not in text:
        return f"{binary('roam')} has no `ice` subcommand yet (`roam ice --help` exit {code})"
    return None


def ice_supports(option):
    """Whether `roam ice --help` lists `option` (e.g. "--traffic-interval")."""
    try:
        return option in _ice_help()[1]
    except LabError:
        return False


def start_ice_stack(lab, signaling=1, pool_target=10, wait_grants=True):
    """services.start_stack() with coturn listening on the cloud's first IPv6 address too, so
    agents get server-reflexive candidates of both families from it. Waits (by default) until
    sessions carry reservation tokens. Returns a services.Stack."""
    redis = Redis(lab)
    coturn = Coturn(lab, extra=(f"--listening-ip={lab.cloud(6, 0)}",
                                f"--redis-statsdb=ip={redis.ip} dbname=0 port={redis.port} "
                                f"connect_timeout=30"))
    relay = RoamRelay(lab, coturn, redis, pool_target=pool_target)
    n = len(lab.plan.cloud4)
    instances = [Signaling(lab, redis, coturn.secret, ip=lab.cloud(4, k % n),
                           port=SIGNALING_PORT + k // n, instance=f"sig-{k + 1}")
                 for k in range(signaling)]
    stack = Stack(coturn, redis, relay, instances)
    if wait_grants:
        stack.wait_relay_grants()
    return stack


def stun_servers(lab, stack):
    """--stun arguments: the stack's coturn on IPv4 and IPv6."""
    return [f"{stack.coturn.ip}:{stack.coturn.port}", f"[{lab.cloud(6, 0)}]:{stack.coturn.port}"]


# ---- event helpers ------------------------------------------------------------------------

def split_endpoint(endpoint):
    """("ip", port) of "ip:port" or "[ip6]:port"."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def family(endpoint):
    """4 or 6 for an "ip:port" / "[ip6]:port" string (None for a missing one)."""
    if not endpoint:
        return None
    return ipaddress.ip_address(split_endpoint(endpoint)[0]).version


def matches(event, name=None, **fields):
    return ((name is None or event.get("event") == name)
            and all(event.get(k) == v for k, v in fields.items()))


def is_valid_pair(event, **fields):
    """A `pair` event reporting a valid pair (state succeeded), with the given fields."""
    return matches(event, "pair", state="succeeded", **fields)


def is_selected(event, **fields):
    return matches(event, "selected", **fields)


def compact(event):
    """One short line for failure messages."""
    return json.dumps(event, separators=(",", ":"))


class IceAgent:
    """One `roam ice` process in a lab host, its event log in the lab's directory."""

    def __init__(self, lab, node, stack, peer=None, *, connect=None, stun=None, interfaces=(),
                 metered=(), duration=None, stats_interval=None, traffic_ms=None, urls=None,
                 token=None, extra=(), name=None):
        argv = [binary("roam"), "ice"]
        if connect:
            argv += ["--connect", connect]
        if duration is not None:
            argv += ["--duration", str(duration)]
        if traffic_ms is not None:    # request/answer probes on the selected pair: data liveness
            argv += ["--traffic-interval", str(traffic_ms)]
        self._launch(lab, node, stack, peer, argv, "--signaling", stun=stun, interfaces=interfaces,
                     metered=metered, stats_interval=stats_interval, urls=urls, token=token,
                     extra=extra, name=name, kind="ice")

    def _launch(self, lab, node, stack, peer, argv, url_flag, *, stun, interfaces, metered,
                stats_interval, urls, token, extra, name, kind, stdout=None):
        self.lab, self.node, self.stack = lab, node, stack
        self.peer = peer or node
        self.name = name or f"{self.peer}@{node}"
        signaling = stack.signaling[0]
        self.token = token if token is not None else signaling.token(self.peer)
        self.events_path = os.path.join(lab.dir,
                                        f"{kind}-{node}-{self.peer}-{time.time_ns()}.jsonl")
        for url in urls or [s.url for s in stack.signaling]:
            argv += [url_flag, url]
        argv += ["--ca", signaling.cert, "--token", self.token, "--events", self.events_path]
        for server in (stun_servers(lab, stack) if stun is None else stun):
            argv += ["--stun", server]
        for iface in interfaces:
            argv += ["--interface", iface]
        for iface in metered:
            argv += ["--metered", iface]
        if stats_interval is not None:
            argv += ["--stats-interval", str(stats_interval)]
        argv += list(extra)
        self.argv = argv
        self.events = []        # every parsed event, in log order
        self.bad_lines = []     # lines that are not JSON objects with ts/t_ms/event
        self._offset = 0
        self._partial = b""
        self.started_at = time.time()
        self.process = lab.popen(node, argv, name=f"roam-{kind}-{self.peer}", stdout=stdout)
        self.returncode = None

    # -- the log ---------------------------------------------------------------------------
    def poll(self):
        """Reads what the agent appended since the last call; returns the new events."""
        try:
            with open(self.events_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()       # an incomplete last line waits for its end
        new = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                self.bad_lines.append(raw.decode(errors="replace"))
                continue
            if not (isinstance(event, dict) and isinstance(event.get("event"), str)
                    and isinstance(event.get("ts"), (int, float))
                    and isinstance(event.get("t_ms"), (int, float))):
                self.bad_lines.append(raw.decode(errors="replace"))
                continue
            new.append(event)
        self.events.extend(new)
        return new

    def mark(self):
        """Index of the next event: pass as `since` to wait only for later events."""
        self.poll()
        return len(self.events)

    def all(self, name=None, pred=None, since=0, **fields):
        self.poll()
        return [e for e in self.events[since:]
                if matches(e, name, **fields) and (pred is None or pred(e))]

    def first(self, name=None, pred=None, since=0, **fields):
        found = self.all(name, pred, since, **fields)
        return found[0] if found else None

    def last(self, name=None, pred=None, since=0, **fields):
        found = self.all(name, pred, since, **fields)
        return found[-1] if found else None

    def wait(self, pred, timeout, what, since=0):
        """The first event from index `since` on for which pred(event) holds, waiting up to
        `timeout` seconds; AgentError (with the logs) on timeout or when the agent exits."""
        deadline = time.monotonic() + timeout
        checked = since
        while True:
            self.poll()
            for event in self.events[checked:]:
                if pred(event):
                    return event
            checked = max(checked, len(self.events))
            if not self.alive():
                self.poll()
                for event in self.events[checked:]:
                    if pred(event):
                        return event
                raise AgentError(f"{self.name} exited before {what}\n{self.dump()}")
            if time.monotonic() > deadline:
                raise AgentError(f"{self.name}: no {what} within {timeout} s\n{self.dump()}")
            time.sleep(POLL_S)

    def wait_event(self, name, timeout=10, pred=None, since=0, **fields):
        what = f"`{name}` event" + (f" with {fields}" if fields else "")
        return self.wait(lambda e: matches(e, name, **fields) and (pred is None or pred(e)),
                         timeout, what, since)

    def wait_until(self, condition, timeout, what):
        """Polls until condition(self) is truthy (its value is returned)."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            value = condition(self)
            if value:
                return value
            if not self.alive():
                raise AgentError(f"{self.name} exited before {what}\n{self.dump()}")
            if time.monotonic() > deadline:
                raise AgentError(f"{self.name}: no {what} within {timeout} s\n{self.dump()}")
            time.sleep(POLL_S)

    # -- what the log says -----------------------------------------------------------------
    def session(self):
        return self.first("session")

    def selected(self):
        """The latest `selected` event (None before the first)."""
        return self.last("selected")

    def selected_kind(self):
        s = self.selected()
        return s["kind"] if s else None

    def relay_reason(self):
        """The latest "still relayed" reason (from `relay_reason` or `selected` events)."""
        self.poll()
        for e in reversed(self.events):
            if e["event"] == "relay_reason":
                return e["reason"]
            if e["event"] == "selected" and "relay_reason" in e:
                return e["relay_reason"]
        return None

    def pairs(self, until=None):
        """pair id -> its latest `pair` event (with ts <= until when given)."""
        state = {}
        for e in self.all("pair"):
            if until is None or e["ts"] <= until:
                state[e["pair"]] = e
        return state

    def valid_pairs(self, until=None, **fields):
        """The latest events of the pairs that are valid (succeeded, not removed)."""
        return [e for e in self.pairs(until).values()
                if e["state"] == "succeeded" and not e.get("removed")
                and all(e.get(k) == v for k, v in fields.items())]

    def since_session_ms(self, event):
        """Milliseconds from this agent's `session` event to `event` (monotonic t_ms)."""
        session = self.session()
        if session is None or event is None:
            return None
        return event["t_ms"] - session["t_ms"]

    # -- process ---------------------------------------------------------------------------
    def alive(self):
        return self.process.alive()

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM (SIGKILL after `grace` s); returns the exit status and reads the rest of
        the log."""
        if self.returncode is None:
            self.returncode = self.process.stop(grace)
            self.poll()
            self._keep()
        return self.returncode

    def wait_exit(self, timeout):
        """Waits for the agent to exit on its own; returns the exit status (None if it is
        still running after `timeout`)."""
        try:
            self.returncode = self.process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.poll()
        self._keep()
        return self.returncode

    def stderr(self):
        return self.process.log()

    def _keep(self):
        keep = os.environ.get("ROAMLAB_KEEP_LOGS")
        if not keep:
            return
        os.makedirs(keep, exist_ok=True)
        base = os.path.join(keep, f"{self.lab.run_id}-{os.path.basename(self.events_path)}")
        if os.path.exists(self.events_path):
            shutil.copyfile(self.events_path, base)
        with open(base.replace(".jsonl", ".stderr"), "w") as f:
            f.write(self.stderr())

    def dump(self, events=60, stderr_chars=4000):
        """The agent's command line (token elided), exit status, last events (periodic stats
        left out but the last one) and the tail of its stderr."""
        self.poll()
        self._keep()
        argv = ["<token>" if a == self.token else a for a in self.argv]
        status = self.process.proc.poll()
        shown = [e for e in self.events if e["event"] != "stats"]
        stats = [e for e in self.events if e["event"] == "stats"]
        lines = [f"--- {self.name} in {self.node}: {' '.join(argv)}",
                 f"--- exit status: {'running' if status is None else status}; "
                 f"{len(self.events)} events ({len(stats)} stats), "
                 f"{len(self.bad_lines)} malformed lines"]
        if len(shown) > events:
            lines.append(f"... {len(shown) - events} earlier events")
        lines += [compact(e) for e in shown[-events:]]
        if stats:
            lines.append("last stats: " + compact(stats[-1]))
        for raw in self.bad_lines[-5:]:
            lines.append("malformed: " + raw[:300])
        err = self.stderr()
        lines.append(f"--- stderr ({len(err)} chars):")
        lines.append(err[-stderr_chars:])
        return "\n".join(lines)


def dump_all(*agents):
    return "\n".join(a.dump() for a in agents)


def start_pair(lab, stack, caller="alice", callee="bob", caller_opts=None, callee_opts=None,
               timeout=10):
    """Starts the callee (waiting until its signaling is connected), then the caller with
    --connect callee; waits for both `session` events. Returns (caller, callee)."""
    b = IceAgent(lab, callee, stack, **(callee_opts or {}))
    b.wait_event("signaling", timeout, state="connected")
    a = IceAgent(lab, caller, stack, connect=callee, **(caller_opts or {}))
    try:
        a.wait_event("session", timeout)
        b.wait_event("session", timeout)
    except AgentError as e:
        raise AgentError(f"{e}\n{b.dump()}") from None
    return a, b


class SessionAgent(IceAgent):
    """A session command (`roam send`, `recv`, `perf`, `pipe`) in a lab host: the same event
    log helpers as IceAgent, plus its standard output (`output()`).

        bob = SessionAgent(lab, "bob", stack, "recv", ["--once", "--out", outdir])
        alice = SessionAgent(lab, "alice", stack, "send", [path], to="bob", metered=["cell"])
        assert alice.wait_exit(60) == 0
    """

    def __init__(self, lab, node, stack, command, args=(), peer=None, *, to=None, stun=None,
                 interfaces=(), metered=(), stats_interval=None, urls=None, token=None,
                 extra=(), name=None):
        argv = [binary("roam"), command] + list(args)
        if to:
            argv += ["--to", to]
        self.stdout_path = os.path.join(lab.dir, f"{command}-{node}-{time.time_ns()}.out")
        self._stdout = open(self.stdout_path, "wb")
        self._launch(lab, node, stack, peer, argv, "--signal", stun=stun, interfaces=interfaces,
                     metered=metered, stats_interval=stats_interval, urls=urls, token=token,
                     extra=extra, name=name, kind=command, stdout=self._stdout)

    def output(self):
        """What the command printed on stdout so far."""
        with open(self.stdout_path, "rb") as f:
            return f.read().decode(errors="replace")

    def dump(self, events=60, stderr_chars=4000):
        return super().dump(events, stderr_chars) + "\n--- stdout:\n" + self.output()[-2000:]


def session_unavailable():
    """None when the roam binary has the session commands (send/recv/perf), else why not."""
    try:
        r = subprocess.run([binary("roam"), "send", "--help"], capture_output=True, text=True,
                           timeout=10)
    except LabError as e:
        return str(e)
    if r.returncode != 0 or "--to" not in r.stdout:
        return f"{binary('roam')} has no `send` subcommand (exit {r.returncode})"
    return None
