"""Exporter configuration (`--config.file`): typed, defaulted, strictly validated.

Unknown keys are errors; every problem is reported at once with file:line. Defaults live next to
the types. Durations are numbers of seconds or strings like "500ms", "2s", "1m".

Default policies and why (1 % random packet loss q = 0.01, independent per packet):
- isp: every 1 s, 3 packets 100 ms apart, 500 ms timeout, DOWN after 2 failed rounds, UP after 2
  good. A round fails only if all 3 packets are lost: q^3 = 1e-6; a false DOWN needs 2 in a row:
  1e-12 per round, x 31.5 M rounds/year = 3.2e-5 per device-year. Worst-case detection of an
  uplink going dark right after a good round: 2 rounds later + 0.2 s sends + 0.5 s timeout = 2.7 s.
- default: every 5 s, 2 packets 500 ms apart, 2 s timeout, DOWN after 3 failed rounds, UP after 2.
  q^2 = 1e-4 per round, 3 in a row 1e-12, x 6.3 M rounds/year = 6.3e-6 per device-year (one false
  DOWN in ~16 years across 10,000 devices). Worst-case detection: 3 x 5 s + 0.5 s + 2 s = 17.5 s.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inventory.errors import InventoryError, Problem, describe_value
from inventory.located import read_yaml
from inventory.model import LABEL_NAME_RE, NAME_RE, ROLES

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
MODES = ("auto", "unprivileged", "raw")
DEFAULT_POLICY = "default"
DEFAULT_POLICY_LABEL = "probe_policy"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


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
    "isp": Policy("isp", interval=1.0, packets=3, spacing=0.1, timeout=0.5, down_after=2, up_after=2),
    "default": Policy("default", interval=5.0, packets=2, spacing=0.5, timeout=2.0, down_after=3, up_after=2),
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
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    source: str = field(default="", compare=False)

    def policy_for(self, role: str, labels: Mapping[str, str]) -> Policy:
        """Device label `policy_label` wins, then the role mapping, then the default policy.

        An unknown policy name in a label falls back (and is reported by `unknown_policy_labels`).
        """
        name = labels.get(self.policy_label)
        if name is None or name not in self.policies:
            name = self.role_policies.get(role, self.default_policy)
        return self.policies[name]


TOP_KEYS = ("policies", "role_policies", "default_policy", "policy_label", "icmp", "probe", "inventory", "snmp",
            "secrets")
INVENTORY_KEYS = ("poll_interval", "timeout", "max_bytes", "max_drop_share", "hold_time")
SECRETS_KEYS = ("directory", "env_prefix")
_ENV_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SNMP_KEYS = ("enabled", "interval", "concurrency", "static_every", "deadline")


def load_config(path: str | None) -> ExporterConfig:
    """The built-in defaults without a file; ConfigError lists every problem otherwise."""
    if path is None:
        return ExporterConfig()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(path, f"cannot read config: {exc}")]) from None
    return loads_config(text, path)


def loads_config(text: str, source: str = "<config>") -> ExporterConfig:
    try:
        data, locate = read_yaml(text, source)
    except InventoryError as exc:
        raise ConfigError(exc.problems) from None
    return _Builder(locate, source).build(data)


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


class _Builder:
    def __init__(self, locate, source: str):
        self.locate = locate
        self.source = source
        self.problems: list[Problem] = []

    def error(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.locate(path), f"{_dotted(path)}: {message}" if path else message, path))

    def mapping(self, value, path, allowed) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {describe_value(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.error(path + (key,), f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def duration(self, m, path, key, default, low=0.0, high=3600.0, allow_zero=False) -> float:
        if key not in m:
            return default
        value = m[key]
        seconds = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION_RE.match(value.strip())):
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds is None or not math.isfinite(seconds) or not (low < seconds <= high or (allow_zero and seconds == 0)):
            above = f"from {low:g}s" if allow_zero else f"above {low:g}s"
            self.error(path + (key,), f"must be a duration {above} to {high:g}s "
                                      f"(seconds, or like 500ms, 2s, 1m), got {describe_value(value)}")
            return default
        return seconds

    def integer(self, m, path, key, default, low, high) -> int:
        if key not in m:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(path + (key,), f"must be a whole number from {low} to {high}, got {describe_value(value)}")
            return default
        return value

    def name(self, value, path, what) -> str | None:
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.error(path, f"{what} must match [a-z0-9][a-z0-9._-]*, got {describe_value(value)}")
            return None
        return value

    def build(self, data) -> ExporterConfig:
        if data is None:
            data = {}
        top = self.mapping(data, (), TOP_KEYS)
        if top is None:
            raise ConfigError(self.problems)
        policies = self.policies(top.get("policies"))
        default_policy = DEFAULT_POLICY
        if "default_policy" in top:
            default_policy = self.name(top["default_policy"], ("default_policy",), "a policy name") or default_policy
        if default_policy not in policies:
            self.error(("default_policy",), f"unknown policy {default_policy!r} (defined: {', '.join(policies)})")
        role_policies = self.role_policies(top.get("role_policies"), policies)
        policy_label = DEFAULT_POLICY_LABEL
        if "policy_label" in top:
            value = top["policy_label"]
            if isinstance(value, str) and LABEL_NAME_RE.match(value):
                policy_label = value
            else:
                self.error(("policy_label",), f"must be a label name [a-z_][a-z0-9_]*, got {describe_value(value)}")
        icmp = self.icmp(top.get("icmp", {}))
        probe = self.probe(top.get("probe", {}))
        inventory = self.inventory(top.get("inventory", {}))
        snmp = self.snmp(top.get("snmp", {}))
        secrets = self.secrets(top.get("secrets", {}))
        if self.problems:
            raise ConfigError(self.problems)
        return ExporterConfig(policies=MappingProxyType(policies), role_policies=MappingProxyType(role_policies),
                              default_policy=default_policy, policy_label=policy_label, icmp=icmp,
                              probe=probe, inventory=inventory, snmp=snmp, secrets=secrets,
                              source=self.source)

    def policies(self, value) -> dict[str, Policy]:
        out = dict(BUILTIN_POLICIES)
        if value is None:
            return out
        path = ("policies",)
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping of policy name to settings, got {describe_value(value)}")
            return out
        for name, raw in value.items():
            p = path + (name,)
            if self.name(name, p, "policy name") is None:
                continue
            m = self.mapping(raw if raw is not None else {}, p, POLICY_KEYS)
            if m is None:
                continue
            base = BUILTIN_POLICIES.get(name, BUILTIN_POLICIES["default"])
            before = len(self.problems)
            policy = Policy(
                name=name,
                interval=self.duration(m, p, "interval", base.interval, 0.05, 3600),
                packets=self.integer(m, p, "packets", base.packets, 1, 20),
                spacing=self.duration(m, p, "spacing", base.spacing, 0.0, 60, allow_zero=True),
                timeout=self.duration(m, p, "timeout", base.timeout, 0.0, 60),
                down_after=self.integer(m, p, "down_after", base.down_after, 1, 100),
                up_after=self.integer(m, p, "up_after", base.up_after, 1, 100),
            )
            if len(self.problems) == before and policy.busy > policy.interval:
                self.error(p, f"a round needs spacing x (packets - 1) + timeout = {policy.busy:g}s, "
                              f"more than its interval {policy.interval:g}s")
            out[name] = policy
        return out

    def role_policies(self, value, policies) -> dict[str, str]:
        out = dict(ExporterConfig().role_policies)
        if value is None:
            return out
        path = ("role_policies",)
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping of role to policy name, got {describe_value(value)}")
            return out
        for role, name in value.items():
            p = path + (role,)
            if role not in ROLES:
                self.error(p, f"unknown role {role!r} (one of {', '.join(ROLES)})")
            elif not isinstance(name, str) or name not in policies:
                self.error(p, f"unknown policy {name!r} (defined: {', '.join(policies)})")
            else:
                out[role] = name
        return out

    def icmp(self, value) -> IcmpSettings:
        path = ("icmp",)
        m = self.mapping(value, path, ("mode", "source_ipv4", "source_ipv6", "receive_buffer", "burst"))
        if m is None:
            return IcmpSettings()
        mode = m.get("mode", "auto")
        if mode not in MODES:
            self.error(path + ("mode",), f"must be one of {', '.join(MODES)}, got {describe_value(mode)}")
            mode = "auto"
        sources = {}
        for key, version in (("source_ipv4", 4), ("source_ipv6", 6)):
            raw = m.get(key)
            if raw is None:
                sources[key] = None
                continue
            try:
                addr = ipaddress.ip_address(raw) if isinstance(raw, str) else None
            except ValueError:
                addr = None
            if addr is None or addr.version != version:
                self.error(path + (key,), f"must be an IPv{version} address, got {describe_value(raw)}")
                sources[key] = None
            else:
                sources[key] = addr.compressed
        return IcmpSettings(mode=mode, receive_buffer=self.integer(m, path, "receive_buffer", 8 << 20, 65536, 1 << 30),
                            burst=self.integer(m, path, "burst", 64, 1, 4096), **sources)

    def probe(self, value) -> ProbeSettings:
        path = ("probe",)
        m = self.mapping(value, path, ("allowed_cidrs", "timeout"))
        if m is None:
            return ProbeSettings()
        nets = []
        raw = m.get("allowed_cidrs", [])
        if not isinstance(raw, list):
            self.error(path + ("allowed_cidrs",), f"must be a list of CIDRs, got {describe_value(raw)}")
            raw = []
        for i, cidr in enumerate(raw):
            try:
                if not isinstance(cidr, str):
                    raise ValueError(f"got {describe_value(cidr)}")
                nets.append(ipaddress.ip_network(cidr, strict=True))
            except ValueError as exc:
                self.error(path + ("allowed_cidrs", i), f"invalid CIDR {cidr!r}: {exc}")
        return ProbeSettings(allowed_cidrs=tuple(nets), timeout=self.duration(m, path, "timeout", 5.0, 0.0, 60))

    def inventory(self, value) -> InventorySettings:
        path = ("inventory",)
        m = self.mapping(value, path, INVENTORY_KEYS)
        if m is None:
            return InventorySettings()
        base = InventorySettings()
        share = m.get("max_drop_share", base.max_drop_share)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            self.error(path + ("max_drop_share",), f"must be a number from 0 to 1 (1: never hold), "
                                                   f"got {describe_value(share)}")
            share = base.max_drop_share
        return InventorySettings(
            poll_interval=self.duration(m, path, "poll_interval", base.poll_interval, 0.1, 3600),
            timeout=self.duration(m, path, "timeout", base.timeout, 0.0, 300),
            max_bytes=self.integer(m, path, "max_bytes", base.max_bytes, 1024, 1 << 34),
            max_drop_share=float(share),
            hold_time=self.duration(m, path, "hold_time", base.hold_time, 0.0, 7 * 86400, allow_zero=True))

    def secrets(self, value) -> SecretsSettings:
        path = ("secrets",)
        m = self.mapping(value if value is not None else {}, path, SECRETS_KEYS)
        if m is None:
            return SecretsSettings()
        directory = m.get("directory")
        if directory is not None and not (isinstance(directory, str) and directory.startswith("/")):
            self.error(path + ("directory",), f"must be an absolute directory path, got {describe_value(directory)}")
            directory = None
        prefix = m.get("env_prefix")
        if prefix is not None and not (isinstance(prefix, str) and _ENV_PREFIX_RE.match(prefix)):
            self.error(path + ("env_prefix",), "must be a non-empty environment variable name prefix "
                                               f"[A-Za-z_][A-Za-z0-9_]*, got {describe_value(prefix)}")
            prefix = None
        return SecretsSettings(directory=directory, env_prefix=prefix)

    def snmp(self, value) -> SnmpSettings:
        path = ("snmp",)
        m = self.mapping(value, path, SNMP_KEYS)
        if m is None:
            return SnmpSettings()
        base = SnmpSettings()
        enabled = m.get("enabled", base.enabled)
        if not isinstance(enabled, bool):
            self.error(path + ("enabled",), f"must be true or false, got {describe_value(enabled)}")
            enabled = base.enabled
        interval = self.duration(m, path, "interval", base.interval, 1.0, 3600)
        deadline = None
        if m.get("deadline") is not None:
            deadline = self.duration(m, path, "deadline", 0.0, 0.0, 3600)
            if deadline and deadline > interval:
                self.error(path + ("deadline",), f"must not exceed snmp.interval {interval:g}s, got {deadline:g}s")
            deadline = deadline or None
        return SnmpSettings(enabled=enabled, interval=interval,
                            concurrency=self.integer(m, path, "concurrency", base.concurrency, 1, 4096),
                            static_every=self.integer(m, path, "static_every", base.static_every, 1, 1000),
                            deadline=deadline)
