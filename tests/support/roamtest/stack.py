"""`./run stack`: the whole signaling stack natively on loopback for trying things by hand:
redis-server, coturn, roam-relay and roam-signaling with generated secrets and a self-signed
certificate in a temporary directory. Prints how to reach it, then waits; Ctrl-C or SIGTERM
stops everything and removes the directory."""

import argparse
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from roamtest.process import find_binary  # noqa: E402
from roamtest.redis import RedisServer  # noqa: E402
from roamtest.relay import RoamRelay  # noqa: E402
from roamtest.servers import Coturn  # noqa: E402
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
    return parser.parse_args(argv)


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
        self.signaling = self._keep(RoamSignaling(
            self.redis.port, turn_secret=self.turn_secret, jwt_secret=self.jwt_secret,
            instance="sig-local-1", cert=self.cert, start=False,
            log_level="info"))
        self._listen(self.signaling, self.args.listen, self.args.admin_listen)
        self.signaling.start()
        return self

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
        lines = [
            "roam stack is up (Ctrl-C stops it)",
            f"  signaling  {sig.url}   instance {sig.instance}",
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
            f"  try        SSL_CERT_FILE={sig.ca_file} /usr/bin/python3 -m websockets {sig.url}",
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
