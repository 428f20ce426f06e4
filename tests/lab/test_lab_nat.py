"""Every NAT kind, classified by the RFC 5780 probe from behind it, is what it claims to be."""

import pytest

from roamlab import NAT_KINDS, Host, Router, Topology, topologies
from roamlab.measure import classify, reflector, request

RESULTS = {}


@pytest.mark.parametrize("kind", list(NAT_KINDS))
def test_probe_classifies_nat_kind(make_lab, report, kind):
    lab = make_lab(topologies.get(f"nat-{kind}"))
    result = classify(lab, "alice")
    assert "error" not in result, result
    mapping, filtering = NAT_KINDS[kind]
    RESULTS[kind] = result
    report(f"NAT {kind:16} mapping={result['mapping']:27} filtering={result['filtering']:27} "
           f"mapped={result['mapped']}")
    assert result["nat"] is True
    for mapped in result["mapped"].values():
        assert mapped.rpartition(":")[0] == lab.external("nat"), result
    assert (result["mapping"], result["filtering"]) == (mapping, filtering), result


def test_ipv6_has_no_nat_and_a_stateful_firewall(make_lab, report):
    """IPv6 through the home router: the address is the host's own (no translation, so mapping
    is trivially endpoint-independent) and the stateful firewall admits only the 5-tuple the
    host sent to."""
    lab = make_lab(topologies.get("nat-port-restricted"))
    result = classify(lab, "alice", family=6)
    report(f"IPv6 through a home firewall: mapping={result['mapping']} "
           f"filtering={result['filtering']} mapped={result['mapped']['primary']}")
    assert result["nat"] is False, result
    assert result["mapped"]["primary"].startswith(f"[{lab.addr('alice', family=6)}]:")
    assert result["mapping"] == "endpoint-independent"
    assert result["filtering"] == "address-and-port-dependent"


@pytest.mark.parametrize("kind", ["port-restricted", "masquerade"])
def test_second_host_on_same_port_gets_another_port_and_keeps_it(make_lab, report, kind):
    """Port preservation collides when two hosts use the same source port toward the same
    server; the second host gets another external port, and (endpoint-independent mapping)
    keeps that port toward every other destination too. Measured on the daemon NAT and on
    plain Linux MASQUERADE (which reuses a source's existing binding)."""
    topo = Topology("two-behind-one", routers=[Router("nat", nat=kind)],
                    hosts=[Host("alice", {"eth0": "nat"}), Host("bob", {"eth0": "nat"})])
    lab = make_lab(topo)
    port = 40000
    a = request(lab, "alice", reflector(lab), bind=f"{lab.addr('alice')}:{port}")
    assert a["mapped"] == f"{lab.external('nat')}:{port}", a
    b = [request(lab, "bob", reflector(lab, index=i, port=p), bind=f"{lab.addr('bob')}:{port}")
         for i, p in ((0, 3490), (1, 3490), (1, 3491), (0, 3491))]
    mapped = {r["mapped"] for r in b}
    report(f"{kind}: alice {lab.addr('alice')}:{port} -> {a['mapped']}; bob same port -> "
           f"{sorted(mapped)}")
    assert len(mapped) == 1, b
    assert mapped.pop() != a["mapped"]
