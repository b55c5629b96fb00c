"""Grafana dashboards built with grafana-foundation-sdk's typed builders (Grafana 10.1 build).

The SDK does not validate values, so `dashboard_problems` checks what Grafana would only show at
view time: unique uids and panel ids, every `$var` defined, every query naming a known metric, and
what an on-call engineer reads at a glance: every panel showing a state maps 0/1 to DOWN/UP in
colour, every stat has its own thresholds (Grafana's default turns any value above 80 red), every
instant table is a table of columns, not a row per series.
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
    DataTransformerConfig,
    DynamicConfigValue,
    FieldColorModeId,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from exporter.contract import FAMILIES, METRICS
from generators.rules import RECORDING_RULES
from generators.settings import Settings

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
BUILTIN_VARS = frozenset({"__range", "__rate_interval", "__interval", "__interval_ms", "__range_s",
                          "__from", "__to", "__name", "__dashboard",
                          # data-link variables: the clicked series' labels, the row's cells, the time range
                          "__field", "__data", "__url_time_range"})
EXPORTER_METRICS = METRICS  # the metric contract: every family /metrics serves
# Series written by vmagent/vmalert rather than the exporter.
STACK_METRICS = frozenset({"up", "ALERTS", "scrape_duration_seconds", "scrape_samples_scraped"})
KNOWN_METRICS = EXPORTER_METRICS | STACK_METRICS | {name for name, _ in RECORDING_RULES}

UIDS = {"overview": "wardops-overview", "region": "wardops-region", "device": "wardops-device",
        "sla": "wardops-sla", "exporter": "wardops-exporter", "sites": "wardops-sites"}

# Series whose value is a state, not a quantity: the contract's gauges documented as "1 if ...",
# vmagent's `up` and the recording rule that takes the max of ISP uplink states.
# wardops_icmp_branch_up has a third value, -1 while the exporter is still deciding.
STATE_METRICS = frozenset({f.name for f in FAMILIES.values() if f.type == "gauge" and f.help.startswith("1 if ")}
                          | {"up", "branch:wardops_isp_up:max"})
TRISTATE_METRICS = frozenset(f.name for f in FAMILIES.values() if f.name in STATE_METRICS and "-1 while" in f.help)
STATE_TEXT = {"1": ("UP", "green"), "0": ("DOWN", "red"), "-1": ("DECIDING", "orange")}
STATE_PANEL_TYPES = ("state-timeline", "stat", "table")
# An aggregation that counts or averages states gives a number, not a state.
_COUNTING_RE = re.compile(r"(?<![\w:])(?:sum|count|avg|avg_over_time|rate|irate|increase|quantile|stddev)"
                          r"\s*(?:\(|by\b|without\b)")


class _Layout:
    """Panel ids and refIds assigned in build order: stable, unique, and readable in diffs."""

    def __init__(self):
        self.next_id = 1

    def panel(self, builder, title: str, queries: list[tuple[str, str]], w: int, h: int, instant=False,
              table=False):
        builder.id(self.next_id).title(title).datasource(DS).span(w).height(h)
        self.next_id += 1
        for i, (expr, legend) in enumerate(queries):
            q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
            if table:  # one row per series, one column per label
                q = q.format(PromQueryFormat.TABLE)
            builder.with_target(q.instant() if instant or table else q.range())
        return builder

    def row(self, title: str):
        row = db.Row(title).id(self.next_id)
        self.next_id += 1
        return row


def _thresholds(builder, *steps: tuple[float | None, str]):
    """Explicit colours by value (the first step's value is None: from minus infinity)."""
    return (builder.thresholds(db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
                               .steps([Threshold(value, color) for value, color in steps]))
            .color_scheme(db.FieldColor().mode(FieldColorModeId.THRESHOLDS)))


def _state(builder, tristate: bool = False):
    """0 -> DOWN red, 1 -> UP green (and -1 -> DECIDING orange): a glance cannot misread a state."""
    keys = ("1", "0", "-1") if tristate else ("1", "0")
    mapping = ValueMap({k: ValueMappingResult(text=STATE_TEXT[k][0], color=STATE_TEXT[k][1], index=i)
                        for i, k in enumerate(keys)})
    steps = ((None, "orange"), (0, "red"), (1, "green")) if tristate else ((None, "red"), (1, "green"))
    return _thresholds(builder.mappings([mapping]), *steps)


class _DataLink:
    """A field data link ({title, url}); the SDK's DashboardLink would add dashboard-link-only keys."""

    def __init__(self, title: str, uid: str, **variables: str):
        query = "".join(f"&var-{name}={value}" for name, value in variables.items())
        self.data = {"title": title, "url": f"/d/{uid}?var-datasource=${{datasource}}{query}&${{__url_time_range}}",
                     "targetBlank": False}

    def build(self) -> dict:
        return self.data


def _field(source: str, name: str) -> str:
    return "${" + source + "." + name + "}"


def _to_region(source: str = "__field.labels") -> _DataLink:
    return _DataLink(f"Branch {_field(source, 'branch')}", UIDS["region"], region=_field(source, "region"),
                     branch=_field(source, "branch"))


def _to_device(source: str = "__field.labels") -> _DataLink:
    return _DataLink(f"Device {_field(source, 'device')}", UIDS["device"], device=_field(source, "device"))


def _columns(builder, columns: dict[str, str], value: str | None = "Value"):
    """A table of the named label columns (series label -> header, in this order) and the value
    column (header `value`); every other label (job, instance, site, ...) is left out."""
    names = [*columns, "Value"] if value else list(columns)
    rename = {**columns, "Value": value} if value else dict(columns)
    builder = builder.with_transformation(DataTransformerConfig(
        id_val="filterFieldsByName", options={"include": {"names": names}}))
    builder = builder.with_transformation(DataTransformerConfig(
        id_val="organize", options={"excludeByName": {}, "indexByName": {n: i for i, n in enumerate(names)},
                                    "renameByName": rename}))
    if value:  # colour the value cell (state or availability) by its mapping/thresholds
        builder = builder.override_by_name(value, [DynamicConfigValue(
            "custom.cellOptions", {"type": "color-background"})])
    return builder


def _var(name: str, query: str, label: str, multi=True) -> db.QueryVariable:
    v = (db.QueryVariable(name).label(label).query(query).datasource(DS)
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
    if multi:
        v = v.multi(True).include_all(True).all_value(".*")
    return v


def _base(uid: str, title: str, source_stamp: str, tags: list[str], since: str = "now-6h",
          refresh: str = "30s") -> db.Dashboard:
    # A dropdown to every wardops dashboard, keeping time range and variables (region/branch/device
    # carry over when drilling down).
    nav = (db.DashboardLink("wardops").type(DashboardLinkType.DASHBOARDS).tags(["wardops"]).as_dropdown(True)
           .include_vars(True).keep_time(True))
    return (db.Dashboard(title).uid(uid).description(source_stamp).tags(["wardops", *tags])
            .refresh(refresh).time(since, "now").timezone("browser").link(nav)
            .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus")))


def _count_stat(bad_from: float | None, bad_color: str = "red"):
    """A count: green, or `bad_color` from `bad_from` on (None: a plain count, always green)."""
    steps = [(None, "green")] + ([(bad_from, bad_color)] if bad_from is not None else [])
    return _thresholds(stat.Panel(), *steps)


def _availability(builder):
    # Below 99 % a branch was down more than 7 h in 30 days: red; below 99.9 % (43 min): orange.
    return _thresholds(builder.unit("percentunit").decimals(3), (None, "red"), (0.99, "orange"), (0.999, "green"))


def _overview(stamp: str, settings: Settings) -> db.Dashboard:
    L = _Layout()
    t = settings.thresholds
    # Same definitions as the DeviceFlapping rules (ISP uplinks have their own window and count).
    flapping = (f'count(increase(wardops_icmp_status_changes_total{{role!="isp"}}[{t.flap_window}]) >= '
                f'{t.flap_changes} or increase(wardops_icmp_status_changes_total{{role="isp"}}'
                f'[{t.isp_flap_window}]) >= {t.isp_flap_changes}) or vector(0)')
    d = _base(UIDS["overview"], "wardops / Overview", stamp, ["overview"])
    d = d.with_row(L.row("State"))
    for title, expr, panel in (
        ("Devices up", "sum(wardops_icmp_up) or vector(0)", _count_stat(None)),
        ("Devices down", "count(wardops_icmp_up == 0) or vector(0)", _count_stat(1)),
        ("ISP uplinks down", 'count(wardops_icmp_up{role="isp"} == 0) or vector(0)', _count_stat(1)),
        ("Branches dark", "count(branch:wardops_isp_up:max == 0) or vector(0)", _count_stat(1)),
        ("Devices flapping", flapping, _count_stat(1, "orange")),
        ("Firing alerts", 'count(ALERTS{alertstate="firing"}) or vector(0)', _count_stat(1, "orange")),
    ):
        d = d.with_panel(L.panel(panel, title, [(expr, title)], 4, 4, instant=True))
    d = d.with_row(L.row("ISP uplinks"))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()).data_links([_to_region(), _to_device()]),
                             "ISP uplinks", [('wardops_icmp_up{role="isp"}', "{{branch}} {{device}} ({{isp}})")],
                             24, 12))
    d = d.with_row(L.row("Alerts and availability"))
    alerts = _columns(table.Panel(), {"alertname": "Alert", "severity": "Severity", "region": "Region",
                                      "branch": "Branch", "device": "Device", "ip": "IP"}, value=None)
    d = d.with_panel(L.panel(alerts.data_links([_to_region("__data.fields"), _to_device("__data.fields")]),
                             "Active alerts (vmalert ALERTS series)", [('ALERTS{alertstate="firing"}', "")], 14, 10,
                             table=True))
    region_link = _DataLink("Region ${__field.labels.region}", UIDS["region"], region="${__field.labels.region}")
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1).data_links([region_link]),
                             "Availability by region", [("region:wardops_icmp_up:avg", "{{region}}")], 10, 10))
    return d


