"""Roam's network lab: topologies in Linux network namespaces with the kernel's own NAT.

See tests/lab/README.md. Python 3 stdlib only, driving ip, iptables, ip6tables and conntrack
(the signaling client, sigclient.py, also needs Debian's python3-websockets, and tokens
python3-jwt); the impairment tool (impair/) is the one compiled helper.
"""

from .lab import (Fault, Impairment, Lab, LabError, LabInterrupted, Process, binary, can_run,
                  list_namespaces, namespace_pids, sweep)
from .topology import (CLOUD, INTERNET, NAT_KINDS, Carrier, Host, Impair, Router, Topology,
                       plan)
from . import topologies

__all__ = ["Lab", "LabError", "LabInterrupted", "Process", "Impairment", "Fault", "binary",
           "can_run", "sweep", "list_namespaces", "namespace_pids", "Topology", "Router",
           "Carrier", "Host", "Impair", "NAT_KINDS", "CLOUD", "INTERNET", "plan", "topologies"]
