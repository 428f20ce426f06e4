"""Cone-NAT daemon: endpoint-independent mapping with a chosen filtering behaviour.

Runs inside a router's namespace (started by Lab). Linux conntrack alone gives endpoint-
independent *mapping* for UDP (MASQUERADE reuses a source's existing binding, see README) but
only address-and-port-dependent *filtering*: an inbound packet from an endpoint the host never
sent to has no conntrack entry and dies. Real full-cone and restricted-cone NATs let such
packets in. This daemon reproduces them with ordinary kernel NAT, synchronously:

  mangle FORWARD  -o wan -p udp ctstate NEW  -> NFQUEUE (this daemon)
  for the first packet of every new outbound UDP flow, before accepting it, the daemon
    - creates the mapping if the internal endpoint has none: a SNAT rule pinning
      internal ip:port -> external ip:P (P = internal port when free: port preservation), and
      for full-cone a DNAT rule letting *anyone* reach external:P;
    - for restricted-cone adds a DNAT rule letting the flow's remote *address* (any port)
      reach external:P;
    - port-restricted needs no inbound rule: conntrack's own 5-tuple entry is the filter.
  then accepts the packet, which hits nat POSTROUTING and takes the pinned SNAT rule.
Mappings expire when conntrack holds no flow through them any more (the kernel's UDP timeouts,
30 s / 120 s by default), like a real NAT's mapping timer. A control socket lets the lab
flush every mapping ("rebinding"), optionally forcing new external ports.

Usage: natd.py --filtering KIND --wan IFACE --ext IP --queue N --control PATH
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nfqueue import NF_ACCEPT, NfQueue, udp_endpoints  # noqa: E402

SNAT_CHAIN = "ROAMNAT_SNAT"
DNAT_CHAIN = "ROAMNAT_DNAT"
EXPIRY_POLL_S = 1.0
EXPIRY_GRACE_S = 3.0   # a mapping whose first flow is not confirmed yet is not idle


class Mapping:
    def __init__(self, internal, external_port):
        self.internal = internal          # (ip, port)
        self.external_port = external_port
        self.allowed = set()              # restricted-cone: remote addresses let in
        self.created = time.monotonic()
        self.rules = []                   # rule specs (without -A/-D) in the nat table


class Natd:
    def __init__(self, filtering, wan, ext, preserve_ports=True):
        self.filtering = filtering
        self.wan, self.ext = wan, ext
        self.preserve_ports = preserve_ports
        self.mappings = {}      # (ip, port) -> Mapping
        self.by_port = {}       # external port -> Mapping
        self.retired = {}       # (ip, port) -> external ports it must not get again
        self.created = 0
        self.expired = 0
        self.errors = 0

    # -- rules ---------------------------------------------------------------------------
    def _restore(self, lines):
        text = "*nat\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
        r = subprocess.run(["iptables-restore", "--noflush", "-w"], input=text, text=True,
                           capture_output=True)
        if r.returncode != 0:
            self.errors += 1
            print(f"natd: iptables-restore failed: {r.stderr.strip()}\n{text}", file=sys.stderr,
                  flush=True)
        return r.returncode == 0

    def _snat_rule(self, ip, port, ext_port):
        return (f"{SNAT_CHAIN} -s {ip}/32 -p udp --sport {port} "
                f"-j SNAT --to-source {self.ext}:{ext_port}")

    def _dnat_rule(self, ip, port, ext_port, remote=None):
        src = f"-s {remote}/32 " if remote else ""
        return (f"{DNAT_CHAIN} {src}-d {self.ext}/32 -p udp --dport {ext_port} "
                f"-j DNAT --to-destination {ip}:{port}")

    def _choose_port(self, key):
        avoid = self.retired.get(key, set())
        port = key[1]
        if self.preserve_ports and port not in self.by_port and port not in avoid and port >= 1024:
            return port
        for _ in range(10000):
            p = random.randrange(1024, 65536)
            if p not in self.by_port and p not in avoid:
                return p
        raise RuntimeError("no free external port")

    def on_packet(self, src, sport, dst, dport):
        key = (src, sport)
        m = self.mappings.get(key)
        new = []
        if m is None:
            m = Mapping(key, self._choose_port(key))
            new.append(self._snat_rule(src, sport, m.external_port))
            if self.filtering == "endpoint-independent":
                new.append(self._dnat_rule(src, sport, m.external_port))
            self.mappings[key] = m
            self.by_port[m.external_port] = m
            self.created += 1
        if self.filtering == "address-dependent" and dst not in m.allowed:
            new.append(self._dnat_rule(src, sport, m.external_port, remote=dst))
            m.allowed.add(dst)
        if new and self._restore(["-A " + rule for rule in new]):
            m.rules.extend(new)

    def _remove(self, m):
        if m.rules:
            self._restore(["-D " + rule for rule in m.rules])
        self.mappings.pop(m.internal, None)
        self.by_port.pop(m.external_port, None)

    # -- expiry and rebinding ------------------------------------------------------------
    def live_ports(self):
        """External ports of the daemon's address that some conntrack UDP flow still uses."""
        r = subprocess.run(["conntrack", "-L", "-p", "udp"], capture_output=True, text=True)
        ports = set()
        for line in r.stdout.splitlines():
            fields = [f.split("=", 1) for f in line.split() if "=" in f]
            tuples = [(fields[i:i + 4]) for i in range(0, len(fields), 4)]
            for t in tuples[:2]:
                d = dict(t)
                if d.get("dst") == self.ext and "dport" in d:
                    ports.add(int(d["dport"]))
        return ports

    def expire(self):
        if not self.mappings:
            return
        live = self.live_ports()
        now = time.monotonic()
        for m in list(self.mappings.values()):
            if m.external_port not in live and now - m.created > EXPIRY_GRACE_S:
                self._remove(m)
                self.expired += 1

    def flush(self, new_ports):
        """Forgets every mapping (rules and UDP conntrack state), like a NAT reboot."""
        for m in list(self.mappings.values()):
            if new_ports:
                self.retired.setdefault(m.internal, set()).add(m.external_port)
            self._remove(m)
        subprocess.run(["conntrack", "-D", "-p", "udp"], capture_output=True)

    def status(self):
        return {
            "filtering": self.filtering, "external": self.ext, "created": self.created,
            "expired": self.expired, "errors": self.errors,
            "mappings": [{"internal": f"{ip}:{port}", "external": f"{self.ext}:{m.external_port}",
                          "allowed": sorted(m.allowed)}
                         for (ip, port), m in sorted(self.mappings.items())],
        }


