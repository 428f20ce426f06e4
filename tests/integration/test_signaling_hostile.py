"""Hostile clients against roam-signaling (docs/signaling-protocol.md "Limits", "Close codes",
error table; /work/shared/notes/security.md). Each test checks the documented answer AND that
the server keeps serving: a healthy pair opened before the attack does a full round trip
after it."""

import asyncio
import base64
import json
import socket
import ssl
import time

import jwt
import pytest
import websockets

from roamtest.process import wait_until
from roamtest.sigclient import (RawWss, SigClient, candidate, close_frame, eventually,
                                open_pair, round_trip, run, text_frame)
from roamtest.signaling import metric_value


def options(**flags):
    """{"hello_timeout": 1} → ["--hello-timeout", "1"]."""
    argv = []
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


@pytest.fixture
def server(redis_server, signaling):
    return signaling(redis_server.port, instance="sig-hostile")


async def healthy(server):
    """The bystanders: opened before the attack, used after it."""
    return await open_pair(server, a="alice", b="bob")


def disconnects(server, reason):
    """roam_signaling_disconnects_total{reason} (the server's own account of why)."""
    return metric_value(server.metrics(), "roam_signaling_disconnects_total", reason=reason)


def wait_disconnects(server, reason, count):
    """Disconnect bookkeeping may trail the close frame by a moment: poll briefly."""
    try:
        wait_until(lambda: disconnects(server, reason) == count, 3)
    except TimeoutError:
        raise AssertionError(f"expected {count} {reason} disconnects in /metrics, "
                             f"got {disconnects(server, reason)}") from None


async def after_attack(server, alice, bob):
    """The server still serves the bystanders and new clients."""
    await round_trip(alice, bob, "after")
    carol = await SigClient.open(server, "carol")
    await carol.close()


def test_invalid_json_is_bad_json_and_the_connection_stays(server):
    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory")
        deep = {"type": "connect", "request": "deep", "peer": "alice", "x": 1}
        for _ in range(9):
            deep = {"x": deep}  # 10 levels of objects: deeper than 8
        for text in ("not json", "{", '{"type":"connect"', "[1,2]", '"text"', "42", "null",
                     "\xff\xfe", json.dumps(deep)):
            await mallory.send(text)
            error = await mallory.expect_error("bad_json")
            assert isinstance(error.get("message"), str), error
        await mallory.send('{"type":"connect","request":"d","peer":"alice","peer":"bob"}')
        error = await mallory.expect("error")
        assert error["code"] in ("bad_json", "bad_message"), error  # duplicate member
        await round_trip(mallory, alice, "still-open")
        await after_attack(server, alice, bob)
    run(scenario())


def test_wrong_member_types_are_bad_message(server):
    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory")
        cases = [
            ({"type": "connect", "request": "r1", "peer": 5}, "peer"),
            ({"type": "connect", "request": "r2"}, "peer"),
            ({"type": "connect", "request": "r3", "peer": "bob smith"}, "peer"),
            ({"type": "connect", "request": "r4", "peer": "x" * 129}, "peer"),
            ({"type": "candidate", "session": 123, "candidate": candidate()}, "session"),
            ({"type": "candidate", "session": "0" * 32, "candidate": 7, "request": "r5"},
             "candidate"),
            ({"type": "bye", "session": ["0" * 32]}, "session"),
            ({"type": "bye", "session": "0" * 32, "reason": 7}, "reason"),
            ({"type": "bye", "session": "0" * 32, "reason": "r" * 129}, "reason"),
            ({"type": 7}, "type"),
            ({"peer": "bob"}, "type"),
        ]
        for message, member in cases:
            await mallory.send(message)
            error = await mallory.expect_error("bad_message")
            assert member in error.get("message", ""), (message, error)
            if isinstance(message.get("request"), str):
                assert error.get("request") == message["request"], (message, error)
        await mallory.send({"type": "connect", "request": "x" * 65, "peer": "bob"})
        await mallory.expect_error("bad_message")  # request id over 64 characters
        await bob.quiet()
        await after_attack(server, alice, bob)
    run(scenario())


def test_unknown_type_gets_unknown_type_and_the_connection_stays(server):
    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory")
        for kind in ("welcome", "session", "offer", ""):
            await mallory.send({"type": kind, "request": "u1"})
            await mallory.expect_error("unknown_type")
        await round_trip(mallory, alice, "still-open")
        await after_attack(server, alice, bob)
    run(scenario())


