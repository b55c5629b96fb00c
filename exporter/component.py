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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from exporter.config import ExporterConfig
from exporter.exposition import Exposition, Family, Section
from inventory.model import Device, Inventory

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


# Self-metric families every component may contribute samples to (contract names).
SELF_FAMILIES = (
    Family("wardops_exporter_build_info", "gauge", "Exporter version."),
    Family("wardops_exporter_round_duration_seconds", "gauge", "Duration of the last completed round."),
    Family("wardops_exporter_rounds_total", "counter", "Completed probe rounds."),
    Family("wardops_exporter_round_overruns_total", "counter",
           "Round starts skipped because the previous round ran past its interval (never queued)."),
    Family("wardops_exporter_targets", "gauge", "Devices probed per round."),
    Family("wardops_exporter_last_round_timestamp_seconds", "gauge", "When the last round completed (UTC epoch)."),
    Family("wardops_exporter_send_errors_total", "counter", "Packets the kernel refused to send."),
    Family("wardops_exporter_receive_drops_total", "counter",
           "Packets the kernel dropped because the socket receive queue was full (SO_RXQ_OVFL)."),
    Family("wardops_exporter_config_reload_success", "gauge", "1 if the last config file (re)load succeeded."),
    Family("wardops_exporter_inventory_reload_success", "gauge", "1 if the last inventory (re)load succeeded."),
    Family("wardops_exporter_inventory_reload_timestamp_seconds", "gauge",
           "When the inventory was last loaded successfully (UTC epoch)."),
    Family("wardops_exporter_inventory_devices", "gauge", "Devices of the inventory set in use (after --shard)."),
    Family("wardops_exporter_inventory_reload_held", "gauge",
           "1 while an inventory answer removing more than inventory.max_drop_share of the devices is held."),
    Family("wardops_exporter_inventory_held_removals", "gauge", "Devices the held inventory answer would remove."),
    Family("wardops_exporter_threads", "gauge", "Threads of the exporter process."),
    Family("wardops_exporter_asyncio_tasks", "gauge", "Unfinished asyncio tasks on the probing loop."),
    Family("wardops_exporter_secret_refusals_total", "counter",
           "SNMP secret references refused by the exporter's secrets policy, per profile and inventory answer loaded."),
)
