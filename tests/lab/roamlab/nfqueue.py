"""A minimal NFQUEUE client over a raw netlink socket (stdlib only).

Used by the NAT daemon (natd.py), which must decide about the first packet of each new UDP
flow *before* the kernel forwards it. Only what that needs: bind a queue, receive packet
headers plus the first bytes of the packet, send ACCEPT/DROP verdicts. The message layout is
linux/netfilter/nfnetlink_queue.h; the impairment tool (impair/, C++) uses
libnetfilter_queue instead because it holds thousands of packets at a time.
"""

import os
import socket
import struct

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NF_DROP = 0
NF_ACCEPT = 1
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def _attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


class NfQueue:
    """One bound queue. `receive()` yields (packet_id, packet_bytes) for every queued packet."""

    def __init__(self, queue_num, family=socket.AF_INET, copy_bytes=128, maxlen=4096):
        self.queue_num = queue_num
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.seq = 0
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, family)))
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_bytes, NFQNL_COPY_PACKET))
                     + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)))

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()

    def _message(self, msg_type, body, flags=NLM_F_REQUEST, family=socket.AF_UNSPEC):
        self.seq += 1
        nfgen = struct.pack("!BBH", family, 0, self.queue_num)
        payload = nfgen + body
        header = struct.pack("=IHHII", 16 + len(payload), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                             flags, self.seq, 0)
        return header + payload

    def _config(self, attrs):
        self.sock.send(self._message(NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK))
        data = self.sock.recv(65536)
        length, kind = struct.unpack_from("=IH", data)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, 16)
            if error != 0:
                raise OSError(-error, f"NFQUEUE config for queue {self.queue_num}: "
                                      f"{os.strerror(-error)}")

    def receive(self):
        """Reads one batch of netlink messages; returns [(packet_id, packet_bytes), ...]."""
        data = self.sock.recv(1 << 17)
        packets = []
        offset = 0
        while offset + 16 <= len(data):
            length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                packet_id, payload = None, b""
                pos = offset + 16 + 4  # netlink header + nfgenmsg
                end = offset + length
                while pos + 4 <= end:
                    alen, atype = struct.unpack_from("=HH", data, pos)
                    if alen < 4:
                        break
                    atype &= 0x3FFF
                    value = data[pos + 4:pos + alen]
                    if atype == NFQA_PACKET_HDR:
                        packet_id = struct.unpack_from("!I", value)[0]
                    elif atype == NFQA_PAYLOAD:
                        payload = value
                    pos += (alen + 3) & ~3
                if packet_id is not None:
                    packets.append((packet_id, payload))
            offset += (length + 3) & ~3
        return packets

    def verdict(self, packet_id, verdict=NF_ACCEPT):
        body = _attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        self.sock.send(self._message(NFQNL_MSG_VERDICT, body))


def udp_endpoints(packet):
    """(src_ip, src_port, dst_ip, dst_port) of an IPv4 UDP packet, or None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 17:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return None
    src = socket.inet_ntoa(packet[12:16])
    dst = socket.inet_ntoa(packet[16:20])
    sport, dport = struct.unpack_from("!HH", packet, ihl)
    return src, sport, dst, dport
