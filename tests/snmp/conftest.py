"""SNMP test fixtures: an event loop thread inside the lab's prober namespace (as the exporter runs
it), real snmpsim agents (v1/v2c, recorded interface tables) and a net-snmp snmpd (v3) in the
target namespace."""

from __future__ import annotations

import asyncio
import threading

import pytest

from wardops.lab.netns import enter_netns


class LoopThread:
    """One event loop for the whole module, on a thread that entered `netns`: every socket the
    poller opens lazily is created there (like the exporter's probing loop)."""

    def __init__(self, netns: str | None):
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, args=(netns,), daemon=True, name="snmp-test-loop")
        self.thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error

    def _main(self, netns):
        try:
            if netns:
                with enter_netns(netns):
                    self._serve()
            else:
                self._serve()
        except BaseException as exc:  # surfaced to the test
            self._error = exc
            self._ready.set()

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        self.loop.run_forever()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, timeout: float = 10.0):
        async def wrapper():
            return fn()
        return self.run(wrapper(), timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def probe_loop(lab):
    lt = LoopThread(lab.probe_ns)
    yield lt
    lt.stop()
