"""roam-signaling for tests and `./run stack`: a self-signed certificate, the server process
(parsing its `ready wss=... admin=... instance=...` line), JWTs for peers, and the admin
endpoint (/healthz, /metrics). The protocol itself is in docs/signaling-protocol.md."""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

import jwt

from .process import Process, find_binary, find_system_binary, wait_until

DEFAULT_JWT_SECRET = "roam-test-jwt-secret-0123456789abcdef"  # >= 32 bytes
DEFAULT_AUDIENCE = "roam"
READY = re.compile(r"^ready wss=(\S+):(\d+) admin=(\S+):(\d+) instance=(\S+)\s*$", re.M)


class TlsCert:
    """Self-signed ECDSA P-256 certificate for localhost/127.0.0.1 made with the openssl CLI
    (docs/signaling-server.md). Clients pin it as their only CA."""

    _shared = None

    def __init__(self, directory=None, days=2):
        self.dir = directory or tempfile.mkdtemp(prefix="roam-cert-")
        self.cert_file = os.path.join(self.dir, "cert.pem")
        self.key_file = os.path.join(self.dir, "key.pem")
        openssl = find_system_binary("openssl", "openssl")
        result = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days), "-subj",
             "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", self.key_file, "-out", self.cert_file],
            capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError("openssl req failed:\n" + result.stderr)
        os.chmod(self.key_file, 0o600)

    @classmethod
    def shared(cls):
        """One certificate per Python process (a test session): generating is the slow part."""
        if cls._shared is None:
            cls._shared = cls()
            atexit.register(shutil.rmtree, cls._shared.dir, True)
        return cls._shared

    def client_context(self):
        """TLS client context trusting only this certificate, with host name checks on."""
        return ssl.create_default_context(cafile=self.cert_file)


def mint_token(peer, secret=DEFAULT_JWT_SECRET, ttl=3600, audience=DEFAULT_AUDIENCE, **claims):
    """HS256 JWT as agents present it in `hello` (sub = peer id). Extra claims override the
    defaults, e.g. exp=... for an expired token or aud=... for a wrong audience."""
    now = int(time.time())
    payload = {"sub": peer, "aud": audience, "iat": now, "exp": now + ttl}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm="HS256")


def parse_metrics(text):
    """Prometheus text exposition → {'name{labels}': value} (labels as printed, sorted by the
    server; tests match them with metric_value)."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            continue
    return values


def metric_value(metrics, name, **labels):
    """Sum of the samples of `name` whose labels include all of `labels` (None if no sample)."""
    total, found = 0.0, False
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if all(pairs.get(k) == str(v) for k, v in labels.items()):
            total += value
            found = True
    return total if found else None


def wait_relays_known(servers, count=1, timeout=5):
    """Until every instance's /healthz lists `count` relays: roam-signaling reads the relay
    registry into a cache every second, and a session made while it is empty carries no
    relay grant (docs/signaling-server.md). Tests about grants wait for it."""
    for server in servers:
        wait_until(lambda: server.healthz()[1].get("relays", 0) >= count, timeout,
                   interval=0.05, what=f"{server.instance} to know {count} relay(s)")


class RoamSignaling:
    """One roam-signaling instance on loopback (port 0 for both listeners).

    options: extra command-line flags as a list (e.g. ["--hello-timeout", "1"]).
    Secrets go through the environment, as the docs recommend for production."""

    def __init__(self, redis_port, turn_secret="roam-test-secret", jwt_secret=DEFAULT_JWT_SECRET,
                 audience=DEFAULT_AUDIENCE, instance=None, options=(), cert=None, start=True,
                 log_level="debug"):
        self.binary = find_binary("roam-signaling")
        self.cert = cert or TlsCert.shared()
        self.jwt_secret, self.audience = jwt_secret, audience
        self.dir = tempfile.mkdtemp(prefix="roam-signaling-")
        self.instance_requested = instance
        self.host = self.port = self.admin_host = self.admin_port = self.instance = None
        self.ready_at = None
        argv = [self.binary, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                "--cert", self.cert.cert_file, "--key", self.cert.key_file,
                "--redis", f"127.0.0.1:{redis_port}",
                "--audience", audience, "--log-level", log_level]
        if instance:
            argv += ["--instance-id", instance]
        argv += list(options)
        env = {"ROAM_SIGNALING_JWT_SECRET": jwt_secret,
               "ROAM_SIGNALING_TURN_SECRET": turn_secret}
        self.process = Process(argv, self.dir, instance or "roam-signaling", env=env)
        if start:
            self.start()

    def start(self, timeout=10):
        """Starts and waits for the ready line; RuntimeError with the log if it never comes."""
        self.process.start()
        try:
            match = wait_until(lambda: READY.search(self.process.stdout()) or self._died(),
                               timeout, what="roam-signaling's ready line")
        except TimeoutError:
            self.process.kill()
            raise RuntimeError("roam-signaling printed no ready line:\n" + self.log())
        if match is True:
            raise RuntimeError(f"roam-signaling exited with {self.process.returncode()}:\n"
                               + self.log())
        self.host, port, self.admin_host, admin_port, self.instance = match.groups()
        self.port, self.admin_port = int(port), int(admin_port)
        self.ready_at = time.monotonic()
        return self

    def _died(self):
        return not self.process.alive()

    @property
    def url(self):
        return f"wss://{self.host}:{self.port}/"

    @property
    def ca_file(self):
        return self.cert.cert_file

    @property
    def admin_url(self):
        return f"http://{self.admin_host}:{self.admin_port}"

    def ssl_context(self):
        return self.cert.client_context()

    def mint_token(self, peer, ttl=3600, **claims):
        """A token this instance accepts (same secret and audience), made with python3-jwt."""
        return mint_token(peer, self.jwt_secret, ttl, self.audience, **claims)

    def token_command(self, peer, ttl=None, extra=()):
        """Runs `roam-signaling token --peer PEER`; returns the CompletedProcess."""
        argv = [self.binary, "token", "--peer", peer, "--audience", self.audience, *extra]
        if ttl is not None:
            argv += ["--ttl", str(ttl)]
        env = dict(os.environ, ROAM_SIGNALING_JWT_SECRET=self.jwt_secret)
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env)

    def admin_get(self, path, timeout=3):
        """(status, body text) of a GET on the admin listener."""
        conn = http.client.HTTPConnection(self.admin_host, self.admin_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def healthz(self):
        status, body = self.admin_get("/healthz")
        return status, json.loads(body)

    def metrics(self):
        status, body = self.admin_get("/metrics")
        assert status == 200, body
        return parse_metrics(body)

    def metrics_text(self):
        return self.admin_get("/metrics")[1]

    def kill(self):
        """SIGKILL: a crash; its clients see their TCP connections reset."""
        self.process.kill()

    def terminate(self):
        self.process.signal(signal.SIGTERM)

    def wait(self, timeout):
        return self.process.wait(timeout)

    def alive(self):
        return self.process.alive()

    def log(self):
        return self.process.log()

    def close(self):
        self.process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