def _region(stamp: str) -> db.Dashboard:
    L = _Layout()
    sel = 'region=~"$region", branch=~"$branch"'
    d = (_base(UIDS["region"], "wardops / Region and branch", stamp, ["drill-down"])
         .with_variable(_var("region", "label_values(wardops_icmp_up, region)", "Region"))
         .with_variable(_var("branch", 'label_values(wardops_icmp_up{region=~"$region"}, branch)', "Branch")))
    d = d.with_row(L.row("Branches"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1).data_links([_to_region()]),
                             "Devices up per branch",
                             [(f"branch:wardops_icmp_up:avg{{{sel}}}", "{{region}} / {{branch}}")], 12, 8))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()).data_links([_to_region()]),
                             "Branch connected (any ISP uplink up)",
                             [(f"branch:wardops_isp_up:max{{{sel}}}", "{{branch}}")], 12, 8))
    d = d.with_panel(L.panel(_state(statetimeline.Panel(), tristate=True).data_links([_to_region()]),
                             "Branch verdict (exporter, with confirmation bursts)",
                             [(f"wardops_icmp_branch_up{{{sel}}}", "{{region}} / {{branch}}")], 24, 8))
    d = d.with_row(L.row("Devices"))
    devices = _columns(_state(table.Panel()), {"branch": "Branch", "device": "Device", "ip": "IP", "role": "Role",
                                               "isp": "Provider"}, value="State")
    d = d.with_panel(L.panel(devices.data_links([_to_device("__data.fields")]), "Device state",
                             [(f"wardops_icmp_up{{{sel}}}", "")], 24, 10, table=True))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s").data_links([_to_device()]), "Round-trip time",
                             [(f"wardops_icmp_rtt_seconds{{{sel}}}", "{{device}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).data_links([_to_device()]),
                             "Packet loss", [(f"wardops_icmp_loss_ratio{{{sel}}}", "{{device}}")], 12, 8))
    return d


