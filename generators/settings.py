"""SETTINGS for `wardops generate`: what the inventory does not say (receivers, intervals, thresholds, URLs).

Typed, defaulted and strictly validated on the strict-config kit (inventory/strict.py): unknown
keys are errors, every problem is reported at once as `FILE:LINE: dotted.path: message`, defaults
live in the dataclasses below only. Durations use the kit's grammar (`1h30m`, `2s`, `1.5s`,
`500ms`; a plain number is seconds) and are emitted in a form vmalert, promtool and Alertmanager
accept. Secrets are only ever references (`*_env` / `*_file`); the generators never read them.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from inventory.errors import ConfigError, Problem, describe_value, quote
from inventory.located import Locator, Path_, read_yaml
from inventory.schema import json_locator
from inventory.secrets import Secret
from inventory.strict import INVALID, Checker, Duration, label_value_problem

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9095/"
_TARGET_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
_EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+$")


class SettingsError(ConfigError):
    """The settings file is invalid; `problems` lists every error, each with file:line."""


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    send_resolved: bool = True
    bearer_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    sender: str  # `from` in the file
    smarthost: str
    auth_username: str | None = None
    auth_password: Secret | None = None
    require_tls: bool = True
    send_resolved: bool = True


@dataclass(frozen=True, slots=True)
class Telegram:
    chat_id: int
    bot_token: Secret
    send_resolved: bool = True


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    webhooks: tuple[Webhook, ...] = ()
    emails: tuple[Email, ...] = ()
    telegram: tuple[Telegram, ...] = ()


@dataclass(frozen=True, slots=True)
class Routing:
    critical: str = "default"
    warning: str = "default"
    default: str = "default"
    critical_group_wait: Duration = Duration("1s")
    critical_group_interval: Duration = Duration("10s")
    critical_repeat_interval: Duration = Duration("30m")
    # Every alert is its own group (alertmanager.py GROUP_BY_ALERT), so group_wait only has to
    # let an inhibiting alert of the same evaluation arrive first: 1 s, not Alertmanager's 30 s
    # (device p95 target 8 s end to end). group_interval is then how late a resolve is sent.
    warning_group_wait: Duration = Duration("1s")
    warning_group_interval: Duration = Duration("30s")
    warning_repeat_interval: Duration = Duration("4h")
    # Dead man's switch: the always-firing Watchdog alert goes to this receiver (None: to a receiver
    # that drops it), re-sent every watchdog_repeat_interval so its silence is what pages.
    watchdog: str | None = None
    watchdog_repeat_interval: Duration = Duration("1m")


@dataclass(frozen=True, slots=True)
class Intervals:
    # The root-cause group (ProbeSiteBlind ... DeviceDown): evaluated every second, since each
    # second of the chain counts against the ISP p95 <= 5 s / device p95 <= 8 s targets.
    isp_eval: Duration = Duration("1s")
    default_eval: Duration = Duration("5s")  # loss/latency (15m/5m windows), SNMP and exporter groups
    recording_eval: Duration = Duration("30s")  # availability recording rules
    # vmagent job wardops_icmp: every ICMP series (devices, branch verdicts, canaries) in one scrape.
    isp_scrape: Duration = Duration("1s")
    default_scrape: Duration = Duration("30s")  # vmagent job wardops_snmp (SNMP rounds every 60 s)


@dataclass(frozen=True, slots=True)
class Thresholds:
    loss_percent: float = 5.0  # HighPacketLoss: average loss over loss_window above this
    # 15 m, not 5 m: a device on the default policy sends ~360 packets in 15 m; under 1 % random loss
    # P(> 5 % lost) is 7e-9 per window (binomial), vs 2e-4 with 5 m (~120 packets), which paged
    # one or two of 100 devices in the stack's 1 %-loss scenario.
    loss_window: Duration = Duration("15m")
    loss_for: Duration = Duration("2m")
    latency_ms: float = 100.0  # HighLatency: average RTT over latency_window above this
    latency_window: Duration = Duration("5m")
    latency_for: Duration = Duration("2m")
    flap_changes: int = 3  # DeviceFlapping: state changes within flap_window
    # ISP uplinks: more sensitive by window (3 changes in 10m). 2 changes would make every short
    # outage that recovers (down + up) a critical "flapping" alert.
    isp_flap_changes: int = 3
    flap_window: Duration = Duration("5m")
    isp_flap_window: Duration = Duration("10m")
    device_down_for: Duration = Duration("0s")  # the exporter already debounces with hysteresis
    isp_down_for: Duration = Duration("0s")
    interface_down_for: Duration = Duration("1m")
    interface_flap_changes: int = 3
    interface_flap_window: Duration = Duration("15m")
    snmp_unreachable_for: Duration = Duration("2m")
    exporter_down_for: Duration = Duration("30s")
    round_overruns: int = 3  # ProbeRoundOverrun: overruns within 10m
    # ProbeSiteBlind without canaries: this share of the site's branches (or devices) dark at once.
    # A real regional outage stays below it; the generator refuses a value that one upstream or
    # region of the inventory reaches on its own.
    probe_site_blind_share: float = 0.8
    # After an upstream, a branch or the probe site recovers, what is still down behind it stays
    # quiet this long (devices come back a few rounds apart); then it pages as its own cause.
    recovery_hold: Duration = Duration("60s")
    targets_drop_share: float = 0.5  # ExporterTargetsDropped: targets fell below this share of the 1h max
    rounds_stalled_after: Duration = Duration("30s")  # ProbeRoundsStalled: no round completed for this long


@dataclass(frozen=True, slots=True)
class Site:
    """A probe site: the exporters (one per shard) that see the network from one place."""

    name: str
    targets: tuple[str, ...]


QUORUMS = ("all", "majority", "any")


@dataclass(frozen=True, slots=True)
class Consensus:
    """How the verdicts of two or more probe sites combine into one page (ignored with one site)."""

    # all: every healthy site probing the target sees it down; majority: more than half of them;
    # any: one of them (fastest, but a site's path fault pages until the site is marked unhealthy).
    quorum: str = "all"
    # A site is unhealthy when at least this share of the devices it probes is DOWN for it while
    # another site sees them UP (a real outage is seen by every site alike): 0.2 of 875 devices is
    # 175, far above what independent device faults reach at once.
    disagreement_share: float = 0.2


@dataclass(frozen=True, slots=True)
class HaMember:
    """One chain of an HA deployment (settings `ha: {members: [...]}`): its VictoriaMetrics, its
    Alertmanager and that Alertmanager's gossip address; optionally its inventory service (every
    member or none), whose HTTP SD the /probe job then reads beside the other members'."""

    victoria_metrics: str  # URL
    alertmanager: str  # URL
    alertmanager_cluster: str  # host:port
    inventory_service: str | None = None  # URL


