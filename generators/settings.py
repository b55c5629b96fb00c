"""SETTINGS for `wardops generate`: what the inventory does not say (receivers, intervals, thresholds, URLs).

Typed, defaulted and strictly validated: unknown keys are errors, every problem is reported at
once with file:line (the inventory's located YAML reader supplies the lines). Secrets are only
ever references (`*_env` / `*_file`); the generators never read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from inventory.errors import InventoryError, Problem, describe_value
from inventory.located import Locator, Path_, read_yaml
from inventory.model import LABEL_NAME_RE, NAME_RE
from inventory.schema import json_locator
from inventory.secrets import Secret, reference_problem

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:9095/"
_DURATION_RE = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TARGET_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
_EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+$")


class SettingsError(InventoryError):
    """The settings file is invalid; `problems` lists every error, each with file:line."""


@dataclass(frozen=True, slots=True)
class Duration:
    text: str  # as written, e.g. "2s": emitted verbatim into generated configs

    @property
    def seconds(self) -> float:
        m = _DURATION_RE.match(self.text)
        return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]

    def __str__(self) -> str:
        return self.text


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
class Settings:
    receivers: tuple[Receiver, ...] = (Receiver("default", webhooks=(Webhook(DEFAULT_WEBHOOK_URL),)),)
    routing: Routing = Routing()
    intervals: Intervals = Intervals()
    thresholds: Thresholds = Thresholds()
    runbook_url: str = "docs/generators.md"  # repo-relative runbooks (anchors per alert) until set
    dashboard_url: str = "http://127.0.0.1:3000"
    exporter_targets: tuple[str, ...] = ("127.0.0.1:9118",)
    # The probe site the exporters stand in: vmagent adds it as label `site` to every series they
    # export, and rules judge (and suppress) per site.
    site: str = "default"
    exporter_scheme: str = "http"
    inventory_url: str | None = None  # inventory service; enables the HTTP SD probe job
    external_labels: object = field(default_factory=lambda: MappingProxyType({"monitor": "wardops"}))
    source: str = field(default="(defaults)", compare=False)


DEFAULT_SETTINGS = Settings()

# --- validation --------------------------------------------------------------------------------

TOP_KEYS = ("receivers", "routing", "intervals", "thresholds", "urls", "exporter", "inventory_service",
            "external_labels")


class _Checker:
    def __init__(self, locate: Locator):
        self.locate = locate
        self.problems: list[Problem] = []

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(Problem(self.locate(path), message, path))

    def mapping(self, value, path: Path_, what: str, allowed) -> dict | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"{what} must be a mapping, got {describe_value(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.error(path + (key,), f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})")
        return value

    def text(self, value, path: Path_, what: str) -> str | None:
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            self.error(path, f"{what} must be a non-empty string without surrounding spaces, got {describe_value(value)}")
            return None
        return value

    def url(self, value, path: Path_, what: str) -> str | None:
        text = self.text(value, path, what)
        if text is None:
            return None
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.error(path, f"{what} must be an http:// or https:// URL, got {text!r}")
            return None
        return text

    def duration(self, m: dict, key: str, path: Path_, what: str, default: Duration) -> Duration:
        if key not in m:
            return default
        value = m[key]
        if isinstance(value, int) and not isinstance(value, bool) and value == 0:
            value = "0s"
        if not isinstance(value, str) or not _DURATION_RE.match(value):
            self.error(path + (key,), f"{what}: {key} must be a duration like 2s, 5m or 1h, got {describe_value(value)}")
            return default
        return Duration(value)

    def number(self, m: dict, key: str, path: Path_, what: str, default, typ, low, high):
        if key not in m:
            return default
        value = m[key]
        ok = isinstance(value, int) if typ is int else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not low <= value <= high:
            self.error(path + (key,), f"{what}: {key} must be a {'whole ' if typ is int else ''}number "
                                      f"from {low} to {high}, got {describe_value(value)}")
            return default
        return typ(value)

    def boolean(self, m: dict, key: str, path: Path_, what: str, default: bool) -> bool:
        if key not in m:
            return default
        if not isinstance(m[key], bool):
            self.error(path + (key,), f"{what}: {key} must be true or false, got {describe_value(m[key])}")
            return default
        return m[key]

    def secret(self, m: dict, name: str, path: Path_, what: str) -> Secret | None:
        given = [k for k in ("env", "file") if f"{name}_{k}" in m]
        if len(given) > 1:
            self.error(path, f"{what}: give only one of {name}_env and {name}_file")
            return None
        if not given:
            return None
        key = f"{name}_{given[0]}"
        problem = reference_problem(given[0], m[key])
        if problem:
            self.error(path + (key,), f"{what}: {key} {problem}")
            return None
        return Secret(given[0], m[key])


def _list(chk: _Checker, value, path: Path_, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        chk.error(path, f"{what} must be a list, got {describe_value(value)}")
        return []
    return value


def _inline_secret(chk: _Checker, raw: object, key: str, path: Path_, what: str) -> object:
    """Report an inline secret once (not also as an unknown key); return the mapping without it."""
    if not isinstance(raw, dict) or key not in raw:
        return raw
    chk.error(path + (key,), f"{what}: inline secret {key!r} is not allowed; "
                             f"reference it with {key}_env or {key}_file")
    return {k: v for k, v in raw.items() if k != key}


def _receivers(chk: _Checker, value) -> tuple[Receiver, ...]:
    path: Path_ = ("receivers",)
    if value is None:
        return DEFAULT_SETTINGS.receivers
    if not isinstance(value, dict) or not value:
        chk.error(path, f"receivers must be a non-empty mapping of name to receiver, got {describe_value(value)}")
        return ()
    out = []
    for name, raw in value.items():
        p = path + (name,)
        if not isinstance(name, str) or not NAME_RE.match(name):
            chk.error(p, f"receiver name {name!r} must match [a-z0-9][a-z0-9._-]*")
            continue
        what = f"receiver {name!r}"
        m = chk.mapping(raw, p, what, ("webhooks", "emails", "telegram"))
        if m is None:
            continue
        hooks, mails, tgs = [], [], []
        for i, h in enumerate(_list(chk, m.get("webhooks"), p + ("webhooks",), f"{what}: webhooks")):
            hp, hw = p + ("webhooks", i), f"{what}: webhook {i + 1}"
            h = _inline_secret(chk, h, "bearer_token", hp, hw)
            hm = chk.mapping(h, hp, hw, ("url", "send_resolved", "bearer_token_env", "bearer_token_file"))
            if hm is None:
                continue
            url = chk.url(hm.get("url"), hp + ("url",), f"{hw}: url")
            if url:
                hooks.append(Webhook(url, chk.boolean(hm, "send_resolved", hp, hw, True),
                                     chk.secret(hm, "bearer_token", hp, hw)))
        for i, e in enumerate(_list(chk, m.get("emails"), p + ("emails",), f"{what}: emails")):
            ep, ew = p + ("emails", i), f"{what}: email {i + 1}"
            e = _inline_secret(chk, e, "auth_password", ep, ew)
            em = chk.mapping(e, ep, ew, ("to", "from", "smarthost", "auth_username", "auth_password_env",
                                         "auth_password_file", "require_tls", "send_resolved"))
            if em is None:
                continue
            addrs = {}
            for key in ("to", "from"):
                v = chk.text(em.get(key), ep + (key,), f"{ew}: {key}")
                if v is not None and not _EMAIL_RE.match(v):
                    chk.error(ep + (key,), f"{ew}: {key} {v!r} is not an e-mail address")
                    v = None
                addrs[key] = v
            host = chk.text(em.get("smarthost"), ep + ("smarthost",), f"{ew}: smarthost")
            if host is not None and not _TARGET_RE.match(host):
                chk.error(ep + ("smarthost",), f"{ew}: smarthost must be host:port, got {host!r}")
                host = None
            user = chk.text(em["auth_username"], ep + ("auth_username",), f"{ew}: auth_username") \
                if "auth_username" in em else None
            password = chk.secret(em, "auth_password", ep, ew)
            if password is not None and user is None:
                chk.error(ep, f"{ew}: auth_password needs auth_username")
            if addrs["to"] and addrs["from"] and host:
                mails.append(Email(addrs["to"], addrs["from"], host, user, password,
                                   chk.boolean(em, "require_tls", ep, ew, True),
                                   chk.boolean(em, "send_resolved", ep, ew, True)))
        for i, t in enumerate(_list(chk, m.get("telegram"), p + ("telegram",), f"{what}: telegram")):
            tp, tw = p + ("telegram", i), f"{what}: telegram {i + 1}"
            t = _inline_secret(chk, t, "bot_token", tp, tw)
            tm = chk.mapping(t, tp, tw, ("chat_id", "bot_token_env", "bot_token_file", "send_resolved"))
            if tm is None:
                continue
            chat = tm.get("chat_id")
            if isinstance(chat, bool) or not isinstance(chat, int) or chat == 0:
                chk.error(tp + ("chat_id",), f"{tw}: chat_id must be a non-zero whole number, got {describe_value(chat)}")
                chat = None
            if "bot_token_file" in tm:
                # Alertmanager 0.25 (Debian 12) has no telegram bot_token_file; it arrived in 0.26.
                chk.error(tp + ("bot_token_file",), f"{tw}: bot_token_file is not supported by "
                                                    "Alertmanager 0.25; use bot_token_env")
                continue
            token = chk.secret(tm, "bot_token", tp, tw)
            if "bot_token_env" not in tm:
                chk.error(tp, f"{tw}: needs bot_token_env")
            elif chat is not None:
                tgs.append(Telegram(chat, token, chk.boolean(tm, "send_resolved", tp, tw, True)))
        if not (m.get("webhooks") or m.get("emails") or m.get("telegram")):
            chk.error(p, f"{what}: needs at least one of webhooks, emails, telegram")
        out.append(Receiver(name, tuple(hooks), tuple(mails), tuple(tgs)))
    return tuple(out)


def _routing(chk: _Checker, value, receivers: tuple[Receiver, ...]) -> Routing:
    path: Path_ = ("routing",)
    keys = ("critical", "warning", "default") + tuple(
        f"{sev}_{k}" for sev in ("critical", "warning") for k in ("group_wait", "group_interval", "repeat_interval"))
    keys += ("watchdog_repeat_interval", "watchdog")
    m = chk.mapping(value, path, "routing", keys)
    if m is None:
        return Routing()
    names = [r.name for r in receivers]
    first = names[0] if names else "default"
    kw: dict = {}
    for key in ("critical", "warning", "default"):
        v = m.get(key, first)
        if v not in names:
            chk.error(path + (key,) if key in m else path,
                      f"routing: {key} receiver {v!r} is not defined (receivers: {', '.join(names) or 'none'})")
        kw[key] = v
    defaults = Routing()
    for key in keys[3:-1]:
        kw[key] = chk.duration(m, key, path, "routing", getattr(defaults, key))
    if m.get("watchdog") is not None:
        if m["watchdog"] not in names:
            chk.error(path + ("watchdog",), f"routing: watchdog receiver {m['watchdog']!r} is not defined "
                                            f"(receivers: {', '.join(names) or 'none'})")
        else:
            kw["watchdog"] = m["watchdog"]
    if kw["critical_group_wait"].seconds > 2:
        chk.error(path + ("critical_group_wait",),
                  "routing: critical_group_wait must be at most 2s (ISP outage notification target)")
    return Routing(**kw)


def _dataclass_section(chk: _Checker, value, name: str, cls):
    path: Path_ = (name,)
    defaults = cls()
    keys = tuple(cls.__dataclass_fields__)
    m = chk.mapping(value, path, name, keys)
    if m is None:
        return defaults
    kw = {}
    for key in keys:
        default = getattr(defaults, key)
        if isinstance(default, Duration):
            kw[key] = chk.duration(m, key, path, name, default)
        else:
            low, high = NUMBER_RANGES[key]
            kw[key] = chk.number(m, key, path, name, default, type(default), low, high)
    return cls(**kw)


NUMBER_RANGES = {"loss_percent": (0.01, 100), "latency_ms": (0.1, 60000), "flap_changes": (2, 1000),
                 "isp_flap_changes": (2, 1000), "interface_flap_changes": (2, 1000), "round_overruns": (1, 1000),
                 "probe_site_blind_share": (0.05, 1.0), "targets_drop_share": (0.01, 1.0)}


def _check_thresholds(chk: _Checker, t: Thresholds, raw) -> None:
    for key in ("flap_window", "isp_flap_window", "loss_window", "latency_window", "interface_flap_window"):
        if getattr(t, key).seconds < 60:
            chk.error(("thresholds", key) if isinstance(raw, dict) and key in raw else ("thresholds",),
                      f"thresholds: {key} must be at least 1m")


def build_settings(data: object, locate: Locator = json_locator, source: str = "") -> Settings:
    chk = _Checker(locate)
    top = chk.mapping(data, (), "settings", TOP_KEYS)
    if top is None:
        raise SettingsError(chk.problems)
    receivers = _receivers(chk, top.get("receivers"))
    routing = _routing(chk, top.get("routing"), receivers)
    intervals = _dataclass_section(chk, top.get("intervals"), "intervals", Intervals)
    for key in ("isp_eval", "default_eval", "recording_eval", "isp_scrape", "default_scrape"):
        if getattr(intervals, key).seconds < 1:
            chk.error(("intervals", key), f"intervals: {key} must be at least 1s")
    thresholds = _dataclass_section(chk, top.get("thresholds"), "thresholds", Thresholds)
    _check_thresholds(chk, thresholds, top.get("thresholds"))

    urls = chk.mapping(top.get("urls"), ("urls",), "urls", ("runbook", "dashboards"))
    urls = urls or {}
    runbook = chk.url(urls["runbook"], ("urls", "runbook"), "urls: runbook") if "runbook" in urls else None
    dashboards = chk.url(urls["dashboards"], ("urls", "dashboards"), "urls: dashboards") \
        if "dashboards" in urls else None

    exp = chk.mapping(top.get("exporter"), ("exporter",), "exporter", ("targets", "scheme")) or {}
    targets = DEFAULT_SETTINGS.exporter_targets
    if "targets" in exp:
        raw = exp["targets"]
        if not isinstance(raw, list) or not raw:
            chk.error(("exporter", "targets"), f"exporter: targets must be a non-empty list of host:port, "
                                               f"got {describe_value(raw)}")
        else:
            good = []
            for i, t in enumerate(raw):
                if not isinstance(t, str) or not _TARGET_RE.match(t):
                    chk.error(("exporter", "targets", i), f"exporter: target {t!r} must be host:port")
                elif t in good:
                    chk.error(("exporter", "targets", i), f"exporter: duplicate target {t!r}")
                else:
                    good.append(t)
            targets = tuple(good)
    scheme = exp.get("scheme", "http")
    if scheme not in ("http", "https"):
        chk.error(("exporter", "scheme"), f"exporter: scheme must be http or https, got {describe_value(scheme)}")

    inv = chk.mapping(top.get("inventory_service"), ("inventory_service",), "inventory_service", ("url",)) or {}
    inventory_url = chk.url(inv["url"], ("inventory_service", "url"), "inventory_service: url") \
        if "url" in inv else None

    ext = top.get("external_labels", None)
    external = dict(DEFAULT_SETTINGS.external_labels)
    if ext is not None:
        if not isinstance(ext, dict):
            chk.error(("external_labels",), f"external_labels must be a mapping, got {describe_value(ext)}")
        else:
            external = {}
            for k, v in ext.items():
                if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
                    chk.error(("external_labels", k), f"external_labels: invalid label name {k!r}")
                elif not isinstance(v, str) or not v:
                    chk.error(("external_labels", k), f"external_labels: {k!r} must be a non-empty string "
                                                      f"(quote numbers), got {describe_value(v)}")
                else:
                    external[k] = v
    if chk.problems:
        raise SettingsError(_in_source_order(chk.problems))
    return Settings(receivers=receivers, routing=routing, intervals=intervals, thresholds=thresholds,
                    runbook_url=runbook or DEFAULT_SETTINGS.runbook_url,
                    dashboard_url=dashboards or DEFAULT_SETTINGS.dashboard_url,
                    exporter_targets=targets, exporter_scheme=scheme, inventory_url=inventory_url,
                    external_labels=MappingProxyType(dict(sorted(external.items()))), source=source)


def _in_source_order(problems: list[Problem]) -> list[Problem]:
    def line(p: Problem) -> int:
        tail = p.location.rpartition(":")[2]
        return int(tail) if tail.isdigit() else 0
    return sorted(problems, key=line)  # stable: same-line problems keep their order


def loads_settings(text: str, source: str = "<settings>") -> Settings:
    try:
        data, locate = read_yaml(text, source)
    except InventoryError as exc:
        raise SettingsError(exc.problems) from None
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
