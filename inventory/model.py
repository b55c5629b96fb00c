"""Typed, immutable inventory model shared by the loader, the service, the exporter and the generators."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inventory.secrets import Secret

ROLES = ("isp", "router", "switch", "firewall", "atm", "server", "other")
DEFAULT_ROLE = "other"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
LABEL_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
# Labels the exporter sets itself; an extra label with one of these names would clash.
RESERVED_LABELS = frozenset({"device", "ip", "role", "region", "branch", "isp", "job", "instance"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SNMP_VERSIONS = ("1", "2c", "3")
SNMP_AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
SNMP_PRIV_PROTOCOLS = ("DES", "AES", "AES192", "AES256")

EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


def frozen_labels(labels: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only, key-sorted copy, so equal label sets compare and dump identically."""
    if not labels:
        return EMPTY_LABELS
    return MappingProxyType(dict(sorted(labels.items())))


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    ip: str  # canonical text form (ipaddress.ip_address(...).compressed)
    region: str
    branch: str
    role: str = DEFAULT_ROLE
    isp: str | None = None
    snmp: str | None = None
    enabled: bool = True
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY_LABELS)
    # The probe sites (settings `sites:` names) whose exporters probe this device; empty: every site.
    sites: tuple[str, ...] = ()
    # Where the device was defined ("file:line" or a JSON path); for messages only.
    location: str = field(default="", compare=False)

    def probed_from(self, site: str | None) -> bool:
        """Whether the exporter of probe site `site` probes this device (None: an exporter started
        without a site name probes everything, as with one site)."""
        return site is None or not self.sites or site in self.sites

    @property
    def ip_version(self) -> int:
        return ipaddress.ip_address(self.ip).version

    def target_labels(self) -> dict[str, str]:
        """The identifying labels every per-device series carries (metric contract)."""
        out = {
            "device": self.name,
            "ip": self.ip,
            "role": self.role,
            "region": self.region,
            "branch": self.branch,
        }
        if self.role == "isp":
            out["isp"] = self.isp or ""
        return out


@dataclass(frozen=True, slots=True)
class ExtraOid:
    """An extra object a profile polls besides the IF-MIB defaults, exported as
    `wardops_snmp_<metric>` (a table adds an `index` label with the row index)."""

    metric: str
    oid: tuple[int, ...]
    type: str = "gauge"  # one of EXTRA_OID_TYPES
    table: bool = False  # False: a scalar instance ending in .0


EXTRA_OID_TYPES = ("gauge", "counter")


