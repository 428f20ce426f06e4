#!/usr/bin/python3
"""./run bench goodput: QUIC bulk goodput of `roam perf` between two agents on this machine,
against a local stack on loopback (redis, coturn, roam-relay, roam-signaling: the same as
`./run stack`). No lab, no root needed.

  direct: both agents `--interface lo --loopback` (the direct pair is over 127.0.0.1 or ::1);
  relay:  both agents `--interface lo --loopback --relay-only` (through coturn on 127.0.0.1).

Each run is one fresh pair: `roam perf --listen --once --json` and `roam perf --to bob
--duration S --json` (bulk, no rate). The figure is the receiver's summary: application bytes
received / the receiver's time from first to last byte. Also per run: peak RSS (VmHWM) of
sender and receiver, their CPU time as a share of one core over the agent's life (and
coturn's, through the relay, while the pair runs), the time
they were runnable but waiting for a CPU (other processes: a loaded machine), and goodput per
core of CPU time (Mbit/s / CPU share: less sensitive to other load than the goodput itself).

Same-run reference: a plain UDP blast on loopback (Python, one socket each way, 1200-byte
datagrams, one sendto per datagram), the receiver's rate: what a single-threaded user-space
sender without batching gets through loopback on this machine at this moment.

    ./run bench goodput [--runs N] [--seconds S] [--keep-logs DIR]
"""

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from benchlib import ProcessSampler, log, percentile  # noqa: E402

from roamtest import stack as local_stack  # noqa: E402
from roamtest.process import find_binary  # noqa: E402
from roamtest.signaling import wait_relays_known  # noqa: E402

DESCRIPTION = ("roam perf bulk goodput on loopback, direct and through coturn, with RSS and "
               "CPU (local stack, no lab)")