def test_messages_before_hello_get_hello_required(server):
    async def scenario():
        alice, bob = await healthy(server)
        early = await SigClient.open(server, "early", hello=False)
        for message in ({"type": "connect", "request": "r1", "peer": "alice"},
                        {"type": "candidate", "session": "0" * 32, "candidate": candidate()},
                        {"type": "bye", "session": "0" * 32}):
            await early.send(message)
            await early.expect_error("hello_required")
        await alice.quiet()
        await early.send({"type": "hello", "version": 1, "token": server.mint_token("early")})
        await early.expect("welcome", peer="early")
        await after_attack(server, alice, bob)
    run(scenario())


def test_frame_of_exactly_max_message_bytes_is_accepted(server):
    async def scenario():
        alice, bob = await healthy(server)
        message = {"type": "connect", "request": "big", "peer": "bob", "pad": ""}
        message["pad"] = "p" * (65536 - len(json.dumps(message)))
        text = json.dumps(message)
        assert len(text.encode()) == 65536
        await alice.send(text)
        await alice.expect("session", request="big")
        await bob.expect("session")
    run(scenario())


def test_oversize_frame_closes_1009(server):
    async def scenario():
        alice, bob = await healthy(server)
        for authenticated in (True, False):
            mallory = await SigClient.open(server, "mallory", hello=authenticated)
            text = json.dumps({"type": "connect", "request": "r", "peer": "bob",
                               "pad": "p" * 65536})
            await mallory.send(text)
            code, messages = await mallory.closed()
            assert code == 1009, (authenticated, code, messages)
        await bob.quiet()
        await after_attack(server, alice, bob)
        wait_disconnects(server, "too_big", 2)
    run(scenario())


def _bad_tokens(server):
    """Tokens that must all be refused with bad_token (docs: malformed, bad signature,
    audience or subject; only HS256)."""
    now = int(time.time())
    good = {"sub": "mallory", "aud": server.audience, "exp": now + 600}
    other = "another-secret-0123456789abcdef0123456789"
    return {
        "garbage": "not-a-jwt",
        "wrong secret": jwt.encode(good, other, algorithm="HS256"),
        "wrong audience": server.mint_token("mallory", aud="someone-else"),
        "no audience": server.mint_token("mallory", aud=None),
        "no subject": jwt.encode({"aud": server.audience, "exp": now + 600},
                                 server.jwt_secret, algorithm="HS256"),
        "subject with a space": server.mint_token("mal lory"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "HS512": jwt.encode(good, server.jwt_secret, algorithm="HS512"),
        "not yet valid": server.mint_token("mallory", nbf=now + 600),
        "tampered payload": _tamper(server.mint_token("mallory")),
    }


def _tamper(token):
    """Same signature, payload changed to another subject."""
    head, _, sig = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(
        {"sub": "admin", "aud": "roam", "exp": int(time.time()) + 600}).encode())
    return f"{head}.{payload.decode().rstrip('=')}.{sig}"


def test_bad_tokens_close_1008_with_bad_token(server):
    async def scenario():
        alice, bob = await healthy(server)
        for name, token in _bad_tokens(server).items():
            mallory = await SigClient.open(server, "mallory", hello=False)
            await mallory.send({"type": "hello", "version": 1, "token": token})
            code, messages = await mallory.closed()
            codes = [m.get("code") for m in messages]
            assert (code, codes) == (1008, ["bad_token"]), (name, code, messages)
        wait_disconnects(server, "bad_token", len(_bad_tokens(server)))
        # A token member that is missing, not a string or empty is a malformed message:
        # refused (bad_message, the connection may stay for a corrected hello, or bad_token).
        for hello in ({"type": "hello", "version": 1}, {"type": "hello", "version": 1,
                                                         "token": 5},
                      {"type": "hello", "version": 1, "token": ""}):
            mallory = await SigClient.open(server, "mallory", hello=False)
            await mallory.send(hello)
            error = await mallory.recv()
            assert error.get("code") in ("bad_message", "bad_token"), (hello, error)
        await after_attack(server, alice, bob)
    run(scenario())


def test_expired_token_closes_1008_with_token_expired(server):
    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory", hello=False)
        expired = server.mint_token("mallory", exp=int(time.time()) - 5)
        await mallory.send({"type": "hello", "version": 1, "token": expired})
        code, messages = await mallory.closed()
        assert code == 1008 and [m.get("code") for m in messages] == ["token_expired"], \
            (code, messages)
        await after_attack(server, alice, bob)
        # Counted under one of the two token reasons (which one is the server's choice).
        wait_until(lambda: (disconnects(server, "bad_token") or 0)
                   + (disconnects(server, "token_expired") or 0) == 1, 3,
                   what="the expired token's disconnect in /metrics")
    run(scenario())


