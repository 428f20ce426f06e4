"""`roam ice` (continuous ICE through roam-signaling) between two lab hosts, against the real
stack in the cloud: relay first then direct behind two endpoint-independent NATs, relayed with
a reason on a carrier that blocks direct UDP, direct over IPv6 where only IPv4 is blocked, an
interface going down under a multihomed host, and a silent blackhole of the active path.
Times are read from the agents' event logs (`ts` shares the lab's clock)."""

import time

import pytest

from roamlab import topologies
from roamlab.agents import (BLOCKED_REASONS, AgentError, dump_all, family, ice_supports,
                            ice_unavailable, is_selected, is_valid_pair, split_endpoint,
                            start_ice_stack, start_pair)

pytest.importorskip("jwt", reason="python3-jwt not installed (./run deps)")

DIRECT_TIMEOUT_S = 10      # session -> direct pair selected, generous for a loaded machine
BLOCKED_OBSERVE_S = 8      # carrier: how long the agents must stay relayed
BLOCKED_TIMEOUT_S = 15     # ... and until they name a "blocked" reason (checks fail in 5.5 s)
LINK_DOWN_LIMIT_S = 0.25   # link down -> the interface's pairs failed (~200 ms target + slack)
BLACKHOLE_TIMEOUT_S = 15   # silent path death: keepalive misses bound it without data
TRAFFIC_MS = 20            # roam ice --traffic-interval in the blackhole test


@pytest.fixture
def ice_lab(make_lab):
    """ice_lab(topology name) -> (lab, stack) with coturn (STUN on IPv4 and IPv6), redis,
    roam-relay with a full pool and one roam-signaling instance."""
    reason = ice_unavailable()
    if reason:
        pytest.skip(reason)

    def make(name):
        lab = make_lab(topologies.get(name), reflector=False)
        try:
            stack = start_ice_stack(lab)
        except FileNotFoundError as e:
            pytest.skip(str(e))
        return lab, stack
    return make


def _ms(value):
    return "-" if value is None else f"{value:.0f} ms"


def _well_formed(*agents):
    for agent in agents:
        assert not agent.bad_lines, f"{agent.name}: malformed event lines\n{agent.dump()}"


def _stop(*agents):
    """Stops every agent; asserts each exited 0 with a `stopped` event."""
    codes = {a.name: a.stop() for a in agents}
    for a in agents:
        assert codes[a.name] == 0 and a.last("stopped"), (codes, a.dump())
    return codes


def _wait_direct(*agents, timeout=DIRECT_TIMEOUT_S, pred=None):
    return [a.wait(lambda e: is_selected(e, kind="direct") and (pred is None or pred(e)),
                   timeout, "a direct pair selected") for a in agents]