@dataclass(frozen=True, slots=True)
class Settings:
    receivers: tuple[Receiver, ...] = (Receiver("default", webhooks=(Webhook(DEFAULT_WEBHOOK_URL),)),)
    routing: Routing = Routing()
    intervals: Intervals = Intervals()
    thresholds: Thresholds = Thresholds()
    runbook_url: str = "docs/runbooks"  # runbook base: an alert links <base>/<AlertName>.md (urls.runbook)
    dashboard_url: str = "http://127.0.0.1:3000"
    time_zone: str = "UTC"  # IANA zone of the times in notifications (e.g. Asia/Tbilisi)
    exporter_targets: tuple[str, ...] = ("127.0.0.1:10118",)
    # The probe site the exporters stand in: vmagent adds it as label `site` to every series they
    # export, and rules judge (and suppress) per site.
    site: str = "default"
    # Two or more probe sites (settings `sites:`): each with its own exporters; pages then need
    # the consensus of the healthy sites. Empty: the one site above (`site`, `exporter_targets`).
    sites: tuple[Site, ...] = ()
    consensus: Consensus = Consensus()
    # HA: two or more chains (`wardops generate` then writes flags/ha/*.args); empty: one stack.
    ha: tuple[HaMember, ...] = ()
    exporter_scheme: str = "http"
    inventory_url: str | None = None  # inventory service; enables the HTTP SD probe job
    external_labels: object = field(default_factory=lambda: MappingProxyType({"monitor": "wardops"}))
    source: str = field(default="(defaults)", compare=False)

    @property
    def probe_sites(self) -> tuple[Site, ...]:
        return self.sites or (Site(self.site, self.exporter_targets),)

    @property
    def multi_site(self) -> bool:
        return len(self.probe_sites) >= 2

    @property
    def site_names(self) -> tuple[str, ...]:
        """What an inventory's `sites:` may name: these sites, also with one site (an inventory
        prepared for a second site names the first one already; any other name is a typo or a
        site the settings do not run, whose devices no exporter would probe)."""
        return tuple(site.name for site in self.probe_sites)


