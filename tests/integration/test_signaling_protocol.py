"""roam-signaling's protocol on one instance over real TLS (python3-websockets, test CA pinned):
hello/welcome, connect/session, trickled candidates, bye, and the errors a well-formed but
wrong request gets (docs/signaling-protocol.md)."""

import re
import time

import pytest

from roamtest.sigclient import (VALID_FINGERPRINT, SigClient, candidate, open_pair, run,
                                start_session)

ICE_A = {"ufrag": "Fq3Z", "pwd": "asd88fgpdd777uzjYhagZg0a"}
ICE_B = {"ufrag": "Xk2p", "pwd": "zW8d0Qm1pY4gHs0lRtNc6vbE"}
FINGERPRINT_B = "sha-256 " + ":".join(f"{255 - b:02X}" for b in range(32))
DEFAULT_LIMITS = {"max_message_bytes": 65536, "messages_per_second": 50, "burst": 100,
                  "max_sessions": 64, "idle_timeout_s": 60, "hello_timeout_s": 10}


@pytest.fixture
def server(redis_server, signaling):
    return signaling(redis_server.port, instance="sig-1")


def test_hello_gets_welcome_with_limits(server):
    async def scenario():
        token = server.mint_token("alice", ttl=600)
        expires = int(time.time()) + 600
        alice = await SigClient.open(server, "alice", token=token)
        w = alice.welcome
        assert w["version"] == 1 and w["peer"] == "alice", w
        assert w["server"] == server.instance == "sig-1", w
        assert abs(w["token_expires"] - expires) <= 2, w
        assert {k: w["limits"].get(k) for k in DEFAULT_LIMITS} == DEFAULT_LIMITS, w
        await alice.close()
    run(scenario())


def test_connect_session_candidates_and_bye(server):
    async def scenario():
        alice = await SigClient.open(server, "alice", fingerprint=VALID_FINGERPRINT, ice=ICE_A)
        bob = await SigClient.open(server, "bob", fingerprint=FINGERPRINT_B, ice=ICE_B)

        await alice.connect_to("bob", "r1")
        mine = await alice.expect("session")
        theirs = await bob.expect("session")
        sid = mine["session"]
        assert re.fullmatch(r"[0-9a-f]{32}", sid), mine
        assert theirs["session"] == sid
        # The requester gets its request id back; the other side never sees it.
        assert mine["request"] == "r1" and "request" not in theirs, (mine, theirs)
        assert (mine["role"], theirs["role"]) == ("controlling", "controlled")
        assert (mine["peer"], theirs["peer"]) == ("bob", "alice")
        # Each side gets what the OTHER side said in its hello.
        assert mine["fingerprint"] == FINGERPRINT_B and mine["ice"] == ICE_B, mine
        assert theirs["fingerprint"] == VALID_FINGERPRINT and theirs["ice"] == ICE_A, theirs
        # No relay registered in this Redis: no grant, nothing to pair with at once.
        assert "relay" not in mine and "relay" not in theirs, (mine, theirs)
        assert mine.get("remote_candidates", []) == [] == theirs.get("remote_candidates", [])

        # Candidates both ways, forwarded unchanged (with and without the a= prefix).
        sent = {"type": "candidate", "session": sid, "candidate": candidate(50000)}
        await alice.send(sent)
        assert await bob.expect("candidate") == sent
        sent = {"type": "candidate", "session": sid,
                "candidate": "a=" + candidate(50001, "192.0.2.9", "2", "srflx", 1694498815)
                + " raddr 0.0.0.0 rport 0"}
        await bob.send(sent)
        assert await alice.expect("candidate") == sent
        for sender, receiver in ((alice, bob), (bob, alice)):
            end = {"type": "candidate", "session": sid, "end_of_candidates": True}
            await sender.send(end)
            assert await receiver.expect("candidate") == end

        bye = {"type": "bye", "session": sid, "reason": "done"}
        await alice.send(bye)
        assert await bob.expect("bye") == bye
        await alice.quiet()
        # The session is gone for both.
        await bob.send({"type": "candidate", "session": sid, "candidate": candidate(),
                        "request": "late"})
        await bob.expect_error("unknown_session", request="late")
        await alice.close()
        await bob.close()
    run(scenario())