def test_two_nats_relay_first_then_direct(ice_lab, report):
    lab, stack = ice_lab("two-nats")
    alice, bob = start_pair(lab, stack)
    try:
        _wait_direct(alice, bob)
        # The pre-allocated relay pair is valid too (normally first): wait a moment for it.
        for a in (alice, bob):
            a.wait(lambda e: is_valid_pair(e, kind="relay"), 5, "a valid relay pair")
        # IPv6 is routed (no NAT) in this topology: the IPv4 pair is the NAT traversal.
        direct4 = [a.wait(lambda e: is_valid_pair(e, kind="direct", family=4), 5,
                          "a valid direct IPv4 pair (through both NATs)") for a in (alice, bob)]
    except AgentError as e:
        raise AgentError(f"{e}\n{dump_all(alice, bob)}") from None
    lines = []
    for agent, router, v4 in ((alice, "home1", direct4[0]), (bob, "home2", direct4[1])):
        session = agent.session()
        assert session["relay_token"] is True and session["reserved"], agent.dump()
        assert session["remote_candidates"] >= 1, agent.dump()
        assert session["role"] == ("controlling" if agent is alice else "controlled")
        # STUN through the NAT: an IPv4 server-reflexive candidate on the NAT's address.
        srflx = agent.first("candidate", side="local", action="added", type="srflx", family=4)
        assert srflx and split_endpoint(srflx["address"])[0] == lab.external(router), \
            agent.dump()
        relay = agent.first("relay", state="allocated")
        assert relay and relay["token"] is True, agent.dump()
        assert relay["relayed"] == session["reserved"], agent.dump()
        first_relay = agent.first("pair", pred=lambda e: is_valid_pair(e, kind="relay"))
        first_direct = agent.first("pair", pred=lambda e: is_valid_pair(e, kind="direct"))
        assert first_relay is not None and first_direct is not None
        selected = agent.first("selected", kind="direct")
        first = "relay" if first_relay["t_ms"] <= first_direct["t_ms"] else "direct"
        lines.append(f"{agent.peer} ({first} pair valid first): session -> relay pair valid "
                     f"{_ms(agent.since_session_ms(first_relay))}, direct pair valid "
                     f"{_ms(agent.since_session_ms(first_direct))}, direct selected "
                     f"{_ms(agent.since_session_ms(selected))} ({selected['local_type']}/"
                     f"{selected['remote_type']} IPv{family(selected['remote'])}; relay "
                     f"allocated in {_ms(relay.get('elapsed_ms'))}, "
                     f"{relay.get('round_trips', '?')} round trips); direct IPv4 pair valid "
                     f"{_ms(agent.since_session_ms(v4))} ({v4['local']} -> {v4['remote']}, "
                     f"{v4['local_type']}/{v4['remote_type']})")
    report("roam ice two-nats: " + "; ".join(lines))
    _well_formed(alice, bob)

    # Stopping the caller ends the session: bob gets the bye and exits on his own.
    assert alice.stop() == 0 and alice.last("stopped"), alice.dump()
    code = bob.wait_exit(5)
    assert code == 0 and bob.last("stopped"), f"bob after alice's bye: exit {code}\n{bob.dump()}"
    report(f"roam ice two-nats: alice stopped ({alice.last('stopped')['reason']}), bob exited "
           f"0 ({bob.last('stopped')['reason']})")


def test_carrier_stays_on_relay_and_says_direct_is_blocked(ice_lab, report):
    """The carrier drops UDP between subscribers in both families (and NATs IPv4
    symmetrically): the agents stay relayed and, once the direct checks have failed, name a
    "blocked" reason: even the IPv6 pair, which no NAT stands in, gets no answer."""
    lab, stack = ice_lab("carrier")
    alice, bob = start_pair(lab, stack)
    agents = (alice, bob)
    try:
        for a in agents:
            a.wait(lambda e: is_selected(e, kind="relay"), DIRECT_TIMEOUT_S,
                   "the relay pair selected")
        start = time.monotonic()
        for a in agents:
            a.wait_until(lambda ag: ag.relay_reason() not in (None, "checking-direct",
                                                              "no-remote-direct-candidates"),
                         BLOCKED_TIMEOUT_S, "a settled relay_reason (direct checks done)")
        time.sleep(max(0.0, BLOCKED_OBSERVE_S - (time.monotonic() - start)))
    except AgentError as e:
        raise AgentError(f"{e}\n{dump_all(*agents)}") from None
    lines = []
    for a in agents:
        reason = a.relay_reason()
        said = a.first(pred=lambda e: e.get("reason" if e["event"] == "relay_reason"
                                            else "relay_reason") == reason
                       and e["event"] in ("relay_reason", "selected"))
        description = a.last("relay_reason", reason=reason)
        failures = sorted({f"IPv{e['family']} {e['local_type']}/{e['remote_type']}: "
                           f"{e.get('failure')}" for e in a.all("pair", state="failed")
                           if e.get("kind") == "direct"})
        lines.append(f"{a.peer}: relay_reason {reason!r} after "
                     f"{_ms(a.since_session_ms(said))} "
                     f"({description['description'] if description else 'no description'}); "
                     f"direct failures: {', '.join(failures)}")
    report(f"roam ice carrier: relayed for {BLOCKED_OBSERVE_S} s; " + "; ".join(lines))
    for a in agents:
        assert a.first("selected", kind="direct") is None, a.dump()
        assert a.first("pair", pred=lambda e: is_valid_pair(e, kind="direct")) is None, a.dump()
        assert a.selected_kind() == "relay", a.dump()
    for a in agents:
        assert a.relay_reason() in BLOCKED_REASONS, (
            f"{a.peer} says {a.relay_reason()!r}, expected one of {BLOCKED_REASONS}: every "
            f"direct check timed out in both families (IPv6 has no NAT here)\n{a.dump()}")
    _well_formed(*agents)
    _stop(*agents)


