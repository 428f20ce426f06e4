"""Redis outage (docs/signaling-protocol.md "Sessions, reconnects and instances"): peers on the
same instance keep working, messages for peers elsewhere fail with routing_unavailable, and
everything re-registers when Redis returns (an empty Redis: no persistence)."""

import asyncio
import time

import pytest

from roamtest.process import wait_until
from roamtest.sigclient import SigClient, candidate, exchange, run, start_session
from roamtest.signaling import metric_value, wait_relays_known


@pytest.fixture
def pair_of_instances(redis_server, relay_stack, signaling):
    coturn, relay = relay_stack
    servers = [signaling(redis_server.port, instance=f"sig-{name}", turn_secret=coturn.secret)
               for name in "ab"]
    wait_relays_known(servers)
    return servers


OUTAGE_S = 7


def redis_up(server):
    return metric_value(server.metrics(), "roam_signaling_redis_up")


def test_redis_outage_local_peers_keep_working_remote_gets_routing_unavailable(
        redis_server, relay_stack, pair_of_instances):
    sig_a, sig_b = pair_of_instances
    _, relay = relay_stack

    async def scenario():
        alice = await SigClient.open(sig_a, "alice")
        dave = await SigClient.open(sig_a, "dave")
        carol = await SigClient.open(sig_b, "carol")
        # Before: a cross-instance session (also warms sig-a's relay cache).
        cross, _ = await start_session(alice, carol, "before")
        assert "token" in cross["relay"]
        await exchange(alice, carol, cross["session"], 50000)

        redis_server.kill()
        down_since = time.monotonic()
        wait_until(lambda: redis_up(sig_a) == 0, 10, what="sig-a to notice the outage")

        # Same instance: still connects (cached relay, no token) and trickles.
        mine, theirs = await start_session(alice, dave, "local")
        for session, me in ((mine, "alice"), (theirs, "dave")):
            grant = session.get("relay")
            assert grant and "token" not in grant and "address" not in grant, session
            assert grant["username"].endswith(":" + me), grant
        await exchange(alice, dave, mine["session"], 50010)

        # Other instance: cannot be routed while Redis is away.
        await alice.candidate(cross["session"], candidate(50020), request="c-out")
        await alice.expect_error("routing_unavailable", request="c-out",
                                 session=cross["session"])
        await alice.connect_to("carol", "connect-out")
        await alice.expect_error("routing_unavailable", request="connect-out")
        await carol.quiet()

        # Long enough down for every link's reconnect backoff to grow towards its 5 s cap: the
        # links then come back seconds apart, and redis_up must wait for the last of them.
        while time.monotonic() - down_since < OUTAGE_S:
            await asyncio.sleep(0.25)
        redis_server.start()
        wait_until(lambda: redis_up(sig_a) == 1 and redis_up(sig_b) == 1, 15,
                   what="both instances to reconnect to Redis")
        # The registry is rebuilt at reconnect (Redis restarted empty).
        r = redis_server.client()
        try:
            wait_until(lambda: all(r.hgetall(f"roam:sig:peer:{p}") for p in
                                   ("alice", "carol", "dave")), 5,
                       what="the peers to be registered again")
        finally:
            r.close()
        relay.wait_registered(timeout=10)

        # redis_up = 1 means every link works, the subscribers too: both directions of the
        # session from before deliver at once, with no retry.
        await exchange(carol, alice, cross["session"], 50030)
        await exchange(alice, carol, cross["session"], 50040)
        mine, theirs = await start_session(alice, carol, "again")
        await exchange(alice, carol, mine["session"], 50050)
    run(scenario(), timeout=90)
