#!/usr/bin/env python3
"""dns_a.py NAME SERVER — the IPv4 address SERVER (a DNS server on port 53,
e.g. the cluster's CoreDNS) answers for NAME, or NXDOMAIN; stdlib only.

test-k8s.sh asks CoreDNS directly, not through the host's resolver, which
knows nothing of the cluster's names.  One A query over UDP, 3 s timeout;
the answer's last four bytes are the address (one A record).
"""
import socket
import struct
import sys


def main(name, server):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1), (server, 53))
    r = s.recv(512)
    print(socket.inet_ntoa(r[-4:]) if struct.unpack(">H", r[6:8])[0] else "NXDOMAIN")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
