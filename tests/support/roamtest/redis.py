"""redis-server for tests and a tiny RESP2 client (Debian has no redis-py in our package list;
the handful of commands the tests need fit in a few lines of RESP)."""

import shutil
import socket
import tempfile

from .process import Process, find_system_binary, wait_until
from .servers import free_port


class RedisError(Exception):
    """An error reply (`-ERR ...`) from Redis."""


def _encode(args):
    """A command as a RESP array of bulk strings (the only form Redis needs from clients)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class RespClient:
    """One blocking connection; reconnects on the next call after an error, so a test can keep
    using it across a Redis restart. Replies: str for simple/bulk strings (UTF-8), int, list,
    None for nil; error replies raise RedisError."""

    def __init__(self, port, host="127.0.0.1", timeout=2.0):
        self.address, self.timeout = (host, port), timeout
        self.sock, self.buf = None, b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock, self.buf = None, b""

    def call(self, *args):
        """Sends one command and returns its reply; OSError when Redis is unreachable."""
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.sendall(_encode(args))
            return self._reply()
        except (OSError, EOFError):
            self.close()
            raise

    def ping(self):
        """True when Redis answers PONG now (never raises)."""
        try:
            return self.call("PING") == "PONG"
        except (OSError, EOFError, RedisError):
            return False

    def hgetall(self, key):
        flat = self.call("HGETALL", key) or []
        return dict(zip(flat[0::2], flat[1::2]))

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n).decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError(f"unexpected RESP reply {line!r}")


class RedisServer:
    """redis-server on 127.0.0.1 without persistence. kill()/restart() keep the port, so
    clients configured with it reconnect to the new process (which starts empty, as a
    production Redis without persistence would)."""

    def __init__(self, port=None):
        self.binary = find_system_binary("redis-server", "redis-server")
        self.dir = tempfile.mkdtemp(prefix="roam-redis-")
        self.port = port or free_port(socket.SOCK_STREAM)
        self.process = Process(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--protected-mode", "no"],
            self.dir, "redis")
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def client(self):
        return RespClient(self.port)

    def start(self):
        self.process.start()
        probe = self.client()
        try:
            wait_until(lambda: probe.ping() or not self.process.alive(), 10,
                       what="redis-server to answer PING")
        finally:
            probe.close()
        if not self.process.alive():
            raise RuntimeError("redis-server did not start:\n" + self.process.log())
        return self

    def kill(self):
        """SIGKILL: an outage without a goodbye (clients see their connections reset)."""
        self.process.kill()

    def restart(self):
        self.kill()
        return self.start()

    def log(self):
        return self.process.log()

    def close(self):
        self.process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

