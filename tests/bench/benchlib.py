"""Helpers the Python benchmarks share: output, percentiles, process memory sampling, the
delayed lab topology."""

import math
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))

from roamlab import Impair, can_run, topologies  # noqa: E402


def log(text=""):
    print(text, flush=True)


def percentile(values, p):
    """Linear interpolation between the closest ranks (p in 0..1); NaN for no values."""
    v = sorted(values)
    if not v:
        return math.nan
    k = (len(v) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def delayed_multihomed(delay_ms):
    """Topology `multihomed` with every router's WAN delayed `delay_ms` each way."""
    topo = topologies.multihomed()
    for router in topo.routers:
        router.wan_impair = (Impair(delay_ms=delay_ms), Impair(delay_ms=delay_ms))
    topo.name = "multihomed-delayed"
    return topo


class ProcessSampler:
    """Reads /proc/PID/status of processes every `interval` s in a thread until stop(), keeping
    the largest VmHWM and VmRSS seen and the process name (the last VmHWM read before a process
    exits is its peak). Subclasses read more per process by extending sample(). `ip netns exec`
    execs its command, so a lab process's pid is the agent's own."""

    def __init__(self, pids, interval=0.05):
        self.pids = list(pids)
        self.interval = interval
        self.hwm_kb = {pid: 0 for pid in self.pids}
        self.rss_kb = {pid: 0 for pid in self.pids}
        self.comm = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def sample(self, pid):
        """One read of `pid`; False when it is gone."""
        try:
            with open(f"/proc/{pid}/status") as f:
                text = f.read()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "Name":
                self.comm[pid] = value.strip()
            elif key == "VmHWM":
                self.hwm_kb[pid] = max(self.hwm_kb[pid], int(value.split()[0]))
            elif key == "VmRSS":
                self.rss_kb[pid] = max(self.rss_kb[pid], int(value.split()[0]))
        return True

    def _loop(self):
        while not self._stop.is_set():
            for pid in self.pids:
                self.sample(pid)
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(2)

    def hwm_mib(self, pid, comm=None):
        """VmHWM in MiB; None when never read, or (with `comm`) when the pid turned out to be
        another program (the name was read and differs)."""
        kb = self.hwm_kb.get(pid)
        if not kb or (comm and self.comm.get(pid) not in (comm, None)):
            return None
        return kb / 1024


def lab_ready(name, unavailable, keep_logs=None):
    """Whether lab bench `name` can run here: root and network namespaces (roamlab.can_run),
    then `unavailable()` (a missing binary or option, as text). Prints why not on stderr.
    With `keep_logs`, the lab copies every agent's logs into that directory; returns its
    absolute path then (True otherwise), or False when the bench cannot run."""
    reason = can_run()
    if reason:
        print(f"bench {name}: the network lab {reason}; run it as root: sudo ./run bench {name}",
              file=sys.stderr)
        return False
    reason = unavailable()
    if reason:
        print(f"bench {name}: {reason}", file=sys.stderr)
        return False
    if not keep_logs:
        return True
    os.environ["ROAMLAB_KEEP_LOGS"] = os.path.abspath(keep_logs)
    return os.environ["ROAMLAB_KEEP_LOGS"]
