"""The real stack in the cloud segment: coturn, redis-server, roam-relay and roam-signaling, and
`roam doctor` in NATed hosts reporting the NAT's external address and a working relay.
(roam-signaling over WSS from NATed hosts: test_lab_signaling.py.)"""

import json
import time

import pytest

from roamlab import LabError, binary, topologies
from roamlab.services import start_stack


@pytest.fixture(scope="module")
def roam_bin():
    try:
        return binary("roam")
    except LabError as e:
        pytest.fail(str(e))


def doctor(lab, host, coturn, roam, timeout="2"):
    r = lab.run(host, [roam, "doctor", "--stun", coturn.address, "--turn-secret", coturn.secret,
                       "--realm", coturn.realm, "--json", "--timeout", timeout],
                check=False, timeout=60)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"roam doctor printed no JSON ({r.returncode}): {r.stdout}{r.stderr}")


def _rows(report, iface=None):
    return [row for row in report["interfaces"]
            if row["family"] == "ipv4" and row["probed"]
            and (iface is None or row["interface"] == iface)]


def test_doctor_behind_nats_reports_external_address_and_relay(make_lab, report, roam_bin):
    try:
        lab = make_lab(topologies.get("multihomed"), reflector=False)
        stack = start_stack(lab)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    coturn, relay = stack.coturn, stack.relay
    (signaling,) = stack.signaling
    assert signaling.healthy(), signaling.log()
    code, rep = doctor(lab, "alice", coturn, roam_bin)
    lines = []
    for iface, router in (("wifi", "home"), ("cell", "mobile")):
        rows = _rows(rep, iface)
        assert len(rows) == 1, rep
        row = rows[0]
        lines.append(f"{iface}: local {row['local']} srflx {row['stun'].get('mapped')} relay "
                     f"{row.get('turn', {}).get('relayed')} ({row['verdict']})")
        assert row["stun"]["ok"], row
        assert row["stun"]["mapped"].rpartition(":")[0] == lab.external(router), row
        assert row["stun"]["nat"] is True
        assert row["turn"]["ok"], (row, coturn.log()[-2000:])
        assert row["turn"]["relayed"].rpartition(":")[0] == coturn.ip
        assert "relay works" in row["verdict"]
    assert code == 0, rep
    # roam-relay fills its reservation-token pool in Redis through the same coturn.
    deadline = time.monotonic() + 15
    while relay.pool_size() < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    report("roam doctor in alice (multihomed): " + "; ".join(lines) +
           f"; roam-relay pool {relay.pool_size()}/10; roam-signaling {signaling.instance} "
           f"ready on {signaling.wss}")
    assert relay.pool_size() == 10, relay.process.log()[-3000:]


def test_doctor_on_carrier_reaches_the_allow_listed_cloud(make_lab, roam_bin):
    try:
        lab = make_lab(topologies.get("carrier"), reflector=False)
        coturn = start_stack(lab, relay=False, signaling=0).coturn
    except FileNotFoundError as e:
        pytest.skip(str(e))
    code, rep = doctor(lab, "alice", coturn, roam_bin)
    (row,) = _rows(rep)
    assert code == 0 and row["stun"]["mapped"].startswith(lab.external("mobile") + ":"), rep
    assert row["turn"]["ok"], row


def test_coturn_and_redis_kill_and_restart(make_lab, roam_bin):
    try:
        lab = make_lab(topologies.get("nat-port-restricted"), reflector=False)
        stack = start_stack(lab, relay=False, signaling=0)
        coturn, redis = stack.coturn, stack.redis
    except FileNotFoundError as e:
        pytest.skip(str(e))
    coturn.process.kill()
    code, rep = doctor(lab, "alice", coturn, roam_bin, timeout="0.5")
    (row,) = _rows(rep)
    assert code == 1 and not row["stun"]["ok"], rep
    coturn.restart()
    code, rep = doctor(lab, "alice", coturn, roam_bin)
    assert code == 0, rep
    redis.process.kill()
    assert redis.cli("PING") != "PONG"
    redis.restart()
    assert redis.cli("PING") == "PONG"