DEFAULT_SETTINGS = Settings()

# --- validation --------------------------------------------------------------------------------

TOP_KEYS = ("receivers", "routing", "intervals", "thresholds", "urls", "exporter", "inventory_service",
            "external_labels", "site", "time_zone", "sites", "consensus", "ha")
NUMBER_RANGES = {"loss_percent": (0.01, 100), "latency_ms": (0.1, 60000), "flap_changes": (2, 1000),
                 "isp_flap_changes": (2, 1000), "interface_flap_changes": (2, 1000), "round_overruns": (1, 1000),
                 "probe_site_blind_share": (0.05, 1.0), "targets_drop_share": (0.01, 1.0),
                 "disagreement_share": (0.01, 1.0)}
# Shortest allowed durations, in seconds. Windows under a minute hold too few samples of a 5 s
# series for changes()/avg_over_time() to mean anything; vmalert and vmagent reject intervals
# under a second from us (the exporter's fastest round is 1 s).
DURATION_MINIMA = {"flap_window": 60, "isp_flap_window": 60, "loss_window": 60, "latency_window": 60,
                   "interface_flap_window": 60, "isp_eval": 1, "default_eval": 1, "recording_eval": 1,
                   "isp_scrape": 1, "default_scrape": 1}
# Alertmanager must hand an ISP outage to the receiver within 2 s of the alert arriving.
MAX_CRITICAL_GROUP_WAIT = 2.0


def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class _Settings(Checker):
    """The kit's checker plus what only settings have: URLs, secret references, receivers."""

    def url(self, value, path: Path_) -> str | object:
        text = self.text(value, path, max_len=2048)
        if text is INVALID:
            return INVALID
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.error(path, f"must be an http:// or https:// URL, got {quote(text)}")
            return INVALID
        return text

    def without_inline_secret(self, raw: object, key: str, path: Path_) -> object:
        """Report an inline secret once (not also as an unknown key); return the mapping without it."""
        if not isinstance(raw, dict) or key not in raw:
            return raw
        self.error(path + (key,), f"inline secret {quote(key)} is not allowed; "
                                  f"reference it with {key}_env or {key}_file")
        return {k: v for k, v in raw.items() if k != key}

    def items(self, m: dict, key: str, path: Path_) -> list:
        return self.seq(m.get(key), path + (key,)) or []


def _webhook(chk: _Settings, raw, p: Path_) -> Webhook | None:
    raw = chk.without_inline_secret(raw, "bearer_token", p)
    m = chk.mapping(raw, p, ("url", "send_resolved", "bearer_token_env", "bearer_token_file"), null_ok=False)
    if m is None:
        return None
    url = chk.url(m.get("url"), p + ("url",))
    token = chk.secret(m, "bearer_token", p)
    if url is INVALID or token is INVALID:
        return None
    return chk.build(Webhook, m, p, base=Webhook(url, bearer_token=token), send_resolved=chk.boolean)


def _email(chk: _Settings, raw, p: Path_) -> Email | None:
    raw = chk.without_inline_secret(raw, "auth_password", p)
    m = chk.mapping(raw, p, ("to", "from", "smarthost", "auth_username", "auth_password_env",
                             "auth_password_file", "require_tls", "send_resolved"), null_ok=False)
    if m is None:
        return None
    addrs = {}
    for key in ("to", "from"):
        v = chk.text(m.get(key), p + (key,), max_len=254)
        if v is not INVALID and not _EMAIL_RE.match(v):
            chk.error(p + (key,), f"{quote(v)} is not an e-mail address")
            v = INVALID
        addrs[key] = v
    host = chk.text(m.get("smarthost"), p + ("smarthost",), max_len=255)
    if host is not INVALID and not _TARGET_RE.match(host):
        chk.error(p + ("smarthost",), f"must be host:port, got {quote(host)}")
        host = INVALID
    user = chk.text(m["auth_username"], p + ("auth_username",)) if "auth_username" in m else None
    password = chk.secret(m, "auth_password", p)
    if password is not None and user is None:
        chk.error(p, "auth_password needs auth_username")
    if INVALID in (addrs["to"], addrs["from"], host, user, password):
        return None
    return chk.build(Email, m, p, base=Email(addrs["to"], addrs["from"], host, user, password),
                     require_tls=chk.boolean, send_resolved=chk.boolean)


