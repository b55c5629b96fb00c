"""SNMP component: the SnmpPoller's rounds on the exporter's shared probing loop, each round's
snapshot rendered once (in the render thread, by exporter/snmp/render.py) into the exposition's
pre-rendered section."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from exporter.component import Runtime
from exporter.contract import SNMP_FAMILIES
from exporter.rounds import drive_rounds
from exporter.snmp.poller import DeviceSample, SnmpPoller
from exporter.snmp.render import POLICY, SELF_LABELS, extra_families, render_rows, snapshot_rows
from inventory.model import Device, SnmpProfile

__all__ = ["FAMILIES", "POLICY", "SELF_LABELS", "SnmpComponent", "render_rows"]

FAMILIES = SNMP_FAMILIES


class SnmpComponent:
    name = "snmp"
    families = FAMILIES

    def __init__(self, runtime: Runtime, poller: SnmpPoller | None = None):
        """`poller`: a seam for tests (e.g. one built with a fake `requester_for`)."""
        self.rt = runtime
        cfg = runtime.config.snmp
        self.settings = cfg
        self.poller = poller or SnmpPoller((), {}, concurrency=cfg.concurrency, interval=cfg.interval,
                                           static_every=cfg.static_every, deadline=cfg.deadline)
        self.rounds = 0
        self.overruns = 0
        self.duration = 0.0
        self.last_round = 0.0
        self.targets = 0
        self._task: asyncio.Task | None = None
        self._devices_set = False
        self._devices_changed = asyncio.Event()
        self._registered: set[str] = set()

    # -- lifecycle (event-loop thread) ---------------------------------------------------------

    async def start(self) -> None:
        # Sockets open lazily on the first poll, from this loop's thread (inside --netns).
        if self.settings.enabled:
            self._task = self.rt.loop.create_task(self._round_loop(), name="snmp")

    async def stop(self) -> None:
        await self._stop_task()
        self.poller.close()

    async def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def reconfigure(self) -> None:
        new = self.rt.config.snmp
        if new == self.settings:
            return
        await self._stop_task()
        self.settings = new
        p = self.poller
        p.interval, p.concurrency, p.static_every, p.deadline = (new.interval, new.concurrency,
                                                                  new.static_every, new.deadline)
        self.rt.log.info('msg="snmp settings applied" enabled=%s interval=%g concurrency=%d',
                         new.enabled, new.interval, new.concurrency)
        if self._devices_set:
            self.set_devices(self._devices)
        if new.enabled:
            self._task = self.rt.loop.create_task(self._round_loop(), name="snmp")

    def set_devices(self, devices: tuple[Device, ...]) -> None:
        self._devices = devices
        inv = self.rt.inventory
        profiles = inv.snmp_profiles if inv is not None and self.settings.enabled else {}
        new_families = [f for f in extra_families(profiles) if f.name not in self._registered]
        if new_families:
            self.rt.exposition.register(new_families)
            self._registered.update(f.name for f in new_families)
        missing = sorted({d.snmp for d in devices if d.snmp and d.snmp not in profiles})
        if missing and self.settings.enabled:
            self.rt.log.warning('msg="devices name unknown snmp profiles, not polled" profiles="%s"',
                                ",".join(missing))
        self.poller.update(devices if self.settings.enabled else (), profiles)
        self.targets = len(self.poller.devices)
        self._devices_set = True
        self._devices_changed.set()
        self._publish()  # removed devices vanish now, not after the next round

    def ready(self) -> bool:
        # Not gated on a completed round: one dead device may hold the first round for its deadline.
        return self._devices_set or not self.settings.enabled

    # -- rounds --------------------------------------------------------------------------------

    async def _round_loop(self) -> None:
        def overrun(missed: int) -> None:
            self.overruns += missed
        await drive_rounds(self.rt.loop, lambda: self.settings.interval, lambda: bool(self.poller.devices),
                           self._devices_changed, self._poll_round, overrun)

    async def _poll_round(self) -> None:
        try:
            snapshot = await self.poller.poll_round()
        except Exception:  # a bug must not end polling; device failures are samples already
            self.rt.log.exception('msg="snmp round failed"')
        else:
            self.rounds += 1
            self.duration = snapshot.duration
            self.last_round = snapshot.timestamp
            self._publish()

    def _publish(self) -> None:
        """The last snapshot, restricted to the current devices (current labels), to the render thread."""
        rows = snapshot_rows(self.poller.snapshot, self.poller.devices)
        self.rt.publish_later(("snmp", "devices"), render_rows, rows)

    # -- /probe?module=snmp (exporter/snmp/probe.py SnmpProbing) ---------------------------------

    def refusal(self, ip: str, device: Device | None) -> str | None:
        if not self.settings.enabled:
            return "SNMP polling is disabled (snmp.enabled)"
        return self.poller.refusal(ip, device)

    async def probe(self, device: Device, deadline: float | None = None) -> DeviceSample:
        return await self.poller.probe(device, deadline)

    @property
    def profiles(self) -> Mapping[str, SnmpProfile | None]:
        return self.poller.profiles

    # -- self-metrics (web thread: plain reads) ------------------------------------------------

    def self_samples(self) -> Iterable[tuple[str, str, float]]:
        if not self.settings.enabled:
            return []
        out = [("wardops_exporter_round_duration_seconds", SELF_LABELS, self.duration),
               ("wardops_exporter_rounds_total", SELF_LABELS, self.rounds),
               ("wardops_exporter_round_overruns_total", SELF_LABELS, self.overruns),
               ("wardops_exporter_targets", SELF_LABELS, self.targets)]
        if self.last_round:
            out.append(("wardops_exporter_last_round_timestamp_seconds", SELF_LABELS, self.last_round))
        return out
