"""Exporter configuration (`--config.file`): typed, defaulted, strictly validated.

Unknown keys are errors; every problem is reported at once with file:line. Defaults live next to
the types. Durations are numbers of seconds or strings like "500ms", "2s", "1m".

Default policies and why (1 % random packet loss q = 0.01, independent per packet):
- isp: every 0.5 s, 3 packets 50 ms apart, 300 ms timeout, DOWN after 2 failed rounds, UP after 2
  good. A round fails only if all 3 packets are lost: q^3 = 1e-6; a false DOWN needs 2 in a row:
  1e-12 per round, x 63 M rounds/year = 6.3e-5 per device-year. A round takes at most
  2 x 50 ms + 300 ms = 0.4 s, leaving 0.1 s of the interval for the send bursts and the loop's
  other work (a round longer than its interval skips the next start: with 0.45 s, 9 of 59 rounds
  overran at 10,000 devices with branches going dark). Worst-case detection of an uplink going
  dark right after a good round: 2 rounds later + 0.4 s = 1.4 s.
- default: every 1 s, 3 packets 100 ms apart, 600 ms timeout, DOWN after 2 failed rounds, UP after
  2. q^3 = 1e-6 per round, 2 in a row 1e-12, x 31.5 M rounds/year = 3.2e-5 per device-year (one
  false DOWN in ~3 years across 10,000 devices). At most 0.8 s per round: 0.2 s left for sending
  3 waves to ~9,000 devices (with a 0.7 s timeout such rounds took 0.97 s on a loaded machine and
  15 of 30 overran). Worst-case detection: 2 x 1 s + 0.8 s = 2.8 s.
Both need 6 lost packets in a row for a false DOWN, so the ICMP confirmation burst (the fastest
policy's rounds for a branch's other devices) judges them by the same evidence as their own policy.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inventory.errors import ConfigError, describe_value, quote
from inventory.located import read_yaml
from inventory.model import ROLES
from inventory.strict import INVALID, Checker, format_duration, read_config_file

MODES = ("auto", "unprivileged", "raw")
_ENV_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
DEFAULT_POLICY = "default"
DEFAULT_POLICY_LABEL = "probe_policy"


class ExporterConfigError(ConfigError):
    """The exporter config is invalid (`ConfigError`, the kit's base, catches it too)."""


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    interval: float  # seconds between round starts
    packets: int  # echo requests per device per round
    spacing: float  # seconds between a device's packets in one round
    timeout: float  # seconds to wait for each reply
    down_after: int  # consecutive failed rounds before DOWN
    up_after: int  # consecutive good rounds before UP (from DOWN)

    @property
    def busy(self) -> float:
        """Longest a round can take (the last wave's send burst not counted)."""
        return self.spacing * (self.packets - 1) + self.timeout


BUILTIN_POLICIES: Mapping[str, Policy] = MappingProxyType({
    "isp": Policy("isp", interval=0.5, packets=3, spacing=0.05, timeout=0.3, down_after=2, up_after=2),
    "default": Policy("default", interval=1.0, packets=3, spacing=0.1, timeout=0.6, down_after=2, up_after=2),
})
POLICY_KEYS = ("interval", "packets", "spacing", "timeout", "down_after", "up_after")


@dataclass(frozen=True, slots=True)
class IcmpSettings:
    mode: str = "auto"
    source_ipv4: str | None = None
    source_ipv6: str | None = None
    receive_buffer: int = 8 << 20
    burst: int = 64  # sends between two reads of the reply queue


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """/probe: which ad-hoc addresses outside the inventory may be probed."""

    allowed_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class InventorySettings:
    poll_interval: float = 5.0  # file mtime check / HTTP SD poll
    # Overall deadline of one HTTP SD fetch (SD list + SNMP profiles, body included), not per read:
    # a server dripping a byte every 2 s must not freeze polling.
    timeout: float = 10.0
    # Largest HTTP SD / profiles body read (bytes, counted while streaming): 10,000 devices are ~3 MB.
    max_bytes: int = 64 << 20
    # A reload removing more than this share of the devices in use is held (0.5 = half).
    max_drop_share: float = 0.5
    # ...and applied once the same answer persists this long (seconds), or on POST /-/reload?force=1.
    hold_time: float = 300.0


@dataclass(frozen=True, slots=True)
class SecretsSettings:
    """Where secret references of SNMP profiles may point (set on the exporter host, never by the
    inventory). Without it, references from an inventory service are refused; a local file inventory
    resolves as before."""

    directory: str | None = None  # community_file/auth_key_file/... must resolve inside it
    env_prefix: str | None = None  # community_env/... must start with it (e.g. WARDOPS_)

    @property
    def configured(self) -> bool:
        return self.directory is not None or self.env_prefix is not None


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    """SNMP polling of inventory devices with an `snmp` profile (exporter/snmp/)."""

    enabled: bool = True
    interval: float = 60.0  # round start to round start
    concurrency: int = 64  # devices polled at once
    static_every: int = 10  # re-walk names/aliases/types/speeds every Nth poll of a device
    deadline: float | None = None  # per-device budget; None: min(interval, 8 x timeout x (retries + 1))


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """The probe site this exporter stands in. Canaries are addresses on the site's own path (its
    gateway, its upstream router): probed with the fastest policy and exported as
    wardops_probe_site_canary_up, so a site that loses its network is one page, not one per branch."""

    canaries: tuple[str, ...] = ()  # canonical IP literals
    # The site's name, as in the generator settings' `sites:` (`--site` wins): the exporter probes
    # only the devices whose inventory `sites:` include it (and those naming none). None: every
    # device, as with one site; wardops_exporter_site_info then shows an empty exporter_site.
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    policies: Mapping[str, Policy] = field(default_factory=lambda: BUILTIN_POLICIES)
    role_policies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({"isp": "isp"}))
    default_policy: str = DEFAULT_POLICY
    policy_label: str = DEFAULT_POLICY_LABEL
    icmp: IcmpSettings = field(default_factory=IcmpSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    inventory: InventorySettings = field(default_factory=InventorySettings)
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    source: str = field(default="", compare=False)

    def policy_for(self, role: str, labels: Mapping[str, str]) -> Policy:
        """Device label `policy_label` wins, then the role mapping, then the default policy.

        An unknown policy name in a label falls back (and is reported by `unknown_policy_labels`).
        """
        name = labels.get(self.policy_label)
        if name is None or name not in self.policies:
            name = self.role_policies.get(role, self.default_policy)
        return self.policies[name]


def _keys(cls, *skip: str) -> tuple[str, ...]:
    """The keys a section accepts: its dataclass fields (so a new field is a new key, once)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in (*skip, "source"))


TOP_KEYS = _keys(ExporterConfig)
POLICY_KEYS = _keys(Policy, "name")
_DEFAULTS = ExporterConfig()


def load_config(path: str | None) -> ExporterConfig:
    """The built-in defaults without a file; ExporterConfigError lists every problem otherwise."""
    if path is None:
        return _DEFAULTS
    return loads_config(read_config_file(path, ExporterConfigError, "config"), path)


def loads_config(text: str, source: str = "<config>") -> ExporterConfig:
    data, locate = read_yaml(text, source, ExporterConfigError)
    return build_config(data, Checker(locate), source)


def build_config(data: object, chk: Checker, source: str = "") -> ExporterConfig:
    top = chk.mapping(data, (), TOP_KEYS)
    if top is None:
        chk.raise_if_any(ExporterConfigError)
    policies = _policies(chk, top.get("policies"))
    kw: dict = {"policies": MappingProxyType(policies)}
    if "default_policy" in top:
        name = chk.name(top["default_policy"], ("default_policy",), "a policy name")
        if name is not INVALID:
            kw["default_policy"] = name
            if name not in policies:
                chk.error(("default_policy",), f"unknown policy {quote(name)} (defined: {', '.join(policies)})")
    kw["role_policies"] = MappingProxyType(_role_policies(chk, top.get("role_policies"), policies))
    if "policy_label" in top:
        label = chk.label_name(top["policy_label"], ("policy_label",))
        if label is not INVALID:
            kw["policy_label"] = label
    kw["icmp"] = _icmp(chk, top.get("icmp"))
    for key, cls, parsers in (
        ("probe", ProbeSettings, {"allowed_cidrs": lambda v, p: _cidrs(chk, v, p),
                                  "timeout": lambda v, p: chk.seconds(v, p, 0.0, 60)}),
        ("inventory", InventorySettings, {
            "poll_interval": lambda v, p: chk.seconds(v, p, 0.1, 3600),
            "timeout": lambda v, p: chk.seconds(v, p, 0.0, 300),
            "max_bytes": lambda v, p: chk.integer(v, p, 1024, 1 << 34),
            "max_drop_share": lambda v, p: chk.number(v, p, 0, 1),  # 1: never hold
            "hold_time": lambda v, p: chk.seconds(v, p, 0.0, 7 * 86400, inclusive=True)}),
        ("site", SiteSettings, {"canaries": lambda v, p: _canaries(chk, v, p),
                                "name": lambda v, p: chk.name(v, p, "a probe site name")}),
        ("secrets", SecretsSettings, {"directory": lambda v, p: _absolute_dir(chk, v, p),
                                      "env_prefix": lambda v, p: _env_prefix(chk, v, p)}),
    ):
        m = chk.mapping(top.get(key), (key,), _keys(cls))
        kw[key] = chk.build(cls, m or {}, (key,), **parsers)
    kw["snmp"] = _snmp(chk, top.get("snmp"))
    chk.raise_if_any(ExporterConfigError)
    return ExporterConfig(source=source, **kw)


def _policies(chk: Checker, value) -> dict[str, Policy]:
    """The built-in policies, overridden field by field; a new policy starts from `default`."""
    out = dict(BUILTIN_POLICIES)
    path = ("policies",)
    if value is None:
        return out
    if not isinstance(value, dict):
        chk.error(path, f"must be a mapping of policy name to settings, got {describe_value(value)}")
        return out
    for name, raw in value.items():
        p = path + (name,)
        if chk.name(name, p, "a policy name") is INVALID:
            continue
        m = chk.mapping(raw, p, POLICY_KEYS)
        if m is None:
            continue
        before = chk.count()
        policy = chk.build(Policy, m, p, base=dataclasses.replace(
            BUILTIN_POLICIES.get(name, BUILTIN_POLICIES[DEFAULT_POLICY]), name=name),
            interval=lambda v, q: chk.seconds(v, q, 0.05, 3600),
            packets=lambda v, q: chk.integer(v, q, 1, 20),
            spacing=lambda v, q: chk.seconds(v, q, 0.0, 60, inclusive=True),
            timeout=lambda v, q: chk.seconds(v, q, 0.0, 60),
            down_after=lambda v, q: chk.integer(v, q, 1, 100),
            up_after=lambda v, q: chk.integer(v, q, 1, 100))
        if chk.count() == before and policy.busy > policy.interval:
            chk.error(p, f"a round needs spacing x (packets - 1) + timeout = {policy.busy:g}s, "
                         f"more than its interval {policy.interval:g}s")
        out[name] = policy
    return out


def _role_policies(chk: Checker, value, policies) -> dict[str, str]:
    out = dict(_DEFAULTS.role_policies)
    path = ("role_policies",)
    if value is None:
        return out
    if not isinstance(value, dict):
        chk.error(path, f"must be a mapping of role to policy name, got {describe_value(value)}")
        return out
    for role, name in value.items():
        p = path + (role,)
        if role not in ROLES:
            chk.error(p, f"unknown role {quote(role)} (one of {', '.join(ROLES)})")
        elif not isinstance(name, str) or name not in policies:
            chk.error(p, f"unknown policy {quote(name)} (defined: {', '.join(policies)})")
        else:
            out[role] = name
    return out


def _icmp(chk: Checker, value) -> IcmpSettings:
    path = ("icmp",)
    m = chk.mapping(value, path, _keys(IcmpSettings)) or {}

    def source(version: int):
        def parse(raw, p):
            if raw is None:
                return None
            try:
                addr = ipaddress.ip_address(raw) if isinstance(raw, str) else None
            except ValueError:
                addr = None
            if addr is None or addr.version != version:
                chk.error(p, f"must be an IPv{version} address, got {describe_value(raw)}")
                return INVALID
            return addr.compressed
        return parse

    return chk.build(IcmpSettings, m, path,
                     mode=lambda v, p: chk.choice(v, p, MODES),
                     source_ipv4=source(4), source_ipv6=source(6),
                     receive_buffer=lambda v, p: chk.integer(v, p, 65536, 1 << 30),
                     burst=lambda v, p: chk.integer(v, p, 1, 4096))


def _cidrs(chk: Checker, value, path) -> tuple:
    items = chk.seq(value, path, "a list of CIDRs", null_ok=False)
    if items is None:
        return INVALID
    nets = [chk.network(cidr, path + (i,)) for i, cidr in enumerate(items)]
    return tuple(n for n in nets if n is not INVALID)


def _canaries(chk: Checker, value, path) -> tuple[str, ...]:
    items = chk.seq(value, path, "a list of IP addresses", null_ok=False)
    if items is None:
        return INVALID
    first: dict[str, int] = {}  # canonical address -> index of its first mention
    for i, item in enumerate(items):
        addr = chk.ip(item, path + (i,))
        if addr is INVALID:
            continue
        if addr.compressed in first:
            chk.error(path + (i,), f"duplicate canary {addr.compressed} (also site.canaries[{first[addr.compressed]}])")
        else:
            first[addr.compressed] = i
    return tuple(first)


def _absolute_dir(chk: Checker, value, path):
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 4096:
        chk.error(path, f"must be an absolute directory path, got {describe_value(value)}")
        return INVALID
    return value


def _env_prefix(chk: Checker, value, path):
    if value is None:
        return None
    if not isinstance(value, str) or not _ENV_PREFIX_RE.match(value):
        chk.error(path, "must be a non-empty environment variable name prefix [A-Za-z_][A-Za-z0-9_]*, "
                        f"got {describe_value(value)}")
        return INVALID
    return value


def _snmp(chk: Checker, value) -> SnmpSettings:
    path = ("snmp",)
    m = chk.mapping(value, path, _keys(SnmpSettings)) or {}

    def deadline(v, p):
        if v is None:
            return None
        seconds = chk.seconds(v, p, 0.0, 3600, inclusive=True)
        if seconds == 0:
            return None  # 0, like null: the computed budget
        return seconds

    out = chk.build(SnmpSettings, m, path,
                    enabled=chk.boolean,
                    interval=lambda v, p: chk.seconds(v, p, 1.0, 3600),
                    concurrency=lambda v, p: chk.integer(v, p, 1, 4096),
                    static_every=lambda v, p: chk.integer(v, p, 1, 1000),
                    deadline=deadline)
    if out.deadline is not None and out.deadline > out.interval:
        chk.error(path + ("deadline",), f"must not exceed snmp.interval {format_duration(out.interval)}, "
                                        f"got {format_duration(out.deadline)}")
    return out
