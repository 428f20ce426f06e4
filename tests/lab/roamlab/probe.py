#!/usr/bin/python3
"""UDP probe for the lab (standalone script, stdlib only; run inside a namespace).

  probe.py serve ADDR:PORT...         reflector: answers requests, echoes ping packets
  probe.py classify --server A:P --alt-addr B:P --alt-both B:Q --alt-port A:Q
                                      RFC 5780 §4.3/§4.4 mapping and filtering behaviour
  probe.py request --server A:P [--via X:Y] [--bind IP[:PORT]]
                                      one request; the mapped address, or that none came
  probe.py ping --target A:P --count N --interval-ms I
                                      RTT and loss of echoed packets (optionally a timeline)
  probe.py p2p --bind IP:PORT --peer IP:PORT --count N
                                      sends to a peer and counts what arrives from anyone
  probe.py stun --server A:P          STUN Binding (RFC 8489): XOR-MAPPED-ADDRESS
  probe.py turn --server A:P --username U --password P [--token HEX]
                                      TURN Allocate (RFC 8656, long-term credentials), with a
                                      RESERVATION-TOKEN when given: the relayed address
Every client mode prints one JSON object. Requests are JSON datagrams; ping packets are
binary (b"P" + sequence + timestamp) and echoed verbatim.
"""

import argparse
import hashlib
import hmac
import json
import os
import select
import socket
import statistics
import struct
import sys
import time


