"""Where the devices come from: an inventory file (reloaded when it changes) or the inventory
service's HTTP SD URL (polled with ETag). Failures raise TargetError and the caller keeps the last
good set."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from types import MappingProxyType

import requests

from inventory import InventoryError, load_inventory
from inventory.model import (
    NAME_RE,
    ROLES,
    SD_META_LABEL_PREFIX,
    SD_META_SNMP,
    Device,
    Inventory,
    frozen_labels,
    shard_of,
)


class TargetError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard must look like i/n (e.g. 0/2), got {text!r}") from None
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"--shard {text}: need n >= 1 and 0 <= i < n")
        return cls(i, n)

    def select(self, devices: tuple[Device, ...]) -> tuple[Device, ...]:
        return tuple(d for d in devices if shard_of(d.name, self.count) == self.index)


class FileSource:
    """An inventory YAML file; `poll()` reloads when its mtime/size changed (or when forced)."""

    def __init__(self, path: str):
        self.path = path
        self._stamp: tuple[int, int] | None = None

    def describe(self) -> str:
        return self.path

    def poll(self, force: bool = False) -> Inventory | None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise TargetError(f"{self.path}: cannot read inventory: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if not force and stamp == self._stamp:
            return None
        try:
            inv = load_inventory(self.path)
        except InventoryError as exc:
            self._stamp = stamp  # do not re-parse the same broken file every poll
            shown = "; ".join(str(p) for p in exc.problems[:5])
            more = f" (+{len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
            raise TargetError(f"invalid inventory: {shown}{more}") from None
        self._stamp = stamp
        return inv


class HttpSdSource:
    """GET the HTTP SD JSON with If-None-Match; 304 means unchanged."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout
        self._etag: str | None = None
        self._session = requests.Session()

    def describe(self) -> str:
        return self.url

    def poll(self, force: bool = False) -> Inventory | None:
        headers = {"Accept": "application/json"}
        if self._etag and not force:
            headers["If-None-Match"] = self._etag
        try:
            resp = self._session.get(self.url, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TargetError(f"{self.url}: {exc.__class__.__name__}: {exc}") from None
        if resp.status_code == 304:
            return None
        if resp.status_code != 200:
            raise TargetError(f"{self.url}: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise TargetError(f"{self.url}: not JSON: {exc}") from None
        inv = Inventory(devices=devices_from_sd(data), source=self.url)
        self._etag = resp.headers.get("ETag")
        return inv


def devices_from_sd(data: object) -> tuple[Device, ...]:
    """Devices from HTTP SD target groups; TargetError lists every problem ($[i].labels.x)."""
    problems: list[str] = []
    if not isinstance(data, list):
        raise TargetError("$: HTTP SD must be a JSON list of target groups")
    devices = []
    names: set[str] = set()
    for i, group in enumerate(data):
        where = f"$[{i}]"
        if not isinstance(group, dict) or not isinstance(group.get("targets"), list) \
                or not isinstance(group.get("labels", {}), dict):
            problems.append(f"{where}: want {{\"targets\": [ip], \"labels\": {{...}}}}")
            continue
        labels = group.get("labels", {})
        name = labels.get("device")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"{where}.labels.device: missing or invalid device name {name!r}")
            continue
        if name in names:
            problems.append(f"{where}.labels.device: duplicate device {name!r}")
            continue
        if len(group["targets"]) != 1:
            problems.append(f"{where}.targets: want exactly one IP for device {name!r}")
            continue
        try:
            ip = ipaddress.ip_address(group["targets"][0]).compressed
        except (ValueError, TypeError):
            problems.append(f"{where}.targets[0]: {group['targets'][0]!r} is not an IP address")
            continue
        role = labels.get("role", "other")
        if role not in ROLES:
            problems.append(f"{where}.labels.role: unknown role {role!r} for device {name!r}")
            continue
        missing = [k for k in ("region", "branch") if not isinstance(labels.get(k), str)]
        if missing:
            problems.append(f"{where}.labels: device {name!r} lacks {', '.join(missing)}")
            continue
        extra = {k[len(SD_META_LABEL_PREFIX):]: str(v) for k, v in labels.items()
                 if k.startswith(SD_META_LABEL_PREFIX)}
        names.add(name)
        devices.append(Device(name=name, ip=ip, region=labels["region"], branch=labels["branch"], role=role,
                              isp=labels.get("isp") or None, snmp=labels.get(SD_META_SNMP),
                              labels=frozen_labels(extra), location=where))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise TargetError(f"invalid HTTP SD: {shown}")
    return tuple(devices)


def open_source(spec: str, timeout: float = 10.0) -> FileSource | HttpSdSource:
    if spec.startswith(("http://", "https://")):
        return HttpSdSource(spec, timeout)
    return FileSource(spec)


EMPTY_INVENTORY = Inventory(snmp_profiles=MappingProxyType({}))
