"""Per-device UP/DOWN state with hysteresis: pure logic, no sockets, no clock of its own.

A round is "good" when at least one echo reply came back. A device starts UNKNOWN (its series
`wardops_icmp_up` is absent, so nothing alerts on a restart): the first good round makes it UP,
`down_after` failed rounds in a row make it DOWN. After that it turns DOWN only after `down_after`
consecutive failed rounds and UP only after `up_after` consecutive good ones; each such turn counts
in `changes` (a counter, so flaps between two scrapes are never lost). The decision from UNKNOWN
is not a change. `since` is when the exporter decided the current state (UTC epoch seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNKNOWN, DOWN, UP = -1, 0, 1


@dataclass(frozen=True, slots=True)
class RoundStats:
    """One round's measurement of one device."""

    sent: int
    received: int
    rtt_avg: float  # seconds; NaN without replies
    rtt_min: float
    rtt_max: float
    jitter: float  # mean absolute difference of consecutive RTTs; 0 with one reply, NaN with none

    @property
    def ok(self) -> bool:
        return self.received > 0

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


def round_stats(sent: int, rtts: list[float]) -> RoundStats:
    if not rtts:
        return RoundStats(sent, 0, math.nan, math.nan, math.nan, math.nan)
    n = len(rtts)
    jitter = sum(abs(rtts[i] - rtts[i - 1]) for i in range(1, n)) / (n - 1) if n > 1 else 0.0
    return RoundStats(sent, n, sum(rtts) / n, min(rtts), max(rtts), jitter)


@dataclass(slots=True)
class DeviceState:
    state: int = UNKNOWN
    failed_rounds: int = 0  # consecutive
    good_rounds: int = 0  # consecutive
    changes: int = 0
    since: float | None = None
    sent: int = 0
    received: int = 0
    last: RoundStats | None = None

    def observe(self, stats: RoundStats, now: float, down_after: int, up_after: int) -> bool:
        """Fold one round in; return True when the UP/DOWN state changed (UNKNOWN -> X included)."""
        self.sent += stats.sent
        self.received += stats.received
        self.last = stats
        if stats.ok:
            self.good_rounds += 1
            self.failed_rounds = 0
            if self.state == UNKNOWN or (self.state == DOWN and self.good_rounds >= up_after):
                return self._become(UP, now)
        else:
            self.failed_rounds += 1
            self.good_rounds = 0
            if self.state != DOWN and self.failed_rounds >= down_after:
                return self._become(DOWN, now)
        return False

    def _become(self, state: int, now: float) -> bool:
        if self.state != UNKNOWN:
            self.changes += 1
        self.state = state
        self.since = now
        return True
