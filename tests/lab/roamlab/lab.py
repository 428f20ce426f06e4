"""Lab: a topology brought up in network namespaces, and always torn down.

    with Lab(topologies.get("two-nats")) as lab:
        lab.run("alice", ["ip", "addr"])
        p = lab.popen("cloud", ["python3", "-m", "http.server"])
        lab.link_down("alice", "wifi")

Everything a lab creates is named with a per-run prefix "rl<pid>x<hex4>-" and lives inside
the lab's own namespaces: veth pairs are created directly between lab namespaces (never in the
machine's namespace), so no lab packet can reach a real interface. Teardown kills the lab's
processes and deletes its namespaces, which removes their links, addresses, routes and
iptables rules with them. It runs on normal exit, on exceptions, on KeyboardInterrupt and on
SIGTERM/SIGHUP (handlers installed while the lab is up). A SIGKILLed run cannot clean up: its
children die with it (PR_SET_PDEATHSIG) and the next Lab start (or `sweep()`) removes its
namespaces, found by prefix, once its run lock (/run/roamlab/<run>.lock, flock) is free.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

from . import topology as T

LOCK_DIR = "/run/roamlab"
TMP_ROOT = "/tmp"
NETNS_DIR = "/run/netns"
RUN_RE = re.compile(r"^rl(\d+x[0-9a-f]{4})-")
NATD_QUEUE = 100          # NFQUEUE number of the NAT daemon inside a router namespace
BLACKHOLE_QUEUE = 65535   # an NFQUEUE queue nobody binds: a silent drop (see blackhole())
IMPAIR_QUEUE_BASE = 1     # impairment queues count up from here, per namespace
HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000


def subscriber_firewall(router: T.Router):
    """Whether the router's IPv6 firewall also stands between its own subscribers."""
    if router.firewall6_subscribers is not None:
        return router.firewall6_subscribers
    return router.isolate and router.firewall6


class LabError(RuntimeError):
    pass


class LabInterrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM/SIGHUP arrives while a lab is up."""

    def __init__(self, signum):
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.signum = signum


_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # The child dies with the lab process even on SIGKILL (it is kept across `ip netns exec`'s
    # execve). Runs in the forked child before exec.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in_namespace(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """A socket created inside network namespace `ns` (a name under /run/netns). A socket
    belongs to the namespace it was created in for good: bind, connect, send and receive act
    there, whichever namespace the calling thread is in later. Only the calling thread enters
    `ns`, for the socket() call, and always returns to its own namespace."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return socket.socket(family, type, proto)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


REALTIME_PRIORITY = 10


def realtime_argv(argv):
    """argv run under SCHED_FIFO (chrt), when chrt exists and may be used here.

    The impairment tool and the measuring probes hold or timestamp packets to the
    sub-millisecond; under ordinary scheduling, other work on the machine (a compile on both
    cores) delays them by milliseconds and the lab measures that instead of its own link.
    Real-time priority keeps them ahead of ordinary processes; the kernel's RT throttling
    (sched_rt_runtime_us) still leaves the machine 5 % even if one of them spun."""
    if _realtime_ok():
        return ["chrt", "-f", str(REALTIME_PRIORITY)] + list(argv)
    return list(argv)


_REALTIME = []


def _realtime_ok():
    if not _REALTIME:
        chrt = shutil.which("chrt")
        ok = bool(chrt) and subprocess.run([chrt, "-f", str(REALTIME_PRIORITY), "true"],
                                           capture_output=True).returncode == 0
        _REALTIME.append(ok)
    return _REALTIME[0]


