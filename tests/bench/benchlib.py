"""Helpers the Python lab benchmarks share: output, percentiles, the delayed lab topology."""

import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))

from roamlab import Impair, topologies  # noqa: E402


def log(text=""):
    print(text, flush=True)


def percentile(values, p):
    """Linear interpolation between the closest ranks (p in 0..1); NaN for no values."""
    v = sorted(values)
    if not v:
        return math.nan
    k = (len(v) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def delayed_multihomed(delay_ms):
    """Topology `multihomed` with every router's WAN delayed `delay_ms` each way."""
    topo = topologies.multihomed()
    for router in topo.routers:
        router.wan_impair = (Impair(delay_ms=delay_ms), Impair(delay_ms=delay_ms))
    topo.name = "multihomed-delayed"
    return topo