def test_carrier_v6_selects_the_direct_ipv6_pair(ice_lab, report):
    lab, stack = ice_lab("carrier-v6")
    alice, bob = start_pair(lab, stack)
    agents = (alice, bob)
    try:
        picked = _wait_direct(*agents)
    except AgentError as e:
        raise AgentError(f"{e}\n{dump_all(*agents)}") from None
    lines = []
    for a, sel in zip(agents, picked):
        assert family(sel["local"]) == 6 and family(sel["remote"]) == 6, a.dump()
        relay = a.first("pair", pred=lambda e: is_valid_pair(e, kind="relay"))
        lines.append(f"{a.peer}: direct IPv6 {sel['local']} -> {sel['remote']} selected "
                     f"{_ms(a.since_session_ms(sel))} after session (relay pair valid "
                     f"{_ms(a.since_session_ms(relay))})")
        # IPv4 direct is blocked by the carrier: no IPv4 direct pair may ever be valid.
        assert not a.all("pair", pred=lambda e: is_valid_pair(e, kind="direct")
                         and family(e["remote"]) == 4), a.dump()
    report("roam ice carrier-v6: " + "; ".join(lines))
    _well_formed(*agents)
    _stop(*agents)


def test_multihomed_wifi_down_moves_to_a_valid_cell_pair(ice_lab, report):
    lab, stack = ice_lab("multihomed")
    alice, bob = start_pair(lab, stack, caller_opts={"metered": ["cell"]})
    agents = (alice, bob)
    try:
        alice.wait_until(lambda a: (a.selected() or {}).get("interface") == "wifi"
                         and a.valid_pairs(interface="cell"), DIRECT_TIMEOUT_S,
                         "a wifi pair selected and a valid cell pair")
    except AgentError as e:
        raise AgentError(f"{e}\n{bob.dump()}") from None
    time.sleep(0.5)   # let the other pairs finish their first checks
    before_sel = alice.selected()
    mark = alice.mark()
    down_at = time.time()
    lab.link_down("alice", "wifi")
    down_done = time.time()
    wifi_pairs = {p["pair"]: p for p in alice.pairs(until=down_at).values()
                  if p["interface"] == "wifi" and not p.get("removed")}
    live_wifi = {pid for pid, p in wifi_pairs.items() if p["state"] != "failed"}
    valid_cell = {p["pair"] for p in alice.valid_pairs(until=down_at, interface="cell")}
    try:
        for pid in live_wifi:
            alice.wait_event("pair", 3, since=mark, pair=pid, state="failed")
        moved = alice.wait_event("selected", 5, since=mark,
                                 pred=lambda e: e.get("interface") == "cell")
    except AgentError as e:
        raise AgentError(f"{e}\nwifi down at {down_at:.3f}\n{bob.dump()}") from None
    failed = {pid: alice.first("pair", since=mark, pair=pid, state="failed") for pid in live_wifi}
    delays = {pid: e["ts"] - down_at for pid, e in failed.items()}
    reasons = {e.get("failure") for e in failed.values()}
    report(f"roam ice multihomed: wifi down ({(down_done - down_at) * 1000:.0f} ms for `ip link "
           f"set down`): {len(live_wifi)} wifi pairs failed after "
           f"{', '.join(f'{d * 1000:.0f}' for d in sorted(delays.values()))} ms "
           f"({', '.join(sorted(map(str, reasons)))}); selection {before_sel['kind']} on wifi -> "
           f"{moved['kind']} on cell pair {moved['pair']} ({moved['local']} -> "
           f"{moved['remote']}, reason {moved['reason']}) "
           f"{(moved['ts'] - down_at) * 1000:.0f} ms after; {len(valid_cell)} cell pairs were "
           f"valid before")
    assert live_wifi, alice.dump()
    assert reasons == {"local-candidate-removed"}, alice.dump()
    assert max(delays.values()) <= LINK_DOWN_LIMIT_S, (delays, alice.dump())
    assert moved["pair"] in valid_cell, (moved, valid_cell, alice.dump())
    assert moved["ts"] - down_at <= LINK_DOWN_LIMIT_S, alice.dump()
    _well_formed(*agents)
    _stop(*agents)


