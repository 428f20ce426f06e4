"""roam-signaling as an operator sees it: the admin endpoint (/healthz, /metrics), graceful
shutdown on SIGTERM, the `token` subcommand and refusal of bad configuration
(docs/signaling-server.md)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import jwt
import pytest
import websockets

from roamtest.process import find_binary, wait_until
from roamtest.sigclient import RawWss, SigClient, eventually, open_pair, round_trip, run
from roamtest.signaling import DEFAULT_JWT_SECRET, TlsCert, metric_value, mint_token


@pytest.fixture
def server(redis_server, signaling):
    return signaling(redis_server.port, instance="sig-admin", options=["--shutdown-grace", "2"])


def test_healthz_is_ok_json(server):
    status, body = server.healthz()
    assert status == 200 and body["status"] == "ok", body


def test_metrics_count_connections_messages_and_errors(server):
    async def scenario():
        alice, bob = await open_pair(server)
        await round_trip(alice, bob)
        await alice.send({"type": "nonsense"})
        await alice.expect_error("unknown_type")
        await alice.send("not json")
        await alice.expect_error("bad_json")
        text = server.metrics_text()
        assert "# TYPE roam_signaling_connections gauge" in text, text
        m = server.metrics()
        assert metric_value(m, "roam_signaling_connections") == 2, text
        assert metric_value(m, "roam_signaling_peers") == 2, text
        assert metric_value(m, "roam_signaling_messages_total", direction="in",
                            type="hello") == 2, text
        assert metric_value(m, "roam_signaling_messages_total", direction="in",
                            type="connect") == 1, text
        assert metric_value(m, "roam_signaling_messages_total", direction="in",
                            type="candidate") == 2, text
        assert metric_value(m, "roam_signaling_messages_total", direction="out",
                            type="session") == 2, text
        assert metric_value(m, "roam_signaling_messages_total", direction="out",
                            type="welcome") == 2, text
        assert metric_value(m, "roam_signaling_errors_total", code="unknown_type") == 1, text
        assert metric_value(m, "roam_signaling_errors_total", code="bad_json") == 1, text
        assert metric_value(m, "roam_signaling_sessions_total") == 1, text
        await alice.close()
        await bob.close()
        # The gauge follows closes.
        deadline = time.monotonic() + 3
        while metric_value(server.metrics(), "roam_signaling_connections") != 0:
            assert time.monotonic() < deadline, server.metrics_text()
            time.sleep(0.02)
        assert metric_value(server.metrics(), "roam_signaling_disconnects_total",
                            reason="client_closed") == 2
    run(scenario())


def test_sigterm_closes_clients_1012_and_exits_0(server):
    async def scenario():
        alice, bob = await open_pair(server)
        started = time.monotonic()
        server.terminate()
        for client in (alice, bob):
            code, _ = await client.closed(timeout=3)
            assert code == 1012
        code = server.wait(3)
        assert code == 0, server.log()
        assert time.monotonic() - started < 3  # --shutdown-grace 2 (+ slack)
    run(scenario())


def test_sigterm_drains_and_a_client_that_never_answers_cannot_delay_exit(server):
    """During the grace /healthz says draining (503), so a load balancer stops sending; a
    client that never reads the close frame cannot hold the process past --shutdown-grace."""
    stuck = RawWss(server, rcvbuf=4096)
    stuck.send({"type": "hello", "version": 1, "token": server.mint_token("stuck")})
    try:
        wait_until(lambda: server.healthz()[1]["connections"] == 1, 3,
                   what="the stuck client to be counted")
        started = time.monotonic()
        server.terminate()
        status, body = wait_until(_draining(server), 2, interval=0.01,
                                  what="/healthz to report draining")
        assert status == 503 and body["status"] == "draining", body
        assert server.wait(4) == 0, server.log()
        assert time.monotonic() - started < 3.5  # --shutdown-grace 2 (+ slack)
    finally:
        stuck.close()


def test_second_signal_stops_at_once(redis_server, signaling):
    server = signaling(redis_server.port, options=["--shutdown-grace", "10"])
    stuck = RawWss(server, rcvbuf=4096)
    stuck.send({"type": "hello", "version": 1, "token": server.mint_token("stuck")})
    try:
        wait_until(lambda: server.healthz()[1]["connections"] == 1, 3,
                   what="the stuck client to be counted")
        server.terminate()
        wait_until(_draining(server), 2, interval=0.01, what="/healthz to report draining")
        started = time.monotonic()
        server.process.signal(signal.SIGINT)
        code = server.wait(2)
        assert code is not None, "still running 2 s after the second signal (grace is 10 s)"
        assert code == 0, server.log()
        assert time.monotonic() - started < 1.5
    finally:
        stuck.close()


def _renew(cert, new_cert_file, new_key_file):
    """Puts another pair at `cert`'s paths as a renewal tool does: each file written aside, then
    renamed over the old one."""
    for source, target in ((new_key_file, cert.key_file), (new_cert_file, cert.cert_file)):
        aside = target + ".new"
        shutil.copyfile(source, aside)
        os.chmod(aside, 0o600)
        os.replace(aside, target)


def _reloads(server, result):
    return metric_value(server.metrics(), "roam_signaling_certificate_reloads_total",
                        result=result)


def test_sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones(
        redis_server, signaling, tmp_path):
    for name in ("live", "renewed", "other"):
        (tmp_path / name).mkdir()
    live = TlsCert(str(tmp_path / "live"))  # the paths --cert and --key name
    renewed, other = TlsCert(str(tmp_path / "renewed")), TlsCert(str(tmp_path / "other"))
    first_ca = str(tmp_path / "first.pem")
    shutil.copyfile(live.cert_file, first_ca)
    server = signaling(redis_server.port, instance="sig-reload", cert=live)

    async def scenario():
        alice = await SigClient.open(server, "alice")  # on the first certificate
        assert _reloads(server, "ok") == 0 and _reloads(server, "failed") == 0
        _renew(live, renewed.cert_file, renewed.key_file)
        server.process.signal(signal.SIGHUP)
        await eventually(lambda: _reloads(server, "ok") == 1, 5, what="the reload")
        # New connections are served the renewed certificate: a client that trusts only the
        # first one refuses it; one that trusts the renewed one talks to alice, whose
        # connection began on the first.
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(server.url, ssl=ssl.create_default_context(cafile=first_ca),
                                     open_timeout=5)
        bob = await SigClient.open(server, "bob")  # trusts live's files: the renewed pair
        await round_trip(alice, bob)
        # A key that does not belong to the certificate is refused; the renewed pair stays.
        _renew(live, renewed.cert_file, other.key_file)
        server.process.signal(signal.SIGHUP)
        await eventually(lambda: _reloads(server, "failed") == 1, 5, what="the refusal")
        assert "certificate not reloaded" in server.log(), server.log()
        carol = await SigClient.open(server, "carol")
        await round_trip(carol, bob, request="rt2")
        assert _reloads(server, "ok") == 1
    run(scenario())


def _draining(server):
    """A check for wait_until: (status, body) once /healthz stops saying ok."""
    def check():
        try:
            status, body = server.healthz()
        except OSError:
            return None
        return (status, body) if status != 200 else None
    return check


def test_token_command_prints_a_token_the_server_accepts(server):
    result = server.token_command("xavier", ttl=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    token = lines[0].strip()
    claims = jwt.decode(token, server.jwt_secret, algorithms=["HS256"],
                        audience=server.audience)
    assert claims["sub"] == "xavier"
    assert abs(claims["exp"] - (time.time() + 120)) < 5, claims

    async def scenario():
        client = await SigClient.open(server, "xavier", token=token)
        assert client.welcome["peer"] == "xavier"
        assert client.welcome["token_expires"] == claims["exp"]
    run(scenario())


def test_jwt_key_rotation_accepts_the_previous_key_and_counts_what_each_key_admits(
        redis_server, signaling):
    old_key, new_key = DEFAULT_JWT_SECRET, "roam-test-jwt-rotated-key-fedcba9876543210"
    server = signaling(redis_server.port, instance="sig-rotation", jwt_secret=new_key,
                       options=["--jwt-previous-secret", old_key])

    def admitted(key):
        return metric_value(server.metrics(), "roam_signaling_tokens_accepted_total", key=key)

    async def scenario():
        # alice still holds a token of the key being rotated out; bob has one of the new key.
        alice = await SigClient.open(server, "alice", token=mint_token("alice", old_key))
        bob = await SigClient.open(server, "bob", token=mint_token("bob", new_key))
        await round_trip(alice, bob)
        assert (admitted("current"), admitted("previous")) == (1, 1), server.metrics_text()
        # A third key is refused as before; the audience is still checked under the old key.
        for token in (mint_token("mallory", "roam-test-some-other-key-0123456789abc"),
                      mint_token("mallory", old_key, audience="elsewhere")):
            mallory = await SigClient.open(server, "mallory", hello=False)
            await mallory.send({"type": "hello", "version": 1, "token": token})
            code, messages = await mallory.closed()
            assert (code, [m.get("code") for m in messages]) == (1008, ["bad_token"]), messages
        assert (admitted("current"), admitted("previous")) == (1, 1), server.metrics_text()
    run(scenario())


def _run_config(args, env_extra=None):
    """Runs roam-signaling with a clean ROAM_SIGNALING_* environment; returns (code, stderr)
    (killing it if it started serving instead of refusing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROAM_SIGNALING_")}
    env.update(env_extra or {})
    proc = subprocess.Popen([find_binary("roam-signaling"), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        return None, err
    return proc.returncode, err


def _base_args(tls_cert):
    return {"--listen": "127.0.0.1:0", "--admin-listen": "127.0.0.1:0",
            "--cert": tls_cert.cert_file, "--key": tls_cert.key_file,
            "--jwt-secret": DEFAULT_JWT_SECRET, "--turn-secret": "roam-test-secret"}


def _argv(args):
    return [item for key, value in args.items() if value is not None for item in (key, value)]


@pytest.mark.parametrize("change, option", [
    ({"--jwt-secret": "too-short"}, "--jwt-secret"),
    ({"--jwt-previous-secret": "too-short"}, "--jwt-previous-secret"),
    ({"--jwt-previous-secret": DEFAULT_JWT_SECRET}, "--jwt-previous-secret"),
    ({"--cert": None}, "--cert"),
    ({"--key": None}, "--key"),
    ({"--turn-secret": "short"}, "--turn-secret"),
    ({"--listen": "127.0.0.1:99999"}, "--listen"),
    ({"--admin-listen": "nowhere"}, "--admin-listen"),
    ({"--max-message-bytes": "-1"}, "--max-message-bytes"),
    ({"--hello-timeout": "0"}, "--hello-timeout"),
    ({"--redis": "nowhere"}, "--redis"),
])
def test_bad_config_exits_2_naming_the_option(tls_cert, change, option):
    args = _base_args(tls_cert)
    args.update(change)
    code, err = _run_config(_argv(args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and option in lines[0], err
    # A secret, even a bad one, is never echoed.
    assert all(value not in err for key, value in change.items() if key.endswith("-secret")), err


_CERTIFICATE_FAILURES = {
    "certificate not PEM": "no PEM certificate in it",
    "certificate truncated": "a certificate in it does not parse",
}


@pytest.mark.parametrize("failure", ["port taken", "unreadable certificate",
                                     "key of another certificate", *_CERTIFICATE_FAILURES])
def test_start_up_failure_exits_1(tls_cert, failure, tmp_path):
    """docs: start-up failures (port taken, unreadable certificate) exit 1, not 2."""
    args = _base_args(tls_cert)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if failure == "port taken":
            args["--listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        elif failure == "unreadable certificate":
            args["--cert"] = "/nonexistent/cert.pem"
        elif failure in _CERTIFICATE_FAILURES:
            with open(tls_cert.cert_file) as f:
                pem = f.read()
            bad = tmp_path / "cert.pem"
            bad.write_text("garbage\n" if failure == "certificate not PEM" else pem[:300])
            args["--cert"] = str(bad)
        else:
            args["--key"] = TlsCert(str(tmp_path)).key_file
        code, err = _run_config(_argv(args))
    assert code == 1, (code, err)
    assert err.strip(), "no reason given"
    if failure == "key of another certificate":
        assert "does not belong to the certificate" in err, err
    if failure in _CERTIFICATE_FAILURES:
        assert "--cert" in err and _CERTIFICATE_FAILURES[failure] in err, err