def test_token_expiring_during_the_connection_closes_1008(server):
    async def scenario():
        short = await SigClient.open(server, "short", token=server.mint_token("short", ttl=2))
        assert short.welcome["token_expires"] <= time.time() + 2.5
        code, messages = await short.closed(timeout=5)
        assert code == 1008 and [m.get("code") for m in messages] == ["token_expired"], \
            (code, messages)
        # The peer comes back with a fresh token.
        again = await SigClient.open(server, "short")
        await again.close()
        wait_disconnects(server, "token_expired", 1)
    run(scenario())


def test_bad_origin_gets_http_403(redis_server, signaling):
    server = signaling(redis_server.port,
                       options=["--allowed-origin", "https://app.example",
                                "--allowed-origin", "https://other.example"])

    async def scenario():
        alice, bob = await healthy(server)  # native agents send no Origin
        for origin in ("https://evil.example", "https://app.example.evil", "null",
                       "https://APP.example", "http://app.example"):
            with pytest.raises(websockets.InvalidStatusCode) as refused:
                await SigClient.open(server, "web", origin=origin)
            assert refused.value.status_code == 403, origin
        web = await SigClient.open(server, "web", origin="https://other.example")
        await round_trip(web, alice, "web")
        await after_attack(server, alice, bob)
        metrics = server.metrics()
        assert metric_value(metrics, "roam_signaling_forbidden_origin_total") == 5
    run(scenario())


def test_binary_frame_closes_1003(server):
    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory")
        await mallory.ws.send(json.dumps({"type": "connect", "request": "r",
                                          "peer": "bob"}).encode())
        code, messages = await mallory.closed()
        assert code == 1003, (code, messages)
        await bob.quiet()
        await after_attack(server, alice, bob)
        wait_disconnects(server, "binary", 1)
    run(scenario())


def test_rate_limit_drops_then_recovers(redis_server, signaling):
    server = signaling(redis_server.port, options=options(rate=10, burst=10,
                                                          flood_close_after=50))

    async def scenario():
        alice, bob = await healthy(server)
        limits = alice.welcome["limits"]
        assert (limits["messages_per_second"], limits["burst"]) == (10, 10), limits
        mallory = await SigClient.open(server, "mallory")
        for i in range(25):
            await mallory.send({"type": "nonsense", "request": f"f{i}"})
        codes = []
        while True:
            try:
                codes.append((await mallory.recv(timeout=0.5))["code"])
            except AssertionError:
                break
        # The burst is answered; the rest is dropped with a rate_limited notice per run of
        # drops, not one per message (a token refilled mid-flood may split the run).
        served, notices = codes.count("unknown_type"), codes.count("rate_limited")
        assert 9 <= served <= 15 and 1 <= notices <= 3, codes  # hello took one token
        assert codes[:9] == ["unknown_type"] * 9, codes
        await asyncio.sleep(0.3)  # refills ~3 tokens
        await round_trip(mallory, alice, "recovered")
        await after_attack(server, alice, bob)
    run(scenario())


def test_flood_gets_rate_limited_then_close_1008(redis_server, signaling):
    server = signaling(redis_server.port, options=options(rate=10, burst=10,
                                                          flood_close_after=20))

    async def scenario():
        alice, bob = await healthy(server)
        mallory = await SigClient.open(server, "mallory")
        for i in range(200):
            try:
                await mallory.send({"type": "candidate", "session": "0" * 32,
                                    "candidate": candidate(), "request": f"f{i}"})
            except websockets.ConnectionClosed:
                break  # closed for flooding while we were still at it
        code, messages = await mallory.closed()
        codes = [m.get("code") for m in messages]
        assert code == 1008, (code, codes)
        assert "rate_limited" in codes, codes
        assert codes.index("rate_limited") >= 9, codes  # the burst was served first
        await after_attack(server, alice, bob)
        metrics = server.metrics()
        assert disconnects(server, "flood") == 1
        assert metric_value(metrics, "roam_signaling_errors_total", code="rate_limited") >= 1
    run(scenario())


def test_hello_timeout_closes_1008(redis_server, signaling):
    server = signaling(redis_server.port, options=options(hello_timeout=1))

    async def scenario():
        alice, bob = await healthy(server)
        assert alice.welcome["limits"]["hello_timeout_s"] == 1
        silent = await SigClient.open(server, "silent", hello=False)
        started = time.monotonic()
        code, messages = await silent.closed(timeout=4)
        assert code == 1008, (code, messages)
        assert 0.8 <= time.monotonic() - started <= 3, time.monotonic() - started
        await after_attack(server, alice, bob)
        wait_disconnects(server, "hello_timeout", 1)
    run(scenario())


