"""Where the devices come from: an inventory file (reloaded when it changes), a Prometheus file_sd
JSON file, or an HTTP SD URL (polled with ETag): the inventory service's, or any other server's (no
SNMP profiles next to it: ICMP only). Failures raise TargetError and the caller keeps the last good
set.

Everything read here may be hostile or broken (a compromised or misconfigured inventory service, a
proxy answering garbage): a fetch has an overall deadline and a size cap while streaming, the JSON
parse is bounded, an answer that would drop more than `inventory.max_drop_share` of the devices is
held, and SNMP secret references obey the exporter's secret policy. Any of these is a failed reload,
never an exception that ends the polling loop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from exporter.config import ExporterConfig, InventorySettings, SecretsSettings
from exporter.snmp.credentials import NO_POLICY, SecretPolicy, police_profiles
from inventory import InventoryError, load_inventory
from inventory.loader import inventory_from_data
from inventory.model import (
    NAME_RE,
    ROLES,
    SD_META_LABEL_PREFIX,
    SD_META_SITES,
    SD_META_SNMP,
    Device,
    Inventory,
    SnmpProfile,
    frozen_labels,
    shard_key,
    shard_of,
    sites_from_meta,
)
from inventory.secrets import Secret, SecretError

SD_PATH = "/api/v1/sd"
PROFILES_PATH = "/api/v1/snmp-profiles"


class TargetError(Exception):
    pass


def cut(text: str, limit: int = 200) -> str:
    """Plain text from an answer, cut to `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "...(cut)"


def short(value: object, limit: int = 80) -> str:
    """repr() of a value from an answer, cut to `limit` characters: error text stays bounded."""
    text = repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit])
    return text if len(text) <= limit + 2 else text[:limit] + "...(cut)"


class Source:
    """What FileSource and HttpSdSource share: bounded failures, the shrink hold, the secret policy.

    Subclasses implement `_poll(force) -> Inventory | None` and `describe()`.
    """

    trusted = True  # a local file is reviewed in git; the inventory service is a network peer

    def __init__(self):
        self.settings = InventorySettings()
        self.policy: SecretPolicy | None = None  # None: no policy configured
        self.refusals: dict[str, int] = {}  # profile -> refused references, counted per loaded answer
        self.held = 0  # 1 while an answer that drops too many devices is held
        self.held_removals = 0  # devices the held answer would remove
        self._in_use: Inventory | None = None  # the last inventory handed out
        self._held: tuple[Inventory, float, str] | None = None  # (answer, monotonic since, UTC since)
        self._accept_next = False
        self._warned_no_policy = False
        self.log = logging.getLogger("wardops.exporter")
        self.secrets_override: SecretsSettings | None = None  # --secrets.* flags win over the config file

    def configure(self, config: ExporterConfig) -> None:
        """Take (new) inventory settings and secret policy; a changed policy applies on the next load."""
        self.settings = config.inventory
        s = self.secrets_override or config.secrets
        self.policy = SecretPolicy(s.directory, s.env_prefix) if s.configured else None

    def accept_held(self) -> None:
        """The operator's `POST /-/reload?force=1`: apply the next answer even if it drops devices."""
        self._accept_next = True

    def poll(self, force: bool = False) -> Inventory | None:
        """A new Inventory, None when unchanged, TargetError for a failed (or held) reload."""
        try:
            inv = self._poll(force)
        except TargetError:
            raise
        except Exception as exc:  # e.g. RecursionError, MemoryError on hostile input: a failed reload
            raise TargetError(f"{self.describe()}: {exc.__class__.__name__}: {cut(str(exc))}") from None
        return self._guard(inv)

    def _poll(self, force: bool) -> Inventory | None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def _police(self, inv: Inventory) -> Inventory:
        policy = self.policy
        if policy is None:
            if self.trusted or not any(p.secrets() for p in inv.snmp_profiles.values()):
                return inv
            policy = NO_POLICY
            if not self._warned_no_policy:
                self._warned_no_policy = True
                self.log.warning('msg="no secrets policy configured: secret references of SNMP profiles from '
                                 'the inventory service are refused (set secrets.directory / secrets.env_prefix '
                                 'in the exporter config)" source=%s', self.describe())
        profiles, refusals = police_profiles(inv.snmp_profiles, policy)
        for profile, purpose, secret, reason in refusals:
            self.refusals[profile] = self.refusals.get(profile, 0) + 1
            self.log.error('msg="secret reference refused, devices with this profile get no SNMP" '
                           'profile=%s field=%s reference="%s" reason="%s"', profile, purpose,
                           f"{secret.kind}:{cut(secret.ref)}".replace('"', "'"), reason)
        if not refusals:
            return inv
        return Inventory(devices=inv.devices, snmp_profiles=profiles, classify=inv.classify,
                         maintenance=inv.maintenance, source=inv.source)

    def _guard(self, inv: Inventory | None) -> Inventory | None:
        """Hold an answer removing more than max_drop_share of the devices in use, until it persists for
        hold_time or the operator accepts it; everything else passes."""
        accept, self._accept_next = self._accept_next, False
        if inv is None:
            if self._held is None:
                return None
            inv = self._held[0]  # unchanged since: the same answer persists
        else:
            inv = self._police(inv)
        old = self._in_use.enabled_devices() if self._in_use is not None else ()
        if old:
            new_names = {d.name for d in inv.enabled_devices()}
            removed = sum(1 for d in old if d.name not in new_names)
            share = removed / len(old)
            if share > self.settings.max_drop_share and not accept:
                now = time.monotonic()
                if self._held is None or self._held[0] != inv:
                    self._held = (inv, now, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                held_for = now - self._held[1]
                if held_for < self.settings.hold_time:
                    self.held, self.held_removals = 1, removed
                    raise TargetError(
                        f"held: the new answer removes {removed} of {len(old)} devices ({share:.0%}, more than "
                        f"inventory.max_drop_share {self.settings.max_drop_share:.0%}); keeping the last good set "
                        f"until the same answer persists for inventory.hold_time {self.settings.hold_time:g}s "
                        f"(held since {self._held[2]}) or POST /-/reload?force=1")
                self.log.warning('msg="held inventory answer persisted, applying it" removed=%d of=%d held_s=%.0f',
                                 removed, len(old), held_for)
            elif share > self.settings.max_drop_share:
                self.log.warning('msg="operator accepted an inventory answer that removes devices" removed=%d of=%d',
                                 removed, len(old))
        self._held, self.held, self.held_removals = None, 0, 0
        self._in_use = inv
        return inv

    def self_samples(self) -> list[tuple[str, str, float]]:
        out = [("wardops_exporter_inventory_reload_held", "", self.held),
               ("wardops_exporter_inventory_held_removals", "", self.held_removals)]
        for profile, count in sorted(self.refusals.items()):
            out.append(("wardops_exporter_secret_refusals_total", f'{{profile="{profile}"}}', count))
        return out


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


class FileSource(Source):
    """An inventory YAML file, or a Prometheus file_sd JSON file (`[{"targets": [ip], "labels":
    {...}}]`, the HTTP SD answer's format: devices without SNMP profiles); `poll()` reloads when its
    mtime/size changed (or when forced)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._error = ""  # why the file at _stamp is invalid ("" = it loaded)

    def describe(self) -> str:
        return self.path

    def _poll(self, force: bool = False) -> Inventory | None:
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
        if is_file_sd(self.path):
            try:
                inv = self._load_file_sd()
            except TargetError as exc:
                self._error = str(exc)
                raise
            self._error = ""
            return inv
        try:
            inv = load_inventory(self.path)
        except InventoryError as exc:
            shown = "; ".join(str(p) for p in exc.problems[:5])
            more = f" (+{len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
            self._error = f"invalid inventory: {shown}{more}"
            raise TargetError(self._error) from None
        self._error = ""
        return inv


    def _load_file_sd(self) -> Inventory:
        try:
            with open(self.path, "rb") as f:
                body = f.read(self.settings.max_bytes + 1)
        except OSError as exc:
            raise TargetError(f"{self.path}: cannot read inventory: {exc.strerror}") from None
        if len(body) > self.settings.max_bytes:
            raise TargetError(f"{self.path}: larger than inventory.max_bytes {self.settings.max_bytes}")
        try:
            devices = devices_from_sd(parse_json(body, self.path))
        except TargetError as exc:
            text = str(exc)
            raise TargetError(text if text.startswith(self.path) else f"{self.path}: {text}") from None
        return Inventory(devices=devices, snmp_profiles=MappingProxyType({}), source=self.path)


def is_file_sd(path: str) -> bool:
    """A file_sd JSON file: named *.json, or its first non-blank byte opens a JSON list (an inventory
    YAML file is a mapping, `devices:` ...)."""
    if path.endswith(".json"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"[")


def profiles_url(sd_url: str) -> str:
    """<base>/api/v1/sd[?filters] -> <base>/api/v1/snmp-profiles (the SD URL's own base)."""
    parts = urlsplit(sd_url)
    base = parts.path.rstrip("/")
    base = base[: -len(SD_PATH)] if base.endswith(SD_PATH) else base.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, base + PROFILES_PATH, "", ""))


class HttpSdSource(Source):
    """GET the HTTP SD JSON and the SNMP profiles (references only) with If-None-Match; 304 means
    unchanged. Both must succeed for a new set: a failure of either keeps the last good inventory.
    A 404 for the profiles is a plain Prometheus HTTP SD server (NetBox's plugin, a static JSON
    behind nginx): no SNMP profiles, so its devices are probed by ICMP only (one info line says so)."""

    trusted = False
    CHUNK = 64 << 10

    def __init__(self, url: str, timeout: float | None = None, profiles: str | None = None,
                 token: Secret | None = None):
        super().__init__()
        self.url = url
        self.profiles_url = profiles or profiles_url(url)
        if timeout is not None:
            self.settings = InventorySettings(timeout=timeout)
        self.token = token  # read on every poll, so a rotated token file is picked up
        self._etags: dict[str, str | None] = {}
        self._devices: tuple[Device, ...] = ()
        self._profiles: Mapping[str, SnmpProfile] = MappingProxyType({})
        self._session = requests.Session()
        self.profiles_missing = False  # the last profiles answer was a 404

    def describe(self) -> str:
        return self.url

    def _get(self, url: str, force: bool, deadline: float) -> tuple[object, str | None] | None:
        """(JSON, ETag), None for 304, TargetError otherwise; 404 on the profiles URL: no profiles.

        `deadline` (monotonic) bounds the whole exchange, body included: `requests`' own timeout bounds
        each socket operation only, so a server sending a byte every 2 s would hold it for ever. The body
        is read in chunks of at most 64 KiB (read1: whatever has arrived, never waiting for a full chunk),
        the deadline and inventory.max_bytes are checked between them.
        """
        settings = self.settings
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if self.token is not None:
            try:
                headers["Authorization"] = f"Bearer {self.token.resolve()}"
            except SecretError as exc:  # names the reference, never the value
                raise TargetError(f"{url}: bearer token: {exc}") from None
        if self._etags.get(url) and not force:
            headers["If-None-Match"] = self._etags[url]
        # Each socket operation may take at most a quarter of the deadline (at least 0.5 s), so the whole
        # exchange ends within about 1.25 x inventory.timeout even when a read starts just before it.
        per_op = min(settings.timeout, max(0.5, settings.timeout / 4))
        late = f"{url}: no complete answer within inventory.timeout {settings.timeout:g}s"
        if time.monotonic() >= deadline:
            raise TargetError(late)
        try:
            resp = self._session.get(url, headers=headers, timeout=(per_op, per_op), stream=True)
        except requests.RequestException as exc:
            raise TargetError(f"{url}: {exc.__class__.__name__}: {cut(str(exc))}") from None
        with resp:
            if resp.status_code == 304:
                return None
            if resp.status_code == 404 and url == self.profiles_url:  # a plain SD server without profiles
                if not self.profiles_missing:  # once, and again only after profiles were served meanwhile
                    self.log.info('msg="no SNMP profiles next to the SD URL (HTTP 404): ICMP only" url=%s', url)
                self.profiles_missing = True
                return {"items": []}, None
            if resp.status_code != 200:
                raise TargetError(f"{url}: HTTP {resp.status_code}")
            if url == self.profiles_url:
                self.profiles_missing = False
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > settings.max_bytes:
                raise TargetError(f"{url}: answer of {int(length)} bytes is larger than inventory.max_bytes "
                                  f"{settings.max_bytes}")
            chunks, total = [], 0
            try:
                while True:
                    if time.monotonic() >= deadline:
                        raise TargetError(late)  # no byte count: one log line per distinct failure
                    chunk = resp.raw.read1(self.CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > settings.max_bytes:
                        raise TargetError(f"{url}: answer larger than inventory.max_bytes {settings.max_bytes}")
                    chunks.append(chunk)
            except TargetError:
                raise
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise TargetError(f"{url}: reading the answer: {exc.__class__.__name__}: "
                                  f"{cut(str(exc))}") from None
            etag = resp.headers.get("ETag")
        body = b"".join(chunks)
        del chunks
        return parse_json(body, url), etag

    def _poll(self, force: bool = False) -> Inventory | None:
        deadline = time.monotonic() + self.settings.timeout  # both requests share one deadline
        sd = self._get(self.url, force, deadline)
        profiles = self._get(self.profiles_url, force, deadline)
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


def parse_json(body: bytes, where: str) -> object:
    """json.loads with every failure of hostile input as TargetError: `[[[[...` 100,000 deep raises
    RecursionError (not ValueError) in the C parser."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        text = "nested too deeply" if isinstance(exc, RecursionError) else short(str(exc), 200)
        raise TargetError(f"{where}: not JSON: {text}") from None


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
    """Devices from HTTP SD target groups; TargetError lists every problem ($[i].labels.x).

    Prometheus SD label values are strings: any other JSON type is a problem, never a crash later.
    """
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
        bad = [k for k, v in labels.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            problems.append(f"{where}.labels.{cut(str(bad[0]), 60)}: label values must be strings")
            continue
        name = labels.get("device")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"{where}.labels.device: missing or invalid device name {short(name)}")
            continue
        if name in names:
            problems.append(f"{where}.labels.device: duplicate device {short(name)}")
            continue
        if len(group["targets"]) != 1 or not isinstance(group["targets"][0], str):
            problems.append(f"{where}.targets: want exactly one IP string for device {short(name)}")
            continue
        try:
            ip = ipaddress.ip_address(group["targets"][0]).compressed
        except ValueError:
            problems.append(f"{where}.targets[0]: {short(group['targets'][0])} is not an IP address")
            continue
        role = labels.get("role", "other")
        if role not in ROLES:
            problems.append(f"{where}.labels.role: unknown role {short(role)} for device {short(name)}")
            continue
        missing = [k for k in ("region", "branch") if not isinstance(labels.get(k), str)]
        if missing:
            problems.append(f"{where}.labels: device {short(name)} lacks {', '.join(missing)}")
            continue
        extra = {k[len(SD_META_LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(SD_META_LABEL_PREFIX)}
        sites = sites_from_meta(labels.get(SD_META_SITES, ""))
        if any(not NAME_RE.match(s) for s in sites):
            problems.append(f"{where}.labels.{SD_META_SITES}: invalid site names {short(labels[SD_META_SITES])}")
            continue
        names.add(name)
        devices.append(Device(name=name, ip=ip, region=labels["region"], branch=labels["branch"], role=role,
                              isp=labels.get("isp") or None, snmp=labels.get(SD_META_SNMP),
                              labels=frozen_labels(extra), sites=sites, location=where))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise TargetError(f"invalid HTTP SD: {shown}")
    return tuple(devices)


def open_source(spec: str, timeout: float = 10.0, token_file: str | None = None) -> FileSource | HttpSdSource:
    if spec.startswith(("http://", "https://")):
        return HttpSdSource(spec, timeout, token=Secret("file", token_file) if token_file else None)
    return FileSource(spec)


EMPTY_INVENTORY = Inventory(snmp_profiles=MappingProxyType({}))
