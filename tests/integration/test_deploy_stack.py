"""`./run stack --replicas 2`: the deploy/docker-compose.yml topology natively on loopback
(two roam-signaling instances behind haproxy, a real Prometheus scraping every server). Every
scrape target must be up, two agents connected through different instances must complete a
transfer, and every metric the Grafana dashboard queries must exist in live scrapes."""

import hashlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import binary
from roamtest.process import wait_until
from roamtest.servers import free_port
from roamtest.stack import Stack, parse_args

pytest.importorskip("jwt", reason="python3-jwt not installed (./run deps)")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "dashboards", "roam.json")
RUN_TIMEOUT_S = 40


@pytest.fixture(scope="module")
def stack():
    try:
        s = Stack(parse_args(["--replicas", "2", "--listen", "127.0.0.1:0",
                              "--admin-listen", "127.0.0.1:0", "--prometheus-listen",
                              "127.0.0.1:0", "--pool-target", "4"])).start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield s
    s.close()


def targets_up(stack, expected_jobs):
    targets = stack.prometheus.active_targets()
    jobs = {}
    for t in targets:
        jobs.setdefault(t["labels"]["job"], []).append(t["health"])
    ok = set(expected_jobs) <= set(jobs) and all(
        h == "up" for healths in jobs.values() for h in healths)
    return jobs if ok else None


def test_every_scrape_target_is_up(stack):
    expected = {"prometheus": 1, "roam-signaling": 2, "roam-relay": 1, "haproxy": 1, "redis": 1}
    try:
        jobs = wait_until(lambda: targets_up(stack, expected), 15, interval=0.2,
                          what="every Prometheus target up")
    except TimeoutError:
        pytest.fail(json.dumps(stack.prometheus.active_targets(), indent=1))
    for job, count in expected.items():
        assert len(jobs[job]) == count, jobs
    # The query API sees them too: up == 1 for each.
    result = stack.prometheus.api("query?query=up")["result"]
    assert len(result) >= 6 and all(r["value"][1] == "1" for r in result), result


def run_agent(stack, tmp_path, command, peer, *args, metrics=None):
    sig = stack.signaling
    argv = [binary("roam"), command, *args, "--signal", stack.url, "--ca", sig.ca_file,
            "--token", sig.mint_token(peer, ttl=600), "--loopback", "--interface", "lo",
            "--stun", stack.coturn.address, "--connect-timeout", "20",
            "--events", str(tmp_path / f"{peer}.jsonl")]
    if metrics:
        argv += ["--metrics", metrics]
    env = dict(os.environ, ROAM_STATUS_DIR=str(tmp_path / f"status-{peer}"))
    os.makedirs(env["ROAM_STATUS_DIR"], exist_ok=True)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def peers_by_instance(stack):
    return {s.instance: s.healthz()[1].get("peers", 0) for s in stack.signalings}


def remote_forwards(server):
    text = server.metrics_text()
    m = re.search(r'^roam_signaling_forward_seconds_count\{route="remote"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def scrape(url):
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode()


AGENT = {}


def test_agents_on_different_instances_complete_a_transfer(stack, tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(2 << 20))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = {s.instance: remote_forwards(s) for s in stack.signalings}
    metrics_address = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    # bob stays connected after the file (no --once): the dashboard test scrapes his metrics.
    bob = run_agent(stack, tmp_path, "recv", "bob", "--out", str(out_dir),
                    metrics=metrics_address)
    AGENT.update(process=bob, metrics=metrics_address)
    try:
        first = wait_until(lambda: [i for i, n in peers_by_instance(stack).items() if n == 1],
                           15, interval=0.05, what="bob registered on one instance")
        alice = run_agent(stack, tmp_path, "send", "alice", str(src), "--to", "bob")
        # haproxy balances leastconn: alice lands on the other instance.
        both = []

        def both_registered():
            counts = peers_by_instance(stack)
            if all(n >= 1 for n in counts.values()):
                both.append(counts)
                return True
            return alice.poll() is not None

        wait_until(both_registered, 15, interval=0.02, what="alice registered")
        agent_scrapes = []

        def scrape_agent():
            try:
                text = scrape(f"http://{metrics_address}/metrics")
            except OSError:
                return False
            agent_scrapes.append(text)
            return "roam_agent_path_switches_total{" in text
        try:
            wait_until(scrape_agent, 15, interval=0.05, what="bob's metrics after a path switch")
        except TimeoutError:
            pass
        AGENT["text"] = agent_scrapes[-1] if agent_scrapes else ""
        try:
            out, err = alice.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            alice.kill()
            out, err = alice.communicate()
        assert alice.returncode == 0, (out.decode(), err.decode())
        assert f"sha256 {digest}".encode() in out and b"receiver verified" in out, out
        wait_until(lambda: (out_dir / "payload.bin").exists(), 5, what="file on bob's side")
        assert hashlib.sha256((out_dir / "payload.bin").read_bytes()).hexdigest() == digest
        # Through different instances: each saw one peer, and each forwarded messages to the
        # other through Redis (route="remote").
        assert both or all(n >= 1 for n in peers_by_instance(stack).values()), first
        for s in stack.signalings:
            assert remote_forwards(s) > before[s.instance], s.instance
    except BaseException:
        bob.kill()
        raise


METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}


def dashboard_metrics():
    """Metric names in the dashboard's PromQL: identifiers that are neither functions,
    keywords, label names in by()/matchers, nor Grafana variables."""
    names = set()
    for panel in json.load(open(DASHBOARD))["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # strings
            expr = re.sub(r"\{[^}]*\}", "", expr)                   # label matchers
            expr = re.sub(r"\[[^\]]*\]", "", expr)                  # ranges ($__rate_interval)
            expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
            for m in METRIC.finditer(expr):
                word = m.group(0)
                rest = expr[m.end():].lstrip()
                if rest.startswith("(") or word.lower() in PROMQL_WORDS:
                    continue
                if expr[max(0, m.start() - 1)] == "$":
                    continue
                names.add(word)
    return names


def test_dashboard_references_only_exported_metrics(stack):
    assert AGENT, "needs the transfer test's agent"
    bob = AGENT["process"]
    try:
        assert bob.poll() is None, bob.communicate()
        exported = set(stack.prometheus.api("label/__name__/values"))
        exported |= {line.split("{")[0].split(" ")[0] for line in AGENT["text"].splitlines()
                     if line and not line.startswith("#")}
    finally:
        bob.terminate()
        try:
            bob.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            bob.kill()
    used = dashboard_metrics()
    assert {"roam_signaling_peers", "roam_relay_pool_tokens", "roam_agent_active_path",
            "up"} <= used, used
    missing = sorted(used - exported)
    assert not missing, f"dashboard queries metrics no service exports: {missing}"
