"""Grafana dashboards built with grafana-foundation-sdk's typed builders (Grafana 10.1 build).

The SDK does not validate values, so `dashboard_problems` checks what Grafana would only show at
view time: unique uids and panel ids, every `$var` defined, every query naming a known metric.
"""

from __future__ import annotations

import json
import re

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

from exporter.contract import METRICS
from generators.rules import RECORDING_RULES
from generators.settings import Settings

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
BUILTIN_VARS = frozenset({"__range", "__rate_interval", "__interval", "__interval_ms", "__range_s",
                          "__from", "__to", "__name", "__dashboard"})
EXPORTER_METRICS = METRICS  # the metric contract: every family /metrics serves
# Series written by vmagent/vmalert rather than the exporter.
STACK_METRICS = frozenset({"up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped"})
KNOWN_METRICS = EXPORTER_METRICS | STACK_METRICS | {name for name, _ in RECORDING_RULES}

UIDS = {"overview": "wardops-overview", "region": "wardops-region", "device": "wardops-device",
        "sla": "wardops-sla", "exporter": "wardops-exporter"}


class _Layout:
    """Panel ids and refIds assigned in build order: stable, unique, and readable in diffs."""

    def __init__(self):
        self.next_id = 1

    def panel(self, builder, title: str, queries: list[tuple[str, str]], w: int, h: int, instant=False):
        builder.id(self.next_id).title(title).datasource(DS).span(w).height(h)
        self.next_id += 1
        for i, (expr, legend) in enumerate(queries):
            q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
            builder.with_target(q.instant() if instant else q.range())
        return builder

    def row(self, title: str):
        row = db.Row(title).id(self.next_id)
        self.next_id += 1
        return row


def _var(name: str, query: str, label: str, multi=True) -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).query(query).datasource(DS)
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
    if multi:
        v = v.multi(True).include_all(True).all_value(".*")
    return v


def _base(uid: str, title: str, source_stamp: str, tags: list[str]) -> db.Dashboard:
    # A dropdown to every wardops dashboard, keeping time range and variables (region/branch/device
    # carry over when drilling down).
    nav = (db.DashboardLink("wardops").type(DashboardLinkType.DASHBOARDS).tags(["wardops"]).as_dropdown(True)
           .include_vars(True).keep_time(True))
    return (db.Dashboard(title).uid(uid).description(source_stamp).tags(["wardops", *tags])
            .refresh("30s").time("now-6h", "now").timezone("browser").link(nav)
            .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus")))


def _overview(stamp: str, settings: Settings) -> db.Dashboard:
    L = _Layout()
    t = settings.thresholds
    # Same definitions as the DeviceFlapping rules (ISP uplinks have their own window and count).
    flapping = (f'count(increase(wardops_icmp_status_changes_total{{role!="isp"}}[{t.flap_window}]) >= '
                f'{t.flap_changes} or increase(wardops_icmp_status_changes_total{{role="isp"}}'
                f'[{t.isp_flap_window}]) >= {t.isp_flap_changes}) or vector(0)')
    d = _base(UIDS["overview"], "wardops / Overview", stamp, ["overview"])
    d = d.with_row(L.row("State"))
    for title, expr in (
        ("Devices up", "sum(wardops_icmp_up) or vector(0)"),
        ("Devices down", "count(wardops_icmp_up == 0) or vector(0)"),
        ("ISP uplinks down", 'count(wardops_icmp_up{role="isp"} == 0) or vector(0)'),
        ("Branches dark", "count(branch:wardops_isp_up:max == 0) or vector(0)"),
        ("Devices flapping", flapping),
        ("Firing alerts", 'count(ALERTS{alertstate="firing"}) or vector(0)'),
    ):
        d = d.with_panel(L.panel(stat.Panel(), title, [(expr, title)], 4, 4, instant=True))
    d = d.with_row(L.row("ISP uplinks"))
    d = d.with_panel(L.panel(statetimeline.Panel().min(0).max(1), "ISP uplinks (1 = up)",
                             [('wardops_icmp_up{role="isp"}', "{{branch}} {{device}} ({{isp}})")], 24, 12))
    d = d.with_row(L.row("Alerts and availability"))
    d = d.with_panel(L.panel(table.Panel(), "Active alerts (vmalert ALERTS series)",
                             [('ALERTS{alertstate="firing"}', "{{alertname}} {{device}} {{branch}}")], 14, 10,
                             instant=True))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1), "Availability by region",
                             [("region:wardops_icmp_up:avg", "{{region}}")], 10, 10))
    return d


