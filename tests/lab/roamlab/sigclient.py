"""A roam-signaling client for the lab: python3-websockets (10.4, asyncio) over real TLS with
the lab's certificate pinned (docs/signaling-protocol.md).

In a test, the socket comes from the host it should live in, so the connection really crosses
that host's NAT (`Signaling.open_client` does this with `Lab.socket`):

    client = await SigClient.open(url, cafile, token, sock_factory=lambda f: lab.socket("alice", f))
    await client.send({"type": "connect", "request": "r1", "peer": "bob"})
    session = await client.expect("session")

As a script, run inside a host (`ip netns exec ... /usr/bin/python3 sigclient.py ...`), it says
hello, prints every message as one JSON line, and exits after --wait seconds or when the
server closes:

    sigclient.py --url wss://203.0.113.10:8443/ --ca CERT --token JWT [--connect PEER] [--wait S]
"""

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

import websockets

# The connected half is the tests' own (tests/support/roamtest/json_ws.py); this file also runs
# as a script inside a lab host.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "support"))
from roamtest.json_ws import JsonWsClient  # noqa: E402

DEFAULT_TIMEOUT = 5.0


class SigClient(JsonWsClient):
    """One authenticated agent connection; messages are dicts."""

    default_timeout = DEFAULT_TIMEOUT

    @property
    def url(self):
        return self.name

    @classmethod
    async def open(cls, url, cafile, token, sock_factory=None, timeout=DEFAULT_TIMEOUT,
                   hello=True, **hello_extra):
        """Connects (TCP, TLS pinned to `cafile`, WebSocket upgrade); with hello=True sends
        `hello` with `token` and waits for `welcome` (AssertionError otherwise).
        sock_factory(family) -> an unconnected TCP socket (e.g. one in a lab host)."""
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 443
        sock = None
        if sock_factory is not None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = sock_factory(family)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)),
                                       timeout)
            except BaseException:
                sock.close()
                raise
        context = ssl.create_default_context(cafile=cafile)
        kwargs = {"sock": sock, "server_hostname": host} if sock is not None else {}
        ws = await websockets.connect(url, ssl=context, compression=None, open_timeout=timeout,
                                      close_timeout=1, max_size=2 ** 20, **kwargs)
        client = cls(ws, url)
        if hello:
            message = {"type": "hello", "version": 1, "token": token, "client": "roamlab/1"}
            message.update(hello_extra)
            await client.send(message)
            client.welcome = await client.expect("welcome", timeout)
        return client


async def _main(args):
    def out(obj):
        print(json.dumps(obj), flush=True)

    last = None
    for url in args.url:
        try:
            client = await SigClient.open(url, args.ca, args.token, timeout=args.timeout)
            break
        except (OSError, AssertionError, asyncio.TimeoutError,
                websockets.InvalidHandshake) as e:
            last = e
            out({"type": "lab-connect-failed", "url": url, "error": repr(e)})
    else:
        raise SystemExit(f"no server reachable: {last!r}")
    out(client.welcome)
    if args.connect:
        await client.send({"type": "connect", "request": "lab", "peer": args.connect})
    deadline = time.monotonic() + args.wait
    try:
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(client.ws.recv(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
            print(data, flush=True)
    except websockets.ConnectionClosed as e:
        out({"type": "lab-closed", "code": e.code, "reason": e.reason})
        return 1
    await client.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", required=True,
                   help="wss://IP:PORT/ (repeat: the first reachable one is used)")
    p.add_argument("--ca", required=True, help="the lab's signaling certificate (PEM)")
    p.add_argument("--token", required=True, help="JWT (roam-signaling token --peer ID)")
    p.add_argument("--connect", help="peer id to start a session with")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to print messages")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = p.parse_args()
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
