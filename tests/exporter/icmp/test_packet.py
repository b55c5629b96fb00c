import struct

from exporter.icmp.packet import checksum, echo_request, parse_echo_reply


def test_checksum_rfc1071_example():
    # RFC 1071 section 3 example words 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert checksum(b"\x01") == checksum(b"\x01\x00")  # odd length is zero-padded


def test_ipv4_request_has_valid_checksum_and_fields():
    pkt = echo_request(4, 0xBEEF, 513, b"abc")
    kind, code, _, ident, seq = struct.unpack_from("!BBHHH", pkt)
    assert (kind, code, ident, seq) == (8, 0, 0xBEEF, 513)
    assert checksum(pkt) == 0  # a packet including its checksum sums to zero
    assert pkt.endswith(b"abc")


def test_ipv6_request_leaves_checksum_to_kernel():
    pkt = echo_request(6, 7, 9)
    assert struct.unpack_from("!BBHHH", pkt) == (128, 0, 0, 7, 9)


def _reply(version, ident, seq, kind=None):
    body = struct.pack("!BBHHH", kind if kind is not None else (0 if version == 4 else 129), 0, 0, ident, seq)
    return body + b"wardops\x00"


def test_parse_reply_without_and_with_ip_header():
    assert parse_echo_reply(4, _reply(4, 5, 6), has_ip_header=False) == (5, 6)
    ip_header = bytes([0x46]) + bytes(23)  # IHL 6 -> 24 bytes of header (with options)
    assert parse_echo_reply(4, ip_header + _reply(4, 5, 6), has_ip_header=True) == (5, 6)
    assert parse_echo_reply(6, _reply(6, 1, 65535), has_ip_header=False) == (1, 65535)


def test_parse_rejects_requests_other_types_and_truncation():
    assert parse_echo_reply(4, _reply(4, 1, 1, kind=8), False) is None  # our own request echoed
    assert parse_echo_reply(4, _reply(4, 1, 1, kind=3), False) is None  # unreachable
    assert parse_echo_reply(6, _reply(6, 1, 1, kind=0), False) is None  # v4 type on v6
    assert parse_echo_reply(4, b"\x00\x00\x00", False) is None
    assert parse_echo_reply(4, bytes([0x45]) + bytes(10), True) is None
    assert parse_echo_reply(4, b"", True) is None


def test_sequence_and_identifier_wrap_to_16_bits():
    assert struct.unpack_from("!HH", echo_request(4, 0x1FFFF, 0x10001), 4) == (0xFFFF, 1)