def _telegram(chk: _Settings, raw, p: Path_) -> Telegram | None:
    raw = chk.without_inline_secret(raw, "bot_token", p)
    m = chk.mapping(raw, p, ("chat_id", "bot_token_env", "bot_token_file", "send_resolved"), null_ok=False)
    if m is None:
        return None
    chat = m.get("chat_id")
    if isinstance(chat, bool) or not isinstance(chat, int) or chat == 0:
        chk.error(p + ("chat_id",), f"must be a non-zero whole number, got {describe_value(chat)}")
        chat = None
    if "bot_token_file" in m:
        # Alertmanager 0.25 (Debian 12) has no telegram bot_token_file; it arrived in 0.26.
        chk.error(p + ("bot_token_file",), "not supported by Alertmanager 0.25; use bot_token_env")
        return None
    token = chk.secret(m, "bot_token", p)
    if "bot_token_env" not in m:
        chk.error(p, "needs bot_token_env")
        return None
    if chat is None or token in (None, INVALID):
        return None
    return chk.build(Telegram, m, p, base=Telegram(chat, token), send_resolved=chk.boolean)


def _receivers(chk: _Settings, value) -> tuple[Receiver, ...]:
    path: Path_ = ("receivers",)
    if value is None:
        return DEFAULT_SETTINGS.receivers
    if not isinstance(value, dict) or not value:
        chk.error(path, f"must be a non-empty mapping of name to receiver, got {describe_value(value)}")
        return ()
    out = []
    for name, raw in value.items():
        p = path + (name,)
        if chk.name(name, p, "a receiver name") is INVALID:
            continue
        m = chk.mapping(raw, p, ("webhooks", "emails", "telegram"), null_ok=False)
        if m is None:
            continue
        found = {}
        for key, parse in (("webhooks", _webhook), ("emails", _email), ("telegram", _telegram)):
            items = (parse(chk, raw, p + (key, i)) for i, raw in enumerate(chk.items(m, key, p)))
            found[key] = tuple(x for x in items if x is not None)
        if not (m.get("webhooks") or m.get("emails") or m.get("telegram")):
            chk.error(p, "needs at least one of webhooks, emails, telegram")
        out.append(Receiver(name, **found))
    return tuple(out)


def _duration(chk: Checker, key: str):
    return lambda v, p: chk.duration(v, p, low=DURATION_MINIMA.get(key, 0))


def _number(chk: Checker, key: str, whole: bool):
    low, high = NUMBER_RANGES[key]
    if whole:
        return lambda v, p: chk.integer(v, p, low, high)
    return lambda v, p: chk.number(v, p, low, high)


def _section(chk: Checker, value, name: str, cls, base=None, **parsers):
    """A section whose keys are the dataclass fields; durations and numbers (NUMBER_RANGES) are
    parsed by their field's type unless `parsers` names the field."""
    m = chk.mapping(value, (name,), _fields(cls)) or {}
    for f in dataclasses.fields(cls):
        if f.name in parsers:
            continue
        if f.type == "Duration":
            parsers[f.name] = _duration(chk, f.name)
        elif f.name in NUMBER_RANGES:
            parsers[f.name] = _number(chk, f.name, whole=f.type == "int")
    return chk.build(cls, m, (name,), base=base, **parsers)


def _routing(chk: Checker, value, receivers: tuple[Receiver, ...]) -> Routing:
    names = [r.name for r in receivers]

    def receiver(v, p):
        if v not in names:
            chk.error(p, f"receiver {quote(v)} is not defined (receivers: {', '.join(names) or 'none'})")
            return INVALID
        return v

    def watchdog(v, p):
        return None if v is None else receiver(v, p)

    # A severity without a routing entry goes to the first receiver defined.
    base = Routing(critical=names[0], warning=names[0], default=names[0]) if names else Routing()
    routing = _section(chk, value, "routing", Routing, base=base, critical=receiver, warning=receiver,
                       default=receiver, watchdog=watchdog)
    if routing.critical_group_wait.seconds > MAX_CRITICAL_GROUP_WAIT:
        chk.error(("routing", "critical_group_wait"),
                  f"must be at most {MAX_CRITICAL_GROUP_WAIT:g}s (ISP outage notification target), "
                  f"got {routing.critical_group_wait}")
    return routing


