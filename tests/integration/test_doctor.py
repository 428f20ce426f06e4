"""`roam doctor` against a real coturn on loopback."""

import json
import socket
import subprocess

from conftest import binary


def doctor(*args, timeout=30):
    return subprocess.run([binary("roam"), "doctor", *args], capture_output=True, text=True,
                          timeout=timeout)


def loopback_v4(report):
    rows = [r for r in report["interfaces"] if r["family"] == "ipv4" and r["probed"]]
    assert rows, report
    return rows[0]


def test_reports_mapped_and_relayed_addresses(coturn):
    r = doctor("--stun", coturn.address, "--turn-secret", coturn.secret, "--realm", coturn.realm,
               "--json")
    assert r.returncode == 0, r.stdout + r.stderr + coturn.log()
    report = json.loads(r.stdout)
    row = loopback_v4(report)
    assert row["stun"]["ok"]
    mapped_ip, mapped_port = row["stun"]["mapped"].rsplit(":", 1)
    assert mapped_ip == "127.0.0.1"   # no NAT on loopback: mapped == local address
    assert row["stun"]["nat"] is False
    assert int(mapped_port) > 0
    turn = row["turn"]
    assert turn["ok"], turn
    relayed_ip, relayed_port = turn["relayed"].rsplit(":", 1)
    assert relayed_ip == "127.0.0.1"
    assert coturn.min_port <= int(relayed_port) <= coturn.max_port
    assert turn["mapped"] == row["stun"]["mapped"]  # same socket for both probes
    assert turn["round_trips"] == 2                  # cold: challenge + authenticated Allocate
    assert turn["realm"] == coturn.realm
    assert turn["deallocated"] is True
    assert "relay works" in row["verdict"]


def test_text_output_names_addresses_and_verdict(coturn):
    r = doctor("--stun", coturn.address, "--turn-secret", coturn.secret)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "server-reflexive  127.0.0.1:" in r.stdout
    assert "relay             127.0.0.1:" in r.stdout
    assert "summary: STUN answered on" in r.stdout


def test_wrong_secret_is_a_clear_relay_failure(coturn):
    r = doctor("--stun", coturn.address, "--turn-secret", "not-the-configured-secret", "--json")
    assert r.returncode == 1
    row = loopback_v4(json.loads(r.stdout))
    assert row["stun"]["ok"]
    assert not row["turn"]["ok"]
    assert "401" in row["turn"]["error"] and "shared secret" in row["turn"]["error"]


def test_realm_mismatch_is_reported(coturn):
    r = doctor("--stun", coturn.address, "--turn-secret", coturn.secret, "--realm", "other",
               "--json")
    assert r.returncode == 1
    row = loopback_v4(json.loads(r.stdout))
    assert "server realm is 'roam.test'" in row["turn"]["error"]


def test_unreachable_stun_server_says_so():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but never answering
        r = doctor("--stun", f"127.0.0.1:{port}", "--timeout", "0.5", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert "blocked" in loopback_v4(report)["stun"]["error"]
    assert "No STUN answer anywhere" in report["summary"]


def test_bad_arguments_name_the_option():
    r = doctor("--stun", "not-an-address")
    assert r.returncode == 2
    assert "--stun" in r.stderr
    r = doctor("--stun", "127.0.0.1:99999")
    assert r.returncode == 2 and "bad port" in r.stderr
    r = doctor("--stun", "127.0.0.1:3478", "--turn", "127.0.0.1:3478")
    assert r.returncode == 2 and "--turn-secret" in r.stderr