def _device(stamp: str) -> db.Dashboard:
    L = _Layout()
    dev = 'device="$device"'
    d = (_base(UIDS["device"], "wardops / Device", stamp, ["device"])
         .with_variable(_var("device", "label_values(wardops_icmp_up, device)", "Device", multi=False)))
    d = d.with_row(L.row("Reachability"))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()).data_links([_to_region()]), "State",
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
    d = d.with_panel(L.panel(_state(statetimeline.Panel()), "Interface oper state",
                             [(f"wardops_snmp_if_oper_up{{{dev}}}", "{{ifName}} {{ifAlias}}")], 12, 8))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()), "SNMP poll succeeded",
                             [(f"wardops_snmp_up{{{dev}}}", "snmp")], 6, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s"), "SNMP poll duration",
                             [(f"wardops_snmp_poll_duration_seconds{{{dev}}}", "poll duration")], 6, 8))
    return d


def _sla(stamp: str) -> db.Dashboard:
    L = _Layout()
    # An SLA is judged over a month; the recording rules make 30 days cheap to read.
    d = (_base(UIDS["sla"], "wardops / Availability (SLA)", stamp, ["sla"], since="now-30d", refresh="5m")
         .with_variable(_var("region", "label_values(region:wardops_icmp_up:avg, region)", "Region")))
    d = d.with_row(L.row("Over the selected range"))
    for title, record in (("Branch availability (devices up)", "branch:wardops_icmp_up:avg"),
                          ("Branch connectivity (any ISP uplink up)", "branch:wardops_isp_up:max")):
        panel = _columns(_availability(table.Panel()), {"region": "Region", "branch": "Branch"},
                         value="Availability")
        d = d.with_panel(L.panel(panel.data_links([_to_region("__data.fields")]), title,
                                 [(f'avg_over_time({record}{{region=~"$region"}}[$__range])', "")], 12, 10,
                                 table=True))
    d = d.with_panel(L.panel(_availability(stat.Panel()), "Region availability",
                             [('avg_over_time(region:wardops_icmp_up:avg{region=~"$region"}[$__range])',
                               "{{region}}")], 8, 5, instant=True))
    d = d.with_panel(L.panel(_availability(stat.Panel()), "Availability by role",
                             [("avg_over_time(role:wardops_icmp_up:avg[$__range])", "{{role}}")], 8, 5,
                             instant=True))
    d = d.with_panel(L.panel(_availability(stat.Panel()), "Availability by provider",
                             [("avg_over_time(isp:wardops_icmp_up:avg[$__range])", "{{isp}}")], 8, 5,
                             instant=True))
    d = d.with_row(L.row("Trend"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).max(1), "Branches connected by region",
                             [('region:wardops_isp_up:avg{region=~"$region"}', "{{region}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).data_links([_to_region()]),
                             "Average loss by branch",
                             [('branch:wardops_icmp_loss:ratio{region=~"$region"}', "{{branch}}")], 12, 8))
    return d


def _exporter(stamp: str) -> db.Dashboard:
    L = _Layout()
    d = (_base(UIDS["exporter"], "wardops / Exporter health", stamp, ["exporter"])
         .with_variable(_var("instance", 'label_values(up{job=~"wardops.*"}, instance)', "Exporter")))
    inst = 'instance=~"$instance"'
    d = d.with_row(L.row("Scrapes"))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()), "Scrape up",
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
    d = d.with_panel(L.panel(_state(stat.Panel()), "Inventory reload",
                             [(f"wardops_exporter_inventory_reload_success{{{inst}}}", "{{instance}}")], 8, 5,
                             instant=True))
    # A neutral colour: how long ago is information, staleness pages through its own alert.
    d = d.with_panel(L.panel(_thresholds(stat.Panel().unit("dateTimeFromNow"), (None, "blue")),
                             "Last inventory reload",
                             [(f"wardops_exporter_inventory_reload_timestamp_seconds{{{inst}}} * 1000",
                               "{{instance}}")], 8, 5, instant=True))
    d = d.with_panel(L.panel(_columns(table.Panel(), {"instance": "Exporter", "version": "Version"}, value=None),
                             "Build", [(f"wardops_exporter_build_info{{{inst}}}", "")], 8, 5, table=True))
    # vmagent's `site` (where the settings put the exporter) beside the exporter's own --site: an
    # empty or different "started for" is an exporter probing devices its site should not.
    d = d.with_row(L.row("Probe site"))
    d = d.with_panel(L.panel(_columns(table.Panel(), {"instance": "Exporter", "site": "Scraped as site",
                                                      "exporter_site": "Started for site (--site)"}, value=None),
                             "Probe site per exporter", [(f"wardops_exporter_site_info{{{inst}}}", "")], 16, 6,
                             table=True))
    d = d.with_panel(L.panel(_count_stat(1, "orange"), "Exporters with another or no site",
                             [('count(ALERTS{alertname="ExporterSiteMismatch", alertstate="firing"}) or vector(0)',
                               "ExporterSiteMismatch")], 8, 6, instant=True))
    return d


