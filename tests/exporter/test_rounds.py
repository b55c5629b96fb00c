"""The shared round driver (exporter/rounds.py) on a fake clock: grid, overruns, idle wake-up."""

import asyncio

import pytest

from exporter import rounds


class FakeLoop:
    """Only what drive_rounds reads: time(). Sleeping advances it (patched below)."""

    def __init__(self):
        self.t = 100.0

    def time(self):
        return self.t


class Done(Exception):
    pass


@pytest.fixture
def loop_and_sleep(monkeypatch):
    fake = FakeLoop()
    real_sleep = asyncio.sleep

    async def sleep(delay):
        fake.t += delay
        await real_sleep(0)
    monkeypatch.setattr(rounds.asyncio, "sleep", sleep)
    return fake


def test_slow_rounds_skip_the_starts_they_missed_and_stay_on_the_grid(loop_and_sleep):
    fake = loop_and_sleep
    starts, missed = [], []

    async def run_round():
        starts.append(fake.t)
        fake.t += 2.5  # each round runs 2.5 intervals
        if len(starts) == 4:
            raise Done

    async def go():
        with pytest.raises(Done):
            await rounds.drive_rounds(fake, lambda: 1.0, lambda: True, asyncio.Event(), run_round, missed.append)
    asyncio.run(go())
    assert starts == [100.0, 103.0, 106.0, 109.0]  # on the grid, never queued right behind each other
    assert missed == [2, 2, 2]


def test_fast_rounds_start_every_interval_and_an_idle_driver_starts_at_once_when_woken(loop_and_sleep):
    fake = loop_and_sleep
    starts, missed = [], []
    work = {"on": False}

    async def run_round():
        starts.append(fake.t)
        fake.t += 0.1
        if len(starts) == 3:
            raise Done

    async def go():
        wake = asyncio.Event()

        async def later():
            await asyncio.sleep(0)
            fake.t += 42.0  # devices arrive much later; the next round must not wait an interval more
            work["on"] = True
            wake.set()
        task = asyncio.get_running_loop().create_task(later())
        with pytest.raises(Done):
            await rounds.drive_rounds(fake, lambda: 0.5, lambda: work["on"], wake, run_round, missed.append)
        await task
    asyncio.run(go())
    assert starts == [pytest.approx(142.0), pytest.approx(142.5), pytest.approx(143.0)]
    assert missed == []
