"""Real servers (coturn, redis-server) for tests, on free loopback ports, always stopped."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_range(count):
    """An even port P with P..P+count-1 free (coturn relay ranges pair even/odd ports)."""
    import random

    for _ in range(200):
        first = random.randrange(30000, 40000) & ~1
        ok = True
        for port in range(first, first + count):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return first
    raise RuntimeError("no free UDP port range")


def stun_ping(host, port, timeout=0.2):
    """True if a bare STUN Binding request (RFC 8489 §5 header only) gets a response."""
    request = bytes.fromhex("00010000" "2112a442") + b"roam-pyping!"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
        return len(data) >= 20 and data[8:20] == request[8:20]


class Coturn:
    """turnserver on 127.0.0.1 with REST auth; loopback peers allowed (tests only)."""

    def __init__(self, secret="roam-test-secret", realm="roam.test", relay_ports=40):
        binary = shutil.which("turnserver") or "/usr/bin/turnserver"
        if not os.path.exists(binary):
            raise FileNotFoundError("turnserver not installed (apt-get install coturn)")
        self.secret, self.realm = secret, realm
        self.dir = tempfile.mkdtemp(prefix="roam-coturn-")
        self.port = free_port()
        self.min_port = free_udp_range(relay_ports)
        self.max_port = self.min_port + relay_ports - 1
        self.binary = binary
        self.proc = None
        self.start()

    def start(self):
        args = [
            self.binary, "-n", "--no-cli", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}", f"--min-port={self.min_port}",
            f"--max-port={self.max_port}", "--no-tls", "--no-dtls", "--no-tcp",
            "--allow-loopback-peers", "--use-auth-secret", f"--static-auth-secret={self.secret}",
            f"--realm={self.realm}", f"--log-file={self.dir}/turn.log", "--simple-log",
            f"--userdb={self.dir}/turndb.sqlite", f"--pidfile={self.dir}/turn.pid",
        ]
        log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if stun_ping("127.0.0.1", self.port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("turnserver did not start:\n" + self.log())

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def log(self):
        out = ""
        for name in ("turn.log", "stdout.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
