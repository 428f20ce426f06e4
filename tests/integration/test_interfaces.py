"""`roam interfaces` against the real kernel, in a throwaway network namespace (root only).

The namespace holds only a veth pair whose both ends stay inside it: nothing is ever
connected to the machine's real network.
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import binary

EVENT_TIMEOUT = 1.0  # seconds from the `ip` command to the event line


def _netns_unavailable():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


pytestmark = pytest.mark.skipif(_netns_unavailable() is not None,
                                reason=_netns_unavailable() or "")


@pytest.fixture
def netns():
    name = f"roamif-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"`ip netns add` failed: {r.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def ip(ns, *args):
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)


def roam(ns, *args, timeout=10):
    return subprocess.run(["ip", "netns", "exec", ns, binary("roam"), "interfaces", *args],
                          capture_output=True, text=True, timeout=timeout)


class Watch:
    """`roam interfaces --watch --json` in the namespace; each line parsed on arrival."""

    def __init__(self, ns, *extra):
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, binary("roam"), "interfaces", "--watch", "--json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), json.loads(line)))

    def next(self, deadline):
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while (item := self.next(deadline)) is not None:
            if item[1]["event"] == "ready":
                return
        pytest.fail("no ready line: " + self.stop())

    def expect(self, interface, wanted, since):
        """The next events about `interface` are exactly `wanted` (event, address-or-None),
        in order, each within EVENT_TIMEOUT of `since`; events of other interfaces are
        skipped."""
        got = []
        deadline = since + EVENT_TIMEOUT
        while len(got) < len(wanted):
            item = self.next(deadline)
            if item is None:
                break
            arrived, e = item
            if e["interface"] != interface:
                continue
            # CLOCK_MONOTONIC (time.monotonic) is shared with the child: the stamp lies between
            # the command and the line's arrival.
            assert since - 0.01 <= e["mono"] <= arrived + 0.01, (e, since, arrived)
            got.append((e["event"], e.get("address")))
        assert got == wanted, f"events for {interface} after {time.monotonic() - since:.3f} s"
        return got

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.stderr.read()


def test_watch_reports_each_change_in_order(netns):
    watch = Watch(netns)
    try:
        watch.wait_ready()
        t = time.monotonic()
        ip(netns, "link", "add", "v0", "type", "veth", "peer", "name", "v0p")
        ip(netns, "link", "set", "v0p", "up")  # no carrier until v0 is up: nothing usable yet
        ip(netns, "link", "set", "v0", "up")
        watch.expect("v0", [("interface_up", None)], t)

        t = time.monotonic()
        ip(netns, "addr", "add", "10.200.0.1/24", "dev", "v0")
        watch.expect("v0", [("address_added", "10.200.0.1")], t)

        t = time.monotonic()
        ip(netns, "addr", "add", "fd00:200::1/64", "dev", "v0", "nodad")
        watch.expect("v0", [("address_added", "fd00:200::1")], t)

        t = time.monotonic()
        ip(netns, "addr", "del", "10.200.0.1/24", "dev", "v0")
        watch.expect("v0", [("address_removed", "10.200.0.1")], t)

        t = time.monotonic()
        ip(netns, "link", "set", "v0", "down")
        watch.expect("v0", [("address_removed", "fd00:200::1"), ("interface_down", None)], t)

        t = time.monotonic()
        ip(netns, "addr", "add", "10.200.0.2/24", "dev", "v0")
        ip(netns, "link", "set", "v0", "up")
        watch.expect("v0", [("interface_up", None), ("address_added", "10.200.0.2")], t)

        t = time.monotonic()
        ip(netns, "link", "del", "v0")
        watch.expect("v0", [("address_removed", "10.200.0.2"), ("interface_down", None)], t)
    finally:
        stderr = watch.stop()
    assert watch.process.returncode == 0, stderr


def test_event_fields(netns):
    ip(netns, "link", "add", "v1", "type", "veth", "peer", "name", "v1p")
    ip(netns, "link", "set", "v1p", "up")
    watch = Watch(netns)
    try:
        watch.wait_ready()
        t = time.monotonic()
        ip(netns, "link", "set", "v1", "up")
        ip(netns, "addr", "add", "fd00:201::7/64", "dev", "v1", "nodad")
        watch.expect("v1", [("interface_up", None), ("address_added", "fd00:201::7")], t)
    finally:
        watch.stop()


def test_lost_events_are_recovered_by_a_redump(netns, tmp_path):
    """A stopped reader with a tiny socket buffer misses most of a burst (ENOBUFS): the monitor
    re-dumps and reports exactly the difference."""
    watch = Watch(netns, "--netlink-rcvbuf", "2048")
    try:
        watch.wait_ready()
        os.kill(watch.process.pid, signal.SIGSTOP)  # `ip netns exec` execs roam: same pid
        batch = ["link add v3 type veth peer name v3p", "link set v3p up", "link set v3 up"]
        batch += [f"addr add 10.202.{i // 200}.{i % 200 + 1}/16 dev v3" for i in range(300)]
        (tmp_path / "batch").write_text("\n".join(batch) + "\n")
        subprocess.run(["ip", "-n", netns, "-batch", str(tmp_path / "batch")], check=True)
        # A secondary: deleting the primary (the first) would take every secondary with it.
        ip(netns, "addr", "del", "10.202.0.2/16", "dev", "v3")
        t = time.monotonic()
        os.kill(watch.process.pid, signal.SIGCONT)
        events, resynced = [], False
        deadline = t + 3.0
        while (item := watch.next(deadline)) is not None:
            e = item[1]
            if e["event"] == "resync":
                resynced = True
                break
            if e["interface"] == "v3":
                events.append((e["event"], e.get("address")))
        assert resynced, events[:5]
        wanted = {f"10.202.{i // 200}.{i % 200 + 1}" for i in range(300)} - {"10.202.0.2"}
        # Whatever arrived before the overflow plus the re-dump's difference: v3 up once, every
        # remaining address added exactly once, the deleted one not left behind.
        assert events.count(("interface_up", None)) == 1, events[:5]
        added = [a for kind, a in events if kind == "address_added"]
        removed = [a for kind, a in events if kind == "address_removed"]
        assert len(added) == len(set(added))
        assert set(added) - set(removed) == wanted
    finally:
        stderr = watch.stop()
    assert watch.process.returncode == 0, stderr


def test_snapshot_lists_usable_addresses(netns):
    ip(netns, "link", "set", "lo", "up")
    ip(netns, "link", "add", "v2", "type", "veth", "peer", "name", "v2p")
    ip(netns, "link", "set", "v2p", "up")
    ip(netns, "link", "set", "v2", "up")
    ip(netns, "addr", "add", "10.201.0.1/24", "dev", "v2")
    ip(netns, "addr", "add", "fd00:202::1/64", "dev", "v2", "nodad")
    ip(netns, "addr", "add", "fd00:202::2/64", "dev", "v2")  # tentative: DAD still running
    ip(netns, "addr", "add", "fd00:202::3/64", "dev", "v2", "nodad", "preferred_lft", "0")

    r = roam(netns, "--json")
    assert r.returncode == 0, r.stderr
    interfaces = {i["interface"]: i for i in json.loads(r.stdout)["interfaces"]}
    assert "lo" not in interfaces  # loopback is not a candidate source by default
    v2 = interfaces["v2"]
    assert v2["usable"] and v2["up"] and v2["running"] and v2["type"] == "ether"
    addresses = {a["address"]: a for a in v2["addresses"]}
    # Link-local, tentative and deprecated addresses are not usable for candidates.
    assert set(addresses) == {"10.201.0.1", "fd00:202::1"}
    assert addresses["10.201.0.1"]["prefix"] == 24
    assert addresses["10.201.0.1"]["family"] == "ipv4"
    assert addresses["fd00:202::1"]["scope"] == "global"
    assert "nodad" in addresses["fd00:202::1"]["flags"]

    r = roam(netns, "--json", "--all")
    assert r.returncode == 0, r.stderr
    interfaces = {i["interface"]: i for i in json.loads(r.stdout)["interfaces"]}
    assert "lo" in interfaces
    everything = {a["address"]: a for a in interfaces["v2"]["addresses"]}
    assert everything["fd00:202::3"]["usable"] is True  # --all keeps deprecated addresses
    assert "deprecated" in everything["fd00:202::3"]["flags"]
    if "fd00:202::2" in everything:  # unless DAD finished meanwhile
        assert everything["fd00:202::2"]["usable"] is False or \
            "tentative" not in everything["fd00:202::2"]["flags"]

    r = roam(netns)
    assert r.returncode == 0, r.stderr
    assert "v2  index" in r.stdout
    assert "  10.201.0.1/24  scope global" in r.stdout