@dataclass(frozen=True, slots=True)
class SnmpProfile:
    name: str
    version: str  # one of SNMP_VERSIONS
    community: Secret | None = None  # v1/v2c
    username: str | None = None  # v3
    auth_protocol: str | None = None
    auth_key: Secret | None = None
    priv_protocol: str | None = None
    priv_key: Secret | None = None
    port: int = 161
    timeout: float = 2.0  # seconds per request
    retries: int = 1
    max_repetitions: int = 25
    extra_oids: tuple[ExtraOid, ...] = ()

    @property
    def security_level(self) -> str | None:
        if self.version != "3":
            return None
        if self.priv_protocol:
            return "authPriv"
        if self.auth_protocol:
            return "authNoPriv"
        return "noAuthNoPriv"

    def secrets(self) -> dict[str, Secret]:
        found = {"community": self.community, "auth_key": self.auth_key, "priv_key": self.priv_key}
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Match:
    """All given conditions must hold (logical AND)."""

    ip_last_octet: int | None = None
    ip_in: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    name_regex: re.Pattern[str] | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY_LABELS)
    region: str | None = None
    branch: str | None = None

    def matches(self, name: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                region: str | None, branch: str | None, labels: Mapping[str, str]) -> bool:
        if self.ip_last_octet is not None:
            if int(ip) & 0xFF != self.ip_last_octet:  # last byte, IPv4 and IPv6 alike
                return False
        if self.ip_in and not any(ip in net for net in self.ip_in):
            return False
        if self.name_regex is not None and not self.name_regex.search(name):
            return False
        if self.region is not None and region != self.region:
            return False
        if self.branch is not None and branch != self.branch:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class ClassifyRule:
    match: Match
    set: Mapping[str, object]  # subset of role/isp/region/branch/snmp/enabled/labels
    location: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    name: str
    weekdays: tuple[str, ...]  # empty = every day
    times: tuple[tuple[str, str], ...]  # ("01:00", "03:00"); empty = all day
    timezone: str = "UTC"
    branches: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    location: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Upstream:
    """A node of the network above branches (a region core, a hub, a data-centre link): when every
    branch behind it is dark, the outage pages once, here, instead of once per branch.

    What sits behind it: every branch of `regions`, the `branches` named, and everything behind
    the nodes whose `upstream` is this one. `devices` are the node's own probed devices (e.g. the
    core router); they are counted in the page and their own alerts are symptoms of it.
    """

    name: str
    devices: tuple[str, ...] = ()
    upstream: str | None = None  # parent node; None = directly behind the probe site
    regions: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    location: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Topology:
    """Optional `topology:` section: what branches are reached through. A branch's ISP uplinks are
    its enabled `role: isp` devices; the probe site sits above everything (exporter canaries)."""

    upstreams: tuple[Upstream, ...] = ()
    # Without explicit upstreams nothing says which branches share a path, except their region:
    # every region with two or more branches then counts as one implicit upstream (`RegionDown`).
    # False turns that off (a region whose branches have independent paths).
    region_upstreams: bool = True
    location: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Inventory:
    devices: tuple[Device, ...] = ()
    snmp_profiles: Mapping[str, SnmpProfile] = field(default_factory=lambda: MappingProxyType({}))
    classify: tuple[ClassifyRule, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    topology: Topology = field(default_factory=Topology)
    source: str = field(default="", compare=False)

    def enabled_devices(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.enabled)

    def by_name(self) -> dict[str, Device]:
        return {d.name: d for d in self.devices}

    def counts(self, attr: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.devices:
            key = getattr(d, attr)
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


def ip_text_problem(text: object) -> str | None:
    """Why an address text must not be stored although it parses, or None (also None when it does not
    parse: the schema reports that). `::ffff:198.18.200.1` is 198.18.200.1 written as IPv6: stored
    beside it, the same host would be two devices (probed twice, deduplicated by nothing)."""
    if not isinstance(text, str):
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return f"{text} is an IPv4-mapped IPv6 address: write the IPv4 address {addr.ipv4_mapped}"
    return None


def label_value_problem(value: object) -> str | None:
    """Why a label value is unusable, or None. Values go into Prometheus labels, alert texts and
    chat messages: control characters (NUL, CR, LF, tab) break those, and an empty value or one with
    edge spaces looks like another value (or like no label at all, to Prometheus)."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must not contain control characters (NUL, CR, LF, tab, ...)"
    if value != value.strip():
        return "must not start or end with spaces"
    return None


def shard_key(device: Device) -> str:
    """What a shard is cut by: the branch, so one exporter sees a whole branch (its uplinks and
    the devices behind them), which the branch verdict and the confirmation burst need."""
    return f"{device.region}\x00{device.branch}"


def shard_of(key: str, shards: int) -> int:
    """Stable shard of `shard_key(device)` for `--shard i/n` and SD `shard=i/n` (same on every
    host and run)."""
    import zlib

    return zlib.crc32(key.encode()) % shards


# HTTP service discovery (Prometheus http_sd_configs) contract, shared by the inventory service
# (producer) and the exporter's `--inventory URL` (consumer): one target group per enabled device,
# targets [ip], labels = Device.target_labels() plus these meta labels.
SD_META_SNMP = "__meta_wardops_snmp_profile"  # SNMP profile name, absent without SNMP
SD_META_LABEL_PREFIX = "__meta_wardops_label_"  # + extra label name -> value
# The device's probe sites, comma-separated with a comma on each side (",dc1,dc2,", so a relabel
# regex `.*,dc1,.*` matches one name exactly, as Prometheus' Consul SD writes tags); absent: every site.
SD_META_SITES = "__meta_wardops_sites"


def sites_meta(sites: tuple[str, ...]) -> str:
    return "," + ",".join(sites) + ","


def sites_from_meta(text: str) -> tuple[str, ...]:
    return tuple(s for s in text.split(",") if s)
