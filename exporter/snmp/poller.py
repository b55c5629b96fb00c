"""Poll every SNMP device of the inventory in rounds; each round yields an immutable SnmpSnapshot.

Concurrency across devices is bounded by a semaphore; a device is bounded by its profile's timeout
and retries (and an overall per-device deadline), so a slow or dead device holds one slot and never
delays the others. Static interface columns (name, alias, type, speed) are cached and re-walked every
`static_every` polls, or at once when the device rebooted, ifNumber changed or an unknown row shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.snmp import ber
from exporter.snmp.credentials import Auth, CommunityAuth, CredentialError, UsmAuth, resolve_auth
from exporter.snmp.oids import (
    COUNTER_BITS,
    DYNAMIC_COLUMNS,
    DYNAMIC_COLUMNS_32,
    OCTETS32_COLUMNS,
    OCTETS32_FOR,
    SCALARS,
    STATIC_COLUMNS,
    Column,
)
from exporter.snmp.state import DeviceState
from exporter.snmp.walker import CommunityClient, Requester, SnmpError, Target, UsmClient, walk
from inventory.model import Device, SnmpProfile

log = logging.getLogger("wardops.snmp")

DEFAULT_INTERVAL = 60.0
DEFAULT_CONCURRENCY = 64
DEFAULT_STATIC_EVERY = 10


@dataclass(frozen=True, slots=True)
class InterfaceSample:
    index: int
    name: str
    alias: str
    if_type: int | None
    speed_bps: float | None
    admin_up: bool | None
    oper_up: bool | None
    last_change: float | None  # Unix time of the last ifOperStatus change, from ifLastChange
    counters: Mapping[str, int]  # exported (monotonic) values by column name


@dataclass(frozen=True, slots=True)
class ExtraSample:
    metric: str  # full metric name
    kind: str  # gauge | counter
    index: str  # "" for scalars, dotted row index for tables
    value: float


@dataclass(frozen=True, slots=True)
class DeviceSample:
    device: Device
    up: bool
    error: str | None  # SnmpError.kind of the failed poll
    duration: float
    timestamp: float
    uptime_seconds: float | None = None
    sys_name: str | None = None
    interfaces: tuple[InterfaceSample, ...] = ()
    extras: tuple[ExtraSample, ...] = ()


@dataclass(frozen=True, slots=True)
class SnmpSnapshot:
    timestamp: float  # when the round ended (Unix time)
    duration: float
    devices: tuple[DeviceSample, ...] = ()
    # (device name, error kind) -> polls failed that way since start (counter)
    errors: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))


EMPTY_SNAPSHOT = SnmpSnapshot(timestamp=0.0, duration=0.0)


@dataclass(slots=True)
class _DeviceCache:
    state: DeviceState = field(default_factory=DeviceState)
    static: dict[bytes, tuple[str, str, int | None, int | None]] | None = None
    polls_since_static: int = 0
    if_number: int | None = None
    octets32: bool = False  # the agent has no ifHC* octet counters: walk ifIn/OutOctets instead
    last_error: str | None = None
    boot_time: float | None = None  # Unix time the agent booted, anchored (see anchor_boot_time)


# How far a fresh boot-time estimate (now - sysUpTime) may drift before it replaces the anchor:
# request latency and clock jitter move it by milliseconds; a reboot or a clock step by far more.
BOOT_TIME_TOLERANCE = 2.0


def anchor_boot_time(anchor: float | None, uptime_ticks: int, now: float) -> float:
    """The agent's boot time, kept stable across polls so ifLastChange maps to the same timestamp
    every poll (a value recomputed per poll jitters, and changes() would count every poll)."""
    estimate = now - uptime_ticks / 100
    if anchor is None or abs(estimate - anchor) > BOOT_TIME_TOLERANCE:
        return estimate
    return anchor


def _index_arcs(raw: bytes) -> tuple[int, ...]:
    arcs, n = [], 0
    for b in raw:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    return tuple(arcs)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").replace("\x00", "").strip()
    return "" if value is None else str(value)


def _int(value) -> int | None:
    return value if isinstance(value, int) else None


def _extra_columns(profile: SnmpProfile) -> tuple[dict[str, tuple[int, ...]], tuple[Column, ...]]:
    scalars, columns = {}, []
    for extra in getattr(profile, "extra_oids", ()):
        if extra.table:
            columns.append(Column(f"extra:{extra.metric}", extra.oid))
        else:
            scalars[f"extra:{extra.metric}"] = extra.oid
    return scalars, tuple(columns)


class SnmpPoller:
    """Owns the SNMP clients (one UDP socket per address family, one pysnmp engine) and per-device
    state. Use from ONE event loop: the one whose thread may have entered the probing namespace."""

    def __init__(self, devices: Iterable[Device], profiles: Mapping[str, SnmpProfile], *,
                 concurrency: int = DEFAULT_CONCURRENCY, interval: float = DEFAULT_INTERVAL,
                 static_every: int = DEFAULT_STATIC_EVERY, environ: dict[str, str] | None = None,
                 requester_for: Callable[[Target], Requester] | None = None, deadline: float | None = None):
        """`requester_for`: a seam for tests (target -> request function); default: the real clients."""
        if concurrency < 1 or interval <= 0 or static_every < 1:
            raise ValueError("concurrency, interval and static_every must be positive")
        self.concurrency = concurrency
        self.interval = interval
        self.static_every = static_every
        self.deadline = deadline  # per-device budget; None: derived from the profile (poll_device)
        self._environ = environ
        self._community = CommunityClient()
        self._usm = UsmClient()
        self._requester_for = requester_for
        self._caches: dict[str, _DeviceCache] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self.snapshot: SnmpSnapshot = EMPTY_SNAPSHOT
        self.update(devices, profiles)

    # --- configuration ---------------------------------------------------------------------------

    def update(self, devices: Iterable[Device], profiles: Mapping[str, SnmpProfile]) -> None:
        """Take a new inventory: enabled devices with a profile are polled. State of devices that
        keep their name, address and profile survives; credentials are resolved again."""
        self.profiles = dict(profiles)
        self._auth: dict[str, Auth | CredentialError] = {}
        for name, profile in self.profiles.items():
            if profile is None:
                continue
            try:
                self._auth[name] = resolve_auth(profile, self._environ)
            except CredentialError as exc:
                log.error("snmp credentials unusable: %s", exc)
                self._auth[name] = exc
        old = getattr(self, "devices", ())
        before = {d.name: (d.ip, d.snmp) for d in old}
        self.devices = tuple(d for d in devices if d.enabled and d.snmp and self.profiles.get(d.snmp))
        for d in self.devices:
            if before.get(d.name) != (d.ip, d.snmp):
                self._caches.pop(d.name, None)
        keep = {d.name for d in self.devices}
        for name in [n for n in self._caches if n not in keep]:
            del self._caches[name]
        for key in [k for k in self._errors if k[0] not in keep]:
            del self._errors[key]
        v3 = []
        for d in self.devices:
            auth = self._auth.get(d.snmp)
            if isinstance(auth, UsmAuth):
                p = self.profiles[d.snmp]
                v3.append(Target(d.ip, p.port, auth, p.timeout, p.retries, p.max_repetitions))
        self._usm.retain(v3)

    def close(self) -> None:
        self._community.close()
        self._usm.close()

    # --- polling ---------------------------------------------------------------------------------

    async def poll_round(self) -> SnmpSnapshot:
        """Poll every device once (bounded concurrency); store and return the new snapshot."""
        started = time.monotonic()
        sem = asyncio.Semaphore(self.concurrency)

        async def one(device: Device) -> DeviceSample:
            async with sem:
                return await self.poll_device(device)

        samples = await asyncio.gather(*(one(d) for d in self.devices))
        self.snapshot = SnmpSnapshot(timestamp=time.time(), duration=time.monotonic() - started,
                                     devices=tuple(samples), errors=MappingProxyType(dict(self._errors)))
        return self.snapshot

    def refusal(self, ip: str, device: Device | None) -> str | None:
        """Why /probe?module=snmp must not poll target `ip` (403), or None."""
        if device is None or not device.snmp:
            return f"target {ip!r} is not an inventory device with an snmp profile"
        if not self.profiles.get(device.snmp):
            return f"device {device.name!r} names an unknown snmp profile"
        return None

    async def probe(self, device: Device, deadline: float | None = None) -> DeviceSample:
        """A live poll for /probe: full walk with a throw-away cache, so the rounds' counter state
        is untouched (counters in the answer are the device's raw values). `deadline`
        (time.monotonic()) ends the poll early, as a sample with error "deadline"."""
        if self.refusal(device.ip, device) is not None:
            return DeviceSample(device=device, up=False, error="no_profile", duration=0.0, timestamp=time.time())
        budget = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await self.poll_device(device, cache=_DeviceCache(), count_errors=False, budget=budget)

    def target(self, device: Device, profile: SnmpProfile) -> Target:
        auth = self._auth.get(profile.name)
        if auth is None:
            auth = resolve_auth(profile, self._environ)
        if isinstance(auth, CredentialError):
            raise SnmpError("credentials", "profile secrets unusable (see log)")
        return Target(device.ip, profile.port, auth, profile.timeout, profile.retries, profile.max_repetitions)

    async def poll_device(self, device: Device, *, cache: _DeviceCache | None = None,
                          count_errors: bool = True, budget: float | None = None) -> DeviceSample:
        """One device, never raising: a failure is a sample with up=False and an error kind.
        `budget`: seconds at most (less than the round's per-device deadline), e.g. a scrape's timeout."""
        started = time.monotonic()
        profile = self.profiles.get(device.snmp or "")
        if profile is None:  # removed by a reload while this round was running
            return DeviceSample(device=device, up=False, error="no_profile", duration=0.0, timestamp=time.time())
        if cache is None:
            cache = self._caches.setdefault(device.name, _DeviceCache())
        deadline = self.deadline or max(1.0, min(self.interval, profile.timeout * (profile.retries + 1) * 8))
        if budget is not None:
            deadline = min(deadline, budget)
        try:
            sample = await asyncio.wait_for(self._poll(device, profile, cache, started), deadline)
            if cache.last_error is not None:
                log.info("snmp poll recovered device=%s ip=%s", device.name, device.ip)
                cache.last_error = None
            return sample
        except (SnmpError, TimeoutError, CredentialError, OSError) as exc:
            kind = exc.kind if isinstance(exc, SnmpError) else (
                "deadline" if isinstance(exc, TimeoutError) else
                "credentials" if isinstance(exc, CredentialError) else "network")
            if count_errors:
                key = (device.name, kind)
                self._errors[key] = self._errors.get(key, 0) + 1
            # warn when a device starts failing (or fails differently), not every interval
            level = logging.DEBUG if cache.last_error == kind else logging.WARNING
            cache.last_error = kind
            log.log(level, "snmp poll failed device=%s ip=%s error=%s", device.name, device.ip, kind)
            return DeviceSample(device=device, up=False, error=kind, duration=time.monotonic() - started,
                                timestamp=time.time())

    async def _poll(self, device: Device, profile: SnmpProfile, cache: _DeviceCache,
                    started: float) -> DeviceSample:
        target = self.target(device, profile)
        if self._requester_for is not None:
            request = self._requester_for(target)
        else:
            client = self._community if isinstance(target.auth, CommunityAuth) else self._usm
            request = client.requester(target)
        v1 = isinstance(target.auth, CommunityAuth) and target.auth.version == 0
        extra_scalars, extra_columns = _extra_columns(profile)
        need_static = cache.static is None or cache.polls_since_static + 1 >= self.static_every
        octets32 = v1 or cache.octets32
        dynamic = DYNAMIC_COLUMNS_32 if octets32 else DYNAMIC_COLUMNS
        columns = dynamic + extra_columns + (STATIC_COLUMNS if need_static else ())
        result = await walk(request, {**SCALARS, **extra_scalars}, columns, target.max_repetitions,
                            getnext_only=v1)
        now = time.time()
        uptime = _int(result.scalars.get("sysUpTime"))
        if_number = _int(result.scalars.get("ifNumber"))
        cols = result.columns
        if cache.state.rebooted(uptime):
            cache.octets32 = False  # new firmware may have 64-bit counters: look again next poll
        if not octets32 and not cols["ifHCInOctets"] and not cols["ifHCOutOctets"] and cols["ifOperStatus"]:
            fallback = await walk(request, {}, OCTETS32_COLUMNS, target.max_repetitions, getnext_only=v1)
            cols = {**cols, **fallback.columns}
            cache.octets32 = octets32 = True
        if octets32:
            cols = {**cols, **{hc: cols.get(c32, {}) for c32, hc in OCTETS32_FOR.items()}}
        rows = set(cols["ifOperStatus"]) | set(cols["ifHCInOctets"]) | set(cols["ifInErrors"])
        if not need_static and (cache.state.rebooted(uptime) or if_number != cache.if_number
                                or not rows <= set(cache.static or ())):
            static = await walk(request, {}, STATIC_COLUMNS, target.max_repetitions, getnext_only=v1)
            cols = {**cols, **static.columns}
            need_static = True
        if need_static:
            cache.static = {
                row: (_text(cols["ifName"].get(row)), _text(cols["ifAlias"].get(row)),
                      _int(cols["ifType"].get(row)), _int(cols["ifHighSpeed"].get(row)))
                for row in set(cols["ifName"]) | rows}
            cache.polls_since_static = 0
        else:
            cache.polls_since_static += 1
        cache.if_number = if_number
        static = cache.static or {}
        names = {row: static.get(row, ("", "", None, None))[0] for row in rows}
        raw = {row: {c: v for c in COUNTER_BITS if isinstance(v := cols[c].get(row), int)} for row in rows}
        extras_raw, extras_meta = self._extras(profile, result.scalars, cols, result.tags)
        raw.update(extras_raw)
        bits = {**COUNTER_BITS, **extras_meta}
        if octets32:
            bits.update({hc: 32 for hc in OCTETS32_FOR.values()})
        exported = cache.state.update(uptime, raw, names, bits)
        if uptime is not None:
            cache.boot_time = anchor_boot_time(cache.boot_time, uptime, now)
        interfaces = self._interfaces(rows, static, cols, exported, uptime, cache.boot_time)
        extras = tuple(
            ExtraSample(metric, kind, idx, float(exported.get(row, {}).get(key, value)) if kind == "counter"
                        else float(value))
            for (row, key), (metric, kind, idx, value) in self._extra_values(profile, result.scalars, cols).items())
        return DeviceSample(device=device, up=True, error=None, duration=time.monotonic() - started,
                            timestamp=now, uptime_seconds=uptime / 100 if uptime is not None else None,
                            sys_name=_text(result.scalars.get("sysName")) or None,
                            interfaces=interfaces, extras=extras)

    @staticmethod
    def _interfaces(rows, static, cols, exported, uptime, boot_time) -> tuple[InterfaceSample, ...]:
        out = []
        used: set[str] = set()
        for row in sorted(rows, key=_index_arcs):
            index = _index_arcs(row)
            name, alias, if_type, speed = static.get(row, ("", "", None, None))
            label = name or f"if{'.'.join(map(str, index))}"
            if label in used:  # two rows with one name would collide as one series
                label = f"{label}#{'.'.join(map(str, index))}"
            used.add(label)
            admin = _int(cols["ifAdminStatus"].get(row))
            oper = _int(cols["ifOperStatus"].get(row))
            last = _int(cols["ifLastChange"].get(row))
            last_change = boot_time + last / 100 if uptime is not None and last is not None and last <= uptime \
                else None
            out.append(InterfaceSample(
                index=index[0] if len(index) == 1 else 0, name=label, alias=alias, if_type=if_type,
                speed_bps=speed * 1e6 if speed is not None else None,
                admin_up=None if admin is None else admin == 1, oper_up=None if oper is None else oper == 1,
                last_change=last_change, counters=MappingProxyType(exported.get(row, {}))))
        return tuple(out)

    def _extra_values(self, profile, scalars, cols) -> dict:
        """(state row, state key) -> (metric, kind, index text, raw value) for extra OIDs."""
        out = {}
        for extra in getattr(profile, "extra_oids", ()):
            key = f"extra:{extra.metric}"
            metric = f"wardops_snmp_{extra.metric}"
            if extra.table:
                for row, value in cols.get(key, {}).items():
                    if isinstance(value, int):
                        out[(b"extra:" + row, key)] = (metric, extra.type, ".".join(map(str, _index_arcs(row))), value)
            elif isinstance(scalars.get(key), int):
                out[(b"extra:", key)] = (metric, extra.type, "", scalars[key])
        return out

    def _extras(self, profile, scalars, cols, tags) -> tuple[dict, dict]:
        """Counter extras fed through the same wrap/reset state as interface counters; the wrap
        width follows the agent's type (Counter32 vs Counter64 or other)."""
        raw: dict[bytes, dict[str, int]] = {}
        bits = {}
        for (row, key), (_, kind, _, value) in self._extra_values(profile, scalars, cols).items():
            if kind == "counter":
                raw.setdefault(row, {})[key] = value
                bits[key] = 32 if tags.get(key) == ber.T_COUNTER32 else 64
        return raw, bits