def _targets(chk: Checker, value, path: Path_):
    raw = chk.seq(value, path, "a non-empty list of host:port", null_ok=False, non_empty=True)
    if raw is None:
        return INVALID
    good: list[str] = []
    for i, t in enumerate(raw):
        if not isinstance(t, str) or not _TARGET_RE.match(t):
            chk.error(path + (i,), f"must be host:port, got {describe_value(t)}")
        elif t in good:
            chk.error(path + (i,), f"duplicate target {quote(t)}")
        else:
            good.append(t)
    return tuple(good)


def _external_labels(chk: Checker, value, path: Path_):
    if not isinstance(value, dict):
        chk.error(path, f"must be a mapping, got {describe_value(value)}")
        return INVALID
    out = {}
    for k, v in value.items():
        p = path + (k if isinstance(k, str) else str(k),)
        if chk.label_name(k, p) is INVALID:
            continue
        if not isinstance(v, str):
            chk.error(p, f"label value must be a string (quote numbers), got {describe_value(v)}")
        elif problem := label_value_problem(v):
            chk.error(p, problem)
        else:
            out[k] = v
    return MappingProxyType(dict(sorted(out.items())))


def _time_zone(chk: Checker, value, path: Path_):
    name = chk.text(value, path, max_len=64)
    try:
        if name is not INVALID:
            zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        chk.error(path, f"unknown time zone {quote(name)} (an IANA name like UTC or Asia/Tbilisi)")
        return INVALID
    return name


def _sites(chk: Checker, value, top: dict, exporter: dict) -> tuple[Site, ...] | object:
    path: Path_ = ("sites",)
    raw = chk.seq(value, path, "a non-empty list of {name, targets}", null_ok=False, non_empty=True)
    if raw is None:
        return INVALID
    if "site" in top:
        chk.error(("site",), "give either sites or site (each site has its name in sites)")
    if "targets" in exporter:
        chk.error(("exporter", "targets"), "give either sites or exporter.targets (each site has its targets in sites)")
    out: list[Site] = []
    seen: dict[str, int] = {}
    all_targets: dict[str, str] = {}
    for i, item in enumerate(raw):
        p = path + (i,)
        m = chk.mapping(item, p, ("name", "targets"), null_ok=False)
        if m is None:
            continue
        name = chk.name(m.get("name"), p + ("name",), "a site name")
        targets = _targets(chk, m.get("targets"), p + ("targets",))
        if name is not INVALID and name in seen:
            chk.error(p + ("name",), f"duplicate site {quote(name)} (first at sites[{seen[name]}])")
            name = INVALID
        if targets is not INVALID:
            for j, t in enumerate(targets):
                if t in all_targets and all_targets[t] != name:
                    chk.error(p + ("targets", j), f"target {quote(t)} already belongs to site {quote(all_targets[t])}")
                all_targets.setdefault(t, name)
        if name is INVALID or targets is INVALID:
            continue
        seen[name] = i
        out.append(Site(name, targets))
    return tuple(out)


HA_MEMBER_KEYS = ("victoria_metrics", "alertmanager", "alertmanager_cluster")
HA_MEMBER_OPTIONAL = ("inventory_service",)