def test_session_without_fingerprint_or_ice_omits_them(server):
    async def scenario():
        alice, bob = await open_pair(server)
        mine, theirs = await start_session(alice, bob)
        for message in (mine, theirs):
            assert "fingerprint" not in message and "ice" not in message, message
    run(scenario())


def test_unknown_members_are_ignored(server):
    async def scenario():
        alice, bob = await open_pair(server, future={"x": [1, 2]})
        await alice.send({"type": "connect", "request": "r9", "peer": "bob", "later": True})
        await alice.expect("session", request="r9")
        await bob.expect("session")
    run(scenario())


def test_connect_errors_echo_the_request(server):
    async def scenario():
        alice = await SigClient.open(server, "alice")
        await alice.connect_to("alice", "self")
        await alice.expect_error("self_connect", request="self")
        await alice.connect_to("nobody", "gone")
        err = await alice.expect_error("peer_unavailable", request="gone")
        assert isinstance(err.get("message"), str)
    run(scenario())


def test_candidate_errors(server):
    async def scenario():
        alice, bob = await open_pair(server)
        carol = await SigClient.open(server, "carol")
        mine, _ = await start_session(alice, bob)
        sid = mine["session"]
        await alice.candidate("0" * 32, candidate(), request="c1")
        await alice.expect_error("unknown_session", request="c1")
        # carol is not part of alice's session: same answer, nothing reaches bob.
        await carol.candidate(sid, candidate(), request="c2")
        await carol.expect_error("unknown_session", request="c2")
        for bad in ("hello world", "candidate:1 1 UDP 2130706431 192.0.2.7 99999 typ host",
                    "candidate:1 1 UDP 2130706431 192.0.2.7 50000",
                    "candidate:1 1 TCP 2130706431 192.0.2.7 9 typ host tcptype active"):
            await alice.candidate(sid, bad, request="c3")
            await alice.expect_error("bad_candidate", request="c3")
        await bob.quiet()
    run(scenario())


def test_second_hello_is_already_authenticated(server):
    async def scenario():
        alice = await SigClient.open(server, "alice")
        await alice.send({"type": "hello", "version": 1, "token": server.mint_token("alice")})
        await alice.expect_error("already_authenticated")
        bob = await SigClient.open(server, "bob")
        await start_session(alice, bob)  # still usable
    run(scenario())


def test_unsupported_version_closes_1008(server):
    async def scenario():
        client = await SigClient.open(server, "alice", hello=False)
        await client.send({"type": "hello", "version": 2, "token": server.mint_token("alice")})
        code, messages = await client.closed()
        assert code == 1008, (code, messages)
        assert [m.get("code") for m in messages] == ["unsupported_version"], messages
    run(scenario())


def test_max_sessions(redis_server, signaling):
    server = signaling(redis_server.port, options=["--max-sessions", "2"])

    async def scenario():
        alice = await SigClient.open(server, "alice")
        assert alice.welcome["limits"]["max_sessions"] == 2
        others = [await SigClient.open(server, name) for name in ("bob", "carol", "dave")]
        for i, other in enumerate(others[:2]):
            await start_session(alice, other, f"r{i}")
        await alice.connect_to("dave", "r3")
        await alice.expect_error("too_many_sessions", request="r3")
        await others[2].quiet()
    run(scenario())


def test_burst_to_two_sessions_arrives_whole_and_in_order(server):
    """A burst of candidates sent back to back, alternating between two sessions: each peer
    gets its own in sending order, none lost or duplicated. (The server's writer joins what one
    sender's burst brings into one send(); this is what must not change.)"""
    async def scenario():
        alice, bob = await open_pair(server)
        carol = await SigClient.open(server, "carol")
        with_bob, _ = await start_session(alice, bob, "r-bob")
        with_carol, _ = await start_session(alice, carol, "r-carol")
        sessions = {bob: with_bob["session"], carol: with_carol["session"]}
        per_peer = 40  # 80 in all: within the default burst of 100
        for k in range(per_peer):
            for peer in (bob, carol):
                await alice.send({"type": "candidate", "session": sessions[peer],
                                  "candidate": candidate(40000 + k)})
        for peer in (bob, carol):
            ports = []
            for _ in range(per_peer):
                got = await peer.expect("candidate", session=sessions[peer])
                ports.append(int(got["candidate"].split()[5]))
            assert ports == [40000 + k for k in range(per_peer)], ports
            await peer.quiet()
        for c in (alice, bob, carol):
            await c.close()
    run(scenario())