def _sh(argv, check=True, timeout=60, input=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def bin_dir():
    return os.environ.get("ROAM_BIN_DIR",
                          os.path.normpath(os.path.join(HERE, "..", "..", "..", "build", "bin")))


def binary(name):
    """Path of a project binary (ROAM_BIN_DIR, else build/bin); LabError when not built."""
    path = os.path.join(bin_dir(), name)
    if not os.access(path, os.X_OK):
        raise LabError(f"{path} not built (./run build, or set ROAM_BIN_DIR)")
    return path


def can_run():
    """None when labs can run here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "ip6tables", "iptables-restore", "conntrack"):
        if not shutil.which(tool):
            return f"{tool} not installed (./run deps)"
    name = f"rl{os.getpid()}x{secrets.token_hex(2)}-probe"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create network namespaces: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


# ---- leftovers of dead runs --------------------------------------------------------------

def _lock_is_free(run_id):
    """True when no live process holds the run's lock (or it has none: a dead run)."""
    path = os.path.join(LOCK_DIR, f"{run_id}.lock")
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    finally:
        os.close(fd)


def list_namespaces():
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def namespace_pids(ns):
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def _kill_namespace(ns):
    for _ in range(3):
        pids = namespace_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def sweep(log=None):
    """Removes namespaces, processes, temp dirs and locks of lab runs that are dead.

    Only names matching rl<pid>x<hex4>- are considered, and only when the run's lock is free,
    so live runs (parallel tests) are never touched. Returns the run ids removed.
    """
    dead = {}
    for ns in list_namespaces():
        m = RUN_RE.match(ns)
        if m:
            dead.setdefault(m.group(1), []).append(ns)
    for entry in (os.listdir(LOCK_DIR) if os.path.isdir(LOCK_DIR) else []):
        if entry.endswith(".lock") and RUN_RE.match("rl" + entry[:-5] + "-"):
            dead.setdefault(entry[:-5], [])
    for entry in os.listdir(TMP_ROOT):
        if entry.startswith("roamlab-") and RUN_RE.match("rl" + entry[8:] + "-"):
            dead.setdefault(entry[8:], [])
    removed = []
    for run_id, namespaces in sorted(dead.items()):
        if not _lock_is_free(run_id):
            continue
        for ns in namespaces:
            _kill_namespace(ns)
        shutil.rmtree(os.path.join(TMP_ROOT, f"roamlab-{run_id}"), ignore_errors=True)
        try:
            os.unlink(os.path.join(LOCK_DIR, f"{run_id}.lock"))
        except FileNotFoundError:
            pass
        removed.append(run_id)
        if log:
            what = ", ".join(namespaces) or "files only"
            log(f"roamlab: removed leftovers of dead run {run_id}: {what}")
    return removed


# ---- processes ---------------------------------------------------------------------------

class Process:
    """A process inside a lab namespace, in its own session (so its whole group is killed)."""

    def __init__(self, lab, node, argv, name, log_path, stdout=None, env=None):
        self.lab, self.node, self.argv, self.name = lab, node, list(argv), name
        self.log_path = log_path
        self.env = env
        self._stdout = stdout
        self.proc = None
        self.start()

    def start(self):
        if self.proc and self.proc.poll() is None:
            raise LabError(f"{self.name} is already running")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.lab.ns(self.node)] + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._stdout if self._stdout is not None else log,
                stderr=log, start_new_session=True, preexec_fn=_child_setup,
                env=self.env)
        finally:
            log.close()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """SIGKILL, like a crash; returns the exit status."""
        self.signal(signal.SIGKILL)
        return self.proc.wait(10) if self.proc else None

    def stop(self, grace=3.0):
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_line(self, text, timeout=10.0):
        """Reads stdout (when piped) until a line containing `text`; LabError on timeout/exit."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            if text.encode() in buf:
                return buf.decode(errors="replace")
        raise LabError(f"{self.name} in {self.node} did not print {text!r} "
                       f"(exit {self.proc.poll()}):\n{buf.decode(errors='replace')}{self.log()}")


class Impairment:
    """User-space impairment of one direction of an interface (roam-lab-impair on NFQUEUE)."""

    def __init__(self, lab, node, iface, direction, spec, queue, process, rules, stats_path):
        self.lab, self.node, self.iface, self.direction = lab, node, iface, direction
        self.spec, self.queue, self.process, self.rules = spec, queue, process, rules
        self.stats_path = stats_path
        self.final = None

    def stats(self):
        """Counters of the tool: received, delivered, dropped_loss, dropped_limit, held."""
        if self.final is not None:
            return self.final
        try:
            before = os.stat(self.stats_path).st_mtime_ns
        except FileNotFoundError:
            before = 0
        self.process.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                if os.stat(self.stats_path).st_mtime_ns != before:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        with open(self.stats_path) as f:
            return json.load(f)

    def remove(self):
        if self.final is not None:
            return self.final
        for family, table, spec in self.rules:
            self.lab._iptables(self.node, family, ["-t", table, "-D"] + spec, check=False)
        self.process.stop()
        try:
            with open(self.stats_path) as f:
                self.final = json.load(f)
        except (OSError, ValueError):
            self.final = {}
        self.lab._impairments.remove(self)
        return self.final


class Fault:
    """A reversible fault (blackhole); `clear()` undoes it. Usable as a context manager.
    `dropped()` counts the packets its rules dropped so far (final count after clear())."""

    def __init__(self, lab, description, undo, counter=None):
        self.lab, self.description, self._undo = lab, description, undo
        self._counter = counter
        self._final = None
        self.active = True

    def dropped(self):
        if self._final is not None:
            return self._final
        return self._counter() if self._counter else None

    def clear(self):
        if self.active:
            if self._counter:
                try:
                    self._final = self._counter()
                except LabError:
                    pass
            self._undo()
            self.active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.clear()


# ---- the lab ----------------------------------------------------------------------------

class Lab:
    def __init__(self, topology: T.Topology, *, run_id=None, verbose=False):
        self.topology = topology
        self.plan = T.plan(topology)
        self.run_id = run_id or f"{os.getpid()}x{secrets.token_hex(2)}"
        if not RUN_RE.match(f"rl{self.run_id}-"):
            raise ValueError(f"run id {self.run_id!r} must look like <pid>x<4 hex digits>")
        self.prefix = f"rl{self.run_id}-"
        self.dir = os.path.join(TMP_ROOT, f"roamlab-{self.run_id}")
        self.verbose = verbose
        self._lock_fd = None
        self._created = []          # namespaces, creation order
        self._processes = []        # Process
        self._impairments = []
        self._faults = []
        self._fault_seq = 0
        self._queues = {}           # node -> next NFQUEUE number
        self._natd = {}             # router -> (Process, control path)
        self._old_handlers = {}
        self._closed = False
        self._up = False

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        reason = None if os.geteuid() == 0 else "needs root"
        if reason:
            raise LabError(f"cannot start a lab: {reason}")
        sweep(log=self._log if self.verbose else None)
        os.makedirs(LOCK_DIR, exist_ok=True)
        self._lock_fd = os.open(os.path.join(LOCK_DIR, f"{self.run_id}.lock"),
                                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        os.makedirs(self.dir, exist_ok=True)
        self._install_signal_handlers()
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self._up = True
        return self

    def close(self):
        """Tears everything down; safe to call twice. Ignores SIGINT/SIGTERM meanwhile."""
        if self._closed:
            return
        self._closed = True
        blocked = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                blocked[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            for imp in list(self._impairments):
                try:
                    imp.process.stop(grace=1.0)
                except Exception:
                    pass
            for p in reversed(self._processes):
                try:
                    p.stop(grace=2.0)
                except Exception:
                    pass
            for ns in reversed(self._created):
                _kill_namespace(ns)
            leftovers = [ns for ns in list_namespaces() if ns.startswith(self.prefix)]
            for ns in leftovers:
                _kill_namespace(ns)
            shutil.rmtree(self.dir, ignore_errors=True)
            if self._lock_fd is not None:
                try:
                    os.unlink(os.path.join(LOCK_DIR, f"{self.run_id}.lock"))
                except FileNotFoundError:
                    pass
                os.close(self._lock_fd)
                self._lock_fd = None
        finally:
            try:
                atexit.unregister(self.close)
            except Exception:
                pass
            if threading.current_thread() is threading.main_thread():
                for sig, old in blocked.items():
                    signal.signal(sig, old)
                self._restore_signal_handlers()

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            raise LabInterrupted(signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, handler)
        # SIGINT raises KeyboardInterrupt already unless someone reset it to the default
        # action (which would kill us without teardown); an ignored SIGINT stays ignored.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, None):
            self._old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT,
                                                              signal.default_int_handler)

    def _restore_signal_handlers(self):
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old_handlers.clear()

    def _log(self, msg):
        print(msg, flush=True)

    # -- naming and addresses ------------------------------------------------------------
    def ns(self, node):
        if node not in self.plan.kinds:
            raise KeyError(f"no node {node!r} in topology {self.topology.name!r}")
        return self.prefix + node

    @property
    def nodes(self):
        return list(self.plan.nodes)

    def addr(self, node, iface=None, family=4):
        """The address (string, no prefix length) of a node's interface (first one by default)."""
        a = self.plan.attachment(node, iface)
        return str((a.addr4 if family == 4 else a.addr6).ip)

    def interfaces(self, node):
        return [a.iface for a in self.plan.uplinks(node)]

    def external(self, router):
        """The router's WAN (public side) IPv4 address: the NAT's external address."""
        return self.addr(router, "wan")

    def cloud(self, family=4, index=0):
        return str((self.plan.cloud4 if family == 4 else self.plan.cloud6)[index])

    # -- commands in namespaces ---------------------------------------------------------
    def run(self, node, cmd, check=True, timeout=60, input=None, env=None):
        """Runs a command in the node's namespace; returns CompletedProcess (text).
        A string runs through sh -c. LabError (with stderr) on non-zero exit when check."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        full = ["ip", "netns", "exec", self.ns(node)] + argv
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input,
                           preexec_fn=_child_setup, env=env)
        if check and r.returncode != 0:
            raise LabError(f"[{node}] {' '.join(argv)} failed ({r.returncode}):\n"
                           f"{r.stdout}{r.stderr}")
        return r

    def popen(self, node, cmd, name=None, stdout=None, env=None):
        """Starts a tracked process in the node's namespace (killed at teardown). Its stderr
        (and stdout unless stdout=subprocess.PIPE) go to a log file in the lab's temp dir.
        Pipe stdout only for a process that prints little (e.g. "ready" for wait_line):
        nobody drains the pipe afterwards."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        name = name or os.path.basename(argv[0])
        log = os.path.join(self.dir, f"{node}.{name}.{len(self._processes)}.log")
        p = Process(self, node, argv, name, log, stdout=stdout, env=env)
        self._processes.append(p)
        return p

    def socket(self, node, family=4, type=socket.SOCK_STREAM, proto=0):
        """A socket of this test process that lives in the node's namespace (family 4 or 6, or
        an AF_* constant): connect/bind/send act there, e.g. a TCP or WebSocket client in a
        NATed host driven by asyncio in the test itself. The caller closes it."""
        if family in (4, 6):
            family = socket.AF_INET if family == 4 else socket.AF_INET6
        return socket_in_namespace(self.ns(node), family, type, proto)

    def python(self, node, script, *args, timeout=60, check=True, realtime=False):
        """Runs one of roamlab's scripts (e.g. "probe.py") in the node; returns its JSON output.
        realtime=True runs it under SCHED_FIFO (realtime_argv()), for timing measurements."""
        argv = [PYTHON, os.path.join(HERE, script)] + [str(a) for a in args]
        r = self.run(node, realtime_argv(argv) if realtime else argv, timeout=timeout,
                     check=check)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise LabError(f"[{node}] {script} {' '.join(map(str, args))} printed no JSON "
                           f"(exit {r.returncode}):\n{r.stdout}{r.stderr}") from None

    def python_popen(self, node, script, *args, name=None, realtime=False):
        argv = [PYTHON, os.path.join(HERE, script)] + [str(a) for a in args]
        return self.popen(node, realtime_argv(argv) if realtime else argv,
                          name=name or script.replace(".py", ""), stdout=subprocess.PIPE)

    def _iptables(self, node, family, args, check=True):
        tool = "iptables" if family == 4 else "ip6tables"
        return self.run(node, [tool, "-w"] + args, check=check)

    def _restore(self, node, family, text):
        tool = "iptables-restore" if family == 4 else "ip6tables-restore"
        self.run(node, [tool, "--noflush", "-w"], input=text)

    def _ip_batch(self, node, lines, family=None):
        if not lines:
            return
        argv = ["ip", "-n", self.ns(node)] + (["-6"] if family == 6 else []) + ["-batch", "-"]
        r = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"[{node}] ip batch failed: {r.stderr.strip()}\n" + "\n".join(lines))

    # -- building ------------------------------------------------------------------------
    def _build(self):
        plan = self.plan
        for node in plan.nodes:
            _sh(["ip", "netns", "add", self.ns(node)])
            self._created.append(self.ns(node))
        for node in plan.nodes:
            self._sysctls(node)
        self._links()
        self._addresses_and_routes()
        self._wait_links_up()
        for r in self.topology.routers:
            self._router_rules(r)
        self._subscriber_firewalls()
        for r in self.topology.routers:
            if r.nat in T.DAEMON_NAT_KINDS:
                self._start_natd(r)
        for r in self.topology.routers:
            if r.wan_impair:
                egress, ingress = r.wan_impair
                self.impair(r.name, "wan", egress=egress, ingress=ingress)

    def _sysctls(self, node):
        kind = self.plan.kinds[node]
        s = [
            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
            "net.ipv6.conf.default.autoconf=0", "net.ipv6.conf.all.autoconf=0",
            "net.ipv6.conf.all.accept_redirects=0", "net.ipv6.conf.default.accept_redirects=0",
            "net.ipv4.conf.all.accept_redirects=0", "net.ipv4.conf.default.accept_redirects=0",
            "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
            "net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.default.keep_addr_on_down=1",
            # br_netfilter is built into this kernel: keep bridges pure layer 2 (a LAN's
            # host-to-host traffic must not meet the router's firewall).
            "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
        ]
        if kind in ("router", "core"):
            s += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                  "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0"]
        if kind == "router":
            r = self.topology.router(node)
            if r.udp_timeout:
                s += [f"net.netfilter.nf_conntrack_udp_timeout={r.udp_timeout}",
                      f"net.netfilter.nf_conntrack_udp_timeout_stream={r.udp_timeout}"]
        self.run(node, ["sysctl", "-qw"] + s)

    def _links(self):
        plan = self.plan
        lines = {n: ["link set lo up"] for n in plan.nodes}
        for bridge_owner in [T.INTERNET] + [r.name for r in self.topology.routers]:
            lines[bridge_owner].append("link add lan type bridge")
            lines[bridge_owner].append("link set lan up")
        for node in plan.nodes:
            self._ip_batch(node, lines[node])
        for a in plan.attachments:
            _sh(["ip", "-n", self.ns(a.router), "link", "add", a.port, "type", "veth", "peer",
                 "name", a.iface, "netns", self.ns(a.node)])
            cmds = [f"link set {a.port} master lan", f"link set {a.port} up",
                    f"link set {a.port} alias {a.node}:{a.iface}"]
            if a.isolated:
                cmds.append(f"link set dev {a.port} type bridge_slave isolated on")
            self._ip_batch(a.router, cmds)

    def _wait_links_up(self, timeout=10):
        """Waits until every interface set up is operationally up in every namespace.

        `ip link set up` returns before the kernel's linkwatch has seen the carrier: until then
        a veth's bridge port does not forward and its qdisc drops. Linkwatch runs under the
        RTNL lock, which the asynchronous cleanup of a previous lab's namespaces can hold for a
        while. A first ARP request lost that way is retried only 1 s later. That is the likely
        (not confirmed) cause of a clean-clone CI run in which a fresh lab's host sent one
        packet and got none of 30 echoes back within 450 ms. It is not the whole story: the
        same loss was seen once more (2026-11-22) after this wait and after a request through
        the same gateway had passed (test_lab_faults reports the neighbour table if it recurs)."""
        deadline = time.monotonic() + timeout
        while True:
            pending = []
            for node in self.plan.nodes:
                links = json.loads(_sh(["ip", "-n", self.ns(node), "-j", "link", "show"]).stdout)
                pending += [f"{node}:{link['ifname']} ({link.get('operstate')})" for link in links
                            if "UP" in link.get("flags", [])
                            and link.get("operstate") not in ("UP", "UNKNOWN")]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"interfaces still not up after {timeout} s: {', '.join(pending)}")
            time.sleep(0.02)

    def _uplink_cmds(self, a, index):
        """ip commands (generic, ipv6) configuring one uplink of a host or router."""
        kind = self.plan.kinds[a.node]
        table = 100 + index
        metric = 100 * (index + 1)
        onlink = " onlink" if a.isolated else ""
        v4 = [f"addr replace {a.addr4} dev {a.iface}", f"link set {a.iface} up"]
        v6 = [f"addr replace {a.addr6} dev {a.iface} nodad"]
        v4.append(f"route replace default via {a.gw4} dev {a.iface}{onlink} metric {metric}")
        v6.append(f"route replace default via {a.gw6} dev {a.iface}{onlink} metric {metric}")
        if kind == "host":
            # Source routing: a socket bound to this uplink's address leaves through it, as
            # on a phone whose apps bind to Wi-Fi or cellular explicitly.
            v4.append(f"route replace default via {a.gw4} dev {a.iface}{onlink} table {table}")
            v6.append(f"route replace default via {a.gw6} dev {a.iface}{onlink} table {table}")
            if not a.isolated:
                v4.append(f"route replace {a.addr4.network} dev {a.iface} table {table}")
                v6.append(f"route replace {a.addr6.network} dev {a.iface} table {table}")
            # While the interface is down its routes are gone; the lookup must then fail
            # (ENETUNREACH for a socket bound to the address) instead of falling through to
            # the main table and leaving by another uplink with a foreign source address.
            v4.append(f"route replace unreachable default metric 4000 table {table}")
            v6.append(f"route replace unreachable default metric 4000 table {table}")
        return v4, v6

    def _rule_cmds(self, a, index):
        table = 100 + index
        return ([f"rule add from {a.addr4.ip} table {table} pref {1000 + index}"],
                [f"rule add from {a.addr6.ip} table {table} pref {1000 + index}"])

    def _addresses_and_routes(self):
        plan = self.plan
        for node in plan.nodes:
            kind = plan.kinds[node]
            v4, v6 = [], []
            if kind in ("core", "router"):
                v4.append(f"addr add {plan.lan4[node]} dev lan")
                v6.append(f"addr add {plan.lan6[node]} dev lan nodad")
            if kind == "core":
                c4, c6 = T.CLOUD4, T.CLOUD6
                v4.append(f"addr add {c4.network_address + 1}/{c4.prefixlen} dev lan")
                v6.append(f"addr add {c6.network_address + 1}/{c6.prefixlen} dev lan nodad")
            if kind == "cloud":
                a = plan.attachment(node)
                v4 += [f"addr add {ip}/{T.CLOUD4.prefixlen} dev eth0" for ip in plan.cloud4]
                v6 += [f"addr add {ip}/{T.CLOUD6.prefixlen} dev eth0 nodad" for ip in plan.cloud6]
                v4 += ["link set eth0 up", f"route add default via {a.gw4} dev eth0"]
                v6 += [f"route add default via {a.gw6} dev eth0"]
            if kind in ("router", "host"):
                for index, a in enumerate(plan.uplinks(node)):
                    c4, c6 = self._uplink_cmds(a, index)
                    v4 += c4
                    v6 += c6
                    if kind == "host":
                        r4, r6 = self._rule_cmds(a, index)
                        v4 += r4
                        v6 += r6
            v4 += [f"route add {prefix} via {via}" for prefix, via in plan.routes4[node]]
            v6 += [f"route add {prefix} via {via}" for prefix, via in plan.routes6[node]]
            self._ip_batch(node, v4)
            self._ip_batch(node, v6, family=6)

    def _router_rules(self, r: T.Router):
        plan = self.plan
        v4 = {"filter": [], "nat": [], "mangle": []}
        v6 = {"filter": []}
        if r.nat is not None:
            # A NAT answers nothing unsolicited on its public side (silent drop, no ICMP).
            v4["filter"] += ["-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                             "-A INPUT -i wan -p icmp --icmp-type echo-request -j ACCEPT",
                             "-A INPUT -i wan -j DROP"]
        if r.nat in T.DAEMON_NAT_KINDS:
            v4["mangle"].append(f"-A FORWARD -i lan -o wan -p udp -m conntrack --ctstate NEW "
                                f"-j NFQUEUE --queue-num {NATD_QUEUE}")
            v4["nat"] += [":ROAMNAT_SNAT - [0:0]", ":ROAMNAT_DNAT - [0:0]",
                          "-A PREROUTING -i wan -p udp -j ROAMNAT_DNAT",
                          "-A POSTROUTING -o wan -p udp -j ROAMNAT_SNAT",
                          "-A POSTROUTING -o wan -j MASQUERADE"]
        elif r.nat == "symmetric":
            v4["nat"].append("-A POSTROUTING -o wan -j MASQUERADE --random-fully")
        elif r.nat == "masquerade":
            v4["nat"].append("-A POSTROUTING -o wan -j MASQUERADE")
        if r.udp_allow is not None:
            v4["filter"] += self._udp_policy(T.expand_allow(r.udp_allow, plan, 4))
        if r.udp_allow6 is not None:
            v6["filter"] += self._udp_policy(T.expand_allow(r.udp_allow6, plan, 6))
        if r.firewall6:
            # RFC 6092-style stateful firewall: anything out, only replies in.
            v6["filter"] += ["-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                             "-A FORWARD -m conntrack --ctstate INVALID -j DROP",
                             "-A FORWARD -i lan -j ACCEPT",
                             "-A FORWARD -j DROP"]
        for family, tables in ((4, v4), (6, v6)):
            text = ""
            for table, rules in tables.items():
                if rules:
                    text += f"*{table}\n" + "\n".join(rules) + "\nCOMMIT\n"
            if text:
                self._restore(r.name, family, text)

    def _subscriber_firewalls(self):
        """The IPv6 firewall between subscribers of one router (T.Router.firewall6_subscribers).

        Subscriber-to-subscriber packets enter and leave the router on its LAN, so its FORWARD
        rules cannot tell them apart from outbound traffic, and one conntrack table cannot hold
        two independent per-subscriber states for one packet (alice->bob must open alice's
        pinhole even while bob's firewall still drops it). Each subscriber host therefore
        carries its own share of the carrier's firewall: chain ROAM_FW6_<iface> in its INPUT,
        applied only to packets from the same router's other subscribers (its LAN prefix,
        minus the router itself): replies to what the host sent pass, everything else dies.
        """
        for a in self.plan.attachments:
            if self.plan.kinds[a.node] != "host" or a.router == T.INTERNET:
                continue
            r = self.topology.router(a.router)
            if not subscriber_firewall(r):
                continue
            chain = f"ROAM_FW6_{a.iface}"
            prefix = self.plan.lan6[a.router].network
            rules = [f":{chain} - [0:0]",
                     f"-A INPUT -i {a.iface} -s {prefix} -j {chain}",
                     f"-A {chain} -s {a.gw6} -j RETURN",
                     f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
                     f"-A {chain} -p ipv6-icmp --icmpv6-type neighbour-solicitation -j RETURN",
                     f"-A {chain} -p ipv6-icmp --icmpv6-type neighbour-advertisement -j RETURN",
                     f"-A {chain} -j DROP"]
            self._restore(a.node, 6, "*filter\n" + "\n".join(rules) + "\nCOMMIT\n")

    def subscriber_firewall_drops(self, host, iface=None):
        """Packets from other subscribers that the host's share of its carrier's IPv6
        firewall dropped (0 when there is none)."""
        a = self.plan.attachment(host, iface)
        r = self._iptables(host, 6, ["-L", f"ROAM_FW6_{a.iface}", "-v", "-x", "-n"], check=False)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) > 2 and f[2] == "DROP":
                return int(f[0])
        return 0

    @staticmethod
    def _udp_policy(allowed):
        rules = [":ROAM_UDP_POLICY - [0:0]", "-I FORWARD 1 -p udp -j ROAM_UDP_POLICY"]
        for net in allowed:
            rules.append(f"-A ROAM_UDP_POLICY -i lan -d {net} -j RETURN")
            rules.append(f"-A ROAM_UDP_POLICY -o lan -s {net} -j RETURN")
        rules.append("-A ROAM_UDP_POLICY -j DROP")
        return rules

    def _start_natd(self, r: T.Router):
        control = os.path.join(self.dir, f"natd-{r.name}.sock")
        filtering = T.NAT_KINDS[r.nat][1]
        p = self.popen(r.name, [PYTHON, os.path.join(HERE, "natd.py"), "--filtering", filtering,
                                "--wan", "wan", "--ext", self.external(r.name),
                                "--queue", str(NATD_QUEUE), "--control", control],
                       name="natd", stdout=subprocess.PIPE)
        p.wait_line("ready")
        self._natd[r.name] = (p, control)

    def _natd_call(self, router, command):
        if router not in self._natd:
            raise LabError(f"router {router!r} has no NAT daemon (nat kind "
                           f"{self.topology.router(router).nat!r})")
        _, path = self._natd[router]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    # -- observation ---------------------------------------------------------------------
    def counters(self, node, iface):
        """Interface statistics: rx/tx packets and bytes, drops (kernel counters)."""
        r = self.run(node, ["ip", "-s", "-j", "link", "show", "dev", iface])
        stats = json.loads(r.stdout)[0]["stats64"]
        return {"rx_packets": stats["rx"]["packets"], "tx_packets": stats["tx"]["packets"],
                "rx_bytes": stats["rx"]["bytes"], "tx_bytes": stats["tx"]["bytes"],
                "rx_dropped": stats["rx"]["dropped"], "tx_dropped": stats["tx"]["dropped"]}

    def udp_policy_drops(self, router, family=4):
        """Packets the router's carrier UDP policy dropped (0 when it has none)."""
        r = self._iptables(router, family, ["-L", "ROAM_UDP_POLICY", "-v", "-x", "-n"],
                           check=False)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) > 2 and f[2] == "DROP":
                return int(f[0])
        return 0

    def conntrack(self, router, proto="udp"):
        """The router's conntrack entries as lines (conntrack -L)."""
        return self.run(router, ["conntrack", "-L", "-p", proto], check=False).stdout.splitlines()

    def nat_status(self, router):
        """The NAT daemon's mappings: {"mappings": [{"internal", "external", "allowed"}], ...}."""
        return self._natd_call(router, "status")

    def capture(self, node, iface, path=None, bpf=""):
        """Starts tcpdump on one of the lab's interfaces; stop() the Process to finish."""
        path = path or os.path.join(self.dir, f"{node}-{iface}.pcap")
        # -Z root: Debian's tcpdump drops to user tcpdump, who may not write the lab's dir.
        argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root", "-i", iface, "-w", path]
        p = self.popen(node, argv + (bpf.split() if bpf else []), name="tcpdump")
        deadline = time.monotonic() + 5
        while "listening on" not in p.log():
            if not p.alive() or time.monotonic() > deadline:
                raise LabError(f"tcpdump on {node}:{iface} did not start:\n{p.log()}")
            time.sleep(0.02)
        p.pcap = path
        return p

    # -- faults --------------------------------------------------------------------------
    def link_down(self, node, iface):
        """Takes the interface down (the host sees it vanish: routes go, sockets get errors)."""
        self.run(node, ["ip", "link", "set", iface, "down"])

    def link_up(self, node, iface):
        """Brings the interface back with its addresses, routes and source rules."""
        uplinks = self.plan.uplinks(node)
        for index, a in enumerate(uplinks):
            if a.iface == iface:
                v4, v6 = self._uplink_cmds(a, index)
                self._ip_batch(node, v4)
                self._ip_batch(node, v6, family=6)
                return
        raise KeyError(f"{node!r} has no interface {iface!r}")

    def blackhole(self, node, iface=None, *, at="router", peer=None):
        """Silently drops the path through the node's uplink `iface` (its first by default):
        the interface stays up, sending succeeds, nothing arrives either way. Returns a Fault;
        clear() restores the path, dropped() counts the packets dropped.

        at="router": in the uplink's router (a dead backhaul). Packets from the node are
            dropped before conntrack (the NAT sees nothing), packets to it after NAT. Only
            routed traffic: hosts on the same LAN bridge still reach each other.
        at="host": in the node's own namespace, for everything on that interface, LAN peers
            included (a dead Wi-Fi link that still looks associated). Inbound: raw PREROUTING
            DROP. Outbound: mangle POSTROUTING NFQUEUE to a queue nobody listens on (no
            --queue-bypass), which the kernel frees while telling the sender the send went
            fine; a DROP in the host's own OUTPUT/POSTROUTING would fail every send with EPERM,
            a local signal. ARP and neighbour discovery keep working, so no "host unreachable"
            appears either.
        peer: only traffic between the node and this address (IPv4 or IPv6); at="router" it
            is the address the router sees, e.g. a cloud address or a peer's NAT mapping.
        """
        if at not in ("router", "host"):
            raise ValueError(f"at={at!r}: 'router' or 'host'")
        a = self.plan.attachment(node, iface)
        families = (4, 6)
        if peer is not None:
            peer = str(ipaddress.ip_address(peer))
            families = (ipaddress.ip_address(peer).version,)
        self._fault_seq += 1
        tag = f"roamlab-blackhole-{self._fault_seq}"
        comment = ["-m", "comment", "--comment", tag]
        nd = [["-p", "ipv6-icmp", "--icmpv6-type", t, "-j", "ACCEPT"]
              for t in ("neighbour-solicitation", "neighbour-advertisement")]
        specs = []          # (family, table, chain spec), in insertion order (-I)
        if at == "router":
            where = a.router
            for family in families:
                own = str((a.addr4 if family == 4 else a.addr6).ip)
                to_peer = ["-d", peer] if peer else []
                from_peer = ["-s", peer] if peer else []
                specs += [(family, "raw", ["PREROUTING", "-s", own] + to_peer + comment
                           + ["-j", "DROP"]),
                          (family, "filter", ["FORWARD", "-d", own] + from_peer + comment
                           + ["-j", "DROP"]),
                          (family, "filter", ["OUTPUT", "-d", own] + from_peer + comment
                           + ["-j", "DROP"])]
        else:
            where = node
            for family in families:
                inbound = ["-i", a.iface] + (["-s", peer] if peer else [])
                outbound = ["-o", a.iface] + (["-d", peer] if peer else [])
                specs += [(family, "raw", ["PREROUTING"] + inbound + comment + ["-j", "DROP"]),
                          (family, "mangle", ["POSTROUTING"] + outbound + comment
                           + ["-j", "NFQUEUE", "--queue-num", str(BLACKHOLE_QUEUE)])]
                if family == 6:   # inserted after, so they sit above the drops
                    specs += [(6, "raw", ["PREROUTING", "-i", a.iface] + rule) for rule in nd]
                    specs += [(6, "mangle", ["POSTROUTING", "-o", a.iface] + rule) for rule in nd]
        installed = []

        def undo():
            for family, table, spec in reversed(installed):
                self._iptables(where, family, ["-t", table, "-D"] + spec, check=False)

        try:
            for family, table, spec in specs:
                self._iptables(where, family, ["-t", table, "-I"] + spec)
                installed.append((family, table, spec))
        except BaseException:
            undo()
            raise

        def counter():
            total = 0
            for family in families:
                tool = "iptables-save" if family == 4 else "ip6tables-save"
                out = self.run(where, [tool, "-c"]).stdout
                for line in out.splitlines():
                    m = re.match(r"^\[(\d+):\d+\] .*--comment " + re.escape(tag) + r"\b", line)
                    if m:
                        total += int(m.group(1))
            return total

        what = f"{node}:{a.iface}" + (f"<->{peer}" if peer else "")
        fault = Fault(self, f"blackhole {what} in {where}", undo, counter)
        self._faults.append(fault)
        return fault

    def rebind(self, router, new_ports=False):
        """NAT rebinding: the router forgets its UDP mappings (conntrack flush), as after a NAT
        reboot or mapping timeout. new_ports=True also gives every internal endpoint a new
        external port (daemon NAT kinds; symmetric NATs pick random ports anyway)."""
        kind = self.topology.router(router).nat
        if router in self._natd:
            self._natd_call(router, "flush newport" if new_ports else "flush")
        elif kind == "masquerade" and new_ports:
            raise LabError("masquerade preserves source ports, so a flush keeps them; use a "
                           "daemon NAT kind (full-cone, restricted-cone, port-restricted)")
        else:
            self.run(router, ["conntrack", "-D", "-p", "udp"], check=False)

    # -- impairments ---------------------------------------------------------------------
    @property
    def impairments(self):
        """The impairments in place (Impairment objects), oldest first."""
        return list(self._impairments)

    def impair(self, node, iface, egress: T.Impair | None = None, ingress: T.Impair | None = None):
        """Impairs an interface in user space (delay, jitter, loss, rate per direction).
        Returns the Impairment objects created (egress first); remove() undoes one."""
        tool = binary("roam-lab-impair")
        made = []
        for direction, spec in (("egress", egress), ("ingress", ingress)):
            if spec is None:
                continue
            queue = self._queues.get(node, IMPAIR_QUEUE_BASE)
            self._queues[node] = queue + 1
            stats = os.path.join(self.dir, f"impair-{node}-{iface}-{direction}.json")
            p = self.popen(node, realtime_argv([tool, f"--queue={queue}", f"--stats={stats}"]
                                               + spec.args()),
                           name=f"impair-{iface}-{direction}", stdout=subprocess.PIPE)
            p.wait_line("ready")
            if direction == "egress":
                base = ["POSTROUTING", "-o", iface]
            else:
                base = ["PREROUTING", "-i", iface]
            target = ["-j", "NFQUEUE", "--queue-num", str(queue)]
            rules = [(4, "mangle", base + target),
                     # Neighbour discovery is the link layer's business: never delay or lose it.
                     (6, "mangle", base + ["-p", "ipv6-icmp", "--icmpv6-type",
                                           "neighbour-solicitation", "-j", "ACCEPT"]),
                     (6, "mangle", base + ["-p", "ipv6-icmp", "--icmpv6-type",
                                           "neighbour-advertisement", "-j", "ACCEPT"]),
                     (6, "mangle", base + target)]
            for family, table, spec_ in rules:
                self._iptables(node, family, ["-t", table, "-A"] + spec_)
            imp = Impairment(self, node, iface, direction, spec, queue, p, rules, stats)
            self._impairments.append(imp)
            made.append(imp)
        return made
