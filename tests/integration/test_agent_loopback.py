"""The session commands (`roam send`, `recv`, `pipe`, `perf`, `status`) between two agents on
this machine, through the real stack on loopback (redis, coturn, roam-relay, roam-signaling),
gathering on loopback (--loopback): no root and no network namespaces needed. The lab tests
(tests/lab/test_lab_quic.py) cover NATs, carriers and network changes."""

import hashlib
import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import binary
from roamtest.stack import Stack, parse_args

pytest.importorskip("jwt", reason="python3-jwt not installed (./run deps)")

RUN_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def stack():
    try:
        s = Stack(parse_args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                              "--pool-target", "4"])).start()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield s
    s.close()


class Agents:
    """Builds argv for session commands against the stack and runs them in a temp dir."""

    def __init__(self, stack, tmp_path):
        self.stack, self.dir = stack, tmp_path
        self.status_dir = tmp_path / "status"
        self.status_dir.mkdir()

    def argv(self, command, peer, *args, events=None, token=None):
        sig = self.stack.signaling
        argv = [binary("roam"), command, *args, "--signal", sig.url, "--ca", sig.ca_file,
                "--token", token or sig.mint_token(peer, ttl=600), "--loopback",
                "--interface", "lo", "--stun", self.stack.coturn.address,
                "--connect-timeout", "20"]
        if events:
            argv += ["--events", str(events)]
        return argv

    def popen(self, command, peer, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              **kw):
        env = dict(os.environ, ROAM_STATUS_DIR=str(self.status_dir))
        return subprocess.Popen(self.argv(command, peer, *args, **kw), stdin=stdin,
                                stdout=stdout, stderr=subprocess.PIPE, env=env)


def finish(*processes):
    out = []
    for p in processes:
        try:
            o, e = p.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
        out.append((p.returncode, (o or b"").decode(errors="replace"),
                    (e or b"").decode(errors="replace")))
    return out


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def agents(stack, tmp_path):
    return Agents(stack, tmp_path)


def test_send_recv_file_verified_and_upgraded_to_direct(agents, tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(6 << 20))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    bob = agents.popen("recv", "bob", "--once", "--out", str(out_dir), events=tmp_path / "b.jsonl")
    time.sleep(0.3)
    alice = agents.popen("send", "alice", str(src), "--to", "bob", events=tmp_path / "a.jsonl")
    (ca, oa, ea), (cb, ob, eb) = finish(alice, bob)
    assert ca == 0 and cb == 0, (oa, ea, ob, eb)
    assert f"sha256 {digest}" in oa and "receiver verified" in oa, oa
    assert f"sha256 {digest}" in ob, ob
    assert hashlib.sha256((out_dir / "payload.bin").read_bytes()).hexdigest() == digest
    ev_a, ev_b = events(tmp_path / "a.jsonl"), events(tmp_path / "b.jsonl")
    # QUIC starts on the first valid pair and ends on a direct one (loopback host pair).
    connected = [e for e in ev_a if e["event"] == "quic_connected"]
    assert len(connected) == 1 and connected[0]["role"] == "client", ev_a
    assert [e for e in ev_b if e["event"] == "quic_connected"][0]["role"] == "server"
    switches = [e for e in ev_a if e["event"] == "path_switched"]
    assert switches and switches[-1]["kind"] == "direct", switches
    complete = [e for e in ev_b if e["event"] == "transfer_complete"]
    assert complete and complete[0]["sha256"] == digest and complete[0]["bytes"] == 6 << 20
    assert any(e["event"] == "first_byte" for e in ev_b)
    # No connection dropped before the transfer completed.
    closed_b = [e for e in ev_b if e["event"] == "quic_closed"]
    assert not closed_b or closed_b[0]["t_ms"] >= complete[0]["t_ms"], ev_b
    # Both agents pinned each other's certificate fingerprint from signaling.
    started = {e["event"]: e for e in ev_a if e["event"] in ("started", "session_started")}
    peer_fp = [e for e in ev_b if e["event"] == "session_started"][0]["peer_fingerprint"]
    assert peer_fp == started["started"]["fingerprint"] and peer_fp.startswith("sha-256 ")


