"""The interface every protocol (icmp, snmp) implements to run on the exporter's single event loop.

A component is constructed with the `Runtime`, starts its round loops as tasks on `runtime.loop`
(`start`), receives every new device set on that loop's thread (`set_devices`), publishes its
rendered per-device families through `runtime.publish_later(key, render, rows)` and contributes
self-metric samples through `self_samples()` (called from the web thread on each scrape: read only
plain attributes there). Components are listed in COMPONENTS; /probe modules in exporter/probers.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from exporter.config import ExporterConfig
from exporter.contract import SELF_FAMILIES, Family
from exporter.exposition import Exposition, Section
from inventory.model import Device, Inventory

__all__ = ["COMPONENTS", "SELF_FAMILIES", "Component", "Runtime"]

# name -> "module:Class"; imported only when used.
COMPONENTS: dict[str, str] = {
    "icmp": "exporter.icmp.component:IcmpComponent",
    "snmp": "exporter.snmp.component:SnmpComponent",
}


class Runtime:
    """What a component may use. Created by the exporter; everything here is thread-safe."""

    def __init__(self, config: ExporterConfig, exposition: Exposition, loop: asyncio.AbstractEventLoop,
                 log: logging.Logger, netns: str | None = None):
        self.config = config
        self.exposition = exposition
        self.loop = loop
        self.log = log
        self.netns = netns
        self.components: dict[str, Component] = {}
        # The last good inventory (set on the loop thread just before set_devices): SNMP profiles etc.
        # From an HTTP SD URL it holds only the devices (profiles come from /api/v1/snmp-profiles).
        self.inventory: Inventory | None = None
        # One render thread: sections render in submission order and never on the probing loop.
        self._render = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")

    def publish_later(self, key: object, render: Callable[..., Section], *args) -> None:
        """Render `render(*args)` in the render thread, then publish it as section `key`."""
        def job():
            try:
                self.exposition.publish(key, render(*args))
            except Exception:  # a render bug must not kill the render thread
                self.log.exception("msg=\"render failed\" section=%s", key)
        self._render.submit(job)

    def publish_many_later(self, render: Callable[..., Mapping[object, Section | None]], *args) -> None:
        """Like publish_later for several sections {key: section, None = remove} swapped in at once."""
        def job():
            try:
                self.exposition.publish_many(render(*args))
            except Exception:
                self.log.exception('msg="render failed" sections=many')
        self._render.submit(job)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every section submitted so far is published (tests, reload)."""
        self._render.submit(lambda: None).result(timeout)

    def shutdown(self) -> None:
        self._render.shutdown(wait=True, cancel_futures=True)


class Component(Protocol):
    name: str
    families: tuple[Family, ...]

    def __init__(self, runtime: Runtime) -> None: ...

    async def start(self) -> None:
        """Open sockets etc. (inside --netns) and start round tasks; raise to abort startup."""

    def set_devices(self, devices: tuple[Device, ...]) -> None:
        """The current enabled (and sharded) device set; republish so removed devices vanish."""

    def ready(self) -> bool: ...

    async def reconfigure(self) -> None:
        """runtime.config changed (reload): apply it, keeping device state where possible."""

    def self_samples(self) -> Iterable[tuple[str, str, float]]: ...

    async def stop(self) -> None: ...