MIB = 1024 * 1024
TARGETS = {"direct": 1000.0, "relay": 500.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")






class ProcSampler(ProcessSampler):
    """ProcessSampler plus CPU time and run-queue wait of processes (all threads). The run-queue
    wait (/proc/PID/task/*/schedstat) is time the agent was runnable but another process had
    the CPU: high on a loaded machine; CPU + wait well below 100 % means the agent was idle,
    waiting for the network, timers or the peer."""

    def __init__(self, pids):
        self.cpu_s = {pid: 0.0 for pid in pids}
        self.wait_s = {pid: 0.0 for pid in pids}
        self.started = {pid: time.monotonic() for pid in pids}
        self.last_seen = dict(self.started)
        self.first = {}     # pid -> (monotonic time, CPU seconds) of the first read
        super().__init__(pids)

    def sample(self, pid):
        if not super().sample(pid):
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return False
        fields = stat.rpartition(")")[2].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        on_cpu = wait = 0
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    a, b, _ = f.read().split()
                on_cpu += int(a)
                wait += int(b)
        except (OSError, ValueError):
            on_cpu = 0
        if on_cpu:
            cpu = on_cpu / 1e9
            self.wait_s[pid] = wait / 1e9
        self.cpu_s[pid] = cpu
        self.last_seen[pid] = time.monotonic()
        self.first.setdefault(pid, (self.last_seen[pid], cpu))
        return True

    def cpu_share(self, pid, since_first=False):
        """CPU time as % of one core: over the process's life from the sampler's start (a
        process started with it), or since_first: between the first and last reads (a
        process that was already running)."""
        if since_first:
            if pid not in self.first:
                return None
            t0, cpu0 = self.first[pid]
            span = self.last_seen[pid] - t0
            return 100 * (self.cpu_s[pid] - cpu0) / span if span > 0.5 else None
        span = self.last_seen[pid] - self.started[pid]
        return 100 * self.cpu_s[pid] / span if span > 0.5 else None

    def wait_share(self, pid):
        span = self.last_seen[pid] - self.started[pid]
        return 100 * self.wait_s[pid] / span if span > 0.5 else None


def read_events(path):
    events = []
    try:
        with open(path) as f:
            for raw in f:
                try:
                    events.append(json.loads(raw))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return events


def json_lines(path, kind):
    out = []
    try:
        with open(path) as f:
            for raw in f:
                raw = raw.strip()
                if raw.startswith("{"):
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if line.get("event") == kind:
                        out.append(line)
    except FileNotFoundError:
        pass
    return out


def dump(name, argv, events_path, out_path, err_path, token):
    events = [e for e in read_events(events_path)
              if e.get("event") not in ("stats", "candidate", "goodput", "perf_interval")]
    lines = [f"--- {name}: {' '.join('<token>' if a == token else a for a in argv)}"]
    lines += [json.dumps(e, separators=(",", ":")) for e in events[-40:]]
    for label, path in (("stdout", out_path), ("stderr", err_path)):
        try:
            with open(path, errors="replace") as f:
                lines.append(f"--- {label}:\n{f.read()[-2000:]}")
        except OSError:
            pass
    return "\n".join(lines)


def one_run(st, mode, seconds, workdir, keep):
    sig = st.signaling
    flags = ["--interface", "lo", "--loopback"] + (["--relay-only"] if mode == "relay" else [])
    common = ["--signal", sig.url, "--ca", sig.ca_file, "--stun", st.coturn.address] + flags
    roam = find_binary("roam")
    stamp = time.time_ns()
    procs = {}
    files = {}
    for who, args in (("bob", ["perf", "--listen", "--once", "--json"]),
                      ("alice", ["perf", "--to", "bob", "--duration", f"{seconds:g}", "--json",
                                 "--connect-timeout", "15"])):
        token = sig.mint_token(who)
        base = os.path.join(workdir, f"{mode}-{who}-{stamp}")
        files[who] = (base + ".jsonl", base + ".out", base + ".err", token)
        argv = [roam] + args + ["--token", token, "--events", base + ".jsonl"] + common
        with open(base + ".out", "wb") as out, open(base + ".err", "wb") as err:
            procs[who] = (subprocess.Popen(argv, stdout=out, stderr=err,
                                           stdin=subprocess.DEVNULL, start_new_session=True),
                          argv)
        if who == "bob":
            deadline = time.monotonic() + 10
            while not any(e.get("event") == "signaling" and e.get("state") == "connected"
                          for e in read_events(base + ".jsonl")):
                if time.monotonic() > deadline or procs["bob"][0].poll() is not None:
                    break
                time.sleep(0.02)
    coturn = st.coturn.proc.pid if mode == "relay" and st.coturn.proc else None
    sampler = ProcSampler([p.pid for p, _ in procs.values()] + ([coturn] if coturn else []))
    r = {}
    try:
        codes = {}
        for who, timeout in (("alice", seconds + 30), ("bob", 10)):
            try:
                codes[who] = procs[who][0].wait(timeout)
            except subprocess.TimeoutExpired:
                codes[who] = None
        sampler.stop()
        summary = json_lines(files["bob"][1], "summary")
        first = [e for e in read_events(files["bob"][0]) if e.get("event") == "first_byte"]
        kinds = [e.get("kind") for e in read_events(files["bob"][0])
                 if e.get("event") == "path_switched"]
        if codes != {"alice": 0, "bob": 0} or not summary:
            r["error"] = (f"exit status {codes}, receiver summary "
                          f"{'present' if summary else 'missing'}")
        elif kinds[-1:] != [mode] or mode == "relay" and "direct" in kinds:
            r["error"] = f"the {mode} run used paths of kind {kinds}"
        else:
            r["mbit_s"] = summary[-1]["mbit_s"]
            r["max_gap_ms"] = summary[-1]["max_gap_ms"]
            r["kind"] = first[0].get("kind") if first else None
        r["rss_send_mib"] = sampler.hwm_mib(procs["alice"][0].pid)
        r["rss_recv_mib"] = sampler.hwm_mib(procs["bob"][0].pid)
        r["cpu_send_pct"] = sampler.cpu_share(procs["alice"][0].pid)
        r["cpu_recv_pct"] = sampler.cpu_share(procs["bob"][0].pid)
        r["wait_send_pct"] = sampler.wait_share(procs["alice"][0].pid)
        r["wait_recv_pct"] = sampler.wait_share(procs["bob"][0].pid)
        if coturn:
            # coturn lives on: its counters since the sampler started (first read) matter.
            r["cpu_coturn_pct"] = sampler.cpu_share(coturn, since_first=True)
        if "error" in r:
            r["error"] += "\n" + "\n".join(dump(who, procs[who][1], *files[who])
                                           for who in ("alice", "bob"))
    finally:
        sampler.stop()
        for p, _ in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, 15)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, 9)
                    p.wait()
        if keep:
            os.makedirs(keep, exist_ok=True)
            for who in files:
                for path in files[who][:3]:
                    if os.path.exists(path):
                        shutil.copy(path, keep)
    return r