def _ha(chk: Checker, value) -> tuple[HaMember, ...] | object:
    """`ha: {members: [{victoria_metrics: URL, alertmanager: URL, alertmanager_cluster: host:port,
    inventory_service: URL (optional)}, ...]}`: at least two members (one is a single stack), no
    address twice, an inventory service on every member or on none."""
    m = chk.mapping(value, ("ha",), ("members",), null_ok=False)
    if m is None:
        return INVALID
    path: Path_ = ("ha", "members")
    raw = chk.seq(m.get("members"), path, "a list of two or more {victoria_metrics, alertmanager, "
                  "alertmanager_cluster}", null_ok=False, non_empty=True)
    if raw is None:
        return INVALID
    if len(raw) < 2:
        chk.error(path, f"HA needs two or more members, got {len(raw)}")
    out: list[HaMember] = []
    seen: dict[str, tuple] = {}
    # The /probe job reads every member's inventory service: one member without would be a
    # service nobody lists (or a typo), so it is every member or none.
    with_service = [i for i, item in enumerate(raw) if isinstance(item, dict) and "inventory_service" in item]
    for i, item in enumerate(raw):
        p = path + (i,)
        member = chk.mapping(item, p, HA_MEMBER_KEYS + HA_MEMBER_OPTIONAL, null_ok=False)
        if member is None:
            continue
        if with_service and "inventory_service" not in member:
            chk.error(p, f"missing field 'inventory_service' (ha.members[{with_service[0]}] has one: "
                         "give it on every member or on none)")
        values = {}
        for key in HA_MEMBER_KEYS + HA_MEMBER_OPTIONAL:
            if key in HA_MEMBER_OPTIONAL and key not in member:
                continue
            if key not in member:
                chk.error(p, f"missing required field {quote(key)}")
                continue
            if key == "alertmanager_cluster":
                got = member[key] if isinstance(member[key], str) and _TARGET_RE.match(member[key]) else INVALID
                if got is INVALID:
                    chk.error(p + (key,), f"must be host:port, got {describe_value(member[key])}")
            else:
                got = chk.url(member[key], p + (key,))
            if got is INVALID:
                continue
            if got in seen:
                chk.error(p + (key,), f"{quote(got)} is already {'.'.join(map(str, seen[got]))}")
                continue
            seen[got] = ("ha", "members", i, key)
            values[key] = got
        if all(key in values for key in HA_MEMBER_KEYS):
            out.append(HaMember(**values))
    return tuple(out)


def build_settings(data: object, locate: Locator = json_locator, source: str = "") -> Settings:
    chk = _Settings(locate)
    top = chk.mapping(data, (), TOP_KEYS)
    if top is None:
        chk.raise_if_any(SettingsError)
    kw: dict = {"source": source}
    kw["receivers"] = _receivers(chk, top.get("receivers"))
    kw["routing"] = _routing(chk, top.get("routing"), kw["receivers"])
    kw["intervals"] = _section(chk, top.get("intervals"), "intervals", Intervals)
    kw["thresholds"] = _section(chk, top.get("thresholds"), "thresholds", Thresholds)
    kw["consensus"] = _section(chk, top.get("consensus"), "consensus", Consensus,
                               quorum=lambda v, p: chk.choice(v, p, QUORUMS))
    urls = chk.mapping(top.get("urls"), ("urls",), ("runbook", "dashboards")) or {}
    for key, attr in (("runbook", "runbook_url"), ("dashboards", "dashboard_url")):
        if key in urls and (url := chk.url(urls[key], ("urls", key))) is not INVALID:
            kw[attr] = url
    sections = {(): top,
                ("exporter",): chk.mapping(top.get("exporter"), ("exporter",), ("targets", "scheme")) or {},
                ("inventory_service",): chk.mapping(top.get("inventory_service"), ("inventory_service",),
                                                    ("url",)) or {}}
    # (section, key in the file) -> Settings field; absent keys keep the dataclass default.
    for where, key, attr, parse in (
            (("exporter",), "targets", "exporter_targets", lambda v, p: _targets(chk, v, p)),
            (("exporter",), "scheme", "exporter_scheme", lambda v, p: chk.choice(v, p, ("http", "https"))),
            (("inventory_service",), "url", "inventory_url", chk.url),
            ((), "site", "site", chk.text),
            ((), "time_zone", "time_zone", lambda v, p: _time_zone(chk, v, p)),
            ((), "external_labels", "external_labels", lambda v, p: _external_labels(chk, v, p))):
        if key in sections[where] and (value := parse(sections[where][key], where + (key,))) is not INVALID:
            kw[attr] = value
    if "sites" in top and (sites := _sites(chk, top["sites"], top, sections[("exporter",)])) is not INVALID:
        kw["sites"] = sites
        if sites:  # the first site stands in where one exporter is meant (the /probe job)
            kw["site"], kw["exporter_targets"] = sites[0].name, sites[0].targets
    if "ha" in top and (ha := _ha(chk, top["ha"])) is not INVALID:
        kw["ha"] = ha
    chk.raise_if_any(SettingsError)
    return Settings(**kw)


def loads_settings(text: str, source: str = "<settings>") -> Settings:
    data, locate = read_yaml(text, source, SettingsError)
    return build_settings({} if data is None else data, locate, source)


def load_settings(path: str | Path | None) -> Settings:
    """Settings from a YAML file, or the defaults when `path` is None."""
    if path is None:
        return DEFAULT_SETTINGS
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([Problem(str(path), f"cannot read settings: {exc}")]) from None
    return loads_settings(text, str(path))