def parse_endpoint(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected IP:PORT")
    return host, int(port)


def fmt(ep):
    host, port = ep[0], ep[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bind(text):
    """IP, IP:PORT, [IPv6]:PORT or a bare IPv6 address; port 0 when not given."""
    if not text:
        return None
    if text.startswith("[") or text.count(":") == 1:
        return parse_endpoint(text)
    return text, 0


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def make_socket(family, bind=None):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if bind:
        host, port = bind
        s.bind((host, port))
    else:
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    return s


# ---- server -------------------------------------------------------------------------------

def serve(endpoints):
    socks = {}
    for ep in endpoints:
        s = make_socket(family_of(ep[0]), ep)
        socks[fmt(ep)] = s
    print("ready", flush=True)
    by_fd = {s.fileno(): (name, s) for name, s in socks.items()}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            name, s = by_fd[fd]
            try:
                data, addr = s.recvfrom(65535)
            except OSError:
                continue
            if data[:1] != b"{":
                try:
                    s.sendto(data, addr)
                except OSError:
                    pass
                continue
            try:
                req = json.loads(data)
            except ValueError:
                continue
            reply = {"id": req.get("id"), "mapped": fmt(addr), "server": name}
            out = s
            via = req.get("via")
            if via:
                out = socks.get(via)
                if out is None:
                    reply = {"id": req.get("id"), "error": f"not serving {via}"}
                    out = s
                else:
                    reply["server"] = via
            try:
                out.sendto(json.dumps(reply).encode(), addr)
            except OSError:
                pass


# ---- request/response ------------------------------------------------------------------------

_next_id = [int.from_bytes(os.urandom(3), "big")]


def request(sock, server, via=None, timeout=0.4, tries=3):
    """Sends {"op":"mapped"} to server (answer from `via` when given); the reply dict or None."""
    _next_id[0] += 1
    rid = _next_id[0]
    msg = {"op": "mapped", "id": rid}
    if via:
        msg["via"] = fmt(via)
    data = json.dumps(msg).encode()
    for _ in range(tries):
        try:
            sock.sendto(data, server)
        except OSError as e:
            return {"send_error": e.strerror}
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                break
            try:
                reply, addr = sock.recvfrom(65535)
            except OSError:
                continue
            try:
                obj = json.loads(reply)
            except ValueError:
                continue
            if obj.get("id") == rid:
                obj["from"] = fmt(addr)
                return obj
    return None


def local_address(server):
    """The source address the routing table picks toward `server` (no packet is sent)."""
    with socket.socket(family_of(server[0]), socket.SOCK_DGRAM) as s:
        s.connect(server)
        host = s.getsockname()[0]
    return f"[{host}]" if ":" in host else host


def classify(args):
    primary, alt_addr, alt_both, alt_port = args.server, args.alt_addr, args.alt_both, args.alt_port
    fam = family_of(primary[0])
    bind = parse_bind(args.bind)
    out = {"servers": {"primary": fmt(primary), "alt_addr": fmt(alt_addr),
                       "alt_both": fmt(alt_both), "alt_port": fmt(alt_port)}}
    # Mapping (RFC 5780 §4.3): one socket, three destinations.
    with make_socket(fam, bind) as s:
        out["local"] = fmt(s.getsockname())
        r1 = request(s, primary, timeout=args.timeout, tries=args.tries)
        if not r1 or "mapped" not in r1:
            out.update(error="no answer from the primary server (UDP blocked?)", reply=r1)
            return out
        r2 = request(s, alt_addr, timeout=args.timeout, tries=args.tries)
        r3 = request(s, alt_both, timeout=args.timeout, tries=args.tries)
        if not r2 or not r3:
            out.update(error="no answer from the alternate address")
            return out
        out["mapped"] = {"primary": r1["mapped"], "alt_addr": r2["mapped"],
                         "alt_both": r3["mapped"]}
        out["nat"] = r1["mapped"].rpartition(":")[0] != local_address(primary)
        if r2["mapped"] == r1["mapped"]:
            out["mapping"] = "endpoint-independent"
        elif r3["mapped"] == r2["mapped"]:
            out["mapping"] = "address-dependent"
        else:
            out["mapping"] = "address-and-port-dependent"
    # Filtering (RFC 5780 §4.4): fresh sockets that contacted only the primary server.
    with make_socket(fam, bind) as s:
        request(s, primary, timeout=args.timeout, tries=args.tries)
        from_other = request(s, primary, via=alt_both, timeout=args.timeout, tries=args.tries)
    with make_socket(fam, bind) as s:
        request(s, primary, timeout=args.timeout, tries=args.tries)
        from_port = request(s, primary, via=alt_port, timeout=args.timeout, tries=args.tries)
    out["filter_tests"] = {"other_address_and_port": bool(from_other and "mapped" in from_other),
                           "same_address_other_port": bool(from_port and "mapped" in from_port)}
    if out["filter_tests"]["other_address_and_port"]:
        out["filtering"] = "endpoint-independent"
    elif out["filter_tests"]["same_address_other_port"]:
        out["filtering"] = "address-dependent"
    else:
        out["filtering"] = "address-and-port-dependent"
    return out


def one_request(args):
    bind = parse_bind(args.bind)
    with make_socket(family_of(args.server[0]), bind) as s:
        out = {"local": fmt(s.getsockname())}
        r = request(s, args.server, via=args.via, timeout=args.timeout, tries=args.tries)
        out["ok"] = bool(r and "mapped" in r)
        if r:
            out.update({k: v for k, v in r.items() if k != "id"})
        return out


# ---- ping ------------------------------------------------------------------------------------

PING = struct.Struct("!cIq")


def ping(args):
    fam = family_of(args.target[0])
    s = make_socket(fam, parse_bind(args.bind))
    s.setblocking(False)
    interval = args.interval_ms / 1000.0
    pad = b"\0" * max(0, args.size - PING.size)
    sent_at = {}
    rtts = {}
    send_errors = {}
    start = time.monotonic()
    next_send = start
    seq = 0
    end_send = None
    while True:
        now = time.monotonic()
        if seq < args.count and now >= next_send:
            try:
                s.sendto(PING.pack(b"P", seq, time.monotonic_ns()) + pad, args.target)
                sent_at[seq] = now
            except OSError as e:
                send_errors[e.strerror] = send_errors.get(e.strerror, 0) + 1
                sent_at[seq] = now
                rtts[seq] = None
            seq += 1
            next_send = start + seq * interval
            if seq == args.count:
                end_send = now
        if end_send is not None and now >= end_send + args.wait_ms / 1000.0:
            break
        if seq < args.count:
            timeout = next_send - now
        else:
            timeout = end_send + args.wait_ms / 1000.0 - now
        r, _, _ = select.select([s], [], [], max(0.0, timeout))
        if r:
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if len(data) >= PING.size and data[:1] == b"P":
                    _, n, t0 = PING.unpack_from(data)
                    if n in sent_at and n not in rtts:
                        rtts[n] = (time.monotonic_ns() - t0) / 1e6
    s.close()
    got = [v for v in rtts.values() if v is not None]
    out = {"target": fmt(args.target), "sent": seq, "received": len(got),
           "loss": round(1 - len(got) / seq, 5) if seq else None, "send_errors": send_errors}
    if got:
        q = sorted(got)
        out["rtt_ms"] = {"min": round(q[0], 3), "p50": round(statistics.median(q), 3),
                         "mean": round(statistics.fmean(q), 3),
                         "p95": round(q[min(len(q) - 1, int(0.95 * len(q)))], 3),
                         "max": round(q[-1], 3),
                         "stdev": round(statistics.pstdev(q), 3)}
    if args.timeline:
        out["timeline"] = [[round(sent_at[n] - start, 4), rtts.get(n)] for n in range(seq)]
    return out


# ---- peer to peer ------------------------------------------------------------------------------

def p2p(args):
    s = make_socket(family_of(args.bind[0]), args.bind)
    s.setblocking(False)
    interval = args.interval_ms / 1000.0
    if args.barrier:
        # Both sides of a pair bind first, then meet at a barrier (files in a shared directory:
        # one machine, one file system) and start sending at the same wall-clock instant
        # derived from it, so no packet arrives before the other's socket exists, however slow
        # the machine is to start the two processes.
        mine = os.path.join(args.barrier, f"{os.getpid()}.bound")
        with open(mine, "w"):
            pass
        deadline = time.monotonic() + 30
        while True:
            ready = [e for e in os.listdir(args.barrier) if e.endswith(".bound")]
            if len(ready) >= args.parties:
                break
            if time.monotonic() > deadline:
                return {"error": f"barrier: {len(ready)} of {args.parties} parties after 30 s"}
            time.sleep(0.005)
        met = max(os.stat(os.path.join(args.barrier, e)).st_mtime for e in ready)
        time.sleep(max(0.0, met + 0.05 + args.delay_s - time.time()))
    elif args.start_at:
        # Both sides of a pair bind first, then start sending at the same wall-clock instant
        # (one machine, one clock): no packet arrives before the other's socket exists.
        time.sleep(max(0.0, args.start_at - time.time()))
    start = time.monotonic()
    stop = start + args.count * interval + args.linger_ms / 1000.0
    sent, errors, received, sources, first = 0, {}, 0, {}, None
    while True:
        now = time.monotonic()
        if now >= stop:
            break
        if sent < args.count and now >= start + sent * interval:
            try:
                s.sendto(b"D" + struct.pack("!I", sent), args.peer)
            except OSError as e:
                errors[e.strerror] = errors.get(e.strerror, 0) + 1
            sent += 1
        wake = start + sent * interval if sent < args.count else stop
        r, _, _ = select.select([s], [], [], max(0.0, min(wake, stop) - now))
        if r:
            while True:
                try:
                    data, addr = s.recvfrom(65535)
                except (BlockingIOError, OSError):
                    break
                received += 1
                sources[fmt(addr)] = sources.get(fmt(addr), 0) + 1
                if first is None:
                    first = round(time.monotonic() - start, 4)
    s.close()
    return {"local": fmt(args.bind), "peer": fmt(args.peer), "sent": sent, "received": received,
            "from": sources, "first_received_s": first, "send_errors": errors}


# ---- STUN --------------------------------------------------------------------------------------

MAGIC = 0x2112A442


def stun(args):
    fam = family_of(args.server[0])
    bind = parse_bind(args.bind)
    txid = os.urandom(12)
    req = struct.pack("!HHI", 0x0001, 0, MAGIC) + txid
    with make_socket(fam, bind) as s:
        for _ in range(args.tries):
            s.sendto(req, args.server)
            r, _, _ = select.select([s], [], [], args.timeout)
            if not r:
                continue
            data = s.recv(2048)
            if len(data) < 20 or data[8:20] != txid:
                continue
            pos = 20
            while pos + 4 <= len(data):
                atype, alen = struct.unpack_from("!HH", data, pos)
                value = data[pos + 4:pos + 4 + alen]
                if atype == 0x0020 and len(value) >= 8:  # XOR-MAPPED-ADDRESS (RFC 8489 §14.2)
                    port = struct.unpack_from("!H", value, 2)[0] ^ (MAGIC >> 16)
                    if value[1] == 1:
                        ip = socket.inet_ntop(socket.AF_INET, bytes(
                            a ^ b for a, b in zip(value[4:8], struct.pack("!I", MAGIC))))
                    else:
                        key = struct.pack("!I", MAGIC) + txid
                        ip = socket.inet_ntop(socket.AF_INET6, bytes(
                            a ^ b for a, b in zip(value[4:20], key)))
                    return {"ok": True, "mapped": fmt((ip, port)), "local": fmt(s.getsockname())}
                pos += 4 + ((alen + 3) & ~3)
        return {"ok": False, "error": "no STUN answer"}


def _xor_address(value, txid):
    port = struct.unpack_from("!H", value, 2)[0] ^ (MAGIC >> 16)
    if value[1] == 1:
        ip = socket.inet_ntop(socket.AF_INET, bytes(
            a ^ b for a, b in zip(value[4:8], struct.pack("!I", MAGIC))))
    else:
        key = struct.pack("!I", MAGIC) + txid
        ip = socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(value[4:20], key)))
    return fmt((ip, port))


