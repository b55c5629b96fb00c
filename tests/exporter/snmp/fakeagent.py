"""An in-memory agent answering GETBULK from a snmpsim recording (no sockets): the poller's seam."""

from __future__ import annotations

import asyncio
import bisect

from exporter.snmp import ber

SNMPREC_TAGS = {"2": ber.T_INTEGER, "4": ber.T_OCTETS, "65": ber.T_COUNTER32, "66": ber.T_GAUGE32,
                "67": ber.T_TIMETICKS, "70": ber.T_COUNTER64}


class FakeAgent:
    def __init__(self, snmprec_text: str, delay: float = 0.0):
        self.load(snmprec_text)
        self.delay = delay
        self.requests: list[list[tuple[int, ...]]] = []  # repeater OIDs of each request
        self.hang = False

    def load(self, text: str) -> None:
        rows = []
        for line in text.splitlines():
            oid, tag, value = line.split("|", 2)
            t = SNMPREC_TAGS[tag]
            rows.append((tuple(int(x) for x in oid.split(".")), t, value.encode() if t == ber.T_OCTETS else int(value)))
        rows.sort()
        self.keys = [r[0] for r in rows]
        self.rows = rows

    def _next(self, oid):
        i = bisect.bisect_right(self.keys, oid)
        if i >= len(self.rows):
            return ber.oid_bytes(oid), ber.END_OF_MIB_VIEW, None
        k, t, v = self.rows[i]
        return ber.oid_bytes(k), t, v

    async def __call__(self, nr, reps, max_rep):
        if self.hang:
            await asyncio.sleep(3600)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.requests.append([ber.oid_arcs(o) for o in reps])
        out = [self._next(ber.oid_arcs(o)) for o in nr]
        cursors = [ber.oid_arcs(o) for o in reps]
        for _ in range(max_rep):
            for j, cur in enumerate(cursors):
                oid, tag, v = self._next(cur)
                out.append((oid, tag, v))
                cursors[j] = ber.oid_arcs(oid)
        return 0, 0, out
