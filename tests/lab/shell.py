#!/usr/bin/python3
"""Bring a lab topology up for a person to explore; tear it down on Enter, Ctrl-C or SIGTERM.

    sudo /usr/bin/python3 tests/lab/shell.py two-nats            # or: --list
    sudo /usr/bin/python3 tests/lab/shell.py multihomed --stack  # + coturn, redis, roam-relay,
                                                                 #   two roam-signaling
    sudo /usr/bin/python3 tests/lab/shell.py --sweep             # leftovers of killed runs

Prints every node with its namespace, addresses and the command to enter it.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from roamlab import Lab, LabError, can_run, sweep, topologies  # noqa: E402
from roamlab.lab import subscriber_firewall  # noqa: E402
from roamlab.measure import REFLECTOR_PORTS, start_reflector  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roamlab", "probe.py")
SIGCLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roamlab", "sigclient.py")


def describe(lab, stack):
    plan = lab.plan
    out = [f"topology {lab.topology.name}: {lab.topology.description}".rstrip(": "), ""]
    for node in plan.nodes:
        kind = plan.kinds[node]
        what = kind
        if kind == "router":
            r = lab.topology.router(node)
            what = f"router, NAT {r.nat or 'none'}"
            if r.udp_allow is not None:
                what += ", carrier UDP policy (IPv4 UDP only to " + ", ".join(r.udp_allow) + ")"
            if r.udp_allow6 is not None:
                what += " (IPv6 too)"
            if r.firewall6:
                what += ", IPv6 stateful firewall"
                if subscriber_firewall(r):
                    what += " (also between its subscribers)"
        out.append(f"{node}  [{what}]  namespace {lab.ns(node)}")
        if kind == "core":
            out.append(f"    lan {plan.lan4[node]}  {plan.lan6[node]}  (public segment)")
        if kind == "cloud":
            out.append("    eth0 " + "  ".join(map(str, plan.cloud4 + plan.cloud6)))
        for a in plan.uplinks(node):
            if kind == "cloud":
                continue
            out.append(f"    {a.iface:5} {a.addr4}  {a.addr6}  via {a.router}")
        if kind == "router":
            out.append(f"    lan   {plan.lan4[node]}  {plan.lan6[node]}")
        out.append(f"    enter: ip netns exec {lab.ns(node)} env PS1='[{node}] \\w# ' bash --norc")
    out += ["", f"probe reflector in the cloud on ports {REFLECTOR_PORTS} of every cloud address;"
                " from a host, e.g.:",
            f"    /usr/bin/python3 {PROBE}"
            f" classify --server {lab.cloud(4, 0)}:3490 --alt-addr {lab.cloud(4, 1)}:3490"
            f" --alt-both {lab.cloud(4, 1)}:3491 --alt-port {lab.cloud(4, 0)}:3491"]
    if stack:
        coturn = stack.coturn
        out += ["", f"coturn {coturn.address} (secret {coturn.secret}, realm {coturn.realm}), "
                f"redis {stack.redis.address}" + (", roam-relay" if stack.relay else ""),
                f"    e.g. in a host: roam doctor --stun {coturn.address} --turn-secret "
                f"{coturn.secret} --realm {coturn.realm}"]
        for sig in stack.signaling:
            out.append(f"roam-signaling {sig.instance}: {sig.url} (admin http://{sig.admin}/, "
                       f"from the cloud); kill: kill -9 {sig.process.pid}")
        if stack.signaling:
            sig = stack.signaling[0]
            urls = " ".join(f"--url {s.url}" for s in stack.signaling)
            out += [f"    certificate (pin it as the CA): {sig.cert}",
                    f"    JWT secret: {sig.jwt_secret}  (audience {sig.audience})",
                    f"    a token: ROAM_SIGNALING_JWT_SECRET={sig.jwt_secret} {sig.binary} token "
                    f"--peer alice",
                    f"    e.g. in a host: /usr/bin/python3 {SIGCLIENT} {urls} --ca {sig.cert} "
                    f"--token {sig.token('alice', ttl=86400)} [--connect bob]"]
    out += ["", "Teardown kills every process inside the lab's namespaces, shells included."]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("topology", nargs="?", help="a name from --list")
    p.add_argument("--list", action="store_true", help="list the topologies")
    p.add_argument("--stack", action="store_true",
                   help="start coturn, redis-server, roam-relay and two roam-signaling "
                        "instances in the cloud")
    p.add_argument("--sweep", action="store_true",
                   help="only remove leftovers (namespaces, processes) of dead lab runs")
    args = p.parse_args()
    if args.sweep:
        if os.geteuid() != 0:
            print("lab shell: --sweep needs root", file=sys.stderr)
            return 1
        removed = sweep(log=print)
        print(f"removed {len(removed)} dead run(s)")
        return 0
    if args.list or not args.topology:
        for name, description in topologies.names().items():
            print(f"{name:24} {description}")
        return 0 if args.list else 2
    reason = can_run()
    if reason:
        print(f"lab shell: {reason}", file=sys.stderr)
        return 1
    try:
        topology = topologies.get(args.topology)
    except KeyError as e:
        print(f"lab shell: {e.args[0]}", file=sys.stderr)
        return 2
    try:
        with Lab(topology) as lab:
            start_reflector(lab)
            stack = None
            if args.stack:
                from roamlab.services import start_stack
                stack = start_stack(lab, signaling=2)
            print(describe(lab, stack), flush=True)
            print("\nPress Enter (or Ctrl-C) to tear the lab down.", flush=True)
            try:
                sys.stdin.readline()
            except (KeyboardInterrupt, EOFError):
                pass
            print("tearing down...", flush=True)
    except (LabError, FileNotFoundError) as e:
        print(f"lab shell: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; lab torn down", file=sys.stderr)
        return 130
    print("lab torn down", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
