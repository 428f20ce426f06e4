"""Cleanup is proven: a lab process interrupted at any point (SIGINT, SIGTERM, an exception)
leaves no namespace, process, temp dir or lock behind; a SIGKILLed one is swept by the next
lab start; live parallel runs are never touched by a sweep."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from roamlab import Lab, list_namespaces, sweep, topologies
from roamlab.lab import LOCK_DIR

HERE = os.path.dirname(os.path.abspath(__file__))

# The child brings up a topology with every kind of resource: NAT daemons, a reflector, a
# tracked sleeper, and an untracked daemon that escaped into its own session.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from roamlab import Lab, topologies
from roamlab.measure import start_reflector
lab = Lab(topologies.get("two-nats"))
with lab:
    start_reflector(lab)
    lab.popen("alice", ["sleep", "600"], name="sleeper")
    lab.run("bob", "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
    print(json.dumps({"run_id": lab.run_id, "prefix": lab.prefix, "dir": lab.dir}), flush=True)
    time.sleep(600)
"""


@pytest.fixture
def child_lab(lab_allowed):
    """child_lab() -> (Popen, info): a lab in a child process; interrupted at teardown if
    the test left it running (so a failing test never leaks a live lab)."""
    started = []

    def start():
        p = subprocess.Popen([sys.executable, "-c", CHILD, HERE], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        started.append(p)
        line = p.stdout.readline()
        if not line:
            p.kill()
            pytest.fail(f"child lab did not come up: {p.stderr.read()}")
        info = json.loads(line)
        info["inodes"] = _netns_inodes(info["prefix"])
        assert sorted(ns[len(info["prefix"]):] for ns in info["inodes"]) == \
            ["alice", "bob", "cloud", "home1", "home2", "inet"], info
        return p, info

    yield start
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        p.stderr.close()


def _netns_inodes(prefix):
    inodes = {}
    for ns in list_namespaces():
        if ns.startswith(prefix):
            inodes[ns] = os.stat(os.path.join("/run/netns", ns)).st_ino
    return inodes


def _processes_in(inodes):
    """PIDs of every process whose network namespace is one of `inodes` (even unnamed)."""
    wanted = {f"net:[{i}]" for i in inodes.values()}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/net") in wanted:
                found.append(int(pid))
        except OSError:
            pass
    return found


def _assert_nothing_left(info):
    assert not [ns for ns in list_namespaces() if ns.startswith(info["prefix"])]
    assert _processes_in(info["inodes"]) == []
    assert not os.path.exists(info["dir"])
    assert not os.path.exists(os.path.join(LOCK_DIR, f"{info['run_id']}.lock"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_lab_cleans_up_itself(child_lab, report, sig):
    p, info = child_lab()
    assert len(_processes_in(info["inodes"])) >= 4  # 2 natd, reflector, sleeper, escaped sleeper
    t0 = time.monotonic()
    p.send_signal(sig)
    p.wait(30)
    took = time.monotonic() - t0
    report(f"cleanup after {sig.name}: {took:.2f} s, exit {p.returncode}")
    _assert_nothing_left(info)


def test_sigkilled_lab_is_swept_by_the_next_start(child_lab, report):
    p, info = child_lab()
    p.kill()
    p.wait(10)
    time.sleep(0.2)
    left = [ns for ns in list_namespaces() if ns.startswith(info["prefix"])]
    assert len(left) == len(info["inodes"])          # nobody could clean up...
    survivors = _processes_in(info["inodes"])
    # ...but every tracked child died with the lab (PR_SET_PDEATHSIG); only the daemon that
    # escaped into its own session from a shell may survive until the sweep.
    assert len(survivors) <= 1, survivors
    with Lab(topologies.get("lan")) as lab:          # the next start sweeps
        assert lab.run_id != info["run_id"]
    # (checked after the new lab is gone: namespace inode numbers get reused)
    _assert_nothing_left(info)
    report(f"SIGKILL: {len(left)} namespaces and {len(survivors)} escaped process(es) left, "
           f"removed by the next lab start")


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3])
def test_interrupt_during_build_leaves_nothing(lab_allowed, delay):
    p = subprocess.Popen([sys.executable, "-c", CHILD, HERE], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    # The child's pid is the run id's prefix: nothing named after it may remain.
    prefix = f"rl{p.pid}x"
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix)]
    assert not [d for d in os.listdir("/tmp") if d.startswith(f"roamlab-{p.pid}x")]


def test_exception_inside_lab_cleans_up(lab_allowed):
    with pytest.raises(ZeroDivisionError):
        with Lab(topologies.get("lan")) as lab:
            prefix = lab.prefix
            assert len([ns for ns in list_namespaces() if ns.startswith(prefix)]) == 5
            1 / 0
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix)]


def test_sweep_never_touches_a_live_run(lab_allowed):
    with Lab(topologies.get("lan")) as lab:
        before = [ns for ns in list_namespaces() if ns.startswith(lab.prefix)]
        assert lab.run_id not in sweep()
        after = [ns for ns in list_namespaces() if ns.startswith(lab.prefix)]
        assert before == after and len(after) == 5
        # A second lab in parallel (same process, different run id) is independent too.
        with Lab(topologies.get("lan")) as other:
            assert other.prefix != lab.prefix
        assert [ns for ns in list_namespaces() if ns.startswith(lab.prefix)] == before


def test_bad_topology_is_rejected_before_anything_is_created():
    from roamlab import Host, Router, Topology
    bad = Topology("bad", routers=[Router("r", nat="cone-of-shame")], hosts=[Host("h", {"e": "r"})])
    with pytest.raises(ValueError, match="cone-of-shame"):
        Lab(bad)
    cyc = Topology("cyc", routers=[Router("a", upstream="b"), Router("b", upstream="a")])
    with pytest.raises(ValueError, match="cycle"):
        Lab(cyc)
    with pytest.raises(ValueError, match="unknown router"):
        Lab(Topology("x", hosts=[Host("h", {"eth0": "nowhere"})]))
    with pytest.raises(ValueError, match="letters"):
        Lab(Topology("x", routers=[Router("r")], hosts=[Host("h", {"a-very-long-interface": "r"})]))
