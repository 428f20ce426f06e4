"""The real stack in the lab's cloud: coturn, redis-server, roam-relay and roam-signaling, each
a lab Process (kill()/stop()/restart() are the process faults). Tests only: coturn allows
every lab peer (--allow-loopback-peers, no denied ranges).

    stack = start_stack(lab, signaling=2)     # coturn, redis, roam-relay, two roam-signaling
    client = await stack.signaling[0].open_client("alice", "alice")   # WSS from a NATed host
    stack.signaling[0].kill()                 # "signaling instance killed"
"""

import dataclasses
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import time

from .lab import LabError, binary
from .topology import CLOUD

SECRET = "roam-lab-shared-secret-0123456789"  # TURN REST wants >= 16 bytes
REALM = "roam.lab"
AUDIENCE = "roam"
SIGNALING_PORT = 8443
SIGNALING_ADMIN_PORT = 9643
SIGNALING_RELAY_REFRESH_S = 1.5   # RelayDirectory::kRefreshInterval (1 s) + margin
READY = re.compile(r"ready wss=(\S+) admin=(\S+) instance=(\S+)\n")


def _need(tool):
    path = shutil.which(tool) or f"/usr/bin/{tool}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{tool} not installed (./run deps)")
    return path


def _wait(check, timeout, what, process):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not process.alive():
            break
        time.sleep(0.05)
    raise LabError(f"{what} did not come up (exit {process.proc.poll()}):\n{process.log()}")


