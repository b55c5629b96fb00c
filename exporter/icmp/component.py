"""ICMP component: one round loop per probe policy on the shared event loop, device state with
hysteresis, and the per-device families rendered once per round."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.component import Runtime
from exporter.config import Policy
from exporter.contract import ICMP_FAMILIES
from exporter.exposition import Section, label_text
from exporter.icmp.engine import IcmpEngine
from exporter.state import UNKNOWN, DeviceState, round_stats
from inventory.model import Device

FAMILIES = ICMP_FAMILIES  # exporter/contract.py; render_rows writes them in this order
_NAMES = tuple(f.name for f in FAMILIES)


@dataclass(slots=True)
class _Tracked:
    device: Device
    policy: str
    labels: str  # rendered label block, `{device="...",...}`
    is_isp: bool
    state: DeviceState = field(default_factory=DeviceState)


@dataclass(slots=True)
class PolicyStats:
    rounds: int = 0
    overruns: int = 0
    duration: float = 0.0
    targets: int = 0
    last_round: float = 0.0


# One device's row of an immutable round snapshot (plain tuple: cheap to build on the loop).
Row = tuple  # (labels, is_isp, state, since, changes, sent, received, avg, min, max, jitter, loss)


def render_rows(rows: Iterable[Row]) -> Section:
    """Rows -> section: per family, (ISP lines, other lines) as bytes. Runs in the render thread.

    One family at a time, each joined and encoded at once: the peak memory is one family's text,
    not ten (measured at 50k devices: 86 MB instead of 172 MB peak), with inline comprehensions (as fast
    as appending per row; a lambda per line cost 50 % more).
    """
    rows = tuple(rows)
    isp = _render_part(tuple(r for r in rows if r[1]))
    other = _render_part(tuple(r for r in rows if not r[1]))
    return {name: (a, b) for name, a, b in zip(_NAMES, isp, other, strict=True) if a or b}


def _render_part(rows: tuple[Row, ...]) -> list[bytes]:
    # row: (labels, is_isp, state, since, changes, sent, received, avg, min, max, jitter, loss)
    def text(lines: list[str]) -> bytes:
        return "".join(lines).encode()

    decided = [r for r in rows if r[2] != UNKNOWN]
    replied = [r for r in rows if r[6]]
    return [
        text([f"wardops_icmp_up{r[0]} {r[2]}\n" for r in decided]),
        text([f"wardops_icmp_rtt_seconds{r[0]} {round(r[7], 9)!r}\n" for r in replied]),
        text([f"wardops_icmp_rtt_min_seconds{r[0]} {round(r[8], 9)!r}\n" for r in replied]),
        text([f"wardops_icmp_rtt_max_seconds{r[0]} {round(r[9], 9)!r}\n" for r in replied]),
        text([f"wardops_icmp_jitter_seconds{r[0]} {round(r[10], 9)!r}\n" for r in replied]),
        text([f"wardops_icmp_loss_ratio{r[0]} {round(r[11], 6)!r}\n" for r in rows]),
        text([f"wardops_icmp_packets_sent_total{r[0]} {r[5]}\n" for r in rows]),
        text([f"wardops_icmp_packets_received_total{r[0]} {r[6]}\n" for r in rows]),
        text([f"wardops_icmp_status_changes_total{r[0]} {r[4]}\n" for r in rows]),
        text([f"wardops_icmp_last_change_timestamp_seconds{r[0]} {round(r[3], 3)!r}\n" for r in decided]),
    ]


class IcmpComponent:
    name = "icmp"
    families = FAMILIES

    def __init__(self, runtime: Runtime, engine: IcmpEngine | None = None, clock=time.time):
        self.rt = runtime
        cfg = runtime.config.icmp
        self.engine = engine or IcmpEngine(cfg.mode, cfg.source_ipv4, cfg.source_ipv6, cfg.receive_buffer, cfg.burst)
        self.clock = clock
        self.policies: dict[str, Policy] = dict(runtime.config.policies)
        self.groups: dict[str, list[_Tracked]] = {name: [] for name in self.policies}
        self.stats: dict[str, PolicyStats] = {name: PolicyStats() for name in self.policies}
        self._tasks: list[asyncio.Task] = []
        self._devices_set = False
        self._devices_changed = asyncio.Event()

    # -- lifecycle (event-loop thread) ---------------------------------------------------------

    async def start(self) -> None:
        self.engine.open(self.rt.loop)
        self.rt.log.info('msg="icmp sockets open" %s', self.engine.describe())
        for version, why in self.engine.unavailable.items():
            self.rt.log.warning('msg="no IPv%d probing" reason="%s"', version, why)
        for name in self.policies:
            self._tasks.append(self.rt.loop.create_task(self._policy_loop(name), name=f"icmp-{name}"))

    async def stop(self) -> None:
        await self._stop_tasks()
        self.engine.close()

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def reconfigure(self) -> None:
        """New policies/mapping: restart the round loops; devices keep their state unless their
        policy changed (a different policy means different hysteresis, so it starts UNKNOWN)."""
        await self._stop_tasks()
        current = tuple(t.device for group in self.groups.values() for t in group)
        self.policies = dict(self.rt.config.policies)
        for name in list(self.stats):
            if name not in self.policies:
                del self.stats[name]
                self.rt.publish_later(("icmp", name), lambda: None)
        for name in self.policies:
            self.stats.setdefault(name, PolicyStats())
        self.set_devices(current)
        for name in self.policies:
            self._tasks.append(self.rt.loop.create_task(self._policy_loop(name), name=f"icmp-{name}"))

    def set_devices(self, devices: tuple[Device, ...]) -> None:
        cfg = self.rt.config
        old = {t.device.name: t for group in self.groups.values() for t in group}
        groups: dict[str, list[_Tracked]] = {name: [] for name in self.policies}
        unknown = set()
        for device in devices:
            label_policy = device.labels.get(cfg.policy_label)
            if label_policy is not None and label_policy not in cfg.policies:
                unknown.add(label_policy)
            policy = cfg.policy_for(device.role, device.labels).name
            prev = old.get(device.name)
            labels = label_text(device.target_labels())
            if prev is not None and prev.device.ip == device.ip and prev.policy == policy:
                tracked = _Tracked(device, policy, labels, device.role == "isp", prev.state)
            else:
                tracked = _Tracked(device, policy, labels, device.role == "isp")
            groups[policy].append(tracked)
        if unknown:
            self.rt.log.warning('msg="unknown probe policy in device labels, using the role policy" '
                                'label=%s policies="%s"', cfg.policy_label, ",".join(sorted(unknown)))
        self.groups = groups
        self._devices_set = True
        self._devices_changed.set()
        for name, group in groups.items():  # removed devices vanish now, not after the next round
            self.stats[name].targets = len(group)
            self.rt.publish_later(("icmp", name), render_rows, self._rows(group))

    def ready(self) -> bool:
        return self._devices_set and all(self.stats[n].rounds > 0 for n, g in self.groups.items() if g)

    # -- rounds --------------------------------------------------------------------------------

    async def _policy_loop(self, name: str) -> None:
        policy = self.policies[name]
        stats = self.stats[name]
        loop = self.rt.loop
        next_start = loop.time()
        while True:
            delay = next_start - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            group = self.groups[name]
            if not group:  # nothing to probe: start as soon as devices arrive, not an interval later
                self._devices_changed.clear()
                await self._devices_changed.wait()
                next_start = loop.time()
                continue
            await self.run_round(name, policy, group)
            next_start += policy.interval
            late = loop.time() - next_start
            if late > 0:
                missed = int(late // policy.interval) + 1
                stats.overruns += missed
                next_start += missed * policy.interval

    async def run_round(self, name: str, policy: Policy, group: list[_Tracked]) -> None:
        addresses = list(dict.fromkeys(t.device.ip for t in group))  # same IP twice: probe once
        slot = {ip: i for i, ip in enumerate(addresses)}
        result = await self.engine.ping(addresses, policy.packets, policy.spacing, policy.timeout)
        now = self.clock()
        changed = []
        for t in group:
            i = slot[t.device.ip]
            stats = round_stats(result.sent[i], result.rtts[i])
            before = t.state.state
            if t.state.observe(stats, now, policy.down_after, policy.up_after):
                changed.append((t.device.name, before, t.state.state))
        st = self.stats[name]
        st.rounds += 1
        st.duration = result.duration
        st.last_round = now
        if group is self.groups[name]:  # else the inventory changed mid-round: its republish wins
            self.rt.publish_later(("icmp", name), render_rows, self._rows(group))
        for device, before, after in changed[:50]:
            self.rt.log.info('msg="state change" module=icmp policy=%s device=%s from=%s to=%s',
                             name, device, _word(before), _word(after))
        if len(changed) > 50:
            self.rt.log.info('msg="state changes" module=icmp policy=%s more=%d', name, len(changed) - 50)

    @staticmethod
    def _rows(group: list[_Tracked]) -> tuple[Row, ...]:
        rows = []
        for t in group:
            s = t.state
            last = s.last
            if last is None:
                continue  # no round yet: nothing to say
            rows.append((t.labels, t.is_isp, s.state, s.since, s.changes, s.sent, s.received,
                         last.rtt_avg, last.rtt_min, last.rtt_max, last.jitter, last.loss))
        return tuple(rows)

    # -- self-metrics (web thread: plain reads) ------------------------------------------------

    def self_samples(self) -> Iterable[tuple[str, str, float]]:
        out = []
        for name, st in list(self.stats.items()):
            labels = f'{{protocol="icmp",policy="{name}"}}'
            out += [("wardops_exporter_round_duration_seconds", labels, st.duration),
                    ("wardops_exporter_rounds_total", labels, st.rounds),
                    ("wardops_exporter_round_overruns_total", labels, st.overruns),
                    ("wardops_exporter_targets", labels, st.targets)]
            if st.last_round:
                out.append(("wardops_exporter_last_round_timestamp_seconds", labels, st.last_round))
        c = self.engine.counters
        out += [("wardops_exporter_send_errors_total", '{protocol="icmp"}', c.send_errors),
                ("wardops_exporter_receive_drops_total", '{protocol="icmp"}', c.receive_drops)]
        return out


def _word(state: int) -> str:
    return {UNKNOWN: "unknown", 0: "down", 1: "up"}[state]
