"""ICMP echo request/reply encoding and decoding (IPv4 and IPv6), no dependencies.

Every target of one packet wave shares one sequence number, so a wave encodes ONE packet and
sends the same bytes to every address; replies are matched by (source address, sequence).
"""

from __future__ import annotations

import struct

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
PAYLOAD = b"wardops\x00"
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, identifier: int, sequence: int, payload: bytes = PAYLOAD) -> bytes:
    """An echo request. The IPv6 checksum covers a pseudo-header: the kernel fills it in."""
    kind = ECHO_REQUEST[version]
    body = _HEADER.pack(kind, 0, 0, identifier & 0xFFFF, sequence & 0xFFFF) + payload
    if version == 6:
        return body
    return _HEADER.pack(kind, 0, checksum(body), identifier & 0xFFFF, sequence & 0xFFFF) + payload


def parse_echo_reply(version: int, data: bytes, has_ip_header: bool) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply, or None for anything else (or a truncated packet).

    Raw IPv4 sockets deliver the IP header first; IPv6 and unprivileged sockets do not.
    """
    offset = (data[0] & 0x0F) * 4 if has_ip_header and data else 0
    if len(data) < offset + 8:
        return None
    kind, code, _, identifier, sequence = _HEADER.unpack_from(data, offset)
    if kind != ECHO_REPLY[version] or code != 0:
        return None
    return identifier, sequence