def test_per_ip_connection_cap(redis_server, signaling):
    server = signaling(redis_server.port, options=options(max_connections_per_ip=3))

    async def scenario():
        clients = [await SigClient.open(server, f"p{i}") for i in range(3)]
        with pytest.raises(Exception) as refused:
            await SigClient.open(server, "p3")
        assert not isinstance(refused.value, AssertionError), refused.value
        await round_trip(clients[0], clients[1], "capped")
        await clients[2].close()

        async def fourth_fits():
            try:
                return await SigClient.open(server, "p3")
            except (OSError, ssl.SSLError, websockets.WebSocketException, asyncio.TimeoutError):
                return None
        deadline = time.monotonic() + 3
        while (late := await fourth_fits()) is None:
            assert time.monotonic() < deadline, "a freed slot never became usable again"
            await asyncio.sleep(0.05)
        await late.close()
        metrics = server.metrics()
        assert metric_value(metrics, "roam_signaling_connections_refused_total",
                            reason="per_ip_cap") >= 1
    run(scenario())


def test_slow_reader_is_disconnected_others_unaffected(redis_server, signaling):
    server = signaling(redis_server.port, options=options(
        rate=1000000, burst=1000000, flood_close_after=1000000, send_queue=16,
        send_queue_bytes=16384))

    def slow_reader_disconnects():
        return disconnects(server, "slow_reader") or 0

    async def scenario():
        alice, bob = await healthy(server)
        # Never reads: a tiny receive window fills at once, then the server's send buffer,
        # then its bounded queue. Each request is answered with an unknown_type error.
        slow = RawWss(server, rcvbuf=4096)
        slow.send({"type": "hello", "version": 1, "token": server.mint_token("slow")})
        frame = text_frame({"type": "nonsense", "request": "n" * 64})
        batch = frame * 500
        slow.sock.settimeout(1)
        deadline = time.monotonic() + 15
        sent = 0
        try:
            while slow_reader_disconnects() < 1:
                assert time.monotonic() < deadline, f"still connected after {sent} requests"
                try:
                    slow.send_raw(batch)
                    sent += 500
                except socket.timeout:
                    break  # the server stopped reading us; a partial frame: stop sending
                except OSError:
                    break  # reset by the server
            print(f"slow reader: {sent} requests sent before the disconnect")
            wait_until(lambda: slow_reader_disconnects() >= 1, 5,
                       what=f"a slow_reader disconnect in /metrics after {sent} requests")
        finally:
            slow.close()
        await after_attack(server, alice, bob)
        assert slow_reader_disconnects() == 1
    run(scenario())


def test_idle_connection_that_never_answers_pings_is_closed(redis_server, signaling):
    """docs: ping after idle_timeout_s / 2 without traffic, close without an answer within the
    rest of idle_timeout_s. python3-websockets answers pings by itself and stays."""
    server = signaling(redis_server.port, options=options(idle_timeout=2))

    async def scenario():
        alice, bob = await healthy(server)
        assert alice.welcome["limits"]["idle_timeout_s"] == 2
        mute = RawWss(server)
        mute.send({"type": "hello", "version": 1, "token": server.mint_token("mute")})
        started = time.monotonic()
        await eventually(lambda: disconnects(server, "idle") == 1, 5,
                         what="the mute connection's idle disconnect")
        assert 1.5 <= time.monotonic() - started <= 4.5, time.monotonic() - started
        mute.close()
        await asyncio.sleep(0.5)  # well past the idle timeout since alice's last message
        await after_attack(server, alice, bob)  # auto-pong kept them open
    run(scenario())


def test_closing_handshake_left_unfinished_is_dropped_as_close_timeout(server):
    """docs/signaling-protocol.md, "Closing": a client that sends a close frame and then never
    closes its side of the TCP connection is dropped 10 s later, counted as close_timeout (not
    idle, which is for silent connections). Others are not affected."""
    async def scenario():
        alice, bob = await healthy(server)
        closer = RawWss(server)
        closer.send({"type": "hello", "version": 1, "token": server.mint_token("closer")})
        closer.send_raw(close_frame(1000))
        started = time.monotonic()
        try:
            await eventually(lambda: disconnects(server, "close_timeout") == 1, 15,
                             what="the unfinished closing handshake's close_timeout disconnect")
            waited = time.monotonic() - started
            assert 9 <= waited <= 13, waited
            assert disconnects(server, "idle") == 0
        finally:
            closer.close()
        await after_attack(server, alice, bob)
    run(scenario())
