"""A minimal TURN client (RFC 8656 Allocate over UDP, long-term credentials) that proves a
relay grant from roam-signaling is real: its RESERVATION-TOKEN redeems at coturn, with the
grant's REST credentials, to exactly the advertised relayed address.

Independent of the C++ codec on purpose: a test that used our own encoder to check our own
server would share its bugs."""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

MAGIC_COOKIE = 0x2112A442  # RFC 8489 §5

# Methods and classes (RFC 8489 §5, RFC 8656 §17).
ALLOCATE = 0x0003
REFRESH = 0x0004
SUCCESS = 0x0100
ERROR = 0x0110

# Attributes (RFC 8489 §18.3, RFC 8656 §18).
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
LIFETIME = 0x000D
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
RESERVATION_TOKEN = 0x0022

UDP_PROTOCOL = 17  # REQUESTED-TRANSPORT value (RFC 8656 §18.6)


class TurnError(Exception):
    """A TURN error response; `code` is the numeric STUN error (e.g. 404, 438)."""

    def __init__(self, code, reason):
        super().__init__(f"TURN error {code} {reason}")
        self.code, self.reason = code, reason


def rest_credentials(secret, peer, ttl=600):
    """TURN REST credentials as coturn's --use-auth-secret checks them: username
    "expiry:peer", password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + ttl}:{peer}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def _attribute(kind, value):
    padding = b"\0" * (-len(value) % 4)
    return struct.pack("!HH", kind, len(value)) + value + padding


def _message(method, transaction, attributes, key=None):
    """Encodes a request; with `key`, appends MESSAGE-INTEGRITY (RFC 8489 §14.5: the HMAC
    covers the header with a length that already counts the integrity attribute)."""
    body = b"".join(_attribute(k, v) for k, v in attributes)
    if key is None:
        return struct.pack("!HHI", method, len(body), MAGIC_COOKIE) + transaction + body
    header = struct.pack("!HHI", method, len(body) + 24, MAGIC_COOKIE) + transaction
    mac = hmac.new(key, header + body, hashlib.sha1).digest()
    return header + body + _attribute(MESSAGE_INTEGRITY, mac)


def _parse(data):
    """(type, transaction, {attribute: value}) of a STUN message; ValueError if it is not one."""
    if len(data) < 20:
        raise ValueError("short STUN message")
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC_COOKIE or 20 + length > len(data):
        raise ValueError("not a STUN message")
    attributes, pos = {}, 20
    while pos + 4 <= 20 + length:
        akind, alen = struct.unpack("!HH", data[pos:pos + 4])
        attributes.setdefault(akind, data[pos + 4:pos + 4 + alen])
        pos += 4 + alen + (-alen % 4)
    return kind, data[8:20], attributes


def _xor_address(value, transaction):
    """ip:port of an XOR-*-ADDRESS (RFC 8489 §14.2)."""
    family, xport = value[1], struct.unpack("!H", value[2:4])[0]
    port = xport ^ (MAGIC_COOKIE >> 16)
    if family == 0x01:
        raw = struct.unpack("!I", value[4:8])[0] ^ MAGIC_COOKIE
        return f"{socket.inet_ntoa(struct.pack('!I', raw))}:{port}"
    mask = struct.pack("!I", MAGIC_COOKIE) + transaction
    raw = bytes(a ^ b for a, b in zip(value[4:20], mask))
    return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{port}"


def _error(attributes):
    value = attributes.get(ERROR_CODE, b"\0\0\0\0")
    return TurnError((value[2] & 0x7) * 100 + value[3], value[4:].decode(errors="replace"))


class TurnClient:
    """One UDP socket = one TURN 5-tuple. allocate() does the cold 2-round-trip dance
    (401 with REALM/NONCE, then the authenticated request) and returns the relayed address."""

    def __init__(self, server, username, password, timeout=2.0):
        host, port = server.rsplit(":", 1)
        self.server = (host, int(port))
        self.username, self.password = username, password
        self.realm = self.nonce = self.key = None
        self.mapped = self.relayed = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        self.close()

    def allocate(self, token=None):
        """Allocate(REQUESTED-TRANSPORT=UDP[, RESERVATION-TOKEN]); returns "ip:port" relayed.
        `token` is the 16-hex-digit text of a grant (or raw 8 bytes)."""
        attributes = [(REQUESTED_TRANSPORT, bytes([UDP_PROTOCOL, 0, 0, 0]))]
        if token is not None:
            raw = bytes.fromhex(token) if isinstance(token, str) else token
            if len(raw) != 8:
                raise ValueError("RESERVATION-TOKEN is 8 bytes")
            attributes.append((RESERVATION_TOKEN, raw))
        response = self._authenticated(ALLOCATE, attributes)
        self.relayed = _xor_address(response[XOR_RELAYED_ADDRESS], self._last_transaction)
        if XOR_MAPPED_ADDRESS in response:
            self.mapped = _xor_address(response[XOR_MAPPED_ADDRESS], self._last_transaction)
        return self.relayed

    def release(self):
        """Refresh(LIFETIME=0) so the test leaves no allocation behind; errors are ignored
        (the allocation may be gone with a stopped coturn)."""
        if self.relayed is None:
            return
        try:
            self._authenticated(REFRESH, [(LIFETIME, struct.pack("!I", 0))])
        except (OSError, TurnError):
            pass
        self.relayed = None

    def _authenticated(self, method, attributes):
        """Sends with credentials, learning REALM/NONCE from a 401 (or a fresh NONCE from a 438
        stale nonce) first; returns the success attributes or raises TurnError."""
        for _ in range(3):
            if self.key is None:
                kind, attrs = self._transact(method, attributes, key=None)
            else:
                auth = [(USERNAME, self.username.encode()), (REALM, self.realm.encode()),
                        (NONCE, self.nonce.encode())]
                kind, attrs = self._transact(method, attributes + auth, key=self.key)
            if kind == method | SUCCESS:
                return attrs
            error = _error(attrs)
            if error.code in (401, 438) and REALM in attrs and NONCE in attrs:
                if error.code == 401 and self.key is not None:
                    raise error  # credentials rejected, not merely missing
                self.realm = attrs[REALM].decode()
                self.nonce = attrs[NONCE].decode()
                secret = f"{self.username}:{self.realm}:{self.password}".encode()
                self.key = hashlib.md5(secret).digest()
                continue
            raise error
        raise TurnError(0, "authentication did not converge")

    def _transact(self, method, attributes, key):
        """One request/response with retransmission (RFC 8489 §6.2.1, shortened for loopback)."""
        transaction = os.urandom(12)
        self._last_transaction = transaction
        request = _message(method, transaction, attributes, key)
        for attempt in range(4):
            self.sock.sendto(request, self.server)
            deadline = time.monotonic() + 0.25 * (2 ** attempt)
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data, _ = self.sock.recvfrom(4096)
                except socket.timeout:
                    break
                try:
                    kind, got, attrs = _parse(data)
                except ValueError:
                    continue
                if got == transaction:
                    return kind, attrs
        raise TimeoutError(f"no TURN answer from {self.server[0]}:{self.server[1]}")


def redeem(server, username, password, token):
    """Allocates with a reservation token, returns the relayed address and releases the
    allocation again (a test must not hold coturn ports beyond its own lifetime).
    A 437 means the kernel handed out a local port whose 5-tuple coturn still remembers from an
    allocation released a moment ago (coturn answers 437 on that 5-tuple for about a second):
    rebind and retry. Had the 437 used the token up, the retry would fail with 404 and say so."""
    for attempt in range(3):
        try:
            with TurnClient(server, username, password) as client:
                return client.allocate(token)
        except TurnError as e:
            if e.code != 437 or attempt == 2:
                raise