def test_blackhole_of_the_direct_path_moves_the_selection(ice_lab, report):
    lab, stack = ice_lab("two-nats")
    # Probes on the selected pair, so liveness is judged as under application traffic.
    traffic = {"traffic_ms": TRAFFIC_MS} if ice_supports("--traffic-interval") else {}
    alice, bob = start_pair(lab, stack, caller_opts=traffic, callee_opts=traffic)
    agents = (alice, bob)
    try:
        _wait_direct(*agents)
        # A second valid pair to move to (the relay pair, or the other family's direct pair).
        alice.wait_until(lambda a: len(a.valid_pairs()) >= 2, 5, "two valid pairs")
    except AgentError as e:
        raise AgentError(f"{e}\n{dump_all(*agents)}") from None
    time.sleep(0.5)
    sel, bob_sel = alice.selected(), bob.selected()
    remote_ip = split_endpoint(sel["remote"])[0]
    marks = [a.mark() for a in agents]
    start = time.time()
    fault = lab.blackhole("alice", at="router", peer=remote_ip)
    installed = time.time() - start
    try:
        moved = alice.wait_event("selected", BLACKHOLE_TIMEOUT_S, since=marks[0],
                                 pred=lambda e: e.get("pair") != sel["pair"])
        # bob (controlled) follows alice's nomination, or finds the dead pair himself.
        bob_moved = bob.wait_event("selected", 5, since=marks[1],
                                   pred=lambda e: e.get("pair") != bob_sel["pair"])
    except AgentError as e:
        raise AgentError(f"{e}\nblackhole of {remote_ip} at {start:.3f}\n{dump_all(*agents)}") \
            from None
    old = alice.first("pair", since=marks[0], pair=sel["pair"], state="failed")
    time.sleep(1.0)
    later = [f"{e['kind']} IPv{family(e['remote'])} ({e['reason']}, "
             f"+{(e['ts'] - moved['ts']) * 1000:.0f} ms)"
             for e in alice.all("selected", since=marks[0], pred=lambda e: e.get("pair"))
             if moved["ts"] < e["ts"] <= moved["ts"] + 1.0]
    report(f"roam ice blackhole (two-nats, {sel['kind']} IPv{family(sel['remote'])} "
           f"{sel['local']} -> {sel['remote']}; rules in place after {installed * 1000:.0f} ms): "
           f"alice moved to {moved['kind']} pair {moved['pair']} ({moved.get('remote')}, "
           f"reason {moved['reason']}) after {(moved['ts'] - start) * 1000:.0f} ms; old pair "
           + (f"failed ({old.get('failure')}) after {(old['ts'] - start) * 1000:.0f} ms"
              if old else "not failed") + f"; bob moved to {bob_moved['kind']} after "
           f"{(bob_moved['ts'] - start) * 1000:.0f} ms ({bob_moved['reason']}); "
           f"{fault.dropped()} packets dropped; later switches within 1 s: "
           f"{', '.join(later) or 'none'}")
    assert moved.get("pair") is not None and moved["kind"] != "none", alice.dump()
    if traffic:   # data liveness: at most max_liveness_timeout (3 s, agent_config.h)
        assert moved["ts"] - start <= 3.0 and old and old["failure"] == "data-timeout", \
            alice.dump()
    fault.clear()
    _well_formed(*agents)
    _stop(*agents)
