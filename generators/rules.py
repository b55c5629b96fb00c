"""vmalert/Prometheus rule groups from the inventory and settings.

Rules are label-based (one rule per alert and threshold class, never one per device). What the
inventory contributes: per-device threshold overrides (device labels `latency_threshold_ms`,
`loss_threshold_percent`), grouped into classes by value so 10,000 devices still give a handful
of rules. Only fields that both vmalert 1.79.5 and promtool 2.42 accept are emitted.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass

from generators import rootcause as rc
from generators.output import regex_escape
from generators.settings import Settings
from generators.text import annotation_texts, go_text
from generators.topology import build_model
from generators.vmagent import EXPORTER_JOBS
from inventory.errors import InventoryError, Problem
from inventory.model import Inventory

# Group and rule fields accepted by both vmalert 1.79.5 and promtool 2.42: vmalert 1.79.5 exits 255 on
# keep_firing_for (1.92+), eval_offset (1.94+) and debug (1.82+); promtool 2.42 rejects the
# vmalert-only group fields concurrency and params.
GROUP_FIELDS = frozenset({"name", "interval", "limit", "rules"})
RULE_FIELDS = frozenset({"record", "alert", "expr", "for", "labels", "annotations"})
LATENCY_LABEL = "latency_threshold_ms"
LOSS_LABEL = "loss_threshold_percent"
# Labels that scope an alert; Alertmanager inhibition and routing rely on them being present.
DEVICE_SCOPE = ("device", "ip", "role", "region", "branch")

ALERT_NAMES = ("ProbeSiteBlind", "ProbeSiteDegraded", "UpstreamDown", "RegionDown", "BranchDown", "IspLinkDown", "DeviceDown",
               "DeviceFlapping", "HighPacketLoss", "HighLatency", "InterfaceDown", "InterfaceFlapping",
               "SnmpUnreachable", "ExporterDown", "ExporterTargetsDropped", "InventoryReloadHeld",
               "ProbeRoundsStalled", "ProbeRoundOverrun", "InventoryReloadFailed", "ExporterSiteMismatch", "Watchdog")

# HighPacketLoss judges a device only over this many packets (100 s of the default policy, 3 packets
# a second):
# under 1 % random loss, more than 5 % of 300 is lost with probability ~1e-7.
LOSS_MIN_PACKETS = 300

# Recording rules feeding the SLA/availability dashboard: level:metric:operation.
RECORDING_RULES = (
    ("branch:wardops_icmp_up:avg", "avg by (region, branch) (wardops_icmp_up)"),
    ("region:wardops_icmp_up:avg", "avg by (region) (wardops_icmp_up)"),
    ("role:wardops_icmp_up:avg", "avg by (role) (wardops_icmp_up)"),
    ("isp:wardops_icmp_up:avg", 'avg by (isp) (wardops_icmp_up{role="isp"})'),
    ("branch:wardops_isp_up:max", 'max by (region, branch) (wardops_icmp_up{role="isp"})'),
    ("region:wardops_isp_up:avg", 'avg by (region) (max by (region, branch) (wardops_icmp_up{role="isp"}))'),
    ("branch:wardops_icmp_loss:ratio", "avg by (region, branch) (wardops_icmp_loss_ratio)"),
)


@dataclass(frozen=True, slots=True)
class ThresholdClass:
    value: float
    devices: tuple[str, ...]  # empty = the default class (every device without an override)


def _number_text(value: float) -> str:
    return f"{value:g}"


def threshold_classes(inv: Inventory, label: str, default: float, high: float) -> list[ThresholdClass]:
    """Group devices by their override of `label`; the default class comes first."""
    by_value: dict[float, list[str]] = defaultdict(list)
    problems = []
    for d in inv.devices:
        raw = d.labels.get(label)
        if raw is None or not d.enabled:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not 0 < value <= high:  # also false for NaN
            problems.append(Problem(d.location or inv.source, f"device {d.name!r}: label {label} must be a "
                                                              f"number above 0 and at most {_number_text(high)}, "
                                                              f"got {raw!r}"))
            continue
        if value != default:
            by_value[value].append(d.name)
    if problems:
        raise InventoryError(problems)
    classes = [ThresholdClass(default, ())]
    classes += [ThresholdClass(v, tuple(sorted(names))) for v, names in sorted(by_value.items())]
    return classes


def _regex(names: tuple[str, ...]) -> str:
    # PromQL string: escape RE2 metacharacters (device names may hold '.'), then the backslashes.
    return "|".join(regex_escape(n) for n in names).replace("\\", "\\\\")


def _selector(metric: str, cls: ThresholdClass, overridden: tuple[str, ...]) -> str:
    matchers = []
    if cls.devices:
        matchers.append(f'device=~"{_regex(cls.devices)}"')
    elif overridden:
        matchers.append(f'device!~"{_regex(overridden)}"')
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def go_literal(text: str) -> str:
    """User text (a region, node or branch name) inside a Go template annotation: as is, unless it
    holds template delimiters, then as a quoted Go string the template prints verbatim."""
    if "{{" not in text and "}}" not in text:
        return text
    return "{{ " + json.dumps(text) + " }}"


def _alert(name: str, expr: str, severity: str, scope: str, texts: dict, settings: Settings,
           for_: str = "0s", labels: dict | None = None) -> dict:
    rule = {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, "scope": scope, **(labels or {})},
        "annotations": {
            "summary": texts[name]["summary"],
            "description": texts[name]["description"],
            "runbook_url": go_text(f"{settings.runbook_url.rstrip('/')}/{name}.md"),  # vmalert reads a Go template
        },
    }
    if for_ not in ("0s", "0m", "0ms", "0h", "0d"):
        rule["for"] = for_
    return rule


SITE_INFO = "wardops_exporter_site_info"
EXPORTER_SITE_TEXTS = {"ExporterSiteMismatch": {
    "summary": "Exporter {{ $labels.instance }} in probe site {{ $labels.site }} was started for site "
               "'{{ $labels.exporter_site }}'",
    "description": "vmagent scrapes {{ $labels.instance }} as probe site {{ $labels.site }}, but the exporter "
                   "stands in site '{{ $labels.exporter_site }}' (--site or site.name; empty: none, so it probes "
                   "every device, also those the inventory keeps from this site, and its view enters the "
                   "consensus for targets this site does not probe). Start it with --site {{ $labels.site }}."}}


def exporter_site_mismatch() -> str:
    """{site, instance, exporter_site} series for an exporter whose own site name (--site) differs
    from the `site` label vmagent gives its target, or that has none while another exporter has
    one. label_replace copies `site` into `exporter_site`: the series matches itself only when the
    two are equal. Several sites only: with one, exporters without --site are the normal case."""
    same = f'label_replace({SITE_INFO}, "exporter_site", "$1", "site", "(.*)")'
    wrong = f'{SITE_INFO}{{exporter_site!=""}} unless on(site, instance, exporter_site) {same}'
    unset = f'{SITE_INFO}{{exporter_site=""}} and on() (count({SITE_INFO}{{exporter_site!=""}}) > 0)'
    return f"({wrong}) or ({unset})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("ch") else f"{n} {word}s"


def build_rule_groups(inv: Inventory, settings: Settings) -> dict[str, list[dict]]:
    """file name -> rule groups. Raises InventoryError for bad per-device overrides."""
    t, iv = settings.thresholds, settings.intervals
    windows = {"flap_window": t.flap_window, "isp_flap_window": t.isp_flap_window, "loss_window": t.loss_window,
               "latency_window": t.latency_window, "interface_flap_window": t.interface_flap_window,
               "recovery_hold": t.recovery_hold}
    texts = annotation_texts(**windows, threshold="")

    def alert(name, expr, severity, scope, for_="0s", labels=None, own_texts=None):
        # Rule labels are not visible to $labels in annotation templates: the threshold goes in as text.
        own = own_texts or (annotation_texts(**windows, threshold=labels["threshold"])
                            if labels and "threshold" in labels else texts)
        return _alert(name, expr, severity, scope, own, settings, str(for_), labels)

    model = rc.with_sites(build_model(inv), inv, settings.site_names)
    hold = str(t.recovery_hold)
    blind = rc.probe_site_blind(model, t.probe_site_blind_share)
    multi = settings.multi_site
    unhealthy = rc.site_unhealthy(blind, settings.consensus.disagreement_share)
    if multi:
        # Several probe sites: a site that is blind or disagrees with the others is out of the
        # consensus (`blind`, now the recorded per-site verdict, gates every per-site expression
        # below), and the root-cause pages need the healthy sites' consensus (`agree`).
        blind = rc.SITE_UNHEALTHY

    def agree(expr: str, probing: str, key: tuple[str, ...]) -> str:
        if not multi:
            return expr
        return rc.consensus(expr, probing, key, settings.consensus.quorum, blind, hold)
    changes = "increase(wardops_icmp_status_changes_total{sel}[{window}])"
    isp, other = 'role="isp"', 'role!="isp"'

    def flapping(role: str) -> str:
        sel, window, n = (("{" + isp + "}", t.isp_flap_window, t.isp_flap_changes) if role == isp
                          else ("{" + other + "}", t.flap_window, t.flap_changes))
        return f"{changes.format(sel=sel, window=window)} >= {n}"

    if multi:
        sites = ", ".join(site.name for site in settings.probe_sites)
        site_texts = {"ProbeSiteDegraded": {
            "summary": "Probe site {{ $labels.site }} is out of the consensus: its own view of the network is wrong",
            "description": "Probe site {{ $labels.site }} (one of " + go_literal(sites) + ") is blind (its canaries "
                           "failed, or more of its targets than any single region or upstream holds went dark) or "
                           "sees at least " + f"{settings.consensus.disagreement_share:g}" + " of its devices DOWN "
                           "that another site sees UP: the fault is on this site's own path, not in the branches. "
                           "Pages now need the other sites (quorum " + settings.consensus.quorum + "); this site "
                           f"rejoins {hold} after it recovers."}}
        root_rules = [{"record": rc.SITE_UNHEALTHY, "expr": f"({unhealthy}) * 0 + 1"},
                      alert("ProbeSiteDegraded", unhealthy, "critical", "site", own_texts=site_texts)]
    else:
        root_rules = [alert("ProbeSiteBlind", blind, "critical", "site")]
    for node, expr in rc.node_rules(model, blind, hold):
        behind = f"{_plural(len(node.branches), 'branch')}, {_plural(node.device_count, 'device')}"
        name = go_literal(node.name)
        if node.kind == "region":
            node_texts = {"RegionDown": {
                "summary": f"Region {name}: {behind} unreachable",
                "description": f"Every branch of region {name} ({behind}) stopped answering at once: a "
                               f"fault on the path they share (the region core or its links), one page "
                               f"for all of them. Their branch and device alerts are held while it lasts "
                               f"and for {hold} after."}}
            labels = {"region": node.name}
        else:
            own = f" (its own devices: {go_literal(', '.join(node.own_devices))})" if node.own_devices else ""
            node_texts = {"UpstreamDown": {
                "summary": f"{name}: {behind} unreachable behind it",
                "description": f"Every branch behind upstream {name}{own} stopped answering at once "
                               f"({behind}): one page for all of them. Their branch and device alerts "
                               f"are held while it lasts and for {hold} after."}}
            labels = {"upstream": node.name}
        root_rules.append(alert(node.alert, agree(expr, rc.node_probing(model, node), ()), "critical", "upstream", labels=labels,
                                own_texts=node_texts))
    def branch_part(chain, keys):
        # $value = when the branch went dark; uplinks/providers name whom to call.
        def dark(since: str, up: str) -> str:
            return f"{since} + on(site, region, branch) group_left(uplinks, providers) ({up} == 0)"

        if keys is None:
            expr = dark(rc.outside_nodes(model, rc.BRANCH_SINCE), rc.BRANCH_UP)
        else:
            verdict = [k for k in keys if model.branches[k].has_verdict]
            if not verdict:
                return None
            expr = " or ".join(dark(f"{rc.BRANCH_SINCE}{s}", f"{rc.BRANCH_UP}{s}")
                               for s in rc.selectors(model, verdict))
        return f"({expr}) {rc.suppressed(model, chain, hold, branch_level=True)}"

    branch_expr = rc.per_chain(model, branch_part)
    if branch_expr:
        root_rules.append(alert("BranchDown", agree(rc.site_quiet(branch_expr, blind, hold), rc.BRANCH_UP,
                                                    ("region", "branch")), "critical", "branch", t.isp_down_for))
    for role, name, severity, down_for in ((isp, "IspLinkDown", "critical", t.isp_down_for),
                                           (other, "DeviceDown", "warning", t.device_down_for)):
        def device_part(chain, keys, role=role):
            if keys is None:
                down = (f"{rc.outside_nodes(model, rc.SINCE, [role])} "
                        f"and on(site, device) ({rc.UP}{{{role}}} == 0)")
            else:
                down = " or ".join(f"{rc.SINCE}{s} and on(site, device) ({rc.UP}{s} == 0)"
                                   for s in rc.selectors(model, keys, extra=[role]))
            return (f"({down}) unless on(site, device) ({flapping(role)}) "
                    f"{rc.suppressed(model, chain, hold, branch_level=False)}")

        expr = rc.per_chain(model, device_part)
        if expr:
            root_rules.append(alert(name, agree(rc.site_quiet(expr, blind, hold), f"{rc.UP}{{{role}}}", ("device",)),
                                    severity, "device", down_for))
    def flap_rule(role: str) -> str:
        expr = rc.site_quiet(f"({flapping(role)}) {rc.suppressed(model, (), hold, branch_level=False)}", blind, hold)
        return agree(expr, f"{rc.UP}{{{role}}}", ("device",))

    root_rules.append(alert("DeviceFlapping", flap_rule(isp), "critical", "device"))
    device_rules = [alert("DeviceFlapping", flap_rule(other), "warning", "device")]
    loss_classes = threshold_classes(inv, LOSS_LABEL, t.loss_percent, 100)
    loss_overridden = tuple(sorted(n for c in loss_classes for n in c.devices))
    for cls in loss_classes:
        sent = _selector("wardops_icmp_packets_sent_total", cls, loss_overridden)
        recv = _selector("wardops_icmp_packets_received_total", cls, loss_overridden)
        # Only devices up for the whole window: after an outage the window still holds the packets
        # lost while the device was DOWN, which DeviceDown already reported.
        # ... and only once the window holds LOSS_MIN_PACKETS: right after the exporter (or a new
        # device) starts, a few lost packets of ~50 are already "5 %" under 1 % random loss.
        expr = (f"(1 - increase({recv}[{t.loss_window}]) / increase({sent}[{t.loss_window}])) * 100"
                f" > {_number_text(cls.value)} and on(site, device) (min_over_time(wardops_icmp_up[{t.loss_window}]) == 1)"
                f" and on(site, device) (increase({sent}[{t.loss_window}]) >= {LOSS_MIN_PACKETS})")
        device_rules.append(alert("HighPacketLoss", expr, "warning", "device", t.loss_for,
                                  {"threshold": _number_text(cls.value)}))
    latency_classes = threshold_classes(inv, LATENCY_LABEL, t.latency_ms, 60000)
    latency_overridden = tuple(sorted(n for c in latency_classes for n in c.devices))
    for cls in latency_classes:
        rtt = _selector("wardops_icmp_rtt_seconds", cls, latency_overridden)
        # avg_over_time skips rounds without replies (the RTT series is absent then).
        expr = (f"avg_over_time({rtt}[{t.latency_window}]) > {_number_text(cls.value / 1000)}"
                " and on(site, device) (wardops_icmp_up == 1)")
        device_rules.append(alert("HighLatency", expr, "warning", "device", t.latency_for,
                                  {"threshold": _number_text(cls.value)}))
    branch_quiet = (f"unless on(site, region, branch) ({rc.BRANCH_UP} != 1) "
                    f"unless on(site) ({rc.held(blind, hold)})")
    snmp_rules = [
        alert("InterfaceDown", f"(wardops_snmp_if_oper_up == 0 and wardops_snmp_if_admin_up == 1) {branch_quiet}",
              "warning", "interface", t.interface_down_for),
        alert("InterfaceFlapping",
              f"(changes(wardops_snmp_if_last_change_timestamp_seconds[{t.interface_flap_window}])"
              f" >= {t.interface_flap_changes}) {branch_quiet}", "warning", "interface"),
        alert("SnmpUnreachable", f"(wardops_snmp_up == 0 unless on(site, device) (wardops_icmp_up == 0)) {branch_quiet}",
              "warning", "device", t.snmp_unreachable_for),
    ]
    exporter_jobs = "|".join(regex_escape(j) for j in EXPORTER_JOBS)
    targets = "sum by (site, instance) (wardops_exporter_targets)"
    exporter_rules = [
        alert("ExporterDown", f'up{{job=~"{exporter_jobs}"}} == 0', "critical", "exporter", t.exporter_down_for),
        # The exporter holds back a reload that would drop most targets (InventoryReloadHeld); a
        # drop that still happens (forced, held past its time, a shard change) pages here.
        alert("ExporterTargetsDropped",
              f"{targets} < on(site, instance) ({_number_text(t.targets_drop_share)} * "
              f"sum by (site, instance) (max_over_time(wardops_exporter_targets[1h]))) or {targets} == 0",
              "critical", "exporter", "10s"),
        alert("InventoryReloadHeld", "wardops_exporter_inventory_reload_held == 1", "critical", "exporter"),
        alert("ProbeRoundsStalled",
              f'time() - wardops_exporter_last_round_timestamp_seconds{{policy!="snmp"}} > '
              f"{_number_text(t.rounds_stalled_after.seconds)}", "critical", "exporter"),
        alert("ProbeRoundOverrun", f"increase(wardops_exporter_round_overruns_total[10m]) >= {t.round_overruns}",
              "warning", "exporter"),
        alert("InventoryReloadFailed",
              "wardops_exporter_inventory_reload_success == 0 "
              "unless on(site, instance) (wardops_exporter_inventory_reload_held == 1)", "warning", "exporter",
              "1m"),
    ]
    if multi:
        exporter_rules.append(alert("ExporterSiteMismatch", exporter_site_mismatch(), "warning", "exporter", "1m",
                                    own_texts=EXPORTER_SITE_TEXTS))
    pipeline_rules = [alert("Watchdog", "vector(1)", "none", "pipeline")]
    recording = [{"record": name, "expr": expr} for name, expr in RECORDING_RULES]
    return {
        "alerts.yml": [
            {"name": "wardops-root-cause", "interval": str(iv.isp_eval), "rules": root_rules},
            {"name": "wardops-devices", "interval": str(iv.default_eval), "rules": device_rules},
            {"name": "wardops-snmp", "interval": str(iv.default_eval), "rules": snmp_rules},
            {"name": "wardops-exporter", "interval": str(iv.default_eval), "rules": exporter_rules},
            {"name": "wardops-pipeline", "interval": str(iv.default_eval), "rules": pipeline_rules},
        ],
        "recording.yml": [
            {"name": "wardops-availability", "interval": str(iv.recording_eval), "rules": recording},
        ],
    }


def rule_problems(groups: list[dict]) -> list[str]:
    """Structural checks of re-parsed rule groups (the vmalert/promtool common subset)."""
    out = []
    names = set()
    for g in groups:
        extra = set(g) - GROUP_FIELDS
        if extra:
            out.append(f"group {g.get('name')!r}: fields {sorted(extra)} are not in the vmalert/promtool subset")
        if g.get("name") in names:
            out.append(f"duplicate group name {g.get('name')!r}")
        names.add(g.get("name"))
        for r in g.get("rules", []):
            what = f"group {g.get('name')!r} rule {r.get('alert') or r.get('record')!r}"
            extra = set(r) - RULE_FIELDS
            if extra:
                out.append(f"{what}: fields {sorted(extra)} are not in the vmalert/promtool subset")
            if ("alert" in r) == ("record" in r) or not r.get("expr"):
                out.append(f"{what}: needs exactly one of alert/record and an expr")
            if "alert" in r:
                labels, ann = r.get("labels", {}), r.get("annotations", {})
                if labels.get("severity") not in ("critical", "warning", "info", "none"):
                    out.append(f"{what}: severity label missing or unknown")
                for key in ("summary", "description"):
                    if not ann.get(key):
                        out.append(f"{what}: annotation {key} missing")
            elif not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["record"]):
                out.append(f"{what}: recording rule name is not level:metric:operation")
    return out