def serve_control(natd, conn):
    try:
        conn.settimeout(5)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        words = data.decode().split()
        if words[:1] == ["status"]:
            reply = natd.status()
        elif words[:1] == ["flush"]:
            natd.flush(new_ports="newport" in words[1:])
            reply = {"ok": True}
        else:
            reply = {"error": f"unknown command {words!r}"}
        conn.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--filtering", required=True,
                   choices=["endpoint-independent", "address-dependent",
                            "address-and-port-dependent"])
    p.add_argument("--wan", required=True)
    p.add_argument("--ext", required=True)
    p.add_argument("--queue", type=int, required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--no-port-preservation", action="store_true")
    args = p.parse_args()

    natd = Natd(args.filtering, args.wan, args.ext, preserve_ports=not args.no_port_preservation)
    queue = NfQueue(args.queue)
    try:
        os.unlink(args.control)
    except FileNotFoundError:
        pass
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(args.control)
    control.listen(8)
    stop = []

    def on_signal(*_):
        stop.append(1)
        raise InterruptedError  # wakes select() now (PEP 475 would retry it otherwise)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    next_expiry = time.monotonic() + EXPIRY_POLL_S
    while not stop:
        timeout = max(0.0, next_expiry - time.monotonic())
        try:
            readable, _, _ = select.select([queue, control], [], [], timeout)
        except InterruptedError:
            continue
        if queue in readable:
            for packet_id, packet in queue.receive():
                ends = udp_endpoints(packet)
                if ends:
                    try:
                        natd.on_packet(*ends)
                    except Exception as e:  # never leave a packet without a verdict
                        natd.errors += 1
                        print(f"natd: {e!r}", file=sys.stderr, flush=True)
                queue.verdict(packet_id, NF_ACCEPT)
        if control in readable:
            conn, _ = control.accept()
            serve_control(natd, conn)
        if time.monotonic() >= next_expiry:
            natd.expire()
            next_expiry = time.monotonic() + EXPIRY_POLL_S
    queue.close()
    control.close()


if __name__ == "__main__":
    main()
