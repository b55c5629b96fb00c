"""The one round driver of every protocol's loop (ICMP policies, SNMP): an interval grid on the
shared event loop, overruns counted and skipped, never queued.

Round k starts at t0 + k x interval. A round that runs past the next start skips every start it
missed (each counted as an overrun) and the next round starts on the grid again: a slow round never
makes the following ones pile up behind it. With nothing to probe the loop sleeps until `wake` is
set and then starts at once, not an interval later (a new inventory is probed immediately).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def drive_rounds(loop: asyncio.AbstractEventLoop, interval: Callable[[], float],
                       has_work: Callable[[], bool], wake: asyncio.Event,
                       run_round: Callable[[], Awaitable[None]],
                       on_overrun: Callable[[int], None]) -> None:
    """Run `run_round()` forever on the grid of `interval()` seconds (read after each round, so a
    changed setting applies from the next start). `on_overrun(n)`: n starts were skipped."""
    next_start = loop.time()
    while True:
        delay = next_start - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not has_work():
            wake.clear()
            await wake.wait()
            next_start = loop.time()
            continue
        await run_round()
        step = interval()
        next_start += step
        late = loop.time() - next_start
        if late > 0:
            missed = int(late // step) + 1
            on_overrun(missed)
            next_start += missed * step
