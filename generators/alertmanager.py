"""Alertmanager 0.25 configuration: severity routes, inhibition, maintenance mute windows, receivers.

Maintenance windows from the inventory become `time_intervals`; every (region, branch) or device
they cover gets a route that mutes exactly the windows that apply to it (a device in a muted
region *and* a muted branch gets both), with the same severity routes underneath.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import UTC, datetime

from generators.output import regex_escape
from generators.settings import Receiver, Settings
from generators.text import render
from generators.topology import build_model
from inventory.model import Inventory, MaintenanceWindow

TEMPLATE_FILE = "wardops.tmpl"
# Alertmanager 0.25 templates have no time-zone function (`tz` came in a later release), so the
# generator bakes the zone's UTC offsets into the template for these years (fixed, so the output
# does not depend on the day it is generated); times outside them are shown in UTC.
ZONE_YEARS = (2020, 2040)

# (source alert matchers, target alert matchers, equal labels): why each exists is in docs/generators.md.
INHIBIT_RULES = (
    # A blind or degraded probe site: nothing it sees below it is true (the rules already hold these
    # back; this is the second line, for alerts already firing when the site went bad). With several
    # sites, the consensus pages carry no `site`, so only that site's own per-site alerts (loss,
    # latency, SNMP) are muted, never a page the healthy sites agree on.
    (['alertname=~"ProbeSiteBlind|ProbeSiteDegraded"'], ['scope=~"upstream|branch|device|interface"'], ("site",)),
    # A flapping device: one DeviceFlapping instead of a stream of down/up notifications.
    (['alertname="DeviceFlapping"'], ['alertname=~"DeviceDown|IspLinkDown"'], ("device", "region", "branch")),
    # A dark branch: one BranchDown; its devices' and interfaces' alerts are symptoms.
    (['alertname="BranchDown"'], ['scope=~"device|interface"'], ("region", "branch")),
    # One uplink down: loss/latency of the branch's other devices comes from the failover.
    (['alertname="IspLinkDown"'], ['alertname=~"HighPacketLoss|HighLatency"', 'role!="isp"'], ("region", "branch")),
    # A device that does not answer ICMP: its interface/SNMP/loss/latency alerts are symptoms.
    (['alertname=~"DeviceDown|IspLinkDown"'],
     ['alertname=~"InterfaceDown|InterfaceFlapping|SnmpUnreachable|HighPacketLoss|HighLatency"'],
     ("device", "region", "branch")),
    # An exporter that cannot be scraped: no SNMP verdicts from it either.
    (['alertname="ExporterDown"'], ['alertname="SnmpUnreachable"'], ("instance",)),
)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matcher_in(label: str, values) -> str:
    values = sorted(set(values))
    if len(values) == 1:
        return f"{label}={_quote(values[0])}"
    return f"{label}=~{_quote('|'.join(regex_escape(v) for v in values))}"


def _node_inhibit_rules(inv: Inventory) -> list[dict]:
    """A dark upstream or region mutes what is behind it (branch, device, interface alerts) by
    region/branch matchers: the rules already hold those back; this keeps alerts that were firing
    before the node went dark from notifying their suppression as a resolve."""
    model = build_model(inv)
    out = []
    for node in model.nodes:
        source = [f'alertname="{node.alert}"',
                  matcher_in("region" if node.kind == "region" else "upstream", [node.name]), 'site=~".+"']
        by_region: dict[str, list[str]] = defaultdict(list)
        for region, branch in node.branches:
            by_region[region].append(branch)
        for region, branches in sorted(by_region.items()):
            out.append({"source_matchers": source,
                        "target_matchers": ['scope=~"branch|device|interface"', matcher_in("region", [region]),
                                            matcher_in("branch", branches), 'site=~".+"'],
                        "equal": ["site"]})
    return out


def _inhibit_rules() -> list[dict]:
    out = []
    for source, target, equal in INHIBIT_RULES:
        # Labels missing on both sides count as equal in Alertmanager: require them to be non-empty
        # on both sides, so a rule can never silence an alert that lacks its scope.
        present = [f'{label}=~".+"' for label in equal]
        out.append({"source_matchers": source + present, "target_matchers": target + present,
                    "equal": list(equal)})
    return out


def _time_interval(w: MaintenanceWindow) -> dict:
    spec: dict = {"location": w.timezone}
    if w.weekdays:
        spec["weekdays"] = list(w.weekdays)
    if w.times:
        spec["times"] = [{"start_time": a, "end_time": b} for a, b in w.times]
    return {"name": w.name, "time_intervals": [spec]}


# Every alert is its own group: a new alert in a group that already exists is sent only at that
# group's next group_interval tick (measured: DeviceFlapping ~2 min after DeviceDown in an open
# branch group), whereas a new group waits only group_wait. Storms are prevented by the
# root-cause rules (one alert per cause), not by batching symptoms.
GROUP_BY_ALERT = ["..."]
NULL_RECEIVER = "wardops-null"


def _severity_routes(settings: Settings, mute: list[str]) -> list[dict]:
    r = settings.routing
    routes = [
        {"matchers": ['severity="critical"'], "receiver": r.critical, "group_by": GROUP_BY_ALERT,
         "group_wait": str(r.critical_group_wait), "group_interval": str(r.critical_group_interval),
         "repeat_interval": str(r.critical_repeat_interval)},
        {"matchers": ['severity="warning"'], "receiver": r.warning, "group_by": GROUP_BY_ALERT,
         "group_wait": str(r.warning_group_wait), "group_interval": str(r.warning_group_interval),
         "repeat_interval": str(r.warning_repeat_interval)},
    ]
    if mute:
        for route in routes:
            route["mute_time_intervals"] = mute
    return routes


def maintenance_routes(inv: Inventory, settings: Settings) -> list[dict]:
    """Routes muting the maintenance windows that apply to each branch or device, most specific first."""
    if not inv.maintenance:
        return []
    branch_windows: dict[tuple[str, str], set[str]] = defaultdict(set)
    device_windows: dict[str, set[str]] = defaultdict(set)
    devices = [d for d in inv.devices if d.enabled]
    for w in inv.maintenance:
        regions, branches, names = set(w.regions), set(w.branches), set(w.devices)
        for d in devices:
            if d.region in regions or d.branch in branches:
                branch_windows[(d.region, d.branch)].add(w.name)
            if d.name in names:
                device_windows[d.name].add(w.name)
    order = {w.name: i for i, w in enumerate(inv.maintenance)}
    routes = []
    # Devices with their own windows: their branch's windows apply too.
    by_set: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for d in devices:
        if d.name in device_windows:
            names = device_windows[d.name] | branch_windows.get((d.region, d.branch), set())
            by_set[tuple(sorted(names, key=order.get))].append(d.name)
    for names, members in sorted(by_set.items()):
        routes.append({"matchers": [matcher_in("device", members)], "mute_time_intervals": list(names),
                       "receiver": settings.routing.default, "routes": _severity_routes(settings, list(names))})
    by_region_set: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (region, branch), names in branch_windows.items():
        by_region_set[(region, tuple(sorted(names, key=order.get)))].append(branch)
    for (region, names), branches in sorted(by_region_set.items()):
        routes.append({"matchers": [matcher_in("region", [region]), matcher_in("branch", branches)],
                       "mute_time_intervals": list(names), "receiver": settings.routing.default,
                       "routes": _severity_routes(settings, list(names))})
    return routes


def _receiver(rc: Receiver, env_refs: set[str]) -> dict:
    def secret_value(secret) -> str:
        env_refs.add(secret.ref)
        return "${" + secret.ref + "}"

    out: dict = {"name": rc.name}
    if rc.webhooks:
        hooks = []
        for h in rc.webhooks:
            hook: dict = {"url": h.url, "send_resolved": h.send_resolved}
            if h.bearer_token is not None:
                auth: dict = {"type": "Bearer"}
                if h.bearer_token.kind == "file":
                    auth["credentials_file"] = h.bearer_token.ref
                else:
                    auth["credentials"] = secret_value(h.bearer_token)
                hook["http_config"] = {"authorization": auth}
            hooks.append(hook)
        out["webhook_configs"] = hooks
    if rc.emails:
        mails = []
        for e in rc.emails:
            mail: dict = {"to": e.to, "from": e.sender, "smarthost": e.smarthost, "require_tls": e.require_tls,
                          "send_resolved": e.send_resolved,
                          "headers": {"Subject": '{{ template "wardops.subject" . }}'},
                          "text": '{{ template "wardops.text" . }}', "html": '{{ template "wardops.html" . }}'}
            if e.auth_username:
                mail["auth_username"] = e.auth_username
            if e.auth_password is not None:
                if e.auth_password.kind == "file":
                    mail["auth_password_file"] = e.auth_password.ref
                else:
                    mail["auth_password"] = secret_value(e.auth_password)
            mails.append(mail)
        out["email_configs"] = mails
    if rc.telegram:
        out["telegram_configs"] = [
            {"chat_id": t.chat_id, "bot_token": secret_value(t.bot_token), "send_resolved": t.send_resolved,
             "parse_mode": "HTML", "message": '{{ template "wardops.telegram" . }}'}
            for t in rc.telegram]
    return out


def zone_periods(name: str, years: tuple[int, int] = ZONE_YEARS) -> list[tuple[int, int, int, str]]:
    """(from, until (Unix seconds), UTC offset in seconds, label) of each stretch of `years` during
    which the zone keeps one offset; [] for UTC. Found by a daily scan (zone rules never change
    twice in a day) and a bisection to the second of each change."""
    zone = zoneinfo.ZoneInfo(name)
    if name == "UTC":
        return []
    start = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(years[1], 1, 1, tzinfo=UTC).timestamp())

    def offset(t: int) -> int:
        return int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())

    periods, begin, t = [], start, start
    while t < end:
        step = min(t + 86400, end)
        if offset(step) != offset(t):
            lo, hi = t, step  # offset(lo) != offset(hi): find the first second of the new offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == offset(lo) else (lo, mid)
            periods.append((begin, hi, offset(begin)))
            begin = hi
        t = step
    periods.append((begin, end, offset(begin)))

    def label(seconds: int) -> str:
        sign, seconds = ("+" if seconds >= 0 else "-"), abs(seconds)
        return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d} {name}"

    return [(a, b, off, label(off)) for a, b, off in periods]


def build_alertmanager(inv: Inventory, settings: Settings) -> tuple[dict, dict[str, str], list[str]]:
    """(alertmanager.yml data, {template file: text}, env variables the config expects expanded)."""
    env_refs: set[str] = set()
    r = settings.routing
    # The dead man's switch first: never muted by maintenance, re-sent every interval so that its
    # absence at the receiver is what pages. Without a watchdog receiver it goes nowhere.
    watchdog = {"matchers": ['alertname="Watchdog"'], "receiver": r.watchdog or NULL_RECEIVER,
                "group_by": ["alertname"], "group_wait": "0s", "group_interval": str(r.watchdog_repeat_interval),
                "repeat_interval": str(r.watchdog_repeat_interval)}
    receivers = [_receiver(rc, env_refs) for rc in settings.receivers]
    if r.watchdog is None:
        receivers.append({"name": NULL_RECEIVER})
    config: dict = {
        "global": {"resolve_timeout": "5m"},
        "templates": [f"templates/{TEMPLATE_FILE}"],
        "route": {
            "receiver": r.default,
            "group_by": GROUP_BY_ALERT,
            "group_wait": "30s", "group_interval": "2m", "repeat_interval": "4h",
            "routes": [watchdog] + maintenance_routes(inv, settings) + _severity_routes(settings, []),
        },
        "inhibit_rules": _inhibit_rules() + _node_inhibit_rules(inv),
        "receivers": receivers,
    }
    if inv.maintenance:
        config["time_intervals"] = [_time_interval(w) for w in inv.maintenance]
    templates = {TEMPLATE_FILE: render("notifications.tmpl.j2", dashboard_url=settings.dashboard_url,
                                       runbook_url=settings.runbook_url, time_zone=settings.time_zone,
                                       periods=zone_periods(settings.time_zone), nanoseconds=10**9)}
    return config, templates, sorted(env_refs)


def config_problems(config: dict) -> list[str]:
    """Structural checks of the re-parsed config (amtool checks the rest when installed)."""
    out = []
    receivers = {rc.get("name") for rc in config.get("receivers", [])}
    intervals = {ti.get("name") for ti in config.get("time_intervals", [])}

    def walk(route: dict, where: str) -> None:
        if route.get("receiver") not in receivers:
            out.append(f"{where}: receiver {route.get('receiver')!r} is not defined")
        for name in route.get("mute_time_intervals", []):
            if name not in intervals:
                out.append(f"{where}: time interval {name!r} is not defined")
        for i, child in enumerate(route.get("routes", [])):
            walk(child, f"{where}.routes[{i}]")

    walk(config.get("route", {}), "route")
    for i, rule in enumerate(config.get("inhibit_rules", [])):
        for label in rule.get("equal", []):
            guard = f'{label}=~".+"'
            if guard not in rule.get("source_matchers", []) or guard not in rule.get("target_matchers", []):
                out.append(f"inhibit_rules[{i}]: equal label {label!r} is not required on both sides")
    return out
