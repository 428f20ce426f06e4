"""One WebSocket carrying roam-signaling's JSON messages (docs/signaling-protocol.md), on
python3-websockets (10.4, asyncio only): what the tests' client (roamtest.sigclient) and the
lab's (tests/lab/roamlab/sigclient.py) share once they are connected. Messages are dicts; every
wait has a timeout and fails with AssertionError naming the connection."""

import asyncio
import json
import time

import websockets


class JsonWsClient:
    """`name` labels failures (a peer id, a URL)."""

    default_timeout = 10.0

    def __init__(self, ws, name):
        self.ws, self.name = ws, name
        self.welcome = None
        self.waited_for_close = None  # seconds closed() waited, once it returned

    async def send(self, message):
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout=None):
        """The next message as a dict (AssertionError on timeout or close)."""
        timeout = self.default_timeout if timeout is None else timeout
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name}: no message within {timeout} s") from None
        except websockets.ConnectionClosed as e:
            raise AssertionError(f"{self.name}: connection closed ({e.code} {e.reason!r}) "
                                 f"while waiting for a message") from None
        assert isinstance(data, str), f"{self.name}: binary frame from the server"
        return json.loads(data)

    async def expect(self, kind, timeout=None, **fields):
        """The next message, asserting its type (and given fields)."""
        message = await self.recv(timeout)
        assert message.get("type") == kind, f"{self.name}: expected {kind}, got {message}"
        for key, value in fields.items():
            assert message.get(key) == value, f"{self.name}: {key} != {value!r} in {message}"
        return message

    async def closed(self, timeout=None):
        """Waits for the server to close; returns (close code, messages received before) and
        sets waited_for_close. 1006 means the TCP connection ended without a close frame (a
        crash)."""
        timeout = self.default_timeout if timeout is None else timeout
        start = time.monotonic()
        messages = []

        async def drain():
            try:
                while True:
                    data = await self.ws.recv()
                    messages.append(json.loads(data) if isinstance(data, str) else data)
            except websockets.ConnectionClosed:
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{self.name}: still open after {timeout} s; got {messages}") from None
        self.waited_for_close = time.monotonic() - start
        await self.ws.wait_closed()
        return self.ws.close_code, messages

    async def close(self):
        await self.ws.close()
