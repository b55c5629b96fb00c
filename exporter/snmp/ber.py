"""Minimal BER codec for SNMP v1/v2c GET/GETNEXT/GETBULK and their responses.

Why not pyasn1: decoding a response through pysnmp/pyasn1 costs ~250 µs CPU per varbind (pysnmp 7.1:
0.51 CPU s for a ~2,081-varbind ifTable+ifXTable walk of snmpd; snmp_exporter 0.043 s), an
order of magnitude above the Go snmp_exporter. The poller needs only a handful of message shapes, so
this module encodes requests and decodes responses directly from bytes. OIDs stay in their encoded
form (BER OID encoding is prefix-preserving at arc boundaries), so column membership and row indexes
are byte comparisons, not decoded tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

GET, GETNEXT, RESPONSE, GETBULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8
T_INTEGER, T_OCTETS, T_NULL, T_OID = 0x02, 0x04, 0x05, 0x06
T_IPADDR, T_COUNTER32, T_GAUGE32, T_TIMETICKS, T_OPAQUE, T_COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
EXCEPTIONS = frozenset((NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW))
UNSIGNED = frozenset((T_COUNTER32, T_GAUGE32, T_TIMETICKS, T_COUNTER64))

ERROR_NAMES = {0: "noError", 1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
               6: "noAccess", 16: "authorizationError"}


class BerError(ValueError):
    """A datagram that is not a well-formed SNMP message of the expected shape."""


def oid_bytes(oid: str | tuple[int, ...]) -> bytes:
    """Encoded OID content (no tag/length) of a dotted string or tuple."""
    arcs = tuple(int(x) for x in oid.split(".") if x) if isinstance(oid, str) else tuple(oid)
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"invalid OID {oid!r}")
    out = bytearray(_base128(arcs[0] * 40 + arcs[1]))
    for arc in arcs[2:]:
        out += _base128(arc)
    return bytes(out)


def _base128(n: int) -> bytes:
    if n < 0:
        raise ValueError("negative OID arc")
    if n < 0x80:
        return bytes((n,))
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def oid_arcs(raw: bytes) -> tuple[int, ...]:
    """Decode encoded OID content to a tuple of arcs."""
    arcs: list[int] = []
    n = 0
    for b in raw:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    if not arcs:
        return ()
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])


def oid_text(raw: bytes) -> str:
    return ".".join(map(str, oid_arcs(raw)))


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len(len(body)) + body


def _int(n: int) -> bytes:
    return _tlv(T_INTEGER, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def encode_request(version: int, community: bytes, pdu_type: int, request_id: int,
                   oids: list[bytes], non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """version: 0 for v1, 1 for v2c. oids: encoded OID contents; values are NULL."""
    varbinds = b"".join(_tlv(0x30, _tlv(T_OID, o) + b"\x05\x00") for o in oids)
    pdu = _tlv(pdu_type, _int(request_id) + _int(non_repeaters) + _int(max_repetitions)
               + _tlv(0x30, varbinds))
    return _tlv(0x30, _int(version) + _tlv(T_OCTETS, community) + pdu)


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    error_status: int
    error_index: int
    # (encoded OID content, value tag, decoded value): int for numeric tags, bytes for strings/others
    varbinds: list[tuple[bytes, int, int | bytes | None]]


def _read_len(data: bytes, i: int) -> tuple[int, int]:
    n = data[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    if k == 0 or k > 4:
        raise BerError("unsupported BER length")
    return int.from_bytes(data[i + 1:i + 1 + k], "big"), i + 1 + k


def peek_request_id(data: bytes) -> tuple[bytes, int]:
    """(community, request-id) of a v1/v2c message, for matching before a full decode."""
    try:
        if data[0] != 0x30:
            raise BerError("not a SEQUENCE")
        _, i = _read_len(data, 1)
        if data[i] != T_INTEGER:
            raise BerError("no version")
        n, i = _read_len(data, i + 1)
        i += n
        if data[i] != T_OCTETS:
            raise BerError("no community")
        n, i = _read_len(data, i + 1)
        community = data[i:i + n]
        i += n
        _, i = _read_len(data, i + 1)  # PDU tag + length
        if data[i] != T_INTEGER:
            raise BerError("no request-id")
        n, i = _read_len(data, i + 1)
        return community, int.from_bytes(data[i:i + n], "big", signed=True)
    except IndexError:
        raise BerError("truncated message") from None


def decode_response(data: bytes) -> Response:
    """Decode a v1/v2c Response-PDU. Raises BerError on anything malformed."""
    try:
        return _decode(data)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, BerError):
            raise
        raise BerError(f"malformed message: {exc.__class__.__name__}") from None


def _decode(data: bytes) -> Response:
    from_bytes = int.from_bytes
    if data[0] != 0x30:
        raise BerError("not a SEQUENCE")
    _, i = _read_len(data, 1)
    n, i = _read_len(data, i + 1)  # version
    i += n
    n, i = _read_len(data, i + 1)  # community
    i += n
    if data[i] != RESPONSE:
        raise BerError(f"unexpected PDU type 0x{data[i]:02x}")
    _, i = _read_len(data, i + 1)
    ints = []
    for _ in range(3):
        if data[i] != T_INTEGER:
            raise BerError("bad PDU header")
        n, i = _read_len(data, i + 1)
        ints.append(from_bytes(data[i:i + n], "big", signed=True))
        i += n
    if data[i] != 0x30:
        raise BerError("no varbind list")
    total, i = _read_len(data, i + 1)
    end = i + total
    if end > len(data):
        raise BerError("truncated varbind list")
    out = []
    append = out.append
    while i < end:
        # varbind SEQUENCE; lengths < 128 are the common case, so test inline before the general path
        n = data[i + 1]
        i = i + 2 if n < 0x80 else _read_len(data, i + 1)[1]
        if data[i] != T_OID:
            raise BerError("varbind without OID")
        n = data[i + 1]
        if n < 0x80:
            i += 2
        else:
            n, i = _read_len(data, i + 1)
        oid = data[i:i + n]
        i += n
        tag = data[i]
        n = data[i + 1]
        if n < 0x80:
            i += 2
        else:
            n, i = _read_len(data, i + 1)
        raw = data[i:i + n]
        i += n
        if tag in UNSIGNED:
            value: int | bytes | None = from_bytes(raw, "big")
        elif tag == T_INTEGER:
            value = from_bytes(raw, "big", signed=True)
        elif tag == T_NULL or tag in EXCEPTIONS:
            value = None
        else:
            value = bytes(raw)
        append((oid, tag, value))
    if i != end:
        raise BerError("varbind list length mismatch")
    return Response(ints[0], ints[1], ints[2], out)
