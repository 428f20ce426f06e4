"""`./run stack`: the whole signaling stack natively on loopback for trying things by hand:
redis-server, coturn, roam-relay and roam-signaling with generated secrets and a self-signed
certificate in a temporary directory. Prints how to reach it, then waits; Ctrl-C or SIGTERM
stops everything and removes the directory.

With --replicas N it runs the deploy/docker-compose.yml topology natively: N roam-signaling
instances behind haproxy (TCP mode, TLS passed through, /healthz checks, as
deploy/haproxy/haproxy.cfg) listening on --listen, prometheus-redis-exporter, and a Prometheus
server scraping every instance, roam-relay, haproxy, the exporter and itself (plus agents listed in <files>/agents/*.yml)."""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from roamtest.process import Process, find_binary, find_system_binary, wait_until  # noqa: E402
from roamtest.redis import RedisServer  # noqa: E402
from roamtest.relay import RoamRelay  # noqa: E402
from roamtest.servers import Coturn, free_port  # noqa: E402
from roamtest.signaling import RoamSignaling, TlsCert  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./run stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8443",
                        help="WSS address (default %(default)s; a taken port falls back to a "
                             "free one)")
    parser.add_argument("--admin-listen", default="127.0.0.1:9643",
                        help="admin HTTP address (default %(default)s; same fallback)")
    parser.add_argument("--pool-target", type=int, default=10,
                        help="reservation tokens roam-relay keeps ready (default %(default)s)")
    parser.add_argument("--token-ttl", type=int, default=24 * 3600,
                        help="lifetime of the printed dev tokens, seconds (default %(default)s)")
    parser.add_argument("--peer", action="append", default=None,
                        help="print a dev token for this peer (repeatable; default alice, bob)")
    parser.add_argument("--replicas", type=int, default=None, metavar="N",
                        help="N roam-signaling instances behind haproxy on --listen, and a "
                             "Prometheus scraping every server (the docker-compose topology)")
    parser.add_argument("--prometheus-listen", default="127.0.0.1:9090",
                        help="Prometheus address with --replicas (default %(default)s; same "
                             "fallback)")
    args = parser.parse_args(argv)
    if args.replicas is not None and not 1 <= args.replicas <= 16:
        parser.error("--replicas must be between 1 and 16")
    return args


def usable(address):
    """The address if its TCP port is free on loopback, else the same host with port 0."""
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return f"{host}:0"
    return address


