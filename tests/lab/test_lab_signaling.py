"""roam-signaling in the cloud segment, reached over WSS from hosts behind NATs: the
"signaling instance killed" fault (a client's connection drops, it reconnects to the other
instance and its session goes on), and sessions whose relay grants come from roam-relay's
reservation-token pool and redeem at coturn, through the NAT, to the promised cloud address."""

import asyncio
import ipaddress
import time

import pytest

from roamlab import LabError, binary, topologies
from roamlab.services import start_stack
from roamlab.topology import CLOUD4

pytest.importorskip("websockets", reason="python3-websockets not installed (./run deps)")
pytest.importorskip("jwt", reason="python3-jwt not installed (./run deps)")


def run(coroutine, timeout=60):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture
def two_nats_stack(make_lab):
    """two-nats (alice behind home1, bob behind home2) with coturn, redis, roam-relay and two
    roam-signaling instances (sig-1 on 203.0.113.10:8443, sig-2 on 203.0.113.11:8443)."""
    try:
        binary("roam-signaling")
    except LabError as e:
        pytest.fail(str(e))
    lab = make_lab(topologies.get("two-nats"), reflector=False)
    try:
        stack = start_stack(lab, signaling=2)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return lab, stack


def _host(endpoint):
    return endpoint.rpartition(":")[0].strip("[]")


def test_signaling_instance_killed_client_reconnects_to_the_other(two_nats_stack, report):
    lab, stack = two_nats_stack
    sig1, sig2 = stack.signaling

    async def scenario():
        # Tokens both ways: python3-jwt and `roam-signaling token`.
        alice = await sig1.open_client("alice", "alice")
        bob = await sig2.open_client("bob", token=sig2.token_cli("bob"))
        assert alice.welcome["server"] == "sig-1" and alice.welcome["peer"] == "alice"
        assert bob.welcome["server"] == "sig-2" and bob.welcome["peer"] == "bob"
        # Through the NAT: the servers see the routers' external addresses, not the hosts'.
        seen1, seen2 = sig1.connected_clients(), sig2.connected_clients()
        assert [_host(e) for e in seen1] == [lab.external("home1")], seen1
        assert [_host(e) for e in seen2] == [lab.external("home2")], seen2
        # A session across the two instances (routed through Redis).
        await alice.send({"type": "connect", "request": "r1", "peer": "bob"})
        mine = await alice.expect("session", request="r1", peer="bob")
        theirs = await bob.expect("session", peer="alice")
        sid = mine["session"]
        assert theirs["session"] == sid

        killed_at = time.monotonic()
        assert sig1.kill() == -9
        code, _ = await alice.closed(timeout=5)
        dropped_after = time.monotonic() - killed_at
        assert code == 1006, code            # no close frame: the process died
        with pytest.raises(OSError):         # nobody listens on sig-1 any more
            await sig1.open_client("alice", "alice")
        again = await sig2.open_client("alice", "alice")
        back_after = time.monotonic() - killed_at
        assert again.welcome["server"] == "sig-2"
        assert [_host(e) for e in sig2.connected_clients()].count(lab.external("home1")) == 1
        # The session survived the instance: alice's candidate reaches bob, and back.
        line = "candidate:1 1 UDP 2130706431 10.1.0.2 50000 typ host"
        await again.send({"type": "candidate", "session": sid, "candidate": line})
        await bob.expect("candidate", session=sid, candidate=line)
        line = "candidate:2 1 UDP 2130706431 10.2.0.2 50001 typ host"
        await bob.send({"type": "candidate", "session": sid, "candidate": line})
        await again.expect("candidate", session=sid, candidate=line)

        # The killed instance comes back and serves again.
        sig1.restart()
        carol = await sig1.open_client("alice", "carol")
        assert carol.welcome["server"] == "sig-1"
        for client in (again, bob, carol):
            await client.close()
        return dropped_after, back_after

    dropped_after, back_after = run(scenario())
    report(f"signaling instance killed: alice (behind home1, seen as {lab.external('home1')}) "
           f"lost sig-1 after {dropped_after * 1000:.1f} ms (close 1006), welcomed by sig-2 "
           f"{back_after * 1000:.1f} ms after the kill; session kept, candidates both ways; "
           f"sig-1 restarted and serving")
    assert dropped_after < 2.0


def test_session_relay_grants_come_from_the_pool_and_redeem_through_the_nat(two_nats_stack,
                                                                            report):
    lab, stack = two_nats_stack
    sig1, sig2 = stack.signaling
    stack.wait_relay_grants()
    pool = {m["token"]: m["relay"] for m in stack.relay.pool()}
    assert len(pool) == stack.relay.pool_target

    async def scenario():
        alice = await sig1.open_client("alice", "alice")
        bob = await sig2.open_client("bob", "bob")
        await alice.send({"type": "connect", "request": "r1", "peer": "bob"})
        mine = await alice.expect("session", request="r1", peer="bob")
        theirs = await bob.expect("session", peer="alice")
        await alice.close()
        await bob.close()
        return mine, theirs

    mine, theirs = run(scenario())
    grants = {"alice": mine["relay"], "bob": theirs["relay"]}
    for peer, grant in grants.items():
        assert grant.get("token") in pool, (peer, grant, pool)      # taken from the pool
        assert grant["address"] == pool[grant["token"]], grant     # ... with its address
        ip, _, port = grant["address"].rpartition(":")
        assert ipaddress.ip_address(ip) in CLOUD4 and ip == stack.coturn.ip, grant
        assert 49152 <= int(port) <= 49351, grant                  # coturn's relay range
        assert grant["uri"] == f"turn:{stack.coturn.address}?transport=udp", grant
        assert grant["username"].endswith(":" + peer)
    # Each side gets the other's reserved relay address as a ready remote candidate.
    for session, other in ((mine, "bob"), (theirs, "alice")):
        ip, _, port = grants[other]["address"].rpartition(":")
        assert any(f" {ip} {port} typ relay" in c for c in session["remote_candidates"]), session
    # Taken tokens are gone from the pool (roam-relay refills it with new ones).
    assert not {g["token"] for g in grants.values()} & {m["token"] for m in stack.relay.pool()}

    # Each host redeems its own token at coturn, through its NAT: the allocation gets exactly
    # the relayed address the grant promised.
    redeemed = {}
    for peer, router in (("alice", "home1"), ("bob", "home2")):
        g = grants[peer]
        r = lab.python(peer, "probe.py", "turn", "--server", stack.coturn.address,
                       "--username", g["username"], "--password", g["password"],
                       "--token", g["token"])
        assert r["ok"], (peer, r, stack.coturn.log()[-2000:])
        assert r["relayed"] == g["address"], (peer, r, g)
        assert _host(r["mapped"]) == lab.external(router), r
        redeemed[peer] = r
    granted = 0
    for sig in stack.signaling:
        status, text = sig.admin_get("/metrics")
        assert status == 200
        for line in text.splitlines():
            if line.startswith("roam_signaling_relay_grants_total{") and 'result="token"' in line:
                granted += float(line.rsplit(" ", 1)[1])
    report(f"session alice(home1)->bob(home2) across sig-1/sig-2: relay grants "
           f"{grants['alice']['address']} and {grants['bob']['address']} (tokens from the "
           f"roam-relay pool of {len(pool)}), redeemed through the NATs "
           f"(mapped {redeemed['alice']['mapped']}, {redeemed['bob']['mapped']}); "
           f"grants with token counted by the instances: {granted:.0f}")
    assert granted == 2
