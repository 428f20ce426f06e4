"""The real stack in the lab's cloud: coturn, redis-server and roam-relay, each a lab Process
(kill()/stop()/restart() are the process faults). Tests only: coturn allows every lab peer
(--allow-loopback-peers, no denied ranges)."""

import os
import shutil
import time

from .lab import LabError, binary
from .topology import CLOUD

SECRET = "roam-lab-shared-secret-0123456789"  # TURN REST wants >= 16 bytes
REALM = "roam.lab"


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
        self.process = lab.popen(node, [
            binary("roam-relay"), "--coturn", coturn.address, "--secret", coturn.secret,
            "--realm", coturn.realm, "--redis", redis.address, "--instance-id", instance,
            "--pool-target", str(pool_target), "--metrics", f"{coturn.ip}:9641",
            "--heartbeat", "0.5", "--health-interval", "0.5", "--log-level", "info"],
            name="roam-relay")

    def pool_size(self):
        out = self.redis.cli("ZCARD", f"roam:relay:{{{self.instance}}}:pool")
        return int(out) if out.isdigit() else -1


def start_stack(lab, node=CLOUD, relay=True, pool_target=10):
    """coturn + redis-server (+ roam-relay) in the cloud; returns (coturn, redis, relay|None)."""
    redis = Redis(lab, node)
    coturn = Coturn(lab, node, extra=(f"--redis-statsdb=ip={redis.ip} dbname=0 port={redis.port} "
                                      f"connect_timeout=30",))
    roam_relay = None
    if relay:
        roam_relay = RoamRelay(lab, coturn, redis, pool_target=pool_target, node=node)
    return coturn, redis, roam_relay