def _sites(stamp: str) -> db.Dashboard:
    """What each probe site sees of the same devices: RTT side by side (one panel per site), branch
    RTT and states by site, and each site's own health (canaries, disagreement)."""
    L = _Layout()
    sel = 'region=~"$region", branch=~"$branch", device=~"$device", site=~"$site"'
    d = (_base(UIDS["sites"], "wardops / Probe sites", stamp, ["sites"])
         .with_variable(_var("site", "label_values(wardops_icmp_up, site)", "Probe site"))
         .with_variable(_var("region", "label_values(wardops_icmp_up, region)", "Region"))
         .with_variable(_var("branch", 'label_values(wardops_icmp_up{region=~"$region"}, branch)', "Branch"))
         .with_variable(_var("device", 'label_values(wardops_icmp_up{region=~"$region", branch=~"$branch"}, device)',
                             "Device")))
    d = d.with_row(L.row("Round-trip time by site"))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s").repeat("site").repeat_direction("h")
                             .data_links([_to_device()]), "Round-trip time from $site",
                             [(f"wardops_icmp_rtt_seconds{{{sel}}}", "{{device}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("s").data_links([_to_region()]), "Branch round-trip time by site",
                             [(f"avg by (site, region, branch) (wardops_icmp_rtt_seconds{{{sel}}})",
                               "{{branch}} from {{site}}")], 24, 8))
    d = d.with_row(L.row("State and loss by site"))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()).data_links([_to_device()]), "Device state by site",
                             [(f"wardops_icmp_up{{{sel}}}", "{{device}} from {{site}}")], 24, 8))
    d = d.with_panel(L.panel(_state(statetimeline.Panel(), tristate=True).data_links([_to_region()]),
                             "Branch verdict by site",
                             [('wardops_icmp_branch_up{region=~"$region", branch=~"$branch", site=~"$site"}',
                               "{{branch}} from {{site}}")], 12, 8))
    d = d.with_panel(L.panel(timeseries.Panel().unit("percentunit").min(0).data_links([_to_device()]),
                             "Packet loss by site", [(f"wardops_icmp_loss_ratio{{{sel}}}", "{{device}} from {{site}}")],
                             12, 8))
    d = d.with_row(L.row("Site health"))
    d = d.with_panel(L.panel(_state(statetimeline.Panel()), "Canaries by site",
                             [('wardops_probe_site_canary_up{site=~"$site"}', "{{site}} {{canary}}")], 12, 6))
    # The ProbeSiteDegraded measure: devices this site sees DOWN that another site sees UP.
    d = d.with_panel(L.panel(timeseries.Panel().min(0), "Devices down here, up from another site",
                             [('count by (site) (wardops_icmp_up{site=~"$site"} == 0 and on(device) '
                               '(wardops_icmp_up == 1)) or count by (site) (wardops_icmp_up{site=~"$site"}) * 0',
                               "{{site}}")], 12, 6))
    return d