def _region(stamp: str) -> db.Dashboard:
    L = _Layout()
    sel = 'region=~"$region", branch=~"$branch"'
    d = (_base(UIDS["region"], "wardops / Region and branch", stamp, ["drill-down"])
         .with_variable(_var("region", "label_values(wardops_icmp_up, region)", "Region"))
         .with_variable(_var("branch", 'label_values(wardops_icmp_up{region=~"$region"}, branch)', "Branch")))
    d = d.with_row(L.row("Branches"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1), "Devices up per branch",
                             [('branch:wardops_icmp_up:avg{region=~"$region", branch=~"$branch"}',
                               "{{region}} / {{branch}}")], 12, 8))
    d = d.with_panel(L.panel(statetimeline.Panel().min(0).max(1), "Branch connected (any ISP uplink up)",
                             [('branch:wardops_isp_up:max{region=~"$region", branch=~"$branch"}',
                               "{{branch}}")], 12, 8))
    d = d.with_row(L.row("Devices"))
    d = d.with_panel(L.panel(table.Panel(), "Device state (1 = up)",
                             [(f"wardops_icmp_up{{{sel}}}", "{{device}}")], 24, 10, instant=True))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "Round-trip time",
                             [(f"wardops_icmp_rtt_seconds{{{sel}}}", "{{device}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0), "Packet loss",
                             [(f"wardops_icmp_loss_ratio{{{sel}}}", "{{device}}")], 12, 8))
    return d


