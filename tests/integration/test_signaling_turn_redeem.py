"""The contract roam-signaling's grants rest on, checked with the test harness alone: a token
taken from roam-relay's pool with the documented Lua script (docs/relay-pool.md) redeems at
coturn, with any peer's REST credentials, to exactly the pool entry's relay address, once.
Also keeps the Python TURN client (roamtest/turn.py) honest before it judges the server."""

import pytest

from roamtest.turn import TurnClient, TurnError, redeem, rest_credentials


def test_pool_token_redeems_to_the_advertised_address_once(relay_stack):
    coturn, relay = relay_stack
    entry = relay.take_token()
    assert entry is not None, relay.log()
    username, password = rest_credentials(coturn.secret, "alice")
    assert redeem(coturn.address, username, password, entry["token"]) == entry["relay"]
    with pytest.raises(TurnError) as reused:
        redeem(coturn.address, username, password, entry["token"])
    assert reused.value.code == 404


def test_wrong_password_is_401_and_plain_allocate_works(relay_stack):
    coturn, relay = relay_stack
    username, password = rest_credentials(coturn.secret, "bob")
    with pytest.raises(TurnError) as refused:
        redeem(coturn.address, username, "not-the-password", relay.take_token()["token"])
    assert refused.value.code == 401
    with TurnClient(coturn.address, username, password) as client:
        host, port = client.allocate().rsplit(":", 1)
        assert host == "127.0.0.1" and coturn.min_port <= int(port) <= coturn.max_port
        assert client.mapped.startswith("127.0.0.1:")
