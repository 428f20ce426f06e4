"""roam-signaling's token cache (signaling-server/token_cache.h) against real redis-server,
coturn and roam-relay: under a burst of connects the server takes reservation tokens ahead of
need, every grant still carries its own token that redeems at coturn to the advertised
address, and on SIGTERM the tokens it still holds go back into the relay's pool."""

from roamtest.sigclient import SigClient, run, start_session
from roamtest.signaling import metric_value, wait_relays_known
from roamtest.turn import redeem

POOL_TARGET = 40


def test_burst_uses_cached_tokens_and_shutdown_returns_them(redis_server, relay_stack_of,
                                                            signaling):
    # A pool large enough for the cache's share (a quarter of it).
    coturn, relay = relay_stack_of(pool_target=POOL_TARGET, relay_ports=4 * POOL_TARGET + 40)
    server = signaling(redis_server.port, instance="sig-cache")
    wait_relays_known([server])

    async def burst():
        alice = await SigClient.open(server, "alice")
        bob = await SigClient.open(server, "bob")
        grants = []
        for i in range(12):  # 24 grants in well under a second: above the 20/s gate
            mine, theirs = await start_session(alice, bob, f"r{i}")
            grants += [mine["relay"], theirs["relay"]]
            await alice.send({"type": "bye", "session": mine["session"]})
            await bob.expect("bye", session=mine["session"])
        return grants

    grants = run(burst())
    tokens = [g.get("token") for g in grants]
    assert None not in tokens, "a grant went without a token (pool miss)"
    assert len(set(tokens)) == len(tokens), "a token was handed out twice"
    # The last grants, made once the cache was filling, redeem like any other.
    for grant in grants[-4:]:
        assert redeem(coturn.address, grant["username"], grant["password"],
                      grant["token"]) == grant["address"], grant

    cached = metric_value(server.metrics(), "roam_signaling_cached_tokens")
    assert 0 < cached <= POOL_TARGET // 4 * 2, cached  # at most a quarter, per shard
    relay.wait_pool(POOL_TARGET)  # roam-relay refilled what the burst took
    before = relay.pool_size()

    server.terminate()
    server.wait(10)
    assert relay.pool_size() == before + cached, server.log()[-3000:]