class Coturn:
    def __init__(self, lab, node=CLOUD, ip=None, port=3478, secret=SECRET, realm=REALM,
                 relay_ports=(49152, 49351), extra=()):
        self.lab, self.node = lab, node
        self.ip = ip or lab.cloud(4, 0)
        self.port, self.secret, self.realm = port, secret, realm
        self.dir = os.path.join(lab.dir, f"coturn-{node}-{port}")
        os.makedirs(self.dir, exist_ok=True)
        argv = [_need("turnserver"), "-n", "--no-cli", f"--listening-ip={self.ip}",
                f"--relay-ip={self.ip}", f"--listening-port={port}",
                f"--min-port={relay_ports[0]}", f"--max-port={relay_ports[1]}",
                "--no-tls", "--no-dtls", "--allow-loopback-peers", "--use-auth-secret",
                f"--static-auth-secret={secret}", f"--realm={realm}",
                f"--log-file={self.dir}/turn.log", "--simple-log",
                f"--userdb={self.dir}/turndb.sqlite", f"--pidfile={self.dir}/turn.pid", *extra]
        self.process = lab.popen(node, argv, name="coturn")
        self.wait_ready()

    @property
    def address(self):
        return f"{self.ip}:{self.port}"

    def stun_ok(self):
        r = self.lab.run(self.node, ["/usr/bin/python3", os.path.join(os.path.dirname(__file__),
                                                                       "probe.py"),
                                     "stun", "--server", self.address, "--timeout", "0.2",
                                     "--tries", "1"], check=False)
        return '"ok": true' in r.stdout

    def wait_ready(self, timeout=10):
        _wait(self.stun_ok, timeout, "turnserver", self.process)
        return self

    def restart(self):
        self.process.restart()
        return self.wait_ready()

    def log(self):
        try:
            with open(os.path.join(self.dir, "turn.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return self.process.log()


class Redis:
    def __init__(self, lab, node=CLOUD, ip=None, port=6379):
        self.lab, self.node = lab, node
        self.ip, self.port = ip or lab.cloud(4, 0), port
        self.dir = os.path.join(lab.dir, f"redis-{node}-{port}")
        os.makedirs(self.dir, exist_ok=True)
        self.process = lab.popen(node, [_need("redis-server"), "--bind", self.ip, "--port",
                                        str(port), "--save", "", "--appendonly", "no",
                                        "--protected-mode", "no", "--dir", self.dir],
                                 name="redis")
        self.wait_ready()

    @property
    def address(self):
        return f"{self.ip}:{self.port}"

    def cli(self, *args):
        r = self.lab.run(self.node, [_need("redis-cli"), "-h", self.ip, "-p", str(self.port),
                                     *args], check=False)
        return r.stdout.strip()

    def wait_ready(self, timeout=10):
        _wait(lambda: self.cli("PING") == "PONG", timeout, "redis-server", self.process)
        return self

    def restart(self):
        self.process.restart()
        return self.wait_ready()


class RoamRelay:
    """roam-relay beside coturn: fills the reservation-token pool in Redis."""

    def __init__(self, lab, coturn, redis, instance="lab-relay", pool_target=10, node=CLOUD):
        self.lab, self.instance, self.redis = lab, instance, redis
        self.pool_target = pool_target
        self.process = lab.popen(node, [
            binary("roam-relay"), "--coturn", coturn.address, "--secret", coturn.secret,
            "--realm", coturn.realm, "--redis", redis.address, "--instance-id", instance,
            "--pool-target", str(pool_target), "--metrics", f"{coturn.ip}:9641",
            "--heartbeat", "0.5", "--health-interval", "0.5", "--log-level", "info"],
            name="roam-relay")

    @property
    def pool_key(self):
        return f"roam:relay:{{{self.instance}}}:pool"

    def pool_size(self):
        out = self.redis.cli("ZCARD", self.pool_key)
        return int(out) if out.isdigit() else -1

    def pool(self):
        """The pool's members (docs/relay-pool.md): [{"relay", "token", "expires_ms"}, ...]."""
        out = self.redis.cli("ZRANGE", self.pool_key, "0", "-1")
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _split(endpoint):
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def signaling_tls(lab):
    """(cert, key, jwt_secret) shared by every signaling instance of the lab, made once per lab
    in lab.dir/signaling: a self-signed ECDSA P-256 certificate (openssl CLI) naming every
    cloud address (IPv4 and IPv6) and signaling.roam.lab, and a random HS256 secret (64 hex
    characters). Clients pin the certificate as their only CA; a token works on any
    instance."""
    directory = os.path.join(lab.dir, "signaling")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    secret_file = os.path.join(directory, "jwt-secret")
    if not os.path.exists(secret_file):
        os.makedirs(directory, exist_ok=True)
        sans = ["DNS:signaling.roam.lab"] + [f"IP:{ip}" for ip in lab.plan.cloud4 + lab.plan.cloud6]
        r = subprocess.run([_need("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                            "/CN=roam-lab", "-addext", "subjectAltName=" + ",".join(sans),
                            "-keyout", key, "-out", cert],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise LabError(f"openssl req failed:\n{r.stderr}")
        os.chmod(key, 0o600)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    with open(secret_file) as f:
        return cert, key, f.read().strip()


class Signaling:
    """One roam-signaling instance in the cloud: WSS on ip:port, admin HTTP on ip:admin_port,
    the lab's Redis for the peer registry and relay pool, coturn's secret for TURN REST
    credentials. Secrets reach it through the environment, as the docs recommend.

    kill() (SIGKILL: clients see their TCP connections end without a close frame), stop()
    (SIGTERM: close 1012, graceful), restart() (waits for the ready line again)."""

    def __init__(self, lab, redis, turn_secret=SECRET, node=CLOUD, ip=None, port=SIGNALING_PORT,
                 admin_port=None, instance=None, audience=AUDIENCE, extra=()):
        self.lab, self.node, self.redis, self.audience = lab, node, redis, audience
        self.ip = ip or lab.cloud(4, 0)
        self.port = port
        self.admin_port = admin_port or SIGNALING_ADMIN_PORT + (port - SIGNALING_PORT)
        self.instance_requested = instance or f"sig-{self.ip}-{port}"
        self.cert, self.key, self.jwt_secret = signaling_tls(lab)
        self.binary = binary("roam-signaling")
        self.env = dict(os.environ, ROAM_SIGNALING_JWT_SECRET=self.jwt_secret,
                        ROAM_SIGNALING_TURN_SECRET=turn_secret)
        argv = [self.binary, "--listen", _endpoint(self.ip, port),
                "--admin-listen", _endpoint(self.ip, self.admin_port),
                "--cert", self.cert, "--key", self.key, "--redis", redis.address,
                "--instance-id", self.instance_requested, "--audience", audience,
                "--threads", "1", "--max-connections", "1000", "--log-level", "info", *extra]
        self.wss = self.admin = self.instance = None
        self.process = lab.popen(node, argv, name=f"roam-signaling-{self.instance_requested}",
                                 stdout=subprocess.PIPE, env=self.env)
        self.wait_ready()

    def wait_ready(self, timeout=10):
        """Reads the `ready wss=... admin=... instance=...` line (LabError with the log if it
        never comes)."""
        text = self.process.wait_line("ready wss=", timeout)
        if not READY.search(text):    # the rest of the line is still on its way
            text += self.process.wait_line("\n", 2)
        m = READY.search(text)
        if not m:
            raise LabError(f"roam-signaling printed an unexpected ready line: {text!r}")
        self.wss, self.admin, self.instance = m.groups()
        return self

    @property
    def url(self):
        return f"wss://{self.wss}/"

    def restart(self):
        self.process.restart()
        return self.wait_ready()

    def kill(self):
        return self.process.kill()

    def stop(self, grace=8.0):
        return self.process.stop(grace)

    def log(self):
        return self.process.log()

    # -- tokens ----------------------------------------------------------------------------
    def token(self, peer, ttl=3600, **claims):
        """An HS256 JWT every instance of this lab accepts, made with python3-jwt."""
        import jwt
        now = int(time.time())
        payload = {"sub": peer, "aud": self.audience, "iat": now, "exp": now + ttl}
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None},
                          self.jwt_secret, algorithm="HS256")

    def token_cli(self, peer, ttl=3600):
        """The same made by `roam-signaling token --peer PEER`."""
        r = subprocess.run([self.binary, "token", "--peer", peer, "--ttl", str(ttl),
                            "--audience", self.audience], capture_output=True, text=True,
                           timeout=10, env=self.env)
        if r.returncode != 0 or not r.stdout.strip():
            raise LabError(f"roam-signaling token failed ({r.returncode}): {r.stderr}")
        return r.stdout.strip()

    # -- clients ---------------------------------------------------------------------------
    async def open_client(self, node, peer=None, token=None, **hello):
        """A SigClient in the node's namespace (its TCP socket lives there, so the connection
        crosses the node's NAT), authenticated as `peer` (or with `token`)."""
        from .sigclient import SigClient
        if token is None:
            token = self.token(peer)
        return await SigClient.open(self.url, self.cert, token,
                                    sock_factory=lambda family: self.lab.socket(node, family),
                                    **hello)

    def admin_get(self, path, node=None, timeout=3):
        """(status, body) of GET `path` on the admin listener, asked from `node` (default:
        the instance's own namespace; the admin port is plain HTTP, keep it in the cloud)."""
        host, port = _split(self.admin)
        sock = self.lab.socket(node or self.node, 6 if ":" in host else 4)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.sock = sock
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            sock.close()

    def healthy(self):
        try:
            return self.admin_get("/healthz")[0] == 200
        except OSError:
            return False

    def connected_clients(self):
        """Remote endpoints of the established WSS connections, as the server sees them
        (behind a NAT: the NAT's external address)."""
        host, port = _split(self.wss)
        r = self.lab.run(self.node, ["ss", "-Htn", "state", "established",
                                     f"( sport = :{port} )"], check=False)
        peers = []
        for line in r.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 4 and _split(fields[-2])[0] == host:
                peers.append(fields[-1])
        return peers


@dataclasses.dataclass
class Stack:
    coturn: Coturn
    redis: Redis
    relay: "RoamRelay | None"
    signaling: list

    def wait_relay_grants(self, timeout=15):
        """Waits until a `connect` gets relay grants with reservation tokens: roam-relay's pool
        is full and every signaling instance has re-read the relay registry since roam-relay
        registered (roam-signaling refreshes it every second and says nothing about it)."""
        self.wait_pool(timeout=timeout)
        time.sleep(SIGNALING_RELAY_REFRESH_S)
        return self

    def wait_pool(self, size=None, timeout=15):
        """Waits until roam-relay's token pool holds `size` (default: its target) tokens."""
        size = size or self.relay.pool_target
        deadline = time.monotonic() + timeout
        while self.relay.pool_size() < size:
            if time.monotonic() > deadline or not self.relay.process.alive():
                raise LabError(f"roam-relay pool {self.relay.pool_size()}/{size} after "
                               f"{timeout} s:\n{self.relay.process.log()[-3000:]}")
            time.sleep(0.1)
        return self.relay.pool_size()


def start_stack(lab, node=CLOUD, relay=True, pool_target=10, signaling=1):
    """redis-server, coturn (REST auth, stats to Redis), roam-relay (unless relay=False) and
    `signaling` roam-signaling instances in the cloud. Instance k listens on cloud address
    k mod n (n = the topology's cloud_addresses), port 8443 + k div n, admin port 9643 + k
    div n, id sig-<k+1>. Returns a Stack."""
    redis = Redis(lab, node)
    coturn = Coturn(lab, node, extra=(f"--redis-statsdb=ip={redis.ip} dbname=0 port={redis.port} "
                                      f"connect_timeout=30",))
    roam_relay = None
    if relay:
        roam_relay = RoamRelay(lab, coturn, redis, pool_target=pool_target, node=node)
    instances = []
    n = len(lab.plan.cloud4)
    for k in range(signaling):
        instances.append(Signaling(lab, redis, coturn.secret, node, ip=lab.cloud(4, k % n),
                                   port=SIGNALING_PORT + k // n, instance=f"sig-{k + 1}"))
    return Stack(coturn, redis, roam_relay, instances)