class Stack:
    """Starts the four servers in dependency order; close() stops them in reverse."""

    def __init__(self, args):
        self.args = args
        # Callers that build the Namespace themselves (demo, bench goodput) predate --replicas.
        self.replicas = getattr(args, "replicas", None)
        self.dir = tempfile.mkdtemp(prefix="roam-stack-")
        self.started = []
        self.jwt_secret = secrets.token_urlsafe(32)
        self.turn_secret = secrets.token_urlsafe(24)

    def start(self):
        for binary in ("roam-relay", "roam-signaling"):
            find_binary(binary)  # fail before starting anything
        tls_dir = os.path.join(self.dir, "tls")
        os.makedirs(tls_dir)
        self.cert = TlsCert(tls_dir)
        self.redis = self._keep(RedisServer())
        self.coturn = self._keep(Coturn(secret=self.turn_secret, realm="roam.local",
                                        relay_ports=max(40, 4 * self.args.pool_target)))
        self.relay = self._keep(RoamRelay(self.coturn, self.redis, instance="relay-local-1",
                                          pool_target=self.args.pool_target, wait_pool=False))
        if self.replicas is None:
            self.signaling = self._keep(RoamSignaling(
                self.redis.port, turn_secret=self.turn_secret, jwt_secret=self.jwt_secret,
                instance="sig-local-1", cert=self.cert, start=False,
                log_level="info"))
            self._listen(self.signaling, self.args.listen, self.args.admin_listen)
            self.signaling.start()
            self.signalings = [self.signaling]
            return self
        self.signalings = [
            self._keep(RoamSignaling(self.redis.port, turn_secret=self.turn_secret,
                                     jwt_secret=self.jwt_secret, instance=f"sig-local-{i}",
                                     cert=self.cert, log_level="info"))
            for i in range(1, self.replicas + 1)]
        self.signaling = self.signalings[0]
        self.lb = self._keep(Haproxy(self.dir, self.signalings, usable(self.args.listen)))
        self.redis_exporter = self._keep(RedisExporter(self.dir, self.redis.address))
        self.prometheus = self._keep(Prometheus(
            self.dir, usable(getattr(self.args, "prometheus_listen", "127.0.0.1:0")), self.scrape_targets()))
        return self

    def scrape_targets(self):
        """{job: [HOST:PORT, ...]}: every server of the stack that exports metrics."""
        return {
            "roam-signaling": [f"{s.admin_host}:{s.admin_port}" for s in self.signalings],
            "roam-relay": [f"127.0.0.1:{self.relay.metrics_port}"],
            "haproxy": [f"127.0.0.1:{self.lb.metrics_port}"],
            "redis": [f"127.0.0.1:{self.redis_exporter.port}"],
        }

    @property
    def url(self):
        """The wss URL agents use: the load balancer with --replicas, else the instance."""
        return self.lb.url if self.replicas is not None else self.signaling.url

    def _keep(self, server):
        self.started.append(server)
        return server

    @staticmethod
    def _listen(server, listen, admin):
        """Swaps the launcher's port-0 listen addresses for the requested ones."""
        argv = server.process.argv
        argv[argv.index("--listen") + 1] = usable(listen)
        argv[argv.index("--admin-listen") + 1] = usable(admin)

    def describe(self):
        sig = self.signaling
        lines = ["roam stack is up (Ctrl-C stops it)"]
        if self.replicas is not None:
            lines.append(f"  haproxy    {self.lb.url}   (TLS passthrough to "
                         f"{len(self.signalings)} instances; its metrics "
                         f"http://127.0.0.1:{self.lb.metrics_port}/metrics)")
            lines.append(f"  redis      exporter http://127.0.0.1:{self.redis_exporter.port}/metrics")
            lines.append(f"  prometheus {self.prometheus.url}/targets   (config "
                         f"{self.prometheus.config_file})")
            for s in self.signalings:
                lines.append(f"  signaling  {s.url}   instance {s.instance}   "
                             f"admin {s.admin_url}")
        else:
            lines.append(f"  signaling  {sig.url}   instance {sig.instance}")
        lines += [
            f"  CA file    {sig.ca_file}",
            f"  admin      {sig.admin_url}/healthz   {sig.admin_url}/metrics",
            f"  relay      coturn turn:{self.coturn.address}?transport=udp "
            f"(realm {self.coturn.realm}), roam-relay metrics "
            f"http://127.0.0.1:{self.relay.metrics_port}/metrics",
            f"  redis      {self.redis.address}",
            f"  files      {self.dir}",
            f"  logs       {sig.process.stderr_path}",
            f"             {self.relay.process.stderr_path}",
            f"             {self.coturn.dir}/turn.log",
            f"  try        SSL_CERT_FILE={sig.ca_file} /usr/bin/python3 -m websockets {self.url}",
            '             then type {"type":"hello","version":1,"token":"<a token below>"}',
            "  dev tokens (HS256, aud roam):",
        ]
        for peer in self.args.peer or ["alice", "bob"]:
            result = sig.token_command(peer, ttl=self.args.token_ttl)
            token = result.stdout.strip() if result.returncode == 0 else \
                sig.mint_token(peer, ttl=self.args.token_ttl)
            lines.append(f"    {peer}: {token}")
        return "\n".join(lines)

    def close(self):
        for server in reversed(self.started):
            try:
                server.close()
            except Exception as e:  # keep stopping the others
                print(f"stack: stopping {type(server).__name__}: {e}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


HAPROXY_TEMPLATE = """# written by ./run stack --replicas (tests/support/roamtest/stack.py); the same
# load balancing as deploy/haproxy/haproxy.cfg with loopback addresses
global
    maxconn 4000

defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout client-fin 10s
    timeout tunnel 1h

frontend signaling
    bind {listen}
    default_backend signaling

backend signaling
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}

frontend metrics
    mode http
    bind 127.0.0.1:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


def haproxy_config(signalings, listen, metrics_port):
    servers = "\n".join(
        f"    server {s.instance} {s.host}:{s.port} check port {s.admin_port}"
        for s in signalings)
    return HAPROXY_TEMPLATE.format(listen=listen, servers=servers, metrics_port=metrics_port)


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


class Haproxy:
    """haproxy (Debian package) in the foreground in front of the signaling instances; start
    returns when every backend passed its health check."""

    def __init__(self, directory, signalings, listen):
        self.binary = find_system_binary("haproxy", "haproxy")
        self.metrics_port = free_port(socket.SOCK_STREAM)
        if listen.endswith(":0"):
            listen = f"{listen.rsplit(':', 1)[0]}:{free_port(socket.SOCK_STREAM)}"
        self.host, port = listen.rsplit(":", 1)
        self.port = int(port)
        self.config_file = os.path.join(directory, "haproxy.cfg")
        with open(self.config_file, "w") as f:
            f.write(haproxy_config(signalings, listen, self.metrics_port))
        self.process = Process([self.binary, "-db", "-f", self.config_file], directory,
                               "haproxy")
        self.process.start()
        count = len(signalings)
        try:
            wait_until(lambda: self._died() or self.active_servers() == count, 10,
                       interval=0.05, what=f"haproxy with {count} healthy backends")
        except TimeoutError:
            self.close()
            raise RuntimeError("haproxy backends not healthy:\n" + self.process.log())
        if self._died():
            raise RuntimeError("haproxy exited:\n" + self.process.log())

    def _died(self):
        return not self.process.alive()

    def active_servers(self):
        try:
            _, text = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        except OSError:
            return -1
        for line in text.splitlines():
            if line.startswith('haproxy_backend_active_servers{proxy="signaling"}'):
                return int(float(line.rsplit(" ", 1)[1]))
        return -1

    @property
    def url(self):
        return f"wss://{self.host}:{self.port}/"

    def close(self):
        self.process.stop()


class RedisExporter:
    """prometheus-redis-exporter (Debian package) for the stack's Redis: redis_up and friends,
    as the compose stack's redis-exporter service."""

    def __init__(self, directory, redis_address):
        binary = find_system_binary("prometheus-redis-exporter", "prometheus-redis-exporter")
        self.port = free_port(socket.SOCK_STREAM)
        self.process = Process(
            [binary, "-redis.addr", f"redis://{redis_address}",
             "-web.listen-address", f"127.0.0.1:{self.port}"], directory, "redis-exporter")
        self.process.start()

        def up():
            if not self.process.alive():
                return True
            try:
                return http_get(f"http://127.0.0.1:{self.port}/metrics")[0] == 200
            except OSError:
                return False
        try:
            wait_until(up, 10, interval=0.05, what="prometheus-redis-exporter")
        except TimeoutError:
            self.close()
            raise RuntimeError("redis exporter not serving:\n" + self.process.log())
        if not self.process.alive():
            raise RuntimeError("redis exporter exited:\n" + self.process.log())

    def close(self):
        self.process.stop()


PROMETHEUS_SCRAPE_INTERVAL = "1s"


def prometheus_config(targets, self_address, agents_dir):
    """prometheus.yml (JSON is YAML) with one job per entry of targets, Prometheus itself and
    the agents' file_sd directory."""
    jobs = [{"job_name": "prometheus", "static_configs": [{"targets": [self_address]}]}]
    for job, addresses in targets.items():
        jobs.append({"job_name": job, "static_configs": [{"targets": addresses}]})
    jobs.append({"job_name": "roam-agent", "file_sd_configs": [
        {"files": [os.path.join(agents_dir, "*.yml")], "refresh_interval": "1s"}]})
    return {"global": {"scrape_interval": PROMETHEUS_SCRAPE_INTERVAL,
                       "evaluation_interval": PROMETHEUS_SCRAPE_INTERVAL},
            "scrape_configs": jobs}


class Prometheus:
    """The Debian prometheus server on loopback, scraping `targets` ({job: [addresses]})."""

    def __init__(self, directory, listen, targets):
        self.binary = find_system_binary("prometheus", "prometheus")
        if listen.endswith(":0"):
            listen = f"{listen.rsplit(':', 1)[0]}:{free_port(socket.SOCK_STREAM)}"
        self.address = listen
        self.dir = os.path.join(directory, "prometheus")
        self.agents_dir = os.path.join(self.dir, "agents")
        os.makedirs(self.agents_dir)
        self.config_file = os.path.join(self.dir, "prometheus.yml")
        self.targets = targets
        with open(self.config_file, "w") as f:
            json.dump(prometheus_config(targets, listen, self.agents_dir), f, indent=2)
        self.process = Process(
            [self.binary, f"--config.file={self.config_file}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address={listen}", "--web.enable-lifecycle",
             "--log.level=warn"], self.dir, "prometheus")
        self.process.start()
        try:
            wait_until(lambda: not self.process.alive() or self.ready(), 20, interval=0.1,
                       what="prometheus to be ready")
        except TimeoutError:
            self.close()
            raise RuntimeError("prometheus not ready:\n" + self.process.log())
        if not self.process.alive():
            raise RuntimeError("prometheus exited:\n" + self.process.log())

    @property
    def url(self):
        return f"http://{self.address}"

    def ready(self):
        try:
            return http_get(self.url + "/-/ready")[0] == 200
        except OSError:
            return False

    def api(self, path):
        status, body = http_get(self.url + "/api/v1/" + path)
        result = json.loads(body)
        assert status == 200 and result["status"] == "success", body
        return result["data"]

    def active_targets(self):
        return self.api("targets?state=active")["activeTargets"]

    def add_agent(self, name, address):
        """Adds an agent's --metrics address to the roam-agent job (file_sd)."""
        path = os.path.join(self.agents_dir, f"{name}.yml")
        with open(path + ".tmp", "w") as f:
            json.dump([{"targets": [address], "labels": {"agent": name}}], f)
        os.replace(path + ".tmp", path)

    def close(self):
        self.process.stop()


def _alive(server):
    """Coturn (servers.py) keeps a Popen in .proc; the other launchers a Process in .process."""
    if hasattr(server, "process"):
        return server.process.alive()
    return server.proc is not None and server.proc.poll() is None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stack = Stack(args)
    try:
        stack.start()
        if stop.is_set():
            return 0
        print(stack.describe(), flush=True)
        while not stop.wait(0.5):
            for server in stack.started:
                if not _alive(server):
                    print(f"stack: {type(server).__name__} exited; stopping", file=sys.stderr)
                    return 1
        return 0
    except (FileNotFoundError, RuntimeError, TimeoutError) as e:
        print(f"stack: {e}", file=sys.stderr)
        return 1
    finally:
        stack.close()
        print("stack: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
