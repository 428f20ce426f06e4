"""Protocol-level clients of roam-signaling for tests.

SigClient: python3-websockets (10.4, asyncio only) over real TLS with the test CA pinned.
RawWss: a TLS socket speaking just enough RFC 6455 to misbehave where a well-behaved library
will not (never reading, odd frames)."""

import asyncio
import base64
import json
import os
import socket
import struct

import websockets

from .json_ws import JsonWsClient

# Waiting for an expected message. Generous: CI runs the integration tests in parallel on 2
# cores beside compiles, where one signaling round trip once took over 3 s; a missing message
# still fails the test, naming it.
DEFAULT_TIMEOUT = 10.0
VALID_FINGERPRINT = "sha-256 " + ":".join(f"{b:02X}" for b in range(32))


def candidate(port=50000, ip="192.0.2.7", foundation="1", kind="host", priority=2130706431):
    """An RFC 8839 UDP candidate line (the text the protocol trickles)."""
    return f"candidate:{foundation} 1 UDP {priority} {ip} {port} typ {kind}"


def run(coroutine, timeout=60):
    """Runs a test coroutine with an overall limit, so a server that never answers fails the
    test instead of hanging the suite (pytest-asyncio is not in Debian's package set). Clients
    still open at the end are closed first: left to asyncio.run's shutdown, each costs a
    second of close timeout."""
    async def main():
        try:
            return await asyncio.wait_for(coroutine, timeout)
        finally:
            await _close_all()
    return asyncio.run(main())


async def eventually(check, timeout, interval=0.05, what="condition"):
    """wait_until for coroutines: polls check() without blocking the event loop, so the
    test's other clients keep answering pings meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


_open_clients = []


async def _close_all():
    clients, _open_clients[:] = list(_open_clients), []
    live = [c.ws for c in clients if not c.ws.closed]
    if live:
        await asyncio.wait([asyncio.ensure_future(ws.close()) for ws in live], timeout=1)
    for ws in live:
        if ws.transport is not None and not ws.closed:
            ws.transport.abort()


class SigClient(JsonWsClient):
    """One agent connection. Messages are dicts; recv()/expect() fail after a short timeout."""

    default_timeout = DEFAULT_TIMEOUT

    @property
    def peer(self):
        return self.name

    @classmethod
    async def open(cls, server, peer=None, token=None, hello=True, origin=None,
                   fingerprint=None, ice=None, version=1, **hello_extra):
        """Opens the WebSocket; with hello=True sends `hello` and waits for `welcome`."""
        ws = await websockets.connect(server.url, ssl=server.ssl_context(), origin=origin,
                                      compression=None, max_size=2 ** 22,
                                      open_timeout=DEFAULT_TIMEOUT, close_timeout=1)
        client = cls(ws, peer)
        _open_clients.append(client)
        if hello:
            if token is None:
                token = server.mint_token(peer)
            message = {"type": "hello", "version": version, "token": token,
                       "client": "roamtest/1"}
            if fingerprint:
                message["fingerprint"] = fingerprint
            if ice:
                message["ice"] = ice
            message.update(hello_extra)
            await client.send(message)
            client.welcome = await client.expect("welcome")
        return client

    async def expect_error(self, code, timeout=DEFAULT_TIMEOUT, **fields):
        return await self.expect("error", timeout, code=code, **fields)

    async def quiet(self, timeout=0.2):
        """Asserts nothing arrives for `timeout` seconds (e.g. a request echo to the wrong
        side); a short window, it only catches prompt mistakes."""
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return
        except websockets.ConnectionClosed:
            return
        raise AssertionError(f"{self.peer}: unexpected message {data}")

    # Protocol helpers.
    async def connect_to(self, peer, request="r1"):
        await self.send({"type": "connect", "request": request, "peer": peer})

    async def candidate(self, session, text=None, **extra):
        message = {"type": "candidate", "session": session}
        if text is None:
            message["end_of_candidates"] = True
        else:
            message["candidate"] = text
        message.update(extra)
        await self.send(message)


async def open_pair(server_a, server_b=None, a="alice", b="bob", **hello):
    """Two authenticated clients (on the same or on different instances)."""
    first = await SigClient.open(server_a, a, **hello)
    second = await SigClient.open(server_b or server_a, b, **hello)
    return first, second


async def start_session(caller, callee, request="r1"):
    """caller connects to callee; returns (caller's session, callee's session)."""
    await caller.connect_to(callee.peer, request)
    mine = await caller.expect("session", request=request, peer=callee.peer)
    theirs = await callee.expect("session", peer=caller.peer)
    assert mine["session"] == theirs["session"]
    return mine, theirs


async def round_trip(caller, callee, request="rt"):
    """A full healthy exchange: session, one candidate each way. Proves a server still
    serves after a hostile client did its worst."""
    mine, _ = await start_session(caller, callee, request)
    sid = mine["session"]
    line = candidate(51000)
    await caller.candidate(sid, line)
    got = await callee.expect("candidate", session=sid)
    assert got["candidate"] == line
    await callee.candidate(sid, candidate(52000))
    await caller.expect("candidate", session=sid, candidate=candidate(52000))
    return sid


async def exchange(a, b, sid, port):
    """One candidate each way in session sid (a first); each must arrive unchanged."""
    line = candidate(port)
    await a.candidate(sid, line)
    await b.expect("candidate", session=sid, candidate=line)
    line = candidate(port + 1, "192.0.2.99")
    await b.candidate(sid, line)
    await a.expect("candidate", session=sid, candidate=line)


def _frame(opcode, payload, fin=True):
    """One masked client frame (RFC 6455 §5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        _xor_long(payload, mask)
    return head + mask + masked


def _xor_long(payload, mask):
    """Masks a long payload quickly (int XOR over the whole buffer)."""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def text_frame(message):
    data = message if isinstance(message, (bytes, str)) else json.dumps(message)
    return _frame(0x1, data.encode() if isinstance(data, str) else data)


def close_frame(code):
    """A close frame with a status code and no reason (RFC 6455 §5.5.1)."""
    return _frame(0x8, struct.pack("!H", code))


class RawWss:
    """A TLS socket that did the WebSocket upgrade by hand. rcvbuf shrinks the receive window
    (set before connect, so the kernel does not autotune it) to play a client that never
    reads."""

    def __init__(self, server, rcvbuf=None, timeout=DEFAULT_TIMEOUT):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        raw.connect((server.host, server.port))
        context = server.ssl_context()
        self.sock = context.wrap_socket(raw, server_hostname=server.host)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET / HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(1)  # byte by byte: leave any frame after it unread
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            response += chunk
        self.status = int(response.split(b" ", 2)[1])

    def send(self, message):
        self.sock.sendall(text_frame(message))

    def send_raw(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

