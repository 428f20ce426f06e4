"""Acceptance: several roam-signaling instances sharing one real redis-server, with a real
coturn and roam-relay filling the reservation-token pool. Peers on different instances get
sessions whose relay grants really redeem at coturn to the advertised address, trickle
candidates across instances, survive replacing their connection and a SIGKILLed instance."""

import json
import re
import time

import pytest

from roamtest.sigclient import (SigClient, candidate, eventually, exchange, run,
                                start_session)
from roamtest.signaling import metric_value, wait_relays_known
from roamtest.turn import redeem


@pytest.fixture
def cluster(redis_server, relay_stack, signaling):
    """(coturn, relay, [sig-a, sig-b, sig-c]) all on one Redis."""
    coturn, relay = relay_stack
    servers = [signaling(redis_server.port, instance=f"sig-{name}", turn_secret=coturn.secret)
               for name in "abc"]
    wait_relays_known(servers)
    return coturn, relay, servers


def relay_candidate_address(line):
    """ip:port of an RFC 8839 relay candidate line (checks it IS a UDP relay candidate)."""
    fields = line.removeprefix("a=").split()
    assert re.fullmatch(r"candidate:[A-Za-z0-9+/]{1,32}", fields[0]), line
    assert fields[2].upper() == "UDP" and fields[6:8] == ["typ", "relay"], line
    return f"{fields[4]}:{fields[5]}"


def check_grant(session, peer, coturn, relay):
    """The session's relay grant is this peer's, for the registered relay, and redeems."""
    grant = session["relay"]
    registry = relay.registry()
    assert grant["uri"] == registry["turn_uri"], (grant, registry)
    expiry, _, who = grant["username"].partition(":")
    assert who == peer and int(expiry) == grant["expires"], grant
    assert re.fullmatch(r"[0-9a-f]{16}", grant["token"]), grant
    # The proof: coturn gives exactly the advertised address for this token and these
    # credentials (REST username/password minted by signaling with the shared secret).
    assert redeem(coturn.address, grant["username"], grant["password"],
                  grant["token"]) == grant["address"], grant
    return grant


def test_cross_instance_session_grants_redeem_at_coturn(cluster):
    coturn, relay, (sig_a, sig_b, _) = cluster

    async def scenario():
        alice = await SigClient.open(sig_a, "alice", ice={"ufrag": "aaaa",
                                                          "pwd": "a" * 22})
        bob = await SigClient.open(sig_b, "bob", ice={"ufrag": "bbbb", "pwd": "b" * 22})
        assert alice.welcome["server"] == "sig-a" and bob.welcome["server"] == "sig-b"
        mine, theirs = await start_session(alice, bob, "x1")
        assert (mine["role"], theirs["role"]) == ("controlling", "controlled")
        assert mine["ice"]["ufrag"] == "bbbb" and theirs["ice"]["ufrag"] == "aaaa"
        a_grant = check_grant(mine, "alice", coturn, relay)
        b_grant = check_grant(theirs, "bob", coturn, relay)
        assert a_grant["token"] != b_grant["token"]
        assert a_grant["address"] != b_grant["address"]
        # A token is a bearer secret: only its own peer ever sees it.
        assert b_grant["token"] not in json.dumps(mine)
        assert a_grant["token"] not in json.dumps(theirs)
        # Each side can pair with the other's relay address at once.
        assert [relay_candidate_address(c) for c in mine["remote_candidates"]] == \
            [b_grant["address"]], mine
        assert [relay_candidate_address(c) for c in theirs["remote_candidates"]] == \
            [a_grant["address"]], theirs

        sid = mine["session"]
        await exchange(alice, bob, sid, 50000)
        end = {"type": "candidate", "session": sid, "end_of_candidates": True}
        await bob.send(end)
        assert await alice.expect("candidate") == end
        await alice.send({"type": "bye", "session": sid})
        assert (await bob.expect("bye"))["session"] == sid

        a_metrics, b_metrics = sig_a.metrics(), sig_b.metrics()
        assert metric_value(a_metrics, "roam_signaling_relay_grants_total", result="token") >= 1
        assert metric_value(a_metrics, "roam_signaling_routed_messages_total",
                            direction="out") >= 1
        assert metric_value(b_metrics, "roam_signaling_routed_messages_total",
                            direction="in") >= 1
    run(scenario())


def test_reconnect_replaces_old_connection_and_session_continues(cluster):
    _, _, (sig_a, sig_b, sig_c) = cluster

    async def scenario():
        alice = await SigClient.open(sig_a, "alice")
        bob = await SigClient.open(sig_b, "bob")
        mine, _ = await start_session(alice, bob)
        sid = mine["session"]

        # Same peer id, another instance: the old connection is told it was replaced.
        alice2 = await SigClient.open(sig_c, "alice")
        code, _ = await alice.closed()
        assert code == 4001
        await exchange(alice2, bob, sid, 50010)

        # And once more onto the instance it started on.
        alice3 = await SigClient.open(sig_a, "alice")
        code, _ = await alice2.closed()
        assert code == 4001
        await exchange(bob, alice3, sid, 50020)
        assert metric_value(sig_c.metrics(), "roam_signaling_disconnects_total",
                            reason="replaced") == 1

        # Gone for good: connecting to it from another instance is peer_unavailable.
        await alice3.close()
        deadline = time.monotonic() + 3
        while True:
            await bob.connect_to("alice", "gone")
            answer = await bob.recv()
            if answer.get("code") == "peer_unavailable":
                break
            assert answer["type"] == "session" and time.monotonic() < deadline, answer
    run(scenario())


def test_peers_of_a_killed_instance_reconnect_elsewhere_and_continue(cluster):
    _, _, (sig_a, sig_b, sig_c) = cluster

    async def scenario():
        alice = await SigClient.open(sig_a, "alice")
        bob = await SigClient.open(sig_b, "bob")
        carol = await SigClient.open(sig_a, "carol")
        mine, _ = await start_session(alice, bob, "k1")
        sid = mine["session"]
        mine2, _ = await start_session(bob, carol, "k2")
        sid2 = mine2["session"]
        await exchange(alice, bob, sid, 50030)

        sig_a.kill()
        code, _ = await alice.closed()
        assert code == 1006  # no close frame: the process died
        await carol.closed()
        # Nobody listens on the dead instance's channel: the sender learns it at once.
        await bob.candidate(sid, candidate(50035), request="dead")
        await bob.expect_error("peer_unavailable", request="dead", session=sid)

        alice = await SigClient.open(sig_c, "alice")
        carol = await SigClient.open(sig_b, "carol")  # same instance as bob now
        await exchange(alice, bob, sid, 50040)
        await exchange(bob, carol, sid2, 50050)
        # New sessions work as well.
        await start_session(carol, alice, "k3")
    run(scenario())


def test_grant_as_soon_as_healthz_lists_the_relay(redis_server, relay_stack, signaling):
    """docs: a session made while /healthz says relays=0 carries no grant; once the relay is
    listed, the very next session (the instance's first) has one for each peer."""
    coturn, relay = relay_stack
    server = signaling(redis_server.port, turn_secret=coturn.secret)

    async def scenario():
        alice = await SigClient.open(server, "alice")
        bob = await SigClient.open(server, "bob")
        await eventually(lambda: server.healthz()[1].get("relays") == 1, 5,
                         what="/healthz relays=1")
        mine, theirs = await start_session(alice, bob)
        check_grant(mine, "alice", coturn, relay)
        check_grant(theirs, "bob", coturn, relay)
    run(scenario())
