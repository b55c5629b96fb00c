"""vmalert/Prometheus rule groups from the inventory and settings.

Rules are label-based (one rule per alert and threshold class, never one per device). What the
inventory contributes: per-device threshold overrides (device labels `latency_threshold_ms`,
`loss_threshold_percent`), grouped into classes by value so 10,000 devices still give a handful
of rules. Only fields that both vmalert 1.79.5 and promtool 2.42 accept are emitted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from generators.output import regex_escape
from generators.settings import Settings
from generators.text import annotation_texts
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

ALERT_NAMES = ("IspLinkDown", "DeviceDown", "BranchDown", "DeviceFlapping", "HighPacketLoss", "HighLatency",
               "InterfaceDown", "InterfaceFlapping", "SnmpUnreachable", "ExporterDown", "ProbeRoundOverrun",
               "InventoryReloadFailed")

# HighPacketLoss judges a device only over this many packets (12.5 min of the default policy):
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


def _alert(name: str, expr: str, severity: str, scope: str, texts: dict, settings: Settings,
           for_: str = "0s", labels: dict | None = None) -> dict:
    rule = {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, "scope": scope, **(labels or {})},
        "annotations": {
            "summary": texts[name]["summary"],
            "description": texts[name]["description"],
            "runbook_url": f"{settings.runbook_url}#{name.lower()}",
        },
    }
    if for_ not in ("0s", "0m", "0ms", "0h", "0d"):
        rule["for"] = for_
    return rule


def build_rule_groups(inv: Inventory, settings: Settings) -> dict[str, list[dict]]:
    """file name -> rule groups. Raises InventoryError for bad per-device overrides."""
    t, iv = settings.thresholds, settings.intervals
    windows = {"flap_window": t.flap_window, "isp_flap_window": t.isp_flap_window, "loss_window": t.loss_window,
               "latency_window": t.latency_window, "interface_flap_window": t.interface_flap_window}
    texts = annotation_texts(**windows, threshold="")

    def alert(name, expr, severity, scope, for_="0s", labels=None):
        # Rule labels are not visible to $labels in annotation templates: the threshold goes in as text.
        own = annotation_texts(**windows, threshold=labels["threshold"]) if labels else texts
        return _alert(name, expr, severity, scope, own, settings, str(for_), labels)

    up_since = "wardops_icmp_last_change_timestamp_seconds{sel} and on(device) (wardops_icmp_up{sel} == 0)"
    changes = "increase(wardops_icmp_status_changes_total{sel}[{window}])"
    isp, other = '{role="isp"}', '{role!="isp"}'
    isp_flapping = f"{changes.format(sel=isp, window=t.isp_flap_window)} >= {t.isp_flap_changes}"
    other_flapping = f"{changes.format(sel=other, window=t.flap_window)} >= {t.flap_changes}"

    isp_rules = [
        # $value = when the state began (wardops_icmp_last_change_timestamp_seconds), for "since".
        alert("IspLinkDown", f"{up_since.format(sel=isp)} unless on(device) ({isp_flapping})",
              "critical", "device", t.isp_down_for),
        alert("BranchDown",
              "max by (region, branch) (wardops_icmp_last_change_timestamp_seconds{role=\"isp\"})"
              " and on(region, branch) (max by (region, branch) (wardops_icmp_up{role=\"isp\"}) == 0)"
              " or max by (region, branch) (wardops_icmp_last_change_timestamp_seconds)"
              " and on(region, branch) (max by (region, branch) (wardops_icmp_up) == 0)",
              "critical", "branch", t.isp_down_for),
        alert("DeviceFlapping", isp_flapping, "critical", "device"),
    ]
    device_rules = [
        alert("DeviceDown", f"{up_since.format(sel=other)} unless on(device) ({other_flapping})",
              "warning", "device", t.device_down_for),
        alert("DeviceFlapping", other_flapping, "warning", "device"),
    ]
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
                f" > {_number_text(cls.value)} and on(device) (min_over_time(wardops_icmp_up[{t.loss_window}]) == 1)"
                f" and on(device) (increase({sent}[{t.loss_window}]) >= {LOSS_MIN_PACKETS})")
        device_rules.append(alert("HighPacketLoss", expr, "warning", "device", t.loss_for,
                                  {"threshold": _number_text(cls.value)}))
    latency_classes = threshold_classes(inv, LATENCY_LABEL, t.latency_ms, 60000)
    latency_overridden = tuple(sorted(n for c in latency_classes for n in c.devices))
    for cls in latency_classes:
        rtt = _selector("wardops_icmp_rtt_seconds", cls, latency_overridden)
        # avg_over_time skips rounds without replies (the RTT series is absent then).
        expr = (f"avg_over_time({rtt}[{t.latency_window}]) > {_number_text(cls.value / 1000)}"
                " and on(device) (wardops_icmp_up == 1)")
        device_rules.append(alert("HighLatency", expr, "warning", "device", t.latency_for,
                                  {"threshold": _number_text(cls.value)}))
    snmp_rules = [
        alert("InterfaceDown", "wardops_snmp_if_oper_up == 0 and wardops_snmp_if_admin_up == 1",
              "warning", "interface", t.interface_down_for),
        alert("InterfaceFlapping",
              f"changes(wardops_snmp_if_last_change_seconds[{t.interface_flap_window}])"
              f" >= {t.interface_flap_changes}", "warning", "interface"),
        alert("SnmpUnreachable", "wardops_snmp_up == 0 unless on(device) (wardops_icmp_up == 0)",
              "warning", "device", t.snmp_unreachable_for),
    ]
    exporter_rules = [
        alert("ExporterDown", 'up{job=~"wardops.*"} == 0', "critical", "exporter", t.exporter_down_for),
        alert("ProbeRoundOverrun", f"increase(wardops_exporter_round_overruns_total[10m]) >= {t.round_overruns}",
              "warning", "exporter"),
        alert("InventoryReloadFailed", "wardops_exporter_inventory_reload_success == 0", "warning", "exporter",
              "1m"),
    ]
    recording = [{"record": name, "expr": expr} for name, expr in RECORDING_RULES]
    return {
        "alerts.yml": [
            {"name": "wardops-isp", "interval": str(iv.isp_eval), "rules": isp_rules},
            {"name": "wardops-devices", "interval": str(iv.default_eval), "rules": device_rules},
            {"name": "wardops-snmp", "interval": str(iv.default_eval), "rules": snmp_rules},
            {"name": "wardops-exporter", "interval": str(iv.default_eval), "rules": exporter_rules},
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
                if labels.get("severity") not in ("critical", "warning", "info"):
                    out.append(f"{what}: severity label missing or unknown")
                for key in ("summary", "description"):
                    if not ann.get(key):
                        out.append(f"{what}: annotation {key} missing")
            elif not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["record"]):
                out.append(f"{what}: recording rule name is not level:metric:operation")
    return out
