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


@pytest.fixture(scope="module")
def transfer(stack, tmp_path_factory):
    """bob (`roam recv`, with --metrics, staying connected) and alice (`roam send` a 2 MiB
    file) through the load balancer; returns what the tests assert on."""
    tmp_path = tmp_path_factory.mktemp("transfer")
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(2 << 20))
    result = {"digest": hashlib.sha256(src.read_bytes()).hexdigest(), "both": None,
              "agent_metrics": ""}
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result["before"] = {s.instance: remote_forwards(s) for s in stack.signalings}
    metrics_address = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    bob = run_agent(stack, tmp_path, "recv", "bob", "--out", str(out_dir),
                    metrics=metrics_address)
    try:
        wait_until(lambda: sum(peers_by_instance(stack).values()) == 1, 15, interval=0.05,
                   what="bob registered on one instance")
        alice = run_agent(stack, tmp_path, "send", "alice", str(src), "--to", "bob")

        def both_registered():
            # haproxy balances leastconn: alice lands on the instance without bob.
            counts = peers_by_instance(stack)
            if all(n == 1 for n in counts.values()):
                result["both"] = counts
                return True
            return alice.poll() is not None

        wait_until(both_registered, 15, interval=0.02, what="alice registered")

        def scrape_agent():
            try:
                result["agent_metrics"] = scrape(f"http://{metrics_address}/metrics")
            except OSError:
                return False
            return "roam_agent_path_switches_total{" in result["agent_metrics"]

        try:
            wait_until(scrape_agent, 15, interval=0.05, what="bob's metrics after a switch")
        except TimeoutError:
            pass  # the dashboard test names what is missing
        try:
            out, err = alice.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            alice.kill()
            out, err = alice.communicate()
        result.update(alice_rc=alice.returncode, alice_out=out.decode(errors="replace"),
                      alice_err=err.decode(errors="replace"))
        try:
            wait_until(lambda: (out_dir / "payload.bin").exists(), 5, what="bob's file")
            result["received"] = hashlib.sha256(
                (out_dir / "payload.bin").read_bytes()).hexdigest()
        except TimeoutError:
            result["received"] = None
        result["after"] = {s.instance: remote_forwards(s) for s in stack.signalings}
        yield result
    finally:
        bob.terminate()
        try:
            bob.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            bob.kill()
            bob.communicate()


def test_agents_on_different_instances_complete_a_transfer(transfer):
    assert transfer["alice_rc"] == 0, (transfer["alice_out"], transfer["alice_err"])
    digest = transfer["digest"]
    assert f"sha256 {digest}" in transfer["alice_out"], transfer["alice_out"]
    assert "receiver verified" in transfer["alice_out"], transfer["alice_out"]
    assert transfer["received"] == digest
    # Through different instances: each held one of the two peers at the same time, and each
    # forwarded messages to the other through Redis (route="remote").
    assert transfer["both"], "alice and bob were never on different instances"
    for instance, count in transfer["after"].items():
        assert count > transfer["before"][instance], (instance, transfer)


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


def test_dashboard_references_only_exported_metrics(stack, transfer):
    agent = {line.split("{")[0].split(" ")[0]
             for line in transfer["agent_metrics"].splitlines()
             if line and not line.startswith("#")}
    used = dashboard_metrics()
    assert {"roam_signaling_peers", "roam_relay_pool_tokens", "roam_agent_active_path",
            "redis_up", "up"} <= used, used
    missing = []

    def all_exported():
        # Every name Prometheus has ingested from its targets (scraped every second).
        exported = set(stack.prometheus.api("label/__name__/values")) | agent
        missing[:] = sorted(used - exported)
        return not missing

    try:
        wait_until(all_exported, 10, interval=0.25, what="the dashboard's metrics")
    except TimeoutError:
        pytest.fail(f"dashboard queries metrics no service exports: {missing}")


def test_compose_healthchecks_pass_against_live_servers(stack):
    """The roam-healthcheck commands of deploy/docker-compose.yml, pointed at this stack's
    signaling instances and roam-relay, succeed (and fail against a closed port)."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load(open(os.path.join(REPO, "deploy", "docker-compose.yml")))
    script = os.path.join(REPO, "deploy", "docker", "roam-healthcheck")
    live = {"signaling-1": f"{stack.signalings[0].admin_host}:{stack.signalings[0].admin_port}",
            "signaling-2": f"{stack.signalings[1].admin_host}:{stack.signalings[1].admin_port}",
            "roam-relay": f"127.0.0.1:{stack.relay.metrics_port}"}
    for service, address in live.items():
        test = compose["services"][service]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "roam-healthcheck"], test
        url, pattern = test[2], test[3]
        url = re.sub(r"127\.0\.0\.1:\d+", address, url)
        result = subprocess.run([script, url, pattern], capture_output=True, text=True,
                                timeout=10)
        assert result.returncode == 0, (service, url, pattern, result.stderr)
        closed = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{free_port(socket.SOCK_STREAM)}",
                        test[2])
        assert subprocess.run([script, closed, pattern], capture_output=True,
                              timeout=10).returncode != 0
