"""The column walk against a fake agent (no sockets): truncation, tooBig, end of subtree, bad agents."""

import asyncio

import pytest

from exporter.snmp import ber
from exporter.snmp.oids import SCALARS, Column
from exporter.snmp.walker import SnmpError, walk

A = Column("a", (1, 3, 6, 1, 2, 1, 2, 2, 1, 7))
B = Column("b", (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6))


class FakeAgent:
    """A sorted MIB answering GETBULK like an agent, optionally capping varbinds per response."""

    def __init__(self, mib: dict[tuple, int], cap: int = 10_000, too_big_above: int = 10_000):
        self.mib = sorted(mib.items())
        self.cap = cap
        self.too_big_above = too_big_above
        self.calls = []

    def next(self, oid):
        for k, v in self.mib:
            if k > oid:
                return ber.oid_bytes(k), ber.T_COUNTER64, v
        return ber.oid_bytes(oid), ber.END_OF_MIB_VIEW, None

    async def __call__(self, nr, reps, max_rep):
        self.calls.append((len(nr), len(reps), max_rep))
        if max_rep * len(reps) > self.too_big_above:
            return 1, 0, []
        out = [self.next(ber.oid_arcs(o)) for o in nr]
        cursors = [ber.oid_arcs(o) for o in reps]
        for _ in range(max_rep):
            for j, cur in enumerate(cursors):
                oid, tag, v = self.next(cur)
                out.append((oid, tag, v))
                cursors[j] = ber.oid_arcs(oid)
        return 0, 0, out[: self.cap]


def mib(rows=24):
    m = {(1, 3, 6, 1, 2, 1, 1, 3, 0): 777, (1, 3, 6, 1, 2, 1, 1, 5, 0): 1, (1, 3, 6, 1, 2, 1, 2, 1, 0): rows}
    for i in range(1, rows + 1):
        m[A.oid + (i,)] = i
        m[B.oid + (i,)] = 1000 + i
    m[(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 7, 1)] = 5  # the column after B
    return m


def run(agent, max_rep=25, scalars=SCALARS):
    return asyncio.run(walk(agent, scalars, [A, B], max_rep))


def test_one_request_when_rows_fit():
    agent = FakeAgent(mib(24))
    r = run(agent)
    assert r.requests == 1 and agent.calls == [(3, 2, 25)]
    assert r.scalars["sysUpTime"] == 777
    assert r.columns["a"] == {bytes([i]): i for i in range(1, 25)}
    assert r.columns["b"][bytes([24])] == 1024


def test_truncated_responses_continue_per_column():
    agent = FakeAgent(mib(50), cap=7)
    r = run(agent, max_rep=50)
    assert len(r.columns["a"]) == 50 and len(r.columns["b"]) == 50
    assert r.requests > 10


def test_too_big_halves_repetitions():
    agent = FakeAgent(mib(30), too_big_above=20)
    r = run(agent, max_rep=40)
    assert len(r.columns["a"]) == 30
    assert [c[2] for c in agent.calls][:4] == [40, 20, 10, 10]


def test_missing_scalar_is_none_and_empty_column():
    m = {k: v for k, v in mib(3).items() if k[:len(B.oid)] != B.oid}
    del m[(1, 3, 6, 1, 2, 1, 1, 5, 0)]
    r = run(FakeAgent(m))
    assert r.scalars["sysName"] is None
    assert r.columns["b"] == {}


def test_agent_going_backwards_is_a_protocol_error():
    async def backwards(nr, reps, max_rep):
        return 0, 0, [(ber.oid_bytes((1, 3, 6, 1)), ber.T_INTEGER, 1)] * len(nr) + [
            (ber.oid_bytes(c.oid + (1,)), ber.T_INTEGER, 1) for c in (A, B)]
    with pytest.raises(SnmpError) as exc:
        asyncio.run(walk(backwards, {}, [A, B], 1))
    assert exc.value.kind == "protocol"


def test_agent_error_status_is_reported():
    async def gen_err(nr, reps, max_rep):
        return 5, 1, []
    with pytest.raises(SnmpError) as exc:
        asyncio.run(walk(gen_err, {}, [A], 10))
    assert exc.value.kind == "agent" and "genErr" in str(exc.value)
