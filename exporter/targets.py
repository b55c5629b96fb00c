"""Where the devices come from: an inventory file (reloaded when it changes) or the inventory
service's HTTP SD URL (polled with ETag). Failures raise TargetError and the caller keeps the last
good set."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

import requests

from inventory import InventoryError, load_inventory
from inventory.loader import inventory_from_data
from inventory.model import (
    NAME_RE,
    ROLES,
    SD_META_LABEL_PREFIX,
    SD_META_SNMP,
    Device,
    Inventory,
    SnmpProfile,
    frozen_labels,
    shard_key,
    shard_of,
)
from inventory.secrets import Secret, SecretError

SD_PATH = "/api/v1/sd"
PROFILES_PATH = "/api/v1/snmp-profiles"


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
        return tuple(d for d in devices if shard_of(shard_key(d), self.count) == self.index)


class FileSource:
    """An inventory YAML file; `poll()` reloads when its mtime/size changed (or when forced)."""

    def __init__(self, path: str):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._error = ""  # why the file at _stamp is invalid ("" = it loaded)

    def describe(self) -> str:
        return self.path

    def poll(self, force: bool = False) -> Inventory | None:
        """A new Inventory, None when unchanged since the last GOOD load, TargetError otherwise."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise TargetError(f"{self.path}: cannot read inventory: {exc.strerror}") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if not force and stamp == self._stamp:
            if self._error:  # the same broken file: still failing, without parsing it again
                raise TargetError(self._error)
            return None
        self._stamp = stamp
        try:
            inv = load_inventory(self.path)
        except InventoryError as exc:
            shown = "; ".join(str(p) for p in exc.problems[:5])
            more = f" (+{len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
            self._error = f"invalid inventory: {shown}{more}"
            raise TargetError(self._error) from None
        self._error = ""
        return inv


def profiles_url(sd_url: str) -> str:
    """<base>/api/v1/sd[?filters] -> <base>/api/v1/snmp-profiles (the SD URL's own base)."""
    parts = urlsplit(sd_url)
    base = parts.path.rstrip("/")
    base = base[: -len(SD_PATH)] if base.endswith(SD_PATH) else base.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, base + PROFILES_PATH, "", ""))


class HttpSdSource:
    """GET the HTTP SD JSON and the SNMP profiles (references only) with If-None-Match; 304 means
    unchanged. Both must succeed for a new set: a failure of either keeps the last good inventory."""

    def __init__(self, url: str, timeout: float = 10.0, profiles: str | None = None,
                 token: Secret | None = None):
        self.url = url
        self.profiles_url = profiles or profiles_url(url)
        self.timeout = timeout
        self.token = token  # read on every poll, so a rotated token file is picked up
        self._etags: dict[str, str | None] = {}
        self._devices: tuple[Device, ...] = ()
        self._profiles: Mapping[str, SnmpProfile] = MappingProxyType({})
        self._session = requests.Session()

    def describe(self) -> str:
        return self.url

    def _get(self, url: str, force: bool) -> tuple[object, str | None] | None:
        """(JSON, ETag), None for 304, TargetError otherwise; 404 on the profiles URL: no profiles."""
        headers = {"Accept": "application/json"}
        if self.token is not None:
            try:
                headers["Authorization"] = f"Bearer {self.token.resolve()}"
            except SecretError as exc:  # names the reference, never the value
                raise TargetError(f"{url}: bearer token: {exc}") from None
        if self._etags.get(url) and not force:
            headers["If-None-Match"] = self._etags[url]
        try:
            resp = self._session.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TargetError(f"{url}: {exc.__class__.__name__}: {exc}") from None
        if resp.status_code == 304:
            return None
        if resp.status_code == 404 and url == self.profiles_url:  # a plain SD server without profiles
            return {"items": []}, None
        if resp.status_code != 200:
            raise TargetError(f"{url}: HTTP {resp.status_code}")
        try:
            return resp.json(), resp.headers.get("ETag")
        except ValueError as exc:
            raise TargetError(f"{url}: not JSON: {exc}") from None

    def poll(self, force: bool = False) -> Inventory | None:
        sd = self._get(self.url, force)
        profiles = self._get(self.profiles_url, force)
        if sd is None and profiles is None:
            return None
        devices = devices_from_sd(sd[0]) if sd is not None else self._devices
        snmp_profiles = profiles_from_api(profiles[0], self.profiles_url) if profiles is not None else self._profiles
        if sd is None and dict(snmp_profiles) == dict(self._profiles):
            return None  # the service sends no ETag for profiles: compare the content instead
        # commit only now: a failure above leaves the ETags as they were, so the next poll refetches
        if sd is not None:
            self._devices, self._etags[self.url] = devices, sd[1]
        if profiles is not None:
            self._profiles, self._etags[self.profiles_url] = snmp_profiles, profiles[1]
        return Inventory(devices=devices, snmp_profiles=snmp_profiles, source=self.url)


def profiles_from_api(data: object, url: str) -> Mapping[str, SnmpProfile]:
    """`{"items": [{"name": ..., **profile fields}]}` -> profiles, validated by the inventory loader."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        raise TargetError(f"{url}: want {{\"items\": [{{\"name\": ..., ...}}]}}")
    plain = {"snmp_profiles": {i["name"]: {k: v for k, v in i.items() if k != "name"} for i in items}}
    try:
        return inventory_from_data(plain, url).snmp_profiles
    except InventoryError as exc:
        shown = "; ".join(str(p) for p in exc.problems[:5])
        raise TargetError(f"{url}: invalid snmp profiles: {shown}") from None


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


def open_source(spec: str, timeout: float = 10.0, token_file: str | None = None) -> FileSource | HttpSdSource:
    if spec.startswith(("http://", "https://")):
        return HttpSdSource(spec, timeout, token=Secret("file", token_file) if token_file else None)
    return FileSource(spec)


EMPTY_INVENTORY = Inventory(snmp_profiles=MappingProxyType({}))
