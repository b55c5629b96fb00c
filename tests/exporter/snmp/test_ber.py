"""The BER codec against pyasn1/pysnmp's own encoder and decoder (independent implementation)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902

from exporter.snmp import ber

P = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12).map(lambda t: (1, 3, *t))


@given(oids)
def test_oid_encoding_matches_pyasn1(arcs):
    want = encoder.encode(rfc1902.ObjectName(arcs))
    body = want[2:] if want[1] < 0x80 else want[2 + (want[1] & 0x7F):]
    assert ber.oid_bytes(arcs) == body
    assert ber.oid_arcs(ber.oid_bytes(arcs)) == arcs


def test_getbulk_request_decodes_with_pyasn1():
    cols = [ber.oid_bytes("1.3.6.1.2.1.31.1.1.1.6"), ber.oid_bytes("1.3.6.1.2.1.2.2.1.8")]
    msg = ber.encode_request(1, b"s3cret", ber.GETBULK, 2**31 - 1, [ber.oid_bytes("1.3.6.1.2.1.1.3")] + cols, 1, 40)
    m, rest = decoder.decode(msg, asn1Spec=P.Message())
    assert rest == b""
    pdu = P.apiMessage.get_pdu(m)
    assert int(P.apiBulkPDU.get_request_id(pdu)) == 2**31 - 1
    assert int(P.apiBulkPDU.get_non_repeaters(pdu)) == 1
    assert int(P.apiBulkPDU.get_max_repetitions(pdu)) == 40
    names = [tuple(n) for n, _ in P.apiBulkPDU.get_varbinds(pdu)]
    assert names == [(1, 3, 6, 1, 2, 1, 1, 3), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6), (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)]
    assert bytes(P.apiMessage.get_community(m)) == b"s3cret"


def _response(varbinds, request_id=7, status=0, index=0):
    pdu = P.GetResponsePDU()
    P.apiPDU.set_defaults(pdu)
    P.apiPDU.set_request_id(pdu, request_id)
    P.apiPDU.set_error_status(pdu, status)
    P.apiPDU.set_error_index(pdu, index)
    P.apiPDU.set_varbinds(pdu, varbinds)
    msg = P.Message()
    P.apiMessage.set_defaults(msg)
    P.apiMessage.set_community(msg, "public")
    P.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def test_response_values_decode_like_pyasn1():
    vbs = [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(4294967295)),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), rfc1902.Counter64(2**64 - 1)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 14, 1), rfc1902.Counter32(2**32 - 1)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1), rfc1902.Integer32(-5)),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18, 1), rfc1902.OctetString(b"x" * 300)),  # long form length
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15, 1), rfc1902.Gauge32(10000)),
        ((1, 3, 6, 1, 2, 1, 99), rfc1902.IpAddress("192.0.2.9")),
    ]
    data = _response(vbs, request_id=123456)
    assert ber.peek_request_id(data) == (b"public", 123456)
    r = ber.decode_response(data)
    assert r.request_id == 123456 and r.error_status == 0
    assert [ber.oid_arcs(o) for o, _, _ in r.varbinds] == [v[0] for v in vbs]
    assert [v for _, _, v in r.varbinds] == [2**32 - 1, 2**64 - 1, 2**32 - 1, -5, b"x" * 300, 10000,
                                            bytes([192, 0, 2, 9])]
    assert [t for _, t, _ in r.varbinds] == [ber.T_TIMETICKS, ber.T_COUNTER64, ber.T_COUNTER32, ber.T_INTEGER,
                                            ber.T_OCTETS, ber.T_GAUGE32, ber.T_IPADDR]


def test_end_of_mib_and_errors():
    data = _response([((1, 3, 6, 1), rfc1902.Integer32(1))], status=5, index=1)
    r = ber.decode_response(data)
    assert (r.error_status, r.error_index) == (5, 1)


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x03\x02\x01\x01", b"\x04\x00",
                                  bytes.fromhex("3011020101040170a209020101020100020100")])
def test_malformed_raises_bererror(data):
    with pytest.raises(ber.BerError):
        ber.decode_response(data)
