"""SNMP component: the SnmpPoller's rounds on the exporter's shared probing loop, each round's
snapshot rendered once (in the render thread) into the exposition's pre-rendered section.

Why lines instead of prometheus_client families: building ~240k Metric samples per round for 1,000
devices cost several times the text itself (measured by bench/exporter_mixed.py, docs/snmp.md) and
its per-sample objects trigger full GC passes that stall the shared loop; plain f-strings over the
immutable snapshot allocate short-lived strings only, in the render thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from exporter.component import Runtime
from exporter.contract import SNMP_FAMILIES, SNMP_IF_COUNTERS, Family, snmp_extra_family
from exporter.exposition import Section, escape, label_text, number
from exporter.snmp.poller import DeviceSample, SnmpPoller
from inventory.model import Device

POLICY = "snmp"  # the `policy` label of the SNMP self-metrics (one round loop for all SNMP devices)
SELF_LABELS = f'{{protocol="snmp",policy="{POLICY}"}}'

FAMILIES = SNMP_FAMILIES
_COUNTERS = tuple((family.name, column) for family, column in SNMP_IF_COUNTERS)

# One row per device of a round: (labels text, is_isp, sample, error counts {kind: n}).
Row = tuple


def render_rows(rows: Iterable[Row]) -> Section:
    """Rows -> section {family: (ISP lines, other lines)}. Runs in the render thread."""
    parts: dict[str, tuple[list[str], list[str]]] = {}

    def out(name: str, isp: bool) -> list[str]:
        pair = parts.get(name)
        if pair is None:
            pair = parts[name] = ([], [])
        return pair[0] if isp else pair[1]

    for labels, isp, s, errors in rows:
        out("wardops_snmp_up", isp).append(f"wardops_snmp_up{labels} {int(s.up)}\n")
        out("wardops_snmp_poll_duration_seconds", isp).append(
            f"wardops_snmp_poll_duration_seconds{labels} {round(s.duration, 6)!r}\n")
        for kind, count in errors:
            out("wardops_snmp_poll_errors_total", isp).append(
                f'wardops_snmp_poll_errors_total{labels[:-1]},error="{kind}"}} {count}\n')
        if not s.up:
            continue
        if s.uptime_seconds is not None:
            out("wardops_snmp_uptime_seconds", isp).append(
                f"wardops_snmp_uptime_seconds{labels} {number(s.uptime_seconds)}\n")
        head = labels[:-1]
        oper, admin, speed, change = (out(n, isp) for n in (
            "wardops_snmp_if_oper_up", "wardops_snmp_if_admin_up", "wardops_snmp_if_speed_bps",
            "wardops_snmp_if_last_change_seconds"))
        counters = [(name, column, out(name, isp)) for name, column in _COUNTERS]
        for i in s.interfaces:
            il = f'{head},ifName="{escape(i.name)}",ifAlias="{escape(i.alias)}"}}'
            if i.oper_up is not None:
                oper.append(f"wardops_snmp_if_oper_up{il} {int(i.oper_up)}\n")
            if i.admin_up is not None:
                admin.append(f"wardops_snmp_if_admin_up{il} {int(i.admin_up)}\n")
            if i.speed_bps is not None:
                speed.append(f"wardops_snmp_if_speed_bps{il} {number(i.speed_bps)}\n")
            if i.last_change is not None:
                change.append(f"wardops_snmp_if_last_change_seconds{il} {round(i.last_change, 2)!r}\n")
            values = i.counters
            for name, column, lines in counters:
                value = values.get(column)
                if value is not None:
                    lines.append(f"{name}{il} {value}\n")
        for e in s.extras:
            name = f"{e.metric}_total" if e.kind == "counter" else e.metric
            el = f'{head},index="{escape(e.index)}"}}' if e.index else labels
            out(name, isp).append(f"{name}{el} {number(e.value)}\n")
    return {name: ("".join(a).encode(), "".join(b).encode()) for name, (a, b) in parts.items() if a or b}


def extra_families(profiles: Mapping) -> list[Family]:
    """Families for the profiles' extra OIDs (`wardops_snmp_<metric>`, counters with `_total`)."""
    out = {}
    for profile in profiles.values():
        for extra in getattr(profile, "extra_oids", ()) or ():
            family = snmp_extra_family(extra.metric, extra.type, extra.table)
            out[family.name] = family
    return [out[n] for n in sorted(out)]


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
        loop = self.rt.loop
        next_start = loop.time()
        while True:
            delay = next_start - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.poller.devices:
                self._devices_changed.clear()
                await self._devices_changed.wait()
                next_start = loop.time()
                continue
            try:
                snapshot = await self.poller.poll_round()
            except Exception:  # a bug must not end polling; device failures are samples already
                self.rt.log.exception('msg="snmp round failed"')
            else:
                self.rounds += 1
                self.duration = snapshot.duration
                self.last_round = snapshot.timestamp
                self._publish()
            interval = self.settings.interval
            next_start += interval
            late = loop.time() - next_start
            if late > 0:  # skipped, never queued (like the ICMP policies)
                missed = int(late // interval) + 1
                self.overruns += missed
                next_start += missed * interval

    def _publish(self) -> None:
        """The last snapshot, restricted to the current devices (current labels), to the render thread."""
        snapshot = self.poller.snapshot
        current = {d.name: d for d in self.poller.devices}
        errors: dict[str, list[tuple[str, int]]] = {}
        for (name, kind), count in sorted(snapshot.errors.items()):
            errors.setdefault(name, []).append((kind, count))
        rows = []
        for s in snapshot.devices:
            device = current.get(s.device.name)
            if device is None or device.ip != s.device.ip:
                continue  # removed (or readdressed) since the round: gone at once
            rows.append((label_text(device.target_labels()), device.role == "isp", s,
                         tuple(errors.get(device.name, ()))))
        self.rt.publish_later(("snmp", "devices"), render_rows, tuple(rows))

    # -- queries -------------------------------------------------------------------------------

    async def probe(self, device: Device) -> DeviceSample:
        return await self.poller.probe(device)

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