def test_relay_only_transfer_stays_on_the_relay(agents, tmp_path):
    src = tmp_path / "relayed.bin"
    src.write_bytes(os.urandom(2 << 20))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    bob = agents.popen("recv", "bob", "--once", "--out", str(out_dir), "--relay-only",
                       events=tmp_path / "b.jsonl")
    time.sleep(0.3)
    alice = agents.popen("send", "alice", str(src), "--to", "bob", "--relay-only",
                         events=tmp_path / "a.jsonl")
    (ca, oa, ea), (cb, ob, eb) = finish(alice, bob)
    assert ca == 0 and cb == 0, (oa, ea, ob, eb)
    kinds = {e["kind"] for e in events(tmp_path / "a.jsonl") if e["event"] == "path_switched"}
    assert kinds == {"relay"}, kinds
    assert (out_dir / "relayed.bin").read_bytes() == src.read_bytes()


def test_pipe_both_directions(agents, tmp_path):
    to_bob, to_alice = os.urandom(300_000), os.urandom(200_000)
    (tmp_path / "a.in").write_bytes(to_bob)
    (tmp_path / "b.in").write_bytes(to_alice)
    with open(tmp_path / "b.in", "rb") as b_in, open(tmp_path / "a.in", "rb") as a_in, \
            open(tmp_path / "b.out", "wb") as b_out, open(tmp_path / "a.out", "wb") as a_out:
        bob = agents.popen("pipe", "bob", "--listen", stdin=b_in, stdout=b_out)
        time.sleep(0.3)
        alice = agents.popen("pipe", "alice", "--to", "bob", stdin=a_in, stdout=a_out)
        (ca, _, ea), (cb, _, eb) = finish(alice, bob)
    assert ca == 0 and cb == 0, (ea, eb)
    assert (tmp_path / "b.out").read_bytes() == to_bob
    assert (tmp_path / "a.out").read_bytes() == to_alice


def test_perf_reports_goodput_and_status_shows_the_session(agents, tmp_path):
    bob = agents.popen("perf", "bob", "--listen", "--once", "--json")
    time.sleep(0.3)
    alice = agents.popen("perf", "alice", "--to", "bob", "--duration", "3", "--rate", "20",
                         "--json", "--metrics", "127.0.0.1:0")
    # While it runs, `roam status` sees both agents with a connected session.
    deadline = time.time() + 10
    answer = ""
    while time.time() < deadline:
        r = subprocess.run([binary("roam"), "status", "--json"], capture_output=True, text=True,
                           env=dict(os.environ, ROAM_STATUS_DIR=str(agents.status_dir)),
                           timeout=10)
        answer = r.stdout
        agents_up = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        if len(agents_up) == 2 and all(a["session"].get("quic", {}).get("connected")
                                       for a in agents_up):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"roam status never showed two connected agents: {answer}")
    for a in agents_up:
        assert a["session"]["pairs"] and a["session"]["quic"]["active_path"]["kind"] in (
            "relay", "direct")
    (ca, oa, ea), (cb, ob, eb) = finish(alice, bob)
    assert ca == 0 and cb == 0, (oa, ea, ob, eb)
    summary = [json.loads(line) for line in ob.splitlines() if '"summary"' in line][0]
    # 20 Mbit/s for 3 s: about 7.5 MB (allow for start-up and the final interval).
    assert 5_000_000 < summary["bytes"] < 9_000_000, summary
    intervals = [json.loads(line) for line in oa.splitlines() if '"interval"' in line]
    assert intervals and all("rtt_ms" in i for i in intervals)


def test_bad_input_gets_a_clear_error(agents, tmp_path):
    hidden = tmp_path / ".hidden"
    hidden.write_bytes(b"x")
    r = subprocess.run(agents.argv("send", "alice", str(hidden), "--to", "bob"),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "must not start with '.'" in r.stderr, r.stderr
    r = subprocess.run(agents.argv("send", "alice", str(tmp_path / "missing"), "--to", "bob"),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "missing" in r.stderr, r.stderr
    r = subprocess.run(agents.argv("recv", "bob", "--once", "--out", str(tmp_path),
                                   token="not-a-token"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "signaling" in r.stderr, r.stderr
    r = subprocess.run([binary("roam"), "status"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, ROAM_STATUS_DIR=str(tmp_path / "nobody")))
    assert r.returncode == 1 and "no running agent" in r.stderr, r.stderr