def build_dashboards(source_stamp: str, settings: Settings) -> dict[str, dict]:
    """file name -> dashboard JSON data (plain dicts, ready for deterministic dumping)."""
    builders = {
        "overview.json": _overview(source_stamp, settings),
        "region.json": _region(source_stamp),
        "device.json": _device(source_stamp),
        "sla.json": _sla(source_stamp),
        "exporter.json": _exporter(source_stamp),
        "sites.json": _sites(source_stamp),
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


def is_state_query(expr: str) -> bool:
    """The query shows states (a state series as is, or max/min of them), not a count of them."""
    names = query_metrics(expr)
    return bool(names) and names <= STATE_METRICS and not _COUNTING_RE.search(expr)


def _mapped(defaults: dict) -> dict[str, tuple[str | None, str | None]]:
    return {value: (result.get("text"), result.get("color")) for m in defaults.get("mappings") or []
            if m.get("type") == "value" for value, result in (m.get("options") or {}).items()}


def panel_problems(p: dict) -> list[str]:
    """What an on-call engineer would misread on this panel (empty: nothing)."""
    out = []
    title, kind = p.get("title", ""), p.get("type")
    defaults = (p.get("fieldConfig") or {}).get("defaults") or {}
    exprs = [t.get("expr", "") for t in p.get("targets") or []]
    if re.search(r"\(\s*-?[01]\s*=", title):
        out.append(f"panel {title!r}: state legend in the title; map the values instead")
    if kind in STATE_PANEL_TYPES and any(is_state_query(e) for e in exprs):
        want = {k: STATE_TEXT[k] for k in ("1", "0")}
        if any(query_metrics(e) & TRISTATE_METRICS for e in exprs):
            want["-1"] = STATE_TEXT["-1"]
        have = _mapped(defaults)
        missing = {k: v for k, v in want.items() if have.get(k) != v}
        if missing:
            out.append(f"panel {title!r} shows a state but lacks value mappings "
                       + ", ".join(f"{k}->{t} {c}" for k, (t, c) in missing.items()))
    if kind == "stat":
        steps = (defaults.get("thresholds") or {}).get("steps") or []
        # Grafana's default (green, red from 80) turns any count above 80 red.
        if not steps or steps == [{"value": None, "color": "green"}, {"value": 80, "color": "red"}]:
            out.append(f"panel {title!r}: stat without explicit thresholds")
    if kind == "table":
        targets = p.get("targets") or []
        if not all(t.get("instant") and t.get("format") == "table" for t in targets):
            out.append(f"panel {title!r}: table queries must be instant with format table")
        if not any(tr.get("id") == "organize" for tr in p.get("transformations") or []):
            out.append(f"panel {title!r}: table without organized columns")
    return out


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
            out.extend(f"{name}: {problem}" for problem in panel_problems(p))
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
