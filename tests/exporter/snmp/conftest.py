"""SNMP test fixtures: an event loop thread inside the lab's prober namespace (as the exporter runs
it), real snmpsim agents (v1/v2c, recorded interface tables) and a net-snmp snmpd (v3) in the
target namespace."""

from __future__ import annotations

import pytest

from exporter.netns import LoopThread


@pytest.fixture(scope="module")
def probe_loop(lab):
    """One event loop for the whole module, on a thread inside the prober namespace: every socket
    the poller opens lazily is created there (the exporter's own LoopThread)."""
    with LoopThread(lab.probe_ns, name="snmp-test-loop") as loop_thread:
        yield loop_thread
