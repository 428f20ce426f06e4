"""Measurements over a running lab, built on probe.py (run inside the namespaces).

    with Lab(topologies.get("nat-full-cone")) as lab:
        start_reflector(lab)
        classify(lab, "alice")     # {"mapping": ..., "filtering": ..., "mapped": ...}
        ping(lab, "alice", reflector(lab), count=200)
"""

import shutil
import tempfile
import threading

from .topology import CLOUD

REFLECTOR_PORTS = (3490, 3491)


def _ep(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_reflector(lab, node=CLOUD):
    """The probe server on both cloud addresses and two ports each, IPv4 and IPv6."""
    endpoints = []
    for family in (4, 6):
        for index in (0, 1):
            for port in REFLECTOR_PORTS:
                endpoints.append(_ep(lab.cloud(family, index), port))
    p = lab.python_popen(node, "probe.py", "serve", *endpoints, name="reflector", realtime=True)
    p.wait_line("ready")
    return p


def reflector(lab, family=4, index=0, port=REFLECTOR_PORTS[0]):
    return _ep(lab.cloud(family, index), port)


def classify(lab, host, family=4, bind=None, timeout=0.4, tries=3):
    """RFC 5780 mapping and filtering behaviour seen from `host` (reflector must be up)."""
    a, b = lab.cloud(family, 0), lab.cloud(family, 1)
    p, q = REFLECTOR_PORTS
    args = ["classify", "--server", _ep(a, p), "--alt-addr", _ep(b, p), "--alt-both", _ep(b, q),
            "--alt-port", _ep(a, q), "--timeout", timeout, "--tries", tries]
    if bind:
        args += ["--bind", bind]
    return lab.python(host, "probe.py", *args)


def request(lab, host, server, via=None, bind=None, timeout=0.4, tries=3):
    """One request to `server` (answered from `via` when given): {"ok", "mapped", "from"}."""
    args = ["request", "--server", server, "--timeout", timeout, "--tries", tries]
    if via:
        args += ["--via", via]
    if bind:
        args += ["--bind", bind]
    return lab.python(host, "probe.py", *args)


def ping(lab, host, target, count=100, interval_ms=10, bind=None, size=64, wait_ms=500,
         timeline=False):
    """Echo RTT/loss toward a reflector endpoint: {"sent","received","loss","rtt_ms":{...}}."""
    args = ["ping", "--target", target, "--count", count, "--interval-ms", interval_ms,
            "--size", size, "--wait-ms", wait_ms]
    if bind:
        args += ["--bind", bind]
    if timeline:
        args.append("--timeline")
    return lab.python(host, "probe.py", *args, timeout=60 + count * interval_ms / 1000,
                      realtime=True)


def ping_background(lab, host, target, **kw):
    """Starts ping() in a thread; returns (thread, result dict filled when it ends)."""
    result = {}

    def work():
        try:
            result.update(ping(lab, host, target, **kw))
        except Exception as e:  # reported by the caller
            result["exception"] = repr(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t, result


def p2p_pair(lab, a, a_bind, b, b_bind, count=50, interval_ms=20, linger_ms=300, b_sends=True,
             b_delay_s=0.0, a_peer=None, b_peer=None):
    """Runs probe.py p2p on both hosts at once: both bind, meet at a barrier, then start
    sending at the same instant (b `b_delay_s` later); b_sends=False makes b a pure listener.
    Each sends to the other's bound address unless a_peer/b_peer (what a/b send to, e.g. the
    other's NAT mapping) say otherwise. Returns (result_a, result_b)."""
    results = {}
    barrier = tempfile.mkdtemp(prefix="p2p-", dir=lab.dir)

    def side(key, host, bind, peer, n, extra_linger, delay):
        results[key] = lab.python(host, "probe.py", "p2p", "--bind", bind, "--peer", peer,
                                  "--count", n, "--interval-ms", interval_ms,
                                  "--linger-ms", linger_ms + extra_linger,
                                  "--barrier", barrier, "--delay-s", f"{delay:.6f}",
                                  timeout=60 + count * interval_ms / 1000)

    n_b = count if b_sends else 0
    b_linger = count * interval_ms if not b_sends else 0
    ta = threading.Thread(target=side, args=("a", a, a_bind, a_peer or b_bind, count, 0, 0.0))
    tb = threading.Thread(target=side, args=("b", b, b_bind, b_peer or a_bind, n_b, b_linger,
                                             b_delay_s if b_sends else 0.0))
    tb.start()
    ta.start()
    ta.join()
    tb.join()
    shutil.rmtree(barrier, ignore_errors=True)
    if "a" not in results or "b" not in results or "error" in results["a"] \
            or "error" in results["b"]:
        raise RuntimeError(f"p2p side failed: {results}")
    return results["a"], results["b"]


def stun(lab, host, server, bind=None):
    args = ["stun", "--server", server]
    if bind:
        args += ["--bind", bind]
    return lab.python(host, "probe.py", *args)


__all__ = ["start_reflector", "reflector", "classify", "request", "ping", "ping_background",
           "p2p_pair", "stun", "REFLECTOR_PORTS"]