UDP_BLAST = r"""
import socket, sys, time
mode, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if mode == "recv":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", port))
    print("ready", flush=True)
    s.settimeout(2.0)
    total, first, last = 0, None, None
    buf = bytearray(2048)
    try:
        while True:
            n = s.recv_into(buf)
            now = time.monotonic()
            if first is None:
                first = now
            total += n
            last = now
    except socket.timeout:
        pass
    print(total, (last - first) if first else 0, flush=True)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = bytes(1200)
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        for _ in range(256):
            try:
                s.sendto(data, ("127.0.0.1", port))
                sent += 1
            except OSError:
                pass
    print(sent, flush=True)
"""


def udp_baseline(seconds=2.0):
    """Mbit/s received by a plain UDP receiver from a plain UDP sender on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recv = subprocess.Popen([sys.executable, "-c", UDP_BLAST, "recv", str(port), "0"],
                            stdout=subprocess.PIPE, text=True)
    recv.stdout.readline()
    subprocess.run([sys.executable, "-c", UDP_BLAST, "send", str(port), str(seconds)],
                   capture_output=True, timeout=seconds + 10)
    out = recv.communicate(timeout=10)[0].split()
    total, span = int(out[0]), float(out[1])
    return total * 8 / span / 1e6 if span > 0 else None


def fmt(v, digits=0):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def row(label, values, unit, target=None, digits=0):
    values = [v for v in values if v is not None]
    med = percentile(values, 0.5)
    met = ""
    if target is not None and values:
        met = "yes" if med >= target else "NO"
    span = f"{fmt(min(values), digits)}-{fmt(max(values), digits)}" if values else "-"
    tgt = f">= {target:g}" if target is not None else ""
    p10, p90 = percentile(values, 0.1), percentile(values, 0.9)
    log(f"{label:<36} {len(values):>3} {fmt(med, digits):>8} {fmt(p10, digits):>8} "
        f"{fmt(p90, digits):>8} {span:>15}  {unit:<7} {tgt:<8} {met}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--describe", action="store_true", help="print one line and exit")
    p.add_argument("--runs", type=int, default=5, help="runs per mode (default 5)")
    p.add_argument("--seconds", type=float, default=5.0, help="perf duration (default 5)")
    p.add_argument("--modes", default="direct,relay", help="direct,relay (default both)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain UDP reference")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the agents' logs into DIR")
    p.add_argument("--quiet", action="store_true", help="no agent dumps for failed runs")
    args = p.parse_args()
    if args.describe:
        print(DESCRIPTION)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    if args.runs < 1 or not modes or any(m not in TARGETS for m in modes):
        p.error("--runs >= 1 and --modes from direct,relay")
    try:
        find_binary("roam")
    except FileNotFoundError as e:
        print(f"bench goodput: {e}", file=sys.stderr)
        return 1
    keep = os.path.abspath(args.keep_logs) if args.keep_logs else None
    log(f"bench goodput: roam perf bulk for {args.seconds:g} s on loopback, {args.runs} runs per "
        f"mode ({', '.join(modes)}); load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs (uid {os.geteuid()})")
    workdir = tempfile.mkdtemp(prefix="roam-goodput-")
    ns = argparse.Namespace(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", pool_target=10,
                            token_ttl=3600, peer=None)
    st = local_stack.Stack(ns)
    results = {m: [] for m in modes}
    baselines = []
    started = time.monotonic()
    try:
        try:
            st.start()
            st.relay.wait_pool(10)
            wait_relays_known([st.signaling], timeout=10)
        except (FileNotFoundError, RuntimeError, TimeoutError) as e:
            print(f"bench goodput: the local stack did not start: {e}", file=sys.stderr)
            return 1
        log(f"stack up in {time.monotonic() - started:.1f} s: {st.signaling.url}, coturn "
            f"{st.coturn.address}")
        for i in range(args.runs):
            if not args.no_baseline:
                baselines.append(udp_baseline())
            for mode in modes:
                st.relay.wait_pool(2, timeout=15)
                r = one_run(st, mode, args.seconds, workdir, keep)
                results[mode].append(r)
                if "error" in r:
                    log(f"run {i + 1} {mode}: FAILED: {r['error'].splitlines()[0]}")
                    if not args.quiet:
                        log(r["error"])
                else:
                    log(f"run {i + 1} {mode}: {r['mbit_s']:.0f} Mbit/s (longest gap "
                        f"{r['max_gap_ms']:.0f} ms), RSS send {fmt(r['rss_send_mib'], 1)} / recv "
                        f"{fmt(r['rss_recv_mib'], 1)} MiB, CPU send {fmt(r['cpu_send_pct'])} % "
                        f"(+{fmt(r['wait_send_pct'])} % runnable, waiting) / recv "
                        f"{fmt(r['cpu_recv_pct'])} % (+{fmt(r['wait_recv_pct'])} %) of a core"
                        + (f", coturn {fmt(r['cpu_coturn_pct'])} %" if r.get("cpu_coturn_pct")
                           is not None else "")
                        + (f"; UDP blast {baselines[-1]:.0f} Mbit/s" if baselines else ""))
    finally:
        st.close()
        shutil.rmtree(workdir, ignore_errors=True)
    log()
    log(f"{'figure':<36} {'n':>3} {'median':>8} {'p10':>8} {'p90':>8} {'min-max':>15}  "
        f"{'unit':<7} {'target':<8} met")
    for mode in modes:
        ok = [r for r in results[mode] if "error" not in r]
        what = "loopback direct" if mode == "direct" else "through coturn"
        row(f"goodput, {what}", [r["mbit_s"] for r in ok], "Mbit/s", TARGETS[mode])
        row(f"  RSS peak sender ({mode})", [r.get("rss_send_mib") for r in results[mode]],
            "MiB", None, 1)
        row(f"  RSS peak receiver ({mode})", [r.get("rss_recv_mib") for r in results[mode]],
            "MiB", None, 1)
        row(f"  CPU sender ({mode})", [r.get("cpu_send_pct") for r in results[mode]],
            "% core")
        row(f"  CPU receiver ({mode})", [r.get("cpu_recv_pct") for r in results[mode]],
            "% core")
        if mode == "relay":
            row("  CPU coturn (relay)", [r.get("cpu_coturn_pct") for r in results[mode]],
                "% core")
        row(f"  sender Mbit/s per core ({mode})",
            [r["mbit_s"] * 100 / r["cpu_send_pct"] for r in ok if r.get("cpu_send_pct")],
            "Mbit/s")
        row(f"  receiver Mbit/s per core ({mode})",
            [r["mbit_s"] * 100 / r["cpu_recv_pct"] for r in ok if r.get("cpu_recv_pct")],
            "Mbit/s")
        row(f"  run-queue wait sender ({mode})", [r.get("wait_send_pct") for r in results[mode]],
            "% time")
        row(f"  run-queue wait receiver ({mode})",
            [r.get("wait_recv_pct") for r in results[mode]], "% time")
    if baselines:
        row("reference: plain UDP blast (Python)", baselines, "Mbit/s")
    log(f"RSS target <= 32 MiB; load average at the end {os.getloadavg()[0]:.2f} (other work "
        f"on the machine lowers these figures)")
    failed = sum(1 for m in modes for r in results[m] if "error" in r)
    total = sum(len(results[m]) for m in modes)
    log(f"{total - failed}/{total} runs complete in {time.monotonic() - started:.0f} s")
    return 1 if failed == total else 0


if __name__ == "__main__":
    sys.exit(main())