def _device(stamp: str) -> db.Dashboard:
    L = _Layout()
    dev = 'device="$device"'
    d = (_base(UIDS["device"], "wardops / Device", stamp, ["device"])
         .with_variable(_var("device", "label_values(wardops_icmp_up, device)", "Device", multi=False)))
    d = d.with_row(L.row("Reachability"))
    d = d.with_panel(L.panel(statetimeline.Panel().min(0).max(1), "State (1 = up)",
                             [(f"wardops_icmp_up{{{dev}}}", "{{device}} {{ip}}")], 24, 5))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "Round-trip time", [
        (f"wardops_icmp_rtt_min_seconds{{{dev}}}", "min"), (f"wardops_icmp_rtt_seconds{{{dev}}}", "avg"),
        (f"wardops_icmp_rtt_max_seconds{{{dev}}}", "max"), (f"wardops_icmp_jitter_seconds{{{dev}}}", "jitter"),
    ], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1), "Packet loss", [
        (f"wardops_icmp_loss_ratio{{{dev}}}", "last round"),
        (f"1 - increase(wardops_icmp_packets_received_total{{{dev}}}[5m]) / "
         f"increase(wardops_icmp_packets_sent_total{{{dev}}}[5m])", "5m"),
    ], 12, 8))
    d = d.with_row(L.row("SNMP interfaces"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("bps"), "Traffic", [
        (f"rate(wardops_snmp_if_in_octets_total{{{dev}}}[$__rate_interval]) * 8", "{{ifName}} in"),
        (f"rate(wardops_snmp_if_out_octets_total{{{dev}}}[$__rate_interval]) * 8", "{{ifName}} out"),
    ], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("pps"), "Errors and discards", [
        (f"rate(wardops_snmp_if_in_errors_total{{{dev}}}[$__rate_interval])", "{{ifName}} in errors"),
        (f"rate(wardops_snmp_if_out_errors_total{{{dev}}}[$__rate_interval])", "{{ifName}} out errors"),
        (f"rate(wardops_snmp_if_in_discards_total{{{dev}}}[$__rate_interval])", "{{ifName}} in discards"),
        (f"rate(wardops_snmp_if_out_discards_total{{{dev}}}[$__rate_interval])", "{{ifName}} out discards"),
    ], 12, 8))
    d = d.with_panel(L.panel(statetimeline.Panel().min(0).max(1), "Interface oper state (1 = up)",
                             [(f"wardops_snmp_if_oper_up{{{dev}}}", "{{ifName}} {{ifAlias}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "SNMP poll", [
        (f"wardops_snmp_poll_duration_seconds{{{dev}}}", "poll duration"),
        (f"wardops_snmp_up{{{dev}}}", "snmp up"),
    ], 12, 8))
    return d


def _sla(stamp: str) -> db.Dashboard:
    L = _Layout()
    d = (_base(UIDS["sla"], "wardops / Availability (SLA)", stamp, ["sla"])
         .with_variable(_var("region", "label_values(region:wardops_icmp_up:avg, region)", "Region")))
    d = d.with_row(L.row("Over the selected range"))
    d = d.with_panel(L.panel(table.Panel().unit("percentunit"), "Branch availability (devices up)",
                             [('avg_over_time(branch:wardops_icmp_up:avg{region=~"$region"}[$__range])',
                               "{{region}} / {{branch}}")], 12, 10, instant=True))
    d = d.with_panel(L.panel(table.Panel().unit("percentunit"), "Branch connectivity (any ISP uplink up)",
                             [('avg_over_time(branch:wardops_isp_up:max{region=~"$region"}[$__range])',
                               "{{region}} / {{branch}}")], 12, 10, instant=True))
    d = d.with_panel(L.panel(stat.Panel().unit("percentunit"), "Region availability",
                             [('avg_over_time(region:wardops_icmp_up:avg{region=~"$region"}[$__range])',
                               "{{region}}")], 8, 5, instant=True))
    d = d.with_panel(L.panel(stat.Panel().unit("percentunit"), "Availability by role",
                             [("avg_over_time(role:wardops_icmp_up:avg[$__range])", "{{role}}")], 8, 5,
                             instant=True))
    d = d.with_panel(L.panel(stat.Panel().unit("percentunit"), "Availability by provider",
                             [("avg_over_time(isp:wardops_icmp_up:avg[$__range])", "{{isp}}")], 8, 5,
                             instant=True))
    d = d.with_row(L.row("Trend"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1), "Branches connected by region",
                             [('region:wardops_isp_up:avg{region=~"$region"}', "{{region}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0), "Average loss by branch",
                             [('branch:wardops_icmp_loss:ratio{region=~"$region"}', "{{branch}}")], 12, 8))
    return d


def _exporter(stamp: str) -> db.Dashboard:
    L = _Layout()
    d = (_base(UIDS["exporter"], "wardops / Exporter health", stamp, ["exporter"])
         .with_variable(_var("instance", 'label_values(up{job=~"wardops.*"}, instance)', "Exporter")))
    inst = 'instance=~"$instance"'
    d = d.with_row(L.row("Scrapes"))
    d = d.with_panel(L.panel(statetimeline.Panel().min(0).max(1), "Scrape up",
                             [(f'up{{job=~"wardops.*", {inst}}}', "{{job}} {{instance}}")], 12, 6))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "Scrape duration",
                             [(f'scrape_duration_seconds{{job=~"wardops.*", {inst}}}', "{{job}} {{instance}}")],
                             12, 6))
    d = d.with_row(L.row("Probe rounds"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "Round duration by policy",
                             [(f"wardops_exporter_round_duration_seconds{{{inst}}}", "{{instance}} {{policy}}")],
                             12, 8))
    d = d.with_panel(L.panel(timeseries.Panel(), "Targets by policy",
                             [(f"wardops_exporter_targets{{{inst}}}", "{{instance}} {{policy}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("ops"), "Rounds and overruns", [
        (f"rate(wardops_exporter_rounds_total{{{inst}}}[$__rate_interval])", "{{policy}} rounds"),
        (f"rate(wardops_exporter_round_overruns_total{{{inst}}}[$__rate_interval])", "{{policy}} overruns"),
    ], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("pps"), "Send errors and receive drops", [
        (f"rate(wardops_exporter_send_errors_total{{{inst}}}[$__rate_interval])", "{{instance}} send errors"),
        (f"rate(wardops_exporter_receive_drops_total{{{inst}}}[$__rate_interval])", "{{instance}} drops"),
    ], 12, 8))
    d = d.with_row(L.row("Inventory"))
    d = d.with_panel(L.panel(stat.Panel(), "Inventory reload OK",
                             [(f"wardops_exporter_inventory_reload_success{{{inst}}}", "{{instance}}")], 8, 5,
                             instant=True))
    d = d.with_panel(L.panel(stat.Panel().unit("dateTimeFromNow"), "Last inventory reload",
                             [(f"wardops_exporter_inventory_reload_timestamp_seconds{{{inst}}} * 1000",
                               "{{instance}}")], 8, 5, instant=True))
    d = d.with_panel(L.panel(table.Panel(), "Build",
                             [(f"wardops_exporter_build_info{{{inst}}}", "{{instance}} {{version}}")], 8, 5,
                             instant=True))
    return d


def build_dashboards(source_stamp: str, settings: Settings) -> dict[str, dict]:
    """file name -> dashboard JSON data (plain dicts, ready for deterministic dumping)."""
    builders = {
        "overview.json": _overview(source_stamp, settings),
        "region.json": _region(source_stamp),
        "device.json": _device(source_stamp),
        "sla.json": _sla(source_stamp),
        "exporter.json": _exporter(source_stamp),
    }
    return {name: json.loads(json.dumps(b.build(), cls=JSONEncoder)) for name, b in builders.items()}


_VAR_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_STRIP_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]'
                       r'|\b(?:by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)')