def _stun_attributes(data):
    out, pos = {}, 20
    while pos + 4 <= len(data):
        atype, alen = struct.unpack_from("!HH", data, pos)
        out.setdefault(atype, data[pos + 4:pos + 4 + alen])
        pos += 4 + ((alen + 3) & ~3)
    return out


def _stun_message(kind, txid, attributes, key=None):
    body = b""
    for atype, value in attributes:
        body += struct.pack("!HH", atype, len(value)) + value + b"\0" * (-len(value) % 4)
    if key is not None:  # MESSAGE-INTEGRITY (RFC 8489 §14.5): length counts the attribute
        head = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + txid
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += struct.pack("!HH", 0x0008, 20) + mac
    return struct.pack("!HHI", kind, len(body), MAGIC) + txid + body


def turn(args):
    """One Allocate: unauthenticated first (401 gives realm and nonce), then with long-term
    credentials (key = MD5(username:realm:password)) and the RESERVATION-TOKEN if any."""
    fam = family_of(args.server[0])
    transport = [(0x0019, bytes([17, 0, 0, 0]))]                # REQUESTED-TRANSPORT: UDP
    if args.token:
        transport.append((0x0022, bytes.fromhex(args.token)))   # RESERVATION-TOKEN
    with make_socket(fam, parse_bind(args.bind)) as s:
        def transact(attributes, key=None):
            txid = os.urandom(12)
            message = _stun_message(0x0003, txid, attributes, key)
            for _ in range(args.tries):
                s.sendto(message, args.server)
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
                    if not r:
                        break
                    data = s.recv(4096)
                    if len(data) >= 20 and data[8:20] == txid:
                        return struct.unpack_from("!H", data)[0], _stun_attributes(data), txid
            return None, {}, txid

        kind, attrs, _ = transact(transport)
        if kind is None:
            return {"ok": False, "error": "no TURN answer"}
        if kind == 0x0113 and 0x0014 in attrs and 0x0015 in attrs:
            realm, nonce = attrs[0x0014], attrs[0x0015]
            key = hashlib.md5(args.username.encode() + b":" + realm + b":"
                              + args.password.encode()).digest()
            kind, attrs, txid = transact(transport + [(0x0006, args.username.encode()),
                                                      (0x0014, realm), (0x0015, nonce)], key)
        if kind == 0x0103 and 0x0016 in attrs:
            out = {"ok": True, "relayed": _xor_address(attrs[0x0016], txid),
                   "local": fmt(s.getsockname())}
            if 0x0020 in attrs:
                out["mapped"] = _xor_address(attrs[0x0020], txid)
            return out
        if 0x0009 in attrs and len(attrs[0x0009]) >= 4:
            code = (attrs[0x0009][2] & 7) * 100 + attrs[0x0009][3]
            return {"ok": False, "code": code,
                    "error": attrs[0x0009][4:].decode(errors="replace")}
        return {"ok": False, "error": f"unexpected answer type {kind}"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("endpoints", nargs="+", type=parse_endpoint)
    c = sub.add_parser("classify")
    for name in ("--server", "--alt-addr", "--alt-both", "--alt-port"):
        c.add_argument(name, type=parse_endpoint, required=True)
    c.add_argument("--bind")
    c.add_argument("--timeout", type=float, default=0.4)
    c.add_argument("--tries", type=int, default=3)
    r = sub.add_parser("request")
    r.add_argument("--server", type=parse_endpoint, required=True)
    r.add_argument("--via", type=parse_endpoint)
    r.add_argument("--bind")
    r.add_argument("--timeout", type=float, default=0.4)
    r.add_argument("--tries", type=int, default=3)
    g = sub.add_parser("ping")
    g.add_argument("--target", type=parse_endpoint, required=True)
    g.add_argument("--bind")
    g.add_argument("--count", type=int, default=100)
    g.add_argument("--interval-ms", type=float, default=10)
    g.add_argument("--size", type=int, default=64)
    g.add_argument("--wait-ms", type=float, default=500)
    g.add_argument("--timeline", action="store_true")
    q = sub.add_parser("p2p")
    q.add_argument("--bind", type=parse_endpoint, required=True)
    q.add_argument("--peer", type=parse_endpoint, required=True)
    q.add_argument("--count", type=int, default=50)
    q.add_argument("--interval-ms", type=float, default=20)
    q.add_argument("--linger-ms", type=float, default=300)
    q.add_argument("--start-at", type=float, help="wall-clock time (time.time()) to start at")
    q.add_argument("--barrier", help="directory shared by the parties: start together once "
                                     "every party has bound (50 ms after the last one)")
    q.add_argument("--parties", type=int, default=2)
    q.add_argument("--delay-s", type=float, default=0.0, help="start this late after the barrier")
    t = sub.add_parser("stun")
    t.add_argument("--server", type=parse_endpoint, required=True)
    t.add_argument("--bind")
    t.add_argument("--timeout", type=float, default=0.5)
    t.add_argument("--tries", type=int, default=3)
    u = sub.add_parser("turn")
    u.add_argument("--server", type=parse_endpoint, required=True)
    u.add_argument("--username", required=True)
    u.add_argument("--password", required=True)
    u.add_argument("--token", help="RESERVATION-TOKEN, 16 hex digits")
    u.add_argument("--bind")
    u.add_argument("--timeout", type=float, default=0.5)
    u.add_argument("--tries", type=int, default=3)
    args = p.parse_args()
    if args.mode == "serve":
        serve(args.endpoints)
        return
    result = {"classify": classify, "request": one_request, "ping": ping, "p2p": p2p,
              "stun": stun, "turn": turn}[args.mode](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
