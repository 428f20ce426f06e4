"""roam-relay beside a test Coturn, writing the relay registry and token pool into a test
Redis (docs/relay-pool.md), plus the pool's atomic take so tests can play signaling."""

import json
import socket
import tempfile
import shutil

from .process import Process, find_binary, wait_until
from .servers import free_port

# docs/relay-pool.md "Taking a token atomically", verbatim.
TAKE_TOKEN_SCRIPT = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('ZRANGEBYSCORE', KEYS[1], now + tonumber(ARGV[1]), '+inf', 'LIMIT', 0, 1)
if #m == 0 then return false end
redis.call('ZREM', KEYS[1], m[1])
return m[1]
"""


def instance_key(instance):
    return f"roam:relay:{{{instance}}}:instance"


def pool_key(instance):
    return f"roam:relay:{{{instance}}}:pool"


class RoamRelay:
    """roam-relay for one Coturn. Fast heartbeats/health checks so tests see changes in
    well under a second; start() returns once the registry hash is in Redis."""

    def __init__(self, coturn, redis, instance="relay-test-1", pool_target=4, region="default",
                 wait_pool=True):
        self.coturn, self.redis, self.instance = coturn, redis, instance
        self.pool_target = pool_target
        self.dir = tempfile.mkdtemp(prefix="roam-relay-")
        self.metrics_port = free_port(socket.SOCK_STREAM)
        self.process = Process(
            [find_binary("roam-relay"), "--coturn", coturn.address, "--realm", coturn.realm,
             "--redis", redis.address, "--instance-id", instance, "--region", region,
             "--pool-target", str(pool_target), "--metrics", f"127.0.0.1:{self.metrics_port}",
             "--heartbeat", "0.5", "--health-interval", "0.5", "--log-level", "info"],
            self.dir, "roam-relay", env={"ROAM_RELAY_SECRET": coturn.secret})
        self.client = redis.client()
        self.start(wait_pool)

    def start(self, wait_pool=True):
        self.process.start()
        self.wait_registered()
        if wait_pool:
            self.wait_pool(self.pool_target)
        return self

    def registry(self):
        """The instance hash (empty dict when absent or Redis is down)."""
        try:
            return self.client.hgetall(instance_key(self.instance))
        except (OSError, EOFError):
            return {}

    def pool_size(self):
        try:
            return self.client.call("ZCARD", pool_key(self.instance))
        except (OSError, EOFError):
            return -1

    def wait_registered(self, timeout=10):
        """Until the registry hash says healthy=1 (fails early when the process died)."""
        def registered():
            if not self.process.alive():
                raise RuntimeError("roam-relay exited:\n" + self.process.log())
            return self.registry().get("healthy") == "1"
        wait_until(registered, timeout, what=f"relay {self.instance} in the registry")

    def wait_pool(self, count, timeout=15):
        wait_until(lambda: self.pool_size() >= count, timeout,
                   what=f"{count} tokens in the pool of {self.instance}")

    def take_token(self, min_remaining_ms=10000):
        """Takes one pool entry the way roam-signaling does; the decoded member or None."""
        member = self.client.call("EVAL", TAKE_TOKEN_SCRIPT, 1, pool_key(self.instance),
                                  min_remaining_ms)
        return json.loads(member) if member else None

    def log(self):
        return self.process.log()

    def close(self):
        self.process.stop()
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)
