"""A socket-free stand-in for IcmpEngine: the network behind a seam."""

from __future__ import annotations

import asyncio

from exporter.icmp.engine import EngineCounters, PingResult


class FakeEngine:
    def __init__(self, alive: set[str] | None = None, delay: float = 0.0, rtt: float = 0.002):
        self.alive = set(alive or ())
        self.delay = delay
        self.rtt = rtt
        self.counters = EngineCounters()
        self.unavailable: dict[int, str] = {}
        self.calls: list[tuple[list[str], int]] = []

    def open(self, loop, versions=(4, 6), required=(4,)):
        pass

    def close(self):
        pass

    def describe(self):
        return "fake"

    async def ping(self, addresses, packets=1, spacing=0.0, timeout=1.0):
        self.calls.append((list(addresses), packets))
        if self.delay:
            await asyncio.sleep(self.delay)
        rtts = [[self.rtt] * packets if a in self.alive else [] for a in addresses]
        self.counters.sent += packets * len(addresses)
        return PingResult([packets] * len(addresses), rtts, self.delay)