_IDENT_RE = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_PROMQL_WORDS = frozenset({"by", "on", "or", "and", "unless", "ignoring", "group_left", "group_right", "offset",
                           "bool", "without", "inf", "nan"})


def panels_of(dash: dict) -> list[dict]:
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def query_metrics(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers outside strings, selectors and groupings
    that are not function calls or keywords (good enough for the queries generated here)."""
    bare = _STRIP_RE.sub(" ", expr)
    return {m.group(1) for m in _IDENT_RE.finditer(bare)
            if not m.group(2) and m.group(1).lower() not in _PROMQL_WORDS}


def dashboard_problems(dashboards: dict[str, dict]) -> list[str]:
    out = []
    uids: dict[str, str] = {}
    for name, dash in sorted(dashboards.items()):
        uid = dash.get("uid")
        if not uid or uid in uids:
            out.append(f"{name}: uid {uid!r} missing or also used by {uids.get(uid)}")
        uids[uid] = name
        defined = {v["name"] for v in dash.get("templating", {}).get("list", [])} | BUILTIN_VARS
        ids = set()
        texts = [json.dumps(v.get("query", "")) for v in dash.get("templating", {}).get("list", [])]
        for p in panels_of(dash):
            if p.get("id") in ids:
                out.append(f"{name}: duplicate panel id {p.get('id')}")
            ids.add(p.get("id"))
            if p.get("type") == "row":
                continue
            targets = p.get("targets") or []
            if not targets:
                out.append(f"{name}: panel {p.get('title')!r} has no query")
            texts.append(json.dumps(p.get("datasource")))
            for tg in targets:
                expr = tg.get("expr", "")
                texts.append(expr)
                unknown = query_metrics(expr) - KNOWN_METRICS
                if unknown or not query_metrics(expr):
                    out.append(f"{name}: panel {p.get('title')!r} query {expr!r} uses unknown metrics "
                               f"{sorted(unknown)}")
        for text in texts:
            for var in _VAR_RE.findall(text):
                if var not in defined:
                    out.append(f"{name}: ${var} is used but not defined")
    return out
