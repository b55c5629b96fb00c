"""Opening ICMP sockets: unprivileged (SOCK_DGRAM) or raw, one per address family.

Why both: raw sockets need root or CAP_NET_RAW and receive a copy of EVERY echo reply on the host
(another pinger's replies cost us CPU, filtered by identifier); unprivileged ping sockets need
net.ipv4.ping_group_range to include our group (the sysctl is per network namespace) and the kernel
delivers only our own replies, but it rewrites the identifier to the socket's "port".
`auto` tries unprivileged first (cheaper and isolated, see docs/icmp.md), then raw.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from dataclasses import dataclass

MODES = ("auto", "unprivileged", "raw")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SOL_RAW = 255
ICMP_FILTER = 1  # Linux raw IPv4: bitmask of ICMP types to DROP (types 0-31)
ICMP6_FILTER = 1  # Linux raw IPv6: 256-bit mask of ICMPv6 types to block


class IcmpSocketError(Exception):
    pass


@dataclass(slots=True)
class IcmpSocket:
    sock: socket.socket
    version: int
    raw: bool
    identifier: int  # what we put in requests; a raw socket also filters replies by it
    receive_buffer: int  # bytes the kernel actually granted

    @property
    def has_ip_header(self) -> bool:
        return self.raw and self.version == 4

    @property
    def mode(self) -> str:
        return "raw" if self.raw else "unprivileged"

    def close(self) -> None:
        self.sock.close()


def random_identifier() -> int:
    """Random per process start: reused fixed IDs confuse NAT and firewalls (blackbox issue threads)."""
    return random.SystemRandom().randrange(1, 0xFFFF)


def ping_group_range() -> str:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", encoding="ascii") as fh:
            return " ".join(fh.read().split())
    except OSError:
        return "unknown"


def open_icmp_socket(version: int, mode: str = "auto", source: str | None = None,
                     receive_buffer: int = 8 << 20, identifier: int | None = None) -> IcmpSocket:
    """A non-blocking ICMP socket for IPv4 or IPv6; IcmpSocketError says what is missing."""
    if mode not in MODES:
        raise IcmpSocketError(f"unknown ICMP socket mode {mode!r} (one of {', '.join(MODES)})")
    order = {"auto": (False, True), "unprivileged": (False,), "raw": (True,)}[mode]
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
    failures = []
    for raw in order:
        try:
            sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, proto)
        except PermissionError:
            failures.append(raw)
            continue
        except OSError as exc:
            raise IcmpSocketError(f"cannot open an IPv{version} ICMP socket: {exc.strerror}") from None
        try:
            return _setup(sock, version, raw, source, receive_buffer,
                          identifier if identifier is not None else random_identifier())
        except OSError as exc:
            sock.close()
            raise IcmpSocketError(f"cannot set up the IPv{version} ICMP socket "
                                  f"(source {source or 'any'}): {exc.strerror or exc}") from None
    needs = []
    if False in failures:
        needs.append(f"unprivileged ICMP needs net.ipv4.ping_group_range (now {ping_group_range()!r} in "
                     f"this network namespace) to include gid {os.getgid()}, e.g. "
                     "`sysctl -w net.ipv4.ping_group_range='0 2147483647'`")
    if True in failures:
        needs.append("raw ICMP sockets need root or CAP_NET_RAW "
                     "(e.g. `setcap cap_net_raw+ep` on the Python binary)")
    raise IcmpSocketError(f"cannot open an IPv{version} ICMP socket ({mode} mode): " + "; ".join(needs))


def _setup(sock: socket.socket, version: int, raw: bool, source: str | None, receive_buffer: int,
           identifier: int) -> IcmpSocket:
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, receive_buffer)  # root: above rmem_max
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # kernel receive time: RTT immune to loop lag
    sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)  # cumulative kernel drop count per datagram
    if raw and version == 4:
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~(1 << 0)))  # echo reply only
    elif raw:
        blocked = [0xFFFFFFFF] * 8
        blocked[129 >> 5] &= ~(1 << (129 & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *blocked))
    if source:
        sock.bind((source, 0))
    elif not raw:
        sock.bind(("0.0.0.0", 0) if version == 4 else ("::", 0))
    if not raw:
        identifier = sock.getsockname()[1]  # the kernel's identifier for this ping socket
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return IcmpSocket(sock, version, raw, identifier, granted)
